/*
 * console.c - the operator's console: commands typed on stdin ("help",
 * "list", "kick 5", "quit"...), and the terminal they are typed in.
 *
 * stdin is read raw, never through stdio, whose buffering would take bytes
 * that select() then no longer sees.  It is never made non-blocking (it is
 * shared with the shell); select() says it is readable, so one read()
 * cannot block.
 *
 * A terminal belongs to one process group at a time, the foreground job.
 * Started with `./select_server &` in an interactive shell, the server is
 * a background job: what is typed is meant for the shell, and a background
 * job that reads the terminal is stopped with SIGTTIN - and a stopped
 * server serves nobody.  So before each read we ask the terminal whose it
 * is (tcgetpgrp), and while it is not ours, we leave stdin alone for a
 * moment.  No signal tells a running background job that `fg` has given
 * it the terminal (the shell sends SIGCONT only to a stopped job), so the
 * next keystroke, which makes stdin readable, is how we find out.
 */
#include "server.h"

#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <termios.h>

#define CONSOLE_READ_SIZE 512

static bool terminal_in_background(int fd);
static void note_terminal(struct server *s, bool background);
static void leave_terminal(struct server *s);
static void run_console_lines(struct server *s, bool at_eof);
static void run_command(struct server *s, char *line, size_t len);
static void cmd_help(struct server *s, char *arg);
static void cmd_list(struct server *s, char *arg);
static void cmd_stats(struct server *s, char *arg);
static void cmd_conns(struct server *s, char *arg);
static void cmd_kick(struct server *s, char *arg);
static void cmd_say(struct server *s, char *arg);
static void cmd_pause(struct server *s, char *arg);
static void cmd_resume(struct server *s, char *arg);
static void cmd_trace(struct server *s, char *arg);
static void cmd_quit(struct server *s, char *arg);

/* ------------------------------------------------------------------ */
/* The terminal                                                        */
/* ------------------------------------------------------------------ */

/* console_watched - stdin belongs in the read set. */
bool
console_watched(const struct server *s, int64_t now)
{
    return s->console_open && !s->shutting_down &&
           now >= s->console_retry_us;
}

/*
 * terminal_in_background - fd is our controlling terminal, and another
 * process group (the shell, or another job) has it in the foreground.
 * False for anything that is not a terminal, and for a terminal that is
 * not ours (tcgetpgrp fails): job control does not apply to those.
 */
static bool
terminal_in_background(int fd)
{
    pid_t foreground;

    if (!isatty(fd) || (foreground = tcgetpgrp(fd)) < 0)
        return false;
    return foreground != getpgrp();
}

/* check_terminal - at start, and after a SIGCONT (Ctrl-Z, then fg or
 * bg): are we in the background of our terminal? */
void
check_terminal(struct server *s)
{
    note_terminal(s, terminal_in_background(STDIN_FILENO));
}

/* note_terminal - remember whether the console's terminal is someone
 * else's now, and tell the operator when that changes. */
static void
note_terminal(struct server *s, bool background)
{
    if (s->console_open && background && !s->console_background)
        print_line(s, "console: this is a background job, so the console"
                   " is off; fg brings it back");
    else if (s->console_open && !background && s->console_background)
        print_line(s, "console: in the foreground again; type 'help'");
    s->console_background = background;
}

/* leave_terminal - the terminal is another job's: what was typed is for
 * it.  Keep away from stdin for a moment, then look again. */
static void
leave_terminal(struct server *s)
{
    note_terminal(s, true);
    s->console_retry_us = now_us() + CONSOLE_RETRY_US;
}

/* ------------------------------------------------------------------ */
/* Reading commands                                                    */
/* ------------------------------------------------------------------ */

