/*
 * select_client.c - a TCP (or UDP) client built around one select() loop.
 *
 * It connects to HOST PORT and then relays both ways at once: what arrives
 * on stdin goes to the server, what the server sends goes to stdout.  It
 * watches the socket even while you sit idle at the keyboard, so it notices
 * at once when the server goes away.  Nothing but the server's bytes reaches
 * stdout (messages go to stderr), so it works in a pipeline:
 *
 *     ./select_client 127.0.0.1 9877                   type lines, see replies
 *     ./select_client 127.0.0.1 9877 <in.bin >out.bin  batch: send, collect
 *     ./select_client -v 127.0.0.1 9877                narrate each select()
 *     ./select_client -u 127.0.0.1 9877                one datagram per line
 *
 * Where to start reading: main(), then run_session() - the whole select()
 * loop on one screen - then the handlers it calls, in the order it calls
 * them.  connect_within_timeout() shows a non-blocking connect() bounded by
 * a timeout, which is select()'s other classic use.
 *
 * Exit status: 0 success; 1 usage error; 2 could not connect (refused, timed
 * out, unreachable, unknown host, no UDP server, not one UDP reply); 3 the
 * server closed or reset the connection before we were done; 4 a local
 * error (reading stdin, writing stdout, out of memory).
 */
#define PROGNAME "select_client"
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <getopt.h>

#define DEFAULT_CONNECT_TIMEOUT_S 10    /* per address; 0 = no limit of ours */
#define MAX_CONNECT_TIMEOUT_S 86400
#define BUFFER_LIMIT (256 * 1024)       /* cap on each direction's buffer */
#define READ_CHUNK (64 * 1024)          /* most bytes taken per read() */
#define MAX_DATAGRAM 65507              /* largest UDP payload over IPv4 */
#define UDP_RECV_SIZE 65536             /* more than any UDP payload */
#define UDP_REPLY_WAIT_US 1000000       /* after stdin EOF, wait this long */

/* connect_within_timeout() result when our own timeout ran out. */
#define CONNECT_TIMED_OUT (-1)

/* Exit statuses; RUNNING means "not finished yet, keep looping". */
enum status {
    RUNNING = -1,
    STATUS_OK = 0,
    STATUS_USAGE = EXIT_USAGE,
    STATUS_NO_CONNECT = 2,      /* refused, timed out, unreachable, ... */
    STATUS_SERVER_GONE = 3,     /* closed or reset before we were done */
    STATUS_LOCAL = 4,           /* stdin, stdout, out of memory */
};

/* Everything the client knows: made in main() and passed by pointer. */
struct client {
    /* What the command line asked for */
    const char *host;
    char port[8];               /* PORT, checked and normalised */
    int family;                 /* AF_UNSPEC, or AF_INET/AF_INET6 (-4/-6) */
    int64_t connect_timeout_us; /* per address; 0 = no limit of ours */
    bool quiet, trace, udp;

    /* The connection */
    int sock;                   /* non-blocking; -1 until connected */
    char peer[ADDR_STRLEN];     /* the server's address, for messages */
    bool stdin_open;            /* false once read() on stdin returned 0 */
    bool sent_eof;              /* TCP: all of stdin sent, then SHUT_WR */
    struct buffer to_server;    /* read from stdin, not yet sent */
    struct buffer to_stdout;    /* received, not yet written to stdout */
    struct out_fd out;          /* how stdout is written without blocking */
    bool stdout_ready;          /* OUT_PIPE_BUF: select() said writable */

    /* UDP only */
    struct addrinfo *addrs;     /* HOST's addresses, kept: see probe_len */
    struct addrinfo *next_addr; /* the one to try after this one, or NULL */
    bool probing;               /* no reply yet, and other addresses left */
    size_t probe_len;           /* probing: bytes of to_server sent once,
                                   kept until a reply, a refusal or 1 s */
    bool skipping_line;         /* dropping the rest of a too-long line */
    unsigned long datagrams;    /* datagrams sent */
    unsigned long replies;      /* datagrams received */
    int64_t last_udp_us;        /* when we last sent or received one */
};

/* The command line */
static int parse_options(struct client *c, int argc, char **argv);
static int print_usage(void);
static int print_version(void);
static int flush_stdout(void);

