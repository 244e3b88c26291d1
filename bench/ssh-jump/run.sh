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

# The namespace lab, shared with bench/ssh-proxy: strict mode, SELF and REPO, the shared
# options, helpers, cgroups, network, OpenSSH, sallyportd, measurements, teardown.
# shellcheck source-path=SCRIPTDIR source=../lib/lab.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../lib/lab.sh"

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
# Options (the shared ones, and their defaults: bench/lib/lab.sh)

JUMP=both
CONCURRENCY=50
SESSIONS=2000

parse_args() {
    while (($#)); do
        case $1 in
            --quick) BULK_MIB=128 SETUP_COUNT=10 CONCURRENCY=20 SESSIONS=200 REPS=2 ;;
            --jump)
                [[ ${2-} =~ ^(both|sshd|sallyportd)$ ]] || { echo "run.sh: --jump both|sshd|sallyportd" >&2; exit 2; }
                JUMP=$2; shift ;;
            --concurrency) positive "$1" "${2-}"; CONCURRENCY=$2; shift ;;
            --sessions) positive "$1" "${2-}"; SESSIONS=$2; shift ;;
            *) lab_option "$@"; shift "$LAB_VALUE_TAKEN" ;;
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

# Established TCP connections to local port $2 in namespace $1.
established() { ip netns exec "$1" ss -Htn state established "( sport = :$2 )" | wc -l; }

# ---------------------------------------------------------------------------------------------
# The lab: names, addresses, network (cgroups and teardown: bench/lib/lab.sh)

lab_names spb 10.77
HOLD_PER_USER=25 # idle sessions per sallyportd user (its per-user limit defaults to 32)
HOLD_ALIASES=()
SP_LIMITS="defaults (this sallyportd dev has no flag to raise max_connections)"

setup_network() {
    lab_network jump
    ip -n "$NS_C" route get "$GW_IP" >/dev/null || die "client has no route to the gateway"
    ip -n "$NS_G" route get "$TARGET_IP" >/dev/null || die "gateway has no route to the target"
}

# ---------------------------------------------------------------------------------------------
# OpenSSH: keys, the target sshd, the jump sshd (bench/lib/lab.sh), the client configuration

setup_openssh() {
    local jump_sshd=true
    [[ $JUMP == sallyportd ]] && jump_sshd=false
    lab_openssh "$jump_sshd"
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

# Two client configurations: ssh's default cipher, and AES-128-GCM. A Ciphers line before the
# first Host applies to both hops (ssh passes -F on to the ProxyJump ssh).
write_client_configs() {
    local body="$LAB/client/body.conf"
    : >"$body"
    [[ -f $LAB/client/sshd.conf ]] && { cat "$LAB/client/sshd.conf"; echo; } >>"$body"
    [[ -f $LAB/client/sallyportd.conf ]] && { cat "$LAB/client/sallyportd.conf"; echo; } >>"$body"
    [[ -f $LAB/client/hold.conf ]] && cat "$LAB/client/hold.conf" >>"$body"
    client_defaults "$LAB/client/id_ed25519" >>"$body"
    client_configs "$body"
}

# ---------------------------------------------------------------------------------------------
# sallyportd: started inside the gateway namespace, configured through its API with the CLI

setup_sallyportd() {
    "$SALLYPORTD" dev --help 2>/dev/null | grep -q -- '--ssh-listen' ||
        die "this sallyportd has no SSH listener (no --ssh-listen); run with --jump sshd"
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
    sp_start "${extra[@]}"
    local admin=$SP_ADMIN i
    sp_cli "$admin" grant bench bench-target --for 8h --reason "ssh-jump benchmark" >/dev/null
    sp_cli "$admin" token issue bench --ttl 8h >"$LAB/bench.token"
    sp_check_pid

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
        sp_known_host
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
# (bulk and setup: bench/lib/lab.sh)

CLIENT_VERBS='bulk setup concurrent hold probe'

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
# Measurements (outer side): time, CPU per role, results in $RAW as TSV (bench/lib/lab.sh)

RECORD_BULK_WALL=true
HOST=([sshd]=target-via-sshd [sallyportd]=bench-target)
GW_ROLE=([sshd]=gw-sshd [sallyportd]=gw-sallyportd)
declare -A GW_ALIAS=([sshd]=jump-sshd [sallyportd]=jump-sallyportd)
declare -A GW_PORT=([sshd]=22 [sallyportd]=$SP_SSH_PORT)

measure_concurrent() { # VARIANT REP
    local v=$1 rep=$2 wall fails
    cpu_start "$v"
    read -r wall fails < <(client concurrent "$LAB/client/config-default" "${HOST[$v]}" "$CONCURRENCY")
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
# The report (summaries of $RAW: bench/lib/lab.sh)


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
    report_when " (other work on the machine adds noise)"
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
    lab_require ip ssh ssh-keygen ssh-keyscan /usr/sbin/sshd useradd userdel usermod timeout ss awk git
    lab_build
    [[ $JUMP == sshd || -x $SALLYPORTD ]] || die "no $SALLYPORTD (drop --no-build)"
    [[ $JUMP == sshd || -x $SALLYPORT ]] || die "no $SALLYPORT (drop --no-build)"

    lab_results ssh-jump
    lab_begin
    # The hard limit is all an unprivileged container lets us have; plenty for the defaults.
    ulimit -n "$(ulimit -Hn)"
    ((SESSIONS * 2 + 200 < $(ulimit -n))) || log "warning: open-file limit $(ulimit -n) is low for $SESSIONS sessions"

    lab_create
    setup_network
    setup_openssh
    [[ $JUMP != sshd ]] && setup_sallyportd
    write_client_configs

    local v c rep order
    for v in $(variants); do
        for c in default aes128-gcm; do
            client probe "$LAB/client/config-$c" "${HOST[$v]}" >"$LAB/probe-$v-$c"
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

    lab_finish
}

lab_dispatch "$@"
