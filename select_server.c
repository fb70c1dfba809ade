/*
 * select_server.c - a TCP (and UDP) echo and chat server built on select().
 *
 * One process, one thread, one select() loop.  The loop watches:
 *   - the self-pipe that the signal handler writes to,
 *   - the listening TCP socket (readable: a connection is waiting),
 *   - every client socket for reading, and for writing only while output is
 *     pending for it,
 *   - a UDP socket bound to the same port,
 *   - stdin, where the operator types console commands (try "help"),
 *   - stdout and stderr, but only while our own output waits for them:
 *     the operator's screen is one more client that can be slow.
 *
 * Run:    ./select_server                      echo server on port 9877
 *         ./select_server -p 0 -m chat -v      chat, kernel-chosen port, trace
 *         ./select_server --help               every option
 *
 * Start reading at main(), then serve(): the select() loop itself, which fits
 * on one screen.  The functions after it are the handlers it calls, in the
 * order it calls them; setting up (options, sockets, limits) comes last.
 * Chat mode is in chat.c, UDP in udp.c, the console in console.c,
 * everything the server prints goes through output.c, and server.h holds
 * what they share.
 */
#include "server.h"

#include <getopt.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/time.h>

/* The signal handler's only link to the loop: the self-pipe's write end. */
static int signal_pipe_wfd = -1;

/* Table of contents: in the order the program runs. */
static int serve(struct server *s);
static int64_t next_timeout(const struct server *s, int64_t now);
static int build_fd_sets(struct server *s, fd_set *rset, fd_set *wset,
                         int64_t now);
static bool wants_input(const struct server *s, const struct client *c);
static void trace_call(struct server *s, int nfds, const fd_set *rset,
                       const fd_set *wset, int64_t timeout_us);
static void trace_result(struct server *s, int nready, int nfds,
                         const fd_set *rset, const fd_set *wset,
                         int64_t waited_us);
static void handle_signals(struct server *s);
static bool shutdown_complete(const struct server *s, int64_t now);
static void accept_clients(struct server *s);
static void accept_at_fd_limit(struct server *s);
static void add_client(struct server *s, int fd, const char *peer);
static void refuse_client(struct server *s, int fd, const char *peer);
static void handle_writable(struct server *s, struct client *c);
static void handle_readable(struct server *s, struct client *c);
static void flush_queued_output(struct server *s);
static void expire_idle_clients(struct server *s, int64_t now);
static void close_marked_clients(struct server *s);
static void close_client(struct server *s, struct client *c);
static void close_all_clients(struct server *s, const char *reason);
static void parse_options(int argc, char **argv, struct options *opt);
static void usage(FILE *fp);
static _Noreturn void bad_long_option(const char *arg,
                                      const struct option *longopts);
static void setup_signals(struct server *s);
static void on_signal(int signo);
static void open_listeners(struct server *s);
static int open_socket(struct server *s, const struct sockaddr *sa,
                       socklen_t salen, int type, const char **failed_call);
static int listen_tcp(struct server *s, const char *host,
                      const char **failed_call, char *addr);
static void explain_bind_error(int err, const char *call, const char *proto,
                               const char *addr, const struct options *opt);
static void setup_limits(struct server *s);
static void report_rcvbuf(struct server *s);

int
main(int argc, char **argv)
{
    struct server s = { .listen_fd = -1, .udp_fd = -1, .spare_fd = -1,
                        .sig_read_fd = -1, .max_client_fd = -1 };
    char local[ADDR_STRLEN];
    int status;

    parse_options(argc, argv, &s.opt);
    if (open_std_fds() < 0)
        exit(EXIT_STARTUP);     /* nowhere left to even report it */

    setup_signals(&s);
    open_listeners(&s);
    output_open(&s);
    setup_limits(&s);

    /* The first line is a contract: scripts read the port from it. */
    print_line(&s, "listening on %s (%s)",
               format_socket_address(s.listen_fd, getsockname, local,
                                     sizeof local),
               s.udp_fd >= 0 ? "tcp, udp" : "tcp");
    if (s.opt.rcvbuf > 0)
        report_rcvbuf(&s);
    check_terminal(&s);         /* started in the background? */

    status = serve(&s);

    close_all_clients(&s, "shutdown");
    log_event(&s, "bye");
    output_drain(&s, s.shutdown_deadline_us);
    output_close(&s);
    buf_free(&s.console_in);
    free(s.clients);
    free(s.readbuf);
    free(s.linebuf);
    return status;
}

/* ------------------------------------------------------------------ */
/* The select() loop                                                   */
/* ------------------------------------------------------------------ */

/*
 * serve - rebuild the sets, compute the timeout, call select(), dispatch.
 * Returns the exit status.
 */
