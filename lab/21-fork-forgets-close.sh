#!/usr/bin/env bash
# 21-fork-forgets-close.sh - experiment 21: a fork server whose parent does
# not close its copy of the connection never lets a client finish.
#
# lab/bug_fork_noclose is lab/fork_server without the parent's
# close(conn_fd) after fork().  A client sends one line and reaches the end
# of its input: it gets its echo, the child serving it sees the EOF and
# exits, and yet the client waits on, because the parent's descriptor keeps
# the connection open and no FIN is ever sent.  The script ends each client
# after 2 s.  ss shows the server's end in CLOSE-WAIT, held by the parent;
# /proc/PID/fd shows the parent holding one more socket per client.  The
# same client against lab/fork_server is done in milliseconds.
#
# Run from anywhere once the programs are built (make all lab/fork_server
# lab/bug_fork_noclose).  Takes about 5 seconds, uses 127.0.0.1 only, needs
# no root, leaves nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=21-fork-forgets-close.sh
require_built "make all lab/fork_server lab/bug_fork_noclose" \
    select_client lab/fork_server lab/bug_fork_noclose

lab_setup


LIMIT=2         # seconds a client is given before the script ends it


# client NAME - start a select_client that sends one line and reaches the
# end of its input, under `timeout $LIMIT`: sets NAME_pid and NAME_start.
client() {
    printf 'hello from %s\n' "$1" >"$tmp/$1.in"
    spawn timeout "$LIMIT" ./select_client -q 127.0.0.1 "$port" <"$tmp/$1.in" \
        >"$tmp/$1.out" 2>"$tmp/$1.err" &
    pids+=($!)
    printf -v "$1_pid" '%s' "$!"
    printf -v "$1_start" '%s' "$(ms_now)"
}

# echoed NAME - the client NAME has printed its echo.
echoed() { says "$tmp/$1.out" "^hello from $1\$"; }
# gone PID - the process has exited (for wait_until).
gone() { ! running "$1"; }
# reaped PID - the process has exited and its parent has collected it: it
# is not even a zombie.
reaped() { [[ ! -e /proc/$1 ]]; }
# accepted N - the server has logged N accepts.
accepted() { (($(grep -c '^accepted ' "$log") >= $1)); }
# newest_fd, newest_child - the FD and the PID in the server's last
# "accepted fd FD: child PID" line.
newest_fd() { sed -n 's/^accepted fd \([0-9]*\): child [0-9]*$/\1/p' "$log" | tail -n 1; }
newest_child() { sed -n 's/^accepted fd [0-9]*: child \([0-9]*\)$/\1/p' "$log" | tail -n 1; }

# served NAME N - wait for NAME, the server's Nth client, to have its echo,
# and for the child serving it to exit.
served() {
    wait_5s "$1's echo" echoed "$1"
    wait_5s "the server to log client $2" accepted "$2"
    wait_5s "the child serving $1 to be reaped" reaped "$(newest_child)"
    wait_5s "the server's kernel to acknowledge $1's FIN" \
        in_state fin-wait-2 "( dport = :$port )"
}

# ended NAME - wait for the client NAME to end and show how it ended.
ended() {
    local pid=${1}_pid start=${1}_start status=0
    wait_until $((LIMIT + 3)) "$1 to end" gone "${!pid}"
    wait "${!pid}" || status=$?
    sed "s/^/    $1 | /" "$tmp/$1.out" "$tmp/$1.err"
    say "    ($1: exit status $status after $(($(ms_now) - ${!start})) ms)"
}

# sockets_of PID - the socket descriptors of PID, as /proc shows them.
sockets_of() {
    cmd "ls -l /proc/$1/fd | grep -o '[0-9]* -> socket:.*'"
    # shellcheck disable=SC2010  # the names in /proc/PID/fd are numbers
    ls -l "/proc/$1/fd" | grep -o '[0-9]* -> socket:.*' | indent
}

# conns - ss of the server's end of every connection (and its listener),
# then of the clients' ends, each with the process that holds it.
conns() {
    cmd "ss -tanp 'sport = :$port'      (the server's end)"
    ss -tanp "sport = :$port" | indent
    cmd "ss -tanp 'dport = :$port'      (the clients' end)"
    ss -tanp "dport = :$port" | indent
}
# server_side_closed - nothing but the listener left on the server's side.
server_side_closed() { ! ss -Htan "sport = :$port" | grep -qv '^LISTEN'; }

step "1. The flaw: where fork_server closes the connection in the parent"
cmd "grep -n -B2 'if (close(conn_fd)' lab/fork_server.c lab/bug_fork_noclose.c"
grep -n -B2 'if (close(conn_fd)' lab/fork_server.c lab/bug_fork_noclose.c | indent
say "fork_server closes its copy of conn_fd after every fork(); bug_fork_noclose"
say "closes it only when fork() failed, and keeps it when a child serves it."

step "2. lab/bug_fork_noclose, and a client that sends one line and is done"
start_server bug lab/bug_fork_noclose -p 0
cmd "echo 'hello from c1' | timeout $LIMIT ./select_client -q 127.0.0.1 $port &"
client c1
served c1 1
tail -n +2 "$log" | sed 's/^/    server | /'
say "c1 has its echo, and the child serving it has exited (and been reaped)."
conns
look "the server's end is in CLOSE-WAIT: c1's FIN arrived, but the socket is"
look "not closed, because the parent (pid=$server_pid, fd=$(newest_fd)) still holds it."
look "c1's end waits in FIN-WAIT-2 for a FIN that nobody will send."
ended c1
look "the echo came at once, then c1 waited until timeout ended it (124)."

step "3. Two more clients: the parent keeps a socket for each"
cmd "echo 'hello from c2' | timeout $LIMIT ./select_client -q 127.0.0.1 $port &"
client c2
served c2 2
cmd "echo 'hello from c3' | timeout $LIMIT ./select_client -q 127.0.0.1 $port &"
client c3
served c3 3
sockets_of "$server_pid"
look "the listener, and fds $(sed -n 's/^accepted fd \([0-9]*\):.*/\1/p' "$log" | paste -sd ' '): c1's, c2's and c3's connections,"
look "finished by their children, all still open in the parent."
ended c2
ended c3
conns
look "the clients are gone (their ends are orphans in FIN-WAIT-2, which the"
look "kernel drops after tcp_fin_timeout); the server's ends stay in"
look "CLOSE-WAIT for as long as the parent runs."

step "4. lab/fork_server, the same client"
start_server fork lab/fork_server -p 0
cmd "echo 'hello from c4' | timeout $LIMIT ./select_client -q 127.0.0.1 $port &"
client c4
ended c4
wait_5s "fork_server's end to close" server_side_closed
conns
sockets_of "$server_pid"
look "done in milliseconds, exit status 0.  The server's end is closed; only"
look "c4's end waits in TIME-WAIT, as the end that closed first does."
look "The parent holds nothing but its listener."

step "What it shows"
say "fork() duplicates every descriptor, and a socket is closed, FIN and all,"
say "only when its last descriptor is closed.  A fork server must close the"
say "connection in the parent at once, and the listener in the child.  If the"
say "parent keeps its copy, the child's exit changes nothing on the wire: the"
say "client never sees the end of the echo, the server's end of every"
say "connection sits in CLOSE-WAIT, and the parent collects one descriptor per"
say "client until accept() fails with EMFILE (too many open files)."
