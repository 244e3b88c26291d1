# shellcheck shell=bash
# The namespace lab shared by bench/ssh-jump/run.sh and bench/ssh-proxy/run.sh, sourced by both
# (not run on its own): three network namespaces joined by two veth pairs, a cgroup per role for
# CPU accounting, OpenSSH's sshd as target and jump host, sallyportd in dev mode, the client-side
# timing verbs, the TSV of raw measurements and the helpers that summarise it, and the teardown.
#
#   client ns                 gateway ns (no forwarding)                  target ns
#   ssh ──── NET.1.2 ══ NET.1.1 ── sshd :22  or  sallyportd :2222 ──── NET.2.1 ══ NET.2.2
#                                                                          sshd :22 (user PREFIX-*)
#
# Sourcing it turns on strict mode and sets SELF (the sourcing script) and REPO. The script then
# calls lab_names, defines usage, parse_args (passing the shared options to lab_option), main,
# report and a function client_VERB for each verb in CLIENT_VERBS (besides client_bulk and
# client_setup, defined here), and ends with `lab_dispatch "$@"`. It may set
# RECORD_BULK_WALL=true (record the wall time of bulk transfers as well as their rate) and fills
# HOST (variant -> the client's Host alias of the target) and GW_ROLE (variant -> the cgroup role
# of its gateway process).

# Variables set here are read by the sourcing scripts.
# shellcheck disable=SC2034

set -Eeuo pipefail
export LC_ALL=C

SELF=$(readlink -f "${BASH_SOURCE[1]}")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# ---------------------------------------------------------------------------------------------
# Options both scripts take, with their defaults

REPS=3
BULK_MIB=1024
SETUP_COUNT=20
BUILD=true
MAX_MINUTES=60

positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $1 needs a positive integer, got '$2'" >&2; exit 2; }; }

# One of the shared options, $1, with its value in $2; LAB_VALUE_TAKEN is 1 when it took $2 (the
# caller shifts it), else 0. Anything else is an unknown argument (exit 2).
lab_option() {
    LAB_VALUE_TAKEN=1
    case $1 in
        --reps) positive "$1" "${2-}"; REPS=$2 ;;
        --bulk-mib) positive "$1" "${2-}"; BULK_MIB=$2 ;;
        --setup-count) positive "$1" "${2-}"; SETUP_COUNT=$2 ;;
        --max-minutes) positive "$1" "${2-}"; MAX_MINUTES=$2 ;;
        --no-build) BUILD=false LAB_VALUE_TAKEN=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Small helpers

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# Microseconds since the epoch, without a fork.
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
# Seconds (3 decimals) from microseconds.
secs() { awk -v u="$1" 'BEGIN { printf "%.3f", u / 1e6 }'; }

# Waits up to $3 seconds for a TCP listener on port $2 in namespace $1.
wait_listen() {
    local ns=$1 port=$2 limit=$3 i
    for ((i = 0; i < limit * 10; i++)); do
        if ip netns exec "$ns" ss -Htln "( sport = :$port )" | grep -q .; then return 0; fi
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# cgroups: one per role, CPU time of every process that ever ran in it.

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

# CPU microseconds (user + system) used so far in role $1.
cg_cpu_us() {
    case $CG_MODE in
        v2) awk '$1 == "usage_usec" { print $2 }' "$CG_ROOT/$1/cpu.stat" ;;
        v1) echo $(($(cat "$CG_ROOT/$1/cpuacct.usage") / 1000)) ;;
    esac
}

cg_pids() { cat "$CG_ROOT/$1/cgroup.procs" 2>/dev/null || true; }

# Runs "$@" in role $1's cgroup, inside namespace $2.
in_role() {
    local role=$1 ns=$2
    shift 2
    (
        echo "$BASHPID" >"$CG_ROOT/$role/cgroup.procs"
        exec ip netns exec "$ns" "$@"
    )
}

# Starts "$@" in the background in role $1's cgroup, inside namespace $2; $! is its PID (the
# brace group's shell execs into ip, which execs into the command).
spawn_in_role() {
    local role=$1 ns=$2
    shift 2
    {
        echo "$BASHPID" >"$CG_ROOT/$role/cgroup.procs"
        exec ip netns exec "$ns" "$@"
    } &
}