/* Connecting */
static int connect_to_server(struct client *c);
static int connect_from(struct client *c, struct addrinfo *ai);
static int try_address(struct client *c, const struct addrinfo *ai);
static int connect_within_timeout(const struct client *c, int fd,
                                  const struct addrinfo *ai);
static void report_connect_failure(const struct client *c, int err);

/* The select() loop and the events it handles */
static int run_session(struct client *c);
static int select_traced(const struct client *c, int nfds, fd_set *rset,
                         fd_set *wset, int64_t timeout_us);
static bool room_for_replies(const struct client *c);
static bool want_to_send(const struct client *c);
static bool waiting_for_replies(const struct client *c);
static int64_t next_timeout(const struct client *c);
static int write_stdout(struct client *c);
static int socket_readable(struct client *c);
static int socket_writable(struct client *c);
static int stdin_readable(struct client *c);
static int send_datagrams(struct client *c);
static void end_probe(struct client *c);
static int next_udp_address(struct client *c);
static int reply_wait_over(struct client *c);

/* The end */
static int server_closed(struct client *c);
static int send_failed(struct client *c, int err, const char *what);
static void read_to_end(struct client *c);
static int socket_failed(struct client *c, int err, const char *what);
static int out_of_memory(void);
static int end_session(struct client *c, int status, const char *why);

int
main(int argc, char **argv)
{
    struct client c = {
        .family = AF_UNSPEC,
        .connect_timeout_us = (int64_t)DEFAULT_CONNECT_TIMEOUT_S * 1000000,
        .sock = -1,
        .stdin_open = true,
    };
    int status;

    if ((status = parse_options(&c, argc, argv)) != RUNNING)
        return status;
    if (open_std_fds() < 0) {
        report_error(errno, "open /dev/null");
        return STATUS_LOCAL;
    }
    /*
     * SIGPIPE stays at its default, on purpose.  The socket cannot raise it
     * (we send with MSG_NOSIGNAL), so it can only come from stdout: when
     * whoever reads our output goes away, as in `select_client ... | head -1`,
     * we end quietly like any other Unix filter, and the shell knows why.
     */
    out_fd_open(&c.out, STDOUT_FILENO);
    if ((status = connect_to_server(&c)) == RUNNING)
        status = run_session(&c);
    if (c.sock >= 0 && close(c.sock) < 0)
        report_error(errno, "close socket");
    out_fd_close(&c.out);
    buf_free(&c.to_server);
    buf_free(&c.to_stdout);
    if (c.addrs != NULL)
        freeaddrinfo(c.addrs);
    return status;
}

/* ------------------------------------------------------------------ */
/* The command line                                                    */
/* ------------------------------------------------------------------ */

/*
 * parse_options - fill in c from the command line.  Returns RUNNING to go
 * on, or the exit status after --help or --version; a usage error exits
 * with status 1 (usage_error in common.h).
 */
static int
parse_options(struct client *c, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "connect-timeout", required_argument, NULL, 'w' },
        { "quiet", no_argument, NULL, 'q' },
        { "trace", no_argument, NULL, 'v' },
        { "udp", no_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *shortopts = "w:qvu46hV";
    unsigned short port;
    int opt;

    argv[0] = PROGNAME;         /* getopt_long's messages start with argv[0] */
    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        switch (opt) {
        case 'w':
            if (parse_seconds(optarg, MAX_CONNECT_TIMEOUT_S,
                              &c->connect_timeout_us) < 0)
                usage_error("invalid connect timeout '%s' "
                            "(expected seconds, e.g. 2.5)", optarg);
            break;
        case 'q':
            c->quiet = true;
            break;
        case 'v':
            c->trace = true;
            break;
        case 'u':
            c->udp = true;
            break;
        case '4':
            c->family = AF_INET;
            break;
        case '6':
            c->family = AF_INET6;
            break;
        case 'h':
            return print_usage();
        case 'V':
            return print_version();
        default:
            exit_usage();       /* getopt_long has said what was wrong */
        }
    }
    if (argc - optind < 2)
        usage_error(argc == optind ? "missing HOST and PORT"
                                   : "missing PORT after HOST");
    if (argc - optind > 2)
        usage_error("unexpected argument '%s'", argv[optind + 2]);
    c->host = argv[optind];
    if (parse_port(argv[optind + 1], 1, &port) < 0)
        usage_error("invalid port '%s' (expected 1-65535)",
                    argv[optind + 1]);
    snprintf(c->port, sizeof c->port, "%u", (unsigned)port);
    return RUNNING;
}

