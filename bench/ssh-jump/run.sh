#!/usr/bin/env bash
# The SSH jump benchmark lab: sallyportd and OpenSSH's sshd as the jump host on the same
# network path, measured in one run, A/B alternated. Run by hand, as root:
#
#   sudo bench/ssh-jump/run.sh [--quick] [--jump both|sshd|sallyportd] [--reps N] ...
#
# Three network namespaces joined by two veth pairs; every address lives inside them:
#
#   client ns                 gateway ns (no forwarding)                  target ns
#   ssh ──── 10.77.1.2 ══ 10.77.1.1 ── sshd :22  or  sallyportd :2222 ──── 10.77.2.1 ══ 10.77.2.2
#                                                                          sshd :22 (user spb-*)
#
# Each role runs in a cgroup of its own (client, gw-sshd, gw-sallyportd, target), so CPU is
# counted for every process of a role, sshd's per-connection children included. Results: a
# markdown table on stdout and in target/bench/ssh-jump/. Everything the lab creates (namespaces,
# cgroups, the target user, the temp dir on /dev/shm, processes) is removed on exit, also on
# failure or Ctrl-C. See README.md next to this file.

set -Eeuo pipefail
export LC_ALL=C

SELF=$(readlink -f "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/../.." && pwd)

usage() {
    cat <<'EOF'
usage: sudo bench/ssh-jump/run.sh [options]

  --quick              small sizes for a smoke run (128 MiB, 10 setups, 20 concurrent,
                       200 sessions, 2 repetitions)
  --jump WHICH         both (default), sshd or sallyportd
  --reps N             repetitions of each measurement, A/B order alternating (default 3)
  --bulk-mib N         bytes per bulk transfer, in MiB (default 1024)
  --setup-count N      connections per setup measurement (default 20)
  --concurrency N      simultaneous jumps (default 50)
  --sessions N         idle authenticated sessions held for the memory figure (default 2000)
  --no-build           use target/release/{sallyportd,sallyport} as they are
  --max-minutes N      stop (and clean up) after this long (default 60)
  -h, --help           this text
EOF
}

# ---------------------------------------------------------------------------------------------
# Options

JUMP=both
REPS=3
BULK_MIB=1024
SETUP_COUNT=20
CONCURRENCY=50
SESSIONS=2000
BUILD=true
MAX_MINUTES=60

positive() { [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: $1 needs a positive integer, got '$2'" >&2; exit 2; }; }

parse_args() {
    while (($#)); do
        case $1 in
            --quick) BULK_MIB=128 SETUP_COUNT=10 CONCURRENCY=20 SESSIONS=200 REPS=2 ;;
            --jump)
                [[ ${2-} =~ ^(both|sshd|sallyportd)$ ]] || { echo "run.sh: --jump both|sshd|sallyportd" >&2; exit 2; }
                JUMP=$2; shift ;;
            --reps) positive "$1" "${2-}"; REPS=$2; shift ;;
            --bulk-mib) positive "$1" "${2-}"; BULK_MIB=$2; shift ;;
            --setup-count) positive "$1" "${2-}"; SETUP_COUNT=$2; shift ;;
            --concurrency) positive "$1" "${2-}"; CONCURRENCY=$2; shift ;;
            --sessions) positive "$1" "${2-}"; SESSIONS=$2; shift ;;
            --max-minutes) positive "$1" "${2-}"; MAX_MINUTES=$2; shift ;;
            --no-build) BUILD=false ;;
            -h | --help) usage; exit 0 ;;
            *) echo "run.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
        esac
        shift
    done
    if ((CONCURRENCY > 500 || SESSIONS > 10000 || BULK_MIB > 16384 || SETUP_COUNT > 1000 || REPS > 20)); then
        echo "run.sh: limits: --concurrency ≤ 500, --sessions ≤ 10000, --bulk-mib ≤ 16384, --setup-count ≤ 1000, --reps ≤ 20" >&2
        exit 2
    fi
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

# Established TCP connections to local port $2 in namespace $1.
established() { ip netns exec "$1" ss -Htn state established "( sport = :$2 )" | wc -l; }

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
# The lab: names, addresses, teardown

