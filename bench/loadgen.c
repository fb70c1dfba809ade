/*
 * loadgen.c - the benchmark's load generator: a measuring instrument.
 *
 * It is not part of the lesson, so it uses Linux's epoll: the client side
 * must never be the bottleneck of a measurement of the server.  Every byte
 * it sends is pseudo-random and every byte echoed back is checked.
 *
 *   loadgen bulk     [-s MIB] HOST PORT
 *       one connection streams MIB MiB (default 256) while reading the echo
 *       concurrently; reports echoed MiB/s
 *   loadgen pingpong [-c CONNS] [-a ACTIVE] [-m BYTES] [-d SECS] HOST PORT
 *       CONNS connections are opened first and each answers one round trip
 *       (so the server has surely accepted them all); then ACTIVE of them
 *       (default all) do send-BYTES / wait-for-the-whole-echo round trips
 *       for SECS seconds while the rest stay idle; reports round trips/s and
 *       latency p50/p99/max
 *   loadgen connrate [-P PARALLEL] [-d SECS] HOST PORT
 *       PARALLEL loops of connect, 32-byte echo, close; reports
 *       connections/s and failures
 *   loadgen hold     [-c CONNS] [-d SECS] HOST PORT
 *       opens CONNS connections, checks each with one round trip, prints
 *       its summary line, then holds them idle until stdin reaches EOF or
 *       SECS (default 600) pass, so that the server's memory can be read
 *
 * With --pid PID it also reads the CPU time of process PID and all its
 * descendants at the start and at the end of the measured phase only
 * (connecting and tearing down excluded), and reports the server's cost per
 * unit of work.  Output: one line of key=value pairs, starting "loadgen".
 * Exit status: 0 success; 1 a verification error, a connection lost or
 * refused where that is a failure, or a server that did not answer in
 * time; 2 usage.
 *
 * Where to start reading: main(), then run() - the epoll loop - and the
 * per-mode handlers it calls; the CPU accounting is at the end.
 */
#define PROGNAME "loadgen"
#define _POSIX_C_SOURCE 200809L
#define EXIT_USAGE 2            /* 1 means the measurement failed */

#include "../common.h"

#include <dirent.h>
#include <getopt.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#define PATTERN_LEN     1048573         /* a prime: a slip cannot realign */
#define MAX_CHUNK       (256 * 1024)    /* most bytes per send() or read() */
#define MAX_MSG         MAX_CHUNK       /* largest pingpong message */
#define CONNRATE_MSG    32
#define MAX_CONNECTING  64              /* connects in flight at once */
#define SETUP_LIMIT_US  (30 * 1000000)  /* connecting and the first echo */
#define DRAIN_LIMIT_US  (5 * 1000000)   /* finishing after the phase */
#define MAX_SECONDS     3600
#define MAX_CONNS       60000
#define EXIT_FAIL       1

enum mode { MODE_BULK, MODE_PINGPONG, MODE_CONNRATE, MODE_HOLD };
static const char *const mode_names[] = { "bulk", "pingpong", "connrate",
                                          "hold" };

/* Where the whole run is: each step ends when its condition holds. */
enum phase {
    PH_SETUP,           /* connecting, then one round trip on each */
    PH_MEASURE,         /* the measured work */
    PH_HOLD,            /* hold: connections idle until stdin EOF */
    PH_DRAIN,           /* let round trips under way finish, then stop */
    PH_DONE,
};

struct options {
    enum mode mode;
    const char *host, *port;
    long conns, active, msg, parallel;
    long mib;
    int64_t duration_us;
    long pid;                   /* 0: no CPU accounting */
};

/* One connection's state.  A round trip is "sent of len" out, "got of len"
 * back; the message is pattern[off, off + len). */
struct conn {
    int fd;                     /* -1: not open */
    bool connecting;            /* connect() under way */
    bool busy;                  /* a round trip (or the bulk stream) is on */
    bool warm;                  /* setup round trip done */
    bool want_out;              /* EPOLLOUT currently asked for */
    size_t off, len, sent, got;
    int64_t started_us;
};