/* print_usage - the --help text on stdout; returns the exit status. */
static int
print_usage(void)
{
    char wait[32];

    printf("Usage: %s [options] HOST PORT\n", PROGNAME);
    printf("Connect to HOST PORT, send stdin to the server and write what\n"
           "it sends back to stdout; messages go to stderr.  At the end of\n"
           "stdin, send the rest, close our half of the connection, and go\n"
           "on printing replies until the server closes.\n\n");
    printf("Options:\n"
           "  -w, --connect-timeout SECONDS\n"
           "                give up on each address after SECONDS\n"
           "                (default %d, decimals allowed, at most %d,\n"
           "                0 = no limit)\n",
           DEFAULT_CONNECT_TIMEOUT_S, MAX_CONNECT_TIMEOUT_S);
    printf("  -u, --udp     send each stdin line as one datagram (at most\n"
           "                %d bytes) and print each reply as a line; at the\n"
           "                end of stdin, wait until every datagram has a\n"
           "                reply, or until none came for %s.  A host with\n"
           "                several addresses: until one answers, send one\n"
           "                datagram, and move on if it is refused\n",
           MAX_DATAGRAM, format_seconds(UDP_REPLY_WAIT_US, wait, sizeof wait));
    printf("  -4, -6        use IPv4 only, or IPv6 only\n"
           "  -q, --quiet   do not print the 'connected to' line\n"
           "  -v, --trace   narrate every select() call on stderr\n"
           "  -h, --help    show this help and exit\n"
           "  -V, --version show the version and exit\n\n");
    printf("Exit status:\n"
           "  %d  success\n"
           "  %d  usage error\n"
           "  %d  could not connect (refused, timed out, unreachable,\n"
           "     unknown host, no UDP server, not one UDP reply)\n"
           "  %d  the server closed or reset the connection before we were\n"
           "     done\n"
           "  %d  a local error (reading stdin, writing stdout, out of\n"
           "     memory)\n",
           STATUS_OK, STATUS_USAGE, STATUS_NO_CONNECT, STATUS_SERVER_GONE,
           STATUS_LOCAL);
    return flush_stdout();
}

/* print_version - "select_client 1.0.0" on stdout; returns the exit status. */
static int
print_version(void)
{
    printf("%s %s\n", PROGNAME, VERSION);
    return flush_stdout();
}

/* flush_stdout - push out what printf buffered (`-h >/dev/full` must not
 * claim success); returns STATUS_OK, or STATUS_LOCAL after saying why. */
