# lab_12_udp_reply_address.bats - experiment 12: a UDP server bound to the
# wildcard address that replies with plain sendto() lets the kernel choose
# the reply's source address.  Asked on 127.0.0.2, lab/naive_udp_echo
# answers from 127.0.0.1, and select_client -u, whose socket is connected
# to 127.0.0.2, never sees the reply.  select_server answers from the
# address it was asked on (IP_PKTINFO).

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
SCRIPT=$LAB/12-udp-reply-address.sh

# start_naive_udp - lab/naive_udp_echo on a port the kernel chooses: sets
# NAIVE_PORT.
start_naive_udp() {
    start_bg "$BATS_TEST_TMPDIR/naive" "$LAB/naive_udp_echo" -p 0
    wait_for "naive_udp_echo's listening line" grep -q '^listening on ' "$BATS_TEST_TMPDIR/naive.out"
    NAIVE_PORT=$(sed -n '1s/^listening on 0\.0\.0\.0:\([0-9]*\) (udp)$/\1/p' "$BATS_TEST_TMPDIR/naive.out")
    [[ $NAIVE_PORT =~ ^[0-9]+$ ]]
}

@test "naive_udp_echo answers a client that asks on 127.0.0.1" {
    start_naive_udp
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -u 127.0.0.1 "$NAIVE_PORT" <<<'on the first address'
    assert_success
    assert_output 'on the first address'
}

@test "naive_udp_echo asked on 127.0.0.2 echoes, but from 127.0.0.1: the connected client drops it, exit 2" {
    start_naive_udp
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -u 127.0.0.2 "$NAIVE_PORT" <<<'on the second address'
    assert_failure 2
    assert_output ''
    assert_equal "$stderr" "select_client: no reply from 127.0.0.2:$NAIVE_PORT to any of 1 datagram within 1s"
    # It did answer: the datagram was lost at the client, not the server.
    wait_for "the naive server's log" grep -q '^echoed 21 bytes to 127\.0\.0\.1:' "$BATS_TEST_TMPDIR/naive.out"
}

@test "12-udp-reply-address.sh: the naive server answers 127.0.0.2 from 127.0.0.1, select_server from 127.0.0.2" {
    run --separate-stderr "$SCRIPT" 3>&-
    assert_success
    assert_equal "$stderr" ''
    all=$output
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. Two UDP echo servers, both on the wildcard address 0.0.0.0
== 2. 127.0.0.2 is this machine too
== 3. Ask both servers on 127.0.0.1
== 4. Ask both servers on 127.0.0.2
== 5. Where the replies come from: an unconnected socket takes any reply
== What it shows"
    naive=$(sed -n 's/^    naive | listening on 0\.0\.0\.0:\([0-9]*\) (udp)$/\1/p' <<<"$output")
    ours=$(sed -n 's/^    ours  | listening on 0\.0\.0\.0:\([0-9]*\) (tcp, udp)$/\1/p' <<<"$output")
    [[ $naive =~ ^[0-9]+$ && $ours =~ ^[0-9]+$ ]]
    # Step 3: both answer on 127.0.0.1; step 4: only ours on 127.0.0.2.
    run sed -n '/^== 3\./,/^== 5\./p' <<<"$all"
    assert_equal "$(grep -c '^    (exit status 0)$' <<<"$output")" 3
    assert_line "    select_client: no reply from 127.0.0.2:$naive to any of 1 datagram within 1s"
    assert_line "    (exit status 2)"
    # Step 5: who really answered.
    run sed -n '/^== 5\./,/^== What/p' <<<"$all"
    assert_line "    sent to 127.0.0.2:$naive, reply from 127.0.0.1:$naive"
    assert_line "    sent to 127.0.0.2:$ours, reply from 127.0.0.2:$ours"
}

@test "12-udp-reply-address.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$LAB/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/12-udp-reply-address.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "12-udp-reply-address.sh: ./select_server is missing: run make first (make all lab/naive_udp_echo)"
}

@test "12-udp-reply-address.sh without python3 says which package to install" {
    # A PATH with only what the script needs before its check.
    mkdir "$BATS_TEST_TMPDIR/bin"
    ln -s "$(command -v bash)" "$(command -v dirname)" "$BATS_TEST_TMPDIR/bin/"

    run --separate-stderr env PATH="$BATS_TEST_TMPDIR/bin" "$SCRIPT" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "12-udp-reply-address.sh: 'python3' not found: install python3 (apt-get install python3)"
}