static int
serve(struct server *s)
{
    fd_set rset, wset;
    struct timeval tv;

    for (;;) {
        int64_t now = now_us(), timeout_us, before;
        int nfds, nready;

        /* What the last pass printed goes out first, as far as it can
         * without blocking; the rest waits for the write set. */
        output_flush(s);

        /* Shutting down: done once everything is flushed or time is up. */
        if (s->shutting_down && shutdown_complete(s, now))
            return EXIT_OK;

        /* Fresh sets and a fresh timeout on every pass: select() overwrites
         * both, and the set of clients changes from one pass to the next. */
        nfds = build_fd_sets(s, &rset, &wset, now);
        timeout_us = next_timeout(s, now);
        tv.tv_sec = (time_t)(timeout_us / 1000000);
        tv.tv_usec = (suseconds_t)(timeout_us % 1000000);
        if (s->trace)
            trace_call(s, nfds, &rset, &wset, timeout_us);

        before = now_us();
        nready = select(nfds, &rset, &wset, NULL, timeout_us < 0 ? NULL : &tv);
        s->select_calls++;
        if (nready < 0) {
            if (errno == EINTR)
                continue;       /* a signal: its byte is in the self-pipe */
            log_error(s, errno, "select");
            return EXIT_RUNTIME;
        }
        if (s->trace)
            trace_result(s, nready, nfds, &rset, &wset, now_us() - before);

        /* A signal first: shutting down changes what everything else does. */
        if (FD_ISSET(s->sig_read_fd, &rset))
            handle_signals(s);
        /* Our own output: the terminal or pipe can take more. */
        output_writable(s, &wset);
        /* New connections.  Accepted fds were not in the sets, so the bits
         * tested below cannot be mistaken for theirs. */
        if (s->listen_fd >= 0 && FD_ISSET(s->listen_fd, &rset))
            accept_clients(s);
        /* Clients: write first (it frees buffer space), then read. */
        for (int fd = 0; fd < nfds; fd++) {
            struct client *c = &s->clients[fd];

            if (c->fd >= 0 && !c->close_reason && FD_ISSET(fd, &wset))
                handle_writable(s, c);
            if (c->fd >= 0 && !c->close_reason && FD_ISSET(fd, &rset))
                handle_readable(s, c);
        }
        /* UDP datagrams and console commands. */
        if (s->udp_fd >= 0 && FD_ISSET(s->udp_fd, &rset))
            handle_datagram(s);
        if (s->console_open && FD_ISSET(STDIN_FILENO, &rset))
            handle_console(s);
        /* Deadlines, the chat lines queued this pass, then the closes
         * decided during it. */
        now = now_us();
        expire_idle_clients(s, now);
        chat_resume(s, now);
        flush_queued_output(s);
        close_marked_clients(s);
    }
}

/*
 * next_timeout - microseconds until the nearest deadline (an idle client,
 * a chat client's budget coming back, the end of the shutdown grace
 * period, the end of an accept() or console backoff), or -1 when nothing
 * is due: select() then sleeps until a descriptor is ready.  Never a
 * periodic wake-up "just in case".
 */
static int64_t
next_timeout(const struct server *s, int64_t now)
{
    int64_t nearest = INT64_MAX;

    if ((s->opt.idle_timeout_us > 0 || s->chat_throttled > 0) &&
        !s->shutting_down)
        for (int fd = 0; fd <= s->max_client_fd; fd++) {
            const struct client *c = &s->clients[fd];

            if (c->fd < 0)
                continue;
            if (s->opt.idle_timeout_us > 0 &&
                c->last_active_us + s->opt.idle_timeout_us < nearest)
                nearest = c->last_active_us + s->opt.idle_timeout_us;
            if (s->opt.mode == MODE_CHAT && c->throttled &&
                chat_resume_time(c) < nearest)
                nearest = chat_resume_time(c);
        }
    if (s->shutting_down && s->shutdown_deadline_us < nearest)
        nearest = s->shutdown_deadline_us;
    if (s->accept_retry_us > now && s->accept_retry_us < nearest)
        nearest = s->accept_retry_us;
    if (s->console_retry_us > now && s->console_retry_us < nearest)
        nearest = s->console_retry_us;

    if (nearest == INT64_MAX)
        return -1;
    return nearest > now ? nearest - now : 0;
}

/*
 * build_fd_sets - interest follows state: read a client only while it may
 * send (see wants_input), ask for writability only while output is
 * pending, for a client or for our own stdout and stderr.  Returns nfds,
 * the highest descriptor plus one.
 */
static int
build_fd_sets(struct server *s, fd_set *rset, fd_set *wset, int64_t now)
{
    int maxfd = s->sig_read_fd;

    FD_ZERO(rset);
    FD_ZERO(wset);
    FD_SET(s->sig_read_fd, rset);
    if (console_watched(s, now))
        FD_SET(STDIN_FILENO, rset);
    output_watch(s, wset, &maxfd);
    if (s->listen_fd >= 0 && s->accepting && now >= s->accept_retry_us) {
        FD_SET(s->listen_fd, rset);
        maxfd = s->listen_fd > maxfd ? s->listen_fd : maxfd;
    }
    if (s->udp_fd >= 0) {
        FD_SET(s->udp_fd, rset);
        maxfd = s->udp_fd > maxfd ? s->udp_fd : maxfd;
    }
    for (int fd = 0; fd <= s->max_client_fd; fd++) {
        const struct client *c = &s->clients[fd];

        if (c->fd < 0)
            continue;
        if (wants_input(s, c))
            FD_SET(fd, rset);
        if (buf_len(&c->out) > 0)
            FD_SET(fd, wset);
        maxfd = fd > maxfd ? fd : maxfd;
    }
    return maxfd + 1;
}

/* wants_input - false while the client may not send: backpressure in echo
 * mode, over its budget in chat, after its EOF, or while we shut down. */
static bool
wants_input(const struct server *s, const struct client *c)
{
    return !s->shutting_down && !c->peer_eof && !c->throttled;
}

/* trace_call - the select() call about to be made, on the screen before
 * select() goes to sleep. */
static void
trace_call(struct server *s, int nfds, const fd_set *rset,
           const fd_set *wset, int64_t timeout_us)
{
    char line[SELECT_TRACE_STRLEN];

    print_line(s, "%s", format_select_call(line, nfds, rset, wset,
                                           timeout_us));
    output_flush(s);
}

/* trace_result - what select() said, and how long it slept. */
static void
trace_result(struct server *s, int nready, int nfds, const fd_set *rset,
             const fd_set *wset, int64_t waited_us)
{
    char line[SELECT_TRACE_STRLEN];

    print_line(s, "%s", format_select_result(line, nready, nfds, rset, wset,
                                             waited_us));
}

/* ------------------------------------------------------------------ */
/* Signals and shutdown                                                */
/* ------------------------------------------------------------------ */

/*
 * handle_signals - drain the self-pipe; each byte is one signal number.
 * SIGCONT means we were stopped and continued, perhaps now in the
 * background, perhaps now in the foreground (fg): look at the terminal
 * again.
 */
