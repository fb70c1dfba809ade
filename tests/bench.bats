# bench.bats - the benchmark's instruments measure what they claim.
# bench/loadgen checks every byte it gets back and fails on a wrong one; it
# counts every process of a forking server; its hold mode keeps connections
# until its input ends.  bench/shutdown_latency times select_client leaving
# after each kind of server shutdown.  The figures themselves are never
# asserted here: that is `make bench`'s job, not a timed test's.

load test_helper

BENCH=$BATS_TEST_DIRNAME/../bench
LOADGEN=$BENCH/loadgen
FORK_SERVER=$BATS_TEST_DIRNAME/../lab/fork_server

# held_clients N - the server's `stats` says N clients are connected now.
held_clients() {
    ask stats '^clients: '
    [[ $output == "clients: $1 now,"* ]]
}

@test "loadgen pingpong: every round trip verified, the server's CPU time accounted" {
    start_server -q
    run --separate-stderr "$LOADGEN" pingpong -c 10 -d 0.5 --pid "$SERVER_PID" 127.0.0.1 "$PORT"
    assert_success
    assert_output --regexp '^loadgen mode=pingpong conns=10 active=10 msg=64 secs=0\.5[0-9]* round_trips=[1-9][0-9]* rt_per_s=[0-9]+ p50_us=[0-9]+ p99_us=[0-9]+ max_us=[0-9]+ server_cpu_s=[0-9.]+ cpu_us_per_rt=[0-9.]+ server_procs=1 failures=0 errors=0$'
    assert_equal "$stderr" ""
}

@test "loadgen bulk: 8 MiB streamed through the echo and checked byte for byte" {
    start_server -q
    run --separate-stderr "$LOADGEN" bulk -s 8 127.0.0.1 "$PORT"
    assert_success
    assert_output --regexp '^loadgen mode=bulk mib=8 secs=[0-9.]+ mib_per_s=[0-9.]+ failures=0 errors=0$'
}

@test "loadgen notices a server that changes one byte of the echo" {
    # An echo server that flips the lowest bit of the 100th byte it sees.
    start_bg "$BATS_TEST_TMPDIR/bad" python3 -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
print("listening on 127.0.0.1:%d (tcp)" % s.getsockname()[1], flush=True)
c, _ = s.accept()
seen = 0
while True:
    data = bytearray(c.recv(65536))
    if not data:
        break
    if seen <= 99 < seen + len(data):
        data[99 - seen] ^= 1
    seen += len(data)
    c.sendall(data)
'
    SERVER_OUT=$BATS_TEST_TMPDIR/bad.out
    wait_for "the bad server's listening line" server_says '^listening on '
    PORT=$(sed -n '1s/^listening on 127\.0\.0\.1:\([0-9]*\) (tcp)$/\1/p' "$SERVER_OUT")
    run --separate-stderr "$LOADGEN" bulk -s 1 127.0.0.1 "$PORT"
    assert_failure 1
    assert_equal "$stderr" "loadgen: connection 0: wrong byte at offset 99 of the echo"
    assert_output --regexp ' errors=1$'
}

@test "loadgen counts the CPU of every process of a forking server" {
    start_plain_server fork "$FORK_SERVER"
    # Three connections: the parent and three children.
    run --separate-stderr "$LOADGEN" pingpong -c 3 -d 0.3 --pid "$SERVER_PID" 127.0.0.1 "$PORT"
    assert_success
    assert_output --regexp ' server_procs=4 failures=0 errors=0$'
}

@test "loadgen hold: the connections stay until loadgen's input ends" {
    start_server -q
    mkfifo "$BATS_TEST_TMPDIR/hold.in"
    spawn "$LOADGEN" hold -c 20 127.0.0.1 "$PORT" <"$BATS_TEST_TMPDIR/hold.in" \
        >"$BATS_TEST_TMPDIR/hold.out" 2>"$BATS_TEST_TMPDIR/hold.err" 3>&- &
    hold_PID=$!
    BG_PIDS+=("$hold_PID")
    exec {hold_FD}>"$BATS_TEST_TMPDIR/hold.in"
    hold "$hold_FD"
    wait_for "loadgen's summary line" grep -qx 'loadgen mode=hold conns=20 held=20 failures=0 errors=0' "$BATS_TEST_TMPDIR/hold.out"
    held_clients 20
    release "$hold_FD"
    wait_exit "$WAIT_LIMIT" "$hold_PID"
    assert_equal "$EXIT_STATUS" 0
    wait_for "every held client gone" held_clients 0
}

@test "loadgen reports a refused connection and fails" {
    start_server -q
    close_console
    kill -TERM "$SERVER_PID"
    wait_exit "$WAIT_LIMIT" "$SERVER_PID"
    run --separate-stderr "$LOADGEN" pingpong -c 1 -d 0.2 127.0.0.1 "$PORT"
    assert_failure 1
    assert_equal "$stderr" "loadgen: connection 0: connect: Connection refused"
}

@test "loadgen rejects an unknown mode with status 2" {
    run --separate-stderr "$LOADGEN" stream 127.0.0.1 9
    assert_failure 2
    assert_equal "$stderr" "loadgen: unknown mode 'stream' (expected bulk, pingpong, connrate or hold)
Try 'loadgen --help' for more information."
}

@test "shutdown_latency: select_client leaves after quit, SIGTERM and SIGKILL alike" {
    run --separate-stderr "$BENCH/shutdown_latency" -n 3 --server "$SERVER" --client "$CLIENT"
    assert_success
    assert_line --index 0 --regexp '^shutdown_latency method=quit reps=3 median_ms=[0-9.]+ max_ms=[0-9.]+ min_ms=[0-9.]+ failures=0 client_status=3$'
    assert_line --index 1 --regexp '^shutdown_latency method=sigterm reps=3 .* failures=0 client_status=3$'
    assert_line --index 2 --regexp '^shutdown_latency method=sigkill reps=3 .* failures=0 client_status=3$'
    assert_equal "${#lines[@]}" 3
}