/* CPU time of a process tree at one instant. */
struct cpu_sample {
    int64_t ns;
    long procs;
};

struct load {
    struct options opt;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int epfd;
    enum phase phase;
    struct conn *conns;
    long nconns;                /* slots in conns */
    long connecting, open, warm;
    long next_to_open;          /* setup: next slot to connect */
    unsigned char *pattern;     /* PATTERN_LEN + MAX_CHUNK bytes */
    unsigned char *rbuf;
    uint64_t seq;               /* spreads messages over the pattern */
    int64_t phase_start_us, phase_end_us, deadline_us;
    struct cpu_sample cpu_start, cpu_end;
    uint64_t ops, bytes, errors, failures;
    uint32_t *lat_us;           /* one entry per measured round trip */
    size_t nlat, cap_lat;
    bool stdin_open;
};

static void parse_options(int argc, char **argv, struct options *opt);
static void usage(FILE *fp);
static void resolve(struct load *l);
static void make_pattern(struct load *l);
static int run(struct load *l);
static int next_wait_ms(const struct load *l, int64_t now);
static void step_phase(struct load *l, int64_t now);
static void begin_measure(struct load *l);
static void end_measure(struct load *l, int64_t now);
static void open_more(struct load *l);
static void open_conn(struct load *l, struct conn *c);
static void connected(struct load *l, struct conn *c);
static void start_round_trip(struct load *l, struct conn *c, size_t len);
static void conn_writable(struct load *l, struct conn *c);
static void conn_readable(struct load *l, struct conn *c);
static void round_trip_done(struct load *l, struct conn *c);
static void conn_lost(struct load *l, struct conn *c, int err,
                      const char *what);
static void close_conn(struct load *l, struct conn *c);
static void want_output(struct load *l, struct conn *c, bool on);
static void record_latency(struct load *l, int64_t us);
static void report(struct load *l);
static int sample_cpu(long root, struct cpu_sample *out);
static int cmp_u32(const void *a, const void *b);

int
main(int argc, char **argv)
{
    struct load l = { .epfd = -1, .stdin_open = true };
    struct rlimit rl;
    int status;

    parse_options(argc, argv, &l.opt);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    /* Thousands of connections need thousands of fds: take the hard limit. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            report_error(errno, "setrlimit RLIMIT_NOFILE");
    }
    resolve(&l);
    make_pattern(&l);

    l.nconns = l.opt.mode == MODE_BULK ? 1
             : l.opt.mode == MODE_CONNRATE ? l.opt.parallel : l.opt.conns;
    l.conns = calloc((size_t)l.nconns, sizeof *l.conns);
    l.rbuf = malloc(MAX_CHUNK);
    if (l.conns == NULL || l.rbuf == NULL) {
        report_error(ENOMEM, "allocating %ld connections", l.nconns);
        return EXIT_FAIL;
    }
    for (long i = 0; i < l.nconns; i++)
        l.conns[i].fd = -1;
    if ((l.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        report_error(errno, "epoll_create1");
        return EXIT_FAIL;
    }

    status = run(&l);
    if (l.opt.mode != MODE_HOLD || l.phase_start_us == 0)
        report(&l);             /* hold reported once all were held */
    return status;
}

static void
usage(FILE *fp)
{
    fprintf(fp,
"Usage: %s MODE [options] HOST PORT\n"
"Modes: bulk, pingpong, connrate, hold (see the top of bench/loadgen.c).\n"
"  -s, --mib N        bulk: MiB to stream (default 256)\n"
"  -c, --conns N      pingpong, hold: connections (default 100)\n"
"  -a, --active N     pingpong: connections doing round trips (default all)\n"
"  -m, --msg BYTES    pingpong: message size (default 64, max %d)\n"
"  -P, --parallel N   connrate: parallel connect loops (default 8)\n"
"  -d, --seconds S    measured time (default 5; hold: 600; bulk: the\n"
"                     longest it may take, default 120)\n"
"      --pid PID      account the CPU time of PID and its descendants\n"
"  -h, --help         this help\n"
"Prints one line of key=value results.  Exit status: 0 ok, 1 a failure,\n"
"2 usage.\n", PROGNAME, MAX_MSG);
}