static void
handle_signals(struct server *s)
{
    unsigned char sigs[64];
    ssize_t n;

    while ((n = read(s->sig_read_fd, sigs, sizeof sigs)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            int signo = sigs[i];

            if (signo == SIGCONT) {
                check_terminal(s);
            } else if (!s->shutting_down) {
                begin_shutdown(s, signo == SIGINT ? "SIGINT" : "SIGTERM");
            } else {
                /* A second signal that slipped past the handler's reset
                 * (a third party's SIGTERM during our SIGINT): die of it,
                 * so that the shell sees which one (130 or 143). */
                signal(signo, SIG_DFL);
                raise(signo);
            }
        }
}

/*
 * begin_shutdown - stop accepting and reading, give pending output up to
 * SHUTDOWN_GRACE_US to drain; serve() returns once it has.  From here on a
 * SIGINT or SIGTERM has its default effect: immediate termination.
 */
void
begin_shutdown(struct server *s, const char *why)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        log_error(s, errno, "sigaction");
    s->shutting_down = true;
    s->shutdown_deadline_us = now_us() + SHUTDOWN_GRACE_US;
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    if (s->udp_fd >= 0)
        close(s->udp_fd);
    s->listen_fd = s->udp_fd = -1;
    log_event(s, "shutting down (%s): closing %ld client%s", why,
              s->nclients, plural(s->nclients));
}

/*
 * shutdown_complete - true once no client has output pending and our own
 * output is out, or once the grace period is over: a client that never
 * reads, or a terminal nobody looks at, cannot hold us up.
 */
static bool
shutdown_complete(const struct server *s, int64_t now)
{
    if (now >= s->shutdown_deadline_us)
        return true;
    for (int fd = 0; fd <= s->max_client_fd; fd++)
        if (s->clients[fd].fd >= 0 && buf_len(&s->clients[fd].out) > 0)
            return false;
    return !output_pending(s);
}

/* ------------------------------------------------------------------ */
/* Accepting                                                           */
/* ------------------------------------------------------------------ */

/*
 * accept_clients - accept until EAGAIN: several connections may be waiting
 * in the backlog for one readiness report.
 */
static void
accept_clients(struct server *s)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof ss;
        char peer[ADDR_STRLEN];
        int fd = accept(s->listen_fd, (struct sockaddr *)&ss, &sslen), one = 1;

        if (fd < 0) {
            int err = errno;

            if (err == EINTR || err == ECONNABORTED)
                continue;       /* a client gave up while queued: next one */
            if (err == EAGAIN || err == EWOULDBLOCK)
                return;
            if (err == EMFILE || err == ENFILE) {
                accept_at_fd_limit(s);
                return;
            }
            /* Anything else (ENOBUFS, a firewall's EPERM...): say so and
             * retry a little later rather than spin on it. */
            log_error(s, err, "accept");
            s->accept_retry_us = now_us() + ACCEPT_BACKOFF_US;
            return;
        }
        format_sockaddr((struct sockaddr *)&ss, sslen, peer, sizeof peer);
        if (fd >= FD_SETSIZE || s->nclients >= s->max_clients) {
            refuse_client(s, fd, peer);
            continue;
        }
        if (set_nonblocking(fd) < 0) {
            log_error(s, errno, "fcntl O_NONBLOCK fd %d (%s)", fd, peer);
            close(fd);
            continue;
        }
        /* No Nagle: each send() already carries everything we have.  With
         * Nagle on, the tail of an echo that spans two reads would wait for
         * the client's delayed ACK, 40 ms and more. */
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
            log_error(s, errno, "setsockopt TCP_NODELAY fd %d (%s)", fd,
                      peer);
        add_client(s, fd, peer);
    }
}

/*
 * accept_at_fd_limit - EMFILE/ENFILE: the connection is still queued, so the
 * listener stays readable and a naive loop spins at 100% CPU.  Give up the
 * spare descriptor, accept and refuse the connection, take the spare back.
 * If that is impossible, stop watching the listener for a moment.
 */
static void
accept_at_fd_limit(struct server *s)
{
    int fd;

    if (s->spare_fd >= 0) {
        close(s->spare_fd);
        fd = accept(s->listen_fd, NULL, NULL);
        if (fd >= 0) {
            char peer[ADDR_STRLEN];
            refuse_client(s, fd, format_socket_address(fd, getpeername, peer,
                                                       sizeof peer));
        }
        s->spare_fd = open("/dev/null", O_RDONLY);
        if (fd >= 0 || errno == EAGAIN || errno == EWOULDBLOCK)
            return;
    }
    log_error(s, EMFILE, "accept");
    s->accept_retry_us = now_us() + ACCEPT_BACKOFF_US;
}

static void
add_client(struct server *s, int fd, const char *peer)
{
    struct client *c = &s->clients[fd];
    char notice[ADDR_STRLEN + 64];
    int len;

    *c = (struct client){ .fd = fd,
                          .lines = { .max = MAX_LINE } };
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->connected_us = c->last_active_us = now_us();
    if (fd > s->max_client_fd)
        s->max_client_fd = fd;
    s->nclients++;
    s->total_clients++;
    if (s->nclients > s->peak_clients)
        s->peak_clients = s->nclients;
    log_event(s, "accepted %s on fd %d (clients: %ld)", peer, fd,
              s->nclients);
    if (s->opt.mode == MODE_CHAT) {
        len = snprintf(notice, sizeof notice, "*** fd %d %s joined (%ld"
                       " client%s)\n", fd, peer, s->nclients,
                       plural(s->nclients));
        broadcast(s, c, notice, (size_t)len);
    }
}

/* refuse_client - one line, then close.  The fd may be >= FD_SETSIZE: it
 * is never passed to FD_SET, only written to once and closed. */
static void
refuse_client(struct server *s, int fd, const char *peer)
{
    static const char msg[] = "server full\n";

    if (set_nonblocking(fd) == 0 &&
        send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL) < 0) {
        /* it went away already: nothing to tell it */
    }
    close(fd);
    log_event(s, "closed fd %d %s: server full (clients: %ld)", fd, peer,
              s->nclients);
}

/* ------------------------------------------------------------------ */
/* Client I/O                                                          */
/* ------------------------------------------------------------------ */

/* handle_writable - send what is pending; in echo mode, lift backpressure
 * once the buffer has drained below the low-water mark. */
