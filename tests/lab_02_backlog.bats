# lab_02_backlog.bats - experiment 2: the listen() backlog.  While the
# server does not call accept(), the kernel still completes the handshake
# and queues connections - on Linux backlog + 1 of them: their clients are
# ESTABLISHED and think they are connected, their server ends exist but no
# fd holds them, and the listener's Recv-Q counts them.  Once the queue is
# full, further SYNs are dropped without an answer: those clients wait in
# SYN-SENT with no server end at all, and get in when a retransmitted SYN
# finds room after `resume`.

load test_helper

SCRIPT=$BATS_TEST_DIRNAME/../lab/02-backlog.sh

# client_state I - the TCP state of client cI's socket, e.g. ESTAB or
# SYN-SENT, found by its owner's PID (ss -p); empty while it has none.
client_state() {
    local pid=c${1}_PID
    ss -Htanp "( dport = :$PORT )" | awk -v pid="pid=${!pid}," 'index($0, pid) { print $1 }'
}

# client_port I - the local (ephemeral) port of client cI's socket.
client_port() {
    local pid=c${1}_PID
    ss -Htanp "( dport = :$PORT )" |
        awk -v pid="pid=${!pid}," 'index($0, pid) { sub(/.*:/, "", $4); print $4 }'
}

has_socket() {
    [[ -n $(client_state "$1") ]]
}

# clients_are STATE... - client c1 is in the first STATE, c2 in the
# second, and so on.
clients_are() {
    local i=0 state
    for state; do
        i=$((i + 1))
        [[ $(client_state "$i") == "$state" ]] || return 1
    done
}

# server_ends STATE N - how many of clients c1..cN have a server end (local
# port: the server's, peer: the client's port) in STATE.
server_ends() {
    local i ports=" "
    for ((i = 1; i <= $2; i++)); do
        ports+="$(client_port "$i") "
    done
    ss -Htan state "$1" "( sport = :$PORT )" |
        awk -v ports="$ports" '{ p = $4; sub(/.*:/, "", p) } index(ports, " " p " ") { n++ } END { print n + 0 }'
}

# listener_queue - "Recv-Q Send-Q" of the listening socket.
listener_queue() {
    ss -Htan state listening "( sport = :$PORT )" | awk '{ print $1, $2 }'
}

# paused_clients N - pause the server, then start idle clients c1..cN one
# at a time, each once the previous one's socket exists, so that they
# reach the accept queue in order.
paused_clients() {
    local i
    ask pause '^paused'
    for ((i = 1; i <= $1; i++)); do
        start_idle_client "c$i" -w 10
        wait_for "client $i's socket" has_socket "$i"
    done
}

@test "02-backlog.sh: 3 of 6 clients queued ESTABLISHED, 3 SYN-SENT, all accepted after resume" {
    run --separate-stderr timeout 30 "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    assert_line --regexp '^  LISTEN +0 +2 +0\.0\.0\.0:[0-9]+ +0\.0\.0\.0:\* +<- the listening socket$'
    assert_line --regexp '^  LISTEN +3 +2 +0\.0\.0\.0:[0-9]+ +0\.0\.0\.0:\* +<- the listening socket$'
    assert_line "  client ends ESTABLISHED: 3     client ends SYN-SENT: 3"
    assert_line "  server ends ESTABLISHED: 3 (accepted by the server: 0)"
    for i in 1 2 3; do
        assert_line --regexp "^  client $i says: connected to 127\\.0\\.0\\.1:[0-9]+ from 127\\.0\\.0\\.1:[0-9]+\$"
        assert_line --regexp "^  ESTAB +0 +0 +127\\.0\\.0\\.1:[0-9]+ +127\\.0\\.0\\.1:[0-9]+ +<- server end of client $i \\(not accepted\\)\$"
    done
    for i in 4 5 6; do
        assert_line "  client $i says: (nothing yet: still connecting)"
        assert_line --regexp "^  SYN-SENT +0 +1 +127\\.0\\.0\\.1:[0-9]+ +127\\.0\\.0\\.1:[0-9]+ +<- client $i's end\$"
    done
    assert_line --regexp '^  the 3 queued ones accepted after [0-9]+ ms, all 6 after [0-9]+ ms$'
    for i in 1 2 3 4 5 6; do
        assert_line --regexp "^  ESTAB +0 +0 +127\\.0\\.0\\.1:[0-9]+ +127\\.0\\.0\\.1:[0-9]+ +<- server end of client $i \\(fd [0-9]+\\)\$"
    done
    assert_equal "$(grep -c '^  server | accepted ' <<<"$output")" 6
    assert_line "  (the server exited with status 0)"
}

@test "02-backlog.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$(dirname "$SCRIPT")/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/02-backlog.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "02-backlog.sh: ./select_server is missing: run make first"
}

@test "-B 2, accept() paused: exactly 3 connections complete and wait, 3 more stay in SYN-SENT" {
    start_server --bind 0.0.0.0 -B 2
    paused_clients 6

    # Every handshake that can complete does so at once over loopback; the
    # other SYNs were dropped, and their retransmissions are dropped too.
    wait_for "c1-c3 established, c4-c6 waiting" \
        clients_are ESTAB ESTAB ESTAB SYN-SENT SYN-SENT SYN-SENT
    assert_equal "$(listener_queue)" "3 2"
    assert_equal "$(server_ends established 6)" 3
    assert_equal "$(server_ends syn-recv 6)" 0
    run grep -c '^accepted ' "$SERVER_OUT"
    assert_output 0
    # The first three believe they are connected; the others still wait.
    for i in 1 2 3; do
        run stderr_of "c$i"
        assert_output --regexp "^connected to 127\\.0\\.0\\.1:$PORT from "
    done
    for i in 4 5 6; do
        run stderr_of "c$i"
        assert_output ''
    done
}

@test "resume: the queued connections are accepted at once, the SYN-SENT ones when their SYN is retransmitted" {
    start_server --bind 0.0.0.0 -B 2
    paused_clients 6
    wait_for "c1-c3 established, c4-c6 waiting" \
        clients_are ESTAB ESTAB ESTAB SYN-SENT SYN-SENT SYN-SENT

    ask resume '^resumed'
    wait_accepts 3
    # A retransmitted SYN arrives 1 s after the first, then 3 s, 7 s...
    wait_accepts 6
    assert clients_are ESTAB ESTAB ESTAB ESTAB ESTAB ESTAB
    assert_equal "$(server_ends established 6)" 6
    assert_equal "$(listener_queue)" "0 2"
    for i in 4 5 6; do
        wait_for "client $i's connected line" grep -q '^connected to ' "$BATS_TEST_TMPDIR/c$i.err"
    done
    # The queue is first in, first out: c1, c2, c3 come out in that order.
    for i in 1 2 3; do
        port=$(sed -n 's/^connected to .* from 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
            "$BATS_TEST_TMPDIR/c$i.err")
        run sed -n "$((i + 3))p" "$SERVER_OUT"      # after listening, paused, resumed
        assert_output --regexp "^accepted 127\\.0\\.0\\.1:$port on fd [0-9]+ \\(clients: $i\\)\$"
    done
}

@test "-B 0 is not 'no queue': one connection still waits, the next is SYN-SENT" {
    start_server --bind 0.0.0.0 -B 0
    paused_clients 2

    wait_for "c1 established, c2 waiting" clients_are ESTAB SYN-SENT
    assert_equal "$(listener_queue)" "1 0"
}
