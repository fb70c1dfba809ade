#!/usr/bin/env bash
# 09-shutdown-seen-from-client.sh - experiment 9: who notices that the
# server has gone, and when.
#
# Two clients sit idle at their keyboards (stdin is a FIFO this script holds
# open and does not write to): select_client, which waits for stdin AND its
# socket in one select(), and lab/naive_client, the textbook loop of
# fgets(), write(), read().  The server quits.  select_client exits within
# milliseconds with status 3; the naive client sleeps on in fgets() with
# the server's FIN unread, and discovers the closed connection only when a
# line is typed.
#
# Run from anywhere once the programs are built (make all
# lab/naive_client).  Takes about 2 seconds, uses 127.0.0.1 only, leaves
# nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=09-shutdown-seen-from-client.sh
require_built "make all lab/naive_client" select_server select_client lab/naive_client

lab_setup

log=$tmp/server.log
# accepts N - the server has logged N accepts.
accepts() { (($(grep -c '^accepted ' "$log") >= $1)); }
# gone PID - the opposite, for wait_until.
gone() { ! running "$1"; }

# idle_client NAME COMMAND... - start COMMAND with stdin a FIFO we hold
# open, output in NAME.out and NAME.err: sets idle_pid and idle_in (our
# end of its keyboard).
idle_client() {
    local name=$1
    shift
    mkfifo "$tmp/$name.in"
    "$@" <"$tmp/$name.in" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    idle_pid=$!
    pids+=("$idle_pid")
    exec {idle_in}>"$tmp/$name.in"
}

step "1. Start select_server on a port the kernel chooses"
mkfifo "$tmp/console"
cmd "./select_server -p 0 -b 0.0.0.0 &"
./select_server -p 0 -b 0.0.0.0 <"$tmp/console" >"$log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
exec {console}>"$tmp/console"
wait_until 5 "the server's listening line" says "$log" '^listening on '
port=$(listening_port "$log")
sed 's/^/    server | /' "$log"

step "2. Two clients connect, each with a keyboard nobody types on"
cmd "./select_client 127.0.0.1 $port <fifo &"
idle_client sel ./select_client 127.0.0.1 "$port"
sel_pid=$idle_pid sel_in=$idle_in
wait_until 5 "select_client to connect" accepts 1
cmd "lab/naive_client 127.0.0.1 $port <fifo &"
idle_client naive lab/naive_client 127.0.0.1 "$port"
naive_pid=$idle_pid naive_in=$idle_in
wait_until 5 "naive_client to connect" accepts 2
say "Each types one line, to show that both work:"
printf 'hello from select_client\n' >&"$sel_in"
printf 'hello from naive_client\n' >&"$naive_in"
wait_until 5 "select_client's echo" says "$tmp/sel.out" '^hello from select_client$'
wait_until 5 "naive_client's echo" says "$tmp/naive.out" '^hello from naive_client$'
sed 's/^/    select_client | /' "$tmp/sel.out"
sed 's/^/    naive_client  | /' "$tmp/naive.out"
say "Now both sit idle: select_client in select() on stdin and its socket,"
say "naive_client in fgets() on stdin alone."

step "3. The server quits"
cmd "quit     (on the server's console)"
start=$(ms_now)
echo quit >&"$console"
wait_until 5 "select_client to exit" gone "$sel_pid"
sel_ms=$(($(ms_now) - start))
sel_status=0
wait "$sel_pid" || sel_status=$?
wait_until 5 "the server to exit" gone "$server_pid"
sed 's/^/    server | /' "$log" | tail -n 4
say "    select_client exited with status $sel_status after $sel_ms ms:"
sed 's/^/    select_client | /' "$tmp/sel.err" | tail -n 1
look "nobody typed anything: select() woke up because the socket became"
look "readable, read() returned 0 (the server's FIN), and the client said so."

step "4. One second later: the naive client has not noticed"
sleep 1
if ! running "$naive_pid"; then
    echo "$PROG: naive_client exited already; it was expected to wait in fgets()" >&2
    exit 1
fi
cmd "ps -o pid,stat,wchan:20,cmd -p $naive_pid"
ps -o pid,stat,wchan:20,cmd -p "$naive_pid" | indent
look "still running, asleep reading a pipe: its stdin, inside fgets()."
cmd "ss -tnp 'dport = :$port'"
ss -tnp "dport = :$port" | indent
look "its socket is in CLOSE-WAIT: the kernel received the server's FIN and"
look "acknowledged it, but the program has not read it, because it is not looking."

step "5. Now the user types a line into the naive client"
cmd "echo 'anyone there?'     (on naive_client's stdin)"
start=$(ms_now)
printf 'anyone there?\n' >&"$naive_in"
wait_until 5 "naive_client to exit" gone "$naive_pid"
naive_ms=$(($(ms_now) - start))
naive_status=0
wait "$naive_pid" || naive_status=$?
say "    naive_client exited with status $naive_status, $naive_ms ms after the line was typed:"
sed 's/^/    naive_client  | /' "$tmp/naive.err"
look "write() succeeded: the kernel sent the line.  The server's end still"
look "exists (orphaned, FIN_WAIT2), but its program has closed it, so its kernel"
look "answers the data with a reset.  Then read() returned 0 (the FIN came"
look "first): only now does the program learn that the server went away."

step "What it shows"
say "A program learns about a closed connection only when it reads the"
say "socket.  A client that blocks in fgets() on the keyboard reads the socket"
say "only after the user types: until then the FIN waits in CLOSE-WAIT, and the"
say "user stares at a prompt connected to nothing.  select_client puts stdin and"
say "the socket in one select(), so whichever speaks first is heard first."