LAB_ID=$(printf '%04x' $((RANDOM ^ ($$ & 0xffff))))
LAB_NAME=spb-$LAB_ID
NS_C=$LAB_NAME-client NS_G=$LAB_NAME-gateway NS_T=$LAB_NAME-target
VETH_C=spb$LAB_ID-c VETH_GC=spb$LAB_ID-gc VETH_GT=spb$LAB_ID-gt VETH_T=spb$LAB_ID-t
CLIENT_IP=10.77.1.2 GW_IP=10.77.1.1 GW_T_IP=10.77.2.1 TARGET_IP=10.77.2.2
SP_SSH_PORT=2222 SP_API_PORT=8443
HOLD_PER_USER=25 # idle sessions per sallyportd user (its per-user limit defaults to 32)
HOLD_ALIASES=()
LOAD_START=-
SP_LIMITS="defaults (this sallyportd dev has no flag to raise max_connections)"
TUSER=$LAB_NAME # the unprivileged target (and sshd jump) login, /bin/sh, created and removed
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
    # No forwarding in the gateway namespace: the jump host is the only way through.
    ip netns exec "$NS_G" sysctl -qw net.ipv4.ip_forward=0
    ip -n "$NS_C" route get "$GW_IP" >/dev/null || die "client has no route to the gateway"
    ip -n "$NS_G" route get "$TARGET_IP" >/dev/null || die "gateway has no route to the target"
    if ip -n "$NS_C" route get "$TARGET_IP" >/dev/null 2>&1; then
        die "client has a route to the target; the lab must force the jump"
    fi
}

# ---------------------------------------------------------------------------------------------
# OpenSSH: keys, the target sshd, the jump sshd, the client configuration

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

setup_openssh() {
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
    if [[ $JUMP != sallyportd ]]; then
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
    # The sshd path, written by hand in the shape `sallyport ssh-config` gives for sallyportd.
    cat >"$LAB/client/sshd.conf" <<EOF
Host jump-sshd
    HostName $GW_IP
    Port 22
    User $TUSER
    HostKeyAlias jump-sshd
    StrictHostKeyChecking yes
    IdentitiesOnly yes
    ForwardAgent no
    ForwardX11 no

Host target-via-sshd
    HostName $TARGET_IP
    HostKeyAlias bench-target
    User $TUSER
    ProxyJump jump-sshd
EOF
}