/*
 * handle_console - read what the operator typed and run each complete line.
 * At EOF, stop watching stdin and keep serving: `select_server </dev/null &`.
 * In the background, what was typed is not ours: leave it, and look again
 * in CONSOLE_RETRY_US.  (Should the terminal change hands between the
 * check and the read, the read fails with EIO rather than stop us, as
 * SIGTTIN is ignored: see setup_signals.  That is "not now" too.)
 */
void
handle_console(struct server *s)
{
    char *p = buf_reserve(&s->console_in, CONSOLE_READ_SIZE);
    ssize_t n;

    if (p == NULL) {
        log_error(s, ENOMEM, "console");
        return;
    }
    if (terminal_in_background(STDIN_FILENO)) {
        leave_terminal(s);
        return;
    }
    note_terminal(s, false);
    n = read(STDIN_FILENO, p, CONSOLE_READ_SIZE);
    if (n < 0 && errno == EIO && terminal_in_background(STDIN_FILENO)) {
        leave_terminal(s);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (n < 0)
            log_error(s, errno, "read stdin");
        s->console_open = false;
        run_console_lines(s, true);     /* a last line without a newline */
        buf_free(&s->console_in);
        return;
    }
    s->console_in.end += (size_t)n;
    run_console_lines(s, false);
}

/* run_console_lines - run each complete line typed so far, and refuse a
 * line that is too long, whole. */
static void
run_console_lines(struct server *s, bool at_eof)
{
    enum line_kind kind;
    size_t len, used;

    while ((used = split_line(&s->console_lines,
                              s->console_in.data + s->console_in.start,
                              buf_len(&s->console_in), at_eof, &kind,
                              &len)) > 0) {
        if (kind == LINE_OK) {
            memcpy(s->console_line, s->console_in.data + s->console_in.start,
                   len);
            run_command(s, s->console_line, len);
        } else if (kind == LINE_TOO_LONG) {
            log_error(s, 0, "console: line too long (over %d bytes): ignored",
                      CONSOLE_MAX_LINE);
        }
        buf_consume(&s->console_in, used);
    }
}

