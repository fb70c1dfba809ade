# udp.bats - the same port answers UDP too: each datagram is echoed back to
# its sender as one datagram.  UDP keeps message boundaries, so a datagram
# larger than the read buffer loses its tail (and the server says so),
# while TCP is a byte stream: a small read buffer only means more reads.

load test_helper

# write_halves FILE - 100 bytes: 50 'a' then 50 'b', so a cut shows where.
write_halves() {
    { printf 'a%.0s' {1..50}; printf 'b%.0s' {1..50}; } >"$1"
    [[ $(stat -c %s "$1") -eq 100 ]]
}

@test "each datagram comes back to its sender as one datagram, on the TCP port" {
    start_server
    # The UDP socket is bound to the very port the kernel chose for TCP.
    run ports_of udp "$SERVER_PID"
    assert_output "$PORT"

    # select_client -u sends one datagram per line and prints each reply.
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -u 127.0.0.1 "$PORT" <<<$'ping\nsecond datagram'
    assert_success
    assert_output $'ping\nsecond datagram'

    console stats
    wait_for "the stats line" server_says '^clients: '
    grep -E '; udp datagrams: 2 \(0 truncated, 0 ignored\);' "$SERVER_OUT"
}

@test "nc -u gets its datagram echoed too" {
    start_server

    # -w1: a datagram has no end-of-stream; nc gives up after 1 s of quiet.
    run --separate-stderr timeout "$WAIT_LIMIT" nc -u -w1 127.0.0.1 "$PORT" <<<'datagram from netcat'

    assert_success
    assert_output 'datagram from netcat'
}

@test "--read-size 50: a 100-byte datagram comes back as its first 50 bytes, and the log says truncated" {
    start_server --read-size 50
    write_halves "$IN"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -u 127.0.0.1 "$PORT" <"$IN"

    assert_success
    assert_output "$(printf 'a%.0s' {1..50})"
    wait_for "the truncation notice" server_says 'truncated'
    grep -xE 'udp \[::ffff:127\.0\.0\.1\]:[0-9]+: datagram truncated to 50 bytes \(--read-size 50\)' \
        "$SERVER_OUT"
}

@test "TCP with --read-size 50 still echoes all 100 bytes: a stream has no boundaries" {
    start_server --read-size 50 --trace
    write_halves "$IN"

    timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <"$IN" >"$OUT"

    cmp "$IN" "$OUT"
    # The server needed two reads of 50 bytes for what arrived as one send.
    run count_lines '^fd [0-9]+: read 50 bytes$' "$SERVER_OUT"
    assert_output 2
}

@test "--no-udp: the listening line says (tcp), no UDP socket is bound, and UDP clients are refused" {
    start_server --no-udp

    assert_equal "$(head -n 1 "$SERVER_OUT")" "listening on [::]:$PORT (tcp)"
    run ports_of udp "$SERVER_PID"
    assert_output ''
    run ss -lunH "sport = :$PORT"
    assert_output ''

    # The kernel answers a datagram to a closed port with ICMP "port
    # unreachable", which the client's connected UDP socket sees as refused.
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -u 127.0.0.1 "$PORT" <<<'anyone there?'
    assert_failure 2
    assert_output ''
    assert_regex "$stderr" 'no UDP server'
}

# udp_reply_from SOURCE_ADDR SOURCE_PORT - send one datagram to the
# server from that address and port (nc -s -p), and print any reply.
udp_reply_from() {
    timeout 5 "${IN_NETNS[@]}" nc -u -w1 -s "$1" -p "$2" 127.0.0.1 "$PORT" <<<"looped?" || true
}

@test "a datagram 'from' our own port gets no reply: two echo servers must not answer each other forever" {
    start_server --bind 127.0.0.1
    # Another echo server's address on this host, with our port number.
    run udp_reply_from 127.0.0.2 "$PORT"
    assert_output ""
    # An ordinary client, from an ephemeral port, is still answered.
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -u 127.0.0.1 "$PORT" <<<'plain'
    assert_success
    assert_output plain
    ask stats '^clients: '
    assert_output --regexp '; udp datagrams: 2 \(0 truncated, 1 ignored\);'
}

@test "a datagram from a well-known port below 1024 (echo, chargen, DNS) gets no reply" {
    # Sending from a port below 1024 needs root, or the root of a user
    # namespace in a network namespace of its own.
    if [[ $(id -u) != 0 ]]; then
        own_netns
        SERVER_PREFIX=("${IN_NETNS[@]}")
    fi
    start_server --bind 127.0.0.1
    for port in 7 19 53; do
        run udp_reply_from 127.0.0.1 "$port"
        assert_output ""
    done
    ask stats '^clients: '
    assert_output --regexp '; udp datagrams: 3 \(0 truncated, 3 ignored\);'
}

@test "a datagram sent to 127.0.0.2 is answered from 127.0.0.2 (IPv4-mapped, on the dual-stack socket)" {
    # The server's socket is bound to the wildcard address.  The client
    # sends from 127.0.0.1 (the kernel's choice) to 127.0.0.2; left to
    # itself, the kernel would answer from 127.0.0.1 as well, and the
    # client, connected to 127.0.0.2, would drop that reply.
    start_server
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -u 127.0.0.2 "$PORT" <<<$'to the second address\nand again'
    assert_success
    assert_output $'to the second address\nand again'
    assert_regex "$stderr" "^connected to 127\\.0\\.0\\.2:$PORT from 127\\.0\\.0\\.1:[0-9]+\$"
}

@test "an IPv4-only server (-b 0.0.0.0, IP_PKTINFO) answers 127.0.0.2 from 127.0.0.2 too" {
    start_server --bind 0.0.0.0
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -u 127.0.0.2 "$PORT" <<<'ipv4 only'
    assert_success
    assert_output 'ipv4 only'
}

@test "IPv6 (IPV6_PKTINFO): a datagram to ::1 is answered" {
    start_server
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q -u ::1 "$PORT" <<<'over IPv6'
    assert_success
    assert_output 'over IPv6'
}

@test "--rcvbuf 100000: the kernel doubles what it is asked (socket(7)); the server says so, and ss agrees" {
    start_server --rcvbuf 100000
    run sed -n 2p "$SERVER_OUT"
    assert_output "receive buffer: asked for 100000 bytes, got 200000 (SO_RCVBUF)"
    # ss -m shows a socket's memory; rb is its receive buffer's size.
    run ss -Huamn "sport = :$PORT"
    assert_output --partial "rb200000,"
}