# Options every connection shares; last in the file, so Host blocks above take precedence.
client_defaults() {
    cat <<EOF
Host *
    IdentityFile $LAB/client/id_ed25519
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

# Two client configurations: ssh's default cipher, and AES-128-GCM. A Ciphers line before the
# first Host applies to both hops (ssh passes -F on to the ProxyJump ssh).
write_client_configs() {
    local body="$LAB/client/body.conf"
    : >"$body"
    [[ -f $LAB/client/sshd.conf ]] && { cat "$LAB/client/sshd.conf"; echo; } >>"$body"
    [[ -f $LAB/client/sallyportd.conf ]] && { cat "$LAB/client/sallyportd.conf"; echo; } >>"$body"
    [[ -f $LAB/client/hold.conf ]] && cat "$LAB/client/hold.conf" >>"$body"
    client_defaults >>"$body"
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

setup_sallyportd() {
    "$SALLYPORTD" dev --help 2>/dev/null | grep -q -- '--ssh-listen' ||
        die "this sallyportd has no SSH listener (no --ssh-listen); run with --jump sshd"
    mkdir -p "$LAB/sallyportd"
    local extra=()
    # Limits sized for the lab, when this build has the flags (the defaults are for production).
    local help
    help=$("$SALLYPORTD" dev --help)
    local flag
    for flag in --ssh-max-connections --max-connections; do
        if [[ $help == *"$flag "* ]]; then
            extra+=("$flag" $((SESSIONS + CONCURRENCY + 100)))
            SP_LIMITS="$flag $((SESSIONS + CONCURRENCY + 100))"
            break
        fi
    done
    spawn_in_role gw-sallyportd "$NS_G" "$SALLYPORTD" dev --state-dir "$LAB/sallyportd" \
        --api-listen "$GW_IP:$SP_API_PORT" --ssh-listen "$GW_IP:$SP_SSH_PORT" "${extra[@]}" \
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
    sp_cli "$admin" grant bench bench-target --for 8h --reason "ssh-jump benchmark" >/dev/null
    sp_cli "$admin" token issue bench --ttl 8h >"$LAB/bench.token"
    [[ $(cat "/proc/$SP_PID/comm" 2>/dev/null) == sallyportd ]] || die "lost track of sallyportd's PID"

    # Idle sessions are spread over users (like many engineers), each below the gateway's
    # per-user session limit; they only log in, so they need no grant.
    local users=$(((SESSIONS + HOLD_PER_USER - 1) / HOLD_PER_USER))
    HOLD_ALIASES=()
    : >"$LAB/client/hold.conf"
    for ((i = 1; i <= users; i++)); do
        ssh-keygen -q -t ed25519 -N '' -C "hold-$i" -f "$LAB/client/hold-$i"
        sp_cli "$admin" user add "hold-$i" --role engineer >/dev/null
        sp_cli "$admin" key add "hold-$i" --file "$LAB/client/hold-$i.pub" >/dev/null
        cat >>"$LAB/client/hold.conf" <<EOF
Host hold-sallyportd-$i
    HostName $GW_IP
    Port $SP_SSH_PORT
    User hold-$i
    HostKeyAlias jump-sallyportd
    IdentityFile $LAB/client/hold-$i

EOF
        HOLD_ALIASES+=("hold-sallyportd-$i")
    done

    # The engineer's view: `sallyport ssh-config` writes the client's Host blocks and the
    # known_hosts lines for the gateway and the target.
    if sp_cli "$LAB/bench.token" ssh-config --gateway-alias jump-sallyportd --user "$TUSER" \
        --identity-file "$LAB/client/id_ed25519" >"$LAB/client/sallyportd.conf" 2>"$LAB/ssh-config.err"; then
        sed -En 's/^#   ([^ ]+ [a-z0-9@.-]+ AAAA[A-Za-z0-9+\/=]+)$/\1/p' "$LAB/client/sallyportd.conf" \
            >>"$LAB/client/known_hosts"
        SSH_CONFIG_SOURCE="sallyport ssh-config"
    else
        log "sallyport ssh-config failed ($(cat "$LAB/ssh-config.err")); writing the block by hand"
        local key
        key=$(ip netns exec "$NS_C" ssh-keyscan -t ed25519 -p "$SP_SSH_PORT" "$GW_IP" 2>/dev/null | cut -d' ' -f2,3)
        [[ -n $key ]] || die "cannot read sallyportd's host key"
        echo "jump-sallyportd $key" >>"$LAB/client/known_hosts"
        cat >"$LAB/client/sallyportd.conf" <<EOF
Host jump-sallyportd
    HostName $GW_IP
    Port $SP_SSH_PORT
    User bench
    HostKeyAlias jump-sallyportd
    StrictHostKeyChecking yes
    IdentitiesOnly yes
    ForwardAgent no

Host bench-target
    HostName bench-target
    Port 22
    User $TUSER
    ProxyJump jump-sallyportd
EOF
        SSH_CONFIG_SOURCE="hand-written (ssh-config failed; ssh-keyscan for the host key)"
    fi
}

# ---------------------------------------------------------------------------------------------
# Client-side measurements. These run inside the client namespace and cgroup: run.sh calls
# itself as `run.sh __client VERB ...` through in_role, so no per-connection `ip netns exec`.

client_main() {
    local verb=$1
    shift
    case $verb in
        bulk) client_bulk "$@" ;;
        setup) client_setup "$@" ;;
        concurrent) client_concurrent "$@" ;;
        hold) client_hold "$@" ;;
        probe) client_probe "$@" ;;
        *) echo "unknown client verb $verb" >&2; exit 2 ;;
    esac
}

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

# CONFIG HOST N -> "wall_us failures"
client_concurrent() {
    local cfg=$1 host=$2 n=$3 i t0 fails=0 pids=()
    t0=$(now_us)
    for ((i = 0; i < n; i++)); do
        timeout 60 ssh -F "$cfg" "$host" true </dev/null &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || fails=$((fails + 1)); done
    echo "$(($(now_us) - t0)) $fails"
}