/* The console's commands: `help` prints this table. */
static const struct command {
    const char *name;
    const char *args;           /* "" for a command without an argument */
    const char *help;
    void (*run)(struct server *s, char *arg);
} commands[] = {
    { "help",   "",       "this list",                          cmd_help },
    { "list",   "",       "one line per client: fd, peer, times, bytes",
                                                                cmd_list },
    { "stats",  "",       "counters since start",               cmd_stats },
    { "conns",  "",       "the kernel's view of each connection (TCP_INFO)",
                                                                cmd_conns },
    { "kick",   "FD",     "disconnect the client on fd FD",     cmd_kick },
    { "say",    "TEXT",   "send a line of text to every client", cmd_say },
    { "pause",  "",       "stop calling accept(): the backlog fills",
                                                                cmd_pause },
    { "resume", "",       "accept connections again",           cmd_resume },
    { "trace",  "on|off", "narrate every select() call",        cmd_trace },
    { "quit",   "",       "shut down gracefully",               cmd_quit },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/*
 * run_command - split a console line (len bytes, with room for a NUL after
 * them) into a command word and its argument and run it.  Anything
 * unexpected - an unknown word, a missing or extra argument, NUL bytes or
 * other junk - gets one line on stderr.
 */
static void
run_command(struct server *s, char *line, size_t len)
{
    char shown[4 * 64 + 1], *word, *arg, *end;

    line[len] = '\0';
    if (memchr(line, '\0', len) != NULL) {      /* a C string would stop */
        shown[escape_text(line, len > 64 ? 64 : len, shown)] = '\0';
        log_error(s, 0, "unknown command '%s' (type 'help' for the list)",
                  shown);
        return;
    }
    word = line + strspn(line, " \t\r");
    end = word + strlen(word);
    while (end > word && strchr(" \t\r", end[-1]))
        *--end = '\0';
    arg = word + strcspn(word, " \t");
    if (*arg != '\0')
        *arg++ = '\0';
    arg += strspn(arg, " \t");
    if (*word == '\0')
        return;                                 /* an empty line */

    for (const struct command *c = commands; c < commands + NCOMMANDS; c++) {
        if (strcmp(word, c->name) != 0)
            continue;
        if (*c->args != '\0' && *arg == '\0')
            log_error(s, 0, "%s: missing %s (usage: %s %s)", c->name,
                      c->args, c->name, c->args);
        else if (*c->args == '\0' && *arg != '\0')
            log_error(s, 0, "%s: takes no argument (usage: %s)", c->name,
                      c->name);
        else
            c->run(s, arg);
        return;
    }
    shown[escape_text(word, strlen(word) > 64 ? 64 : strlen(word),
                      shown)] = '\0';
    log_error(s, 0, "unknown command '%s' (type 'help' for the list)", shown);
}

/* ------------------------------------------------------------------ */
/* The commands                                                        */
/* ------------------------------------------------------------------ */

static void
cmd_help(struct server *s, char *arg)
{
    (void)arg;
    for (size_t i = 0; i < NCOMMANDS; i++)
        print_line(s, "  %-6s %-7s %s", commands[i].name, commands[i].args,
                   commands[i].help);
}

/* cmd_list - one row per client.  Its state: open; half-closed (it sent
 * its FIN); throttled (not read for now: in echo its echo is backed up, in
 * chat it is over its line budget). */
static void
cmd_list(struct server *s, char *arg)
{
    int64_t now = now_us();
    char connected[32], idle[32];

    (void)arg;
    print_line(s, "%-4s %-32s %10s %10s %10s %10s %8s %s", "fd", "peer",
               "connected", "idle", "bytes-in", "bytes-out", "pending",
               "state");
    for (int fd = 0; fd <= s->max_client_fd; fd++) {
        const struct client *c = &s->clients[fd];

        if (c->fd < 0)
            continue;
        print_line(s, "%-4d %-32s %10s %10s %10llu %10llu %8zu %s", c->fd,
                   c->peer,
                   format_seconds(now - c->connected_us, connected,
                                  sizeof connected),
                   format_seconds(now - c->last_active_us, idle,
                                  sizeof idle),
                   (unsigned long long)c->bytes_in,
                   (unsigned long long)c->bytes_out, buf_len(&c->out),
                   c->peer_eof ? "half-closed"
                               : c->throttled ? "throttled" : "open");
    }
    print_line(s, "(%ld client%s)", s->nclients, plural(s->nclients));
}

static void
cmd_stats(struct server *s, char *arg)
{
    char up[32];

    (void)arg;
    print_line(s, "clients: %ld now, %ld peak, %llu total; bytes: %llu in,"
               " %llu out; udp datagrams: %llu (%llu truncated, %llu"
               " ignored); select() calls: %llu; log lines dropped: %llu;"
               " up %s", s->nclients, s->peak_clients,
               (unsigned long long)s->total_clients,
               (unsigned long long)s->bytes_in,
               (unsigned long long)s->bytes_out,
               (unsigned long long)s->udp_datagrams,
               (unsigned long long)s->udp_truncated,
               (unsigned long long)s->udp_ignored,
               (unsigned long long)s->select_calls,
               (unsigned long long)s->lines_dropped,
               format_seconds(now_us() - s->started_us, up, sizeof up));
}

/*
 * cmd_conns - what the kernel knows about each connection, to compare with
 * `netstat -nat` or `ss -ti`: the TCP state, the smoothed round-trip time
 * and its variation, retransmissions, segments sent but not yet
 * acknowledged, the congestion window, and the bytes queued in the socket's
 * send buffer (not yet sent or not yet acknowledged: netstat's Send-Q) and
 * receive buffer (not yet read by us: Recv-Q).  On a socket, Linux's
 * TIOCOUTQ and FIONREAD are the SIOCOUTQ and SIOCINQ requests.  TCP_INFO
 * and TIOCOUTQ on sockets are Linux interfaces; elsewhere the command says
 * so.
 */
static void
cmd_conns(struct server *s, char *arg)
{
#if defined(TCP_INFO) && defined(TIOCOUTQ) && defined(FIONREAD)
    static const char *const states[] = {
        "?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
        "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING",
    };

    (void)arg;
    print_line(s, "%-4s %-32s %-11s %9s %9s %7s %7s %5s %8s %8s", "fd",
               "peer", "state", "rtt-ms", "rttvar-ms", "retrans", "unacked",
               "cwnd", "send-q", "recv-q");
    for (int fd = 0; fd <= s->max_client_fd; fd++) {
        const struct client *c = &s->clients[fd];
        struct tcp_info ti;
        socklen_t len = sizeof ti;
        int sendq = 0, recvq = 0;

        if (c->fd < 0)
            continue;
        memset(&ti, 0, sizeof ti);
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
            ioctl(fd, TIOCOUTQ, &sendq) < 0 || ioctl(fd, FIONREAD, &recvq) < 0) {
            log_error(s, errno, "conns: fd %d", fd);
            continue;
        }
        print_line(s, "%-4d %-32s %-11s %9.3f %9.3f %7u %7u %5u %8d %8d", fd,
                   c->peer, ti.tcpi_state < sizeof states / sizeof states[0]
                            ? states[ti.tcpi_state] : "?",
                   ti.tcpi_rtt / 1000.0, ti.tcpi_rttvar / 1000.0,
                   ti.tcpi_total_retrans, ti.tcpi_unacked, ti.tcpi_snd_cwnd,
                   sendq, recvq);
    }
    print_line(s, "(%ld client%s)", s->nclients, plural(s->nclients));
#else
    (void)arg;
    log_error(s, 0, "conns: TCP_INFO is not available on this system");
#endif
}

