# lab_05_byte_order.bats - experiment 5: a port must be stored in network
# byte order.  lab/byteorder forgets htons(), so on a little-endian machine
# the kernel binds the port with its two bytes swapped (9877 = 0x2695
# becomes 0x9526 = 38182): bind() succeeds, getsockname() and ss show the
# swapped port, and a client dialling the intended port is refused.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
BYTEORDER=$LAB/byteorder
SCRIPT=$LAB/05-byte-order.sh

# swap16 N - N with its two bytes exchanged.
swap16() {
    echo $(((($1 & 0xff) << 8) | ($1 >> 8)))
}

# port_free N - no TCP socket of any state uses local port N.
port_free() {
    [[ -z $(ss -Htan "sport = :$1") ]]
}

# started_or_failed - lab/byteorder printed its listening line, or exited.
started_or_failed() {
    grep -q '^listening on ' "$BATS_TEST_TMPDIR/byteorder.out" || ! is_running "$BG_PID"
}

# start_byteorder - lab/byteorder on a port that is free and whose byte
# swap is free, different and unprivileged; a bind that loses a race moves
# on to another port.  Sets ASKED, SWAPPED and BYTEORDER_PID.
start_byteorder() {
    local try
    for ((try = 0; try < 10; try++)); do
        ASKED=$((20000 + RANDOM % 20000))
        SWAPPED=$(swap16 "$ASKED")
        if ((SWAPPED < 1024 || SWAPPED == ASKED)) || ! port_free "$ASKED" ||
            ! port_free "$SWAPPED"; then
            continue
        fi
        start_bg "$BATS_TEST_TMPDIR/byteorder" "$BYTEORDER" "$ASKED"
        BYTEORDER_PID=$BG_PID
        wait_for "lab/byteorder to start" started_or_failed
        grep -q '^listening on ' "$BATS_TEST_TMPDIR/byteorder.out" && return 0
    done
    echo "no usable port pair in 10 tries" >&2
    return 1
}

@test "byteorder: the port is bound byte-swapped, getsockname() and ss agree" {
    start_byteorder

    run cat "$BATS_TEST_TMPDIR/byteorder.out"
    assert_output "$(printf 'asked for port %d (0x%04x), stored in sin_port without htons()' "$ASKED" "$ASKED")
listening on 127.0.0.1:$SWAPPED (tcp), says getsockname()"
    # The kernel's view: the process listens on the swapped port only.
    run ports_of tcp "$BYTEORDER_PID"
    assert_output "$SWAPPED"
    run ss -Hltn "sport = :$ASKED"
    assert_output ''
}

@test "byteorder: a client dialling the intended port is refused; the swapped port answers" {
    start_byteorder

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" 127.0.0.1 "$ASKED" </dev/null
    assert_failure 2
    assert_output ''
    assert_equal "$stderr" "select_client: connection refused: nothing listening on 127.0.0.1:$ASKED"

    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$SWAPPED" </dev/null
    assert_success
    assert_output "hello from the server that asked for port $ASKED"
}

@test "byteorder: port 0, a word or a second argument is a usage error, exit 1" {
    for args in 0 65536 9877x "9877 1"; do
        # shellcheck disable=SC2086 # split "9877 1" into two arguments
        run --separate-stderr "$BYTEORDER" $args
        assert_failure 1
        assert_output ''
        assert_equal "$stderr" "usage: byteorder [PORT]   (PORT 1-65535, default 9877)"
    done
}

@test "05-byte-order.sh shows the swapped port, the arithmetic, the refusal" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    # The port it asked for (9877, or the next free one) and the one bound.
    line=$(grep -m 1 '^    asked for port ' <<<"$output")
    [[ $line =~ ^\ +asked\ for\ port\ ([0-9]+)\  ]]
    asked=${BASH_REMATCH[1]}
    swapped=$(swap16 "$asked")
    assert_line "    listening on 127.0.0.1:$swapped (tcp), says getsockname()"
    assert_line ">> look: the bound port $swapped is exactly $asked with its two bytes swapped."
    assert_line "    select_client: connection refused: nothing listening on 127.0.0.1:$asked"
    assert_line "    (exit status 2)"
    assert_line "    hello from the server that asked for port $asked"
}

@test "05-byte-order.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$(dirname "$SCRIPT")/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/05-byte-order.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "05-byte-order.sh: ./select_client is missing: run make first (make all lab/byteorder)"
}
