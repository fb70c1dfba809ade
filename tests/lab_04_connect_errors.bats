# lab_04_connect_errors.bats - experiment 4 (lab/04-connect-errors.sh): four
# ways a connection fails on the lab network, told apart by the message, the
# exit status and the time.  A closed port answers with a RST: refused at
# once.  An address nobody has gets no ARP reply: the router says "host
# unreachable" after 3 s.  A firewall that drops SYNs says nothing: only the
# client's own deadline (-w 2) ends the wait.  UDP to a closed port gets an
# ICMP "port unreachable", which only a connected UDP socket hears.

load test_helper

NETNS=$BATS_TEST_DIRNAME/../lab/netns.sh
EXPERIMENT=$BATS_TEST_DIRNAME/../lab/04-connect-errors.sh

# test_helper's teardown kills what a test started; keep it as
# helper_teardown, so that ours runs it before removing the namespaces.
eval "helper_$(declare -f teardown)"

teardown() {
    helper_teardown
    if [[ -n ${TEST_PREFIX-} ]]; then
        LAB_NS_PREFIX=$TEST_PREFIX "$NETNS" down >/dev/null 2>&1 || true
        # The experiment's own lab, should it have been interrupted.
        LAB_NS_PREFIX=${TEST_PREFIX}4 "$NETNS" down >/dev/null 2>&1 || true
    fi
}

# needs_lab - skip unless we may build namespaces; then choose this test's
# own prefix (from the test process and number, short enough for interface
# names), so no two tests, and no lab built by hand, share a namespace.
needs_lab() {
    [[ $(id -u) == 0 ]] || skip "needs root: network namespaces"
    ip netns list >/dev/null 2>&1 || skip "needs 'ip netns' (iproute2)"
    local prefix=t$(($$ % 100000))x$BATS_TEST_NUMBER
    ! ip netns list | grep -q "^$prefix" || fail "namespaces $prefix* exist already"
    TEST_PREFIX=$prefix
    export LAB_NS_PREFIX=$prefix
}

# needs_nft - skip unless nftables can be used.
needs_nft() {
    command -v nft >/dev/null || skip "needs nft (apt-get install nftables)"
}

# lab_up - needs_lab, then build the lab.
lab_up() {
    needs_lab
    "$NETNS" up >/dev/null
}

# start_lab_server - select_server on lnxserver, port 0: sets SERVER_OUT
# and PORT.  netns.sh execs the server, so teardown kills it by BG_PID.
start_lab_server() {
    start_bg "$BATS_TEST_TMPDIR/server" "$NETNS" exec lnxserver "$SERVER" -p 0
    SERVER_OUT=$BATS_TEST_TMPDIR/server.out
    wait_for "the server's listening line" grep -q '^listening on ' "$SERVER_OUT"
    PORT=$(sed -n '1s/^listening on .*:\([0-9][0-9]*\) (.*$/\1/p' "$SERVER_OUT")
    [[ $PORT =~ ^[0-9]+$ ]]
}

# client_run [OPTIONS...] HOST PORT - `run` select_client on lnxclient with
# the line "hello" on stdin; ELAPSED_MS is how long it took.
client_run() {
    local start=${EPOCHREALTIME/[.,]/}
    run --separate-stderr timeout "$WAIT_LIMIT" "$NETNS" exec lnxclient "$CLIENT" "$@" <<<"hello"
    local end=${EPOCHREALTIME/[.,]/}
    ELAPSED_MS=$(((end - start) / 1000))
}

# counter HOST NAME - a kernel SNMP counter of HOST (nstat, absolute value).
counter() {
    "$NETNS" exec "$1" nstat -asz "$2" | awk -v n="$2" '$1 == n { print $2 }'
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
    "$NETNS" exec lnxserver nft -f - <<EOF
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
    run "$NETNS" exec lnxserver nft list chain inet lab input
    assert_output --regexp "tcp dport $PORT counter packets [1-9][0-9]* bytes [0-9]+ drop"
    run ! grep -q '^accepted ' "$SERVER_OUT"
    "$NETNS" exec lnxserver nft delete table inet lab
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
    needs_lab
    needs_nft

    run timeout 60 "$EXPERIMENT" 3>&-

    assert_success
    assert_line --regexp '^  connected to 10\.10\.11\.2:9877 from 10\.10\.12\.2:[0-9]+$'
    assert_line "  select_client: connection refused: nothing listening on 10.10.11.2:9"
    assert_line "  select_client: connect to 10.10.11.99:9877: host unreachable (No route to host)"
    assert_line "  select_client: connect to 10.10.11.2:9877: timed out after 2s"
    assert_line "  select_client: no UDP server at 10.10.11.2:9"
    # Case by case: 0 connects; refused and UDP at once; ARP ~3 s; -w 2.
    mapfile -t statuses < <(grep '^  exit status ' <<<"$output")
    assert_equal "${#statuses[@]}" 5
    assert_regex "${statuses[0]}" '^  exit status 0 after 0\.[0-9][0-9]s$'
    assert_regex "${statuses[1]}" '^  exit status 2 after 0\.[0-9][0-9]s$'
    assert_regex "${statuses[2]}" '^  exit status 2 after (2\.[5-9]|3\.[0-9]|4\.[0-9])[0-9]s$'
    assert_regex "${statuses[3]}" '^  exit status 2 after 2\.[0-9][0-9]s$'
    assert_regex "${statuses[4]}" '^  exit status 2 after 0\.[0-9][0-9]s$'
    assert_line "  lnxserver TcpOutRsts: 0 -> 1"
    assert_line "  lnxserver UdpNoPorts: 0 -> 1"
    run ip netns list
    refute_output --partial "${LAB_NS_PREFIX}4-"
}
