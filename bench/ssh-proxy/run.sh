#!/usr/bin/env bash
# The SSH proxy-mode benchmark lab: sallyportd in proxy mode (`ssh -A login@target@gw`, the
# gateway logs in onward with one signature from the forwarded agent and relays the session),
# next to sallyportd as a jump host and OpenSSH's sshd as a jump host, on the same network path,
# measured in one run, order rotating between repetitions. Run by hand, as root:
#
#   sudo bench/ssh-proxy/run.sh [--quick] [--reps N] [--bulk-mib N] [--setup-count N] [--no-build]
#
# The same lab as bench/ssh-jump (three network namespaces, two veth pairs, one cgroup per role):
#
#   client ns                 gateway ns (no forwarding)                  target ns
#   ssh ──── 10.78.1.2 ══ 10.78.1.1 ── sshd :22  or  sallyportd :2222 ──── 10.78.2.1 ══ 10.78.2.2
#   ssh-agent (client key)                                                  sshd :22 (user spp-*)
#
# Results: a markdown table on stdout and in target/bench/ssh-proxy/. Everything the lab creates
# is removed on exit, also on failure or Ctrl-C. See README.md next to this file.

set -Eeuo pipefail
export LC_ALL=C

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)

usage() {
    cat <<'EOF_USAGE'
usage: sudo bench/ssh-proxy/run.sh [options]

  --quick              small sizes for a smoke run (128 MiB, 10 setups, 2 repetitions)
  --reps N             repetitions of each measurement, order rotating (default 3)
  --bulk-mib N         bytes per bulk transfer, in MiB (default 1024)
  --setup-count N      connections per setup measurement (default 20)
  --no-build           use target/release/{sallyportd,sallyport} as they are
  --max-minutes N      stop (and clean up) after this long (default 60)
  -h, --help           this text
EOF_USAGE
}

REPS=3
BULK_MIB=1024
SETUP_COUNT=20
BUILD=true
MAX_MINUTES=60

positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $1 needs a positive integer, got '$2'" >&2; exit 2; }; }

parse_args() {
    while (($#)); do
        case $1 in
            --quick) BULK_MIB=128 SETUP_COUNT=10 REPS=2 ;;
            --reps) positive "$1" "${2-}"; REPS=$2; shift ;;
            --bulk-mib) positive "$1" "${2-}"; BULK_MIB=$2; shift ;;
            --setup-count) positive "$1" "${2-}"; SETUP_COUNT=$2; shift ;;
            --max-minutes) positive "$1" "${2-}"; MAX_MINUTES=$2; shift ;;
            --no-build) BUILD=false ;;
            -h | --help) usage; exit 0 ;;
            *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
        esac
        shift
    done
    if ((BULK_MIB > 16384 || SETUP_COUNT > 1000 || REPS > 20)); then
        echo "run.sh: limits: --bulk-mib ≤ 16384, --setup-count ≤ 1000, --reps ≤ 20" >&2
        exit 2
    fi
}

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
secs() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1e6 }'; }

wait_listen() { # NS PORT SECONDS
    local ns=$1 port=$2 limit=$3 i
    for ((i = 0; i < limit * 10; i++)); do
        if ip netns exec "$ns" ss -Htln "( sport = :$port )" | grep -q .; then return 0; fi
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# cgroups: one per role

CG_MODE='' CG_ROOT=''
ROLES=(client gw-sshd gw-sallyportd target)

cg_setup() {
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        CG_MODE=v2 CG_ROOT=/sys/fs/cgroup/$LAB_NAME
    elif [[ -f /sys/fs/cgroup/cpuacct/cpuacct.usage ]]; then
        CG_MODE=v1 CG_ROOT=/sys/fs/cgroup/cpuacct/$LAB_NAME
    elif [[ -f /sys/fs/cgroup/unified/cgroup.procs ]]; then
        CG_MODE=v2 CG_ROOT=/sys/fs/cgroup/unified/$LAB_NAME
    else
        die "no cgroup hierarchy to count CPU per role (need cgroup v2 or v1 cpuacct)"
    fi
    mkdir "$CG_ROOT"
    local r
    for r in "${ROLES[@]}"; do mkdir "$CG_ROOT/$r"; done
}

cg_cpu_us() {
    case $CG_MODE in
        v2) awk '$1 == "usage_usec" { print $2 }' "$CG_ROOT/$1/cpu.stat" ;;
        v1) echo $(($(cat "$CG_ROOT/$1/cpuacct.usage") / 1000)) ;;
    esac
}