static void
handle_writable(struct server *s, struct client *c)
{
    size_t before = buf_len(&c->out), sent;

    if (buf_flush(c->fd, &c->out) < 0) {
        mark_closing(s, c, (errno == EPIPE || errno == ECONNRESET) ? "reset"
                                                                   : "error");
        return;
    }
    sent = before - buf_len(&c->out);
    c->bytes_out += sent;
    s->bytes_out += sent;
    if (sent > 0)
        c->last_active_us = now_us();   /* it reads: it is not idle */
    if (s->opt.mode == MODE_ECHO && c->throttled &&
        buf_len(&c->out) <= ECHO_LOW_WATER)
        c->throttled = false;
    close_if_finished(s, c);
}

/*
 * handle_readable - one read() per readiness report.  select() is level-
 * triggered: anything left in the kernel buffer is reported again next pass.
 * Echo: never read more than keeps the echo pending below the high-water
 * mark, so a client that does not read pins no more than that.  Chat: every
 * byte read may be queued for every other client, so a read is held to
 * CHAT_READ_SIZE: that bounds what one sender can make a pass cost.
 */
static void
handle_readable(struct server *s, struct client *c)
{
    size_t want = (size_t)s->opt.read_size;
    ssize_t n;

    if (s->opt.mode == MODE_ECHO &&
        want > ECHO_HIGH_WATER - buf_len(&c->out))
        want = ECHO_HIGH_WATER - buf_len(&c->out);
    if (s->opt.mode == MODE_CHAT && want > CHAT_READ_SIZE)
        want = CHAT_READ_SIZE;
    n = read(c->fd, s->readbuf, want);

    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        mark_closing(s, c, errno == ECONNRESET ? "reset" : "error");
        if (errno != ECONNRESET)
            log_error(s, errno, "read fd %d (%s)", c->fd, c->peer);
        return;
    }
    if (n == 0) {               /* FIN: finish what we owe, then close */
        c->peer_eof = true;
        if (s->opt.mode == MODE_CHAT)
            chat_relay(s, c, now_us());     /* a last line without '\n' */
        close_if_finished(s, c);
        return;
    }
    if (s->trace)
        print_line(s, "fd %d: read %zd byte%s", c->fd, n, plural(n));
    c->last_active_us = now_us();
    c->bytes_in += (uint64_t)n;
    s->bytes_in += (uint64_t)n;
    if (s->opt.mode == MODE_ECHO)
        queue_output(s, c, s->readbuf, (size_t)n);
    else
        chat_input(s, c, s->readbuf, (size_t)n);
}

/*
 * queue_output - echo: try the write at once and buffer only what the
 * socket did not take; select() watches for writability only while
 * something remains.  Chat: one line goes to every other client, and one
 * pass may relay many lines, so a send() per line per client would cost
 * clients x lines system calls; the lines are queued instead, and each
 * client gets all of its share in one send() at the end of the pass
 * (flush_queued_output).  A client whose backlog grows too large is
 * throttled (echo) or, in chat where its backlog is other people's lines,
 * dropped as a slow consumer.
 */
void
queue_output(struct server *s, struct client *c, const void *data, size_t len)
{
    const char *p = data;

    if (c->close_reason)
        return;
    if (s->opt.mode == MODE_ECHO && buf_len(&c->out) == 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR) {
            mark_closing(s, c, (errno == EPIPE || errno == ECONNRESET)
                               ? "reset" : "error");
            return;
        }
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            c->bytes_out += (uint64_t)n;
            s->bytes_out += (uint64_t)n;
        }
    }
    if (buf_append(&c->out, p, len) < 0) {
        log_error(s, ENOMEM, "buffering output for fd %d", c->fd);
        mark_closing(s, c, "out of memory");
        return;
    }
    if (s->opt.mode == MODE_ECHO && buf_len(&c->out) >= ECHO_HIGH_WATER)
        c->throttled = true;
    if (s->opt.mode == MODE_CHAT && buf_len(&c->out) > CHAT_MAX_PENDING)
        mark_closing(s, c, "slow consumer");
    else if (s->opt.mode == MODE_CHAT) {
        c->flush_queued = true;
        s->flush_pending = true;
    }
}

/* flush_queued_output - chat: send each client the lines queued for it
 * this pass, in one go; select() takes care of whatever does not fit. */
static void
flush_queued_output(struct server *s)
{
    if (!s->flush_pending)
        return;
    s->flush_pending = false;
    for (int fd = 0; fd <= s->max_client_fd; fd++) {
        struct client *c = &s->clients[fd];

        if (c->fd < 0 || !c->flush_queued)
            continue;
        c->flush_queued = false;
        if (!c->close_reason)
            handle_writable(s, c);
    }
}

/* ------------------------------------------------------------------ */
/* Deadlines and closing                                               */
/* ------------------------------------------------------------------ */

/* expire_idle_clients - tell each client that has neither sent nor taken
 * a byte for the idle timeout why, and mark it for closing. */
static void
expire_idle_clients(struct server *s, int64_t now)
{
    char msg[96], secs[32];
    int len;

    if (s->opt.idle_timeout_us == 0 || s->shutting_down)
        return;
    for (int fd = 0; fd <= s->max_client_fd; fd++) {
        struct client *c = &s->clients[fd];

        if (c->fd < 0 || c->close_reason ||
            now < c->last_active_us + s->opt.idle_timeout_us)
            continue;
        len = snprintf(msg, sizeof msg, "*** idle timeout: nothing sent or"
                       " received for %s, closing\n",
                       format_seconds(s->opt.idle_timeout_us, secs,
                                      sizeof secs));
        queue_output(s, c, msg, (size_t)len);
        mark_closing(s, c, "idle timeout");
    }
}

/* mark_closing - close c at the end of this pass, for this reason. */
void
mark_closing(struct server *s, struct client *c, const char *reason)
{
    c->close_reason = reason;
    s->closes_pending = true;
}

/* close_if_finished - after its EOF, a client is closed once all it sent
 * has been answered (echoed, or relayed in chat) and all it is owed has
 * been sent. */
