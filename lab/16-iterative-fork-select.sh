#!/usr/bin/env bash
# 16-iterative-fork-select.sh - experiment 16: three ways to serve three
# clients, side by side.
#
# Three select_clients connect to each of lab/iterative_server,
# lab/fork_server and select_server, and each types one line.  The script
# shows what each client gets back and when, the server's sockets (ss: who
# holds each connection, and what waits unread in the backlog) and its
# processes (ps).  The iterative server echoes the first client only; the
# other two wait, accepted by the kernel but not by the program, until the
# clients before them leave.  The fork server answers all three, from three
# child processes.  select_server answers all three from one process.
#
# Run from anywhere once the programs are built (make all lab/fork_server
# lab/iterative_server).  Takes about a second, uses 127.0.0.1 only, needs
# no root, leaves nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=16-iterative-fork-select.sh
require_built "make all lab/fork_server lab/iterative_server" \
    select_server select_client lab/fork_server lab/iterative_server

lab_setup



# established N - the server's kernel holds N established connections.
established() {
    (($(ss -Htn state established "( sport = :$port )" | wc -l) == $1))
}

# The three clients of the current server, by number (1, 2, 3): our end
# of each one's keyboard, its PID, its output file, and when (ms_now) it
# typed its line and its echo was seen.
keyboard=() client_pid=() client_out=() typed=() got=()

# connect_three - three select_clients, each with a keyboard we hold (a
# FIFO), connected in order: c1, c2, c3.
connect_three() {
    local i fd
    cmd "./select_client -q 127.0.0.1 $port      (three times: c1, c2, c3)"
    for i in 1 2 3; do
        mkfifo "$tmp/c$i.$port.in"
        client_out[i]=$tmp/c$i.$port.out
        spawn ./select_client -q 127.0.0.1 "$port" <"$tmp/c$i.$port.in" \
            >"${client_out[i]}" 2>&1 &
        client_pid[i]=$!
        pids+=($!)
        exec {fd}>"$tmp/c$i.$port.in"
        held+=("$fd")
        keyboard[i]=$fd
        wait_5s "c$i to connect" established "$i"
    done
}

# type_lines - each client types "hello from cN".
type_lines() {
    local i
    for i in 1 2 3; do
        printf 'hello from c%d\n' "$i" >&"${keyboard[i]}"
        typed[i]=$(ms_now)
    done
}

# echoed N - client cN has printed its echo.
echoed() { says "${client_out[$1]}" "^hello from c$1\$"; }

# wait_echo N - wait for cN's echo, and note when it was seen.
wait_echo() {
    wait_5s "c$1's echo" echoed "$1"
    got[$1]=$(ms_now)
}

# show N [NOTE] - what client cN has printed so far (or that it has printed
# nothing), and how long after typing its line the echo was seen, with NOTE.
show() {
    if [[ -s ${client_out[$1]} ]]; then
        say "    c$1 | $(cat "${client_out[$1]}")      (echo $((got[$1] - typed[$1])) ms after c$1 typed${2:+, $2})"
    else
        say "    c$1 | (nothing yet)"
    fi
}

# all_three_served - the three clients connect and type their line, and
# each gets its echo back (a server that serves them at once).
all_three_served() {
    local i
    connect_three
    type_lines
    for i in 1 2 3; do
        wait_echo "$i"
    done
    for i in 1 2 3; do
        show "$i"
    done
}

# unread_waiting N - N connections to the server hold bytes nobody has
# read: lines that arrived on connections the program has not accepted.
unread_waiting() {
    (($(ss -Htn state established "( sport = :$port )" | awk '$1 > 0' | wc -l) == $1))
}

# leaves N - client cN reaches the end of its input and exits.
leaves() {
    local status=0
    release "${keyboard[$1]}"
    wait_5s "c$1 to exit" gone "${client_pid[$1]}"
    wait "${client_pid[$1]}" || status=$?
    ((status == 0)) || { echo "$PROG: c$1 exited with status $status" >&2; exit 1; }
}
gone() { ! running "$1"; }

