#!/usr/bin/env bash
# lab/01-tcp-states.sh - watch the TCP states of one port with netstat -nat
# and ss -tan: LISTEN, ESTABLISHED at both ends of each connection,
# TIME_WAIT at the end that closes first, and CLOSE_WAIT facing FIN_WAIT2
# when one side closes and the other never does.
#
# Run it from anywhere once the programs are built (make).  It starts its
# own server on a port the kernel chooses, talks to it over loopback, stops
# everything it started, and takes under a second.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=${0##*/}
require_built "" select_server select_client

lab_setup

# Who is who: "PORT<tab>NAME<tab>FD" for each client the server accepted,
# for the labels show_port puts on the ss lines.
labels=$tmp/labels
: >"$labels"

# show_port - the port's connections in netstat -nat (if installed) and in
# ss -tan; each ss line is labelled with the end of the connection it is.
show_port() {
    if command -v netstat >/dev/null; then
        say "  \$ netstat -nat | grep ':$port '"
        netstat -nat | sed -n '2s/ *$//p' | sed 's/^/  /'
        netstat -nat | grep -- ":$port " | sed 's/ *$//; s/^/  /' || true
    fi
    say "  \$ ss -tan '( sport = :$port or dport = :$port )'"
    ss -tan "( sport = :$port or dport = :$port )" |
        awk -v port="$port" -v q="'" -F '\t' '
            FILENAME != "-" { name[$1] = $2; fd[$1] = $3; next }
            FNR == 1 { print "  " $0; next }
            {
                split($0, f, " +")
                lp = f[4]; sub(/.*:/, "", lp)
                pp = f[5]; sub(/.*:/, "", pp)
                if (f[1] == "LISTEN")
                    what = "the listening socket"
                else if (lp == port)
                    what = (pp in name) ? "server end of " name[pp] " (fd " fd[pp] ")" : "server end"
                else
                    what = (lp in name) ? name[lp] q "s end" : "an older connection (not this experiment)"
                sub(/ +$/, "")
                print "  " $0 "   <- " what
            }' "$labels" -
}

# server_log - the server's log lines printed since the last call.
shown=0
server_log() {
    local total
    total=$(wc -l <"$tmp/server.out")
    sed -n "$((shown + 1)),${total}p" "$tmp/server.out" | sed 's/^/  server | /'
    shown=$total
}

# note_accept NAME - record the newest accepted client as NAME; sets CPORT.
note_accept() {
    local line
    line=$(grep '^accepted ' "$tmp/server.out" | tail -n 1)
    [[ $line =~ :([0-9]+)\ on\ fd\ ([0-9]+) ]]
    CPORT=${BASH_REMATCH[1]}
    CFD=${BASH_REMATCH[2]}
    printf '%s\t%s\t%s\n' "$CPORT" "$1" "$CFD" >>"$labels"
}

accepts() {
    (($(grep -c '^accepted ' "$tmp/server.out" || true) >= $1))
}

step "1. A server on a port the kernel chooses: one socket in LISTEN"
mkfifo "$tmp/console"
# IPv4 only (-b 0.0.0.0), as the textbooks' listings show it.
cmd "./select_server -p 0 -b 0.0.0.0"
spawn ./select_server -p 0 -b 0.0.0.0 <"$tmp/console" >"$tmp/server.out" 2>"$tmp/server.err" &
pids+=($!)
exec {console}>"$tmp/console"
held+=("$console")
wait_5s "the server's listening line" grep -q '^listening on ' "$tmp/server.out"
port=$(listening_port "$tmp/server.out")
server_log
show_port
say "Look at: the LISTEN line.  Local address 0.0.0.0:$port: every address of"
say "this machine, port $port.  There is no peer yet: the peer column says"
say "0.0.0.0:*, anyone."
say "For a LISTEN socket ss shows the accept queue: Recv-Q = connections waiting"
somaxconn=$(cat /proc/sys/net/core/somaxconn)
say "for accept() now, Send-Q = the backlog passed to listen(): the server's"
say "default, 1024 (UNP's LISTENQ), which the kernel caps at net.core.somaxconn"
say "($somaxconn here)."

step "2. Two clients connect: each connection appears twice, once per end"
declare -A in_fd pid_of port_of fd_of   # per client: its stdin, PID, port, fd
for name in a b; do
    mkfifo "$tmp/$name.in"
    exec {fd}<>"$tmp/$name.in"          # its keyboard: open, silent
    held+=("$fd")
    in_fd[$name]=$fd
    n=$(grep -c '^accepted ' "$tmp/server.out" || true)
    spawn ./select_client 127.0.0.1 "$port" <"$tmp/$name.in" \
        >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids+=($!)
    pid_of[$name]=$!
    wait_5s "client $name's accept" accepts $((n + 1))
    note_accept "client $name"
    port_of[$name]=$CPORT
    fd_of[$name]=$CFD
    say "  client $name | $(cat "$tmp/$name.err")"
