# terminal.bats - the server as a person runs it: in an interactive shell
# on a real (pseudo-)terminal, driven through tmux.  The terminal is one
# more thing the select() loop must not wait for: a server started with
# `&` must not be stopped by the shell's terminal, Ctrl-S must stop the
# screen but not the clients, and a pager nobody pages through must not
# stop the loop either.  Each scenario runs as root and as an ordinary
# user (nobody), whose terminal and pipes the server may be unable to
# reopen: output.c then falls back to PIPE_BUF writes per readiness.

load test_helper

# start_terminal [USER] - an interactive bash with job control, prompt
# "$ ", in a 200x50 tmux pane on a private socket, run as USER (default:
# this user).  Sets TERM_DIR (a directory USER may use), TMUX_SOCK.
start_terminal() {
    local user=${1-} as_user=()
    TERM_DIR=$(mktemp -d)
    chmod 755 "$TERM_DIR"
    if [[ -n $user ]]; then
        [[ $(id -u) == 0 ]] ||
            skip "needs root, to become $user (run as an ordinary user, the same scenario above is this one)"
        id "$user" >/dev/null 2>&1 || skip "there is no user $user"
        setpriv --reuid="$user" --regid=nogroup --clear-groups \
            test -x "$SERVER" || skip "$user cannot run $SERVER"
        chown "$user" "$TERM_DIR"
        as_user=(setpriv --reuid="$user" --regid=nogroup --clear-groups)
    fi
    TMUX_SOCK=$TERM_DIR/tmux.sock
    "${as_user[@]}" tmux -S "$TMUX_SOCK" -f /dev/null new-session -d \
        -x 200 -y 50 env -i PATH="$PATH" HOME="$TERM_DIR" TERM=xterm \
        PS1='$ ' bash --norc --noprofile -i 3>&-
    wait_for "the shell's prompt" screen_shows '^\$ $'
}

# in_terminal TEXT - type TEXT and press Enter.
in_terminal() {
    tmux -S "$TMUX_SOCK" send-keys -l "$1"
    tmux -S "$TMUX_SOCK" send-keys Enter
}

# press KEY - one key, in tmux's names: C-s, C-q, C-c, q.
press() {
    tmux -S "$TMUX_SOCK" send-keys "$1"
}

# screen - the pane's text, its scrollback included, lines joined.
screen() {
    tmux -S "$TMUX_SOCK" capture-pane -p -J -S -10000
}

# screen_shows ERE - a line on the screen matches.
screen_shows() {
    screen | grep -qE -- "$1"
}

# server_in_terminal COMMAND - type COMMAND, which starts select_server
# -p 0 -b 127.0.0.1 in some way, and wait for it to listen: sets
# SERVER_PID and PORT.  The PID is killed in teardown.
server_in_terminal() {
    in_terminal "$1"
    wait_for "the server's listening socket" server_listening
    BG_PIDS+=("$SERVER_PID")
}

# server_listening - a select_server that the terminal's shell started
# (in a pipeline too) listens: sets SERVER_PID and PORT.
server_listening() {
    local shell line
    shell=$(tmux -S "$TMUX_SOCK" display -p '#{pane_pid}')
    SERVER_PID=$(ps -o pid=,comm= --ppid "$shell" | awk '$2 == "select_server" { print $1 }')
    [[ $SERVER_PID =~ ^[0-9]+$ ]] || return 1
    line=$(ss -ltnpH | grep -F "pid=$SERVER_PID,") || return 1
    [[ $line =~ 127\.0\.0\.1:([0-9]+) ]] || return 1
    PORT=${BASH_REMATCH[1]}
}

# state_of PID - its ps state letter: S sleeping, T stopped, ...
state_of() {
    ps -o stat= -p "$1" | cut -c1
}

# echoes - a fresh client gets its line echoed within 5 s.
echoes() {
    run --separate-stderr timeout 5 "$CLIENT" -q 127.0.0.1 "$PORT" <<<"$1"
    assert_success
    assert_output "$1"
}

