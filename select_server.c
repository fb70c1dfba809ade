/*
 * select_server.c - a TCP (and UDP) echo and chat server built on select().
 *
 * One process, one thread, one select() loop.  The loop watches:
 *   - the self-pipe that the SIGINT/SIGTERM handler writes to,
 *   - the listening TCP socket (a readable listener means accept() is ready),
 *   - every client socket for reading, and for writing only while output is
 *     pending for it,
 *   - a UDP socket bound to the same port,
 *   - stdin, where the operator types console commands (try "help").
 *
 * Run:    ./select_server                      echo server on port 9877
 *         ./select_server -p 0 -m chat -v      chat, kernel-chosen port, trace
 *         ./select_server --help               every option
 *
 * Start reading at main(), then serve(): the select() loop itself, which fits
 * on one screen.  The functions after it are the handlers it calls, in the
 * order it calls them.  Helpers shared with select_client live in common.h.
 */
#define PROGNAME "select_server"
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE     /* Linux's struct tcp_info, for "conns" */

#include "common.h"

#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/uio.h>

/* Defaults and limits; the usage text prints these same constants. */
#define DEFAULT_PORT       9877
#define DEFAULT_BACKLOG    16
#define DEFAULT_READ_SIZE  (512 * 1024)     /* fewer calls per MiB */
#define MAX_READ_SIZE      (1024 * 1024)
#define MAX_LINE           4096             /* chat: longest line relayed */
#define STR(x)             XSTR(x)          /* STR(MAX_LINE) is "4096" */
#define XSTR(x)            #x
#define CONSOLE_MAX_LINE   1024             /* console: longest command */
#define ECHO_HIGH_WATER    (256 * 1024)     /* echo: stop reading above... */
#define ECHO_LOW_WATER     (64 * 1024)      /* ...and resume below this */
#define CHAT_MAX_PENDING   (1024 * 1024)    /* chat: drop a slower reader */
#define CHAT_READ_SIZE     (4 * MAX_LINE)   /* chat: most read per pass */
#define SHUTDOWN_GRACE_US  1000000          /* flush time on shutdown */
#define ACCEPT_BACKOFF_US  100000           /* pause after accept() fails */
#define MAX_IDLE_SECONDS   31536000         /* a year */

/* Exit statuses (documented in --help and the README). */
#define EXIT_OK      0      /* clean shutdown */
#define EXIT_STARTUP 2      /* socket, bind or listen failed */
#define EXIT_RUNTIME 3      /* select() itself failed: a bug */

enum mode { MODE_ECHO, MODE_CHAT };

struct options {
    unsigned short port;
    const char *bind_addr;      /* NULL: every interface */
    enum mode mode;
    int64_t idle_timeout_us;    /* 0: never time out */
    long max_clients;           /* 0: as many as fit below FD_SETSIZE */
    long backlog;
    long read_size;             /* bytes per read() or recvmsg() */
    bool reuseaddr, udp, trace, quiet;
};

/* One connected client.  The table is indexed by fd; fd -1 marks a free slot. */
struct client {
    int fd;
    char peer[ADDR_STRLEN];     /* "127.0.0.1:43210", for every log line */
    int64_t connected_us;
    int64_t last_input_us;      /* the idle timeout counts from here */
    uint64_t bytes_in, bytes_out;
    struct buffer in;           /* chat: the start of a line not yet ended */
    struct buffer out;          /* bytes the socket has not yet taken */
    bool throttled;             /* echo: not read until `out` drains */
    bool peer_eof;              /* peer sent FIN: flush `out`, then close */
    bool discarding;            /* chat: skipping the rest of a long line */
    bool flush_queued;          /* chat: `out` gained lines this pass */
    const char *close_reason;   /* non-NULL: close at the end of this pass */
};

