# chat.bats - in chat mode the server stops echoing and starts relaying:
# it cuts the byte stream into lines, labels each line with who sent it,
# and queues it for every other client.  Text from strangers must not be
# able to drive a terminal, so control bytes arrive escaped; a line that
# is too long is refused, and its sender is told why and stays connected.

load test_helper

setup() {
    # Bound to IPv4 loopback, peers print as plain 127.0.0.1:PORT.
    start_server --mode chat --bind 127.0.0.1
}

# join NAME - NAME connects as an idle select_client; once the server has
# accepted it, NAME_ID is "fd N 127.0.0.1:PORT", the identity the server
# gives NAME in what it relays.
join() {
    local cfd=${1}_CFD peer=${1}_PEER
    connect_idle "$1"
    printf -v "${1}_ID" 'fd %s %s' "${!cfd}" "${!peer}"
}

@test "a line reaches every OTHER client as '[fd N PEER] text', and the server console" {
    join alice
    join bob
    join carol

    types alice 'hello everyone'
    wait_for "bob to hear alice" client_got bob "[$alice_ID] hello everyone"
    wait_for "carol to hear alice" client_got carol "[$alice_ID] hello everyone"
    # Bob answers.  Alice's stream is in order, so once she has Bob's line,
    # her own line would have arrived before it if it had been sent to her.
    types bob 'hi alice'
    wait_for "alice to hear bob" client_got alice "[$bob_ID] hi alice"
    wait_for "carol to hear bob" client_got carol "[$bob_ID] hi alice"

    run stdout_of alice
    assert_output "*** $bob_ID joined (2 clients)
*** $carol_ID joined (3 clients)
[$bob_ID] hi alice"
    run stdout_of bob
    assert_output "*** $carol_ID joined (3 clients)
[$alice_ID] hello everyone"
    run stdout_of carol
    assert_output "[$alice_ID] hello everyone
[$bob_ID] hi alice"
    grep -xF "[$alice_ID] hello everyone" "$SERVER_OUT"
    grep -xF "[$bob_ID] hi alice" "$SERVER_OUT"
}

@test "joining and leaving are announced to the others, with the client count" {
    join alice
    join bob
    join carol
    wait_for "bob to see carol join" client_got bob "*** $carol_ID joined (3 clients)"

    # Bob ends his input: his client half-closes, the server closes him.
    end_input bob
    wait_for "alice to see bob leave" client_got alice "*** $bob_ID left: eof (2 clients)"
    wait_for "carol to see bob leave" client_got carol "*** $bob_ID left: eof (2 clients)"
    wait_exit 5 "$bob_PID"
    assert_equal "$EXIT_STATUS" 0

    run stdout_of alice
    assert_output "*** $bob_ID joined (2 clients)
*** $carol_ID joined (3 clients)
*** $bob_ID left: eof (2 clients)"
    run stdout_of bob
    assert_output "*** $carol_ID joined (3 clients)"
    run stdout_of carol
    assert_output "*** $bob_ID left: eof (2 clients)"
    grep -xF "closed $bob_ID: eof (clients: 2)" "$SERVER_OUT"
}

@test "control bytes arrive escaped as \\x1b; tab and UTF-8 text pass unchanged" {
    join alice
    join bob

    printf 'red \x1b[31m bell \x07 del \x7f cr \r here\ttab h\xc3\xa9llo \xe2\x9c\x93 bad \xff\n' \
        >&"$alice_FD"
    # A CR just before the newline (telnet, nc -C) is line ending, not text.
    printf 'crlf line\r\n' >&"$alice_FD"

    local expected="[$alice_ID] red \\x1b[31m bell \\x07 del \\x7f cr \\x0d here"$'\t'"tab héllo ✓ bad \\xff"
    wait_for "bob to hear the crlf line" client_got bob "[$alice_ID] crlf line"
    run stdout_of bob
    assert_output "$expected
[$alice_ID] crlf line"
    grep -xF -- "$expected" "$SERVER_OUT"
}

@test "a line over 4096 bytes is refused with a notice; its sender stays and can talk" {
    join alice
    join bob

    printf '%04097d\n' 0 >&"$alice_FD"
    wait_for "alice's notice" client_got alice '*** line too long (over 4096 bytes): not sent'
    types alice 'short line after the long one'
    wait_for "bob to hear the short line" client_got bob "[$alice_ID] short line after the long one"

    run stdout_of alice
    assert_output "*** $bob_ID joined (2 clients)
*** line too long (over 4096 bytes): not sent"
    run stdout_of bob
    assert_output "[$alice_ID] short line after the long one"
    is_running "$alice_PID"
    run count_lines '0000000000' "$SERVER_OUT"
    assert_output 0
}

