# echo.bats - the echo server returns every byte it is sent, in order, to
# the client that sent it: text or binary, a few bytes or 20 MiB, over IPv4
# or IPv6, to several clients at once - all from one process and one thread,
# because one select() loop does the waiting for all of them.

load test_helper

@test "select_client in batch mode gets its lines back, then exits 0 when the server closes" {
    start_server
    printf 'first line\nsecond line\n' >"$IN"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <"$IN"

    assert_success
    assert_output $'first line\nsecond line'
    assert_equal "$stderr" ''
    # An IPv4 client of the dual-stack listener appears as ::ffff:127.0.0.1;
    # it half-closed after its input, so the server closed it for "eof".
    wait_for "the close in the log" server_says '^closed fd'
    grep -xE 'accepted \[::ffff:127\.0\.0\.1\]:[0-9]+ on fd [0-9]+ \(clients: 1\)' "$SERVER_OUT"
    grep -xE 'closed fd [0-9]+ \[::ffff:127\.0\.0\.1\]:[0-9]+: eof \(clients: 0\)' "$SERVER_OUT"
}

@test "nc -N sends its input, half-closes, and reads the echo until the server closes" {
    start_server
    printf 'hello from netcat\nsecond line\n' >"$IN"

    run --separate-stderr timeout "$WAIT_LIMIT" nc -N 127.0.0.1 "$PORT" <"$IN"

    assert_success
    assert_output $'hello from netcat\nsecond line'
    assert_equal "$stderr" ''
}

@test "echo is binary-safe: all 256 byte values come back unchanged" {
    local i
    start_server
    for ((i = 0; i < 256; i++)); do
        printf "\\$(printf '%03o' "$i")"
    done >"$IN"
    [[ $(stat -c %s "$IN") -eq 256 ]]

    timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <"$IN" >"$OUT"

    cmp "$IN" "$OUT"
}

@test "20 MiB of random bytes come back intact (sha256) through buffers and backpressure" {
    start_server
    head -c $((20 * 1024 * 1024)) /dev/urandom >"$IN"

    timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <"$IN" >"$OUT"

    [[ $(stat -c %s "$OUT") -eq $((20 * 1024 * 1024)) ]]
    [[ $(sha256sum <"$OUT") == "$(sha256sum <"$IN")" ]]
    wait_for "the close in the log" server_says '^closed fd'
    grep -xE 'closed fd [0-9]+ [^ ]+: eof \(clients: 0\)' "$SERVER_OUT"
}

@test "three clients at once are served by ONE process with ONE thread" {
    start_server
    start_idle_client alice -q
    start_idle_client bob -q
    start_idle_client carol -q
    wait_for "three clients in the log" server_says '\(clients: 3\)$'

    # Each one is answered while all three stay connected.
    types alice 'from alice'
    types bob 'from bob'
    types carol 'from carol'
    wait_for "alice's echo" client_got alice 'from alice'
    wait_for "bob's echo" client_got bob 'from bob'
    wait_for "carol's echo" client_got carol 'from carol'
    assert_equal "$(stdout_of alice)" 'from alice'
    assert_equal "$(stdout_of bob)" 'from bob'
    assert_equal "$(stdout_of carol)" 'from carol'

    # No thread per client, no fork per client: select() waits for them all.
    grep -x $'Threads:\t1' "/proc/$SERVER_PID/status"
    local tasks=("/proc/$SERVER_PID/task/"*)
    assert_equal "${#tasks[@]}" 1
    run ps -o pid= --ppid "$SERVER_PID"
    assert_output ''
    console list
    wait_for "the client list" server_says '^\(3 clients\)$'
}

@test "-p 0: the kernel picks a free port, and the listening line names the real one" {
    start_server

    [[ $PORT -gt 0 && $PORT -le 65535 ]]
    assert_equal "$(head -n 1 "$SERVER_OUT")" "listening on [::]:$PORT (tcp, udp)"
    # ss agrees: that port, and only that one, is where this PID listens.
    run ports_of tcp "$SERVER_PID"
    assert_output "$PORT"
}

@test "--bind ::1 listens on IPv6 loopback only: nc and select_client -6 echo, IPv4 is refused" {
    start_server --bind ::1
    assert_equal "$(head -n 1 "$SERVER_OUT")" "listening on [::1]:$PORT (tcp, udp)"

    run --separate-stderr timeout "$WAIT_LIMIT" nc -N ::1 "$PORT" <<<'over IPv6 with nc'
    assert_success
    assert_output 'over IPv6 with nc'

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -6 ::1 "$PORT" <<<'over IPv6 with select_client'
    assert_success
    assert_output 'over IPv6 with select_client'
    grep -xE 'accepted \[::1\]:[0-9]+ on fd [0-9]+ \(clients: 1\)' "$SERVER_OUT"

    # Bound to one IPv6 address, the server is not there on 127.0.0.1.
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -4 127.0.0.1 "$PORT" </dev/null
    assert_failure 2
    assert_output ''
    assert_regex "$stderr" 'connection refused'
}

@test "--bind 127.0.0.1 listens on IPv4 loopback only: clients appear as plain IPv4" {
    start_server --bind 127.0.0.1
    assert_equal "$(head -n 1 "$SERVER_OUT")" "listening on 127.0.0.1:$PORT (tcp, udp)"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <<<'over IPv4'
    assert_success
    assert_output 'over IPv4'
    grep -xE 'accepted 127\.0\.0\.1:[0-9]+ on fd [0-9]+ \(clients: 1\)' "$SERVER_OUT"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -6 ::1 "$PORT" </dev/null
    assert_failure 2
    assert_output ''
    assert_regex "$stderr" 'connection refused'
}

@test "an echo that spans two reads is not held back by Nagle's algorithm" {
    # With --read-size 16384 a 20000-byte message is read and sent back in
    # two pieces.  Were Nagle's algorithm on, the second, small piece would
    # wait for the client to acknowledge the first, and the client delays
    # its ACK by 40 ms: at most 12 round trips in half a second.  With
    # TCP_NODELAY each takes well under a millisecond.
    start_server -q --read-size 16384
    run --separate-stderr "$BATS_TEST_DIRNAME/../bench/loadgen" pingpong -c 1 -m 20000 -d 0.5 127.0.0.1 "$PORT"
    assert_success
    [[ $output =~ \ round_trips=([0-9]+)\  ]]
    (( BASH_REMATCH[1] >= 100 ))
}