struct server {
    struct options opt;
    int listen_fd, udp_fd;      /* -1 once closed for shutdown */
    int spare_fd;               /* held in reserve for EMFILE, or -1 */
    int sig_read_fd;            /* self-pipe: the handler writes the other end */
    bool console_open;          /* stdin still watched */
    bool accepting;             /* false after the "pause" command */
    bool trace;
    bool shutting_down;
    bool closes_pending;        /* some client has a close_reason */
    bool flush_pending;         /* chat: some client has flush_queued */
    int64_t shutdown_deadline_us;
    int64_t accept_retry_us;    /* listener unwatched until then (backoff) */
    struct client *clients;     /* FD_SETSIZE slots, indexed by fd */
    int max_client_fd;          /* highest fd in use by a client, or -1 */
    long max_clients;           /* effective limit */
    long nclients, peak_clients;
    uint64_t total_clients, bytes_in, bytes_out, select_calls;
    uint64_t udp_datagrams, udp_truncated;
    int64_t started_us;
    char console_line[CONSOLE_MAX_LINE + 1];    /* a command being typed */
    size_t console_len;
    bool console_overflow;      /* the line is too long: refuse it whole */
    char *readbuf;              /* opt.read_size bytes, for every read */
    char *linebuf;              /* one formatted chat line */
};

/* The signal handler's only link to the loop: the self-pipe's write end. */
static int signal_pipe_wfd = -1;

/* Table of contents: in the order the program runs. */
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
static int serve(struct server *s);
static int64_t next_timeout(const struct server *s, int64_t now);
static int build_fd_sets(struct server *s, fd_set *rset, fd_set *wset,
                         int64_t now);
static bool wants_input(const struct server *s, const struct client *c);
static void handle_signals(struct server *s);
static void begin_shutdown(struct server *s, const char *why);
static bool shutdown_complete(const struct server *s, int64_t now);
static void accept_clients(struct server *s);
static void accept_at_fd_limit(struct server *s);
static void add_client(struct server *s, int fd, const char *peer);
static void refuse_client(struct server *s, int fd, const char *peer);
static void handle_writable(struct server *s, struct client *c);
static void handle_readable(struct server *s, struct client *c);
static void queue_output(struct server *s, struct client *c, const void *data,
                         size_t len);
static void flush_queued_output(struct server *s);
static void chat_input(struct server *s, struct client *c, const char *data,
                       size_t len);
static void chat_line(struct server *s, struct client *from, const char *line,
                      size_t len);
static void broadcast(struct server *s, const struct client *except,
                      const char *text, size_t len);
static size_t escape_text(const char *in, size_t len, char *out);
static size_t utf8_sequence(const unsigned char *p, size_t len);
static void handle_datagram(struct server *s);
static void handle_console(struct server *s);
static void end_console_line(struct server *s);
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
static void expire_idle_clients(struct server *s, int64_t now);
static void mark_closing(struct server *s, struct client *c,
                         const char *reason);
static void close_marked_clients(struct server *s);
static void close_client(struct server *s, struct client *c);
static void close_all_clients(struct server *s, const char *reason);
static void log_event(const struct server *s, const char *fmt, ...)
    PRINTF_LIKE(2, 3);
static const char *plural(long n);

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
    setvbuf(stdout, NULL, _IOLBF, 0);   /* one line at a time, even in a pipe */

    setup_signals(&s);
    open_listeners(&s);
    setup_limits(&s);

    /* The first line is a contract: scripts read the port from it. */
    printf("listening on %s (%s)\n",
           format_socket_address(s.listen_fd, getsockname, local,
                                 sizeof local),
           s.udp_fd >= 0 ? "tcp, udp" : "tcp");
    fflush(stdout);

    status = serve(&s);

    close_all_clients(&s, "shutdown");
    log_event(&s, "bye");
    free(s.clients);
    free(s.readbuf);
    free(s.linebuf);
    return status;
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static void
usage(FILE *fp)
{
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
"  -t, --idle-timeout SECS  close clients silent this long; 0 never"
" (default 0)\n"
"  -n, --max-clients N      most clients at once (default: as many as fit"
" below FD_SETSIZE=%d)\n"
"  -B, --backlog N          listen() backlog (default %d, or $LISTENQ)\n"
"  -r, --read-size N        bytes per read() or recvmsg() (default %d,"
" max %d)\n"
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
            DEFAULT_READ_SIZE, MAX_READ_SIZE, EXIT_OK, EXIT_USAGE,
            EXIT_STARTUP, EXIT_RUNTIME);
}

