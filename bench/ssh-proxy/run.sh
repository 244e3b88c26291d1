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

# The namespace lab, shared with bench/ssh-jump: strict mode, SELF and REPO, the shared
# options, helpers, cgroups, network, OpenSSH, sallyportd, measurements, teardown.
# shellcheck source-path=SCRIPTDIR source=../lib/lab.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../lib/lab.sh"

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

# The shared options, and their defaults: bench/lib/lab.sh.
parse_args() {
    while (($#)); do
        case $1 in
            --quick) BULK_MIB=128 SETUP_COUNT=10 REPS=2 ;;
            *) lab_option "$@"; shift "$LAB_VALUE_TAKEN" ;;
        esac
        shift
    done
    if ((BULK_MIB > 16384 || SETUP_COUNT > 1000 || REPS > 20)); then
        echo "run.sh: limits: --bulk-mib ≤ 16384, --setup-count ≤ 1000, --reps ≤ 20" >&2
        exit 2
    fi
}

# ---------------------------------------------------------------------------------------------
# The lab (cgroups, network, sshds, teardown: bench/lib/lab.sh)

lab_names spp 10.78

setup_openssh() {
    lab_openssh true

    # The engineer's agent (proxy mode signs through it), in the client's role.
    spawn_in_role client "$NS_C" ssh-agent -D -a "$LAB/client/agent.sock" >/dev/null 2>&1
    local i
    for ((i = 0; i < 100; i++)); do [[ -S $LAB/client/agent.sock ]] && break; sleep 0.1; done
    [[ -S $LAB/client/agent.sock ]] || die "ssh-agent did not start"
    SSH_AUTH_SOCK=$LAB/client/agent.sock ssh-add -q "$LAB/client/id_ed25519"
}

setup_sallyportd() {
    # shellcheck disable=SC2119 # no extra flags for sallyportd
    sp_start
    sp_cli "$SP_ADMIN" grant bench bench-target --proto ssh,ssh-proxy --login "$TUSER" \
        --for 8h --reason "ssh-proxy benchmark" >/dev/null
    sp_check_pid
    sp_known_host
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

EOF_CFG
    # The agent holds the key: the public half selects it.
    client_defaults "$LAB/client/id_ed25519.pub" >>"$body"
    client_configs "$body"
}

# ---------------------------------------------------------------------------------------------
# Client side (inside the client namespace and cgroup: run.sh __client VERB ...)

CLIENT_VERBS='bulk setup probe'

client_probe() { # CONFIG HOST -> "ok" if a command runs
    timeout 30 ssh -F "$1" "$2" 'echo ok' </dev/null 2>&1
}

client() {
    in_role client "$NS_C" env -i PATH="$PATH" HOME="$LAB/home" SHELL=/bin/sh LC_ALL=C \
        SSH_AUTH_SOCK="$LAB/client/agent.sock" "$BASH" "$SELF" __client "$@"
}

# ---------------------------------------------------------------------------------------------
# Measurements (bulk and setup: bench/lib/lab.sh)

VARIANTS=(sshd jump proxy)
HOST=([sshd]=via-sshd [jump]=via-sallyportd [proxy]=proxy-sallyportd)
GW_ROLE=([sshd]=gw-sshd [jump]=gw-sallyportd [proxy]=gw-sallyportd)
declare -A LABEL=([sshd]="sshd, jump (ProxyJump)" [jump]="sallyportd, jump (ProxyJump)" [proxy]="sallyportd, proxy mode (ssh -A)")

# ---------------------------------------------------------------------------------------------
# The report (summaries of $RAW: bench/lib/lab.sh)

report() {
    local v c t n m lo hi
    echo "# sallyport SSH proxy-mode benchmark"
    echo
    # shellcheck disable=SC2119 # nothing to add to the machine line
    report_when
    echo "- OpenSSH: $(ssh -V 2>&1); repetitions: $REPS, order rotating; CPU = user+system seconds per role cgroup ($CG_MODE)"
    echo "- proxy mode: the client's cipher applies to the client→gateway hop only; the gateway→target hop is sallyportd's choice (aes256-gcm first)"
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
    lab_require ip ssh ssh-keygen ssh-keyscan ssh-agent ssh-add /usr/sbin/sshd useradd userdel usermod timeout ss awk git
    lab_build
    [[ -x $SALLYPORTD && -x $SALLYPORT ]] || die "no $SALLYPORTD or $SALLYPORT (drop --no-build)"

    lab_results ssh-proxy
    lab_begin

    lab_create
    lab_network gateway
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

    lab_finish
}

lab_dispatch "$@"