void
close_if_finished(struct server *s, struct client *c)
{
    if (c->peer_eof && !c->close_reason && buf_len(&c->in) == 0 &&
        buf_len(&c->out) == 0)
        mark_closing(s, c, "eof");
}

/* close_marked_clients - close every client marked this pass; nothing to
 * scan on the (usual) pass that marked none.  Closing one may mark more (a
 * chat "left" notice to a dead peer), so go round until none is left. */
static void
close_marked_clients(struct server *s)
{
    while (s->closes_pending) {
        s->closes_pending = false;
        for (int fd = 0; fd <= s->max_client_fd; fd++)
            if (s->clients[fd].fd >= 0 && s->clients[fd].close_reason)
                close_client(s, &s->clients[fd]);
    }
}

/*
 * close_client - last try at pending output, then close and log.  Unread
 * input is drained first: closing a socket with unread data makes the
 * kernel send RST instead of FIN, and the peer could lose the last line.
 */
static void
close_client(struct server *s, struct client *c)
{
    const char *reason = c->close_reason ? c->close_reason : "shutdown";
    char notice[ADDR_STRLEN + 96];
    int fd = c->fd, len;

    if (buf_len(&c->out) > 0 && strcmp(reason, "reset") != 0 &&
        buf_flush(fd, &c->out) < 0) {
        /* the peer is gone: nothing more to deliver */
    }
    for (int i = 0; i < 16 && read(fd, s->readbuf,
                                   (size_t)s->opt.read_size) > 0; i++)
        continue;
    if (close(fd) < 0)
        log_error(s, errno, "close fd %d", fd);
    if (s->opt.mode == MODE_CHAT && c->throttled)
        s->chat_throttled--;
    buf_free(&c->in);
    buf_free(&c->out);
    c->fd = -1;
    c->close_reason = NULL;
    c->throttled = false;
    s->nclients--;
    while (s->max_client_fd >= 0 && s->clients[s->max_client_fd].fd < 0)
        s->max_client_fd--;
    log_event(s, "closed fd %d %s: %s (clients: %ld)", fd, c->peer, reason,
              s->nclients);
    if (s->opt.mode == MODE_CHAT && !s->shutting_down) {
        len = snprintf(notice, sizeof notice, "*** fd %d %s left: %s (%ld"
                       " client%s)\n", fd, c->peer, reason, s->nclients,
                       plural(s->nclients));
        broadcast(s, NULL, notice, (size_t)len);
    }
}

/* close_all_clients - the end: close everyone with one reason. */
static void
close_all_clients(struct server *s, const char *reason)
{
    for (int fd = 0; fd <= s->max_client_fd; fd++)
        if (s->clients[fd].fd >= 0) {
            s->clients[fd].close_reason = reason;
            close_client(s, &s->clients[fd]);
        }
}

const char *
plural(long n)
{
    return n == 1 ? "" : "s";
}

/* ------------------------------------------------------------------ */
/* Setup: the command line                                             */
/* ------------------------------------------------------------------ */

static void
usage(FILE *fp)
{
    char burst[32];

    fprintf(fp,
"Usage: %s [options]\n"
"A select() server: echoes (or relays, in chat mode) what TCP clients send,\n"
"echoes UDP datagrams on the same port, and takes commands on stdin.\n"
"\n"
"  -p, --port PORT          port to listen on; 0 lets the kernel choose"
" (default %d)\n"
"  -b, --bind ADDR          address to listen on (default: every interface,"
" IPv6 and IPv4)\n"
"  -m, --mode MODE          echo or chat (default echo)\n"
"  -t, --idle-timeout SECS  close clients that neither send nor read this"
" long;\n"
"                           0 never (default 0)\n"
"  -n, --max-clients N      most clients at once (default: as many as fit"
" below FD_SETSIZE=%d)\n"
"  -B, --backlog N          listen() backlog (default %d, or $LISTENQ;"
" the kernel\n"
"                           caps it at net.core.somaxconn)\n"
"  -r, --read-size N        bytes per read() or recvmsg() (default %d,"
" max %d)\n"
"      --chat-lines N       chat: each sender's budget, N lines a second"
" (default %d)\n"
"      --chat-bytes N       and N bytes a second of relayed text (default"
" %d);\n"
"                           %s worth may be used at once, then the sender is"
" not\n"
"                           read until it is back within budget\n"
"      --rcvbuf N           ask for SO_RCVBUF N on every socket (default: the\n"
"                           kernel's; TCP then no longer tunes its own)\n"
"      --no-reuseaddr       do not set SO_REUSEADDR\n"
"      --no-udp             no UDP echo socket\n"
"  -v, --trace              narrate every select() call\n"
"  -q, --quiet              no connection log lines\n"
"  -h, --help               show this help and exit\n"
"  -V, --version            show the version and exit\n"
"\n"
"The first line printed is \"listening on ADDR:PORT (tcp, udp)\".\n"
"Console commands: type \"help\" once the server runs.\n"
"Exit status: %d after a clean shutdown (SIGINT, SIGTERM or \"quit\"), %d for\n"
"a usage error, %d when the server cannot start, %d if select() fails.\n",
            PROGNAME, DEFAULT_PORT, FD_SETSIZE, DEFAULT_BACKLOG,
            DEFAULT_READ_SIZE, MAX_READ_SIZE, DEFAULT_CHAT_LINES,
            DEFAULT_CHAT_BYTES,
            format_seconds(CHAT_BURST_US, burst, sizeof burst), EXIT_OK,
            EXIT_USAGE, EXIT_STARTUP, EXIT_RUNTIME);
}