static void
parse_options(int argc, char **argv, struct options *opt)
{
    enum { OPT_NO_REUSEADDR = 256, OPT_NO_UDP };
    static const struct option longopts[] = {
        { "port",         required_argument, NULL, 'p' },
        { "bind",         required_argument, NULL, 'b' },
        { "mode",         required_argument, NULL, 'm' },
        { "idle-timeout", required_argument, NULL, 't' },
        { "max-clients",  required_argument, NULL, 'n' },
        { "backlog",      required_argument, NULL, 'B' },
        { "read-size",    required_argument, NULL, 'r' },
        { "no-reuseaddr", no_argument,       NULL, OPT_NO_REUSEADDR },
        { "no-udp",       no_argument,       NULL, OPT_NO_UDP },
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
/* Setup                                                               */
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

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;    /* a vanished client is EPIPE, not death */
    if (sigaction(SIGPIPE, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGPIPE");
        exit(EXIT_STARTUP);
    }
    /* SA_RESETHAND: a second signal finds the default action and ends the
     * process at once, even if the graceful path were somehow stuck. */
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGINT/SIGTERM");
        exit(EXIT_STARTUP);
    }
}

/* on_signal - async-signal-safe: one write(), errno preserved. */
static void
on_signal(int signo)
{
    int saved_errno = errno;
    unsigned char byte = (unsigned char)signo;

    if (write(signal_pipe_wfd, &byte, 1) < 0) {
        /* EAGAIN: the pipe is full, so a wake-up is already pending */
    }
    errno = saved_errno;
}

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
        if (!s->opt.udp)
            return;

        /* UDP on the very address and port the listener got. */
        sslen = sizeof ss;
        if (getsockname(s->listen_fd, (struct sockaddr *)&ss, &sslen) < 0) {
            report_error(errno, "getsockname");
            exit(EXIT_STARTUP);
        }
        s->udp_fd = open_socket(s, (struct sockaddr *)&ss, sslen, SOCK_DGRAM,
                                &failed_call);
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
    int fd, on = 1, off = 0, saved;

    *failed_call = "socket";
    if ((fd = socket(sa->sa_family, type, 0)) < 0)
        return -1;
    *failed_call = "setsockopt";
    /* SO_REUSEADDR lets a restarted server bind while old connections of the
     * previous one still sit in TIME_WAIT. */
    if (type == SOCK_STREAM && s->opt.reuseaddr &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0)
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
    /* Non-blocking, so accept() after a client gave up in the backlog
     * returns EAGAIN instead of freezing the whole loop. */
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
    s->accepting = true;
    s->trace = s->opt.trace;
    s->started_us = now_us();
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
            trace_select_before(stdout, nfds, &rset, &wset, timeout_us);

        before = now_us();
        nready = select(nfds, &rset, &wset, NULL, timeout_us < 0 ? NULL : &tv);
        s->select_calls++;
        if (nready < 0) {
            if (errno == EINTR)
                continue;       /* a signal: its byte is in the self-pipe */
            report_error(errno, "select");
            return EXIT_RUNTIME;
        }
        if (s->trace)
            trace_select_after(stdout, nready, nfds, &rset, &wset,
                               now_us() - before);

        /* A signal first: shutting down changes what everything else does. */
        if (FD_ISSET(s->sig_read_fd, &rset))
            handle_signals(s);
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
        expire_idle_clients(s, now_us());
        flush_queued_output(s);
        close_marked_clients(s);
    }
}

/*
 * next_timeout - microseconds until the nearest deadline (an idle client,
 * the end of the shutdown grace period, the end of an accept() backoff), or
 * -1 when nothing is due: select() then sleeps until a descriptor is ready.
 * Never a periodic wake-up "just in case".
 */
