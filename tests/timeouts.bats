# timeouts.bats - time in a select() loop: the timeout passed to select() is
# the time to the nearest deadline (here: a client's idle timeout), so an
# idle client is closed on time without any polling, a client that keeps
# talking keeps its connection, and with nothing due the loop sleeps until
# something actually happens.

load test_helper

# logged LINE - the server printed exactly this line.
logged() {
    grep -qxF -- "$1" "$SERVER_OUT"
}

# accepted_as NAME - after NAME's "accepted" line: NAME_CFD and NAME_PEER.
accepted_as() {
    local line
    line=$(grep '^accepted ' "$SERVER_OUT" | tail -n 1)
    [[ $line =~ ^accepted\ (.+)\ on\ fd\ ([0-9]+)\ \(clients:\ [0-9]+\)$ ]]
    eval "$1_PEER=\${BASH_REMATCH[1]}; $1_CFD=\${BASH_REMATCH[2]}"
}

# says_times N ERE - at least N lines of the server's stdout match ERE.  A
# function, so that wait_for counts again on every try.
says_times() {
    (($(count_lines "$2" "$SERVER_OUT") >= $1))
}

# connect_idle NAME - start an idle client and wait until the server has
# accepted it (sets NAME_CFD and NAME_PEER).
connect_idle() {
    local n
    n=$(count_lines '^accepted ' "$SERVER_OUT")
    start_idle_client "$1" -q
    wait_for "the server to accept $1" says_times $((n + 1)) '^accepted '
    accepted_as "$1"
}

# ask COMMAND LAST - type COMMAND, wait for the line matching LAST (an ERE
# without '/') that ends its reply; `output` holds the reply.
ask() {
    local mark
    mark=$(wc -l <"$SERVER_OUT")
    console "$1"
    wait_for "the reply to '$1'" printed_since "$mark" "$2"
    run sed -nE "$((mark + 1)),\$ { p; /$2/q }" "$SERVER_OUT"
}

printed_since() {
    tail -n "+$(($1 + 1))" "$SERVER_OUT" | grep -qE -- "$2"
}

# select_calls - the select() call count in the `stats` reply in `output`.
select_calls() {
    sed -n 's/.*; select() calls: \([0-9]*\);.*/\1/p' <<<"$output"
}

# elapsed_ms START - milliseconds since START, a saved $EPOCHREALTIME.
elapsed_ms() {
    echo $(((${EPOCHREALTIME/./} - ${1/./}) / 1000))
}

@test "--idle-timeout 1: a silent client is told why and closed after 1 s, a talking one stays" {
    start_server --idle-timeout 1
    start=$EPOCHREALTIME
    connect_idle quiet
    connect_idle talker
    # The talker sends a line every 0.3 s for 2.4 s: each line restarts its
    # idle clock, so it never goes 1 s without input.
    start_bg "$BATS_TEST_TMPDIR/pacer" bash -c \
        'for i in 1 2 3 4 5 6 7 8; do echo "line $i"; sleep 0.3; done >"$1"' \
        pacer "$BATS_TEST_TMPDIR/talker.in"

    wait_for "the quiet client's close" \
        logged "closed fd $quiet_CFD $quiet_PEER: idle timeout (clients: 1)"
    took=$(elapsed_ms "$start")
    # No earlier than the timeout, and no later than half a second after.
    (( took >= 1000 && took <= 1500 )) || fail "closed after ${took} ms"
    wait_exit 5 "$quiet_PID"
    run cat "$BATS_TEST_TMPDIR/quiet.out"
    assert_output "*** idle timeout: nothing received for 1s, closing"

    # "line 8" goes out 2.1 s after the start: the talker is still there.
    wait_for "the talker's eighth echo" \
        grep -qx "line 8" "$BATS_TEST_TMPDIR/talker.out"
    (( $(elapsed_ms "$start") >= 2000 ))
    ask list '^\([0-9]+ clients?\)$'
    assert_equal "${#lines[@]}" 3
    assert_regex "${lines[1]}" "^$talker_CFD +[^ ]+ +2(\\.[0-9]+)?s +0(\\.[0-9]+)?s +56 +56 +0 +open$"
    assert_equal "${lines[2]}" "(1 client)"
    run grep -c 'idle timeout' "$BATS_TEST_TMPDIR/talker.out"
    assert_output 0
}

@test "without --idle-timeout, quiet clients cost no select() wake-ups at all" {
    start_server --trace
    connect_idle a
    connect_idle b
    connect_idle c
    ask stats '^clients: '
    assert_regex "${lines[-1]}" '^clients: 3 now, '
    before=$(select_calls)

    # Time passing is the point: a loop that polled "just in case" would
    # wake up during this second; ours has no deadline, so it sleeps.
    sleep 1
    ask stats '^clients: '
    # The one wake-up is this stats command itself: stdin became readable.
    assert_equal "$(select_calls)" "$((before + 1))"
    # The trace shows the same: no timeout, and a sleep of the whole second.
    run grep -B1 -E '^-> 1 ready: read=\{0\} write=\{\} after 1(\.[0-9]+)?s$' "$SERVER_OUT"
    assert_equal "${#lines[@]}" 2
    assert_regex "${lines[0]}" '^select\(nfds=[0-9]+, read=\{0,[0-9,-]+\}, write=\{\}, timeout=none\)$'
}

@test "a fractional --idle-timeout such as 0.5 closes a silent client after half a second" {
    start_server --idle-timeout 0.5
    start=$EPOCHREALTIME
    connect_idle quiet
    wait_for "the quiet client's close" \
        logged "closed fd $quiet_CFD $quiet_PEER: idle timeout (clients: 0)"
    took=$(elapsed_ms "$start")
    (( took >= 500 && took <= 1000 )) || fail "closed after ${took} ms"
    wait_exit 5 "$quiet_PID"
    run cat "$BATS_TEST_TMPDIR/quiet.out"
    assert_output "*** idle timeout: nothing received for 0.5s, closing"
}
