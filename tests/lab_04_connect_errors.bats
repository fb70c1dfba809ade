# lab_04_connect_errors.bats - experiment 4 (lab/04-connect-errors.sh): four
# ways a connection fails on the lab network, told apart by the message, the
# exit status and the time.  A closed port answers with a RST: refused at
# once.  An address nobody has gets no ARP reply: the router says "host
# unreachable" after 3 s, and Linux gives up at that first ICMP.  A firewall
# that drops SYNs says nothing: the client resends its SYN (1 s apart at
# first, on Linux 6.5 and later, then doubling) until its own deadline.
# UDP to a closed port gets an ICMP "port unreachable", which only a
# connected UDP socket hears.  Not as root, the tests and the experiment run
# in user namespaces of their own.

load test_helper

EXPERIMENT=$BATS_TEST_DIRNAME/../lab/04-connect-errors.sh

# The experiment runs once for the whole file (about 11 s); the tests from
# "the experiment script" on check what it printed.
setup_file() {
    export RUN_DIR=$BATS_FILE_TMPDIR
    if userns_missing; then
        echo "needs root or user namespaces (unshare --user fails here)" >"$RUN_DIR/skip"
    elif ! command -v nft >/dev/null; then
        echo "needs nft (apt-get install nftables)" >"$RUN_DIR/skip"
    else
        run_experiment_once "$EXPERIMENT"
    fi
}

teardown_file() {
    experiment_down 4
}

# needs_nft - skip unless nftables can be used.
needs_nft() {
    command -v nft >/dev/null || skip "needs nft (apt-get install nftables)"
}

# lab_up - needs_lab, then build the lab.
lab_up() {
    needs_lab
    "${LAB_NETNS[@]}" up >/dev/null
}

# client_run [OPTIONS...] HOST PORT - `run` select_client on lnxclient with
# the line "hello" on stdin; ELAPSED_MS is how long it took.
client_run() {
    local start=${EPOCHREALTIME/[.,]/}
    run --separate-stderr timeout "$WAIT_LIMIT" "${LAB_NETNS[@]}" exec lnxclient "$CLIENT" "$@" <<<"hello"
    local end=${EPOCHREALTIME/[.,]/}
    ELAPSED_MS=$(((end - start) / 1000))
}

# counter HOST NAME - a kernel SNMP counter of HOST (nstat, absolute value).
counter() {
    "${LAB_NETNS[@]}" exec "$1" nstat -asz "$2" | awk -v n="$2" '$1 == n { print $2 }'
}

# ran_experiment - skip if the experiment could not run here; otherwise
# fail unless it succeeded; then `run` on what it printed.
ran_experiment() {
    experiment_succeeded
    run cat "$RUN_DIR/out"
}

# schedule RETRIES LINEAR - when the SYNs of a connect() nobody answers are
# sent, in whole seconds after the first, then "/" and when it gives up: the
# first LINEAR + 1 waits are 1 s, the next ones double; RETRIES + LINEAR
# resends, then one more wait.
schedule() {
    local retries=$1 linear=$2 t=0 wait=1 i out=0
    for ((i = 1; i <= retries + linear + 1; i++)); do
        ((i <= linear + 1)) || wait=$((wait * 2 > 120 ? 120 : wait * 2))
        t=$((t + wait))
        if ((i <= retries + linear)); then out+=" $t"; else out+=" / $t"; fi
    done
    echo "$out"
}

@test "refused: nothing listens on the port, the server's kernel sends a RST: exit 2 at once" {
    lab_up

    client_run 10.10.11.2 9

    assert_failure 2
    assert_equal "$stderr" "select_client: connection refused: nothing listening on 10.10.11.2:9"
    ((ELAPSED_MS < 1000)) || fail "refused after $ELAPSED_MS ms, not at once"
    assert_equal "$(counter lnxserver TcpOutRsts)" 1
}

@test "host unreachable: nobody answers the router's ARP for 10.10.11.99, so after 3 s it says so" {
    lab_up

    client_run 10.10.11.99 9877

    assert_failure 2
    assert_equal "$stderr" "select_client: connect to 10.10.11.99:9877: host unreachable (No route to host)"
    # 3 ARP requests, 1 s apart (mcast_solicit, retrans_time_ms), then ICMP.
    ((ELAPSED_MS >= 2500 && ELAPSED_MS < 5000)) ||
        fail "host unreachable after $ELAPSED_MS ms, not about 3000"
    (($(counter router IcmpOutDestUnreachs) >= 1))
}

@test "timed out: a firewall that drops SYNs says nothing; -w 2 ends the wait after 2 s" {
    lab_up
    needs_nft
    start_lab_server
    "${LAB_NETNS[@]}" exec lnxserver nft -f - <<EOF
table inet lab {
    chain input {
        type filter hook input priority filter; policy accept;
        tcp dport $PORT counter drop
    }
}
EOF

    client_run -w 2 10.10.11.2 "$PORT"

    assert_failure 2
    assert_equal "$stderr" "select_client: connect to 10.10.11.2:$PORT: timed out after 2s"
    ((ELAPSED_MS >= 1900 && ELAPSED_MS < 3000)) || fail "timed out after $ELAPSED_MS ms"
    # The SYNs reached lnxserver and were dropped there; the server never
    # saw a connection.  Without the rule, the same server answers.
    run "${LAB_NETNS[@]}" exec lnxserver nft list chain inet lab input
    assert_output --regexp "tcp dport $PORT counter packets [1-9][0-9]* bytes [0-9]+ drop"
    run ! grep -q '^accepted ' "$SERVER_OUT"
    "${LAB_NETNS[@]}" exec lnxserver nft delete table inet lab
    client_run -w 2 10.10.11.2 "$PORT"
    assert_success
    assert_output "hello"
}