cg_pids() { cat "$CG_ROOT/$1/cgroup.procs" 2>/dev/null || true; }

in_role() { # ROLE NS CMD...
    local role=$1 ns=$2
    shift 2
    (
        echo "$BASHPID" >"$CG_ROOT/$role/cgroup.procs"
        exec ip netns exec "$ns" "$@"
    )
}

spawn_in_role() { # ROLE NS CMD... (background; $! is its PID)
    local role=$1 ns=$2
    shift 2
    {
        echo "$BASHPID" >"$CG_ROOT/$role/cgroup.procs"
        exec ip netns exec "$ns" "$@"
    } &
}

cg_kill() {
    local role=$1 pid i
    [[ -n $CG_ROOT && -d $CG_ROOT/$role ]] || return 0
    for pid in $(cg_pids "$role"); do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        [[ -z $(cg_pids "$role") ]] && return 0
        sleep 0.1
    done
    for pid in $(cg_pids "$role"); do kill -KILL "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        [[ -z $(cg_pids "$role") ]] && return 0
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------------------------
# The lab

LAB_ID=$(printf '%04x' $((RANDOM ^ ($$ & 0xffff))))
LAB_NAME=spp-$LAB_ID
NS_C=$LAB_NAME-client NS_G=$LAB_NAME-gateway NS_T=$LAB_NAME-target
VETH_C=spp$LAB_ID-c VETH_GC=spp$LAB_ID-gc VETH_GT=spp$LAB_ID-gt VETH_T=spp$LAB_ID-t
CLIENT_IP=10.78.1.2 GW_IP=10.78.1.1 GW_T_IP=10.78.2.1 TARGET_IP=10.78.2.2
SP_SSH_PORT=2222 SP_API_PORT=8443
TUSER=$LAB_NAME
LAB='' USER_CREATED=false SP_PID='' WATCHDOG=''

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    [[ -n $WATCHDOG ]] && kill "$WATCHDOG" 2>/dev/null
    log "tearing the lab down"
    local r
    for r in "${ROLES[@]}"; do cg_kill "$r"; done
    for r in "$NS_C" "$NS_G" "$NS_T"; do
        ip netns pids "$r" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
        ip netns del "$r" 2>/dev/null
    done
    if [[ -n $CG_ROOT && -d $CG_ROOT ]]; then
        for r in "${ROLES[@]}"; do rmdir "$CG_ROOT/$r" 2>/dev/null; done
        rmdir "$CG_ROOT" 2>/dev/null || log "could not remove $CG_ROOT"
    fi
    $USER_CREATED && userdel "$TUSER" 2>/dev/null
    [[ -n $LAB && -d $LAB ]] && rm -rf -- "$LAB"
    exit "$rc"
}

setup_network() {
    ip netns add "$NS_C"
    ip netns add "$NS_G"
    ip netns add "$NS_T"
    ip link add "$VETH_C" type veth peer name "$VETH_GC"
    ip link add "$VETH_GT" type veth peer name "$VETH_T"
    ip link set "$VETH_C" netns "$NS_C"
    ip link set "$VETH_GC" netns "$NS_G"
    ip link set "$VETH_GT" netns "$NS_G"
    ip link set "$VETH_T" netns "$NS_T"
    ip -n "$NS_C" addr add "$CLIENT_IP/24" dev "$VETH_C"
    ip -n "$NS_G" addr add "$GW_IP/24" dev "$VETH_GC"
    ip -n "$NS_G" addr add "$GW_T_IP/24" dev "$VETH_GT"
    ip -n "$NS_T" addr add "$TARGET_IP/24" dev "$VETH_T"
    local ns
    for ns in "$NS_C" "$NS_G" "$NS_T"; do ip -n "$ns" link set lo up; done
    ip -n "$NS_C" link set "$VETH_C" up
    ip -n "$NS_G" link set "$VETH_GC" up
    ip -n "$NS_G" link set "$VETH_GT" up
    ip -n "$NS_T" link set "$VETH_T" up
    ip netns exec "$NS_G" sysctl -qw net.ipv4.ip_forward=0
    if ip -n "$NS_C" route get "$TARGET_IP" >/dev/null 2>&1; then
        die "client has a route to the target; the lab must force the gateway"
    fi
}