static void
parse_options(int argc, char **argv, struct options *opt)
{
    enum { OPT_NO_REUSEADDR = 256, OPT_NO_UDP, OPT_CHAT_LINES,
           OPT_CHAT_BYTES, OPT_RCVBUF };
    static const struct option longopts[] = {
        { "port",         required_argument, NULL, 'p' },
        { "bind",         required_argument, NULL, 'b' },
        { "mode",         required_argument, NULL, 'm' },
        { "idle-timeout", required_argument, NULL, 't' },
        { "max-clients",  required_argument, NULL, 'n' },
        { "backlog",      required_argument, NULL, 'B' },
        { "read-size",    required_argument, NULL, 'r' },
        { "chat-lines",   required_argument, NULL, OPT_CHAT_LINES },
        { "chat-bytes",   required_argument, NULL, OPT_CHAT_BYTES },
        { "no-reuseaddr", no_argument,       NULL, OPT_NO_REUSEADDR },
        { "no-udp",       no_argument,       NULL, OPT_NO_UDP },
        { "rcvbuf",       required_argument, NULL, OPT_RCVBUF },
        { "trace",        no_argument,       NULL, 'v' },
        { "quiet",        no_argument,       NULL, 'q' },
        { "help",         no_argument,       NULL, 'h' },
        { "version",      no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    const char *listenq = getenv("LISTENQ");
    int c;

    *opt = (struct options){ .port = DEFAULT_PORT, .mode = MODE_ECHO,
                             .backlog = DEFAULT_BACKLOG,
                             .read_size = DEFAULT_READ_SIZE,
                             .chat_lines = DEFAULT_CHAT_LINES,
                             .chat_bytes = DEFAULT_CHAT_BYTES,
                             .reuseaddr = true, .udp = true };
    if (listenq != NULL && parse_long(listenq, 0, 65535, &opt->backlog) < 0)
        usage_error("invalid LISTENQ '%s' in the environment"
                    " (expected 0-65535)", listenq);

    opterr = 0;                 /* we print our own, friendlier errors */
    while ((c = getopt_long(argc, argv, ":p:b:m:t:n:B:r:vqhV", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'p':
            if (parse_port(optarg, 0, &opt->port) < 0)
                usage_error("invalid port '%s' (expected 0-65535)", optarg);
            break;
        case 'b':
            opt->bind_addr = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "echo") == 0)
                opt->mode = MODE_ECHO;
            else if (strcmp(optarg, "chat") == 0)
                opt->mode = MODE_CHAT;
            else
                usage_error("invalid mode '%s' (expected echo or chat)",
                            optarg);
            break;
        case 't':
            if (parse_seconds(optarg, MAX_IDLE_SECONDS,
                              &opt->idle_timeout_us) < 0)
                usage_error("invalid idle timeout '%s' (expected seconds,"
                            " e.g. 30 or 2.5; 0 for none)", optarg);
            break;
        case 'n':
            if (parse_long(optarg, 1, FD_SETSIZE, &opt->max_clients) < 0)
                usage_error("invalid max clients '%s' (expected 1-%d)",
                            optarg, FD_SETSIZE);
            break;
        case 'B':
            if (parse_long(optarg, 0, 65535, &opt->backlog) < 0)
                usage_error("invalid backlog '%s' (expected 0-65535)", optarg);
            break;
        case 'r':
            if (parse_long(optarg, 1, MAX_READ_SIZE, &opt->read_size) < 0)
                usage_error("invalid read size '%s' (expected 1-%d bytes)",
                            optarg, MAX_READ_SIZE);
            break;
        case OPT_CHAT_LINES:
            if (parse_long(optarg, 1, MAX_CHAT_RATE, &opt->chat_lines) < 0)
                usage_error("invalid chat lines '%s' (expected 1-%d lines"
                            " per second)", optarg, MAX_CHAT_RATE);
            break;
        case OPT_CHAT_BYTES:
            if (parse_long(optarg, 1, MAX_CHAT_RATE, &opt->chat_bytes) < 0)
                usage_error("invalid chat bytes '%s' (expected 1-%d bytes"
                            " per second)", optarg, MAX_CHAT_RATE);
            break;
        case OPT_RCVBUF:
            if (parse_long(optarg, 1, MAX_RCVBUF, &opt->rcvbuf) < 0)
                usage_error("invalid receive buffer '%s' (expected 1-%d"
                            " bytes)", optarg, MAX_RCVBUF);
            break;
        case OPT_NO_REUSEADDR: opt->reuseaddr = false; break;
        case OPT_NO_UDP:       opt->udp = false;       break;
        case 'v':              opt->trace = true;      break;
        case 'q':              opt->quiet = true;      break;
        case 'h':
            usage(stdout);
            exit(EXIT_OK);
        case 'V':
            printf("%s %s\n", PROGNAME, VERSION);
            exit(EXIT_OK);
        case ':':
            usage_error("option '%s' needs a value", argv[optind - 1]);
            break;
        default:
            if (strncmp(argv[optind - 1], "--", 2) == 0)
                bad_long_option(argv[optind - 1], longopts);
            usage_error("unknown option '-%c'", optopt);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s' (this server takes only"
                    " options)", argv[optind]);
}

/*
 * bad_long_option - say what is wrong with a long option getopt_long
 * refused: a value given to an option that takes none, an abbreviation
 * that fits several options, or no such option.  (optopt describes only
 * short options, so getopt_long cannot tell us.)  Exits with status 1.
 */
static _Noreturn void
bad_long_option(const char *arg, const struct option *longopts)
{
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct option *match = NULL;
    int matches = 0;

    for (const struct option *o = longopts; o->name != NULL; o++) {
        if (strncmp(o->name, name, len) != 0)
            continue;
        if (strlen(o->name) == len) {       /* exact: stop looking */
            match = o;
            matches = 1;
            break;
        }
        match = o;
        matches++;
    }
    if (matches == 1 && eq != NULL && match->has_arg == no_argument)
        usage_error("option '--%s' takes no value", match->name);
    if (matches > 1)
        usage_error("ambiguous option '--%.*s'", (int)len, name);
    usage_error("unknown option '%s'", arg);
}

/* ------------------------------------------------------------------ */
/* Setup: signals                                                      */
/* ------------------------------------------------------------------ */

/*
 * setup_signals - the self-pipe trick.  A handler may run between the loop
 * checking a flag and select() going to sleep; a byte in a pipe that select()
 * watches cannot be missed that way.  Both ends are non-blocking: a full
 * pipe already holds a wake-up, and the loop drains it without blocking.
 */
static void
setup_signals(struct server *s)
{
    struct sigaction sa;
    int fds[2];

    if (pipe(fds) < 0 || set_nonblocking(fds[0]) < 0 ||
        set_nonblocking(fds[1]) < 0) {
        report_error(errno, "self-pipe");
        exit(EXIT_STARTUP);
    }
    s->sig_read_fd = fds[0];
    signal_pipe_wfd = fds[1];

    /* A vanished client is EPIPE, not death.  A background job that reads
     * its terminal gets SIGTTIN, and one that writes to it under `stty
     * tostop` SIGTTOU: by default both stop the process, and every client
     * with it.  Ignored, the read fails with EIO instead (console.c keeps
     * away from the terminal in the background anyway) and the write goes
     * through. */
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0 || sigaction(SIGTTIN, &sa, NULL) < 0
        || sigaction(SIGTTOU, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGPIPE/SIGTTIN/SIGTTOU");
        exit(EXIT_STARTUP);
    }
    /* While the handler runs, the other of SIGINT and SIGTERM waits; the
     * handler then restores the default action of both, so a second one
     * ends the process at once, even if the graceful path were stuck. */
    sa.sa_handler = on_signal;
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0
        || sigaction(SIGCONT, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGINT/SIGTERM/SIGCONT");
        exit(EXIT_STARTUP);
    }
}

/* on_signal - async-signal-safe: sigaction(), one write(), errno kept. */
static void
on_signal(int signo)
{
    int saved_errno = errno;
    unsigned char byte = (unsigned char)signo;

    if (signo == SIGINT || signo == SIGTERM) {
        struct sigaction dfl;

        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
    }
    if (write(signal_pipe_wfd, &byte, 1) < 0) {
        /* EAGAIN: the pipe is full, so a wake-up is already pending */
    }
    errno = saved_errno;
}

/* ------------------------------------------------------------------ */
/* Setup: the sockets                                                  */
/* ------------------------------------------------------------------ */

/*
 * open_listeners - the TCP listener, then a UDP socket on the same address
 * and port.  With no --bind, one IPv6 socket with IPV6_V6ONLY off serves
 * both families ("dual stack"); where IPv6 is missing, 0.0.0.0 is used.
 * With port 0 the UDP port must match the one the kernel chose for TCP; if
 * that port is taken for UDP, start again with a new one.
 */
static void
open_listeners(struct server *s)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    char addr[ADDR_STRLEN];
    const char *failed_call;
    int err;

    for (int attempt = 0; attempt < 8; attempt++) {
        s->listen_fd = listen_tcp(s, s->opt.bind_addr ? s->opt.bind_addr
                                                      : "::",
                                  &failed_call, addr);
        err = errno;
        if (s->listen_fd < 0 && s->opt.bind_addr == NULL &&
            (err == EAFNOSUPPORT || err == EADDRNOTAVAIL)) {
            s->listen_fd = listen_tcp(s, "0.0.0.0", &failed_call, addr);
            err = errno;
        }
        if (s->listen_fd < 0) {
            explain_bind_error(err, failed_call, "tcp", addr, &s->opt);
            exit(EXIT_STARTUP);
        }
        /* The port we got, for UDP and for spotting loops (loop_risk). */
        sslen = sizeof ss;
        if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &sslen) < 0) {
            report_error(errno, "getsockname");
            exit(EXIT_STARTUP);
        }
        s->port = ntohs(ss.ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&ss)->sin6_port
                        : ((struct sockaddr_in *)&ss)->sin_port);
        if (!s->opt.udp)
            return;

        /* UDP on the very address and port the listener got. */
        s->udp_fd = open_socket(s, (struct sockaddr *)&ss, sslen, SOCK_DGRAM,
                                &failed_call);
        if (s->udp_fd >= 0 && udp_ask_destination(s->udp_fd,
                                                  ss.ss_family) < 0) {
            report_error(errno, "setsockopt IP_PKTINFO/IPV6_RECVPKTINFO");
            exit(EXIT_STARTUP);
        }
        if (s->udp_fd >= 0)
            return;
        err = errno;
        if (err != EADDRINUSE || s->opt.port != 0) {
            format_sockaddr((struct sockaddr *)&ss, sslen, addr, ADDR_STRLEN);
            explain_bind_error(err, failed_call, "udp", addr, &s->opt);
            exit(EXIT_STARTUP);
        }
        close(s->listen_fd);    /* the kernel's TCP port is busy for UDP */
        s->listen_fd = -1;
    }
    report_error(0, "could not find a port free for both TCP and UDP;"
                 " try again, or use --no-udp");
    exit(EXIT_STARTUP);
}

