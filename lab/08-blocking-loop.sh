#!/usr/bin/env bash
# 08-blocking-loop.sh - experiment 8: one blocking write() freezes a
# select() server for everyone.
#
# lab/naive_server is the textbook select() echo server: blocking sockets,
# each client's input written straight back inside the loop.  A client that
# sends without ever reading (tests/testpeer flood) fills the buffers
# between them, the server's write() to it never returns, and a second
# client's round trips (tests/testpeer rtt 20, each answered within 2 s or
# it fails) get no answer at all.  The same two clients against
# select_server: the flooder is throttled, the round trips take
# milliseconds.
#
# Run from anywhere once the programs are built (make all tests/testpeer
# lab/naive_server).  Takes about 4 seconds, uses 127.0.0.1 only, leaves
# nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=08-blocking-loop.sh
require_built "make all tests/testpeer lab/naive_server" select_server tests/testpeer lab/naive_server

lab_setup

# start SERVER_NAME COMMAND... - start a server with its console on a FIFO,
# read its port from the first line: sets server_pid, port, log, console.
start() {
    local name=$1
    shift
    log=$tmp/$name.log
    mkfifo "$tmp/$name.console"
    "$@" -p 0 <"$tmp/$name.console" >"$log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    exec {console}>"$tmp/$name.console"
    wait_until 5 "$name's listening line" says "$log" '^listening on '
    port=$(listening_port "$log")
}

# send_q - bytes the server has queued for the (only) client, in the kernel.
send_q() {
    ss -Htn state established "( sport = :$port )" | awk '{ print $2; exit }'
}

# pipe_full - the server's send queue to the flooder is not empty and has
# not moved for 0.2 s: every buffer between the two is full.
pipe_full() {
    local before
    before=$(send_q)
    sleep 0.2
    [[ -n $before && $before != 0 && $(send_q) == "$before" ]]
}

# flood - a client that sends for 20 s and never reads; sets flood_pid.
flood() {
    tests/testpeer flood 127.0.0.1 "$port" 20 >"$tmp/flood.out" 2>&1 &
    flood_pid=$!
    pids+=("$flood_pid")
    wait_until 5 "the flooder to connect" says "$tmp/flood.out" '^flooding$'
    wait_until 10 "the buffers to fill" pipe_full
}

# where_asleep PID - where in the kernel PID sleeps: its wchan, and, when
# we may read it (root), its kernel stack.
where_asleep() {
    local stack
    cmd "ps -o pid,stat,wchan:32,cmd -p $1"
    ps -o pid,stat,wchan:32,cmd -p "$1" | indent
    stack=$(cat "/proc/$1/stack" 2>/dev/null) || stack=
    if [[ -n $stack ]]; then
        cmd "cat /proc/$1/stack     (A <- B: A was called by B)"
        sed -E 's/^\[<[^>]*>\] //; s/\+0x[0-9a-f/x]*$//' <<<"$stack" |
            head -n 7 | paste -sd ' ' | sed 's/ / <- /g' | indent
    fi
}

# round_trips - tests/testpeer rtt 20, timed: sets rtt_status, rtt_ms.
round_trips() {
    local start
    cmd "tests/testpeer rtt 127.0.0.1 $port 20"
    start=$(ms_now)
    rtt_status=0
    tests/testpeer rtt 127.0.0.1 "$port" 20 >"$tmp/rtt.out" 2>&1 || rtt_status=$?
    rtt_ms=$(($(ms_now) - start))
    indent <"$tmp/rtt.out"
    say "    (exit status $rtt_status after $rtt_ms ms)"
}

step "1. The flaw, in lab/naive_server.c"
cmd "grep -n -E 'n = read\(fd|write_all\(fd, buf' lab/naive_server.c"
grep -n -E 'n = read\(fd|write_all\(fd, buf' lab/naive_server.c | indent
say "The socket is blocking, so write_all() returns only when the kernel has"
say "taken every byte.  If this client does not read, that is never."

step "2. lab/naive_server, and a client that sends but never reads"
start naive lab/naive_server
cmd "lab/naive_server -p 0 &"
head -n 1 "$log" | sed 's/^/    server | /'
cmd "tests/testpeer flood 127.0.0.1 $port 20 &"
flood
cmd "ss -tn 'sport = :$port or dport = :$port'"
ss -tn "sport = :$port or dport = :$port" | indent
look "the server's Send-Q (its end, local port $port) is full, and so is the"
look "flooder's Recv-Q: the flooder reads nothing, so the echo has nowhere to go."
where_asleep "$server_pid"
look "the server sleeps inside write() (sk_stream_wait_memory: waiting for"
look "buffer space), not in select().  Nothing else in its loop can run."

step "3. A second client wants 20 round trips, each answered within 2 s"
round_trips
if ((rtt_status == 0)); then
    echo "$PROG: the round trips succeeded: the naive server was expected to hang" >&2
    exit 1
fi
look "'no echo within 2s' on the very first round trip."
cmd "cat naive_server's log"
sed 's/^/    server | /' "$log"
look "it never even accepted the second client: the kernel finished the"
look "handshake and queued the connection, but the loop never came back to"
look "select(), so accept() was never called."

step "4. The flooder goes away; only then does the naive server move again"
cmd "kill $flood_pid    (the flooder)"
kill "$flood_pid"
wait "$flood_pid" 2>/dev/null || true
wait_until 5 "the naive server to notice" says "$log" '^closed .*'
sleep 0.2
sed 's/^/    server | /' "$log"
look "write() failed at last (the flooder's close reset the connection), the"
look "loop ran again and served the backlog - seconds after that client gave up."
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true

step "5. The same two clients against select_server"
start reference ./select_server -b 0.0.0.0
cmd "./select_server -p 0 -b 0.0.0.0 &"
head -n 1 "$log" | sed 's/^/    server | /'
cmd "tests/testpeer flood 127.0.0.1 $port 20 &"
flood
mark=$(wc -l <"$log")
cmd "list     (on the server's console)"
echo list >&"$console"
wait_until 5 "the reply to list" says "$log" '^\([0-9]+ clients?\)$'
tail -n "+$((mark + 1))" "$log" | sed 's/^/    server | /'
look "the flooder's state is 'throttled': its echo waiting in the server's buffer"
look "('pending') passed 256 KiB, so the server stopped reading it until it drains."
where_asleep "$server_pid"
look "this server sleeps in select() (do_select), ready for anyone."
round_trips
if ((rtt_status != 0)); then
    echo "$PROG: the round trips failed against select_server" >&2
    exit 1
fi
look "20 round trips while the flooder is still connected and still flooding."

step "What it shows"
say "A select() loop is only as good as its slowest call.  select() says a"
say "socket is readable or writable, not that a write() of any size will not"
say "block.  One blocking write() to a client that does not read puts the"
say "whole server to sleep: no reads, no accepts, no answers for anyone."
say "select_server makes every socket non-blocking, writes what the kernel"
say "takes, keeps the rest in a buffer, asks select() for writability only"
say "while something is pending, and stops reading a client whose echo backs"
say "up (backpressure).  A slow client then costs only itself."
