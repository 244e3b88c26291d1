#!/usr/bin/env bash
# Source NAT for sallyport's WireGuard pool, for operators who keep `[wireguard] nat = false`
# and own the host's firewall themselves (docs/vpn.md explains the choice).
#
#   packaging/vpn-nat.sh up   OUT_IFACE [POOL] [TUN] [TABLE]
#   packaging/vpn-nat.sh down [TABLE]
#
# `up` enables IPv4 forwarding and loads one nftables table (default `sallyport_vpn`): packets
# from the TUN device (default `sallyport0`) may only leave through OUT_IFACE, and those from
# the pool (default 100.64.0.0/10) are masqueraded to OUT_IFACE's address. `down` deletes the
# table (forwarding is left as it is). Nothing else in the ruleset is touched. The rules are the
# same as those sallyportd loads itself with `nat = true` (gateway/src/wireguard/nat.rs).

set -euo pipefail

name_ok() { [[ $1 =~ ^[A-Za-z0-9_.-]{1,15}$ ]]; }

case "${1:-}" in
    up)
        out=${2:?usage: vpn-nat.sh up OUT_IFACE [POOL] [TUN] [TABLE]}
        pool=${3:-100.64.0.0/10}
        tun=${4:-sallyport0}
        table=${5:-sallyport_vpn}
        if ! name_ok "$out" || ! name_ok "$tun"; then
            echo "vpn-nat.sh: bad interface name" >&2
            exit 2
        fi
        [[ $table =~ ^[A-Za-z0-9_]{1,32}$ ]] || { echo "vpn-nat.sh: bad table name" >&2; exit 2; }
        [[ $pool =~ ^[0-9.]+/[0-9]+$ ]] || { echo "vpn-nat.sh: POOL is an IPv4 CIDR" >&2; exit 2; }
        sysctl -q -w net.ipv4.ip_forward=1
        nft delete table ip "$table" 2>/dev/null || true
        nft -f - <<NFT
table ip $table {
  chain forward { type filter hook forward priority filter; policy accept;
    iifname "$tun" oifname != "$out" drop
  }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    ip saddr $pool oifname "$out" masquerade
  }
}
NFT
        echo "NAT for $pool out of $out loaded (nft table ip $table)"
        ;;
    down)
        table=${2:-sallyport_vpn}
        nft delete table ip "$table"
        echo "nft table ip $table deleted"
        ;;
    *)
        echo "usage: vpn-nat.sh up OUT_IFACE [POOL] [TUN] [TABLE] | down [TABLE]" >&2
        exit 2
        ;;
esac
