# lab_16_iterative_fork_select.bats - experiment 16: three clients against
# an iterative, a fork and a select() server.  The iterative server echoes
# one client; the kernel completes the others' handshakes and queues them
# (the listener's Recv-Q counts them), their lines wait unread, and nobody
# holds their sockets until the clients before them leave.  The fork server
# serves each client from a child process of its own; select_server serves
# all three from one process.

load test_helper

LAB=$BATS_TEST_DIRNAME/../lab
ITERATIVE_SERVER=$LAB/iterative_server
FORK_SERVER=$LAB/fork_server
SCRIPT=$LAB/16-iterative-fork-select.sh

# three_type - idle clients c1, c2, c3 connect in that order (each once the
# kernel has completed the previous one's handshake), then each types
# "hello from cN" (14 bytes).
three_type() {
    local n
    for n in 1 2 3; do
        start_idle_client "c$n" -q
        wait_for "c$n's connection" established "$n"
    done
    for n in 1 2 3; do
        types "c$n" "hello from c$n"
    done
}

# established N - the server's kernel holds N established connections.
established() {
    (($(ss -Htn state established "( sport = :$PORT )" | wc -l) == $1))
}

# unread_on N - N of the server's connections hold bytes nobody has read.
unread_on() {
    (($(ss -Htn state established "( sport = :$PORT )" | awk '$1 > 0' | wc -l) == $1))
}

# accept_queue - the listener's Recv-Q: connections waiting for accept().
accept_queue() {
    ss -Htln "( sport = :$PORT )" | awk '{ print $2 }'
}

# owners - the PID that holds each of the server's established connections,
# one a line, sorted ("-", for a connection no process holds, first).
owners() {
    ss -Htnp state established "( sport = :$PORT )" |
        awk '{ if (match($0, /pid=[0-9]+/)) print substr($0, RSTART + 4, RLENGTH - 4); else print "-" }' |
        LC_ALL=C sort
}

# listener_owner - the PID that holds the listening socket.
listener_owner() {
    ss -Htlnp "( sport = :$PORT )" | sed -n 's/.*pid=\([0-9]*\),.*/\1/p'
}

# children - the server's child PIDs, sorted, one a line.
children() {
    ps -o pid= --ppid "$SERVER_PID" | tr -d ' ' | LC_ALL=C sort || true
}

@test "iterative_server: c2 and c3 are connected, their lines sent, and nobody reads them" {
    start_plain_server server "$ITERATIVE_SERVER"

    three_type

    wait_for "c1's echo" client_got c1 'hello from c1'
    wait_for "c2's and c3's lines unread in the kernel" unread_on 2
    assert_equal "$(accept_queue)" 2
    # Only c1's connection belongs to a process; the other two are still
    # in the accept queue, held by none.
    assert_equal "$(owners)" "-
-
$SERVER_PID"
    run stdout_of c2
    assert_output ''
    run stdout_of c3
    assert_output ''
    assert_equal "$(children)" ''
}

@test "iterative_server: c3 is served only once c1 and then c2 have left" {
    start_plain_server server "$ITERATIVE_SERVER"
    three_type
    wait_for "c1's echo" client_got c1 'hello from c1'
    wait_for "c2's and c3's lines unread in the kernel" unread_on 2

    end_input c1
    wait_exit 5 "$c1_PID"
    assert_equal "$EXIT_STATUS" 0
    wait_for "c2's echo" client_got c2 'hello from c2'
    assert_equal "$(accept_queue)" 1
    run stdout_of c3
    assert_output ''

    end_input c2
    wait_exit 5 "$c2_PID"
    assert_equal "$EXIT_STATUS" 0
    wait_for "c3's echo" client_got c3 'hello from c3'
    assert_equal "$(accept_queue)" 0
}