sshd_common() { # LISTEN HOSTKEY
    cat <<EOF_SSHD
ListenAddress $1
HostKey $2
PidFile $LAB/sshd-${1//[:.]/-}.pid
AuthorizedKeysFile $LAB/authorized_keys
AllowUsers $TUSER
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
PermitTunnel no
MaxStartups 1000:30:2000
LoginGraceTime 30
KexAlgorithms curve25519-sha256
LogLevel ERROR
EOF_SSHD
}

setup_openssh() {
    mkdir -p /run/sshd "$LAB/client" "$LAB/target" "$LAB/jump-sshd" "$LAB/home"
    chmod 755 "$LAB"
    chmod 700 "$LAB/client"
    useradd --system --no-create-home --home-dir "$LAB/home" --shell /bin/sh --user-group "$TUSER"
    USER_CREATED=true
    usermod -p '*' "$TUSER"
    chown "$TUSER:" "$LAB/home"

    ssh-keygen -q -t ed25519 -N '' -C "bench-client" -f "$LAB/client/id_ed25519"
    ssh-keygen -q -t ed25519 -N '' -C "bench-target" -f "$LAB/target/ssh_host_ed25519_key"
    ssh-keygen -q -t ed25519 -N '' -C "bench-jump-sshd" -f "$LAB/jump-sshd/ssh_host_ed25519_key"
    install -m 644 "$LAB/client/id_ed25519.pub" "$LAB/authorized_keys"
    {
        sshd_common "$TARGET_IP:22" "$LAB/target/ssh_host_ed25519_key"
        echo "AllowTcpForwarding no"
    } >"$LAB/target/sshd_config"
    {
        sshd_common "$GW_IP:22" "$LAB/jump-sshd/ssh_host_ed25519_key"
        echo "AllowTcpForwarding local"
        echo "PermitOpen $TARGET_IP:22"
        echo "PermitTTY no"
    } >"$LAB/jump-sshd/sshd_config"
    /usr/sbin/sshd -t -f "$LAB/target/sshd_config"
    /usr/sbin/sshd -t -f "$LAB/jump-sshd/sshd_config"
    spawn_in_role target "$NS_T" /usr/sbin/sshd -D -e -f "$LAB/target/sshd_config" \
        >"$LAB/target/sshd.log" 2>&1
    wait_listen "$NS_T" 22 10 || die "target sshd did not start: $(cat "$LAB/target/sshd.log")"
    spawn_in_role gw-sshd "$NS_G" /usr/sbin/sshd -D -e -f "$LAB/jump-sshd/sshd_config" \
        >"$LAB/jump-sshd/sshd.log" 2>&1
    wait_listen "$NS_G" 22 10 || die "jump sshd did not start: $(cat "$LAB/jump-sshd/sshd.log")"

    {
        echo "bench-target $(cut -d' ' -f1,2 "$LAB/target/ssh_host_ed25519_key.pub")"
        echo "jump-sshd $(cut -d' ' -f1,2 "$LAB/jump-sshd/ssh_host_ed25519_key.pub")"
    } >"$LAB/client/known_hosts"

    # The engineer's agent (proxy mode signs through it), in the client's role.
    spawn_in_role client "$NS_C" ssh-agent -D -a "$LAB/client/agent.sock" >/dev/null 2>&1
    local i
    for ((i = 0; i < 100; i++)); do [[ -S $LAB/client/agent.sock ]] && break; sleep 0.1; done
    [[ -S $LAB/client/agent.sock ]] || die "ssh-agent did not start"
    SSH_AUTH_SOCK=$LAB/client/agent.sock ssh-add -q "$LAB/client/id_ed25519"
}

SALLYPORTD=$REPO/target/release/sallyportd
SALLYPORT=$REPO/target/release/sallyport

sp_cli() { # TOKEN_FILE ARGS...
    local token=$1
    shift
    ip netns exec "$NS_C" env -i PATH="$PATH" HOME="$LAB/home" \
        SALLYPORT_GATEWAY="https://$GW_IP:$SP_API_PORT" \
        SALLYPORT_CA_CERT="$LAB/sallyportd/api-ca.pem" \
        "$SALLYPORT" --token-file "$token" "$@"
}

setup_sallyportd() {
    mkdir -p "$LAB/sallyportd"
    spawn_in_role gw-sallyportd "$NS_G" "$SALLYPORTD" dev --state-dir "$LAB/sallyportd" \
        --api-listen "$GW_IP:$SP_API_PORT" --ssh-listen "$GW_IP:$SP_SSH_PORT" \
        >"$LAB/sallyportd.log" 2>&1
    SP_PID=$!
    wait_listen "$NS_G" "$SP_SSH_PORT" 30 || die "sallyportd did not start: $(tail -20 "$LAB/sallyportd.log")"
    wait_listen "$NS_G" "$SP_API_PORT" 30 || die "sallyportd's API did not start"
    local admin=$LAB/sallyportd/admin.token i
    for ((i = 0; i < 100; i++)); do [[ -s $admin ]] && break; sleep 0.1; done

    sp_cli "$admin" user add bench --role engineer >/dev/null
    sp_cli "$admin" key add bench --file "$LAB/client/id_ed25519.pub" >/dev/null
    sp_cli "$admin" target add bench-target --address "$TARGET_IP:22" \
        --host-key-file "$LAB/target/ssh_host_ed25519_key.pub" >/dev/null
    sp_cli "$admin" grant bench bench-target --proto ssh,ssh-proxy --login "$TUSER" \
        --for 8h --reason "ssh-proxy benchmark" >/dev/null

    [[ $(cat "/proc/$SP_PID/comm" 2>/dev/null) == sallyportd ]] || die "lost track of sallyportd's PID"
    local key
    key=$(ip netns exec "$NS_C" ssh-keyscan -t ed25519 -p "$SP_SSH_PORT" "$GW_IP" 2>/dev/null | cut -d' ' -f2,3)
    [[ -n $key ]] || die "cannot read sallyportd's host key"
    echo "jump-sallyportd $key" >>"$LAB/client/known_hosts"
}

# Host blocks: the target through sshd (ProxyJump), through sallyportd (ProxyJump), and
# sallyportd in proxy mode (User LOGIN@TARGET, agent forwarded).
write_client_configs() {
    local body="$LAB/client/body.conf"
    cat >"$body" <<EOF_CFG
Host jump-sshd
    HostName $GW_IP
    Port 22
    User $TUSER
    HostKeyAlias jump-sshd
    ForwardAgent no

Host via-sshd
    HostName $TARGET_IP
    HostKeyAlias bench-target
    User $TUSER
    ProxyJump jump-sshd

Host jump-sallyportd
    HostName $GW_IP
    Port $SP_SSH_PORT
    User bench
    HostKeyAlias jump-sallyportd
    ForwardAgent no

Host via-sallyportd
    HostName $TARGET_IP
    HostKeyAlias bench-target
    User $TUSER
    ProxyJump jump-sallyportd

Host proxy-sallyportd
    HostName $GW_IP
    Port $SP_SSH_PORT
    User $TUSER@bench-target
    HostKeyAlias jump-sallyportd
    ForwardAgent yes

Host *
    IdentityFile $LAB/client/id_ed25519.pub
    IdentitiesOnly yes
    UserKnownHostsFile $LAB/client/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    CheckHostIP no
    BatchMode yes
    ControlMaster no
    ControlPath none
    ConnectTimeout 20
    KexAlgorithms curve25519-sha256
    LogLevel ERROR
EOF_CFG
    cp "$body" "$LAB/client/config-default"
    { echo "Ciphers aes128-gcm@openssh.com"; cat "$body"; } >"$LAB/client/config-aes128-gcm"
}

# ---------------------------------------------------------------------------------------------
# Client side (inside the client namespace and cgroup: run.sh __client VERB ...)

client_main() {
    local verb=$1
    shift
    case $verb in
        bulk) client_bulk "$@" ;;
        setup) client_setup "$@" ;;
        probe) client_probe "$@" ;;
        *) echo "unknown client verb $verb" >&2; exit 2 ;;
    esac
}

