#!/usr/bin/env bash
# 18-one-recv-one-message.sh - experiment 18: one recv() is not one
# message.
#
# lab/bug_one_recv answers each line a client sends with its number
# ("1: hello"), and takes every recv() for one line.  A client (bash's
# /dev/tcp: each printf is one write) sends three lines while the server
# is frozen (SIGSTOP), as if it were busy: one recv() gets all three, and
# they get one answer.  Then one line in two writes with a pause between:
# two recv()s, two answers.  The same two clients against bug_one_recv
# --fixed, which keeps what it receives until a line is complete, get one
# answer per line.
#
# Run from anywhere once the programs are built (make
# lab/bug_one_recv).  Takes about a second, uses 127.0.0.1 only, needs no
# root, leaves nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=18-one-recv-one-message.sh
require_built "make lab/bug_one_recv" lab/bug_one_recv

lab_setup

# start NAME ARGS... - lab/bug_one_recv ARGS on a port the kernel chooses,
# its log in NAME.log: sets server_pid, log, port.
start() {
    log=$tmp/$1.log
    shift
    cmd "lab/bug_one_recv $*${*:+ }-p 0 &"
    spawn lab/bug_one_recv "$@" -p 0 </dev/null >"$log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    wait_5s "the server's listening line" says "$log" '^listening on '
    port=$(listening_port "$log")
    head -n 1 "$log" | sed 's/^/    server | /'
}

# count ERE - how many lines of the server's log match.
count() { grep -cE -- "$1" "$log" || true; }
# at_least N ERE - at least N lines of the server's log match.
at_least() { (($(count "$2") >= $1)); }
# stopped PID - the process is stopped (state T).
stopped() { [[ $(ps -o stat= -p "$1") == T* ]]; }
# unread BYTES - the server's end of the connection holds BYTES unread.
unread() {
    [[ $(ss -Htn state established "( sport = :$port )" | awk '{ print $1 }') == "$1" ]]
}

# connect - bash opens a connection ($conn) and the server accepts it;
# sets mark (the log's length before) and recvs (its recv() lines so far).
connect() {
    local accepted
    mark=$(wc -l <"$log")
    recvs=$(count ': recv\(\) returned ')
    accepted=$(count '^accepted ')
    cmd "exec {conn}<>/dev/tcp/127.0.0.1/$port"
    exec {conn}<>"/dev/tcp/127.0.0.1/$port"
    wait_5s "the server to accept" at_least "$((accepted + 1))" '^accepted '
}

# got_recv - wait until the server has logged one more recv().
got_recv() {
    recvs=$((recvs + 1))
    wait_5s "the server's recv()" at_least "$recvs" ': recv\(\) returned '
}

# send TEXT - one write() of TEXT (printf's %b: \n is a newline), then
# wait until the server has received it.
send() {
    cmd "printf '$1' >&\$conn"
    printf '%b' "$1" >&"$conn"
    got_recv
}

# finish - write "end", read the answers up to the one to "end", close;
# show the server's log of this connection and the answers.
finish() {
    local line i closed
    send 'end\n'
    : >"$tmp/answers"
    for ((i = 0; i < 20; i++)); do
        read -r -t 5 -u "$conn" line || { echo "$PROG: no answer within 5 s" >&2; exit 1; }
        printf '%s\n' "$line" >>"$tmp/answers"
        [[ ! $line =~ ^[0-9]+:\ end$ ]] || break
    done
    closed=$(count '^closed ')
    exec {conn}>&-
    wait_5s "the server to close the connection" at_least "$((closed + 1))" '^closed '
    tail -n "+$((mark + 1))" "$log" | sed 's/^/    server | /'
    sed 's/^/    client | /' "$tmp/answers"
}

# three_lines_while_busy - freeze the server, write three lines, one
# write() each, thaw it.
three_lines_while_busy() {
    connect
    cmd "kill -STOP $server_pid      (the server is busy: it reads nothing)"
    kill -STOP "$server_pid"
    wait_5s "the server to stop" stopped "$server_pid"
    cmd "printf 'one\\n' >&\$conn; printf 'two\\n' >&\$conn; printf 'three\\n' >&\$conn"
    printf 'one\n' >&"$conn"
    printf 'two\n' >&"$conn"
    printf 'three\n' >&"$conn"
    wait_5s "14 bytes waiting in the server's socket" unread 14
    cmd "ss -tn 'sport = :$port'      (Recv-Q: bytes the server has not read)"
    ss -tn "sport = :$port" | indent
    cmd "kill -CONT $server_pid"
    kill -CONT "$server_pid"
    got_recv
    finish
}

# one_line_in_two_pieces - write "hel", wait until the server has read
# it, write "lo\n".
one_line_in_two_pieces() {
    connect
    send 'hel'
    send 'lo\n'
    finish
}

step "1. The flaw, in lab/bug_one_recv.c"
cmd "sed -n '/^serve_recvs(/,/^}/p' lab/bug_one_recv.c"
sed -n '/^serve_recvs(/,/^}/p' lab/bug_one_recv.c | indent
say "Each recv() returns what has arrived, up to sizeof buf bytes, and the"
say "server answers it as one line.  Then each client writes 'end', to know"
say "when all the answers are in."

step "2. bug_one_recv: three lines arrive while the server is busy"
start bug
three_lines_while_busy
look "three lines, one recv() of 14 bytes, ONE answer: '1: one' and two lines"
look "the server never numbered."

step "3. bug_one_recv: one line, written in two pieces"
one_line_in_two_pieces
look "one line, two recv()s, two answers: '1: hel' and '2: lo'."

step "4. The same two clients against bug_one_recv --fixed"
start fixed --fixed
three_lines_while_busy
one_line_in_two_pieces
look "the same recv()s, with the same bytes: it answers what it has received"
look "only up to a newline, and keeps the rest for the next recv() to complete."

step "What it shows"
say "TCP delivers a stream of bytes.  recv() returns what has arrived, and"
say "that depends on timing: several messages that wait together come out of"
say "one recv(), and one message that arrives in pieces needs several.  The"
say "protocol, not the system call, says where a message ends: a newline, a"
say "length in front, a fixed size.  Keep the bytes in a buffer, take out"
say "every complete message, and keep the rest for the next recv().  An echo"
say "server never shows this bug: whatever pieces it reads, it writes them"
say "back in the same order."
