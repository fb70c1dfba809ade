# errors.bats - what both programs say when they cannot do what was asked.
# Asking for help is not an error (stdout, exit 0).  A bad command line is:
# one line on stderr naming the option or value, a hint to try --help,
# nothing on stdout, exit 1.  A server that cannot start (port taken, an
# address this machine does not have, a name that does not resolve) names
# the failed call, the address and the system's reason, adds a hint where
# one helps, and exits 2.

load test_helper

# refused PROGRAM MESSAGE [ARGS...] - PROGRAM ARGS exits 1 with nothing on
# stdout and exactly two lines on stderr: "PROGRAM: MESSAGE" and the hint.
# `timeout`: a command line wrongly accepted would start a server.
refused() {
    local program=$1 message=$2 name
    shift 2
    name=${program##*/}
    echo "# $name $*"             # shown if the test fails
    run --separate-stderr timeout 5 "$program" "$@" </dev/null
    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "$name: $message
Try '$name --help' for more information."
}

# refused_table PROGRAM [FIRST...] - run `refused` for each line of the
# table on stdin: the arguments (split on spaces), then "|", then the
# expected message.  FIRST comes before each line's arguments.
refused_table() {
    local program=$1 args message
    shift
    while IFS='|' read -r args message; do
        read -ra args <<<"$args"
        refused "$program" "$message" "$@" "${args[@]}"
    done
}

@test "-h and --help print the usage on stdout and exit 0, with nothing on stderr" {
    for program in "$SERVER" "$CLIENT"; do
        for opt in -h --help; do
            run --separate-stderr "$program" "$opt"
            assert_success
            assert_equal "$stderr" ""
            assert_line --index 0 --regexp "^Usage: ${program##*/} \\[options\\]"
            assert [ "${#lines[@]}" -gt 10 ]
        done
    done
}

@test "-V and --version print the program name and version 1.0.0" {
    for opt in -V --version; do
        run --separate-stderr "$SERVER" "$opt"
        assert_success
        assert_output "select_server 1.0.0"
        assert_equal "$stderr" ""
        run --separate-stderr "$CLIENT" "$opt"
        assert_success
        assert_output "select_client 1.0.0"
        assert_equal "$stderr" ""
    done
}

@test "select_server: each bad option or value is one line naming it, then the --help hint, exit 1" {
    # -p 0 first: a line wrongly accepted must not start a server on 9877.
    refused_table "$SERVER" -p 0 <<'EOF'
-p abc            |invalid port 'abc' (expected 0-65535)
-p 70000          |invalid port '70000' (expected 0-65535)
-p -1             |invalid port '-1' (expected 0-65535)
--port=           |invalid port '' (expected 0-65535)
-p 80x            |invalid port '80x' (expected 0-65535)
-m talk           |invalid mode 'talk' (expected echo or chat)
--mode ECHO       |invalid mode 'ECHO' (expected echo or chat)
-t -1             |invalid idle timeout '-1' (expected seconds, e.g. 30 or 2.5; 0 for none)
-t abc            |invalid idle timeout 'abc' (expected seconds, e.g. 30 or 2.5; 0 for none)
-t 1e3            |invalid idle timeout '1e3' (expected seconds, e.g. 30 or 2.5; 0 for none)
--idle-timeout 2s|invalid idle timeout '2s' (expected seconds, e.g. 30 or 2.5; 0 for none)
-n 0              |invalid max clients '0' (expected 1-1024)
-n x              |invalid max clients 'x' (expected 1-1024)
-n 1025           |invalid max clients '1025' (expected 1-1024)
-B -1             |invalid backlog '-1' (expected 0-65535)
-B many           |invalid backlog 'many' (expected 0-65535)
-B 65536          |invalid backlog '65536' (expected 0-65535)
-r 0              |invalid read size '0' (expected 1-1048576 bytes)
-r 1048577        |invalid read size '1048577' (expected 1-1048576 bytes)
--chat-lines 0    |invalid chat lines '0' (expected 1-1000000000 lines per second)
--chat-bytes x    |invalid chat bytes 'x' (expected 1-1000000000 bytes per second)
--rcvbuf 0        |invalid receive buffer '0' (expected 1-1073741824 bytes)
--rcvbuf 1k       |invalid receive buffer '1k' (expected 1-1073741824 bytes)
-x                |unknown option '-x'
--colour          |unknown option '--colour'
--no              |ambiguous option '--no'
-p                |option '-p' needs a value
--mode            |option '--mode' needs a value
-q extra          |unexpected argument 'extra' (this server takes only options)
-- 9877           |unexpected argument '9877' (this server takes only options)
EOF
}

@test "select_server: a bad LISTENQ in the environment is a usage error too, named as such" {
    for value in abc -1 65536 ''; do
        echo "# LISTENQ='$value'"
        run --separate-stderr env LISTENQ="$value" timeout 5 "$SERVER" -p 0 </dev/null
        assert_failure 1
        assert_output ""
        assert_equal "$stderr" "select_server: invalid LISTENQ '$value' in the environment (expected 0-65535)
Try 'select_server --help' for more information."
    done
}

@test "select_server: an option that takes no value, given one (--no-udp=1), is named correctly" {
    # getopt_long reports these with optopt set to the option's value, which
    # for a long-only option is no character at all.
    for opt in --no-udp --no-reuseaddr --quiet --help; do
        echo "# $opt=1"
        run --separate-stderr timeout 5 "$SERVER" -p 0 "$opt=1" </dev/null
        assert_failure 1
        assert_output ""
        assert_equal "${#stderr_lines[@]}" 2
        assert_equal "${stderr_lines[0]}" "select_server: option '$opt' takes no value"
        assert_equal "${stderr_lines[1]}" "Try 'select_server --help' for more information."
    done
}

@test "select_client: missing or bad HOST, PORT or option is one line, then the --help hint, exit 1" {
    # Port 9 (discard) is never reached: each line fails before connecting.
    refused_table "$CLIENT" <<'EOF'
                        |missing HOST and PORT
127.0.0.1               |missing PORT after HOST
127.0.0.1 0             |invalid port '0' (expected 1-65535)
127.0.0.1 abc           |invalid port 'abc' (expected 1-65535)
127.0.0.1 65536         |invalid port '65536' (expected 1-65535)
127.0.0.1 -1            |invalid option -- '1'
127.0.0.1 9 extra       |unexpected argument 'extra'
-w abc 127.0.0.1 9      |invalid connect timeout 'abc' (expected seconds, e.g. 2.5)
-w -1 127.0.0.1 9       |invalid connect timeout '-1' (expected seconds, e.g. 2.5)
-w 1e3 127.0.0.1 9      |invalid connect timeout '1e3' (expected seconds, e.g. 2.5)
-w 86401 127.0.0.1 9    |invalid connect timeout '86401' (expected seconds, e.g. 2.5)
-x 127.0.0.1 9          |invalid option -- 'x'
--colour 127.0.0.1 9    |unrecognized option '--colour'
--quiet=1 127.0.0.1 9   |option '--quiet' doesn't allow an argument
127.0.0.1 9 -w          |option requires an argument -- 'w'
EOF
}

@test "a port already in use: the second server exits 2 naming bind, the address and EADDRINUSE, plus a hint" {
    start_server

    run --separate-stderr timeout 5 "$SERVER" -p "$PORT" </dev/null

    assert_failure 2
    assert_output ""
    assert_equal "$stderr" "select_server: bind [::]:$PORT: Address already in use
hint: another server is using this port (see: ss -tulnp), or one run with --no-reuseaddr left connections in TIME_WAIT; stop it, wait, or choose another port with -p"
    # The first server never noticed.
    run --separate-stderr timeout "$WAIT_LIMIT" "$CLIENT" -q 127.0.0.1 "$PORT" <<<'still here'
    assert_success
    assert_output "still here"
}

@test "--no-reuseaddr: the port-in-use hint also suggests connections in TIME_WAIT" {
    start_server

    run --separate-stderr timeout 5 "$SERVER" -p "$PORT" --no-reuseaddr </dev/null

    assert_failure 2
    assert_output ""
    assert_equal "${#stderr_lines[@]}" 2
    assert_equal "${stderr_lines[0]}" "select_server: bind [::]:$PORT: Address already in use"
    assert_regex "${stderr_lines[1]}" '^hint: .*TIME_WAIT.*--no-reuseaddr'
}

@test "--bind 192.0.2.1, an address this machine does not have: exit 2, EADDRNOTAVAIL and a hint" {
    # 192.0.2.1 is TEST-NET-1; bind() fails locally and sends nothing.
    run --separate-stderr timeout 5 "$SERVER" -p 0 --bind 192.0.2.1 </dev/null

    assert_failure 2
    assert_output ""
    assert_equal "$stderr" "select_server: bind 192.0.2.1:0: Cannot assign requested address
hint: that address does not belong to this machine (see: ip addr)"
}

# "no..such" has an empty label: rejected locally, no DNS query is sent.
@test "--bind a name that does not resolve: exit 2 and one line with the resolver's reason" {
    run --separate-stderr timeout 5 "$SERVER" -p 0 --bind no..such </dev/null

    assert_failure 2
    assert_output ""
    assert_equal "${#stderr_lines[@]}" 1
    assert_regex "$stderr" "^select_server: cannot use bind address 'no\\.\\.such': .+\$"
}