static int
flush_stdout(void)
{
    if (fflush(stdout) == EOF) {
        report_error(errno, "write stdout");
        return STATUS_LOCAL;
    }
    return STATUS_OK;
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */
/* ------------------------------------------------------------------ */

/*
 * connect_to_server - resolve HOST and try each address in turn until one
 * connects.  Returns RUNNING with c->sock connected, or STATUS_NO_CONNECT
 * after one line per failed address.  UDP keeps the list: its connect()
 * succeeds whatever is there, and only the first datagram tells.
 */
static int
connect_to_server(struct client *c)
{
    struct addrinfo hints, *list;
    int rc, status;

    /* No AI_ADDRCONFIG: it hides ::1 and 127.0.0.1 on hosts (and network
     * namespaces) whose only interface is loopback. */
    memset(&hints, 0, sizeof hints);
    hints.ai_family = c->family;
    hints.ai_socktype = c->udp ? SOCK_DGRAM : SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(c->host, c->port, &hints, &list);
    if (rc != 0 && c->family != AF_UNSPEC && rc != EAI_NONAME &&
        rc != EAI_SYSTEM) {
        report_error(0, "no %s address for '%s': %s",
                     c->family == AF_INET ? "IPv4" : "IPv6", c->host,
                     gai_strerror(rc));
        return STATUS_NO_CONNECT;
    }
    if (rc != 0) {
        report_error(0, "unknown host '%s': %s", c->host,
                     rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return STATUS_NO_CONNECT;
    }
    status = connect_from(c, list);
    if (c->udp) {
        c->addrs = list;
    } else {
        freeaddrinfo(list);
        c->next_addr = NULL;
    }
    return status;
}

/*
 * connect_from - try the addresses from ai on until one connects; note the
 * next one.  A UDP client with another address to go to "probes": it
 * sends one datagram and waits for its answer before the rest (see
 * send_datagrams).  Returns RUNNING or STATUS_NO_CONNECT.
 */
static int
connect_from(struct client *c, struct addrinfo *ai)
{
    char local[ADDR_STRLEN];

    for (; ai != NULL && c->sock < 0; ai = ai->ai_next)
        c->sock = try_address(c, ai);
    if (c->sock < 0)
        return STATUS_NO_CONNECT;
    c->next_addr = ai;
    c->probing = c->udp && ai != NULL;

    /* The local port is the one the kernel chose while connecting. */
    if (!c->quiet)
        fprintf(stderr, "connected to %s from %s\n", c->peer,
                format_socket_address(c->sock, getsockname, local,
                                      sizeof local));
    return RUNNING;
}

/*
 * try_address - connect a new non-blocking socket to one address.  Returns
 * the socket, or -1 after printing why not.
 */
static int
try_address(struct client *c, const struct addrinfo *ai)
{
    int fd, err;

    format_sockaddr(ai->ai_addr, ai->ai_addrlen, c->peer, sizeof c->peer);
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) {
        report_error(errno, "socket for %s", c->peer);
        return -1;
    }
    if (fd >= FD_SETSIZE)
        report_error(0, "socket for %s: descriptor %d is too large for "
                     "select()", c->peer, fd);
    else if (set_nonblocking(fd) < 0)
        report_error(errno, "set O_NONBLOCK on socket for %s", c->peer);
    else if ((err = connect_within_timeout(c, fd, ai)) != 0)
        report_connect_failure(c, err);
    else
        return fd;
    if (close(fd) < 0)
        report_error(errno, "close socket for %s", c->peer);
    return -1;
}

/*
 * connect_within_timeout - connect() the non-blocking fd.  TCP answers
 * EINPROGRESS while the handshake runs; select() then waits for the socket
 * to become writable, for at most the connect timeout, and SO_ERROR says
 * how the handshake ended.  (A UDP connect() only records the address, so
 * it is immediate.)  Returns 0 once connected, the errno value saying why
 * not, or CONNECT_TIMED_OUT.
 */
static int
connect_within_timeout(const struct client *c, int fd,
                       const struct addrinfo *ai)
{
    int64_t deadline = now_us() + c->connect_timeout_us;
    int err = 0;
    socklen_t len = sizeof err;

    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return errno;           /* EINTR: the handshake goes on regardless */

    /* Bounded: each pass ends at the deadline, or, with no limit of ours,
     * when the kernel gives up on the handshake. */
    for (;;) {
        fd_set rset, wset;
        int64_t left = -1;
        int n;

        if (c->connect_timeout_us > 0 && (left = deadline - now_us()) <= 0)
            return CONNECT_TIMED_OUT;
        FD_ZERO(&rset);
        FD_ZERO(&wset);
        FD_SET(fd, &wset);
        n = select_traced(c, fd + 1, &rset, &wset, left);
        if (n > 0)
            break;
        if (n < 0 && errno != EINTR)
            return errno;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

/* report_connect_failure - one line naming the address and the cause. */
static void
report_connect_failure(const struct client *c, int err)
{
    char t[32];

    if (err == CONNECT_TIMED_OUT)
        report_error(0, "connect to %s: timed out after %s", c->peer,
                     format_seconds(c->connect_timeout_us, t, sizeof t));
    else if (err == ECONNREFUSED)
        report_error(0, "connection refused: nothing listening on %s",
                     c->peer);
    else if (err == EHOSTUNREACH)
        report_error(0, "connect to %s: host unreachable (%s)", c->peer,
                     strerror(err));
    else if (err == ENETUNREACH)
        report_error(0, "connect to %s: network unreachable (%s)", c->peer,
                     strerror(err));
    else
        report_error(err, "connect to %s", c->peer);
}

/* ------------------------------------------------------------------ */
/* The select() loop                                                   */
/* ------------------------------------------------------------------ */

/*
 * run_session - relay between stdin/stdout and the socket until the
 * session ends.  Returns the exit status.
 */
static int
run_session(struct client *c)
{
    int status = RUNNING;

    while (status == RUNNING) {
        fd_set rset, wset;
        /* The highest descriptor is the socket or our copy of stdout (both
         * above 0-2: open_std_fds()). */
        int nfds = (c->sock > c->out.fd ? c->sock : c->out.fd) + 1;

        /* UDP after stdin EOF: stop when all replies are in, or none came. */
        if (waiting_for_replies(c) && (status = reply_wait_over(c)) != RUNNING)
            break;
        /* UDP, probing: neither a reply nor a refusal within the wait.
         * Nothing says the address is wrong: carry on with it. */
        if (c->probe_len > 0 && now_us() >= c->last_udp_us + UDP_REPLY_WAIT_US)
            end_probe(c);

        /* Rebuild both sets on every pass: interest follows the buffers. */
        FD_ZERO(&rset);
        FD_ZERO(&wset);
        if (c->stdin_open && buf_len(&c->to_server) < BUFFER_LIMIT)
            FD_SET(STDIN_FILENO, &rset);
        if (room_for_replies(c))
            FD_SET(c->sock, &rset);
        if (want_to_send(c))
            FD_SET(c->sock, &wset);
        if (buf_len(&c->to_stdout) > 0)
            FD_SET(c->out.fd, &wset);

        /* Sleep until something is ready (or the UDP reply wait ends). */
        if (select_traced(c, nfds, &rset, &wset, next_timeout(c)) < 0) {
            if (errno == EINTR)
                continue;               /* a signal: just loop again */
            report_error(errno, "select");
            return STATUS_LOCAL;
        }

        /* stdout can take more: write, which makes room to read the socket. */
        if (FD_ISSET(c->out.fd, &wset)) {
            c->stdout_ready = true;
            status = write_stdout(c);
        }

        /* The server sent something, or closed, or reset the connection. */
        if (status == RUNNING && FD_ISSET(c->sock, &rset))
            status = socket_readable(c);

        /* The socket has room again for what is still queued for it. */
        if (status == RUNNING && FD_ISSET(c->sock, &wset))
            status = socket_writable(c);

        /* stdin has input (or EOF): queue it and try to send at once. */
        if (status == RUNNING && FD_ISSET(STDIN_FILENO, &rset))
            status = stdin_readable(c);
    }
    return status;
}

/*
 * select_traced - select() with a timeout in microseconds (< 0: none),
 * narrated on stderr with --trace.  A fresh struct timeval every call:
 * Linux select() overwrites it.  Returns select()'s result, errno intact.
 */
static int
select_traced(const struct client *c, int nfds, fd_set *rset, fd_set *wset,
              int64_t timeout_us)
{
    struct timeval tv, *tvp = NULL;
    int64_t started = now_us();
    char line[SELECT_TRACE_STRLEN];
    int n, saved;

    if (timeout_us >= 0) {
        tv.tv_sec = (time_t)(timeout_us / 1000000);
        tv.tv_usec = (suseconds_t)(timeout_us % 1000000);
        tvp = &tv;
    }
    if (c->trace)
        fprintf(stderr, "%s\n",
                format_select_call(line, nfds, rset, wset, timeout_us));
    n = select(nfds, rset, wset, NULL, tvp);
    saved = errno;
    if (c->trace && n >= 0)
        fprintf(stderr, "%s\n", format_select_result(line, n, nfds, rset,
                                                      wset, now_us() - started));
    errno = saved;
    return n;
}

/*
 * room_for_replies - may we read the socket now?  Only while the buffer for
 * stdout has room: a reader slower than the server must slow the server
 * down (TCP flow control), not make us buffer without limit.  A datagram
 * must be read whole, so UDP needs room for the largest one.
 */
static bool
room_for_replies(const struct client *c)
{
    size_t need = c->udp ? UDP_RECV_SIZE + 1 : 1;

    return buf_len(&c->to_stdout) + need <= BUFFER_LIMIT;
}

/*
 * want_to_send - is something queued that the socket should take?  In UDP
 * mode only a whole line is a datagram; the tail of a line still being
 * typed must not make us ask for writability (select() would return at
 * once, every time: a busy loop).  Nor may a probe waiting for its answer.
 */
static bool
want_to_send(const struct client *c)
{
    const struct buffer *b = &c->to_server;

    if (buf_len(b) == 0 || c->probe_len > 0)
        return false;
    if (!c->udp || !c->stdin_open)
        return true;
    return memchr(b->data + b->start, '\n', buf_len(b)) != NULL;
}

/* waiting_for_replies - UDP, stdin at EOF, every datagram sent. */
static bool
waiting_for_replies(const struct client *c)
{
    return c->udp && !c->stdin_open && buf_len(&c->to_server) == 0;
}

/*
 * next_timeout - microseconds until the only deadline we have, the end of
 * the UDP reply wait (for all replies, or for a probe's); -1 when nothing
 * is due (select() may then sleep until a descriptor is ready, however
 * long that takes).
 */
static int64_t
next_timeout(const struct client *c)
{
    int64_t left;

    if (!waiting_for_replies(c) && c->probe_len == 0)
        return -1;
    left = c->last_udp_us + UDP_REPLY_WAIT_US - now_us();
    return left > 0 ? left : 0;
}

/*
 * write_stdout - write what the server sent, as far as that cannot block
 * (struct out_fd in common.h): a pipe is filled up to the brim, a file
 * takes everything, and what is left waits for select() to say stdout has
 * room.  socket_readable() calls this at once too, so most bytes go out
 * without a trip through select().  Only a pipe we could not open again
 * (OUT_PIPE_BUF) is written strictly once per readiness.
 */
static int
write_stdout(struct client *c)
{
    struct buffer *out = &c->to_stdout;

    while (buf_len(out) > 0) {
        ssize_t n;

        if (c->out.how == OUT_PIPE_BUF && !c->stdout_ready)
            return RUNNING;             /* wait for select() */
        c->stdout_ready = false;
        n = out_fd_write(&c->out, out->data + out->start, buf_len(out));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return RUNNING;
            report_error(errno, "write stdout");
            return STATUS_LOCAL;
        }
        buf_consume(out, (size_t)n);
    }
    return RUNNING;
}

/*
 * socket_readable - take what the server sent into the buffer for stdout.
 * TCP: recv() returning 0 means the server closed its side.  UDP: one recv()
 * is one datagram (perhaps empty), printed as a line of its own.
 */
static int
socket_readable(struct client *c)
{
    struct buffer *in = &c->to_stdout;
    size_t room = BUFFER_LIMIT - buf_len(in);
    size_t want = c->udp ? UDP_RECV_SIZE : room < READ_CHUNK ? room
                                                             : READ_CHUNK;
    char *p = buf_reserve(in, want + 1);        /* + 1: a datagram's '\n' */
    ssize_t n;

    if (p == NULL)
        return out_of_memory();
    n = recv(c->sock, p, want, 0);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return RUNNING;
        return socket_failed(c, errno, "receive from");
    }
    if (c->udp) {
        p[n++] = '\n';
        c->replies++;
        c->last_udp_us = now_us();
        if (c->probing)
            end_probe(c);       /* the right address: send the rest */
    } else if (n == 0) {
        return server_closed(c);
    }
    in->end += (size_t)n;
    return write_stdout(c);
}

/*
 * socket_writable - send what stdin queued until the socket would block;
 * select() tells us when to send the rest.  stdin_readable() calls this
 * too, right after queueing (as Redis does), so most bytes leave without a
 * trip through select().  Once stdin is at EOF and everything has gone, TCP
 * sends a FIN with shutdown(SHUT_WR) and keeps reading: the server sees the
 * end of our data, and we still get all of its replies.
 */
static int
socket_writable(struct client *c)
{
    if (c->udp)
        return send_datagrams(c);
    if (buf_flush(c->sock, &c->to_server) < 0)
        return send_failed(c, errno, "send to");
    if (!c->stdin_open && buf_len(&c->to_server) == 0 && !c->sent_eof) {
        if (shutdown(c->sock, SHUT_WR) < 0)
            return send_failed(c, errno, "shutdown");
        c->sent_eof = true;
    }
    return RUNNING;
}

/*
 * stdin_readable - one read() of what the user typed or piped in; select()
 * said stdin is readable, so a single read() cannot block, and stdin stays
 * blocking (it belongs to the user's shell).  Read 0 bytes means EOF.
 */
static int
stdin_readable(struct client *c)
{
    size_t room = BUFFER_LIMIT - buf_len(&c->to_server);
    size_t want = room < READ_CHUNK ? room : READ_CHUNK;
    char *p = buf_reserve(&c->to_server, want);
    ssize_t n;

    if (p == NULL)
        return out_of_memory();
    n = read(STDIN_FILENO, p, want);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return RUNNING;
        report_error(errno, "read stdin");
        return STATUS_LOCAL;
    }
    if (n == 0)
        c->stdin_open = false;
    else
        c->to_server.end += (size_t)n;
    return socket_writable(c);
}