# sockets - ss of the server's end of every connection and of its listener,
# with the process that holds each.
sockets() {
    cmd "ss -tanp 'sport = :$port'"
    ss -tanp "sport = :$port" | indent
}

# processes - ps of the server and its children.
processes() {
    cmd "ps -o pid,ppid,stat,wchan:33,cmd -p $server_pid --ppid $server_pid"
    ps -o pid,ppid,stat,wchan:33,cmd -p "$server_pid" --ppid "$server_pid" | indent
}

# no_children - the server has no child process (not even a zombie).
no_children() { ! ps -o pid= --ppid "$server_pid" >/dev/null; }

step "1. lab/iterative_server: three clients connect, each types a line"
start_server iterative lab/iterative_server -p 0
connect_three
type_lines
wait_echo 1
wait_5s "c2's and c3's lines to wait in the kernel" unread_waiting 2
show 1
show 2
show 3
sockets
look "all three connections are ESTAB: the kernel completed every handshake."
look "Only c1's has a process (iterative_serve).  c2's and c3's belong to no one"
look "yet: they wait in the accept queue (LISTEN Recv-Q 2), each with its 14"
look "bytes unread (Recv-Q 14).  Their clients are connected, and unheard."
processes
look "one process, asleep in read() on c1's connection (wait_woken, called by"
look "sk_wait_data: waiting for data).  It will not call accept() until c1 leaves."

step "2. The clients leave one by one: each waits for the ones before it"
say "c1 stays connected one more second, doing nothing; then its input ends."
sleep 1     # not a wait for anything: the second c2 and c3 spend waiting
cmd "(end of c1's input: it half-closes, and exits once the server closes)"
leaves 1
left=$(ms_now)
wait_echo 2
show 2 "$((got[2] - left)) ms after c1 left"
show 3
cmd "(end of c2's input)"
leaves 2
left=$(ms_now)
wait_echo 3
show 3 "$((got[3] - left)) ms after c2 left"
leaves 3
look "c2 was served only when c1 left, c3 only when c2 left: the server"
look "accepts the next client only once it is done with the one before."

step "3. lab/fork_server: the same three clients"
start_server fork lab/fork_server -p 0
all_three_served
sockets
look "the parent holds only the listener; each connection is held by another"
look "process, a child of the parent: one child per client."
processes
look "the parent waits in accept() (inet_csk_accept); each of the three"
look "children, a copy of it, waits in read() on its own client."
cmd "(end of every client's input: all three leave)"
for i in 1 2 3; do
    leaves "$i"
done
wait_5s "fork_server to reap its children" no_children
processes
look "the children exited with their clients, and the parent reaped them (its"
look "SIGCHLD handler; experiment 22 shows a fork server that forgets to)."

step "4. select_server: the same three clients"
start_server select ./select_server -p 0 -b 127.0.0.1
all_three_served
sockets
look "one process holds the listener and all three connections, on three fds."
processes
look "one process, no children, asleep in select() (do_select, which sleeps in"
look "poll_schedule_timeout): it waits for all of them, and the listener, at once."
mark=$(wc -l <"$log")
cmd "list      (on select_server's console)"
echo list >&"$console"
wait_5s "the reply to list" says "$log" '^\([0-9]+ clients?\)$'
tail -n "+$((mark + 1))" "$log" | sed 's/^/    server | /'
for i in 1 2 3; do
    leaves "$i"
done

step "What it shows"
say "An iterative server talks to one client at a time.  The others can"
say "connect, since the kernel completes their handshakes and queues them, and"
say "can even send, but nobody reads them until the clients before them leave."
say "A fork server gives each client a process: all are served at once, at the"
say "price of a fork() per connection, a process per client, and children to"
say "reap.  A select() server serves them all from one process and one thread:"
say "it sleeps in select() on every socket at once and handles whichever is ready."