# Ends every process in role $1 (all started by this script), TERM then KILL.
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
# The lab: names, addresses, network, teardown

# PREFIX NET: names from PREFIX (spb, spp) with a random id per run, addresses in NET.1.x
# (client side) and NET.2.x (target side), so labs of different scripts can exist at once.
lab_names() {
    local prefix=$1 net=$2
    LAB_ID=$(printf '%04x' $((RANDOM ^ ($$ & 0xffff))))
    LAB_NAME=$prefix-$LAB_ID
    NS_C=$LAB_NAME-client NS_G=$LAB_NAME-gateway NS_T=$LAB_NAME-target
    VETH_C=$prefix$LAB_ID-c VETH_GC=$prefix$LAB_ID-gc VETH_GT=$prefix$LAB_ID-gt VETH_T=$prefix$LAB_ID-t
    CLIENT_IP=$net.1.2 GW_IP=$net.1.1 GW_T_IP=$net.2.1 TARGET_IP=$net.2.2
    TUSER=$LAB_NAME # the unprivileged target (and sshd jump) login, /bin/sh, created and removed
}

SP_SSH_PORT=2222 SP_API_PORT=8443
LAB='' USER_CREATED=false SP_PID='' WATCHDOG='' LOAD_START=-

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

# The namespaces, veths and addresses. WHAT names what the client must go through (for the
# error when it has a route around it).
lab_network() {
    local what=$1
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
    # No forwarding in the gateway namespace: its SSH server is the only way through.
    ip netns exec "$NS_G" sysctl -qw net.ipv4.ip_forward=0
    if ip -n "$NS_C" route get "$TARGET_IP" >/dev/null 2>&1; then
        die "client has a route to the target; the lab must force the $what"
    fi
}

# ---------------------------------------------------------------------------------------------
# OpenSSH: keys, the target sshd, the jump sshd

sshd_common() { # LISTEN HOSTKEY
    cat <<EOF
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
# Many connections arrive at once from one address (the concurrent and idle-session runs).
MaxStartups 1000:30:2000
LoginGraceTime 30
KexAlgorithms curve25519-sha256
LogLevel ERROR
EOF
}

# The target user, the client's key, both sshds' host keys and configurations; starts the
# target sshd, and the jump sshd too unless $1 is false; known_hosts for both.
lab_openssh() {
    local start_jump_sshd=${1:-true}
    mkdir -p /run/sshd "$LAB/client" "$LAB/target" "$LAB/jump-sshd" "$LAB/home"
    chmod 755 "$LAB"
    chmod 700 "$LAB/client"
    useradd --system --no-create-home --home-dir "$LAB/home" --shell /bin/sh --user-group "$TUSER"
    USER_CREATED=true
    usermod -p '*' "$TUSER" # no password, not locked (sshd refuses locked accounts)
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
    if $start_jump_sshd; then
        spawn_in_role gw-sshd "$NS_G" /usr/sbin/sshd -D -e -f "$LAB/jump-sshd/sshd_config" \
            >"$LAB/jump-sshd/sshd.log" 2>&1
        wait_listen "$NS_G" 22 10 || die "jump sshd did not start: $(cat "$LAB/jump-sshd/sshd.log")"
    fi

    local target_key jump_key
    target_key=$(cut -d' ' -f1,2 "$LAB/target/ssh_host_ed25519_key.pub")
    jump_key=$(cut -d' ' -f1,2 "$LAB/jump-sshd/ssh_host_ed25519_key.pub")
    {
        echo "bench-target $target_key"
        echo "jump-sshd $jump_key"
    } >"$LAB/client/known_hosts"
}

# Options every connection shares, with identity file $1; last in the file, so Host blocks
# above take precedence.
client_defaults() {
    cat <<EOF
Host *
    IdentityFile $1
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
EOF
}

# Two client configurations from the body $1: ssh's default cipher, and AES-128-GCM. A Ciphers
# line before the first Host applies to every hop ssh makes with -F (ProxyJump passes it on).
client_configs() {
    local body=$1
    cp "$body" "$LAB/client/config-default"
    { echo "Ciphers aes128-gcm@openssh.com"; cat "$body"; } >"$LAB/client/config-aes128-gcm"
}

