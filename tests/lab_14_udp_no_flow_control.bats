# lab_14_udp_no_flow_control.bats - experiment 14: UDP has no flow
# control.  lab/udp_blast sends 2000 datagrams of 1400 bytes at a stopped
# select_server: every sendto() succeeds, the socket's receive buffer keeps
# what fits, the kernel drops the rest and counts each drop (ss's d,
# UdpRcvbufErrors), and the server's stats count the rest once it runs
# again: kept + dropped = sent.  A bigger buffer (--rcvbuf) keeps more.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
SCRIPT=$LAB/14-udp-no-flow-control.sh
BLAST=$LAB/udp_blast

COUNT=2000
SIZE=1400

# in_netns COMMAND... - COMMAND in this test's network namespace, if any.
in_netns() {
    "${IN_NETNS[@]}" "$@"
}

# skmem FIELD - one number of ss's memory line for the server's UDP
# socket: r (memory queued), rb (receive buffer), d (datagrams dropped).
skmem() {
    in_netns ss -Huanm "sport = :$PORT" | grep -oE "[(,]$1[0-9]+[,)]" | tr -dc '0-9'
}

# queue_empty - the server has read all that its UDP socket held.
queue_empty() { [[ $(skmem r) == 0 ]]; }

# stopped - the server is stopped (ps state T).
stopped() { [[ $(ps -o stat= -p "$SERVER_PID") == T* ]]; }

# counter NAME - a UDP counter of the kernel (of the namespace), absolute.
counter() {
    in_netns nstat -asz "$1" | awk -v name="$1" '$1 == name { print $2 }'
}

# blast_stopped_server - stop the server, blast it, note what its socket
# holds, let it run again and ask for its stats once it has read all.
# Sets QUEUED, DROPPED and KEPT.
blast_stopped_server() {
    kill -STOP "$SERVER_PID"
    wait_for "the server to stop" stopped
    run --separate-stderr in_netns "$BLAST" 127.0.0.1 "$PORT" "$COUNT" "$SIZE"
    # Every sendto() succeeded: the sender is not told of the drops.
    assert_success
    assert_output --regexp "^sent $COUNT datagrams of $SIZE bytes to 127\\.0\\.0\\.1:$PORT from port [0-9]+\$"
    assert_equal "$stderr" ''
    QUEUED=$(skmem r)
    DROPPED=$(skmem d)
    kill -CONT "$SERVER_PID"
    wait_for "the server to read its queue" queue_empty
    ask stats 'udp datagrams: '
    KEPT=$(sed -n 's/.*; udp datagrams: \([0-9]*\) (0 truncated, 0 ignored);.*/\1/p' <<<"$output")
    [[ $QUEUED =~ ^[0-9]+$ && $DROPPED =~ ^[0-9]+$ && $KEPT =~ ^[0-9]+$ ]]
}

@test "udp_blast: every sendto() succeeds even where nobody listens; bad arguments are refused" {
    start_server -b 127.0.0.1 --no-udp
    # TCP only: nothing listens for UDP on this port.
    run --separate-stderr "$BLAST" 127.0.0.1 "$PORT" 3 100
    assert_success
    assert_output --regexp "^sent 3 datagrams of 100 bytes to 127\\.0\\.0\\.1:$PORT from port [0-9]+\$"

    run --separate-stderr "$BLAST" 127.0.0.1 "$PORT" 0 100
    assert_failure 1
    assert_equal "$stderr" "usage: udp_blast HOST PORT COUNT SIZE   (COUNT 1..1000000 datagrams, SIZE 1..65507 bytes)"
    run --separate-stderr "$BLAST" 127.0.0.1 "$PORT" 1 65508
    assert_failure 1
}

@test "a stopped server keeps what fits in its receive buffer; the rest is dropped; kept + dropped = sent" {
    start_server -b 127.0.0.1 -q
    rcvbuf=$(cat /proc/sys/net/core/rmem_default)
    assert_equal "$(skmem rb)" "$rcvbuf"

    blast_stopped_server

    assert_equal $((KEPT + DROPPED)) "$COUNT"
    ((DROPPED > 0 && KEPT > 0))
    # The buffer counts memory, not data: each datagram cost the same,
    # more than its 1400 bytes, and they filled the buffer.
    assert_equal $((QUEUED % KEPT)) 0
    ((QUEUED / KEPT > SIZE && QUEUED <= rcvbuf && QUEUED + QUEUED / KEPT > rcvbuf))
}