static void
parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        { "mib",      required_argument, NULL, 's' },
        { "conns",    required_argument, NULL, 'c' },
        { "active",   required_argument, NULL, 'a' },
        { "msg",      required_argument, NULL, 'm' },
        { "parallel", required_argument, NULL, 'P' },
        { "seconds",  required_argument, NULL, 'd' },
        { "pid",      required_argument, NULL, 'p' },
        { "help",     no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *mode;
    bool duration_set = false;
    int c;

    *opt = (struct options){ .conns = 100, .active = -1, .msg = 64,
                             .parallel = 8, .mib = 256,
                             .duration_us = 5000000 };
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 ||
                     strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        exit(0);
    }
    if (argc < 2)
        usage_error("no mode (expected bulk, pingpong, connrate or hold)");
    mode = argv[1];
    for (opt->mode = MODE_BULK; opt->mode <= MODE_HOLD; opt->mode++)
        if (strcmp(mode, mode_names[opt->mode]) == 0)
            break;
    if (opt->mode > MODE_HOLD)
        usage_error("unknown mode '%s' (expected bulk, pingpong, connrate"
                    " or hold)", mode);
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:c:a:m:P:d:h", longopts,
                            NULL)) != -1) {
        long *target = NULL, min = 1, max = MAX_CONNS;

        switch (c) {
        case 's': target = &opt->mib;      max = 1 << 20; break;
        case 'c': target = &opt->conns;                   break;
        case 'a': target = &opt->active;   min = 0;       break;
        case 'm': target = &opt->msg;      max = MAX_MSG; break;
        case 'P': target = &opt->parallel; max = 4096;    break;
        case 'p': target = &opt->pid;      max = INT_MAX; break;
        case 'd':
            if (parse_seconds(optarg, MAX_SECONDS, &opt->duration_us) < 0 ||
                opt->duration_us == 0)
                usage_error("invalid seconds '%s' (expected more than 0, at"
                            " most %d)", optarg, MAX_SECONDS);
            duration_set = true;
            continue;
        case 'h':
            usage(stdout);
            exit(0);
        case ':':
            usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            usage_error("unknown option '%s'", argv[optind - 1]);
        }
        if (parse_long(optarg, min, max, target) < 0)
            usage_error("invalid value '%s' for %s (expected %ld-%ld)",
                        optarg, argv[optind - 2], min, max);
    }
    if (argc - optind != 2)
        usage_error("expected HOST PORT after the options");
    opt->host = argv[optind];
    opt->port = argv[optind + 1];
    if (opt->active < 0 || opt->active > opt->conns)
        opt->active = opt->conns;
    if (opt->mode == MODE_HOLD && !duration_set)
        opt->duration_us = 600 * 1000000LL;
    if (opt->mode == MODE_BULK && !duration_set)
        opt->duration_us = 120 * 1000000LL;     /* a limit, not a length */
}

/* resolve - HOST PORT, numeric only: a benchmark has no business with DNS. */
static void
resolve(struct load *l)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                              .ai_socktype = SOCK_STREAM }, *res;
    int rc = getaddrinfo(l->opt.host, l->opt.port, &hints, &res);

    if (rc != 0)
        usage_error("%s %s: %s (expected a numeric address and port)",
                    l->opt.host, l->opt.port, gai_strerror(rc));
    memcpy(&l->addr, res->ai_addr, res->ai_addrlen);
    l->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

/* make_pattern - PATTERN_LEN pseudo-random bytes (xorshift64), repeated
 * for MAX_CHUNK more so that any slice starting below PATTERN_LEN is
 * contiguous.  The stream sent is pattern[i % PATTERN_LEN]. */
static void
make_pattern(struct load *l)
{
    uint64_t x = 0x9e3779b97f4a7c15u;

    if ((l->pattern = malloc(PATTERN_LEN + MAX_CHUNK)) == NULL) {
        report_error(ENOMEM, "allocating the pattern");
        exit(EXIT_FAIL);
    }
    for (size_t i = 0; i < PATTERN_LEN; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        l->pattern[i] = (unsigned char)(x >> 56);
    }
    memcpy(l->pattern + PATTERN_LEN, l->pattern, MAX_CHUNK);
}