# CONFIG N BATCH DEADLINE_S HOST... -> "opened failures wall_us". Each `ssh -f -N` returns once
# authenticated and leaves a background ssh holding the idle session; session j goes to the
# (j mod count)th HOST.
client_hold() {
    local cfg=$1 n=$2 batch=$3 deadline=$4 opened=0 fails=0 t0 i j pids
    shift 4
    local hosts=("$@")
    t0=$(now_us)
    for ((i = 0; i < n; i += batch)); do
        (($(now_us) - t0 > deadline * 1000000)) && break
        pids=()
        for ((j = i; j < n && j < i + batch; j++)); do
            timeout 60 ssh -F "$cfg" -f -N "${hosts[j % ${#hosts[@]}]}" </dev/null >/dev/null 2>&1 &
            pids+=($!)
        done
        for j in "${pids[@]}"; do
            if wait "$j"; then opened=$((opened + 1)); else fails=$((fails + 1)); fi
        done
    done
    echo "$opened $fails $(($(now_us) - t0))"
}

# CONFIG HOST -> the key exchange and ciphers ssh -v reports, one hop per line
client_probe() {
    local cfg=$1 host=$2
    timeout 30 ssh -v -F "$cfg" "$host" true </dev/null 2>&1 |
        awk '/kex: algorithm:/ { k = $NF } /kex: client->server cipher:/ { print k, $5 }'
}

client() { # VERB ARGS...
    in_role client "$NS_C" env -i PATH="$PATH" HOME="$LAB/home" SHELL=/bin/sh LC_ALL=C \
        "$BASH" "$SELF" __client "$@"
}

# ---------------------------------------------------------------------------------------------
# Measurements (outer side): time, CPU per role, results in $RAW as TSV

RAW='' OUT_MD=''
declare -A JUMP_TARGET=([sshd]=target-via-sshd [sallyportd]=bench-target)
declare -A GW_ALIAS=([sshd]=jump-sshd [sallyportd]=jump-sallyportd)
declare -A GW_PORT=([sshd]=22 [sallyportd]=$SP_SSH_PORT)

record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; } # TEST VARIANT REP KEY VALUE

CPU0=()
cpu_start() { CPU0=("$(cg_cpu_us client)" "$(cg_cpu_us "gw-$1")" "$(cg_cpu_us target)"); }
cpu_stop() { # TEST VARIANT REP
    record "$1" "$2" "$3" cpu_client_s "$(secs $(($(cg_cpu_us client) - CPU0[0])))"
    record "$1" "$2" "$3" cpu_gateway_s "$(secs $(($(cg_cpu_us "gw-$2") - CPU0[1])))"
    record "$1" "$2" "$3" cpu_target_s "$(secs $(($(cg_cpu_us target) - CPU0[2])))"
}

measure_bulk() { # CIPHER VARIANT REP
    local cipher=$1 v=$2 rep=$3 out wall bytes
    cpu_start "$v"
    out=$(client bulk "$LAB/client/config-$cipher" "${JUMP_TARGET[$v]}" "$BULK_MIB")
    cpu_stop "bulk-$cipher" "$v" "$rep"
    read -r wall bytes <<<"$out"
    [[ $bytes == $((BULK_MIB * 1048576)) ]] || die "bulk $cipher via $v: received '$bytes' bytes"
    record "bulk-$cipher" "$v" "$rep" wall_s "$(secs "$wall")"
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
    done < <(client setup "$LAB/client/config-default" "${JUMP_TARGET[$v]}" "$SETUP_COUNT")
    cpu_stop setup "$v" "$rep"
    record setup "$v" "$rep" failures "$fails"
    log "  setup via $v: $fails failures"
}

measure_concurrent() { # VARIANT REP
    local v=$1 rep=$2 wall fails
    cpu_start "$v"
    read -r wall fails < <(client concurrent "$LAB/client/config-default" "${JUMP_TARGET[$v]}" "$CONCURRENCY")
    cpu_stop concurrent "$v" "$rep"
    record concurrent "$v" "$rep" wall_s "$(secs "$wall")"
    record concurrent "$v" "$rep" failures "$fails"
    log "  $CONCURRENCY concurrent via $v: $(secs "$wall") s, $fails failures"
}

# Memory of the jump host's processes, KiB: "rss pss processes". For sshd, the sum over the
# listener and every per-connection process (PSS shares library pages out fairly).
jump_memory() {
    local v=$1 pids pid rss=0 pss=0 n=0 r p
    if [[ $v == sallyportd ]]; then pids=$SP_PID; else pids=$(cg_pids gw-sshd); fi
    for pid in $pids; do
        r=$(awk '/^Rss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null) || continue
        p=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null) || continue
        [[ -n $r && -n $p ]] || continue
        rss=$((rss + r)) pss=$((pss + p)) n=$((n + 1))
    done
    echo "$rss $pss $n"
}