client_bulk() { # CONFIG HOST MIB -> "wall_us bytes"
    local cfg=$1 host=$2 mib=$3 t0 t1 got
    t0=$(now_us)
    got=$(head -c "${mib}M" /dev/zero | timeout 600 ssh -F "$cfg" "$host" 'wc -c') || got=-1
    t1=$(now_us)
    echo "$((t1 - t0)) ${got//[^0-9-]/}"
}

client_setup() { # CONFIG HOST COUNT -> "wall_us rc" per connection
    local cfg=$1 host=$2 count=$3 i t0 rc
    for ((i = 0; i < count; i++)); do
        t0=$(now_us)
        rc=0
        timeout 30 ssh -F "$cfg" "$host" true </dev/null || rc=$?
        echo "$(($(now_us) - t0)) $rc"
    done
}

client_probe() { # CONFIG HOST -> "ok" if a command runs
    timeout 30 ssh -F "$1" "$2" 'echo ok' </dev/null 2>&1
}

client() {
    in_role client "$NS_C" env -i PATH="$PATH" HOME="$LAB/home" SHELL=/bin/sh LC_ALL=C \
        SSH_AUTH_SOCK="$LAB/client/agent.sock" "$BASH" "$SELF" __client "$@"
}

# ---------------------------------------------------------------------------------------------
# Measurements

