# lab_11_packet_capture.bats - experiment 11: what an echo conversation
# looks like on the wire, captured on the router between lnxclient and
# lnxserver.  ARP finds the router first; the handshake says mss 1460
# (Ethernet); each line goes and comes back once, the first acknowledged at
# once (a quick ACK, the connection being new), the second by its echo (a
# delayed ACK); the close takes three segments, the server's FIN
# acknowledging the client's.  The ladder diagram (lab/ladder.awk) draws the
# same packets with each end's state.  Needs tcpdump, and root or user
# namespaces; skipped, saying so, without them.

load test_helper

SCRIPT=$BATS_TEST_DIRNAME/../lab/11-packet-capture.sh
LADDER=$BATS_TEST_DIRNAME/../lab/ladder.awk

# The experiment runs once for the whole file (about 2 s); most tests check
# one thing it printed.
setup_file() {
    export RUN_DIR=$BATS_FILE_TMPDIR
    if ! command -v tcpdump >/dev/null; then
        echo "tcpdump is not installed (apt-get install tcpdump)" >"$RUN_DIR/skip"
    elif userns_missing; then
        echo "needs root or user namespaces (unshare --user fails here)" >"$RUN_DIR/skip"
    else
        run_experiment_once "$SCRIPT"
    fi
}

teardown_file() {
    experiment_down 11
}

# ran_experiment - skip if the experiment could not run here; otherwise
# fail unless it succeeded with nothing on stderr.
ran_experiment() {
    experiment_succeeded
    assert_equal "$(cat "$RUN_DIR/err")" ""
}

# section N - `run` on what the experiment printed in its step N.
section() {
    run sed -n "/^== $1\\. /,/^== /p" "$RUN_DIR/out"
}

# explained - `run` on the explained packets of step 5, one a line, from
# "  1  client > all     ARP ..." on, without the leading spaces.
explained() {
    run sed -n 's/^ *\([0-9][0-9]*  [a-z]* > [a-z]* .*\)$/\1/p' "$RUN_DIR/out"
}

# tcp_segments - how many TCP segments tcpdump listed in step 5.
tcp_segments() {
    section 5
    grep -c '^    [0-9:.]* IP 10\.10\.1[12]\.2\.[0-9]* > ' <<<"$output"
}

@test "the experiment ends well, and leaves no namespace behind" {
    ran_experiment
    run cat "$RUN_DIR/out"
    assert_line "    (select_client exited with status 0)"
    assert_line --regexp '^    tcpdump: listening on t[0-9]+f11-rtc, '
    if [[ $(id -u) == 0 ]]; then
        run ip netns list
        refute_output --partial "${FILE_PREFIX}11-"
    else
        assert_line --index 0 "(11-packet-capture.sh: not root, so it runs in a user namespace of its own)"
    fi
}

@test "ARP comes first: lnxclient asks who has 10.10.12.1, the router answers, then the SYN leaves" {
    ran_experiment
    explained
    assert_line --index 0 "1  client > all     ARP   who has 10.10.12.1 (the router)?"
    assert_line --index 1 --regexp '^2  router > client  ARP   10\.10\.12\.1 is at ([0-9a-f]{2}:){5}[0-9a-f]{2}$'
    assert_line --index 2 "3  client > server  [S]   SYN      handshake 1/3: the client asks to connect"
}

@test "the handshake crosses Ethernet: mss 1460 in the SYN and in the SYN-ACK, then the ACK" {
    ran_experiment
    section 5
    assert_line --regexp '^    [0-9:.]+ IP 10\.10\.12\.2\.[0-9]+ > 10\.10\.11\.2\.9877: Flags \[S\], seq [0-9]+, win [0-9]+, options \[mss 1460,\.\.\.\], length 0$'
    assert_line --regexp '^    [0-9:.]+ IP 10\.10\.11\.2\.9877 > 10\.10\.12\.2\.[0-9]+: Flags \[S\.\], seq [0-9]+, ack [0-9]+, win [0-9]+, options \[mss 1460,\.\.\.\], length 0$'
    explained
    assert_line --index 3 "4  server > client  [S.]  SYN-ACK  handshake 2/3: the server's kernel agrees (before accept())"
    assert_line --index 4 "5  client > server  [.]   ACK      handshake 3/3: connected"
}