static int64_t
next_timeout(const struct server *s, int64_t now)
{
    int64_t nearest = INT64_MAX;

    if (s->opt.idle_timeout_us > 0 && !s->shutting_down)
        for (int fd = 0; fd <= s->max_client_fd; fd++)
            if (s->clients[fd].fd >= 0) {
                int64_t due = s->clients[fd].last_input_us +
                              s->opt.idle_timeout_us;
                if (due < nearest)
                    nearest = due;
            }
    if (s->shutting_down && s->shutdown_deadline_us < nearest)
        nearest = s->shutdown_deadline_us;
    if (s->accept_retry_us > now && s->accept_retry_us < nearest)
        nearest = s->accept_retry_us;

    if (nearest == INT64_MAX)
        return -1;
    return nearest > now ? nearest - now : 0;
}

/*
 * build_fd_sets - interest follows state: read a client only while it may
 * send (see wants_input), ask for writability only while output is
 * pending.  Returns nfds, the highest descriptor plus one.
 */
static int
build_fd_sets(struct server *s, fd_set *rset, fd_set *wset, int64_t now)
{
    int maxfd = s->sig_read_fd;

    FD_ZERO(rset);
    FD_ZERO(wset);
    FD_SET(s->sig_read_fd, rset);
    if (s->console_open && !s->shutting_down)
        FD_SET(STDIN_FILENO, rset);
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
 * mode, after its EOF, or while the server shuts down. */
static bool
wants_input(const struct server *s, const struct client *c)
{
    return !s->shutting_down && !c->peer_eof && !c->throttled;
}

/* ------------------------------------------------------------------ */
/* Signals and shutdown                                                */
/* ------------------------------------------------------------------ */

/* handle_signals - drain the self-pipe; each byte is one signal number. */
static void
handle_signals(struct server *s)
{
    unsigned char sigs[64];
    ssize_t n;

    while ((n = read(s->sig_read_fd, sigs, sizeof sigs)) > 0)
        for (ssize_t i = 0; i < n; i++) {
            const char *name = sigs[i] == SIGINT ? "SIGINT" : "SIGTERM";

            if (!s->shutting_down) {
                begin_shutdown(s, name);
                continue;
            }
            /* A second signal raced the handler reset: stop right now. */
            log_event(s, "%s again: exiting at once", name);
            close_all_clients(s, "shutdown");
            exit(EXIT_OK);
        }
}

/*
 * begin_shutdown - stop accepting and reading, give pending output up to
 * SHUTDOWN_GRACE_US to drain; serve() returns once it has.  From here on a
 * second SIGINT or SIGTERM has its default effect: immediate termination.
 */
static void
begin_shutdown(struct server *s, const char *why)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
        report_error(errno, "sigaction");
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

/* shutdown_complete - true once no client has output pending, or once the
 * grace period is over: a client that never reads cannot hold us up. */
static bool
shutdown_complete(const struct server *s, int64_t now)
{
    if (now >= s->shutdown_deadline_us)
        return true;
    for (int fd = 0; fd <= s->max_client_fd; fd++)
        if (s->clients[fd].fd >= 0 && buf_len(&s->clients[fd].out) > 0)
            return false;
    return true;
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
            report_error(err, "accept");
            s->accept_retry_us = now_us() + ACCEPT_BACKOFF_US;
            return;
        }
        format_sockaddr((struct sockaddr *)&ss, sslen, peer, sizeof peer);
        if (fd >= FD_SETSIZE || s->nclients >= s->max_clients) {
            refuse_client(s, fd, peer);
            continue;
        }
        if (set_nonblocking(fd) < 0) {
            report_error(errno, "fcntl O_NONBLOCK fd %d (%s)", fd, peer);
            close(fd);
            continue;
        }
        /* No Nagle: each send() already carries everything we have.  With
         * Nagle on, the tail of an echo that spans two reads would wait for
         * the client's delayed ACK, 40 ms and more. */
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
            report_error(errno, "setsockopt TCP_NODELAY fd %d (%s)", fd,
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
    report_error(EMFILE, "accept");
    s->accept_retry_us = now_us() + ACCEPT_BACKOFF_US;
}

static void
add_client(struct server *s, int fd, const char *peer)
{
    struct client *c = &s->clients[fd];
    char notice[ADDR_STRLEN + 64];
    int len;

    *c = (struct client){ .fd = fd };
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    c->connected_us = c->last_input_us = now_us();
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
    size_t before = buf_len(&c->out);

    if (buf_flush(c->fd, &c->out) < 0) {
        mark_closing(s, c, (errno == EPIPE || errno == ECONNRESET) ? "reset"
                                                                   : "error");
        return;
    }
    c->bytes_out += before - buf_len(&c->out);
    s->bytes_out += before - buf_len(&c->out);
    if (c->throttled && buf_len(&c->out) <= ECHO_LOW_WATER)
        c->throttled = false;
    if (c->peer_eof && buf_len(&c->out) == 0)
        mark_closing(s, c, "eof");
}

/*
 * handle_readable - one read() per readiness report.  select() is level-
 * triggered: anything left in the kernel buffer is reported again next pass.
 * In chat every byte read is queued for every other client, so a read is
 * held to CHAT_READ_SIZE: that bounds what one sender can make a pass cost
 * everyone, in time and in memory.
 */
static void
handle_readable(struct server *s, struct client *c)
{
    size_t want = (size_t)s->opt.read_size;
    ssize_t n;

    if (s->opt.mode == MODE_CHAT && want > CHAT_READ_SIZE)
        want = CHAT_READ_SIZE;
    n = read(c->fd, s->readbuf, want);

    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        mark_closing(s, c, errno == ECONNRESET ? "reset" : "error");
        if (errno != ECONNRESET)
            report_error(errno, "read fd %d (%s)", c->fd, c->peer);
        return;
    }
    if (n == 0) {               /* FIN: flush what we owe it, then close */
        c->peer_eof = true;
        if (s->opt.mode == MODE_CHAT && buf_len(&c->in) > 0 && !c->discarding)
            chat_line(s, c, c->in.data + c->in.start, buf_len(&c->in));
        buf_free(&c->in);
        if (buf_len(&c->out) == 0)
            mark_closing(s, c, "eof");
        return;
    }
    if (s->trace)
        printf("fd %d: read %zd byte%s\n", c->fd, n, plural(n));
    c->last_input_us = now_us();
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
static void
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
        report_error(ENOMEM, "buffering output for fd %d", c->fd);
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
/* Chat                                                                */
/* ------------------------------------------------------------------ */

/*
 * chat_input - split what arrived into lines.  A line may arrive in pieces
 * (TCP is a byte stream), so its start waits in c->in.  A line longer than
 * MAX_LINE is refused with a notice, and the rest of it is skipped.
 */
static void
chat_input(struct server *s, struct client *c, const char *data, size_t len)
{
    static const char too_long[] =
        "*** line too long (over " STR(MAX_LINE) " bytes): not sent\n";

    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t seg = nl ? (size_t)(nl - data) : len;
        size_t used = nl ? seg + 1 : seg;

        if (c->discarding) {
            c->discarding = nl == NULL;
        } else if (buf_len(&c->in) + seg > MAX_LINE) {
            queue_output(s, c, too_long, sizeof too_long - 1);
            buf_free(&c->in);
            c->discarding = nl == NULL;
        } else if (nl == NULL) {
            if (buf_append(&c->in, data, seg) < 0)
                mark_closing(s, c, "out of memory");
        } else if (buf_len(&c->in) == 0) {
            chat_line(s, c, data, seg);
        } else if (buf_append(&c->in, data, seg) == 0) {
            chat_line(s, c, c->in.data + c->in.start, buf_len(&c->in));
            buf_free(&c->in);
        } else {
            mark_closing(s, c, "out of memory");
        }
        data += used;
        len -= used;
    }
}