/* ------------------------------------------------------------------ */
/* The loop                                                            */
/* ------------------------------------------------------------------ */

/*
 * run - open what the mode needs, then wait for events and dispatch them
 * until the phases have run their course.  Returns the exit status.
 */
static int
run(struct load *l)
{
    struct epoll_event events[256];

    l->deadline_us = now_us() + SETUP_LIMIT_US;
    if (l->opt.mode == MODE_CONNRATE || l->opt.mode == MODE_BULK)
        begin_measure(l);
    open_more(l);
    while (l->phase != PH_DONE) {
        int64_t now = now_us();
        int n = epoll_wait(l->epfd, events, 256, next_wait_ms(l, now));

        if (n < 0 && errno != EINTR) {
            report_error(errno, "epoll_wait");
            return EXIT_FAIL;
        }
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == UINT64_MAX) {     /* stdin */
                char junk[256];

                if (read(STDIN_FILENO, junk, sizeof junk) <= 0) {
                    l->stdin_open = false;
                    epoll_ctl(l->epfd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
                }
                continue;
            }
            struct conn *c = &l->conns[events[i].data.u64];

            if (c->fd >= 0 && c->connecting &&
                (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                connected(l, c);
            else if (c->fd >= 0 && (events[i].events & EPOLLOUT))
                conn_writable(l, c);
            if (c->fd >= 0 && !c->connecting &&
                (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                conn_readable(l, c);
        }
        /* One step may enable the next (drain with nothing under way). */
        for (enum phase was = PH_DONE; was != l->phase;) {
            was = l->phase;
            step_phase(l, now_us());
        }
    }
    if (l->errors > 0 || (l->opt.mode != MODE_CONNRATE && l->failures > 0))
        return EXIT_FAIL;
    if (l->ops == 0 && l->opt.mode != MODE_HOLD)
        return EXIT_FAIL;
    return 0;
}

/* next_wait_ms - until the nearest deadline, rounded up; -1: none. */
static int
next_wait_ms(const struct load *l, int64_t now)
{
    int64_t due = l->deadline_us;

    if (l->phase == PH_MEASURE && l->phase_start_us + l->opt.duration_us < due)
        due = l->phase_start_us + l->opt.duration_us;
    if (due <= now)
        return 0;
    return (int)((due - now + 999) / 1000);
}

/*
 * step_phase - move on when the current phase's condition holds: setup
 * ends when every connection has answered once, the measurement when its
 * time is up, the drain when nothing is under way.  A deadline passed in
 * setup or drain is a failure: the server did not answer.
 */
static void
step_phase(struct load *l, int64_t now)
{
    long busy = 0;

    switch (l->phase) {
    case PH_SETUP:
        if (l->warm == l->nconns) {
            if (l->opt.mode == MODE_HOLD) {
                l->phase = PH_HOLD;
                l->phase_start_us = now;
                l->deadline_us = now + l->opt.duration_us;
                report(l);
                fflush(stdout);
                struct epoll_event ev = { .events = EPOLLIN,
                                          .data.u64 = UINT64_MAX };
                if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0) {
                    /* not pollable (a file, /dev/null): hold for the time */
                }
            } else {
                begin_measure(l);
            }
        } else if (now >= l->deadline_us) {
            fprintf(stderr, "%s: setup: only %ld of %ld connections answered"
                    " within %d s\n", PROGNAME, l->warm, l->nconns,
                    SETUP_LIMIT_US / 1000000);
            l->failures++;
            l->phase = PH_DONE;
        }
        break;
    case PH_MEASURE:
        if (l->opt.mode == MODE_BULK && l->conns[0].warm) {
            end_measure(l, now);                /* the whole echo is back */
        } else if (now >= l->phase_start_us + l->opt.duration_us) {
            if (l->opt.mode == MODE_BULK) {
                fprintf(stderr, "%s: bulk: the echo was not complete after"
                        " %lld s\n", PROGNAME,
                        (long long)(l->opt.duration_us / 1000000));
                l->failures++;
            }
            end_measure(l, now);
        } else if (l->opt.mode == MODE_BULK && l->conns[0].fd < 0) {
            end_measure(l, now);                /* lost: already counted */
        }
        break;
    case PH_HOLD:
        if (!l->stdin_open || now >= l->deadline_us) {
            l->phase = PH_DRAIN;
            l->deadline_us = now + DRAIN_LIMIT_US;
        }
        break;
    case PH_DRAIN:
        for (long i = 0; i < l->nconns; i++)
            busy += l->conns[i].fd >= 0 &&
                    (l->conns[i].busy || l->conns[i].connecting);
        if (busy == 0 || now >= l->deadline_us) {
            if (busy > 0 && l->opt.mode != MODE_CONNRATE) {
                fprintf(stderr, "%s: %ld round trip%s unfinished %d s after"
                        " the end\n", PROGNAME, busy, busy == 1 ? "" : "s",
                        DRAIN_LIMIT_US / 1000000);
                l->failures++;
            }
            for (long i = 0; i < l->nconns; i++)
                close_conn(l, &l->conns[i]);
            l->phase = PH_DONE;
        }
        break;
    case PH_DONE:
        break;
    }
}

/* begin_measure - the server's CPU clock starts counting now; pingpong's
 * active connections start their round trips. */
static void
begin_measure(struct load *l)
{
    if (l->opt.pid > 0 && sample_cpu(l->opt.pid, &l->cpu_start) < 0)
        l->opt.pid = 0;
    l->phase = PH_MEASURE;
    l->phase_start_us = now_us();       /* after reading /proc */
    l->deadline_us = l->phase_start_us + l->opt.duration_us + SETUP_LIMIT_US;
    if (l->opt.mode == MODE_PINGPONG)
        for (long i = 0; i < l->opt.active; i++)
            start_round_trip(l, &l->conns[i], (size_t)l->opt.msg);
}

/* end_measure - stop the clocks; what is under way may finish, uncounted. */
static void
end_measure(struct load *l, int64_t now)
{
    l->phase_end_us = now;
    if (l->opt.pid > 0 && sample_cpu(l->opt.pid, &l->cpu_end) < 0)
        l->opt.pid = 0;
    l->phase = PH_DRAIN;
    l->deadline_us = now + DRAIN_LIMIT_US;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

/* open_more - keep up to MAX_CONNECTING connects in flight during setup
 * (pingpong, hold); connrate reopens each slot as it finishes. */
static void
open_more(struct load *l)
{
    if (l->opt.mode == MODE_CONNRATE) {
        for (long i = 0; i < l->nconns; i++)
            if (l->conns[i].fd < 0)
                open_conn(l, &l->conns[i]);
        return;
    }
    while (l->next_to_open < l->nconns && l->connecting < MAX_CONNECTING)
        open_conn(l, &l->conns[l->next_to_open++]);
}

/* open_conn - a non-blocking connect; the result comes as EPOLLOUT. */
static void
open_conn(struct load *l, struct conn *c)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT,
                              .data.u64 = (uint64_t)(c - l->conns) };
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
                                       SOCK_CLOEXEC, 0), one = 1;

    *c = (struct conn){ .fd = -1 };
    if (fd < 0) {
        report_error(errno, "socket");
        l->failures++;
        return;
    }
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        report_error(errno, "setsockopt TCP_NODELAY");
    if (connect(fd, (struct sockaddr *)&l->addr, l->addrlen) < 0 &&
        errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        errno = err;
        c->fd = -1;
        conn_lost(l, c, err, "connect");
        return;
    }
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        report_error(errno, "epoll_ctl ADD");
        close(fd);
        l->failures++;
        return;
    }
    c->fd = fd;
    c->connecting = true;
    c->want_out = true;
    l->connecting++;
}

