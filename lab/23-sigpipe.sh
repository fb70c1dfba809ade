#!/usr/bin/env bash
# 23-sigpipe.sh - experiment 23: a server that does not ignore SIGPIPE dies
# when a client leaves at the wrong moment, and every client dies with it.
#
# lab/bug_sigpipe_server is a careful select() line-echo server (one write()
# per line) that leaves SIGPIPE at its default action.  Client A sits
# connected.  Client B sends two lines and closes at once, while the server
# is frozen (SIGSTOP), so that its data and its FIN are both waiting when
# the server looks.  The first reply goes out, B's kernel answers with RST,
# the second reply's write() fails with EPIPE and SIGPIPE ends the server:
# status 141, and A's connection is gone too.  The same two clients against
# select_server -r 4 (two reads, two sends): B is closed as "reset", A is
# still served.
#
# Run from anywhere once the programs are built (make all
# lab/bug_sigpipe_server).  Takes about a second, uses 127.0.0.1 only, needs
# no root, leaves nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=23-sigpipe.sh
require_built "make all lab/bug_sigpipe_server" select_server select_client lab/bug_sigpipe_server

lab_setup


# client_a - a select_client whose keyboard is a FIFO we hold open; it types
# one line and waits for the echo: sets a_pid and a_in (its keyboard).
client_a() {
    mkfifo "$tmp/a.in.$port"
    cmd "./select_client -q 127.0.0.1 $port      (client A, stays connected)"
    spawn ./select_client -q 127.0.0.1 "$port" <"$tmp/a.in.$port" \
        >"$tmp/a.out" 2>"$tmp/a.err" &
    a_pid=$!
    pids+=("$a_pid")
    exec {a_in}>"$tmp/a.in.$port"
    held+=("$a_in")
    printf 'hello from A\n' >&"$a_in"
    wait_5s "A's echo" says "$tmp/a.out" '^hello from A$'
    sed 's/^/    A | /' "$tmp/a.out"
}

# b_leaves_early - freeze the server, let client B send two lines and close
# at once, show the server's end of B's connection, thaw the server.
b_leaves_early() {
    cmd "kill -STOP $server_pid      (freeze the server, as if it were busy)"
    kill -STOP "$server_pid"
    cmd "printf 'one\\ntwo\\n' >/dev/tcp/127.0.0.1/$port      (client B: send, close)"
    printf 'one\ntwo\n' >"/dev/tcp/127.0.0.1/$port"
    wait_5s "B's FIN to reach the server" in_state close-wait "( sport = :$port )"
    cmd "ss -tan 'sport = :$port'"
    ss -tan "sport = :$port" | indent
    look "B's connection waits in the backlog in CLOSE-WAIT: Recv-Q 9 is its 8 bytes"
    look "and its FIN (which counts as one).  B has closed; it will read nothing."
    cmd "kill -CONT $server_pid"
    kill -CONT "$server_pid"
}

# gone PID - the process has exited (for wait_5s).
gone() { ! running "$1"; }

step "1. The flaw, in lab/bug_sigpipe_server.c"
cmd "grep -n -E 'SIGPIPE, SIG_IGN|n = write\\(' lab/bug_sigpipe_server.c"
grep -n -E 'SIGPIPE, SIG_IGN|n = write\(' lab/bug_sigpipe_server.c | indent
say "SIGPIPE keeps its default action, which is to end the process, and each"
say "reply goes out with a plain write(), one write() per line."

step "2. lab/bug_sigpipe_server, and client A, who stays"
start_server bug lab/bug_sigpipe_server -p 0
client_a

step "3. Client B sends two lines and leaves without reading the replies"
b_leaves_early
wait_5s "the server to end" gone "$server_pid"
status=0
wait "$server_pid" || status=$?
b_fd=$(sed -n 's/^accepted fd \([0-9]*\)$/\1/p' "$log" | tail -n 1)
cmd "cat bug_sigpipe_server's log"
sed 's/^/    server | /' "$log"
say "    (exit status $status: $(kill -l "$status" 2>/dev/null || echo '?'))"
look "B's first reply written ('fd $b_fd: wrote 4 bytes'), then nothing: the second"
look "write() raised SIGPIPE, which ended the process: 141 = 128 + 13 (SIGPIPE)."

step "4. Client A did nothing wrong, and lost its server too"
wait_5s "A to notice" gone "$a_pid"
a_status=0
wait "$a_pid" || a_status=$?
sed 's/^/    A | /' "$tmp/a.err"
say "    (A's exit status $a_status)"
cmd "echo 'anyone?' | ./select_client -q 127.0.0.1 $port"
new_status=0
echo 'anyone?' | ./select_client -q 127.0.0.1 "$port" >"$tmp/new.out" 2>&1 || new_status=$?
indent <"$tmp/new.out"
say "    (exit status $new_status)"
look "one process served everyone: when it died, its kernel closed every socket"
look "it held, A's included, and the port is no longer served at all."
release "$a_in"

step "5. The same two clients against select_server -r 4"
say "-r 4: each read() takes at most 4 bytes, so B's two lines are read, and"
say "echoed with send(), in two turns, like the two write()s of the bug server."
say "-v traces every select(); only the reads and the connections are shown."
start_server ours ./select_server -p 0 -b 127.0.0.1 -r 4 -v
client_a
mark=$(wc -l <"$log")
b_leaves_early
wait_5s "select_server to close B" says "$log" ': reset \(clients: 1\)$'
tail -n "+$((mark + 1))" "$log" | grep -E '^(accepted |fd [0-9]+: read |closed )' |
    sed 's/^/    server | /'
look "the second send() failed with EPIPE, and that closed B alone ('reset')."
printf 'still there?\n' >&"$a_in"
wait_5s "A's second echo" says "$tmp/a.out" '^still there\?$'
sed 's/^/    A | /' "$tmp/a.out"
look "A is still served: select_server ignores SIGPIPE and sends with"
look "MSG_NOSIGNAL, so EPIPE is an error on one client, not a signal to all."

step "What it shows"
say "Writing to a connection whose peer has gone raises SIGPIPE, and SIGPIPE"
say "ends a process that has not ignored it.  It takes two writes: the first"
say "only provokes the peer's RST, the second finds it and gets EPIPE.  A server"
say "cannot prevent a client from leaving between its reads and its writes, so"
say "it must ignore SIGPIPE (or send with MSG_NOSIGNAL) and treat EPIPE as one"
say "more way for one client to go.  For a one-process server, a signal that"
say "kills the process is a crash for every client at once."