/*
 * send_datagrams - send each whole line queued from stdin as one datagram,
 * without its newline; at stdin EOF an unfinished last line goes too.
 * Stops when the socket would block.  A line too long for one datagram is
 * reported and dropped, including any part of it still to come.
 */
static int
send_datagrams(struct client *c)
{
    struct buffer *b = &c->to_server;

    while (buf_len(b) > 0) {
        char *line = b->data + b->start;
        char *nl = memchr(line, '\n', buf_len(b));
        size_t len = nl != NULL ? (size_t)(nl - line) : buf_len(b);
        bool whole = nl != NULL || !c->stdin_open;

        if (c->skipping_line || len > MAX_DATAGRAM) {
            if (!c->skipping_line)
                report_error(0, "line longer than %d bytes does not fit in "
                             "one datagram; skipped", MAX_DATAGRAM);
            c->skipping_line = !whole;
        } else if (!whole || c->probe_len > 0) {
            break;      /* the rest of the line, or the probe's answer */
        } else if (send(c->sock, line, len, MSG_NOSIGNAL) < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;                  /* select() says when to go on */
            return socket_failed(c, errno, "send to");
        } else {
            c->datagrams++;
            c->last_udp_us = now_us();
            if (c->probing) {
                /* Kept: if this address refuses it, it goes to the next. */
                c->probe_len = len + (nl != NULL);
                break;
            }
        }
        buf_consume(b, len + (nl != NULL));
    }
    return RUNNING;
}