measure_sessions() { # VARIANT
    local v=$1 rss0 pss0 rss1 pss1 n1 opened fails wall held i
    ((SESSIONS <= 20000)) || die "too many sessions"
    sleep 1
    read -r rss0 pss0 _ < <(jump_memory "$v")
    cpu_start "$v"
    local hosts=("${GW_ALIAS[$v]}")
    [[ $v == sallyportd ]] && hosts=("${HOLD_ALIASES[@]}")
    read -r opened fails wall < <(client hold "$LAB/client/config-default" "$SESSIONS" 50 600 "${hosts[@]}")
    cpu_stop sessions "$v" 1
    sleep 3
    held=$(established "$NS_G" "${GW_PORT[$v]}")
    read -r rss1 pss1 n1 < <(jump_memory "$v")
    record sessions "$v" 1 opened "$opened"
    record sessions "$v" 1 failures "$fails"
    record sessions "$v" 1 held "$held"
    record sessions "$v" 1 open_s "$(secs "$wall")"
    record sessions "$v" 1 rss_before_mib "$(awk -v k="$rss0" 'BEGIN { printf "%.1f", k / 1024 }')"
    record sessions "$v" 1 rss_after_mib "$(awk -v k="$rss1" 'BEGIN { printf "%.1f", k / 1024 }')"
    record sessions "$v" 1 processes "$n1"
    if ((held > 0)); then
        record sessions "$v" 1 rss_kib_per_session "$(awk -v a="$rss1" -v b="$rss0" -v n="$held" 'BEGIN { printf "%.1f", (a - b) / n }')"
        record sessions "$v" 1 pss_kib_per_session "$(awk -v a="$pss1" -v b="$pss0" -v n="$held" 'BEGIN { printf "%.1f", (a - b) / n }')"
    fi
    log "  $held idle sessions on $v (opened $opened, $fails failed): RSS $rss0 -> $rss1 KiB, PSS $pss0 -> $pss1 KiB"
    # Release them: the only processes left in the client role are the held sessions.
    cg_kill client
    for ((i = 0; i < 100; i++)); do
        (($(established "$NS_G" "${GW_PORT[$v]}") == 0)) && break
        sleep 0.1
    done
}

# ---------------------------------------------------------------------------------------------
# The report

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

# In how many repetitions sallyportd beat sshd on KEY of TEST ($3: higher or lower is better).
wins() {
    awk -F'\t' -v t="$1" -v k="$2" -v better="$3" '$1 == t && $4 == k { v[$3, $2] = $5; reps[$3] = 1 }
        END { for (r in reps) if ((r, "sshd") in v && (r, "sallyportd") in v) {
                  n++; d = v[r, "sallyportd"] - v[r, "sshd"]; if (better == "higher" ? d > 0 : d < 0) w++ }
              printf "%d of %d", w, n }' "$RAW"
}

variants() {
    case $JUMP in
        both) echo sshd sallyportd ;;
        *) echo "$JUMP" ;;
    esac
}

