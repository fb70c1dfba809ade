# console.bats - the operator console: the server reads commands on stdin in
# the same select() loop that serves the network.  Replies go to stdout,
# mistakes to stderr as one line each, and no mistake (nor the end of stdin)
# ever stops the server from serving its clients.

load test_helper

# backlog_holds BYTES - the kernel has one established connection to the
# server's port with BYTES unread (Recv-Q) and nothing unsent.
backlog_holds() {
    [[ $(ss -Htn state established "( sport = :$PORT )") =~ ^$1\ +0\  ]]
}

# conns_row_with_sendq FD - a fresh `conns` shows bytes in FD's send queue.
conns_row_with_sendq() {
    ask conns '^\([0-9]+ clients?\)$'
    grep -qE "^$1 .* [1-9][0-9]* +[0-9]+\$" <<<"$output"
}

@test "help lists every console command, one per line, on stdout" {
    start_server
    ask help '^  quit '
    assert_equal "${#lines[@]}" 10
    names=$(awk '{ print $1 }' <<<"$output" | paste -sd ' ')
    assert_equal "$names" "help list stats conns kick say pause resume trace quit"
    run cat "$SERVER_ERR"
    assert_output ""
}

@test "list shows one row per client with its fd and peer address, then the count" {
    start_server
    connect_idle a
    connect_idle b
    ask list '^\([0-9]+ clients?\)$'
    assert_equal "${#lines[@]}" 4
    assert_regex "${lines[0]}" '^fd +peer +connected +idle +bytes-in +bytes-out +pending +state$'
    assert_equal "${lines[3]}" "(2 clients)"
    run awk 'NR > 1 && NR < 4 { print $1, $2, $NF }' <<<"$output"
    assert_output "$a_CFD $a_PEER open
$b_CFD $b_PEER open"
}

@test "stats counts clients now, at peak and in total, bytes both ways, and select() calls" {
    start_server
    run "$PEER" rtt 127.0.0.1 "$PORT" 2            # 2 x 64 bytes echoed
    assert_success
    wait_for "the round-trip client's close" server_says '^closed fd .*: eof'
    connect_idle a
    connect_idle b
    kill "$b_PID"
    wait_for "b's close" server_says '^closed fd .*: eof \(clients: 1\)$'

    ask stats '^clients: '
    assert_equal "${#lines[@]}" 1
    assert_regex "$output" '^clients: 1 now, 2 peak, 3 total; bytes: 128 in, 128 out; udp datagrams: 0 \(0 truncated, 0 ignored\); select\(\) calls: [0-9]+; log lines dropped: 0; up [0-9.]+s$'
    first=$(sed -n 's/.*select() calls: \([0-9]*\);.*/\1/p' <<<"$output")

    # Nothing happened in between but the second command itself: one call.
    ask stats '^clients: '
    assert_regex "$output" "; select\\(\\) calls: $((first + 1)); "
}

@test "conns shows the kernel's view of each connection: its TCP state and its queues" {
    start_server
    connect_idle quiet
    start_flooder
    # The flooder never reads: its echo piles up in the server's socket
    # send buffer (Send-Q in netstat), and the kernel's TCP state is
    # ESTABLISHED for both.
    wait_for "the flooder's echo to back up" conns_row_with_sendq "$flood_CFD"
    ask conns '^\([0-9]+ clients?\)$'
    assert_line --index 0 --regexp '^fd +peer +state +rtt-ms +rttvar-ms +retrans +unacked +cwnd +send-q +recv-q$'
    assert_line --regexp "^$quiet_CFD +\\S+ +ESTABLISHED( +[0-9.]+){5} +0 +0\$"
    assert_line --regexp "^$flood_CFD +\\S+ +ESTABLISHED .* [1-9][0-9]* +[0-9]+\$"
    assert_line '(2 clients)'
}

