# lab_17_binary_data.bats - experiment 17: bytes received from a socket
# are not a C string.  lab/bug_strlen_client reads every byte of each echo
# but prints it with printf("%s"): a NUL byte ends the output there, and a
# short echo is followed by the tail of an earlier, longer one still in the
# buffer.  select_client writes exactly the bytes it received, all 256
# byte values included.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
BUG_CLIENT=$LAB/bug_strlen_client
SCRIPT=$LAB/17-binary-data.sh

# all_byte_values FILE - the 256 byte values, 0 to 255, in order.
all_byte_values() {
    local i octal
    for ((i = 0; i < 256; i++)); do
        printf -v octal '%03o' "$i"
        printf '%b' "\\0$octal"
    done >"$1"
}

# hex FILE - FILE's bytes in hex, on one line: NUL bytes survive bash.
hex() {
    od -An -tx1 -v "$1" | tr -s ' \n' ' '
}

# through COMMAND... - send $IN through the client COMMAND (127.0.0.1 and
# the port come after it) to the echo server; what it printed is in $OUT,
# its status in STATUS, its stderr in ERR.
through() {
    STATUS=0
    timeout "$WAIT_LIMIT" "$@" 127.0.0.1 "$PORT" <"$IN" >"$OUT" \
        2>"$BATS_TEST_TMPDIR/err" || STATUS=$?
    ERR=$(cat "$BATS_TEST_TMPDIR/err")
}

@test "bug_strlen_client: the echo of hello\\0world\\n prints as the 5 bytes before the NUL" {
    start_server -b 127.0.0.1
    printf 'hello\0world\n' >"$IN"

    through "$BUG_CLIENT"

    assert_equal "$STATUS" 0
    assert_equal "$ERR" ''
    assert_equal "$(hex "$OUT")" "$(printf hello | od -An -tx1 | tr -s ' \n' ' ')"
}

@test "bug_strlen_client: after a long line, a short echo drags in the rest of the long one" {
    start_server -b 127.0.0.1
    printf 'message number one\ntwo\n' >"$IN"

    through "$BUG_CLIENT"

    assert_equal "$STATUS" 0
    run cat "$OUT"
    assert_output "message number one
two
age number one"
}

@test "bug_strlen_client: of the 256 byte values only 11 to 255 come out" {
    start_server -b 127.0.0.1
    all_byte_values "$IN"

    through "$BUG_CLIENT"

    # Byte 10 is '\n': the first line is bytes 0 to 10, and it starts
    # with a NUL, so it prints as nothing; the second has no NUL at all.
    assert_equal "$STATUS" 0
    assert_equal "$(wc -c <"$OUT")" 245
    tail -c 245 "$IN" >"$BATS_TEST_TMPDIR/expected"
    cmp "$BATS_TEST_TMPDIR/expected" "$OUT"
}

@test "select_client: every echo comes out exactly as it was sent, NULs and all 256 values" {
    start_server -b 127.0.0.1
    for input in 'hello\0world\n' 'message number one\ntwo\n' all; do
        if [[ $input == all ]]; then
            all_byte_values "$IN"
        else
            printf '%b' "$input" >"$IN"
        fi

        through "$CLIENT" -q

        assert_equal "$STATUS" 0
        assert_equal "$ERR" ''
        cmp "$IN" "$OUT"
    done
    assert_equal "$(wc -c <"$OUT")" 256
}

@test "17-binary-data.sh shows the truncation at the NUL, the stale tail and 245 of 256 bytes" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. The flaw, in lab/bug_strlen_client.c
== 2. Start select_server, which echoes every byte it receives
== 3. A NUL byte in the middle of a line
== 4. A long line, then a short one
== 5. All 256 byte values, 0 to 255, in one file
== What it shows"
    # Step 3: select_client prints 12 bytes, the buggy client 5.
    assert_line '    12 bytes:   h   e   l   l   o  \0   w   o   r   l   d  \n'
    assert_line '    5 bytes:   h   e   l   l   o'
    # Step 4: the stale tail, printed by the buggy client only.
    assert_equal "$(grep -c '^    age number one$' <<<"$output")" 1
    # Step 5.
    assert_line '    identical: 256 bytes'
    assert_line '    all256 echo differ: byte 1, line 1'
    assert_line '    245 bytes, the first four: 11 12 13 14'
}

@test "17-binary-data.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$LAB/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/17-binary-data.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "17-binary-data.sh: ./select_server is missing: run make first (make all lab/bug_strlen_client)"
}