/* chat_line - "[fd 5 127.0.0.1:43210] text" to the console and to every
 * other client.  A trailing CR (from telnet or nc -C) is dropped. */
static void
chat_line(struct server *s, struct client *from, const char *line, size_t len)
{
    int n;

    if (len > 0 && line[len - 1] == '\r')
        len--;
    n = sprintf(s->linebuf, "[fd %d %s] ", from->fd, from->peer);
    n += (int)escape_text(line, len, s->linebuf + n);
    s->linebuf[n++] = '\n';
    if (!s->opt.quiet)
        fwrite(s->linebuf, 1, (size_t)n, stdout);
    broadcast(s, from, s->linebuf, (size_t)n);
}

/* broadcast - queue text for every client except one (NULL: everyone). */
static void
broadcast(struct server *s, const struct client *except, const char *text,
          size_t len)
{
    for (int fd = 0; fd <= s->max_client_fd; fd++) {
        struct client *c = &s->clients[fd];

        if (c->fd >= 0 && c != except)
            queue_output(s, c, text, len);
    }
}

/*
 * escape_text - copy text so that it cannot drive a terminal: C0 controls
 * except tab, DEL, C1 controls and bytes that are not valid UTF-8 become
 * "\x1b"-style escapes; valid UTF-8 text passes through unchanged.  `out`
 * needs room for 4 * len bytes.  Returns the length written.
 */
