#!/usr/bin/env bash
# 19-eintr.sh - experiment 19: a signal interrupts a blocked call, and the
# program takes EINTR for an error.
#
# lab/bug_eintr is a fork-per-client echo server with a SIGCHLD handler
# installed without SA_RESTART, whose accept() loop exits on any error.  A
# client is served, leaves, its child exits, SIGCHLD interrupts accept(),
# and the server dies: "accept: Interrupted system call".  kill -CHLD alone
# does the same; strace shows the kernel's side.  With SA_RESTART (-r) the
# kernel restarts accept() and the server lives.  lab/fork_server, the same
# server with the retry, survives both.  Last, select_server: Linux never
# restarts select(), and its loop simply calls it again.
#
# Run from anywhere once the programs are built (make all lab/fork_server
# lab/bug_eintr).  Takes about a second, uses 127.0.0.1 only, needs no
# root, leaves nothing behind.  strace is optional.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=19-eintr.sh
require_built "make all lab/fork_server lab/bug_eintr" \
    select_server select_client lab/fork_server lab/bug_eintr

lab_setup

# start NAME COMMAND... - start a server with its output in NAME.log and
# read its port from the first line: sets server_pid, log, port.
start() {
    local name=$1
    shift
    log=$tmp/$name.log
    cmd "$* -p 0 &"
    spawn "$@" -p 0 </dev/null >"$log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    wait_5s "$name's listening line" says "$log" '^listening on '
    port=$(listening_port "$log")
    head -n 1 "$log" | sed 's/^/    server | /'
}

# asleep_in PID ERE - PID sleeps in a kernel function (its wchan) that
# matches ERE; where the kernel does not say, any sleep will do.
asleep_in() {
    local state wchan
    read -r state wchan < <(ps -o stat=,wchan:40= -p "$1") || return 1
    [[ $state == S* && ($wchan =~ $2 || $wchan =~ ^(-|0|\?)$) ]]
}

# in_accept PID - PID sleeps in accept().
in_accept() { asleep_in "$1" '^inet_csk_accept$'; }

# gone PID - the process has exited.
gone() { ! running "$1"; }

# reap PID - wait for PID, which has exited: sets status.
reap() {
    status=0
    wait "$1" || status=$?
}

# settled N - after the first N lines of the log, select() returned and
# was called again: the server is asleep once more.
settled() {
    tail -n "+$(($1 + 1))" "$log" |
        awk '/^-> / { seen = 1; next } seen && /^select\(/ { ok = 1 } END { exit !ok }'
}

# one_client - select_client connects, says hello, gets the echo and
# leaves.  Its keyboard is a FIFO we hold until the server is back in
# accept(), so that the child's exit finds it there.
clients=0
one_client() {
    local in client_pid
    clients=$((clients + 1))
    mkfifo "$tmp/client.in.$clients"
    cmd "./select_client -q 127.0.0.1 $port      (types hello, then ends its input)"
    spawn ./select_client -q 127.0.0.1 "$port" <"$tmp/client.in.$clients" \
        >"$tmp/client.out.$clients" 2>&1 &
    client_pid=$!
    pids+=("$client_pid")
    exec {in}>"$tmp/client.in.$clients"
    held+=("$in")
    printf 'hello\n' >&"$in"
    wait_5s "the echo" says "$tmp/client.out.$clients" '^hello$'
    wait_5s "the server to wait in accept() again" in_accept "$server_pid"
    release "$in"
    wait_5s "the client to finish" gone "$client_pid"
    sed 's/^/    client | /' "$tmp/client.out.$clients"
    reap "$client_pid"
    say "    (select_client exited with status $status)"
}

# trace PID CALLS BLOCKED - attach strace to PID, tracing CALLS, and wait
# until it shows the call PID is blocked in, one of BLOCKED (an ERE of
# names; glibc may make select() the system call pselect6): sets tracer
# (its PID) and trace_out (its output file), or leaves tracer empty and
# says why when strace is missing or may not attach.
traces=0
trace() {
    tracer=
    if ! command -v strace >/dev/null; then
        say "    (strace is not installed: skipped; apt-get install strace)"
        return 0
    fi
    traces=$((traces + 1))
    trace_out=$tmp/strace.$traces.out
    cmd "strace -p $1 -e trace=$2 &"
    strace -p "$1" -e trace="$2" -o "$trace_out" 2>"$tmp/strace.$traces.err" &
    tracer=$!
    pids+=("$tracer")
    poll 5 attached_or_gone "$tmp/strace.$traces.err" || true
    if ! says "$tmp/strace.$traces.err" ' attached$'; then
        # Not allowed, for one: Yama's ptrace_scope 1 (Ubuntu's default)
        # lets strace attach only to its own descendants.
        sed 's/^strace: /    (strace could not attach: /; s/$/)/' "$tmp/strace.$traces.err" | head -n 2
        tracer=
        return 0
    fi
    wait_5s "strace to show the call in progress" says "$trace_out" "^($3)\\("
}

# attached_or_gone ERRFILE - strace said it attached, or has exited.
attached_or_gone() { says "$1" ' attached$' || gone "$tracer"; }