# ---------------------------------------------------------------------------------------------
# sallyportd: started inside the gateway namespace, configured through its API with the CLI

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

# Starts `sallyportd dev` (extra flags "$@") in the gateway role and namespace, waits for both
# listeners and the admin token ($SP_ADMIN), then registers the engineer `bench` with the
# client's key and the target with its pinned host key. The grant is the caller's.
sp_start() {
    mkdir -p "$LAB/sallyportd"
    spawn_in_role gw-sallyportd "$NS_G" "$SALLYPORTD" dev --state-dir "$LAB/sallyportd" \
        --api-listen "$GW_IP:$SP_API_PORT" --ssh-listen "$GW_IP:$SP_SSH_PORT" "$@" \
        >"$LAB/sallyportd.log" 2>&1
    SP_PID=$!
    wait_listen "$NS_G" "$SP_SSH_PORT" 30 || die "sallyportd did not start: $(tail -20 "$LAB/sallyportd.log")"
    wait_listen "$NS_G" "$SP_API_PORT" 30 || die "sallyportd's API did not start"
    SP_ADMIN=$LAB/sallyportd/admin.token
    local i
    for ((i = 0; i < 100; i++)); do [[ -s $SP_ADMIN ]] && break; sleep 0.1; done

    sp_cli "$SP_ADMIN" user add bench --role engineer >/dev/null
    sp_cli "$SP_ADMIN" key add bench --file "$LAB/client/id_ed25519.pub" >/dev/null
    sp_cli "$SP_ADMIN" target add bench-target --address "$TARGET_IP:22" \
        --host-key-file "$LAB/target/ssh_host_ed25519_key.pub" >/dev/null
}

sp_check_pid() {
    [[ $(cat "/proc/$SP_PID/comm" 2>/dev/null) == sallyportd ]] || die "lost track of sallyportd's PID"
}

# sallyportd's host key, read with ssh-keyscan, into the client's known_hosts as
# `jump-sallyportd`.
sp_known_host() {
    local key
    key=$(ip netns exec "$NS_C" ssh-keyscan -t ed25519 -p "$SP_SSH_PORT" "$GW_IP" 2>/dev/null | cut -d' ' -f2,3)
    [[ -n $key ]] || die "cannot read sallyportd's host key"
    echo "jump-sallyportd $key" >>"$LAB/client/known_hosts"
}

# ---------------------------------------------------------------------------------------------
# Client-side measurements. These run inside the client namespace and cgroup: run.sh calls
# itself as `run.sh __client VERB ...` through in_role (the script's `client`), so no
# per-connection `ip netns exec`. Verbs: client_VERB, listed in CLIENT_VERBS.

CLIENT_VERBS='bulk setup'

# CONFIG HOST MIB -> "wall_us bytes_received"
client_bulk() {
    local cfg=$1 host=$2 mib=$3 t0 t1 got
    t0=$(now_us)
    got=$(head -c "${mib}M" /dev/zero | timeout 600 ssh -F "$cfg" "$host" 'wc -c') || got=-1
    t1=$(now_us)
    echo "$((t1 - t0)) ${got//[^0-9-]/}"
}

# CONFIG HOST COUNT -> one "wall_us exit_code" line per connection
client_setup() {
    local cfg=$1 host=$2 count=$3 i t0 rc
    for ((i = 0; i < count; i++)); do
        t0=$(now_us)
        rc=0
        timeout 30 ssh -F "$cfg" "$host" true </dev/null || rc=$?
        echo "$(($(now_us) - t0)) $rc"
    done
}

# ---------------------------------------------------------------------------------------------
# Measurements (outer side): time, CPU per role, results in $RAW as TSV

RAW='' OUT_MD='' RESULTS_DIR=''
RECORD_BULK_WALL=false
declare -A HOST=() GW_ROLE=()

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; } # TEST VARIANT REP KEY VALUE

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
    $RECORD_BULK_WALL && record "bulk-$cipher" "$v" "$rep" wall_s "$(secs "$wall")"
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
# The report: summaries of $RAW