/* connected - the connect finished, well or badly.  Every mode's first
 * act on a connection is one round trip. */
static void
connected(struct load *l, struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;

    c->connecting = false;
    l->connecting--;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        conn_lost(l, c, err, "connect");
        return;
    }
    l->open++;
    if (l->opt.mode == MODE_BULK) {
        c->busy = true;
        c->len = (size_t)l->opt.mib << 20;
        c->started_us = now_us();
        conn_writable(l, c);
        return;
    }
    start_round_trip(l, c, l->opt.mode == MODE_CONNRATE ? CONNRATE_MSG
                                                        : (size_t)l->opt.msg);
    if (l->phase == PH_SETUP)
        open_more(l);
}

/* start_round_trip - a new message, sent at once as far as the socket
 * takes it; EPOLLOUT only for what remains. */
static void
start_round_trip(struct load *l, struct conn *c, size_t len)
{
    if (c->fd < 0)
        return;
    c->busy = true;
    c->off = (size_t)((l->seq++ * 7919u + (uint64_t)(c - l->conns) * 104729u)
                      % PATTERN_LEN);
    c->len = len;
    c->sent = c->got = 0;
    c->started_us = now_us();
    conn_writable(l, c);
}

/* conn_writable - send more of the message (bulk: of the stream). */
static void
conn_writable(struct load *l, struct conn *c)
{
    while (c->sent < c->len) {
        size_t chunk = c->len - c->sent > MAX_CHUNK ? MAX_CHUNK
                                                    : c->len - c->sent;
        ssize_t n = send(c->fd, l->pattern + (c->off + c->sent) % PATTERN_LEN,
                         chunk, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            conn_lost(l, c, errno, "send");
            return;
        }
        c->sent += (size_t)n;
    }
    want_output(l, c, c->sent < c->len);
    if (l->opt.mode == MODE_BULK && c->sent == c->len &&
        shutdown(c->fd, SHUT_WR) < 0)
        conn_lost(l, c, errno, "shutdown");
}

