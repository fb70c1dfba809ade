# timeouts.bats - time in a select() loop: the timeout passed to select() is
# the time to the nearest deadline (here: a client's idle timeout), so an
# idle client is closed on time without any polling, a client that keeps
# talking keeps its connection, and with nothing due the loop sleeps until
# something actually happens.

load test_helper

# elapsed_ms START - milliseconds since START, a saved $EPOCHREALTIME.
elapsed_ms() {
    echo $(((${EPOCHREALTIME/[.,]/} - ${1/[.,]/}) / 1000))
}

@test "--idle-timeout 1: a silent client is told why and closed after 1 s, a talking one stays" {
    start_server --idle-timeout 1
    # The idle clock starts at the accept, which comes between these two
    # readings of the clock: the first bounds the wait from below, the
    # second from above, however long starting the client takes.
    start=$EPOCHREALTIME
    connect_idle quiet
    accepted=$EPOCHREALTIME
    connect_idle talker
    # The talker sends a line every 0.3 s for 2.4 s: each line restarts its
    # idle clock, so it never goes 1 s without input.
    start_bg "$BATS_TEST_TMPDIR/pacer" bash -c \
        'for i in 1 2 3 4 5 6 7 8; do echo "line $i"; sleep 0.3; done >"$1"' \
        pacer "$BATS_TEST_TMPDIR/talker.in"

    wait_for "the quiet client's close" \
        logged "closed fd $quiet_CFD $quiet_PEER: idle timeout (clients: 1)"
    # No earlier than the timeout, and no later than half a second after.
    (( $(elapsed_ms "$start") >= 1000 )) || fail "closed after $(elapsed_ms "$start") ms"
    (( $(elapsed_ms "$accepted") <= 1500 )) || fail "closed after $(elapsed_ms "$accepted") ms"
    wait_exit 5 "$quiet_PID"
    run stdout_of quiet
    assert_output "*** idle timeout: nothing sent or received for 1s, closing"

    # "line 8" goes out 2.1 s after the start: the talker is still there.
    wait_for "the talker's eighth echo" client_got talker "line 8"
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
    accepted=$EPOCHREALTIME
    wait_for "the quiet client's close" \
        logged "closed fd $quiet_CFD $quiet_PEER: idle timeout (clients: 0)"
    (( $(elapsed_ms "$start") >= 500 )) || fail "closed after $(elapsed_ms "$start") ms"
    (( $(elapsed_ms "$accepted") <= 1000 )) || fail "closed after $(elapsed_ms "$accepted") ms"
    wait_exit 5 "$quiet_PID"
    run stdout_of quiet
    assert_output "*** idle timeout: nothing sent or received for 0.5s, closing"
}

@test "--idle-timeout 1 counts progress both ways: a client throttled, then half-closed while its echo drains, stays" {
    # TCP buffers of 64 KiB at most, as on a real link, so that the echo
    # waits in the server, not in the kernel.
    small_buffers_netns
    SERVER_PREFIX=("${IN_NETNS[@]}")
    start_server --idle-timeout 1
    # 600 KB sent as fast as the server takes it, but its echo read back at
    # only 100 KB/s: the server stops reading us for seconds at a time
    # (throttled), and after our FIN it still has echo to send.  6 s in
    # all, and never 1 s without a byte moving one way or the other.
    run --separate-stderr "${IN_NETNS[@]}" \
        timeout 20 "$PEER" drain 127.0.0.1 "$PORT" 600000 100000
    assert_success
    assert_output --regexp '^sent 600000, received 600000, then EOF after [0-9]+ ms$'
    wait_for "the close" server_says '^closed fd '
    run grep -c ': eof (clients: 0)$' "$SERVER_OUT"
    assert_output 1
    run grep -c 'idle timeout' "$SERVER_OUT"
    assert_output 0
}