@test "fork_server: each of the three connections is held by a child of its own" {
    start_plain_server server "$FORK_SERVER"

    three_type

    for n in 1 2 3; do
        wait_for "c$n's echo" client_got "c$n" "hello from c$n"
    done
    kids=$(children)
    mapfile -t kid_list <<<"$kids"
    BG_PIDS+=("${kid_list[@]}")     # teardown kills the children too
    assert_equal "$(wc -l <<<"$kids")" 3
    assert_equal "$(owners)" "$kids"
    assert_equal "$(listener_owner)" "$SERVER_PID"
    assert_equal "$(accept_queue)" 0
}

@test "select_server: one process holds the listener and all three connections" {
    start_server -b 127.0.0.1

    three_type

    for n in 1 2 3; do
        wait_for "c$n's echo" client_got "c$n" "hello from c$n"
    done
    assert_equal "$(owners)" "$SERVER_PID
$SERVER_PID
$SERVER_PID"
    assert_equal "$(listener_owner)" "$SERVER_PID"
    assert_equal "$(children)" ''
    ask list '^\([0-9]+ clients?\)$'
    assert_line '(3 clients)'
}

@test "16-iterative-fork-select.sh: one client served at a time, then a process each, then one process for all" {
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_equal "$stderr" ''
    assert_equal "$(grep '^== ' <<<"$output")" "== 1. lab/iterative_server: three clients connect, each types a line
== 2. The clients leave one by one: each waits for the ones before it
== 3. lab/fork_server: the same three clients
== 4. select_server: the same three clients
== What it shows"
    all=$output
    # Step 1: c1 echoed, c2 and c3 waiting in the accept queue, unread.
    run sed -n '/^== 1\./,/^== 2\./p' <<<"$all"
    assert_line --regexp '^    c1 \| hello from c1      \(echo [0-9]+ ms after c1 typed\)$'
    assert_line '    c2 | (nothing yet)'
    assert_line '    c3 | (nothing yet)'
    assert_line --regexp '^    LISTEN 2 '
    assert_equal "$(grep -cE '^    ESTAB +14 +0 +[0-9.:]+ +[0-9.:]+ *$' <<<"$output")" 2
    assert_equal "$(grep -cE '^    ESTAB +0 .*"iterative_serve"' <<<"$output")" 1
    # Step 2: c2 waited about the second c1 stayed, c3 as long.
    run sed -n '/^== 2\./,/^== 3\./p' <<<"$all"
    assert_line --regexp '^    c2 \| hello from c2      \(echo [1-4][0-9]{3} ms after c2 typed, [0-9]+ ms after c1 left\)$'
    assert_line --regexp '^    c3 \| hello from c3      \(echo [1-4][0-9]{3} ms after c3 typed, [0-9]+ ms after c2 left\)$'
    # Step 3: three connections, three different fork_server PIDs.
    run sed -n '/^== 3\./,/^== 4\./p' <<<"$all"
    assert_equal "$(grep -oE '^    ESTAB .*"fork_server",pid=[0-9]+' <<<"$output" | sed 's/.*pid=//' | sort -u | wc -l)" 3
    assert_equal "$(grep -cE '^ +[0-9]+ +[0-9]+ S .*lab/fork_server -p 0$' <<<"$output")" 5
    # Step 4: three connections, one select_server PID, and list agrees.
    run sed -n '/^== 4\./,/^== What/p' <<<"$all"
    assert_equal "$(grep -oE '^    (ESTAB|LISTEN) .*"select_server",pid=[0-9]+' <<<"$output" | sed 's/.*pid=//' | sort -u | wc -l)" 1
    assert_equal "$(grep -cE '^ +[0-9]+ +[0-9]+ S .*select_server' <<<"$output")" 1
    assert_line '    server | (3 clients)'
}

@test "16-iterative-fork-select.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$LAB/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/16-iterative-fork-select.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "16-iterative-fork-select.sh: ./select_server is missing: run make first (make all lab/fork_server lab/iterative_server)"
}