/* end_probe - this address stands: forget the probe, send the rest. */
static void
end_probe(struct client *c)
{
    buf_consume(&c->to_server, c->probe_len);
    c->probe_len = 0;
    c->probing = false;
}

/*
 * next_udp_address - our datagram was refused (an ICMP "port unreachable"
 * came back, and the socket reports ECONNREFUSED) before any reply: as a
 * TCP client does after a refused connect(), move on to HOST's next
 * address, and send the probe again there.  Returns RUNNING, or
 * STATUS_NO_CONNECT when no address is left to try.
 */
static int
next_udp_address(struct client *c)
{
    report_error(0, "no UDP server at %s; trying the next address", c->peer);
    if (close(c->sock) < 0)
        report_error(errno, "close socket");
    c->sock = -1;
    if (c->probe_len > 0) {
        c->datagrams--;         /* it will be sent again */
        c->probe_len = 0;
    }
    return connect_from(c, c->next_addr);
}

/*
 * reply_wait_over - UDP with stdin at EOF and every datagram sent: done
 * once each datagram has had its reply, or when none came for
 * UDP_REPLY_WAIT_US (UDP never says "no more replies").  Returns RUNNING
 * to keep waiting, or the exit status.
 */
static int
reply_wait_over(struct client *c)
{
    char why[ADDR_STRLEN + 128], t[32];

    if (c->replies >= c->datagrams)
        return end_session(c, STATUS_OK, NULL);
    if (now_us() < c->last_udp_us + UDP_REPLY_WAIT_US)
        return RUNNING;
    format_seconds(UDP_REPLY_WAIT_US, t, sizeof t);
    if (c->replies == 0) {
        /* Not one answer: nobody there (or a firewall ate the ICMP). */
        snprintf(why, sizeof why, "no reply from %s to any of %lu datagram%s"
                 " within %s", c->peer, c->datagrams,
                 c->datagrams == 1 ? "" : "s", t);
        return end_session(c, STATUS_NO_CONNECT, why);
    }
    snprintf(why, sizeof why, "%lu of %lu datagrams had no reply within %s",
             c->datagrams - c->replies, c->datagrams, t);
    return end_session(c, STATUS_OK, c->quiet ? NULL : why);
}