RAW='' OUT_MD=''
VARIANTS=(sshd jump proxy)
declare -A HOST=([sshd]=via-sshd [jump]=via-sallyportd [proxy]=proxy-sallyportd)
declare -A GW_ROLE=([sshd]=gw-sshd [jump]=gw-sallyportd [proxy]=gw-sallyportd)
declare -A LABEL=([sshd]="sshd, jump (ProxyJump)" [jump]="sallyportd, jump (ProxyJump)" [proxy]="sallyportd, proxy mode (ssh -A)")

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; }

CPU0=()
cpu_start() { CPU0=("$(cg_cpu_us client)" "$(cg_cpu_us "${GW_ROLE[$1]}")" "$(cg_cpu_us target)"); }
cpu_stop() { # TEST VARIANT REP
    record "$1" "$2" "$3" cpu_client_s "$(secs $(($(cg_cpu_us client) - CPU0[0])))"
    record "$1" "$2" "$3" cpu_gateway_s "$(secs $(($(cg_cpu_us "${GW_ROLE[$2]}") - CPU0[1])))"
    record "$1" "$2" "$3" cpu_target_s "$(secs $(($(cg_cpu_us target) - CPU0[2])))"
}

measure_bulk() { # CIPHER VARIANT REP
    local cipher=$1 v=$2 rep=$3 out wall bytes
    cpu_start "$v"
    out=$(client bulk "$LAB/client/config-$cipher" "${HOST[$v]}" "$BULK_MIB")
    cpu_stop "bulk-$cipher" "$v" "$rep"
    read -r wall bytes <<<"$out"
    [[ $bytes == $((BULK_MIB * 1048576)) ]] || die "bulk $cipher via $v: received '$bytes' bytes"
    record "bulk-$cipher" "$v" "$rep" mib_per_s "$(awk -v m="$BULK_MIB" -v u="$wall" 'BEGIN { printf "%.1f", m / (u / 1e6) }')"
    log "  bulk $cipher via $v: $(secs "$wall") s"
}

measure_setup() { # VARIANT REP
    local v=$1 rep=$2 wall rc fails=0
    cpu_start "$v"
    while read -r wall rc; do
        if [[ $rc == 0 ]]; then
            record setup "$v" "$rep" latency_ms "$(awk -v u="$wall" 'BEGIN { printf "%.1f", u / 1000 }')"
        else
            fails=$((fails + 1))
        fi
    done < <(client setup "$LAB/client/config-default" "${HOST[$v]}" "$SETUP_COUNT")
    cpu_stop setup "$v" "$rep"
    record setup "$v" "$rep" failures "$fails"
    log "  setup via $v: $fails failures"
}

