#!/usr/bin/env bash
# The WireGuard benchmark lab: sallyportd's endpoint and wireguard-go as the VPN server on the
# same network path, measured in one run with iperf3 (one TCP stream, 10 s), A/B alternated,
# then again with 10,000 users x 10 grants loaded into sallyportd. Run by hand, as root:
#
#   sudo bench/vpn/run.sh [--reps N] [--seconds S] [--users N] [--no-build]
#
#   client ns                       gateway ns                             target ns
#   wireguard-go spbwga ─┐          sallyportd :51820 (TUN spbt0, NAT) ─┐
#   wireguard-go spbwgb ─┴ 10.88.1.2 ══ 10.88.1.1   wireguard-go :51821 ─┴ 10.88.2.1 ══ 10.88.2.2
#                                   (iface spbwgs, nft masquerade)         iperf3 -s
#
# The client's route to 10.88.2.0/24 goes through spbwga (sallyportd) or spbwgb (wireguard-go)
# in turn. CPU is counted per server process (utime+stime from /proc). Results: a markdown table
# on stdout and in target/bench/vpn/. Everything is removed on exit, also on failure or Ctrl-C.

set -Eeuo pipefail
export LC_ALL=C

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)
REPS=3
SECONDS_PER=10
USERS=10000
GRANTS_PER_USER=10
BUILD=true

while (($#)); do
    case $1 in
        --reps) REPS=$2; shift ;;
        --seconds) SECONDS_PER=$2; shift ;;
        --users) USERS=$2; shift ;;
        --no-build) BUILD=false ;;
        -h|--help) sed -n '2,16p' "$SELF"; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

[[ $(id -u) == 0 ]] || { echo "run.sh: needs root (namespaces, TUN)" >&2; exit 1; }
for p in wireguard-go wg iperf3 nft ip sqlite3 python3; do
    command -v "$p" >/dev/null || { echo "run.sh: needs $p" >&2; exit 1; }
done

if $BUILD; then
    (cd "$REPO" && cargo build --release --locked -p sallyport-gateway -p sallyport-cli --bins)
fi
SALLYPORTD=$REPO/target/release/sallyportd
SALLYPORT=$REPO/target/release/sallyport
OUT=$REPO/target/bench/vpn
mkdir -p "$OUT"
WORK=$(mktemp -d /dev/shm/spb-vpn.XXXXXX)
TAG=$$
CLI=spbc$TAG GW=spbg$TAG TGT=spbt$TAG
GW_PID=

