# lab_01_tcp_states.bats - experiment 1: the TCP states of one port, as
# ss -tan shows them.  The listener is in LISTEN; each connection is two
# sockets, ESTABLISHED at both ends; the end that sends the first FIN (the
# client when it closes first, the server after a kick) waits in TIME-WAIT
# while the other end disappears; and while a peer that received the
# server's FIN never closes, the peer sits in CLOSE-WAIT facing the server's
# FIN-WAIT-2, until it closes and the server end moves to TIME-WAIT.

load test_helper

SCRIPT=$BATS_TEST_DIRNAME/../lab/01-tcp-states.sh

# backlog - what ss shows as a listener's Send-Q for the server's default
# backlog of 1024: the kernel caps it at net.core.somaxconn.
backlog() {
    local max
    max=$(cat /proc/sys/net/core/somaxconn)
    echo $((max < 1024 ? max : 1024))
}

# listener - "STATE LOCAL PEER" of the server's listening socket.
listener() {
    ss -Htan state listening "( sport = :$PORT )" | awk '{ print "LISTEN", $3, $4 }'
}

# conn_states NAME - "STATE LOCAL PEER" for each end of NAME's connection
# that the kernel still has, sorted: the client's end (local port: its
# ephemeral port) and the server's end (local port: the server's).  Other
# connections to the port do not count.
conn_states() {
    local peer=${1}_PEER cport
    cport=${!peer##*:}
    ss -Htan "( sport = :$cport and dport = :$PORT ) or ( sport = :$PORT and dport = :$cport )" |
        awk '{ print $1, $4, $5 }' | sort
}

# states_are NAME EXPECTED - conn_states NAME is exactly EXPECTED (lines,
# any order); if not, print what it is.
states_are() {
    local states
    states=$(conn_states "$1")
    [[ $states == "$(sort <<<"$2")" ]] || {
        echo "ss shows: ${states:-no socket of this connection}"
        return 1
    }
}

# ends_of NAME - NAME_CLIENT and NAME_SERVER: the local and peer address
# of the client's end and of the server's end of NAME's connection, as ss
# prints them (the server end is an IPv6 socket holding an IPv4 peer).
ends_of() {
    local peer=${1}_PEER cport
    cport=${!peer##*:}
    printf -v "${1}_CLIENT" '%s' "127.0.0.1:$cport 127.0.0.1:$PORT"
    printf -v "${1}_SERVER" '%s' "127.0.0.1:$PORT 127.0.0.1:$cport"
}

@test "01-tcp-states.sh: LISTEN, ESTAB at both ends, TIME-WAIT where the first FIN left, CLOSE-WAIT facing FIN-WAIT-2" {
    run --separate-stderr timeout 30 "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. A server on a port the kernel chooses: one socket in LISTEN
== 2. Two clients connect: each connection appears twice, once per end
== 3. Client a closes first: the client end waits in TIME_WAIT
== 4. The operator kicks client b: now the server end waits in TIME_WAIT
== 5. The server closes, the peer never does: CLOSE_WAIT and FIN_WAIT2
== 6. The peer reads the notice and closes: the server end goes TIME_WAIT
== 7. The server quits: the TIME_WAIT entries outlive the process"
    # The states, each labelled with the end it belongs to.
    assert_line --regexp "^  LISTEN +0 +$(backlog) +0\\.0\\.0\\.0:[0-9]+ +0\\.0\\.0\\.0:\\* +<- the listening socket\$"
    assert_line --regexp '^  ESTAB +0 +0 +127\.0\.0\.1:[0-9]+ +127\.0\.0\.1:[0-9]+ +<- client a.s end$'
    assert_line --regexp '^  ESTAB +0 +0 +127\.0\.0\.1:[0-9]+ +127\.0\.0\.1:[0-9]+ +<- server end of client b \(fd [0-9]+\)$'
    assert_line --regexp '^  TIME-WAIT +0 +0 +127\.0\.0\.1:[0-9]+ +127\.0\.0\.1:[0-9]+ +<- client a.s end$'
    assert_line --regexp '^  TIME-WAIT +0 +0 +127\.0\.0\.1:[0-9]+ +127\.0\.0\.1:[0-9]+ +<- server end of client b \(fd [0-9]+\)$'
    # 41 unread bytes: "*** disconnected by the server operator\n".
    assert_line --regexp '^  CLOSE-WAIT +41 +0 +127\.0\.0\.1:[0-9]+ +127\.0\.0\.1:[0-9]+ +<- the /dev/tcp peer.s end$'
    assert_line --regexp '^  FIN-WAIT-2 +0 +0 +127\.0\.0\.1:[0-9]+ +127\.0\.0\.1:[0-9]+ +<- server end of the /dev/tcp peer \(fd [0-9]+\)$'
    assert_line --regexp '^  TIME-WAIT +0 +0 +127\.0\.0\.1:[0-9]+ +127\.0\.0\.1:[0-9]+ +<- server end of the /dev/tcp peer \(fd [0-9]+\)$'
    assert_line "  client b | select_client: server closed the connection   (exit status 3)"
    assert_line "  the peer read: *** disconnected by the server operator"
    assert_line "  (the server exited with status 0)"
}

@test "01-tcp-states.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$(dirname "$SCRIPT")/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/01-tcp-states.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "01-tcp-states.sh: ./select_server is missing: run make first"
}

@test "LISTEN: one socket, no peer; its Recv-Q is the accept queue (0), its Send-Q the backlog (1024)" {
    start_server --bind 0.0.0.0

    run listener
    assert_output "LISTEN 0.0.0.0:$PORT 0.0.0.0:*"
    run ss -Htan state listening "( sport = :$PORT )"
    assert_output --regexp "^0 +$(backlog) +0\\.0\\.0\\.0:$PORT +0\\.0\\.0\\.0:\\* *\$"
    # No connection yet: the server's port has no other socket.
    run ss -Htan "( sport = :$PORT )"
    assert_equal "${#lines[@]}" 1
}

@test "ESTABLISHED: each connection is two sockets, the client's end and the server's end" {
    start_server --bind 0.0.0.0
    connect_idle a
    connect_idle b
    ends_of a
    ends_of b

    run conn_states a
    assert_output "$(sort <<<"ESTAB $a_CLIENT
ESTAB $a_SERVER")"
    run conn_states b
    assert_output "$(sort <<<"ESTAB $b_CLIENT
ESTAB $b_SERVER")"
    run listener
    assert_output "LISTEN 0.0.0.0:$PORT 0.0.0.0:*"
}

@test "the client closes first: its end waits in TIME-WAIT, the server's end is gone" {
    start_server --bind 0.0.0.0
    connect_idle a
    ends_of a

    end_input a         # select_client sends FIN (shutdown SHUT_WR) first
    wait_for "a's end in TIME-WAIT, the server end closed" states_are a "TIME-WAIT $a_CLIENT"
    wait_exit 5 "$a_PID"
    assert_equal "$EXIT_STATUS" 0
    assert logged "closed fd $a_CFD $a_PEER: eof (clients: 0)"
}

@test "kick: the server closes first, so the server's end waits in TIME-WAIT" {
    start_server --bind 0.0.0.0
    connect_idle b
    ends_of b

    console kick "$b_CFD"
    wait_for "the server end in TIME-WAIT, b's end closed" states_are b "TIME-WAIT $b_SERVER"
    wait_exit 5 "$b_PID"
    assert_equal "$EXIT_STATUS" 3
    run stderr_of b
    assert_output "select_client: server closed the connection"
}

@test "a peer that never closes: CLOSE-WAIT at the peer, FIN-WAIT-2 at the server; its close moves the server to TIME-WAIT" {
    start_server --bind 0.0.0.0
    # This shell is the peer: it neither reads nor closes until told.
    exec {peer}<>"/dev/tcp/127.0.0.1/$PORT"
    hold "$peer"
    wait_accepts 1
    accepted_as p
    ends_of p

    console kick "$p_CFD"
    wait_for "CLOSE-WAIT facing FIN-WAIT-2" states_are p "CLOSE-WAIT $p_CLIENT
FIN-WAIT-2 $p_SERVER"
    # The peer's kernel holds the notice nobody read: 41 bytes of Recv-Q.
    run ss -Htan state close-wait "( sport = :${p_PEER##*:} and dport = :$PORT )"
    assert_output --regexp "^41 +0 +127\\.0\\.0\\.1:"

    IFS= read -r -t 5 notice <&"$peer"
    assert_equal "$notice" "*** disconnected by the server operator"
    release "$peer"
    wait_for "the server end in TIME-WAIT, the peer's end closed" states_are p "TIME-WAIT $p_SERVER"
}
