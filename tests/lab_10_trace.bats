# lab_10_trace.bats - experiment 10: select() narrated by --trace.  The
# read set is the console, the self-pipe, the TCP listener and the UDP
# socket, plus one fd per client: it grows as clients arrive and shrinks as
# they leave, and nfds (the highest fd plus one) follows.  The ready sets
# name what woke select(): the listener for a new connection, a client's fd
# for its data and for its EOF.  While nothing is pending the write set is
# empty, and with nothing due the timeout is none: select() just sleeps.  A
# peer that does not read its echo brings its fd into the write set, then
# out of the read set.

load test_helper

SCRIPT=$BATS_TEST_DIRNAME/../lab/10-trace.sh

# last_select - the newest "select(...)" line of the trace.
last_select() {
    grep '^select(' "$SERVER_OUT" | tail -n 1
}

# last_select_is LINE - the newest select() line is exactly LINE.
last_select_is() {
    [[ $(last_select) == "$1" ]]
}

# asleep - the newest line of the trace is a select() call: the server
# waits in it.
asleep() {
    tail -n 1 "$SERVER_OUT" | grep -q '^select('
}

# call_with READ - the select() line for a read set of READ (the fds inside
# the braces), nfds being the highest of them plus one; write set empty.
call_with() {
    local fds=$1 highest
    highest=${fds##*,}
    echo "select(nfds=$((highest + 1)), read={$fds}, write={}, timeout=none)"
}

# read_set_of LINE - the fds of a select() line's read set, e.g. 0,3,5,6.
read_set_of() {
    sed 's/.* read={\([0-9,]*\)}.*/\1/' <<<"$1"
}

# listener_fd - the fd of the server's TCP listener, as ss -p shows it.
listener_fd() {
    ss -Hltnp "( sport = :$PORT )" | sed -n 's/.*fd=\([0-9]*\).*/\1/p'
}

# writes_to FD - a select() call asked about writability of FD.
writes_to() {
    grep -qE "^select\\(.* write=\\{$1\\}" "$SERVER_OUT"
}

# stopped_reading FD - a select() call watches FD for writing, not reading.
stopped_reading() {
    grep '^select(' "$SERVER_OUT" | grep -F "write={$1}" |
        sed 's/.* read={\([0-9,]*\)}.*/,\1,/' | grep -qvF ",$1,"
}

@test "10-trace.sh: the read set grows and shrinks with the clients, the write set appears for a peer that does not read" {
    run --separate-stderr timeout 30 "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    # The first call: read={BASE}, nfds = highest + 1, nothing else.
    first=$(grep -m 1 '^  server | select(' <<<"$output")
    base=$(read_set_of "$first")
    assert_equal "$first" "  server | $(call_with "$base")"
    assert_line "Look at: read={$base} - the descriptors select() watches for input:"
    # Clients a and b, each a new fd in the read set; a leaves, b leaves.
    a=$(sed -n '/^== 2\./,/^== 3\./s/^  server | accepted .* on fd \([0-9]*\) .*/\1/p' <<<"$output")
    b=$(sed -n '/^== 4\./,/^== 5\./s/^  server | accepted .* on fd \([0-9]*\) .*/\1/p' <<<"$output")
    ((a > ${base##*,} && b > a))
    assert_line "  server | $(call_with "$base,$a")"
    assert_line --partial "  server | -> 1 ready: read={$a} write={} after "
    assert_line "  server | fd $a: read 6 bytes"
    assert_line "  server | $(call_with "$base,$a,$b")"
    assert_line "  server | $(call_with "$base,$b")"
    # b leaves: exactly the first call again.
    assert_equal "$(sed -n '/^== 6\./,/^== 7\./p' <<<"$output" | grep -cxF "$first")" 1
    # Idle: not one line in half a second.
    assert_line "  new trace lines in 0.5 s: 0"
    # The peer that does not read: its fd in the write set, then out of
    # the read set, then the RST makes it writable.
    p=$(sed -n '/^== 8\./,/^== 9\./s/^  server | accepted .* on fd \([0-9]*\) .*/\1/p' <<<"$output")
    [[ $p =~ ^[0-9]+$ ]]
    assert_line --regexp "^  server \\| select\\(nfds=[0-9]+, read=\\{[0-9,]*,$p\\}, write=\\{$p\\}, timeout=none\\)\$"
    assert_line --regexp "^  server \\| select\\(nfds=$((p + 1)), read=\\{$base\\}, write=\\{$p\\}, timeout=none\\)\$"
    assert_line --regexp "^  server \\| -> 1 ready: read=\\{\\} write=\\{$p\\} after [0-9.]+s\$"
    assert_line --regexp "^  server \\| closed fd $p 127\\.0\\.0\\.1:[0-9]+: reset \\(clients: 0\\)\$"
    assert_line "  (the server exited with status 0)"
}

@test "10-trace.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$(dirname "$SCRIPT")/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/10-trace.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "10-trace.sh: ./select_server is missing: run make first"
}

@test "the read set gains one fd per client and loses it when the client leaves; nfds follows the highest" {
    start_server --trace
    wait_for "the first select() call" server_says '^select\('
    first=$(last_select)
    base=$(read_set_of "$first")
    assert_equal "$first" "$(call_with "$base")"

    connect_idle a
    wait_for "a in the read set" last_select_is "$(call_with "$base,$a_CFD")"
    connect_idle b
    wait_for "a and b in the read set" last_select_is "$(call_with "$base,$a_CFD,$b_CFD")"
    end_input a
    wait_for "a out of the read set" last_select_is "$(call_with "$base,$b_CFD")"
    end_input b
    wait_for "back to the first call" last_select_is "$first"
}

@test "idle: every select() has an empty write set and timeout=none, and nothing wakes it" {
    start_server --trace
    connect_idle a
    connect_idle b
    types a "hello"
    wait_for "a's echo" client_got a "hello"
    wait_for "the server back in select()" asleep

    run grep -c '^select(' "$SERVER_OUT"
    ((output >= 4))
    run grep '^select(' "$SERVER_OUT"
    refute_line --regexp 'write=\{[0-9]|timeout=[^n]'
    # Half a second of nobody doing anything: not one line more.
    before=$(wc -l <"$SERVER_OUT")
    sleep 0.5
    assert_equal "$(wc -l <"$SERVER_OUT")" "$before"
}

@test "the ready sets name what woke select(): the listener for a connection, the client's fd for its data and its EOF" {
    start_server --trace
    listener=$(listener_fd)
    [[ $listener =~ ^[0-9]+$ ]]

    connect_idle a
    run grep -A 1 '^-> ' "$SERVER_OUT"
    assert_line --index 0 --regexp "^-> 1 ready: read=\\{$listener\\} write=\\{\\} after [0-9.]+s\$"
    assert_line --index 1 "accepted $a_PEER on fd $a_CFD (clients: 1)"

    types a "hello"
    wait_for "a's line read" logged "fd $a_CFD: read 6 bytes"
    run grep -B 1 -x "fd $a_CFD: read 6 bytes" "$SERVER_OUT"
    assert_line --index 0 --regexp "^-> 1 ready: read=\\{$a_CFD\\} write=\\{\\} after [0-9.]+s\$"

    end_input a
    wait_for "a's close" logged "closed fd $a_CFD $a_PEER: eof (clients: 0)"
    run grep -B 1 -xF "closed fd $a_CFD $a_PEER: eof (clients: 0)" "$SERVER_OUT"
    assert_line --index 0 --regexp "^-> 1 ready: read=\\{$a_CFD\\} write=\\{\\} after [0-9.]+s\$"
}

@test "a peer that does not read its echo: its fd enters the write set, then leaves the read set" {
    start_server --trace
    # This shell is the peer; head writes into it, nobody reads the echo.
    exec {peer}<>"/dev/tcp/127.0.0.1/$PORT"
    hold "$peer"
    spawn head -c 64M /dev/zero >&"$peer" 2>/dev/null 3>&- &
    BG_PIDS+=($!)
    wait_accepts 1
    accepted_as p

    wait_for "fd $p_CFD in the write set" writes_to "$p_CFD"
    wait_for "fd $p_CFD out of the read set" stopped_reading "$p_CFD"
    ask list '^\([0-9]+ clients?\)$'
    assert_line --regexp "^$p_CFD .* throttled\$"
}