@test "kick FD disconnects that client only: it gets a notice, the log says kicked" {
    start_server
    connect_idle a
    connect_idle b

    ask "kick $a_CFD" '^kicking '
    assert_output "kicking fd $a_CFD $a_PEER"
    wait_for "a's close" logged "closed fd $a_CFD $a_PEER: kicked (clients: 1)"
    wait_exit 5 "$a_PID"
    run stdout_of a
    assert_output "*** disconnected by the server operator"

    ask list '^\([0-9]+ clients?\)$'
    assert_equal "${#lines[@]}" 3
    assert_regex "${lines[1]}" "^$b_CFD +"
    assert_line --index 2 "(1 client)"
    types b "still here"
    wait_for "b's echo" client_got b "still here"
    run cat "$SERVER_ERR"
    assert_output ""
}

@test "kick with a missing, malformed or unknown fd is an error on stderr; nobody is kicked" {
    start_server
    connect_idle a
    console "kick"
    console "kick abc"
    console "kick ${a_CFD}x"
    console "kick -1"
    console "kick 99999"
    console "kick 1"            # stdout: a descriptor, but not a client
    ask list '^\([0-9]+ clients?\)$'
    assert_line --index 2 "(1 client)"

    run cat "$SERVER_ERR"
    assert_output "select_server: kick: missing FD (usage: kick FD)
select_server: kick: no client on fd 'abc' (see 'list')
select_server: kick: no client on fd '${a_CFD}x' (see 'list')
select_server: kick: no client on fd '-1' (see 'list')
select_server: kick: no client on fd '99999' (see 'list')
select_server: kick: no client on fd '1' (see 'list')"
    run grep -c -e '^kicking' -e '^closed' "$SERVER_OUT"
    assert_output 0
    types a "still served"
    wait_for "a's echo" client_got a "still served"
}

@test "say TEXT sends one line to every client, with control characters escaped" {
    start_server
    connect_idle a
    connect_idle b
    ask "say the lab closes at $(printf '\e')[31m6" '^said to '
    assert_output "said to 2 clients"
    # ESC arrives as the four characters \x1b: an operator's line cannot
    # recolour (or worse) the terminals of the people reading it.
    wait_for "a to hear it" client_got a '*** server: the lab closes at \x1b[31m6'
    wait_for "b to hear it" client_got b '*** server: the lab closes at \x1b[31m6'

    console "say"
    wait_for "the error" grep -qxF "select_server: say: missing TEXT (usage: say TEXT)" "$SERVER_ERR"
}

@test "pause stops accept(): a new connection waits in the kernel backlog, unechoed, until resume" {
    start_server
    ask pause '^paused'
    assert_output "paused: accept() is not called; new connections wait in the backlog (see: netstat -nat)"

    start_idle_client late -q
    types late "knock knock"
    # The kernel completed the handshake and holds the 12 bytes in the
    # not-yet-accepted socket: ESTAB, Recv-Q 12, local port = the server's.
    wait_for "an established, unaccepted connection holding 12 bytes" \
        backlog_holds 12
    ask list '^\([0-9]+ clients?\)$'
    assert_line --index 1 "(0 clients)"
    run grep -c '^accepted ' "$SERVER_OUT"
    assert_output 0
    run stdout_of late
    assert_output ""

    ask resume '^resumed'
    assert_output "resumed: accepting connections"
    wait_for "the late client's echo" client_got late "knock knock"
    run grep -c '^accepted ' "$SERVER_OUT"
    assert_output 1
}

@test "trace on narrates every select() call, trace off stops the narration" {
    start_server
    connect_idle a
    run grep -cE '^(select\(|-> )' "$SERVER_OUT"
    assert_output 0

    ask "trace on" '^trace on$'
    assert_output "trace on"
    types a "traced"
    wait_for "a's echo" client_got a "traced"
    wait_for "the read to be narrated" logged "fd $a_CFD: read 7 bytes"
    # The call that slept until a's line arrived, and what it reported.
    assert server_says "^select\\(nfds=[0-9]+, read=\\{0,[0-9,-]+\\}, write=\\{\\}, timeout=none\\)$"
    assert server_says "^-> 1 ready: read=\\{$a_CFD\\} write=\\{\\} after [0-9.]+s$"

    ask "trace off" '^trace off$'
    off=$(grep -n '^trace off$' "$SERVER_OUT" | cut -d: -f1)
    types a "quiet"
    wait_for "a's echo" client_got a "quiet"
    ask list '^\([0-9]+ clients?\)$'
    run tail -n "+$((off + 1))" "$SERVER_OUT"
    refute_line --regexp '^(select\(|-> |fd [0-9]+: read )'
}

