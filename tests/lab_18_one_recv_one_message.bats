# lab_18_one_recv_one_message.bats - experiment 18: one recv() is not one
# message.  lab/bug_one_recv numbers each line a client sends, but takes
# every recv() for one line: three lines that wait together in its socket
# get one answer, and a line that arrives in two pieces gets two.  With
# --fixed it keeps what it receives until a line is complete, and the same
# bytes get one answer per line.  Sent a line at a time, with each answer
# awaited, both look right: the bug needs timing to show.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
BUG_SERVER=$LAB/bug_one_recv
SCRIPT=$LAB/18-one-recv-one-message.sh

# connect_tcp - this shell opens a connection to the server (CONN) and the
# server accepts it.  Each `printf ... >&"$CONN"` is exactly one write().
# Sets RECVS, the number of recv()s the server has logged so far.
connect_tcp() {
    local n
    n=$(count_lines '^accepted ' "$SERVER_OUT")
    RECVS=$(count_lines ': recv\(\) returned ' "$SERVER_OUT")
    exec {CONN}<>"/dev/tcp/127.0.0.1/$PORT"
    hold "$CONN"
    wait_accepts $((n + 1))
}

# one_more_recv - wait until the server has logged one more recv().
one_more_recv() {
    RECVS=$((RECVS + 1))
    wait_for "recv() number $RECVS" says_times "$RECVS" ': recv\(\) returned '
}

# stopped PID - the process is stopped (state T).
stopped() {
    [[ $(ps -o stat= -p "$1") == T* ]]
}

# unread BYTES - the server's end of the connection holds BYTES unread.
unread() {
    [[ $(ss -Htn state established "( sport = :$PORT )" | awk '{ print $1 }') == "$1" ]]
}

# three_lines_while_frozen - with the server stopped, three lines in
# three writes; then it runs again and reads.
three_lines_while_frozen() {
    kill -STOP "$SERVER_PID"
    wait_for "the server to stop" stopped "$SERVER_PID"
    printf 'one\n' >&"$CONN"
    printf 'two\n' >&"$CONN"
    printf 'three\n' >&"$CONN"
    wait_for "14 bytes in the server's socket" unread 14
    kill -CONT "$SERVER_PID"
    one_more_recv
}

# one_line_in_two_pieces - "hel", read by the server, then "lo\n".
one_line_in_two_pieces() {
    printf 'hel' >&"$CONN"
    one_more_recv
    printf 'lo\n' >&"$CONN"
    one_more_recv
}

# answers_until_end - write "end", then read answers up to the one to it,
# one line each in ANSWERS.
answers_until_end() {
    local line i
    printf 'end\n' >&"$CONN"
    ANSWERS=()
    for ((i = 0; i < 20; i++)); do
        read -r -t "$WAIT_LIMIT" -u "$CONN" line
        ANSWERS+=("$line")
        [[ ! $line =~ ^[0-9]+:\ end$ ]] || return 0
    done
    return 1
}

@test "bug_one_recv: three lines that arrive together come out of one recv() and get one answer" {
    start_plain_server bug "$BUG_SERVER"
    connect_tcp

    three_lines_while_frozen
    answers_until_end

    run printf '%s\n' "${ANSWERS[@]}"
    assert_output "1: one
two
three
2: end"
    run grep ': recv() ' "$SERVER_OUT"
    assert_output --regexp '^fd [0-9]+: recv\(\) returned 14 bytes: "one\\ntwo\\nthree\\n"
fd [0-9]+: recv\(\) returned 4 bytes: "end\\n"$'
}

@test "bug_one_recv: a line written in two pieces comes out of two recv()s and gets two answers" {
    start_plain_server bug "$BUG_SERVER"
    connect_tcp

    one_line_in_two_pieces
    answers_until_end

    run printf '%s\n' "${ANSWERS[@]}"
    assert_output "1: hel
2: lo
3: end"
}

@test "bug_one_recv --fixed: the same bytes get one answer per line" {
    start_plain_server fixed "$BUG_SERVER" --fixed
    connect_tcp

    three_lines_while_frozen
    answers_until_end
    run printf '%s\n' "${ANSWERS[@]}"
    assert_output "1: one
2: two
3: three
4: end"
    # The very recv() the buggy server answers once.
    run grep -c ': recv() returned 14 bytes: "one\\ntwo\\nthree\\n"$' "$SERVER_OUT"
    assert_output 1

    release "$CONN"
    wait_for "the close" server_says '^closed '
    connect_tcp
    one_line_in_two_pieces
    answers_until_end
    run printf '%s\n' "${ANSWERS[@]}"
    assert_output "1: hello
2: end"
}

@test "bug_one_recv: a line at a time, each answer awaited, it looks right" {
    start_plain_server bug "$BUG_SERVER"
    connect_tcp

    ANSWERS=()
    for word in one two three; do
        printf '%s\n' "$word" >&"$CONN"
        read -r -t "$WAIT_LIMIT" -u "$CONN" line
        ANSWERS+=("$line")
    done

    run printf '%s\n' "${ANSWERS[@]}"
    assert_output "1: one
2: two
3: three"
}

@test "18-one-recv-one-message.sh: one answer for three lines, two for one, then the fix" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    all=$output
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. The flaw, in lab/bug_one_recv.c
== 2. bug_one_recv: three lines arrive while the server is busy
== 3. bug_one_recv: one line, written in two pieces
== 4. The same two clients against bug_one_recv --fixed
== What it shows"
    run sed -n '/^== 2\./,/^== 3\./p' <<<"$all"
    assert_line --regexp '^    ESTAB 14 +0 '
    assert_line --regexp '^    server \| fd [0-9]+: recv\(\) returned 14 bytes: "one\\ntwo\\nthree\\n"$'
    assert_equal "$(grep '^    client | ' <<<"$output")" "    client | 1: one
    client | two
    client | three
    client | 2: end"
    run sed -n '/^== 3\./,/^== 4\./p' <<<"$all"
    assert_equal "$(grep '^    client | ' <<<"$output")" "    client | 1: hel
    client | 2: lo
    client | 3: end"
    run sed -n '/^== 4\./,/^== What/p' <<<"$all"
    assert_equal "$(grep '^    client | ' <<<"$output")" "    client | 1: one
    client | 2: two
    client | 3: three
    client | 4: end
    client | 1: hello
    client | 2: end"
}

@test "bug_one_recv: -h names --fixed; a bad option or port is one line, exit 1" {
    run --separate-stderr "$BUG_SERVER" -h
    assert_success
    assert_output "usage: bug_one_recv [--fixed] [-p PORT]   (default 9877, 0 = kernel chooses)"
    run --separate-stderr "$BUG_SERVER" --fix
    assert_failure 1
    assert_equal "$stderr" "bug_one_recv: unexpected argument '--fix' (usage: bug_one_recv [--fixed] [-p PORT])"
    run --separate-stderr "$BUG_SERVER" --fixed -p x
    assert_failure 1
    assert_equal "$stderr" "bug_one_recv: invalid port 'x' (expected 0-65535)"
}

@test "18-one-recv-one-message.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$LAB/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/18-one-recv-one-message.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "18-one-recv-one-message.sh: ./lab/bug_one_recv is missing: run make first (make lab/bug_one_recv)"
}
