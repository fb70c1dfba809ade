#!/usr/bin/env bash
# lab/02-backlog.sh - the listen() backlog: with accept() paused, the kernel
# still completes the handshake for a few clients and queues them; once the
# queue is full it drops further SYNs, and those clients wait in SYN_SENT
# until a retransmitted SYN finds room.
#
# Run it from anywhere once the programs are built (make).  It starts its
# own server with backlog 2 on a port the kernel chooses, connects six
# clients over loopback, stops everything it started, and takes 1 to 3 s.
set -euo pipefail
# shellcheck source=lab/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROG=${0##*/}
require_built "" select_server select_client

BACKLOG=2
CLIENTS=6

lab_setup

# ms_since START - milliseconds since START, a saved $EPOCHREALTIME.
ms_since() {
    echo $(((${EPOCHREALTIME/[.,]/} - ${1/[.,]/}) / 1000))
}

# client_state PID - the TCP state of the socket of our client PID, found
# by its owner (ss -p); empty while it has none.  Its port: client_port PID.
client_state() {
    ss -Htanp "( dport = :$port )" | awk -v pid="pid=$1," 'index($0, pid) { print $1 }'
}

client_port() {
    ss -Htanp "( dport = :$port )" |
        awk -v pid="pid=$1," 'index($0, pid) { sub(/.*:/, "", $4); print $4 }'
}

has_socket() {
    [[ -n $(client_state "$1") ]]
}

# count STATE - how many of our clients are in STATE.
count() {
    local pid n=0
    for pid in "${client_pids[@]}"; do
        [[ $(client_state "$pid") != "$1" ]] || n=$((n + 1))
    done
    echo "$n"
}

# server_ends STATE - how many server ends of our clients' connections are
# in STATE.
server_ends() {
    ss -Htan state "$1" "( sport = :$port )" |
        awk -v ports=" $(cut -f1 "$labels" | tr '\n' ' ')" \
            '{ p = $4; sub(/.*:/, "", p) } index(ports, " " p " ") { n++ } END { print n + 0 }'
}

accepts() {
    (($(grep -c '^accepted ' "$tmp/server.out" || true) >= $1))
}

# listen_overflows - the kernel's count of SYNs dropped because an accept
# queue was full, for the whole machine ("netstat -s | grep -i listen").
listen_overflows() {
    awk '/^TcpExt:/ { if (!seen) { split($0, key); seen = 1; next }
                      for (i = 2; i <= NF; i++)
                          if (key[i] == "ListenOverflows") print $i }' \
        /proc/net/netstat
}

# Who is who: "PORT<tab>NAME<tab>NOTE" for each client, for the labels
# show_port puts on the ss lines (NOTE: what the server did with it).
labels=$tmp/labels
: >"$labels"