# show_trace - stop strace (if it still runs) and show what it saw.  A
# call still in progress when strace lets go ends in "<detached ...>".
show_trace() {
    [[ -n $tracer ]] || return 0
    if running "$tracer"; then
        kill "$tracer"
    fi
    wait "$tracer" 2>/dev/null || true
    sed -E 's/^/    strace | /; s/(si_pid|si_uid)=[0-9]+/\1=N/g' "$trace_out"
}

step "1. The flaw, in lab/bug_eintr.c"
cmd "grep -n 'sa_flags = ' lab/bug_eintr.c"
grep -n 'sa_flags = ' lab/bug_eintr.c | indent
cmd "sed -n '/^serve(int/,/^}/p' lab/bug_eintr.c"
sed -n '/^serve(int/,/^}/p' lab/bug_eintr.c | indent
say "The SIGCHLD handler is installed without SA_RESTART, and accept() failing"
say "for any reason ends the server."

step "2. bug_eintr serves a client; the client leaves, and the server dies"
start bug lab/bug_eintr
one_client
wait_5s "the server to exit" gone "$server_pid"
tail -n +2 "$log" | sed 's/^/    server | /'
reap "$server_pid"
say "    (bug_eintr exited with status $status)"
look "the client got its echo and left; its child exited, the kernel sent the"
look "parent SIGCHLD, the handler reaped the child, and accept() returned EINTR."

step "3. No client at all: kill -CHLD does the same"
start bug2 lab/bug_eintr
wait_5s "the server to wait in accept()" in_accept "$server_pid"
trace "$server_pid" accept,accept4,rt_sigreturn 'accept4?'
cmd "kill -CHLD $server_pid"
kill -CHLD "$server_pid"
wait_5s "the server to exit" gone "$server_pid"
tail -n +2 "$log" | sed 's/^/    server | /'
reap "$server_pid"
say "    (bug_eintr exited with status $status)"
show_trace
look "ERESTARTSYS is the kernel's note to itself: restart accept() if the"
look "handler has SA_RESTART.  It has not, so accept() returned -1, EINTR."

step "4. The same, with SA_RESTART (bug_eintr -r)"
start bug3 lab/bug_eintr -r
wait_5s "the server to wait in accept()" in_accept "$server_pid"
trace "$server_pid" accept,accept4 'accept4?'
cmd "kill -CHLD $server_pid"
kill -CHLD "$server_pid"
if [[ -n $tracer ]]; then
    wait_5s "strace to see the signal" says "$trace_out" '^--- SIGCHLD'
fi
wait_5s "the server to wait in accept() again" in_accept "$server_pid"
show_trace
one_client
look "still running: the kernel ran the handler, then called accept() again"
look "by itself.  The bug is still in the code; SA_RESTART only hides it."
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true

step "5. lab/fork_server: the same handler without SA_RESTART, and a retry"
cmd "grep -n -B1 -A3 'conn_fd < 0' lab/fork_server.c"
grep -n -B1 -A3 'conn_fd < 0' lab/fork_server.c | indent
start fork lab/fork_server
one_client
cmd "kill -CHLD $server_pid"
kill -CHLD "$server_pid"
wait_5s "the server to wait in accept() again" in_accept "$server_pid"
one_client
look "a child's exit, then kill -CHLD: its accept() failed with EINTR twice,"
look "as bug_eintr's did, and fork_server called it again each time."
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true

step "6. select_server: select() is never restarted, so the loop calls it again"
cmd "grep -n -A3 'if (nready < 0)' select_server.c"
grep -n -A3 'if (nready < 0)' select_server.c | indent
mkfifo "$tmp/console"
cmd "./select_server -p 0 -b 127.0.0.1 --trace &"
spawn ./select_server -p 0 -b 127.0.0.1 --trace <"$tmp/console" >"$tmp/ours.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
exec {console}>"$tmp/console"
held+=("$console")
log=$tmp/ours.log
wait_5s "select_server's listening line" says "$log" '^listening on '
wait_5s "select_server to wait in select()" asleep_in "$server_pid" '^(do_select|poll_schedule_timeout)'
trace "$server_pid" select,pselect6,rt_sigreturn 'p?select6?'
cmd "kill -CONT $server_pid      (handled: the shell sends it after Ctrl-Z and fg)"
kill -CONT "$server_pid"
wait_5s "select_server to go back to sleep" settled 1
tail -n +2 "$log" | sed 's/^/    server | /'
show_trace
look "the same select() call twice, with no result in between: the first"
look "failed with EINTR and the loop went round.  The signal's byte in the"
look "self-pipe (fd 3) then woke the second.  SA_RESTART would not change"
look "this: ERESTARTNOHAND means restart only if no handler ran."

step "What it shows"
say "A signal that a program handles interrupts whatever blocking call the"
say "program is in.  Without SA_RESTART, accept(), read() and the others"
say "return -1 with errno EINTR: not an error, just \"call me again\".  With"
say "SA_RESTART Linux restarts most of them, but never select(), poll() or a"
say "socket call with a timeout (signal(7) has the list).  A forking server"
say "gets SIGCHLD every time a client leaves, so the bug shows on the first"
say "day.  Treat EINTR as \"loop again\" wherever a call can block."