@test "a line of exactly 4096 bytes is relayed whole" {
    local line
    join alice
    join bob
    printf -v line '%04096d' 0

    types alice "$line"
    wait_for "bob to hear the 4096-byte line" client_got bob "[$alice_ID] $line"
    # Bob answers; if Alice had been sent a notice, it would come first.
    types bob 'got it'
    wait_for "alice to hear bob" client_got alice "[$bob_ID] got it"

    run stdout_of alice
    assert_output "*** $bob_ID joined (2 clients)
[$bob_ID] got it"
    run stdout_of bob
    assert_output "[$alice_ID] $line"
}

@test "100 lines read at once reach each other client in one send(), not 100" {
    # The lines are queued for every other client while the pass lasts and
    # sent at its end: a send() per line per client would cost clients x
    # lines system calls, and a burst of lines would stall everyone.
    join alice
    join bob
    start_bg "$BATS_TEST_TMPDIR/strace" strace -p "$SERVER_PID" -e trace=sendto \
        -o "$BATS_TEST_TMPDIR/sendto"
    strace_PID=$BG_PID
    wait_for "strace to attach" grep -q 'attached' "$BATS_TEST_TMPDIR/strace.err"
    for i in $(seq 100); do echo "line $i"; done >"$IN"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <"$IN"
    assert_success
    wait_for "alice to get all 100 lines" grep -q '\] line 100$' "$BATS_TEST_TMPDIR/alice.out"
    wait_for "bob to get all 100 lines" grep -q '\] line 100$' "$BATS_TEST_TMPDIR/bob.out"
    kill -INT "$strace_PID"
    wait_exit "$WAIT_LIMIT" "$strace_PID"

    assert_equal "$(grep -c '\] line ' "$BATS_TEST_TMPDIR/alice.out")" 100
    assert_equal "$(grep -c '\] line ' "$BATS_TEST_TMPDIR/bob.out")" 100
    # Only the sends that carried relayed lines: at most two per receiver.
    run grep -c 'sendto([0-9]*, "\[fd ' "$BATS_TEST_TMPDIR/sendto"
    (( output >= 2 && output <= 4 ))
}

# arrival_of LINE - when the slow reader got LINE (microseconds of the
# wall clock, as testpeer slowread prints it).
arrival_of() {
    awk -v line="$1" '{ t = $1; sub(/^[0-9]+ /, "") } $0 == line { print t; exit }' \
        "$BATS_TEST_TMPDIR/reader.out"
}

@test "a flood of 1 MB of empty lines slows only its sender: a 40 KB/s reader stays, others' lines arrive within 1 s" {
    # A slow but honest reader: 40 KB/s, for 6 s.
    start_bg "$BATS_TEST_TMPDIR/reader" "$PEER" slowread 127.0.0.1 "$PORT" 40000 6
    reader_PID=$BG_PID
    wait_accepts 1
    # The flooder: a million newlines, each a line of its own, never reading.
    start_bg "$BATS_TEST_TMPDIR/flood" "$PEER" newlines 127.0.0.1 "$PORT" 1000000
    wait_accepts 2
    accepted_as flood
    join talker

    # Someone chatting normally, a line every half second.
    local i sent=()
    for i in 1 2 3 4 5 6; do
        types talker "talk $i"
        sent[i]=$(now_us)
        sleep 0.5
    done

    wait_exit 10 "$reader_PID"
    run tail -n 1 "$BATS_TEST_TMPDIR/reader.out"
    assert_output --regexp '^still connected after 6 s, [0-9]+ bytes read$'
    assert_equal "$EXIT_STATUS" 0
    for i in 1 2 3 4 5 6; do
        got=$(arrival_of "[$talker_ID] talk $i")
        [[ -n $got ]] || fail "the reader never got 'talk $i'"
        ((got - sent[i] < 1000000)) ||
            fail "'talk $i' took $(((got - sent[i]) / 1000)) ms to reach the reader"
    done
    # Past its burst the flooder is over budget: not read, the rest of its
    # million lines wait in the kernel.  The console is spared them too:
    # it got about the burst (200 lines) and 20 a second.
    assert listed_as "$flood_CFD" throttled
    (($(count_lines "^\\[fd $flood_CFD " "$SERVER_OUT") < 600))
    run cat "$SERVER_ERR"
    assert_output ""
}