report() {
    local v c t
    echo "# sallyport SSH jump benchmark"
    echo
    echo "- when: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo -)$(git -C "$REPO" diff --quiet 2>/dev/null || echo ' (with local changes)')"
    echo "- machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r); load average before the run $LOAD_START (other work on the machine adds noise)"
    echo "- OpenSSH: $(ssh -V 2>&1); sshd and ssh from the same package"
    echo "- jump hosts: $(variants); sallyportd's client config from: ${SSH_CONFIG_SOURCE:-n/a}; its SSH limits: $SP_LIMITS; idle sessions spread over users, $HOLD_PER_USER each"
    echo "- repetitions: $REPS, A/B order alternating; CPU = user+system seconds of every process in the role's cgroup ($CG_MODE)"
    for v in $(variants); do
        echo "- negotiated via $v (jump hop, then target hop; kex and cipher, from ssh -v):"
        for c in default aes128-gcm; do
            echo "  - $c: $(tr '\n' ';' <"$LAB/probe-$v-$c" | sed 's/;$//; s/;/; /g')"
        done
    done
    echo
    echo "## Bulk throughput: ${BULK_MIB} MiB through the jump"
    echo
    echo "\`head -c ${BULK_MIB}M /dev/zero | ssh -F config TARGET 'wc -c'\` (ProxyJump), median (min–max) of $REPS."
    echo
    echo "| cipher | jump host | MiB/s | wall s | CPU s client | CPU s gateway | CPU s target |"
    echo "|---|---|---|---|---|---|---|"
    for c in default aes128-gcm; do
        t=bulk-$c
        for v in $(variants); do
            echo "| $c | $v | $(spread "$t" "$v" mib_per_s) | $(median "$t" "$v" wall_s) | $(median "$t" "$v" cpu_client_s) | $(median "$t" "$v" cpu_gateway_s) | $(median "$t" "$v" cpu_target_s) |"
        done
        if [[ $JUMP == both ]]; then
            echo "| $c | **sallyportd ÷ sshd** | **$(ratio "$(median "$t" sallyportd mib_per_s)" "$(median "$t" sshd mib_per_s)")** (faster in $(wins "$t" mib_per_s higher)) | $(ratio "$(median "$t" sallyportd wall_s)" "$(median "$t" sshd wall_s)") | $(ratio "$(median "$t" sallyportd cpu_client_s)" "$(median "$t" sshd cpu_client_s)") | $(ratio "$(median "$t" sallyportd cpu_gateway_s)" "$(median "$t" sshd cpu_gateway_s)") | $(ratio "$(median "$t" sallyportd cpu_target_s)" "$(median "$t" sshd cpu_target_s)") |"
        fi
    done
    echo
    echo "## Connection setup: $SETUP_COUNT × \`ssh TARGET true\` per repetition"
    echo
    echo "KexAlgorithms curve25519-sha256 on every client and server; the target login has /bin/sh. Latency over all $((SETUP_COUNT * REPS)) connections; CPU per connection."
    echo
    echo "| jump host | median ms | p90 ms | min–max ms | failures | CPU ms client | CPU ms gateway | CPU ms target |"
    echo "|---|---|---|---|---|---|---|---|"
    local n m lo hi
    for v in $(variants); do
        n=$(count setup "$v" latency_ms)
        read -r m lo hi < <(med setup "$v" latency_ms)
        echo "| $v | $m | $(p90 setup "$v" latency_ms) | $lo–$hi | $(sum setup "$v" failures) | $(per "$(sum setup "$v" cpu_client_s)" "$n" 1000) | $(per "$(sum setup "$v" cpu_gateway_s)" "$n" 1000) | $(per "$(sum setup "$v" cpu_target_s)" "$n" 1000) |"
    done
    if [[ $JUMP == both ]]; then
        echo "| **sallyportd ÷ sshd** | **$(ratio "$(median setup sallyportd latency_ms)" "$(median setup sshd latency_ms)")** | **$(ratio "$(p90 setup sallyportd latency_ms)" "$(p90 setup sshd latency_ms)")** | | | | $(ratio "$(sum setup sallyportd cpu_gateway_s)" "$(sum setup sshd cpu_gateway_s)") | |"
    fi
    echo
    echo "## $CONCURRENCY concurrent jumps: \`ssh TARGET true\` × $CONCURRENCY at once"
    echo
    echo "| jump host | total s, median (min–max) | failures | CPU s client | CPU s gateway | CPU s target |"
    echo "|---|---|---|---|---|---|"
    for v in $(variants); do
        echo "| $v | $(spread concurrent "$v" wall_s) | $(sum concurrent "$v" failures) | $(median concurrent "$v" cpu_client_s) | $(median concurrent "$v" cpu_gateway_s) | $(median concurrent "$v" cpu_target_s) |"
    done
    if [[ $JUMP == both ]]; then
        echo "| **sallyportd ÷ sshd** | **$(ratio "$(median concurrent sallyportd wall_s)" "$(median concurrent sshd wall_s)")** (faster in $(wins concurrent wall_s lower)) | | | $(ratio "$(median concurrent sallyportd cpu_gateway_s)" "$(median concurrent sshd cpu_gateway_s)") | |"
    fi
    echo
    echo "## Idle authenticated sessions: $SESSIONS × \`ssh -f -N GATEWAY\`"
    echo
    echo "Memory of the jump host before and after (sshd: the listener and every per-connection process, summed). Per session = growth ÷ sessions held (established TCP connections counted on the gateway)."
    echo
    echo "| jump host | held | failed | open s | RSS before MiB | RSS after MiB | processes | KiB per session (RSS) | KiB per session (PSS) | CPU ms gateway per session |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for v in $(variants); do
        echo "| $v | $(median sessions "$v" held) | $(median sessions "$v" failures) | $(median sessions "$v" open_s) | $(median sessions "$v" rss_before_mib) | $(median sessions "$v" rss_after_mib) | $(median sessions "$v" processes) | **$(median sessions "$v" rss_kib_per_session)** | $(median sessions "$v" pss_kib_per_session) | $(per "$(median sessions "$v" cpu_gateway_s)" "$(median sessions "$v" held)" 1000) |"
    done
    for v in $(variants); do
        local held
        held=$(median sessions "$v" held)
        if [[ $held != - ]] && ((held < SESSIONS)); then
            echo
            echo "**$v held $held of the $SESSIONS sessions asked for.**$([[ $v == sallyportd ]] && echo " sallyportd's SSH limits: $SP_LIMITS; it closes connections beyond max_connections at once.")"
        fi
    done
    echo
    echo "Raw measurements: \`$(basename "$RAW")\` (test, jump host, repetition, key, value)."
}