@test "UDP: no server on the port; ICMP port unreachable reaches the connected socket: 'no UDP server'" {
    lab_up

    client_run -u 10.10.11.2 9

    assert_failure 2
    # connect() on a UDP socket sends nothing: it "connects" and only the
    # reply to the first datagram tells.
    assert_equal "${#stderr_lines[@]}" 2
    assert_regex "${stderr_lines[0]}" '^connected to 10\.10\.11\.2:9 from 10\.10\.12\.2:[0-9]+$'
    assert_equal "${stderr_lines[1]}" "select_client: no UDP server at 10.10.11.2:9"
    ((ELAPSED_MS < 1000)) || fail "no UDP server after $ELAPSED_MS ms, not at once"
    assert_equal "$(counter lnxserver UdpNoPorts)" 1
}

@test "the experiment script shows all four failures with their times, and leaves no namespace behind" {
    ran_experiment

    assert_line --regexp '^  connected to 10\.10\.11\.2:9877 from 10\.10\.12\.2:[0-9]+$'
    assert_line "  select_client: connection refused: nothing listening on 10.10.11.2:9"
    assert_line "  select_client: connect to 10.10.11.99:9877: host unreachable (No route to host)"
    assert_line "  select_client: connect to 10.10.11.2:9877: timed out after 7.5s"
    assert_line "  select_client: no UDP server at 10.10.11.2:9"
    # Case by case: 0 connects; refused and UDP at once; ARP ~3 s; -w 7.5.
    mapfile -t statuses < <(grep '^  exit status ' <<<"$output")
    assert_equal "${#statuses[@]}" 5
    assert_regex "${statuses[0]}" '^  exit status 0 after 0\.[0-9][0-9]s$'
    assert_regex "${statuses[1]}" '^  exit status 2 after 0\.[0-9][0-9]s$'
    assert_regex "${statuses[2]}" '^  exit status 2 after (2\.[5-9]|3\.[0-9]|4\.[0-9])[0-9]s$'
    assert_regex "${statuses[3]}" '^  exit status 2 after 7\.[5-9][0-9]s$'
    assert_regex "${statuses[4]}" '^  exit status 2 after 0\.[0-9][0-9]s$'
    assert_line "  lnxserver TcpOutRsts: 0 -> 1"
    assert_line "  lnxserver UdpNoPorts: 0 -> 1"
    if [[ $(id -u) == 0 ]]; then
        run ip netns list
        refute_output --partial "${FILE_PREFIX}4-"
    else
        assert_line --index 0 "(04-connect-errors.sh: not root, so it runs in a user namespace of its own)"
    fi
}

@test "the experiment script: the SYNs nobody answers are resent on the running kernel's schedule, which it names" {
    ran_experiment
    grep -q '^  SYNs seen on' <<<"$output" || skip "tcpdump is not installed: no SYN times"

    retries=$(sed -n 's/^  lnxclient: net\.ipv4\.tcp_syn_retries = \([0-9]*\)$/\1/p' <<<"$output")
    linear=$(sed -n 's/^  lnxclient: net\.ipv4\.tcp_syn_linear_timeouts = \([0-9]*\)$/\1/p' <<<"$output")
    if [[ -z $linear ]]; then
        assert_line "  lnxclient: no net.ipv4.tcp_syn_linear_timeouts (a kernel older than 6.5)"
    fi
    assert_regex "$retries" '^[0-9]+$'
    expected=$(schedule "$retries" "${linear:-0}")
    assert_line "  so, without -w: SYNs at ${expected% / *} s; ETIMEDOUT after about ${expected##* / } s"

    # The SYNs sent before the 7.5 s deadline, each within 0.3 s of its time
    # (the kernel's timers run a little late, and the lateness adds up).
    read -r -a want <<<"${expected% / *}"
    got=$(sed -n "s/^  SYNs seen on lnxserver's cable, in seconds: //p" <<<"$output")
    read -r -a seen <<<"$got"
    n=0
    for t in "${want[@]}"; do
        ((t <= 7)) || break
        n=$((n + 1))
    done
    assert_equal "${#seen[@]}" "$n"
    for ((i = 0; i < n; i++)); do
        awk -v got="${seen[i]}" -v want="${want[i]}" 'BEGIN { exit !(got - want >= -0.05 && got - want <= 0.3) }' ||
            fail "SYN $((i + 1)) at ${seen[i]} s, not about ${want[i]} s (all: $got)"
    done
    assert_line "  lnxserver dropped $n SYN segments"
    if [[ -n $linear ]]; then
        assert_line "  tcp_syn_linear_timeouts + 1 = $((linear + 1)) resends, then twice as long each time;"
    fi
}

@test "not root where user namespaces are disabled: exit 4 before building anything, saying why and what to run" {
    without_userns "$EXPERIMENT"

    run --separate-stderr "${NO_USERNS[@]}" "$EXPERIMENT"

    assert_failure 4
    assert_output ""
    assert_equal "${stderr_lines[0]}" "04-connect-errors.sh: needs root, or a user namespace of its own, and this user cannot create one:"
    assert_equal "${stderr_lines[-1]}" "Run it as root instead: sudo $EXPERIMENT"
}
