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

# join NAME - connect NAME as an idle select_client and wait until the
# server has accepted it.  Sets NAME_ID to "fd N 127.0.0.1:PORT", the
# identity the server gives NAME, found from the address the client itself
# reports ("connected to SERVER from LOCAL").
join() {
    local name=$1 local_addr fd
    start_idle_client "$name"
    wait_for "$name to connect" grep -q '^connected to ' "$BATS_TEST_TMPDIR/$name.err"
    local_addr=$(sed -n 's/^connected to .* from //p' "$BATS_TEST_TMPDIR/$name.err")
    wait_for "$name in the server log" accepted "$local_addr"
    fd=$(awk -v a="$local_addr" '$1 == "accepted" && $2 == a { print $5 }' "$SERVER_OUT")
    [[ $fd =~ ^[0-9]+$ ]]
    printf -v "${name}_ID" 'fd %s %s' "$fd" "$local_addr"
}

# accepted ADDR - the server has logged accepting a client from ADDR.
accepted() {
    awk -v a="$1" '$1 == "accepted" && $2 == a { found = 1 } END { exit !found }' "$SERVER_OUT"
}

# says NAME TEXT - NAME types a line.
says() {
    local fd=${1}_FD
    printf '%s\n' "$2" >&"${!fd}"
}

# heard NAME LINE - true once NAME has received exactly LINE.
heard() {
    grep -qxF -- "$2" "$BATS_TEST_TMPDIR/$1.out"
}

# received NAME - everything NAME has been sent so far.
received() {
    cat "$BATS_TEST_TMPDIR/$1.out"
}

@test "a line reaches every OTHER client as '[fd N PEER] text', and the server console" {
    join alice
    join bob
    join carol

    says alice 'hello everyone'
    wait_for "bob to hear alice" heard bob "[$alice_ID] hello everyone"
    wait_for "carol to hear alice" heard carol "[$alice_ID] hello everyone"
    # Bob answers.  Alice's stream is in order, so once she has Bob's line,
    # her own line would have arrived before it if it had been sent to her.
    says bob 'hi alice'
    wait_for "alice to hear bob" heard alice "[$bob_ID] hi alice"
    wait_for "carol to hear bob" heard carol "[$bob_ID] hi alice"

    run received alice
    assert_output "*** $bob_ID joined (2 clients)
*** $carol_ID joined (3 clients)
[$bob_ID] hi alice"
    run received bob
    assert_output "*** $carol_ID joined (3 clients)
[$alice_ID] hello everyone"
    run received carol
    assert_output "[$alice_ID] hello everyone
[$bob_ID] hi alice"
    grep -xF "[$alice_ID] hello everyone" "$SERVER_OUT"
    grep -xF "[$bob_ID] hi alice" "$SERVER_OUT"
}

@test "joining and leaving are announced to the others, with the client count" {
    join alice
    join bob
    wait_for "alice to see bob join" heard alice "*** $bob_ID joined (2 clients)"

    # Bob ends his input: his client half-closes, the server closes him.
    exec {bob_FD}>&-
    wait_for "alice to see bob leave" heard alice "*** $bob_ID left: eof (1 client)"
    wait_exit 5 "$bob_PID"
    assert_equal "$EXIT_STATUS" 0

    run received alice
    assert_output "*** $bob_ID joined (2 clients)
*** $bob_ID left: eof (1 client)"
    run received bob
    assert_output ''
    grep -xF "closed $bob_ID: eof (clients: 1)" "$SERVER_OUT"
}

@test "control bytes arrive escaped as \\x1b; tab and UTF-8 text pass unchanged" {
    join alice
    join bob

    printf 'red \x1b[31m bell \x07 del \x7f cr \r here\ttab h\xc3\xa9llo \xe2\x9c\x93 bad \xff\n' \
        >&"$alice_FD"
    # A CR just before the newline (telnet, nc -C) is line ending, not text.
    printf 'crlf line\r\n' >&"$alice_FD"

    local expected="[$alice_ID] red \\x1b[31m bell \\x07 del \\x7f cr \\x0d here"$'\t'"tab héllo ✓ bad \\xff"
    wait_for "bob to hear the crlf line" heard bob "[$alice_ID] crlf line"
    run received bob
    assert_output "$expected
[$alice_ID] crlf line"
    grep -xF -- "$expected" "$SERVER_OUT"
}

@test "a line over 4096 bytes is refused with a notice; its sender stays and can talk" {
    join alice
    join bob

    printf '%04097d\n' 0 >&"$alice_FD"
    wait_for "alice's notice" heard alice '*** line too long (over 4096 bytes): not sent'
    says alice 'short line after the long one'
    wait_for "bob to hear the short line" heard bob "[$alice_ID] short line after the long one"

    run received alice
    assert_output "*** $bob_ID joined (2 clients)
*** line too long (over 4096 bytes): not sent"
    run received bob
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

    says alice "$line"
    wait_for "bob to hear the 4096-byte line" heard bob "[$alice_ID] $line"
    # Bob answers; if Alice had been sent a notice, it would come first.
    says bob 'got it'
    wait_for "alice to hear bob" heard alice "[$bob_ID] got it"

    run received alice
    assert_output "*** $bob_ID joined (2 clients)
[$bob_ID] got it"
    run received bob
    assert_output "[$alice_ID] $line"
}