static size_t
escape_text(const char *in, size_t len, char *out)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;

    for (size_t i = 0; i < len;) {
        size_t k = p[i] < 0x80 ? 1 : utf8_sequence(p + i, len - i);
        bool control = (p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f ||
                       (p[i] == 0xc2 && k == 2 && p[i + 1] < 0xa0);

        if (k == 0 || control) {
            for (size_t j = 0; j < (k ? k : 1); j++) {
                out[o++] = '\\';
                out[o++] = 'x';
                out[o++] = hex[p[i + j] >> 4];
                out[o++] = hex[p[i + j] & 0xf];
            }
            i += k ? k : 1;
        } else {
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        }
    }
    return o;
}

/*
 * utf8_sequence - length (2-4) of the well-formed UTF-8 sequence at p, or 0
 * if it is not one: bad lead or continuation byte, truncated, overlong,
 * a surrogate, or beyond U+10FFFF.
 */
static size_t
utf8_sequence(const unsigned char *p, size_t len)
{
    size_t k = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;

    if (k == 0 || p[0] > 0xf4 || len < k)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
        return 0;
    return k;
}

/* ------------------------------------------------------------------ */
/* UDP                                                                 */
/* ------------------------------------------------------------------ */

/*
 * handle_datagram - echo one datagram to its sender.  UDP keeps message
 * boundaries: one recvmsg() is one datagram, and what does not fit in the
 * buffer is lost (MSG_TRUNC says so), never delivered by the next call.
 */
static void
handle_datagram(struct server *s)
{
    struct sockaddr_storage ss;
    struct iovec iov = { .iov_base = s->readbuf,
                         .iov_len = (size_t)s->opt.read_size };
    struct msghdr msg = { .msg_name = &ss, .msg_namelen = sizeof ss,
                          .msg_iov = &iov, .msg_iovlen = 1 };
    char peer[ADDR_STRLEN];
    ssize_t n = recvmsg(s->udp_fd, &msg, 0);

    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            report_error(errno, "recvmsg udp");
        return;
    }
    format_sockaddr((struct sockaddr *)&ss, msg.msg_namelen, peer,
                    sizeof peer);
    s->udp_datagrams++;
    s->bytes_in += (uint64_t)n;
    if (msg.msg_flags & MSG_TRUNC) {
        s->udp_truncated++;
        log_event(s, "udp %s: datagram truncated to %zd byte%s"
                  " (--read-size %ld)", peer, n, plural(n), s->opt.read_size);
    } else if (s->trace) {
        printf("udp %s: %zd byte%s\n", peer, n, plural(n));
    }
    if (sendto(s->udp_fd, s->readbuf, (size_t)n, 0, (struct sockaddr *)&ss,
               msg.msg_namelen) < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            report_error(errno, "sendto udp %s", peer);
        return;                 /* UDP may lose a datagram; so do we */
    }
    s->bytes_out += (uint64_t)n;
}

/* ------------------------------------------------------------------ */
/* Console                                                             */
/* ------------------------------------------------------------------ */

