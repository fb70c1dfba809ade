# lab_11_packet_capture.bats - experiment 11: what one echo exchange looks
# like on the wire.  tcpdump on the loopback interface sees the three-way
# handshake (SYN, SYN-ACK, ACK), the client's line and the server's echo,
# each acknowledged, and one FIN from each side followed by a last ACK.
# Needs root and tcpdump; skipped, saying so, without them.

load test_helper

SCRIPT=$BATS_TEST_DIRNAME/../lab/11-packet-capture.sh

# The capture file ends in .pcap: Debian's AppArmor profile for tcpdump
# lets it write only such files.
PCAP=$BATS_TEST_TMPDIR/echo.pcap

# need_capture - skip the test, saying why, without tcpdump or root.
need_capture() {
    if ! command -v tcpdump >/dev/null; then
        skip "tcpdump is not installed (apt-get install tcpdump)"
    fi
    if [[ $(id -u) != 0 ]]; then
        skip "capturing packets needs root"
    fi
}

# start_capture - tcpdump on lo for the server's port, each packet written
# to PCAP as it arrives; sets TCPDUMP_PID once it is capturing.
start_capture() {
    start_bg "$BATS_TEST_TMPDIR/tcpdump" tcpdump -i lo -n -U --immediate-mode \
        -c 40 -w "$PCAP" "tcp port $PORT"
    TCPDUMP_PID=$BG_PID
    wait_for "tcpdump to capture" grep -q 'listening on lo' "$BATS_TEST_TMPDIR/tcpdump.err"
}

# conversation - one line per packet captured: who sent it, its flags and
# its payload length, e.g. "client P. 6".
conversation() {
    tcpdump -r "$PCAP" -n 2>/dev/null | awk -v port="$PORT" '{
        src = $3; sub(/.*\./, "", src)
        flags = $7; gsub(/[][,]/, "", flags)
        print (src == port ? "server" : "client"), flags, $NF
    }'
}

# conversation_over - both FINs are in the capture, and an ACK after them.
conversation_over() {
    conversation | awk '$2 ~ /F/ { fins++; next } fins >= 2 && $2 == "." { ok = 1 }
                        END { exit !ok }'
}

@test "capture: handshake, data and ACKs both ways, a FIN from each side" {
    need_capture
    start_server
    start_capture
    start_idle_client talker -q
    wait_accepts 1

    types talker hello
    wait_for "the echo" client_got talker hello
    end_input talker
    wait_exit 2 "$talker_PID"
    assert_equal "$EXIT_STATUS" 0
    wait_for "the last ACK in the capture" conversation_over
    kill -TERM "$TCPDUMP_PID"
    wait_exit 2 "$TCPDUMP_PID"

    run conversation
    # The three-way handshake opens the capture.
    assert_line --index 0 "client S 0"
    assert_line --index 1 "server S. 0"
    assert_line --index 2 "client . 0"
    # "hello\n" goes one way and comes back, exactly once each.
    assert_equal "$(grep -c '^client P\. 6$' <<<"$output")" 1
    assert_equal "$(grep -c '^server P\. 6$' <<<"$output")" 1
    # Each side closes its direction once, and the client's last ACK ends it.
    assert_equal "$(grep -c '^client F\. 0$' <<<"$output")" 1
    assert_equal "$(grep -c '^server F\. 0$' <<<"$output")" 1
    assert_equal "${lines[-1]}" "client . 0"
    # Nothing else: no data beyond the two lines, no resets.
    refute_line --regexp ' R'
    assert_equal "$(grep -vc ' 0$' <<<"$output")" 2
}

@test "11-packet-capture.sh annotates SYN, SYN-ACK, data, ACKs and both FINs" {
    need_capture
    run --separate-stderr "$SCRIPT" 3>&-

    assert_success
    assert_line --regexp '^    tcpdump: listening on lo, '
    assert_line "    (select_client exited with status 0)"
    assert_line --regexp '^ +1  client > server  \[S\]   SYN      handshake 1/3'
    assert_line --regexp '^ +2  server > client  \[S\.\]  SYN-ACK  handshake 2/3'
    assert_line --regexp '^ +3  client > server  \[\.\]   ACK      handshake 3/3'
    assert_line --regexp '^ +[0-9]+  client > server  \[P\.\]  data     the client sends its line: 6 bytes$'
    assert_line --regexp '^ +[0-9]+  server > client  \[P\.\]  data     the server echoes it: 6 bytes$'
    assert_line --regexp '^ +[0-9]+  client > server  \[F\.\]  FIN      '
    assert_line --regexp '^ +[0-9]+  server > client  \[F\.\]  FIN      '
    assert_line --regexp '^ +[0-9]+  client > server  \[\.\]   ACK      of the last FIN'
    if command -v tshark >/dev/null; then
        assert_line --regexp '\[SYN, ACK\]'
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