/*
 * conn_readable - one read() per readiness report (epoll here is level-
 * triggered too); check every byte against what was sent.  An EOF before
 * the whole echo is a failure; after it (bulk, or our own close) it is
 * the end of the connection.
 */
static void
conn_readable(struct load *l, struct conn *c)
{
    size_t room = c->busy ? c->len - c->got : MAX_CHUNK;
    ssize_t n = read(c->fd, l->rbuf, room > MAX_CHUNK ? MAX_CHUNK : room);

    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        conn_lost(l, c, errno, "read");
        return;
    }
    if (n == 0) {
        if (c->busy || l->opt.mode != MODE_BULK)
            conn_lost(l, c, 0, "server closed the connection");
        else
            close_conn(l, c);
        return;
    }
    if (!c->busy || (size_t)n > c->len - c->got ||
        memcmp(l->rbuf, l->pattern + (c->off + c->got) % PATTERN_LEN,
               (size_t)n) != 0) {
        const unsigned char *want = l->pattern + (c->off + c->got) %
                                                 PATTERN_LEN;
        size_t at = 0;

        while (c->busy && at < (size_t)n && at < c->len - c->got &&
               l->rbuf[at] == want[at])
            at++;
        if (l->errors++ == 0)
            fprintf(stderr, "%s: connection %ld: %s at offset %zu of the"
                    " echo\n", PROGNAME, (long)(c - l->conns),
                    c->busy && at < c->len - c->got ? "wrong byte"
                                                    : "more bytes than sent",
                    c->got + at);
        close_conn(l, c);
        return;
    }
    c->got += (size_t)n;
    if (l->opt.mode == MODE_BULK && l->phase == PH_MEASURE)
        l->bytes += (uint64_t)n;
    if (c->got == c->len)
        round_trip_done(l, c);
}

/*
 * round_trip_done - count it if it finished inside the measured phase,
 * then decide what the connection does next: another round trip
 * (pingpong), close and reconnect (connrate), or rest.
 */
static void
round_trip_done(struct load *l, struct conn *c)
{
    int64_t now = now_us();

    c->busy = false;
    if (!c->warm) {
        c->warm = true;
        l->warm++;
    }
    if (l->phase == PH_MEASURE && c->started_us >= l->phase_start_us) {
        l->ops++;
        if (l->opt.mode == MODE_PINGPONG)
            record_latency(l, now - c->started_us);
    }
    if (l->opt.mode == MODE_BULK)
        return;                 /* the EOF that follows closes it */
    if (l->opt.mode == MODE_CONNRATE) {
        close_conn(l, c);
        if (l->phase == PH_MEASURE)
            open_conn(l, c);
        return;
    }
    if (l->phase == PH_MEASURE && (c - l->conns) < l->opt.active)
        start_round_trip(l, c, (size_t)l->opt.msg);
}