/* ------------------------------------------------------------------ */
/* The end                                                             */
/* ------------------------------------------------------------------ */

/*
 * server_closed - the server closed its side.  After our own SHUT_WR that
 * is the normal end.  Before it, the server quit while we still had data
 * to send (UNP's "server terminated prematurely"): say so at once, even if
 * the user is idle at the keyboard.  Returns the exit status.
 */
static int
server_closed(struct client *c)
{
    if (c->sent_eof)
        return end_session(c, STATUS_OK, NULL);
    return end_session(c, STATUS_SERVER_GONE, "server closed the connection");
}

/*
 * send_failed - send() or shutdown() failed: the server has closed or
 * reset the connection.  What it sent before that may still wait, unread,
 * in our receive queue (we stop reading the socket while stdout is full):
 * its last echo, a "*** kicked" or "*** idle timeout" notice.  Read it to
 * the end and deliver it before saying why we stop.  Returns the exit
 * status.
 */
static int
send_failed(struct client *c, int err, const char *what)
{
    if (!c->udp)
        read_to_end(c);
    return socket_failed(c, err, what);
}

/*
 * read_to_end - take everything left in the socket's receive queue, past
 * BUFFER_LIMIT if need be (the kernel's buffer bounds it), until EOF, the
 * reset itself, or nothing more to read.
 */