/*
 * handle_console - read what the operator typed and run each complete line.
 * stdin is read raw: stdio's buffering would take bytes select() then no
 * longer sees.  It is never made non-blocking (it is shared with the
 * shell); select() said it is readable, so one read() cannot block.  At
 * EOF, stop watching stdin and keep serving: `select_server </dev/null &`.
 */
static void
handle_console(struct server *s)
{
    char chunk[512];
    ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (n < 0)
            report_error(errno, "read stdin");
        s->console_open = false;
        if (s->console_len > 0 || s->console_overflow)
            end_console_line(s);        /* a last line without a newline */
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (chunk[i] == '\n')
            end_console_line(s);
        else if (s->console_len < CONSOLE_MAX_LINE)
            s->console_line[s->console_len++] = chunk[i];
        else
            s->console_overflow = true;
    }
}

/* end_console_line - run the line collected so far, or refuse it whole if
 * it was too long, and start a new one. */
static void
end_console_line(struct server *s)
{
    if (s->console_overflow)
        report_error(0, "console: line too long (over %d bytes): ignored",
                     CONSOLE_MAX_LINE);
    else
        run_command(s, s->console_line, s->console_len);
    s->console_len = 0;
    s->console_overflow = false;
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
 * run_command - split a console line into a command word and its argument
 * and run it.  Anything unexpected - an unknown word, a missing or extra
 * argument, NUL bytes or other junk - gets one line on stderr.
 */
static void
run_command(struct server *s, char *line, size_t len)
{
    char shown[4 * 64 + 1], *word, *arg, *end;

    line[len] = '\0';
    if (memchr(line, '\0', len) != NULL) {      /* a C string would stop */
        shown[escape_text(line, len > 64 ? 64 : len, shown)] = '\0';
        report_error(0, "unknown command '%s' (type 'help' for the list)",
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
            report_error(0, "%s: missing %s (usage: %s %s)", c->name,
                         c->args, c->name, c->args);
        else if (*c->args == '\0' && *arg != '\0')
            report_error(0, "%s: takes no argument (usage: %s)", c->name,
                         c->name);
        else
            c->run(s, arg);
        return;
    }
    shown[escape_text(word, strlen(word) > 64 ? 64 : strlen(word),
                      shown)] = '\0';
    report_error(0, "unknown command '%s' (type 'help' for the list)", shown);
}

static void
cmd_help(struct server *s, char *arg)
{
    (void)s, (void)arg;
    for (size_t i = 0; i < NCOMMANDS; i++)
        printf("  %-6s %-7s %s\n", commands[i].name, commands[i].args,
               commands[i].help);
}

static void
cmd_list(struct server *s, char *arg)
{
    int64_t now = now_us();
    char connected[32], idle[32];

    (void)arg;
    printf("%-4s %-32s %10s %10s %10s %10s %8s %s\n", "fd", "peer",
           "connected", "idle", "bytes-in", "bytes-out", "pending", "state");
    for (int fd = 0; fd <= s->max_client_fd; fd++) {
        const struct client *c = &s->clients[fd];

        if (c->fd < 0)
            continue;
        printf("%-4d %-32s %10s %10s %10llu %10llu %8zu %s\n", c->fd,
               c->peer,
               format_seconds(now - c->connected_us, connected,
                              sizeof connected),
               format_seconds(now - c->last_input_us, idle, sizeof idle),
               (unsigned long long)c->bytes_in,
               (unsigned long long)c->bytes_out, buf_len(&c->out),
               c->peer_eof ? "half-closed"
                           : c->throttled ? "throttled" : "open");
    }
    printf("(%ld client%s)\n", s->nclients, plural(s->nclients));
}

static void
cmd_stats(struct server *s, char *arg)
{
    char up[32];

    (void)arg;
    printf("clients: %ld now, %ld peak, %llu total; bytes: %llu in, %llu out;"
           " udp datagrams: %llu (%llu truncated); select() calls: %llu;"
           " up %s\n", s->nclients, s->peak_clients,
           (unsigned long long)s->total_clients,
           (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
           (unsigned long long)s->udp_datagrams,
           (unsigned long long)s->udp_truncated,
           (unsigned long long)s->select_calls,
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
    printf("%-4s %-32s %-11s %9s %9s %7s %7s %5s %8s %8s\n", "fd", "peer",
           "state", "rtt-ms", "rttvar-ms", "retrans", "unacked", "cwnd",
           "send-q", "recv-q");
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
            report_error(errno, "conns: fd %d", fd);
            continue;
        }
        printf("%-4d %-32s %-11s %9.3f %9.3f %7u %7u %5u %8d %8d\n", fd,
               c->peer, ti.tcpi_state < sizeof states / sizeof states[0]
                        ? states[ti.tcpi_state] : "?",
               ti.tcpi_rtt / 1000.0, ti.tcpi_rttvar / 1000.0,
               ti.tcpi_total_retrans, ti.tcpi_unacked, ti.tcpi_snd_cwnd,
               sendq, recvq);
    }
    printf("(%ld client%s)\n", s->nclients, plural(s->nclients));
#else
    (void)s, (void)arg;
    report_error(0, "conns: TCP_INFO is not available on this system");
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
        report_error(0, "kick: no client on fd '%s' (see 'list')", arg);
        return;
    }
    queue_output(s, &s->clients[fd], msg, sizeof msg - 1);
    mark_closing(s, &s->clients[fd], "kicked");
    printf("kicking fd %ld %s\n", fd, s->clients[fd].peer);
}

static void
cmd_say(struct server *s, char *arg)
{
    size_t len = strlen(arg) > MAX_LINE ? MAX_LINE : strlen(arg);
    int n = sprintf(s->linebuf, "*** server: ");

    n += (int)escape_text(arg, len, s->linebuf + n);
    s->linebuf[n++] = '\n';
    broadcast(s, NULL, s->linebuf, (size_t)n);
    printf("said to %ld client%s\n", s->nclients, plural(s->nclients));
}

static void
cmd_pause(struct server *s, char *arg)
{
    (void)arg;
    s->accepting = false;
    printf("paused: accept() is not called; new connections wait in the"
           " backlog (see: netstat -nat)\n");
}

static void
cmd_resume(struct server *s, char *arg)
{
    (void)arg;
    s->accepting = true;
    printf("resumed: accepting connections\n");
}

static void
cmd_trace(struct server *s, char *arg)
{
    if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0) {
        report_error(0, "trace: expected 'on' or 'off' (usage: trace on|off)");
        return;
    }
    s->trace = strcmp(arg, "on") == 0;
    printf("trace %s\n", arg);
}