# show_port [netstat] - the port's connections in ss -tan (and netstat -nat
# too, if asked and installed), each ss line labelled with whose end it is.
show_port() {
    if [[ ${1-} == netstat ]] && command -v netstat >/dev/null; then
        say "  \$ netstat -nat | grep ':$port '"
        netstat -nat | sed -n '2s/ *$//p' | sed 's/^/  /'
        netstat -nat | grep -- ":$port " | sed 's/ *$//; s/^/  /' || true
    fi
    say "  \$ ss -tan '( sport = :$port or dport = :$port )'"
    ss -tan "( sport = :$port or dport = :$port )" |
        awk -v port="$port" -v q="'" -F '\t' '
            FILENAME != "-" { name[$1] = $2; note[$1] = $3; next }
            FNR == 1 { print "  " $0; next }
            {
                split($0, f, " +")
                lp = f[4]; sub(/.*:/, "", lp)
                pp = f[5]; sub(/.*:/, "", pp)
                if (f[1] == "LISTEN")
                    what = "the listening socket"
                else if (lp == port)
                    what = (pp in name) ? "server end of " name[pp] " (" note[pp] ")" : "server end"
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

# syn_schedule - print when this kernel sends a connecting client's SYNs.
# The wait before each retransmission starts at 1 s; since Linux 6.5 the
# first net.ipv4.tcp_syn_linear_timeouts of them stay at 1 s, then each
# doubles (before 6.5 they double from the start).  connect() gives up
# when the first wait that ends after (2^(tcp_syn_retries+1) - 1) s is
# over: the time 1 + 2 + 4 + ... would have taken.
syn_schedule() {
    local retries linear=0 budget t=0 i wait sent=(0)
    retries=$(cat /proc/sys/net/ipv4/tcp_syn_retries)
    if [[ -r /proc/sys/net/ipv4/tcp_syn_linear_timeouts ]]; then
        linear=$(cat /proc/sys/net/ipv4/tcp_syn_linear_timeouts)
        say "  net.ipv4.tcp_syn_retries = $retries, net.ipv4.tcp_syn_linear_timeouts = $linear"
    else
        say "  net.ipv4.tcp_syn_retries = $retries (no tcp_syn_linear_timeouts: a kernel before 6.5)"
    fi
    budget=$(((2 << retries) - 1))
    for ((i = 0; t < budget; i++)); do
        if ((i <= linear)); then wait=1; else wait=$((1 << (i - linear))); fi
        t=$((t + wait))
        ((t < budget)) && sent+=("$t")
    done
    say "  SYNs at ${sent[*]} s; connect() fails (ETIMEDOUT) at about $t s"
}

step "1. A server with listen(fd, $BACKLOG): a backlog of $BACKLOG"
mkfifo "$tmp/console"
cmd "./select_server -p 0 -b 0.0.0.0 -B $BACKLOG"
spawn ./select_server -p 0 -b 0.0.0.0 -B "$BACKLOG" <"$tmp/console" \
    >"$tmp/server.out" 2>"$tmp/server.err" &
pids+=($!)
exec {console}>"$tmp/console"
held+=("$console")
wait_5s "the server's listening line" grep -q '^listening on ' "$tmp/server.out"
port=$(listening_port "$tmp/server.out")
server_log
show_port
say "Look at: the LISTEN line.  For a listening socket ss shows the accept"
say "queue: Recv-Q = connections waiting for accept() now (0), Send-Q = the"
say "backlog given to listen() ($BACKLOG)."

step "2. The operator types 'pause': the server stops calling accept()"
printf 'pause\n' >&"$console"
wait_5s "the pause reply" grep -q '^paused' "$tmp/server.out"
server_log
say "The listener leaves select()'s read set, so nothing takes connections"
say "out of the kernel's accept queue any more."

step "3. $CLIENTS clients connect, one after the other"
mkfifo "$tmp/idle"
exec {idle}<>"$tmp/idle"        # the clients' keyboard: open, silent
held+=("$idle")
overflows_before=$(listen_overflows)
client_pids=()
for ((i = 1; i <= CLIENTS; i++)); do
    spawn ./select_client -w 10 127.0.0.1 "$port" <"$tmp/idle" \
        >"$tmp/c$i.out" 2>"$tmp/c$i.err" &
    pids+=($!)
    client_pids+=($!)
    # Wait for its socket to show up, then note its port.
    wait_5s "client $i's socket" has_socket "$!"
    cport=$(client_port "$!")
    printf '%s\tclient %s\tnot accepted\n' "$cport" "$i" >>"$labels"
    say "  client $i: $ ./select_client -w 10 127.0.0.1 $port &   (its port: $cport)"
done
sleep 0.2       # let every handshake that can complete do so (loopback: far less)

step "4. What the kernel did with them, while nobody calls accept()"
show_port netstat
established=$(count ESTAB)
waiting=$(count SYN-SENT)
overflows=$(($(listen_overflows) - overflows_before))
say ""
say "  client ends ESTABLISHED: $established     client ends SYN-SENT: $waiting"
say "  server ends ESTABLISHED: $(server_ends established) (accepted by the server: $(grep -c '^accepted ' "$tmp/server.out" || true))"
say "  SYNs the kernel dropped for a full accept queue since step 3: $overflows"
say "  (ListenOverflows in /proc/net/netstat, for the whole machine; also"
say "  shown by: netstat -s | grep -i listen)"
for ((i = 1; i <= CLIENTS; i++)); do
    said=$(cat "$tmp/c$i.err")
    say "  client $i says: ${said:-(nothing yet: still connecting)}"
done
say ""
say "Look at: the first $established clients are ESTABLISHED at both ends, and their"
say "select_client already printed 'connected to' - yet the server never"
say "accepted them: the kernel completed the three-way handshake by itself and"
say "put them in the listener's accept queue.  The LISTEN line shows that"
say "queue: Recv-Q $established, with backlog (Send-Q) $BACKLOG.  Linux lets backlog + 1"
say "connections wait: only a queue that already holds MORE than the backlog"
say "turns a connection away.  The other $waiting are SYN-SENT with Send-Q 1 (their SYN, not"
say "acknowledged) and have no server end at all: with the queue full, Linux"
say "drops the SYN without an answer - no RST, no ECONNREFUSED: the client"
say "does not fail, it sends its SYN again later (netstat says SYN_SENT)."
say ""
say "When?  This kernel's schedule for retransmitting a SYN:"
syn_schedule

step "5. The operator types 'resume': every client gets in"
resumed=$EPOCHREALTIME
printf 'resume\n' >&"$console"
wait_5s "the queued clients' accepts" accepts "$established"
first=$(ms_since "$resumed")
wait_5s "every accept" accepts "$CLIENTS"
all=$(ms_since "$resumed")
server_log
say "  the $established queued ones accepted after $first ms, all $CLIENTS after $all ms"
while IFS=$'\t' read -r cport name _; do
    cfd=$(sed -n "s/^accepted .*:$cport on fd \([0-9]*\) .*/\1/p" "$tmp/server.out")
    printf '%s\t%s\tfd %s\n' "$cport" "$name" "$cfd"
done <"$labels" >"$tmp/labels.new"
mv "$tmp/labels.new" "$labels"
show_port
say "Look at: $CLIENTS ESTABLISHED pairs, and the listener's Recv-Q back to 0."
say "The queued clients came out of the queue at once (one readable listener,"
say "accept() until EAGAIN); the SYN-SENT ones only when their next SYN"
say "retransmission found room - that is the pause of up to a few seconds"
say "that a full backlog costs a client."

step "6. The operator types 'quit'"
printf 'quit\n' >&"$console"
wait "${pids[0]}" && status=0 || status=$?
server_log
say "  (the server exited with status $status)"