@test "each line goes and comes back once; the first is acknowledged at once, the second by its echo or at once" {
    ran_experiment
    explained
    # The first line, on a new connection: the server's kernel sends a
    # quick ACK before the echo is even written.
    assert_line --index 5 "6  client > server  [P.]  data     a line from the client: 6 bytes"
    assert_line --index 6 "7  server > client  [.]   ACK      the server's kernel: received, at once (quick ACK)"
    assert_line --index 7 "8  server > client  [P.]  data     its echo: 6 bytes"
    assert_line --index 8 "9  client > server  [.]   ACK      the client's kernel: received, at once (quick ACK)"
    assert_line --index 9 "10  client > server  [P.]  data     a line from the client: 4 bytes"
    # The second: as a rule, the echo carries the ACK (the server's kernel
    # has seen an interactive exchange and delays its ACKs); a server slower
    # than the delayed-ACK timer would get a separate ACK out first.
    assert_equal "$(grep -c 'data     a line from the client' <<<"$output")" 2
    assert_equal "$(grep -c 'data     its echo' <<<"$output")" 2
    packets=$output
    run cat "$RUN_DIR/out"
    assert_line ">> look: line 1 (6 bytes): acknowledged at once, by an ACK of its own (a quick ACK)"
    if grep -qxF '11  server > client  [P.]  data     its echo: 4 bytes, carrying the ACK of the line (delayed ACK)' \
        <<<"$packets"; then
        assert_line ">> look: line 2 (4 bytes): acknowledged by its echo (a delayed ACK, riding on data)"
    else
        assert_line ">> look: line 2 (4 bytes): acknowledged at once, by an ACK of its own (a quick ACK)"
    fi
}

@test "the close: the client's FIN, the server's FIN (as a rule acknowledging it), the last ACK; the client in TIME-WAIT" {
    ran_experiment
    explained
    fins=$(grep -n 'FIN  ' <<<"$output" | cut -d: -f1)
    read -r first second <<<"$(tr '\n' ' ' <<<"$fins")"
    assert_regex "${lines[first - 1]}" '^[0-9]+  client > server  \[F\.\]  FIN      the client has nothing more to send \(end of its stdin\)$'
    assert_equal "${lines[-1]#* }" " client > server  [.]   ACK      of the server's FIN: the client end is in TIME_WAIT"
    run cat "$RUN_DIR/out"
    if ((second == first + 1)); then
        # Three segments: the server's FIN carries the ACK of the client's.
        explained
        assert_regex "${lines[second - 1]}" "^[0-9]+  server > client  \\[F\\.\\]  FIN      the server closes its end too, and acknowledges the client's FIN\$"
        assert_equal "$((${#lines[@]} - first + 1))" 3
        run cat "$RUN_DIR/out"
        assert_line ">> look: the close: 3 segments; the server's FIN also acknowledges the client's"
    else
        explained
        assert_regex "${lines[first]}" "^[0-9]+  server > client  \\[\\.\\]   ACK      of the client's FIN, on its own\$"
        assert_equal "$((${#lines[@]} - first + 1))" 4
        run cat "$RUN_DIR/out"
        assert_line ">> look: the close: 4 segments; the server's kernel acknowledged the client's FIN before the server closed"
    fi
    assert_line --regexp '^    lnxclient \| TIME-WAIT +0 +0 +10\.10\.12\.2:[0-9]+ +10\.10\.11\.2:9877 *$'
}

@test "the count adds up: 3 segments to connect, 7 for the two lines, 3 to close (one more for each separate ACK)" {
    ran_experiment
    n=$(tcp_segments)
    run cat "$RUN_DIR/out"
    line=$(grep '^    [0-9]* TCP segments: ' <<<"$output")
    [[ $line =~ ^\ \ \ \ ([0-9]+)\ TCP\ segments:\ 3\ to\ connect,\ ([0-9]+)\ for\ the\ two\ lines,\ ([34])\ to\ close$ ]] ||
        fail "unexpected count: $line"
    assert_equal "${BASH_REMATCH[1]}" "$n"
    assert_equal "$((3 + BASH_REMATCH[2] + BASH_REMATCH[3]))" "$n"
    # 6 = each line, its echo, the ACK of the echo; plus the quick ACKs.
    quick=$(grep -c '^>> look: line [12] .*: acknowledged at once' <<<"$output")
    assert_equal "${BASH_REMATCH[2]}" "$((6 + quick))"
}

@test "the ladder diagram: one arrow per TCP segment, each end's state where it changes" {
    ran_experiment
    # The diagram: between the command line and the first ">> look", four
    # spaces in.
    ladder=$(sed -n '/awk -f lab\/ladder\.awk$/,/^>> look/p' "$RUN_DIR/out" | sed '1d;$d' | cut -c5-)
    assert_regex "$(sed -n 1p <<<"$ladder")" '^    time  client {49}server$'
    assert_regex "$(sed -n 2p <<<"$ladder")" '^    \(ms\)  10\.10\.12\.2:[0-9]+ +10\.10\.11\.2:9877$'
    assert_equal "$(sed -n 3p <<<"$ladder")" "          CLOSED                                                 LISTEN"
    assert_equal "$(grep -cE -- '-> ?|<-' <<<"$ladder")" "$(tcp_segments)"
    assert_equal "$(grep -c ' ARP ' <<<"$ladder")" 2
    # The state columns: characters 11 to 21, and 66 on (ARP notes, which
    # may run into the latter, aside).
    client_states=$(sed -n '3,$p' <<<"$ladder" | grep -v ' ARP ' | cut -c11-21 | grep -v '^ *$' | tr -s ' \n' ' ')
    server_states=$(sed -n '3,$p' <<<"$ladder" | grep -v ' ARP ' | cut -c66- | grep -v '^ *$' | tr -s ' \n' ' ')
    run cat "$RUN_DIR/out"
    if grep -q '^>> look: the close: 3 segments' <<<"$output"; then
        assert_equal "$client_states" "CLOSED SYN_SENT ESTABLISHED FIN_WAIT_1 TIME_WAIT "
    else
        assert_equal "$client_states" "CLOSED SYN_SENT ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 TIME_WAIT "
    fi
    assert_equal "$server_states" "LISTEN SYN_RECV ESTABLISHED CLOSE_WAIT LAST_ACK CLOSED "
}