static void
cmd_quit(struct server *s, char *arg)
{
    (void)arg;
    begin_shutdown(s, "quit");
}

/* ------------------------------------------------------------------ */
/* Deadlines and closing                                               */
/* ------------------------------------------------------------------ */

/* expire_idle_clients - tell each client silent past its deadline why, and
 * mark it for closing. */
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
            now < c->last_input_us + s->opt.idle_timeout_us)
            continue;
        len = snprintf(msg, sizeof msg, "*** idle timeout: nothing received"
                       " for %s, closing\n",
                       format_seconds(s->opt.idle_timeout_us, secs,
                                      sizeof secs));
        queue_output(s, c, msg, (size_t)len);
        mark_closing(s, c, "idle timeout");
    }
}

/* mark_closing - close c at the end of this pass, for this reason. */
static void
mark_closing(struct server *s, struct client *c, const char *reason)
{
    c->close_reason = reason;
    s->closes_pending = true;
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
        report_error(errno, "close fd %d", fd);
    buf_free(&c->in);
    buf_free(&c->out);
    c->fd = -1;
    c->close_reason = NULL;
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

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

/* log_event - one line on stdout for accepts, closes and the like. */
static void
log_event(const struct server *s, const char *fmt, ...)
{
    va_list ap;

    if (s->opt.quiet)
        return;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static const char *
plural(long n)
{
    return n == 1 ? "" : "s";
}