@test "in a namespace of its own, UdpRcvbufErrors and netstat -su count exactly the socket's drops" {
    own_netns
    SERVER_PREFIX=("${IN_NETNS[@]}")
    start_server -b 127.0.0.1 -q

    blast_stopped_server

    assert_equal $((KEPT + DROPPED)) "$COUNT"
    ((DROPPED > 0))
    # A new namespace counts from zero, and no other socket lives here.
    assert_equal "$(counter UdpRcvbufErrors)" "$DROPPED"
    assert_equal "$(counter UdpInErrors)" "$DROPPED"
    # UdpInDatagrams counts the datagrams read, not those that arrived.
    assert_equal "$(counter UdpInDatagrams)" "$KEPT"
    run in_netns netstat -su
    assert_line "    $DROPPED receive buffer errors"
    assert_line "    0 send buffer errors"
}

@test "--rcvbuf 4194304: the kernel doubles it, up to twice rmem_max, and the stopped server keeps more" {
    rmem_max=$(cat /proc/sys/net/core/rmem_max)
    start_server -b 127.0.0.1 -q
    blast_stopped_server
    kept_default=$KEPT
    per_datagram=$((QUEUED / KEPT))
    console quit
    wait_exit "$WAIT_LIMIT" "$SERVER_PID"

    start_server -b 127.0.0.1 -q --rcvbuf 4194304
    got=$((2 * (rmem_max < 4194304 ? rmem_max : 4194304)))
    assert_equal "$(sed -n 2p "$SERVER_OUT")" "receive buffer: asked for 4194304 bytes, got $got (SO_RCVBUF)"
    assert_equal "$(skmem rb)" "$got"

    blast_stopped_server

    assert_equal $((KEPT + DROPPED)) "$COUNT"
    ((KEPT > kept_default))
    if ((per_datagram * COUNT <= got)); then
        assert_equal "$KEPT" "$COUNT"
        assert_equal "$DROPPED" 0
    fi
}

@test "14-udp-no-flow-control.sh: every sendto() succeeds, and received + dropped = sent, twice" {
    run --separate-stderr "$SCRIPT" 3>&-
    assert_success
    assert_equal "$stderr" ''
    all=$output
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. The receive buffer a UDP socket gets
== 2. A stopped server, the default buffer, 2000 datagrams of 1400 bytes
== 3. The same with a bigger buffer: --rcvbuf 4194304
== What it shows"
    assert_line "    rmem_default $(cat /proc/sys/net/core/rmem_default)"
    assert_line "    rmem_max     $(cat /proc/sys/net/core/rmem_max)"
    assert_equal "$(grep -cE '^    sent 2000 datagrams of 1400 bytes to 127\.0\.0\.1:[0-9]+ from port [0-9]+$' <<<"$output")" 2
    assert_equal "$(grep -c '^    (exit status 0: no sendto() failed)$' <<<"$output")" 2

    run sed -n '/^== 2\./,/^== 3\./p' <<<"$all"
    assert_line --regexp '^        skmem:\(r[0-9]+,rb[0-9]+,.*,d[0-9]+\)$'
    sum=$(grep -E '^    sent 2000 = received [0-9]+ \(stats\) \+ dropped [0-9]+ \(ss: d[0-9]+\)$' <<<"$output")
    [[ $sum =~ received\ ([0-9]+).*dropped\ ([0-9]+)\ \(ss:\ d([0-9]+)\) ]]
    kept=${BASH_REMATCH[1]}
    assert_equal $((BASH_REMATCH[1] + BASH_REMATCH[2])) 2000
    assert_equal "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
    ((BASH_REMATCH[2] > 0))
    assert_line --regexp "^    server \\| clients: 0 now, .*; udp datagrams: $kept \\(0 truncated, 0 ignored\\);"

    run sed -n '/^== 3\./,/^== What/p' <<<"$all"
    assert_line --regexp '^    server \| receive buffer: asked for 4194304 bytes, got [0-9]+ \(SO_RCVBUF\)$'
    sum=$(grep -E '^    sent 2000 = received [0-9]+ \(stats\) \+ dropped [0-9]+ \(ss: d[0-9]+\)$' <<<"$output")
    [[ $sum =~ received\ ([0-9]+).*dropped\ ([0-9]+) ]]
    assert_equal $((BASH_REMATCH[1] + BASH_REMATCH[2])) 2000
    ((BASH_REMATCH[1] > kept))
    assert_line --regexp "^>> look: of 2000 this time, against $kept before\\.\$"
}

@test "14-udp-no-flow-control.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$LAB/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/14-udp-no-flow-control.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "14-udp-no-flow-control.sh: ./select_server is missing: run make first (make all lab/udp_blast)"
}
