#!/usr/bin/env bash
# 22-zombies.sh - experiment 22: a fork server that never waits for its
# children fills the process table with zombies.
#
# lab/bug_fork_nowait forks a child per client, as lab/fork_server does,
# but has no SIGCHLD handler and never calls waitpid().  Three clients are
# served one after the other; each child exits, and stays in the process
# table as a zombie (state Z, <defunct>) until its parent exits and init
# takes it over.  lab/fork_server, with the same three clients, has no child
# left.  Last, bug_fork_nowait again, started with SIGCHLD ignored (env
# --ignore-signal=CHLD): POSIX and Linux then discard each child's status
# at once, and no zombie is made.
#
# Run from anywhere once the programs are built (make all lab/fork_server
# lab/bug_fork_nowait).  Takes two or three seconds, uses 127.0.0.1 only,
# needs no root, leaves nothing behind.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=22-zombies.sh
require_built "make all lab/fork_server lab/bug_fork_nowait" \
    select_client lab/fork_server lab/bug_fork_nowait

lab_setup



# three_clients - three select_clients, one after the other, each sends a
# line and leaves at the end of its input; show what each got back.
three_clients() {
    local i
    cmd "for i in 1 2 3; do echo \"client \$i\" | ./select_client -q 127.0.0.1 $port; done"
    for i in 1 2 3; do
        echo "client $i" | ./select_client -q 127.0.0.1 "$port" | indent
    done
}

# children - the PIDs of the server's children, zombies included.
children() { ps -o pid= --ppid "$server_pid" || true; }
# count_children N [STATE] - the server has N children (in STATE, if given).
count_children() {
    local stat n=0
    for stat in $(ps -o stat= --ppid "$server_pid"); do
        [[ $stat != "${2-}"* ]] || n=$((n + 1))
    done
    ((n == $1))
}
# family - ps of the server and its children.
family() {
    cmd "ps -o pid,ppid,stat,rss,cmd -p $server_pid --ppid $server_pid"
    ps -o pid,ppid,stat,rss,cmd -p "$server_pid" --ppid "$server_pid" | indent
}
# server_side_closed - nothing but the listener left on the server's side.
server_side_closed() { ! ss -Htan "sport = :$port" | grep -qv '^LISTEN'; }
# all_gone PID... - none of these processes exists any more, not even as
# a zombie.
all_gone() {
    local pid
    for pid; do
        [[ ! -e /proc/$pid ]] || return 1
    done
}

step "1. The flaw: what fork_server has and bug_fork_nowait has not"
cmd "grep -n -E 'install_handlers\\(\\) < 0|SIGCHLD, on_sigchld|waitpid\\(-1' lab/fork_server.c lab/bug_fork_nowait.c"
grep -n -E 'install_handlers\(\) < 0|SIGCHLD, on_sigchld|waitpid\(-1' \
    lab/fork_server.c lab/bug_fork_nowait.c | indent
say "fork_server catches SIGCHLD and collects each finished child with"
say "waitpid(); bug_fork_nowait never asks how its children ended."

step "2. lab/bug_fork_nowait serves three clients, one after the other"
start_server bug lab/bug_fork_nowait -p 0
three_clients
wait_5s "three zombies" count_children 3 Z
tail -n +2 "$log" | sed 's/^/    server | /'
family
look "three children, each in state Z and shown as <defunct>: they have exited,"
look "but their parent has not collected their exit status."
zombie=$(children | head -n 1 | tr -d ' ')
cmd "grep State /proc/$zombie/status"
grep State "/proc/$zombie/status" | indent
wait_5s "the children's sockets to close" server_side_closed
cmd "ss -tan 'sport = :$port'"
ss -tan "sport = :$port" | indent
look "RSS 0, and no connection left but the listener: the memory and the"
look "sockets went when each child exited (the clients saw the end and exited"
look "0).  What is left is an entry in the process table: a PID and an exit"
look "status, kept for a wait() that never comes."

step "3. The parent exits: who collects the zombies?"
zombies=$(children | tr -d ' ' | paste -sd ' ')
cmd "kill $server_pid"
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
# shellcheck disable=SC2086  # one PID per word
wait_5s "init to reap the orphaned zombies" all_gone $zombies
cmd "ps -o pid,ppid,stat,cmd -p ${zombies// /,}"
ps -o pid,ppid,stat,cmd -p "${zombies// /,}" | indent || true
look "gone: orphans are adopted by init (PID 1), or by the nearest ancestor"
look "that made itself a 'subreaper', and init waits for every child it gets."

step "4. lab/fork_server, the same three clients"
start_server fork lab/fork_server -p 0
three_clients
wait_5s "fork_server to reap its children" count_children 0
family
look "the parent alone: its SIGCHLD handler reaped each child as it exited."

step "5. bug_fork_nowait again, started with SIGCHLD ignored"
say "env --ignore-signal=CHLD sets SIGCHLD to SIG_IGN, and exec() keeps an"
say "ignored signal ignored.  Not a line of the program changes."
start_server ignored env --ignore-signal=CHLD lab/bug_fork_nowait -p 0
three_clients
wait_5s "the children to go" count_children 0
family
look "no zombies: with SIGCHLD explicitly ignored, the kernel discards each"
look "child's exit status at once (POSIX.1-2001; Linux since 2.6).  This is not"
look "the default: by default SIGCHLD is ignored too, but zombies are kept."

step "What it shows"
say "A process that exits leaves its exit status in the process table until"
say "its parent collects it with wait() or waitpid().  Until then it is a"
say "zombie: no memory, no files, but a PID.  A fork server that never waits"
say "leaves one zombie per client served, for as long as it runs, and a"
say "long-running server runs out of PIDs or hits its process limit, so fork()"
say "fails.  Catch SIGCHLD and call waitpid(-1, ..., WNOHANG) in a loop, as"
say "fork_server does, or set SIGCHLD to SIG_IGN where POSIX.1-2001 is enough."