static void
read_to_end(struct client *c)
{
    for (;;) {
        char *p = buf_reserve(&c->to_stdout, READ_CHUNK);
        ssize_t n;

        if (p == NULL)
            return;
        n = recv(c->sock, p, READ_CHUNK, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        c->to_stdout.end += (size_t)n;
    }
}

/*
 * socket_failed - end the session after send(), recv() or shutdown() on
 * the socket failed with err; what names the call.  A UDP error means
 * there is nobody to talk to: an ICMP port-unreachable comes back as
 * ECONNREFUSED on the next send() or recv(); before the first reply, the
 * next address may do better.  Returns the exit status.
 */
static int
socket_failed(struct client *c, int err, const char *what)
{
    char why[ADDR_STRLEN + 128];

    if (c->udp && err == ECONNREFUSED && c->probing)
        return next_udp_address(c);

    if (c->udp && err == ECONNREFUSED)
        snprintf(why, sizeof why, "no UDP server at %s", c->peer);
    else if (err == ECONNRESET || err == EPIPE)
        snprintf(why, sizeof why, "connection reset by server");
    else
        snprintf(why, sizeof why, "%s %s: %s", what, c->peer, strerror(err));
    return end_session(c, c->udp ? STATUS_NO_CONNECT : STATUS_SERVER_GONE,
                       why);
}

/* out_of_memory - a buffer could not grow; returns STATUS_LOCAL. */
static int
out_of_memory(void)
{
    report_error(0, "out of memory");
    return STATUS_LOCAL;
}

/*
 * end_session - write out what is still queued for stdout, then say why we
 * stop (why may be NULL).  Nothing is left to wait for, so a plain blocking
 * write_all() is right here.  Returns status, or STATUS_LOCAL if stdout
 * fails.
 */
static int
end_session(struct client *c, int status, const char *why)
{
    struct buffer *out = &c->to_stdout;
    size_t len = buf_len(out);

    if (len > 0) {
        if (write_all(STDOUT_FILENO, out->data + out->start, len) < 0) {
            report_error(errno, "write stdout");
            return STATUS_LOCAL;
        }
        buf_consume(out, len);
    }
    if (why != NULL)
        report_error(0, "%s", why);
    return status;
}