# ---------------------------------------------------------------------------------------------
# The report

vals() { awk -F'\t' -v t="$1" -v v="$2" -v k="$3" '$1 == t && $2 == v && $4 == k { print $5 }' "$RAW"; }
AWK_FMT='function f(x) { return sprintf(x == int(x) || x >= 100 ? "%.0f" : x >= 10 ? "%.1f" : x >= 1 ? "%.2f" : "%.3f", x) }'
med() { vals "$@" | sort -g | awk "$AWK_FMT"'{ a[NR] = $1 } END { if (!NR) { print "- - -"; exit }
    m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print f(m), f(a[1]), f(a[NR]) }'; }
p90() { vals "$@" | sort -g | awk "$AWK_FMT"'{ a[NR] = $1 } END { if (!NR) { print "-"; exit }
    i = int(0.9 * NR); if (i < 0.9 * NR) i++; print f(a[i]) }'; }
sum() { vals "$@" | awk '{ s += $1 } END { print s + 0 }'; }
count() { vals "$@" | wc -l; }
median() { local m; read -r m _ < <(med "$@"); echo "$m"; }
spread() { local m lo hi; read -r m lo hi < <(med "$@"); [[ $m == - ]] && { echo -; return; }; echo "$m ($lo–$hi)"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2fx", a / b }'; }
per() { awk -v a="$1" -v n="$2" -v k="${3:-1}" "$AWK_FMT"'BEGIN { if (a == "-" || n == 0) print "-"; else print f(a * k / n) }'; }

report() {
    local v c t n m lo hi
    echo "# sallyport SSH proxy-mode benchmark"
    echo
    echo "- when: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo -)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' (with local changes)')"
    echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r); load average before the run $LOAD_START"
    echo "- OpenSSH: $(ssh -V 2>&1); repetitions: $REPS, order rotating; CPU = user+system seconds per role cgroup ($CG_MODE)"
    echo "- proxy mode: the client's cipher applies to the client→gateway hop only; the gateway→target hop is sallyportd's choice (chacha20-poly1305 first)"
    echo
    echo "## Bulk throughput: ${BULK_MIB} MiB to the target"
    echo
    echo "\`head -c ${BULK_MIB}M /dev/zero | ssh -F config HOST 'wc -c'\`, median (min–max) of $REPS."
    echo
    echo "| cipher | path | MiB/s | CPU s client | CPU s gateway | CPU s target |"
    echo "|---|---|---|---|---|---|"
    for c in default aes128-gcm; do
        t=bulk-$c
        for v in "${VARIANTS[@]}"; do
            echo "| $c | ${LABEL[$v]} | $(spread "$t" "$v" mib_per_s) | $(median "$t" "$v" cpu_client_s) | $(median "$t" "$v" cpu_gateway_s) | $(median "$t" "$v" cpu_target_s) |"
        done
        echo "| $c | **proxy ÷ sshd jump** | **$(ratio "$(median "$t" proxy mib_per_s)" "$(median "$t" sshd mib_per_s)")** | | $(ratio "$(median "$t" proxy cpu_gateway_s)" "$(median "$t" sshd cpu_gateway_s)") | |"
        echo "| $c | proxy ÷ sallyportd jump | $(ratio "$(median "$t" proxy mib_per_s)" "$(median "$t" jump mib_per_s)") | | $(ratio "$(median "$t" proxy cpu_gateway_s)" "$(median "$t" jump cpu_gateway_s)") | |"
    done
    echo
    echo "## Connection setup: $SETUP_COUNT × \`ssh HOST true\` per repetition"
    echo
    echo "| path | median ms | p90 ms | min–max ms | failures | CPU ms client | CPU ms gateway | CPU ms target |"
    echo "|---|---|---|---|---|---|---|---|"
    for v in "${VARIANTS[@]}"; do
        n=$(count setup "$v" latency_ms)
        read -r m lo hi < <(med setup "$v" latency_ms)
        echo "| ${LABEL[$v]} | $m | $(p90 setup "$v" latency_ms) | $lo–$hi | $(sum setup "$v" failures) | $(per "$(sum setup "$v" cpu_client_s)" "$n" 1000) | $(per "$(sum setup "$v" cpu_gateway_s)" "$n" 1000) | $(per "$(sum setup "$v" cpu_target_s)" "$n" 1000) |"
    done
    echo "| **proxy ÷ sshd jump** | **$(ratio "$(median setup proxy latency_ms)" "$(median setup sshd latency_ms)")** | $(ratio "$(p90 setup proxy latency_ms)" "$(p90 setup sshd latency_ms)") | | | | | |"
    echo "| proxy ÷ sallyportd jump | $(ratio "$(median setup proxy latency_ms)" "$(median setup jump latency_ms)") | $(ratio "$(p90 setup proxy latency_ms)" "$(p90 setup jump latency_ms)") | | | | | |"
    echo
    echo "Raw measurements: \`$(basename "$RAW")\` (test, path, repetition, key, value)."
}