cleanup() {
    set +e
    [[ -n $GW_PID ]] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null
    for ns in $CLI $GW $TGT; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null; done
    done
    sleep 0.5
    for ns in $CLI $GW $TGT; do ip netns del "$ns" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# --- the three hosts ---------------------------------------------------------------------------
for ns in $CLI $GW $TGT; do ip netns add "$ns"; inns "$ns" ip link set lo up; done
ip link add spbx$TAG netns "$CLI" type veth peer name spby$TAG netns "$GW"
ip link add spbz$TAG netns "$GW" type veth peer name spbw$TAG netns "$TGT"
inns "$CLI" ip link set spbx$TAG name eth0
inns "$GW" ip link set spby$TAG name ve0
inns "$GW" ip link set spbz$TAG name vt
inns "$TGT" ip link set spbw$TAG name eth0
inns "$CLI" ip addr add 10.88.1.2/24 dev eth0; inns "$CLI" ip link set eth0 up
inns "$GW" ip addr add 10.88.1.1/24 dev ve0; inns "$GW" ip link set ve0 up
inns "$GW" ip addr add 10.88.2.1/24 dev vt; inns "$GW" ip link set vt up
inns "$TGT" ip addr add 10.88.2.2/24 dev eth0; inns "$TGT" ip link set eth0 up
inns "$TGT" iperf3 -s -D --logfile "$WORK/iperf3.log"

# --- B: wireguard-go as the server -------------------------------------------------------------
WGS=spbs$((TAG % 100000)) WGA=spba$((TAG % 100000)) WGB=spbb$((TAG % 100000))
umask 077
wg genkey > "$WORK/s.key"; wg pubkey < "$WORK/s.key" > "$WORK/s.pub"
wg genkey > "$WORK/b.key"; wg pubkey < "$WORK/b.key" > "$WORK/b.pub"
inns "$GW" wireguard-go "$WGS" 2>>"$WORK/wg.log"
inns "$GW" wg set "$WGS" listen-port 51821 private-key "$WORK/s.key" \
    peer "$(cat "$WORK/b.pub")" allowed-ips 100.127.0.2/32
inns "$GW" ip addr add 100.127.0.1/24 dev "$WGS"; inns "$GW" ip link set "$WGS" mtu 1420 up
inns "$GW" "$REPO/packaging/vpn-nat.sh" up vt 100.127.0.0/24 "$WGS" spb_wggo >/dev/null
WGS_PID=$(pgrep -f "wireguard-go $WGS" | head -1)
inns "$CLI" wireguard-go "$WGB" 2>>"$WORK/wg.log"
inns "$CLI" wg set "$WGB" private-key "$WORK/b.key" \
    peer "$(cat "$WORK/s.pub")" endpoint 10.88.1.1:51821 allowed-ips 10.88.2.0/24
inns "$CLI" ip addr add 100.127.0.2/32 dev "$WGB"; inns "$CLI" ip link set "$WGB" mtu 1420 up
inns "$CLI" wireguard-go "$WGA" 2>>"$WORK/wg.log"

# --- A: sallyportd -----------------------------------------------------------------------------
STATE=$WORK/state
start_gateway() {
    inns "$GW" "$SALLYPORTD" dev --state-dir "$STATE" --api-listen 127.0.0.1:8443 \
        --ssh-listen 127.0.0.1:2222 --wg-listen 0.0.0.0:51820 --wg-tun spbt0 \
        --wg-pool 100.64.0.0/24 --wg-nat-out vt >"$WORK/sallyportd.log" 2>&1 &
    GW_PID=$!
    rm -f "$STATE/admin.token.ready"
    for _ in $(seq 600); do
        if [[ -s $STATE/admin.token ]] && cli_admin whoami >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "sallyportd did not start:"; cat "$WORK/sallyportd.log"; exit 1
}
stop_gateway() { kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true; GW_PID=; }
cli_admin() {
    inns "$GW" "$SALLYPORT" --gateway https://127.0.0.1:8443 --ca-cert "$STATE/api-ca.pem" \
        --token-file "$STATE/admin.token" "$@"
}
enroll() {
    local token
    token=$(cli_admin token issue alice --ttl 2h)
    SALLYPORT_TOKEN=$token inns "$GW" "$SALLYPORT" --gateway https://127.0.0.1:8443 \
        --ca-cert "$STATE/api-ca.pem" vpn enroll --name bench --file "$WORK/alice.conf" >/dev/null
    grep -v '^Address' "$WORK/alice.conf" | sed 's/^Endpoint = .*/Endpoint = 10.88.1.1:51820/' \
        > "$WORK/alice.wg"
    inns "$CLI" wg setconf "$WGA" "$WORK/alice.wg"
    local addr
    addr=$(sed -n 's/^Address = //p' "$WORK/alice.conf")
    inns "$CLI" ip addr flush dev "$WGA"
    inns "$CLI" ip addr add "$addr" dev "$WGA"; inns "$CLI" ip link set "$WGA" mtu 1420 up
}
start_gateway
cli_admin user add alice --role engineer >/dev/null
cli_admin grant alice 10.88.2.2/32 --proto tcp --ports 5201 --reason bench >/dev/null
enroll

# --- measuring ---------------------------------------------------------------------------------
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
route_via() { inns "$CLI" ip route replace 10.88.2.0/24 dev "$1"; }
warm() { inns "$CLI" iperf3 -c 10.88.2.2 -t 1 >/dev/null 2>&1 || true; }
# One iperf3 run through $1 (interface), server process $2: prints "Gbit/s cpu_s".
measure() {
    route_via "$1"; warm
    local before after json
    before=$(cpu_ticks "$2")
    json=$(inns "$CLI" iperf3 -c 10.88.2.2 -t "$SECONDS_PER" -J)
    after=$(cpu_ticks "$2")
    python3 - "$json" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
bps = j["end"]["sum_received"]["bits_per_second"]
print("%.3f %.2f" % (bps / 1e9, (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])))
PY
}
declare -A RESULTS
run_pair() { # $1 label for A
    local i a b
    for i in $(seq "$REPS"); do
        if (( i % 2 )); then
            a=$(measure "$WGA" "$GW_PID"); b=$(measure "$WGB" "$WGS_PID")
        else
            b=$(measure "$WGB" "$WGS_PID"); a=$(measure "$WGA" "$GW_PID")
        fi
        RESULTS[$1]+="$a;"; RESULTS["wireguard-go ($1 run)"]+="$b;"
        echo "rep $i: $1 $a | wireguard-go $b" >&2
    done
}
GW_PID=$(pgrep -f "$SALLYPORTD dev --state-dir $STATE" | head -1)
run_pair "sallyportd"