vals() { awk -F'\t' -v t="$1" -v v="$2" -v k="$3" '$1 == t && $2 == v && $4 == k { print $5 }' "$RAW"; }
# Numbers shown with three or four significant digits.
AWK_FMT='function f(x) { return sprintf(x == int(x) || x >= 100 ? "%.0f" : x >= 10 ? "%.1f" : x >= 1 ? "%.2f" : "%.3f", x) }'
# "median min max", or "- - -" when there are no values.
med() { vals "$@" | sort -g | awk "$AWK_FMT"'{ a[NR] = $1 } END { if (!NR) { print "- - -"; exit }
    m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print f(m), f(a[1]), f(a[NR]) }'; }
# Nearest-rank 90th percentile.
p90() { vals "$@" | sort -g | awk "$AWK_FMT"'{ a[NR] = $1 } END { if (!NR) { print "-"; exit }
    i = int(0.9 * NR); if (i < 0.9 * NR) i++; print f(a[i]) }'; }
sum() { vals "$@" | awk '{ s += $1 } END { print s + 0 }'; }
count() { vals "$@" | wc -l; }
median() { local m; read -r m _ < <(med "$@"); echo "$m"; }
spread() { local m lo hi; read -r m lo hi < <(med "$@"); [[ $m == - ]] && { echo -; return; }; echo "$m ($lo–$hi)"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2fx", a / b }'; }
per() { awk -v a="$1" -v n="$2" -v k="${3:-1}" "$AWK_FMT"'BEGIN { if (a == "-" || n == 0) print "-"; else print f(a * k / n) }'; }

# The report's first two lines: when (and which commit), and on what machine (then "$1").
report_when() {
    echo "- when: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo -)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' (with local changes)')"
    echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r); load average before the run $LOAD_START${1-}"
}

# ---------------------------------------------------------------------------------------------
# The run around the measurements

# Root, and every program in "$@".
lab_require() {
    ((EUID == 0)) || die "run as root (network namespaces, cgroups, a target user): sudo $0"
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "missing $tool (apt-get install openssh-client openssh-server iproute2 passwd)"
    done
}

# The release build of sallyportd and the CLI, unless --no-build.
lab_build() {
    if $BUILD; then
        log "building: cargo build --release --locked -p sallyport-gateway -p sallyport-cli"
        (cd "$REPO" && cargo build --release --locked -p sallyport-gateway -p sallyport-cli)
    fi
}

# NAME: results go to target/bench/NAME/{raw,results}-DATE.{tsv,md}.
lab_results() {
    local stamp
    RESULTS_DIR=$REPO/target/bench/$1
    stamp=$(date +%Y%m%d-%H%M%S)
    mkdir -p "$RESULTS_DIR"
    RAW=$RESULTS_DIR/raw-$stamp.tsv
    OUT_MD=$RESULTS_DIR/results-$stamp.md
    : >"$RAW"
}

# The teardown trap and the watchdog (MAX_MINUTES).
lab_begin() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    # Bounded in time: the watchdog ends the run (and the trap cleans up).
    (
        sleep $((MAX_MINUTES * 60)) &
        s=$!
        trap 'kill "$s" 2>/dev/null; exit 0' TERM
        wait "$s" && log "time limit of $MAX_MINUTES minutes reached" && kill -TERM $$
    ) &
    WATCHDOG=$!
}

# The temp dir on tmpfs (LAB) and the cgroups.
lab_create() {
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    LAB=$(mktemp -d /dev/shm/sallyport-bench.XXXXXX 2>/dev/null || mktemp -d)
    log "lab $LAB_NAME in $LAB (keys on tmpfs, removed on exit)"
    cg_setup
}

# The report to stdout and $OUT_MD, owned by the user who ran sudo.
lab_finish() {
    report | tee "$OUT_MD"
    if [[ -n ${SUDO_UID-} ]]; then chown -R "$SUDO_UID:${SUDO_GID:-$SUDO_UID}" "$RESULTS_DIR" 2>/dev/null || true; fi
    log "results: $OUT_MD"
}

# The script's entry: `run.sh __client VERB ...` (inside the lab: client_VERB, for a verb in
# CLIENT_VERBS) or a run.
lab_dispatch() {
    if [[ ${1-} == __client ]]; then
        local verb=${2-}
        [[ " $CLIENT_VERBS " == *" $verb "* ]] || { echo "unknown client verb $verb" >&2; exit 2; }
        shift 2
        "client_$verb" "$@"
    else
        main "$@"
    fi
}