@test "ladder.awk draws a four-segment close: FIN_WAIT_2 while the server has not closed yet" {
    run --separate-stderr awk -f "$LADDER" <<'EOF'
1000.000000 IP 10.0.0.1.40000 > 10.0.0.2.9877: Flags [S], seq 100, win 64240, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0
1000.000100 IP 10.0.0.2.9877 > 10.0.0.1.40000: Flags [S.], seq 500, ack 101, win 65160, options [mss 1460,sackOK,TS val 2 ecr 1,nop,wscale 7], length 0
1000.000200 IP 10.0.0.1.40000 > 10.0.0.2.9877: Flags [.], ack 1, win 502, length 0
1000.005000 IP 10.0.0.1.40000 > 10.0.0.2.9877: Flags [P.], seq 1:4, ack 1, win 502, length 3
1000.005100 IP 10.0.0.2.9877 > 10.0.0.1.40000: Flags [.], ack 4, win 509, length 0
1000.010000 IP 10.0.0.1.40000 > 10.0.0.2.9877: Flags [F.], seq 4, ack 1, win 502, length 0
1000.010100 IP 10.0.0.2.9877 > 10.0.0.1.40000: Flags [.], ack 5, win 509, length 0
1000.050000 IP 10.0.0.2.9877 > 10.0.0.1.40000: Flags [F.], seq 1, ack 5, win 509, length 0
1000.050100 IP 10.0.0.1.40000 > 10.0.0.2.9877: Flags [.], ack 2, win 502, length 0
EOF
    assert_success
    assert_equal "$stderr" ""
    assert_output "    time  client                                                 server
    (ms)  10.0.0.1:40000                                         10.0.0.2:9877
          CLOSED                                                 LISTEN
   0.000  SYN_SENT    -- [S] seq 0 mss 1460 ------------------->
   0.100  ESTABLISHED <------------- [S.] seq 0 ack 1 mss 1460 -- SYN_RECV
   0.200              -- [.] ack 1 ----------------------------> ESTABLISHED
   5.000              -- [P.] seq 1:4 ack 1 len 3 ------------->
   5.100              <----------------------------- [.] ack 4 --
  10.000  FIN_WAIT_1  -- [F.] seq 4 ack 1 ---------------------> CLOSE_WAIT
  10.100  FIN_WAIT_2  <----------------------------- [.] ack 5 --
  50.000  TIME_WAIT   <---------------------- [F.] seq 1 ack 5 -- LAST_ACK
  50.100              -- [.] ack 2 ----------------------------> CLOSED"
}

@test "ladder.awk skips what is not the connection's: no SYN seen, nothing drawn" {
    run --separate-stderr awk -f "$LADDER" <<'EOF'
reading from file echo.pcap, link-type EN10MB (Ethernet), snapshot length 262144
1000.000000 IP 10.0.0.1.40000 > 10.0.0.2.9877: Flags [P.], seq 1:4, ack 1, win 502, length 3
EOF
    assert_success
    assert_output ""
}

@test "tshark summarises the same file, or the step says it was skipped" {
    ran_experiment
    section 7
    if command -v tshark >/dev/null; then
        assert_line --regexp '\[SYN, ACK\].* MSS=1460'
        assert_line --regexp '\[FIN, ACK\]'
    else
        assert_line "tshark is not installed: skipped.  (apt-get install tshark, then run"
    fi
}

@test "11-packet-capture.sh without the programs built says: run make first" {
    mkdir "$BATS_TEST_TMPDIR/lab"
    cp "$SCRIPT" "$(dirname "$SCRIPT")/lib.sh" "$BATS_TEST_TMPDIR/lab/"

    run --separate-stderr "$BATS_TEST_TMPDIR/lab/11-packet-capture.sh" 3>&-

    assert_failure 1
    assert_output ''
    assert_equal "$stderr" "11-packet-capture.sh: ./select_server is missing: run make first"
}

@test "not root where user namespaces are disabled: exit 4 before building anything, saying why and what to run" {
    command -v tcpdump >/dev/null || skip "tcpdump is not installed (apt-get install tcpdump)"
    # As nobody, where user namespaces are off (or seem to be).
    without_userns "$SCRIPT"

    run --separate-stderr "${NO_USERNS[@]}" "$SCRIPT"

    assert_failure 4
    assert_output ""
    assert_equal "${stderr_lines[0]}" "11-packet-capture.sh: needs root, or a user namespace of its own, and this user cannot create one:"
    assert_equal "${stderr_lines[-1]}" "Run it as root instead: sudo $SCRIPT"
}