@test "quit closes every client, says bye and exits 0" {
    start_server
    connect_idle a
    console quit
    wait_exit 5 "$SERVER_PID"
    assert_equal "$EXIT_STATUS" 0
    assert_shutdown_log quit a
    wait_exit 5 "$a_PID"
    run cat "$SERVER_ERR"
    assert_output ""
}

@test "an unknown command is one line on stderr naming it and pointing to help" {
    start_server
    console "frobnicate --now"
    ask stats '^clients: '      # anything more would be printed by now
    run cat "$SERVER_ERR"
    assert_output "select_server: unknown command 'frobnicate' (type 'help' for the list)"
    run grep -c . "$SERVER_OUT"
    assert_output 2             # the listening line and the stats line
    run "$PEER" rtt 127.0.0.1 "$PORT" 3
    assert_success
}

@test "binary junk on the console is named with its bytes escaped; the server keeps serving" {
    start_server
    printf '\x01\x02junk\xff\xfe\e[2J trailing\n' >&"$CONSOLE_FD"
    ask stats '^clients: '
    run cat "$SERVER_ERR"
    assert_output "select_server: unknown command '\\x01\\x02junk\\xff\\xfe\\x1b[2J' (type 'help' for the list)"
    run "$PEER" rtt 127.0.0.1 "$PORT" 3
    assert_success
}

@test "a NUL byte does not end a command early: 'help<NUL> junk' is junk, not help" {
    start_server
    printf 'help\0 junk\nquit\0now\n' >&"$CONSOLE_FD"
    ask stats '^clients: '
    run cat "$SERVER_ERR"
    assert_line --index 0 "select_server: unknown command 'help\\x00 junk' (type 'help' for the list)"
    assert_line --index 1 "select_server: unknown command 'quit\\x00now' (type 'help' for the list)"
    assert_equal "${#lines[@]}" 2
    run grep -c '^  quit ' "$SERVER_OUT"
    assert_output 0
    is_running "$SERVER_PID"
}

@test "a command with a missing or an extra argument is one line saying so" {
    start_server
    console kick
    console list everything
    console trace
    ask stats '^clients: '
    run cat "$SERVER_ERR"
    assert_output "select_server: kick: missing FD (usage: kick FD)
select_server: list: takes no argument (usage: list)
select_server: trace: missing on|off (usage: trace on|off)"
}

@test "a console line over 1024 bytes is refused whole, and the next command works" {
    start_server
    a1024=$(printf 'a%.0s' {1..1024})
    # 1024 bytes is still a command (an unknown one, named up to 64 bytes).
    console "$a1024"
    # 1028 bytes: refused, and its tail is skipped, not run as "quit".
    console "${a1024}quit"
    ask stats '^clients: '
    run cat "$SERVER_ERR"
    assert_output "select_server: unknown command '${a1024:0:64}' (type 'help' for the list)
select_server: console: line too long (over 1024 bytes): ignored"
    assert is_running "$SERVER_PID"
    run "$PEER" rtt 127.0.0.1 "$PORT" 3
    assert_success
}

@test "end of input on the console stops only the console: clients old and new are still served" {
    start_server --trace
    connect_idle a
    close_console
    # The server stops watching fd 0; everything else stays in the read set.
    # (It sees that EOF only if no client holds a copy of the console pipe.)
    wait_for "a select() without stdin" \
        server_says '^select\(nfds=[0-9]+, read=\{[1-9][0-9,-]*\}, write=\{\}, timeout=none\)$'
    types a "still here"
    wait_for "a's echo" client_got a "still here"
    run "$PEER" rtt 127.0.0.1 "$PORT" 5
    assert_success
    wait_for "the new client's close" server_says '^closed fd .*: eof \(clients: 1\)$'
    assert is_running "$SERVER_PID"
    run cat "$SERVER_ERR"
    assert_output ""
}