/* cmd_kick - the client gets a notice and is closed at the end of the
 * pass, like any other close the loop decides. */
static void
cmd_kick(struct server *s, char *arg)
{
    static const char msg[] = "*** disconnected by the server operator\n";
    long fd;

    if (parse_long(arg, 0, FD_SETSIZE - 1, &fd) < 0 ||
        s->clients[fd].fd < 0) {
        log_error(s, 0, "kick: no client on fd '%s' (see 'list')", arg);
        return;
    }
    queue_output(s, &s->clients[fd], msg, sizeof msg - 1);
    mark_closing(s, &s->clients[fd], "kicked");
    print_line(s, "kicking fd %ld %s", fd, s->clients[fd].peer);
}

static void
cmd_say(struct server *s, char *arg)
{
    size_t len = strlen(arg) > MAX_LINE ? MAX_LINE : strlen(arg);
    int n = sprintf(s->linebuf, "*** server: ");

    n += (int)escape_text(arg, len, s->linebuf + n);
    s->linebuf[n++] = '\n';
    broadcast(s, NULL, s->linebuf, (size_t)n);
    print_line(s, "said to %ld client%s", s->nclients, plural(s->nclients));
}

static void
cmd_pause(struct server *s, char *arg)
{
    (void)arg;
    s->accepting = false;
    print_line(s, "paused: accept() is not called; new connections wait in"
               " the backlog (see: netstat -nat)");
}

static void
cmd_resume(struct server *s, char *arg)
{
    (void)arg;
    s->accepting = true;
    print_line(s, "resumed: accepting connections");
}

static void
cmd_trace(struct server *s, char *arg)
{
    if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0) {
        log_error(s, 0, "trace: expected 'on' or 'off' (usage: trace on|off)");
        return;
    }
    s->trace = strcmp(arg, "on") == 0;
    print_line(s, "trace %s", arg);
}

/* cmd_quit - the same graceful shutdown as SIGINT or SIGTERM. */
static void
cmd_quit(struct server *s, char *arg)
{
    (void)arg;
    begin_shutdown(s, "quit");
}