/*
 * listen_tcp - resolve host and listen on the first of its addresses that
 * works.  Returns the fd, or -1 with errno set, *failed_call naming the call
 * and addr the address it failed on.  An unresolvable host ends the program.
 */
static int
listen_tcp(struct server *s, const char *host, const char **failed_call,
           char *addr)
{
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                              .ai_socktype = SOCK_STREAM }, *res, *ai;
    char port[8];
    int fd = -1, err = 0, rc;

    snprintf(port, sizeof port, "%u", s->opt.port);
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        if (s->opt.bind_addr == NULL) {
            errno = EAFNOSUPPORT;       /* no IPv6 here: caller falls back */
            *failed_call = "getaddrinfo";
            snprintf(addr, ADDR_STRLEN, "%s", host);
            return -1;
        }
        report_error(0, "cannot use bind address '%s': %s", host,
                     gai_strerror(rc));
        exit(EXIT_STARTUP);
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = open_socket(s, ai->ai_addr, ai->ai_addrlen, SOCK_STREAM,
                         failed_call);
        err = errno;
        format_sockaddr(ai->ai_addr, ai->ai_addrlen, addr, ADDR_STRLEN);
        if (err == EADDRINUSE || err == EACCES)
            break;              /* the next address would fail the same way */
    }
    freeaddrinfo(res);
    errno = err;
    return fd;
}