main() {
    parse_args "$@"
    ((EUID == 0)) || die "run as root (network namespaces, cgroups, a target user): sudo $0"
    local tool
    for tool in ip ssh ssh-keygen ssh-keyscan ssh-agent ssh-add /usr/sbin/sshd useradd userdel usermod timeout ss awk git; do
        command -v "$tool" >/dev/null || die "missing $tool (apt-get install openssh-client openssh-server iproute2 passwd)"
    done
    if $BUILD; then
        log "building: cargo build --release --locked -p sallyport-gateway -p sallyport-cli"
        (cd "$REPO" && cargo build --release --locked -p sallyport-gateway -p sallyport-cli)
    fi
    [[ -x $SALLYPORTD && -x $SALLYPORT ]] || die "no $SALLYPORTD or $SALLYPORT (drop --no-build)"

    local results_dir=$REPO/target/bench/ssh-proxy stamp
    stamp=$(date +%Y%m%d-%H%M%S)
    mkdir -p "$results_dir"
    RAW=$results_dir/raw-$stamp.tsv
    OUT_MD=$results_dir/results-$stamp.md
    : >"$RAW"

    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    (
        sleep $((MAX_MINUTES * 60)) &
        s=$!
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        wait "$s" && log "time limit of $MAX_MINUTES minutes reached" && kill -TERM $$
    ) &
    WATCHDOG=$!

    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    LAB=$(mktemp -d /dev/shm/sallyport-bench.XXXXXX 2>/dev/null || mktemp -d)
    log "lab $LAB_NAME in $LAB (keys on tmpfs, removed on exit)"
    cg_setup
    setup_network
    setup_openssh
    setup_sallyportd
    write_client_configs

    local v c rep order i
    for v in "${VARIANTS[@]}"; do
        [[ $(client probe "$LAB/client/config-default" "${HOST[$v]}") == ok ]] ||
            die "${LABEL[$v]} does not work: $(client probe "$LAB/client/config-default" "${HOST[$v]}" | head -3)"
        log "${LABEL[$v]} works"
    done

    for ((rep = 1; rep <= REPS; rep++)); do
        # Rotate the order so that no path always goes first.
        order=()
        for ((i = 0; i < ${#VARIANTS[@]}; i++)); do
            order+=("${VARIANTS[$(((i + rep - 1) % ${#VARIANTS[@]}))]}")
        done
        log "repetition $rep/$REPS, order: ${order[*]}"
        for c in default aes128-gcm; do
            for v in "${order[@]}"; do measure_bulk "$c" "$v" "$rep"; done
        done
        for v in "${order[@]}"; do measure_setup "$v" "$rep"; done
    done

    report | tee "$OUT_MD"
    if [[ -n ${SUDO_UID-} ]]; then chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$results_dir" 2>/dev/null || true; fi
    log "results: $OUT_MD"
}

if [[ ${1-} == __client ]]; then
    shift
    client_main "$@"
else
    main "$@"
fi