# ---------------------------------------------------------------------------------------------

main() {
    parse_args "$@"
    ((EUID == 0)) || die "run as root (network namespaces, cgroups, a target user): sudo $0"
    local tool
    for tool in ip ssh ssh-keygen ssh-keyscan /usr/sbin/sshd useradd userdel usermod timeout ss awk git; do
        command -v "$tool" >/dev/null || die "missing $tool (apt-get install openssh-client openssh-server iproute2 passwd)"
    done
    if $BUILD; then
        log "building: cargo build --release --locked -p sallyport-gateway -p sallyport-cli"
        (cd "$REPO" && cargo build --release --locked -p sallyport-gateway -p sallyport-cli)
    fi
    [[ $JUMP == sshd || -x $SALLYPORTD ]] || die "no $SALLYPORTD (drop --no-build)"
    [[ $JUMP == sshd || -x $SALLYPORT ]] || die "no $SALLYPORT (drop --no-build)"

    local results_dir=$REPO/target/bench/ssh-jump stamp
    stamp=$(date +%Y%m%d-%H%M%S)
    mkdir -p "$results_dir"
    RAW=$results_dir/raw-$stamp.tsv
    OUT_MD=$results_dir/results-$stamp.md
    : >"$RAW"

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
    # The hard limit is all an unprivileged container lets us have; plenty for the defaults.
    ulimit -n "$(ulimit -Hn)"
    ((SESSIONS * 2 + 200 < $(ulimit -n))) || log "warning: open-file limit $(ulimit -n) is low for $SESSIONS sessions"

    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    LAB=$(mktemp -d /dev/shm/sallyport-bench.XXXXXX 2>/dev/null || mktemp -d)
    log "lab $LAB_NAME in $LAB (keys on tmpfs, removed on exit)"
    cg_setup
    setup_network
    setup_openssh
    [[ $JUMP != sshd ]] && setup_sallyportd
    write_client_configs

    local v c rep order
    for v in $(variants); do
        for c in default aes128-gcm; do
            client probe "$LAB/client/config-$c" "${JUMP_TARGET[$v]}" >"$LAB/probe-$v-$c"
            [[ -s $LAB/probe-$v-$c ]] || die "a jump through $v does not work; see $LAB (kept until exit)"
        done
        log "jump through $v works: $(tr '\n' ' ' <"$LAB/probe-$v-default")"
    done

    for ((rep = 1; rep <= REPS; rep++)); do
        if ((rep % 2)); then order=$(variants); else order=$(variants | awk '{ for (i = NF; i; i--) printf "%s ", $i }'); fi
        log "repetition $rep/$REPS, order: $order"
        for c in default aes128-gcm; do
            for v in $order; do measure_bulk "$c" "$v" "$rep"; done
        done
        for v in $order; do measure_setup "$v" "$rep"; done
        for v in $order; do measure_concurrent "$v" "$rep"; done
    done
    log "idle sessions: $SESSIONS per jump host"
    for v in $(variants); do measure_sessions "$v"; done

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