/*
 * open_socket - socket(), options, bind() and, for TCP, listen().  Returns
 * a non-blocking fd, or -1 with errno set and *failed_call naming the call.
 */
static int
open_socket(struct server *s, const struct sockaddr *sa, socklen_t salen,
            int type, const char **failed_call)
{
    int fd, on = 1, off = 0, rcvbuf = (int)s->opt.rcvbuf, saved;

    *failed_call = "socket";
    if ((fd = socket(sa->sa_family, type, 0)) < 0)
        return -1;
    *failed_call = "setsockopt";
    /* SO_REUSEADDR lets a restarted server bind while old connections of the
     * previous one still sit in TIME_WAIT. */
    if (type == SOCK_STREAM && s->opt.reuseaddr &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
        goto fail;
    /* A receive buffer of the size asked for; for TCP, set on the listener
     * before listen(), so that every accepted socket inherits it (and the
     * window it announces in the handshake). */
    if (rcvbuf > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
        goto fail;
    /* Dual stack: IPv4 clients arrive as ::ffff:a.b.c.d on an IPv6 socket.
     * Set it explicitly; some systems default to IPv6 only. */
    if (sa->sa_family == AF_INET6 &&
        IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr)
        && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0)
        goto fail;
    *failed_call = "bind";
    if (bind(fd, sa, salen) < 0)
        goto fail;
    *failed_call = "listen";
    if (type == SOCK_STREAM && listen(fd, (int)s->opt.backlog) < 0)
        goto fail;
    /* Non-blocking: a readable listener says a connection was waiting, but
     * the client may reset it before we call accept(), which would then
     * block the whole loop until the next one came. */
    *failed_call = "fcntl O_NONBLOCK";
    if (set_nonblocking(fd) < 0)
        goto fail;
    *failed_call = "select";
    if (fd >= FD_SETSIZE) {
        errno = EMFILE;
        goto fail;
    }
    return fd;
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* explain_bind_error - the failed call, the address, why, and what to do. */
static void
explain_bind_error(int err, const char *call, const char *proto,
                   const char *addr, const struct options *opt)
{
    report_error(err, "%s %s%s", call, addr,
                 strcmp(proto, "udp") == 0 ? " (udp)" : "");
    /* SO_REUSEADDR helps only if the old server set it too: its
     * connections inherit the option from its listener. */
    if (err == EADDRINUSE && opt->reuseaddr)
        fprintf(stderr, "hint: another server is using this port (see:"
                " ss -tulnp), or one run with --no-reuseaddr left"
                " connections in TIME_WAIT; stop it, wait, or choose another"
                " port with -p\n");
    else if (err == EADDRINUSE)
        fprintf(stderr, "hint: another server is using this port, or"
                " connections of a previous one are in TIME_WAIT (see:"
                " netstat -nat); wait, choose another port, or drop"
                " --no-reuseaddr\n");
    else if (err == EACCES)
        fprintf(stderr, "hint: ports below 1024 need root; use a port"
                " above 1023\n");
    else if (err == EADDRNOTAVAIL)
        fprintf(stderr, "hint: that address does not belong to this machine"
                " (see: ip addr)\n");
}

/* ------------------------------------------------------------------ */
/* Setup: limits                                                       */
/* ------------------------------------------------------------------ */

/*
 * setup_limits - the client table and the scratch buffers.  A client's fd
 * must stay below FD_SETSIZE, and the process may open only RLIMIT_NOFILE
 * descriptors: the free slots below the smaller of the two are the most
 * clients that can ever be served.  One spare descriptor is kept open so
 * that when accept() fails with EMFILE we can still accept the waiting
 * connection, tell it "server full" and close it, instead of leaving it in
 * the backlog, where it keeps the listener readable and the loop spinning.
 */
static void
setup_limits(struct server *s)
{
    struct rlimit rl;
    long limit = FD_SETSIZE, free_fds = 0;

    if ((s->spare_fd = open("/dev/null", O_RDONLY)) < 0) {
        report_error(errno, "open /dev/null");
        exit(EXIT_STARTUP);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)limit)
        limit = (long)rl.rlim_cur;
    for (int fd = 0; fd < limit; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
            free_fds++;
    if (free_fds == 0) {
        report_error(0, "no file descriptors left for clients (limit %ld;"
                     " raise it with ulimit -n)", limit);
        exit(EXIT_STARTUP);
    }
    if (s->opt.max_clients > free_fds)
        usage_error("invalid max clients '%ld' (only %ld fit below"
                    " FD_SETSIZE=%d and the fd limit here)",
                    s->opt.max_clients, free_fds, FD_SETSIZE);
    s->max_clients = s->opt.max_clients ? s->opt.max_clients : free_fds;

    s->clients = calloc(FD_SETSIZE, sizeof *s->clients);
    s->readbuf = malloc((size_t)s->opt.read_size);
    s->linebuf = malloc(ADDR_STRLEN + 32 + 4 * MAX_LINE + 2);
    if (s->clients == NULL || s->readbuf == NULL || s->linebuf == NULL) {
        report_error(ENOMEM, "allocating the client table");
        exit(EXIT_STARTUP);
    }
    for (int fd = 0; fd < FD_SETSIZE; fd++)
        s->clients[fd].fd = -1;
    s->console_open = true;
    s->console_lines.max = CONSOLE_MAX_LINE;
    s->accepting = true;
    s->trace = s->opt.trace;
    s->started_us = now_us();
}

/*
 * report_rcvbuf - --rcvbuf: what the kernel made of it.  Linux doubles the
 * size it is given (the rest is for its own bookkeeping: socket(7)), caps
 * the request at net.core.rmem_max, and getsockopt() shows the result.
 */
static void
report_rcvbuf(struct server *s)
{
    int fd = s->udp_fd >= 0 ? s->udp_fd : s->listen_fd, got = 0;
    socklen_t len = sizeof got;

    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) < 0) {
        log_error(s, errno, "getsockopt SO_RCVBUF");
        return;
    }
    print_line(s, "receive buffer: asked for %ld bytes, got %d (SO_RCVBUF)",
               s->opt.rcvbuf, got);
}