# --- 10,000 users x 10 grants ------------------------------------------------------------------
stop_gateway
python3 - "$STATE/sallyport.db" "$USERS" "$GRANTS_PER_USER" <<'PY'
import sqlite3, sys, uuid
db, users, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db)
tmpl = c.execute("SELECT * FROM grants WHERE subject = 'alice' LIMIT 1").fetchone()
cols = [d[0] for d in c.execute("SELECT * FROM grants LIMIT 0").description]
urow = c.execute("SELECT * FROM users WHERE name = 'alice'").fetchone()
ucols = [d[0] for d in c.execute("SELECT * FROM users LIMIT 0").description]
for u in range(users):
    name = "load%05d" % u
    row = dict(zip(ucols, urow)); row["name"] = name
    c.execute("INSERT INTO users (%s) VALUES (%s)" % (",".join(row), ",".join("?" * len(row))), list(row.values()))
    for g in range(per):
        r = dict(zip(cols, tmpl))
        r["id"] = str(uuid.uuid4()); r["subject"] = name
        r["object"] = "10.%d.%d.%d/32" % (100 + g, (u >> 8) & 255, u & 255)
        c.execute("INSERT INTO grants (%s) VALUES (%s)" % (",".join(r), ",".join("?" * len(r))), list(r.values()))
c.commit()
print("loaded", users, "users x", per, "grants", file=sys.stderr)
PY
start_gateway
GW_PID=$(pgrep -f "$SALLYPORTD dev --state-dir $STATE" | head -1)
enroll
run_pair "sallyportd, ${USERS} users x ${GRANTS_PER_USER} grants"

# --- report ------------------------------------------------------------------------------------
{
    echo "## VPN throughput: iperf3, 1 TCP stream, ${SECONDS_PER} s, ${REPS} reps, A/B alternated"
    echo
    echo "| server | Gbit/s per rep | median Gbit/s | server CPU s per rep |"
    echo "|---|---|---|---|"
    for k in "${!RESULTS[@]}"; do
        python3 - "$k" "${RESULTS[$k]}" <<'PY'
import statistics, sys
reps = [r.split() for r in sys.argv[2].split(";") if r]
g = [float(r[0]) for r in reps]; cpu = [r[1] for r in reps]
print("| %s | %s | %.3f | %s |" % (sys.argv[1], ", ".join("%.3f" % x for x in g), statistics.median(g), ", ".join(cpu)))
PY
    done | sort
    echo
    echo "$(nproc) cores, $(uname -r); sallyportd release build; wireguard-go $(dpkg-query -W -f='${Version}' wireguard-go 2>/dev/null)"
} | tee "$OUT/results-$(date -u +%Y%m%dT%H%M%SZ).md"