/* conn_lost - a connection failed.  connrate counts and retries it (a
 * refused connection there is a measured failure); elsewhere it fails the
 * run. */
static void
conn_lost(struct load *l, struct conn *c, int err, const char *what)
{
    if (l->failures++ < 5 || l->opt.mode != MODE_CONNRATE) {
        if (err != 0)
            fprintf(stderr, "%s: connection %ld: %s: %s\n", PROGNAME,
                    (long)(c - l->conns), what, strerror(err));
        else
            fprintf(stderr, "%s: connection %ld: %s\n", PROGNAME,
                    (long)(c - l->conns), what);
    }
    close_conn(l, c);
    if (l->opt.mode == MODE_CONNRATE && l->phase == PH_MEASURE)
        open_conn(l, c);
    else if (l->phase == PH_SETUP) {
        l->phase = PH_DONE;     /* the run cannot be what was asked */
    }
}

static void
close_conn(struct load *l, struct conn *c)
{
    if (c->fd < 0)
        return;
    if (c->connecting)
        l->connecting--;
    else
        l->open--;
    close(c->fd);               /* also leaves the epoll set */
    c->fd = -1;
    c->busy = c->connecting = false;
}

/* want_output - ask epoll for EPOLLOUT only while bytes wait to be sent. */
static void
want_output(struct load *l, struct conn *c, bool on)
{
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0),
                              .data.u64 = (uint64_t)(c - l->conns) };

    if (c->want_out == on)
        return;
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        conn_lost(l, c, errno, "epoll_ctl MOD");
        return;
    }
    c->want_out = on;
}