# gone_within SECONDS PID - PID (not our child) exits within SECONDS.
gone_within() {
    local i
    for ((i = 0; i < $1 * 50; i++)); do
        kill -0 "$2" 2>/dev/null || return 0
        sleep 0.02
    done
    fail "process $2 still running after $1 s"
}

# --- The scenarios, each run as root and as an ordinary user ------------

background_job_keeps_serving() {
    start_terminal "$@"
    server_in_terminal "$SERVER -p 0 -b 127.0.0.1 &"

    # Typing at the shell makes the terminal readable; a background job
    # that read it would be stopped with SIGTTIN.
    in_terminal 'echo typed at the shell'
    wait_for "the shell's answer" screen_shows '^typed at the shell$'
    in_terminal 'echo and once more'
    wait_for "the shell's second answer" screen_shows '^and once more$'
    assert_equal "$(state_of "$SERVER_PID")" S
    echoes "served while in the background"
    assert screen_shows '^console: this is a background job, so the console is off; fg brings it back$'

    # fg gives it the terminal; a running job gets no signal for that.
    in_terminal fg
    in_terminal stats
    wait_for "the console's note" screen_shows "^console: in the foreground again; type 'help'$"
    wait_for "the reply to stats" screen_shows '^clients: 0 now, 1 peak, 1 total; '
    press C-c
    wait_for "the goodbye" screen_shows '^bye$'
    gone_within 2 "$SERVER_PID"
}

ctrl_s_stops_the_screen_not_the_server() {
    start_terminal "$@"
    server_in_terminal "$SERVER -p 0 -b 127.0.0.1"
    press C-s                   # XOFF: the terminal stops its output

    # 2000 connections log 4000 lines, far more than the terminal buffers.
    run timeout 20 "$PEER" cycle 127.0.0.1 "$PORT" 2000
    assert_success
    echoes "served while the screen is stopped"
    assert_equal "$(state_of "$SERVER_PID")" S

    press C-q                   # XON: the log goes on where it stopped
    in_terminal stats
    wait_for "the reply to stats" screen_shows '^clients: 0 now, [0-9]+ peak, 2001 total; '
    press C-c
    gone_within 2 "$SERVER_PID"
}

pager_nobody_reads() {
    start_terminal "$@"
    server_in_terminal "$SERVER -p 0 -b 127.0.0.1 2>$TERM_DIR/err | less"
    wait_for "less to show the first line" \
        screen_shows "^listening on 127\\.0\\.0\\.1:$PORT \\(tcp, udp\\)$"

    # less reads a screenful and waits for a key: the pipe fills up.
    run timeout 20 "$PEER" cycle 127.0.0.1 "$PORT" 2000
    assert_success
    echoes "served while nobody pages"

    # The grace period is 1 s, log or no log.
    kill -TERM "$SERVER_PID"
    gone_within 2 "$SERVER_PID"
    press q
}

# --- The tests ------------------------------------------------------------

@test "started with & in an interactive shell: typing at the shell does not stop it; after fg its console answers" {
    background_job_keeps_serving
}

@test "as an ordinary user: started with &, typing does not stop it; after fg its console answers" {
    background_job_keeps_serving nobody
}

@test "Ctrl-S stops the screen, not the server: clients are served, and after Ctrl-Q the log goes on" {
    ctrl_s_stops_the_screen_not_the_server
}

@test "as an ordinary user: Ctrl-S stops the screen, not the server" {
    ctrl_s_stops_the_screen_not_the_server nobody
}

@test "| less that nobody pages through: clients are served, and SIGTERM ends it within the grace period" {
    pager_nobody_reads
}

@test "as an ordinary user: | less that nobody pages through cannot stop the server" {
    pager_nobody_reads nobody
}

@test "stty tostop: a background server writes its log rather than be stopped by SIGTTOU" {
    start_terminal
    in_terminal 'stty tostop'
    server_in_terminal "$SERVER -p 0 -b 127.0.0.1 &"
    echoes "served under tostop"
    wait_for "the accept on the screen" \
        screen_shows '^accepted 127\.0\.0\.1:[0-9]+ on fd [0-9]+ \(clients: 1\)$'
    assert_equal "$(state_of "$SERVER_PID")" S
}