done
server_log
show_port
say "Look at: four ESTABLISHED lines for two connections.  The client end has"
say "the client's ephemeral port as local address; the server end has port $port."
say "Both ends of a TCP connection are sockets with their own state."

step "3. Client a closes first: the client end waits in TIME_WAIT"
say "The script ends a's input: select_client sends FIN (shutdown SHUT_WR), the"
say "server reads EOF, closes, and sends its own FIN."
release "${in_fd[a]}"
wait_5s "client a's TIME-WAIT" \
    in_state time-wait "( sport = :${port_of[a]} and dport = :$port )"
wait_5s "the server end's close" conn_gone "( sport = :$port and dport = :${port_of[a]} )"
server_log
show_port
say "Look at: TIME-WAIT on a's end (local port ${port_of[a]}), and no line left for the"
say "server's end of it.  The side that sends the first FIN (the active closer)"
say "goes through FIN_WAIT1, FIN_WAIT2 to TIME_WAIT and stays there 60 s on Linux."
say "The other end went CLOSE_WAIT -> LAST_ACK -> closed at once: nothing to see."

step "4. The operator kicks client b: now the server end waits in TIME_WAIT"
printf 'kick %s\n' "${fd_of[b]}" >&"$console"
say "  \$ kick ${fd_of[b]}          (typed on the server's console)"
wait_5s "the server end's TIME-WAIT" \
    in_state time-wait "( sport = :$port and dport = :${port_of[b]} )"
wait_5s "client b's close" conn_gone "( sport = :${port_of[b]} and dport = :$port )"
server_log
wait "${pid_of[b]}" && status=0 || status=$?
say "  client b | $(tail -n 1 "$tmp/b.err")   (exit status $status)"
show_port
say "Look at: TIME-WAIT whose local port is $port: the server closed first, so"
say "the server end is the active closer this time.  TIME_WAIT is not about"
say "client or server: it stays with whoever sent the first FIN."

step "5. The server closes, the peer never does: CLOSE_WAIT and FIN_WAIT2"
say "This script becomes the peer: bash's /dev/tcp opens a connection that"
say "nothing ever reads or closes until we say so."
n=$(grep -c '^accepted ' "$tmp/server.out" || true)
exec {peer}<>"/dev/tcp/127.0.0.1/$port"
held+=("$peer")
wait_5s "the peer's accept" accepts $((n + 1))
note_accept "the /dev/tcp peer"
peer_port=$CPORT
server_log
printf 'kick %s\n' "$CFD" >&"$console"
say "  \$ kick $CFD          (typed on the server's console)"
wait_5s "the peer's CLOSE-WAIT" in_state close-wait "( sport = :$peer_port and dport = :$port )"
wait_5s "the server end's FIN-WAIT-2" \
    in_state fin-wait-2 "( sport = :$port and dport = :$peer_port )"
server_log
show_port
say "Look at: CLOSE-WAIT on the peer's end: its kernel got the server's FIN and"
say "acknowledged it, and now waits for the application to close() - which"
say "this one never does.  Its Recv-Q holds the kick notice nobody has read."
say "FIN-WAIT-2 on the server's end: its FIN was acknowledged, it waits for the"
say "peer's.  A socket that stays in CLOSE_WAIT belongs to a program that has"
say "not called close(): often one that has not even read the EOF yet, because"
say "it is not reading that socket (experiment 9).  The server's FIN_WAIT2 end"
say "belongs to no process any more; the kernel gives up on such an orphan"
say "after 60 s (net.ipv4.tcp_fin_timeout)."

step "6. The peer reads the notice and closes: the server end goes TIME_WAIT"
IFS= read -r -t 5 notice <&"$peer"
say "  the peer read: $notice"
release "$peer"
wait_5s "the server end's TIME-WAIT" \
    in_state time-wait "( sport = :$port and dport = :$peer_port )"
wait_5s "the peer's close" conn_gone "( sport = :$peer_port and dport = :$port )"
show_port
say "Look at: the peer's end is gone (CLOSE_WAIT -> LAST_ACK -> closed when the"
say "server acknowledged its FIN) and the server end moved from FIN-WAIT-2 to"
say "TIME-WAIT.  (Reading the notice first matters: closing a socket with"
say "unread data sends RST instead of FIN, and RST skips TIME_WAIT.)"

step "7. The server quits: the TIME_WAIT entries outlive the process"
printf 'quit\n' >&"$console"
wait "${pids[0]}" && status=0 || status=$?
server_log
say "  (the server exited with status $status)"
show_port
say "Look at: no LISTEN line any more, and no process owns this port, yet the"
say "TIME-WAIT entries stay until their 60 s are over: they belong to the"
say "kernel.  Lab 03 shows what that means for restarting a server."