static void
record_latency(struct load *l, int64_t us)
{
    if (l->nlat == l->cap_lat) {
        size_t cap = l->cap_lat ? l->cap_lat * 2 : 65536;
        uint32_t *p = realloc(l->lat_us, cap * sizeof *p);

        if (p == NULL)
            return;             /* the count stays right; latency sampled */
        l->lat_us = p;
        l->cap_lat = cap;
    }
    l->lat_us[l->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

/* ------------------------------------------------------------------ */
/* Results                                                             */
/* ------------------------------------------------------------------ */

/* report - the one summary line.  Rates are per second of the measured
 * phase; server costs are the tree's CPU time over the same phase. */
static void
report(struct load *l)
{
    double secs = (double)(l->phase_end_us - l->phase_start_us) / 1e6;
    double cpu_s = (double)(l->cpu_end.ns - l->cpu_start.ns) / 1e9;
    bool cpu = l->opt.pid > 0 && l->phase_end_us > 0;

    printf("loadgen mode=%s", mode_names[l->opt.mode]);
    switch (l->opt.mode) {
    case MODE_BULK:
        printf(" mib=%ld secs=%.3f mib_per_s=%.1f", l->opt.mib, secs,
               secs > 0 ? (double)l->bytes / 1048576.0 / secs : 0.0);
        if (cpu)
            printf(" server_cpu_s=%.3f cpu_s_per_gib=%.3f", cpu_s,
                   l->bytes ? cpu_s / ((double)l->bytes / 1073741824.0) : 0);
        break;
    case MODE_PINGPONG:
        if (l->nlat > 0)
            qsort(l->lat_us, l->nlat, sizeof *l->lat_us, cmp_u32);
        printf(" conns=%ld active=%ld msg=%ld secs=%.3f round_trips=%llu"
               " rt_per_s=%.0f", l->opt.conns, l->opt.active, l->opt.msg,
               secs, (unsigned long long)l->ops,
               secs > 0 ? (double)l->ops / secs : 0.0);
        if (l->nlat > 0)
            printf(" p50_us=%u p99_us=%u max_us=%u", l->lat_us[l->nlat / 2],
                   l->lat_us[l->nlat * 99 / 100], l->lat_us[l->nlat - 1]);
        if (cpu)
            printf(" server_cpu_s=%.3f cpu_us_per_rt=%.2f", cpu_s,
                   l->ops ? cpu_s * 1e6 / (double)l->ops : 0.0);
        break;
    case MODE_CONNRATE:
        printf(" parallel=%ld secs=%.3f conns=%llu conn_per_s=%.0f",
               l->opt.parallel, secs, (unsigned long long)l->ops,
               secs > 0 ? (double)l->ops / secs : 0.0);
        if (cpu)
            printf(" server_cpu_s=%.3f cpu_us_per_conn=%.2f", cpu_s,
                   l->ops ? cpu_s * 1e6 / (double)l->ops : 0.0);
        break;
    case MODE_HOLD:
        printf(" conns=%ld held=%ld", l->opt.conns, l->open);
        break;
    }
    if (cpu)
        printf(" server_procs=%ld", l->cpu_end.procs);
    printf(" failures=%llu errors=%llu\n", (unsigned long long)l->failures,
           (unsigned long long)l->errors);
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ */
/* CPU accounting                                                      */
/* ------------------------------------------------------------------ */

/*
 * sample_cpu - the CPU time used so far by process `root` and all its
 * descendants.  Each live process is read through its own CPU clock
 * (clock_getcpuclockid: nanoseconds, every thread), because /proc's tick
 * counters round a short-lived child's few milliseconds down to zero.
 * Children that have already exited and been reaped are in their parent's
 * cutime + cstime: a sum kept in nanoseconds and shown in ticks, so off by
 * at most one tick in all.  Returns 0, or -1 if root is gone.
 */
static int
sample_cpu(long root, struct cpu_sample *out)
{
    long cap = 0, n = 0, tick = sysconf(_SC_CLK_TCK);
    struct proc { long pid, ppid; long long children_ticks; bool in; } *ps
        = NULL;
    DIR *dir = opendir("/proc");
    struct dirent *de;
    bool grew = true;

    *out = (struct cpu_sample){ 0, 0 };
    if (dir == NULL) {
        report_error(errno, "opendir /proc");
        return -1;
    }
    while ((de = readdir(dir)) != NULL) {
        char path[64], line[1024], *p;
        long pid, ppid;
        long long cutime, cstime;
        FILE *fp;

        if (parse_long(de->d_name, 1, INT_MAX, &pid) < 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        if ((fp = fopen(path, "r")) == NULL)
            continue;           /* exited meanwhile */
        p = fgets(line, sizeof line, fp);
        fclose(fp);
        /* After the command's closing parenthesis: state ppid ... field 16
         * cutime, 17 cstime (proc(5)). */
        if (p == NULL || (p = strrchr(line, ')')) == NULL ||
            sscanf(p + 1, " %*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u"
                   " %*u %lld %lld", &ppid, &cutime, &cstime) != 3)
            continue;
        if (n == cap) {
            struct proc *q = realloc(ps, (size_t)(cap = cap ? cap * 2 : 512)
                                         * sizeof *ps);
            if (q == NULL)
                break;
            ps = q;
        }
        ps[n++] = (struct proc){ pid, ppid, cutime + cstime, pid == root };
    }
    closedir(dir);

    while (grew) {              /* mark descendants, one generation a pass */
        grew = false;
        for (long i = 0; i < n; i++)
            for (long j = 0; !ps[i].in && j < n; j++)
                if (ps[j].in && ps[j].pid == ps[i].ppid)
                    ps[i].in = grew = true;
    }
    for (long i = 0; i < n; i++) {
        clockid_t cid;
        struct timespec ts;

        if (!ps[i].in)
            continue;
        out->procs++;
        out->ns += ps[i].children_ticks * 1000000000LL / tick;
        if (clock_getcpuclockid((pid_t)ps[i].pid, &cid) == 0 &&
            clock_gettime(cid, &ts) == 0)
            out->ns += (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
    free(ps);
    if (out->procs == 0) {
        fprintf(stderr, "%s: process %ld is not running\n", PROGNAME, root);
        return -1;
    }
    return 0;
}
