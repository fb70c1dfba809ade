# ladder.awk - draw one TCP connection as a ladder (sequence) diagram, in
# plain ASCII, from what tcpdump printed about it.
#
#   tcpdump -r echo.pcap -n -tt | awk -f lab/ladder.awk
#
# Two columns, the client on the left and the server on the right; one
# arrow per segment, with its flags and its sequence and acknowledgement
# numbers, both relative to the sender's and the receiver's initial
# sequence number (ISN), as tcpdump prints them after the handshake; and,
# beside each end, its TCP state wherever this segment changed it.  ARP
# lines appear between the arrows as they come.
#
# The client is whoever sent the first SYN.  The states are worked out from
# the segments by the rules of RFC 9293 (section 3.3.2), not read from the
# kernel: a segment changes its sender's state as it leaves, and its
# receiver's as it arrives, taken to be at once.  So the capture must see
# every segment of the connection, each must arrive (not so on a router
# that drops some), and before the next one leaves (not so for two FINs
# that cross, in a simultaneous close).
#
# Input: tcpdump's default one-line format with -n and -tt (seconds since
# the epoch).  Lines it does not understand are skipped.

BEGIN {
    TIME_W = 8          # "   0.045"
    STATE_W = 11        # "ESTABLISHED"
    ARROW_W = 42        # between the two state columns
    client = ""
    # (Widths spelled into the formats: not every awk knows printf's "*".)
    ROW = "%" TIME_W "s  %-" STATE_W "s %-" ARROW_W "s %s"
    HEAD = "%" TIME_W "s  %-" (STATE_W + 1 + ARROW_W) "s %s\n"
    early = ""          # lines that came before the first SYN
}

# field NAME - the number after NAME in this line ("" if none): seq gives
# "1:7" or "7", ack "7", length "6", mss "1460".
function field(name,    s) {
    if (!match($0, "[ [,]" name " [0-9]+(:[0-9]+)?"))
        return ""
    s = substr($0, RSTART + 1, RLENGTH - 1)
    return substr(s, length(name) + 2)
}

# pad S WIDTH FILL - S, filled up to WIDTH with FILL.
function pad(s, width, fill) {
    while (length(s) < width)
        s = s fill
    return s
}

# row TIME LEFT MIDDLE RIGHT - one line of the diagram; before the header
# is out, kept for later.
function row(t, left, middle, right,    line) {
    line = sprintf(ROW, t, left, middle, right)
    sub(/ +$/, "", line)
    if (client == "")
        early = early line "\n"
    else
        print line
}

# arrow LABEL TO_SERVER - an arrow carrying LABEL, left to right or back.
function arrow(label, to_server) {
    if (to_server)
        return pad("-- " label " ", ARROW_W - 1, "-") ">"
    return "<" pad("", ARROW_W - length(label) - 4, "-") " " label " --"
}

# ms TIMESTAMP - milliseconds since the first line drawn.
function ms(ts) {
    if (t0 == "")
        t0 = ts
    return sprintf("%.3f", (ts - t0) * 1000)
}

# set_state END STATE - END (client or server) is now in STATE; remember
# to print it on this line.
function set_state(end, st) {
    if (state[end] == st)
        return
    state[end] = st
    shown[end] = st
}

# ARP: between the arrows, as a note.
$2 == "ARP," {
    note = $0
    sub(/^[^ ]+ ARP, /, "ARP ", note)
    sub(/, length [0-9]+$/, "", note)
    row(ms($1), "", note, "")
    next
}

$2 != "IP" || $4 != ">" || !match($0, /Flags \[[^]]*\]/) {
    next
}

{
    flags = substr($0, RSTART + 7, RLENGTH - 8)
    src = $3
    dst = $5
    sub(/:$/, "", dst)
    if (client == "") {
        if (flags != "S")
            next        # not from the start of a connection: nothing to draw
        client = src
        server = dst
        state["client"] = "CLOSED"
        state["server"] = "LISTEN"
        caddr = client; sub(/\.[0-9]+$/, "", caddr)
        saddr = server; sub(/\.[0-9]+$/, "", saddr)
        printf HEAD, "time", "client", "server"
        printf HEAD, "(ms)", caddr ":" substr(client, length(caddr) + 2),
            saddr ":" substr(server, length(saddr) + 2)
        row("", state["client"], "", state["server"])
        printf "%s", early
    }
    if (src == client && dst == server) {
        from = "client"; to = "server"
    } else if (src == server && dst == client) {
        from = "server"; to = "client"
    } else {
        next            # another connection
    }
    seq = field("seq"); ack = field("ack"); len = field("length"); mss = field("mss")
    # tcpdump prints the SYNs' own numbers in full, relative ones after
    # them: make the SYNs relative too (an ISN is sequence number 0).
    if (flags ~ /S/) {
        isn[from] = seq
        seq = 0
    }
    # So is the ACK of a SYN, and any ACK from a side that never sent one
    # (a RST refusing a connection): tcpdump has no base for it.
    if (ack != "" && (to in isn) && (flags ~ /S/ || !(from in isn)))
        ack = ack - isn[to]
    label = "[" flags "]"
    if (seq != "" && (flags ~ /[SF]/ || len > 0))
        label = label " seq " seq
    if (ack != "")
        label = label " ack " ack
    if (len > 0)
        label = label " len " len
    if (mss != "")
        label = label " mss " mss

    delete shown
    # The sender, as the segment leaves.
    if (flags ~ /R/)
        set_state(from, "CLOSED")
    else if (flags == "S")
        set_state(from, "SYN_SENT")
    else if (flags ~ /S/)
        set_state(from, "SYN_RECV")
    else if (flags ~ /F/) {
        # The FIN takes the sequence number after the data.
        n = split(seq, part, ":")
        fin[from] = part[n]
        if (state[from] == "ESTABLISHED" || state[from] == "SYN_RECV")
            set_state(from, "FIN_WAIT_1")
        else if (state[from] == "CLOSE_WAIT")
            set_state(from, "LAST_ACK")
    }
    # The receiver, as it arrives: first what its ACK says, then its FIN.
    if (flags ~ /R/)
        set_state(to, "CLOSED")
    else if (flags ~ /S/ && flags ~ /\./ && state[to] == "SYN_SENT")
        set_state(to, "ESTABLISHED")
    else if (flags ~ /\./ && state[to] == "SYN_RECV")
        set_state(to, "ESTABLISHED")
    if (flags ~ /\./ && (to in fin) && ack + 0 >= fin[to] + 1) {
        if (state[to] == "FIN_WAIT_1")
            set_state(to, "FIN_WAIT_2")
        else if (state[to] == "CLOSING")
            set_state(to, "TIME_WAIT")
        else if (state[to] == "LAST_ACK")
            set_state(to, "CLOSED")
    }
    if (flags ~ /F/) {
        if (state[to] == "ESTABLISHED")
            set_state(to, "CLOSE_WAIT")
        else if (state[to] == "FIN_WAIT_1")
            set_state(to, "CLOSING")
        else if (state[to] == "FIN_WAIT_2")
            set_state(to, "TIME_WAIT")
    }
    row(ms($1), shown["client"], arrow(label, from == "client"), shown["server"])
}
