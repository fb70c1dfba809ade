/*
 * stress.c - a seeded, reproducible stress run against one select_server.
 *
 * It starts the server itself (fork and exec of --server with -p 0 -q, the
 * mode and --max-clients; stdin, stdout and stderr on pipes it holds), and
 * for --seconds mixes, all at once:
 *   - well-behaved clients, connected first and kept to the end.  Echo: each
 *     does round trips of 1 B to 64 KiB of random bytes and checks that
 *     exactly its own bytes come back.  Chat: each sends tagged lines, and
 *     one observer client checks that every line arrives once, in order,
 *     intact.  Every round trip (or line) is timed;
 *   - misbehaving clients, at most MISBEHAVING_MAX at a time: they never
 *     read, send half a line and go silent, flood, reset (SO_LINGER {1,0}),
 *     half-close and check the echo to EOF, or send binary junk;
 *   - junk on the server's console, unknown commands, wrong arguments, and
 *     harmless valid commands (never quit, never kick of a real client);
 *   - bursts of connections beyond --max-clients: those beyond must get
 *     "server full" and EOF.
 * Then it checks that the server is alive and a fresh client gets its round
 * trip, that no well-behaved round trip took over a second, that the
 * server's descriptors return to their count at start-up, that its VmRSS
 * stayed under the bound, and that its stderr holds only the lines the
 * console junk asked for; ends it with SIGTERM (exit status 0 expected) and
 * prints one summary line of key=value pairs.
 *
 * It is a measuring instrument, not part of the lesson: it uses Linux's
 * epoll, /proc and prctl freely.
 *
 * Build:  cc -std=c11 -O2 -g -Wall -Wextra -Wpedantic -Werror \
 *            -D_FORTIFY_SOURCE=2 -I. -o bench/stress bench/stress.c
 * Run:    bench/stress                            60 s: echo, then chat
 *         bench/stress --seconds 15 --server build/sanitize/select_server
 *         bench/stress --help                     every option
 * Exit:   0 pass; 1 fail, each reason on its own line; 2 usage error.
 *
 * Reproducible: every random choice is drawn from splitmix64 streams derived
 * from the seed - one for the schedule, one for the console, one for each
 * client (its sizes, bytes, lines, lifetime).  The same seed gives the same
 * clients, data and console lines in the same order; only the kernel's
 * timing differs.  The first line printed is the command that repeats a run.
 *
 * Start reading at main(), then run_phase(): one server's life, stage by
 * stage.  Every stage runs pump(), the event loop; the handlers it calls
 * follow, grouped by kind of client, then the console, the server process
 * and the results.
 */
#define PROGNAME "stress"
#define _POSIX_C_SOURCE 200809L
#define EXIT_USAGE 2            /* 1 means the run failed */
#define _GNU_SOURCE             /* pipe2(), F_SETPIPE_SZ */

#include "../common.h"

#include <dirent.h>
#include <getopt.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

/* select_server.c's limits, which the checks and the memory bound follow. */
#define SRV_ECHO_HIGH_WATER  (256 * 1024)
#define SRV_CHAT_MAX_PENDING (1024 * 1024)
#define SRV_MAX_LINE         4096
#define SRV_CONSOLE_MAX_LINE 1024
#define SRV_OUTPUT_CAP       (1024 * 1024)  /* its own output, per stream */
#define STR(x)               XSTR(x)
#define XSTR(x)              #x
/* The server's own descriptors below FD_SETSIZE: stdio, the self-pipe, the
 * listener, UDP and the spare make 8; 8 more are left for a runtime's. */
#define SRV_OWN_FDS          16
#define SRV_FD_LIMIT         (FD_SETSIZE + 64)   /* its RLIMIT_NOFILE */

/* Defaults. */
#define DEFAULT_SECONDS      60
#define DEFAULT_CLIENTS      1000
#define DEFAULT_SERVER       "./select_server"

/* The mix. */
#define MISBEHAVING_MAX      16     /* misbehaving clients at once */
#define SPARE_SLOTS          8      /* server slots kept free */
#define RAMP_PENDING         8      /* handshakes in flight at once */
#define RT_MAX               65536  /* largest echo round trip */
#define RT_RATE              2000   /* echo round trips/s, all clients */
#define CHAT_MAX_SENDERS     200    /* see plan_clients() */
#define CHAT_LINE_RATE       100    /* chat lines/s, all senders */
#define CHAT_WINDOW          8      /* lines a sender may have unseen */
#define HALFCLOSE_MAX        (256 * 1024)
#define ASAN_QUARANTINE_MIB  16     /* see setup_run() */
#define FLOOD_READ           4096   /* a slow flooder's read */
#define SEND_BURST           (256 * 1024)   /* most sent per wake-up */

/* Time. */
#define LATENCY_LIMIT_US     1000000
#define TICK_US              5000   /* longest epoll_wait() */
#define SAMPLE_US            100000 /* VmRSS and waitpid() */
#define START_US             5000000    /* for the server's first line */
#define DRAIN_US             2000000    /* in-flight work at the end */
#define BASELINE_US          2500000    /* for the fd count to settle */
#define PROBE_US             1500000
#define SYNC_US              1500000
#define TERM_US              2000000    /* SIGTERM to exit */
#define TEARDOWN_US          7000000    /* a phase's checks, in all */
#define RUN_SLACK_US         14000000   /* the run ends by S + this */
#define BURST_US             5000000

#define MAX_FAILURES         40
#define MAX_STDERR_SHOWN     80
#define EXPECT_MAX           256
#define HIST_STEP_US         50
#define HIST_BUCKETS         40001  /* 0-2 s in 50 us steps, then the rest */
#define MIB                  (1024 * 1024)
#define GOLDEN               0x9e3779b97f4a7c15ULL

enum mode { MODE_ECHO, MODE_CHAT, MODE_BOTH };
static const char *const mode_names[] = { "echo", "chat", "both" };

/* What a connection is for.  NOREAD..JUNK are the misbehaving kinds. */
enum role {
    ROLE_FREE,
    ROLE_WELL,          /* echo round trips, or chat lines */
    ROLE_OBSERVER,      /* chat: reads and checks every line */
    ROLE_NOREAD,        /* sends, never reads */
    ROLE_HALFLINE,      /* half a line, then silence */
    ROLE_FLOOD,         /* sends flat out, reads slowly or never */
    ROLE_RESET,         /* talks, then SO_LINGER {1,0} and close: RST */
    ROLE_HALFCLOSE,     /* sends, shutdown(SHUT_WR), reads to EOF */
    ROLE_JUNK,          /* random binary bytes */
    ROLE_BURST,         /* one of a burst beyond --max-clients */
    ROLE_PROBE,         /* a fresh client at the end */
    NROLES
};
static const char *const role_names[NROLES] = {
    "free", "well", "observer", "noread", "halfline", "flood", "reset",
    "halfclose", "junk", "burst", "probe",
};
#define FIRST_MISBEHAVING ROLE_NOREAD
#define NMISBEHAVING      (ROLE_JUNK - ROLE_NOREAD + 1)

struct options {
    uint64_t seed;
    long seconds;
    long clients;               /* asked for; plan_clients() may use fewer */
    enum mode mode;
    long max_rss_mib;           /* 0 until the default is computed */
    bool rss_given;
    const char *server;
    const char *argv0;
};

/* A splitmix64 generator: one per stream of choices. */
struct rng {
    uint64_t state;
};

struct conn {
    enum role role;             /* ROLE_FREE: the slot is unused */
    int fd;
    long serial;                /* well-behaved: 0..n-1; others: a count */
    bool connecting;            /* non-blocking connect() under way */
    bool v6;                    /* to ::1, else to 127.0.0.1 */
    bool watch_in, watch_out;   /* the epoll interest set */
    bool reads;                 /* flood: reads slowly; false: never */
    bool letters;               /* the stream is a-z only: a chat line */
    bool shut_wr;               /* halfclose: our FIN is sent */
    bool joined;                /* chat: the observer saw us join */
    bool busy;                  /* a round trip is in flight */
    bool listener;              /* chat probe: the one that receives */
    struct rng rng;             /* this client's own choices */
    uint64_t key;               /* the byte stream: see stream_bytes() */
    uint64_t stream_len;        /* its length; UINT64_MAX: endless */
    uint64_t sent, recvd;       /* offsets into the stream */
    uint64_t rounds;            /* round trips or lines completed */
    int64_t start_us;           /* this round trip began */
    int64_t wake_us;            /* on_timer() is due; INT64_MAX: never */
    int64_t end_us;             /* misbehaving: time to leave */
    int srv_fd;                 /* chat: our fd in the server, from "joined" */
    unsigned short port;        /* our local port */
    uint64_t seq_sent, seq_seen;        /* chat sender's lines */
    int64_t sent_us[CHAT_WINDOW];       /* when line seq % CHAT_WINDOW left */
    struct buffer out;          /* bytes to send before any stream bytes */
    struct buffer in;           /* bytes received, kept for parsing */
    struct buffer expect;       /* chat sender: lines the observer owes us */
};

/* One server error line the console input has asked for. */
struct expectation {
    bool any_unknown;           /* "unknown command '...'" with any text */
    char text[160];             /* else this, after "select_server: " */
};

struct console {
    struct rng rng;
    struct buffer out;          /* bytes not yet written to its stdin */
    struct buffer follow;       /* written at follow_us: a line's end, */
    int64_t follow_us;          /* "resume", "trace off"; INT64_MAX: none */
    bool follow_expects;
    struct expectation follow_exp;
    int64_t next_us;            /* the next console event */
    struct expectation expect[EXPECT_MAX];      /* a FIFO ring */
    unsigned head, count;
    bool active;                /* new events may start */
    bool paused;                /* "pause" sent, "resume" not yet */
    long says, says_seen;       /* chat: "say" lines sent, and relayed */
};

struct server {
    pid_t pid;                  /* -1: none */
    int in_fd, out_fd, err_fd;  /* our pipe ends, non-blocking; -1: closed */
    bool in_watch;
    unsigned short port;
    bool dual_stack;            /* on [::]: ::1 reaches it too */
    bool ready;                 /* the first line was read */
    int64_t ready_us;
    bool expect_exit;           /* we sent SIGTERM (or SIGKILL) */
    bool exited;
    int status;
    struct buffer out_line, err_line;   /* partial lines */
    int base_fds, last_fds, peak_fds;
    long base_rss_kib, peak_rss_kib;
    int64_t next_sample_us, next_fds_us;
};

struct latency {
    uint32_t *hist;             /* HIST_BUCKETS counts */
    uint64_t n;
    int64_t max_us;
};

struct burst {
    bool active;
    long total, opened, open, pending, refused, want;
    int64_t deadline_us;
};

struct run {
    struct options opt;
    int epfd;
    struct conn *conns;
    int nconns;
    int *owner[2];              /* [v6][port]: conn index + 1, 0 none */
    unsigned char *sendbuf, *recvbuf, *cmpbuf;      /* RT_MAX each */
    struct server srv;
    struct console con;

    /* the plan */
    long wanted_well, chat_senders;     /* well-behaved clients */
    long echo_max_clients, chat_max_clients;
    long max_clients;                   /* this phase's */

    /* the phase under way */
    enum mode mode;             /* MODE_ECHO or MODE_CHAT */
    int phase;
    int64_t phase_end_us;       /* the phase's hard deadline */
    int64_t mix_end_us;         /* traffic stops */
    bool ramping, mixing, aborted, final_drain;
    long well_started, well_open, well_ready, ramp_pending, mis_open;
    int observer;               /* conn index, -1 */
    bool observer_ready;
    struct rng sched, bursts_rng;       /* misbehaving clients; bursts */
    int64_t mis_next_us, burst_next_us, next_wake_us;
    long mis_serial;
    struct burst burst;
    bool probe_ok;
    uint64_t probe_key;

    /* results */
    struct latency echo_lat, chat_lat;
    uint64_t round_trips, chat_lines, bytes;
    long started[NROLES];
    long refused, resets, dropped, halfclose_ok, bursts;
    long console_lines, console_errors, other_lines, stdout_lines;
    long peak_rss_kib;          /* of every phase's server */
    char asan_options[512];     /* for the server's environment, or "" */
    int64_t run_start_us, run_end_us;
    struct failure {
        const char *fmt;        /* its call site: repeats are counted */
        long times;
        char text[300];         /* the first one */
    } failures[MAX_FAILURES];
    long nfailures, kinds;
    char stderr_shown[MAX_STDERR_SHOWN][300];
    long nstderr;
};

/* epoll tags for the server's pipes; connections use their index. */
#define TAG_STDIN  ((uint64_t)1 << 40)
#define TAG_STDOUT (TAG_STDIN + 1)
#define TAG_STDERR (TAG_STDIN + 2)

/* Table of contents: in the order the program runs. */
static void parse_options(int argc, char **argv, struct options *opt);
static void usage(FILE *fp);
static void setup_run(struct run *r);
static void plan_clients(struct run *r);
static long default_rss_mib(const struct run *r);
static long grown_buffer(long pending);
static void raise_fd_limit(long need);
static void print_plan(const struct run *r);
static void run_phase(struct run *r, enum mode mode, int64_t traffic_us,
                      int64_t phase_end_us);
static bool pump(struct run *r, int64_t deadline_us,
                 bool (*done)(struct run *));
static int64_t step_deadline(const struct run *r, int64_t step_us);
static void dispatch(struct run *r, uint64_t tag, uint32_t events,
                     int64_t now);
static void run_timers(struct run *r, int64_t now);
static void schedule(struct run *r, int64_t now);
static bool room_for_misbehaver(struct run *r);
static void stop_traffic(struct run *r);
static bool drained(struct run *r);
static void report_undrained(struct run *r, int64_t now);
static void close_clients(struct run *r);
static bool fds_at_baseline(struct run *r);
static bool probe_server(struct run *r);
static bool probe_done(struct run *r);

/* connections */
static struct conn *conn_open(struct run *r, enum role role, long serial,
                              struct rng rng);
static void conn_close(struct run *r, struct conn *c, bool reset);
static void conn_watch(struct run *r, struct conn *c, bool in, bool out);
static void set_wake(struct run *r, struct conn *c, int64_t when);
static void on_connected(struct run *r, struct conn *c, int64_t now);
static void on_readable(struct run *r, struct conn *c, int64_t now);
static void on_writable(struct run *r, struct conn *c);
static void on_timer(struct run *r, struct conn *c, int64_t now);
static int send_pending(struct run *r, struct conn *c, size_t max);
static ssize_t recv_some(struct conn *c, void *buf, size_t len);
static bool check_stream(struct run *r, struct conn *c, size_t n,
                         uint64_t *bad_at);
static void well_lost(struct run *r, struct conn *c, const char *what,
                      int err);

/* echo, chat */
static void echo_start(struct run *r, struct conn *c, int64_t now);
static void echo_readable(struct run *r, struct conn *c, int64_t now);
static void chat_send_line(struct run *r, struct conn *c, int64_t now);
static void chat_payload(struct rng *g, struct buffer *raw,
                         struct buffer *esc);
static void drain_readable(struct run *r, struct conn *c);
static void observer_readable(struct run *r, struct conn *c, int64_t now);
static void observer_line(struct run *r, const char *line, size_t len,
                          int64_t now);
static struct conn *peer_owner(struct run *r, const char *peer, size_t len);

/* misbehaving clients, bursts, probes */
static void start_misbehaver(struct run *r, int64_t now);
static void mis_begin(struct run *r, struct conn *c, int64_t now);
static void mis_behave(struct run *r, struct conn *c, int64_t now);
static void mis_timer(struct run *r, struct conn *c, int64_t now);
static void mis_readable(struct run *r, struct conn *c, int64_t now);
static void mis_gone(struct run *r, struct conn *c, const char *how);
static void mis_append_line(struct conn *c, const char *tag);
static void burst_begin(struct run *r, int64_t now);
static void burst_tick(struct run *r, int64_t now);
static void burst_readable(struct run *r, struct conn *c);
static void burst_end(struct run *r);
static void probe_readable(struct run *r, struct conn *c);

/* the console */
static void console_tick(struct run *r, int64_t now);
static void console_event(struct run *r, int64_t now);
static void console_line(struct run *r, const void *line, size_t len,
                         const struct expectation *exp);
static void console_junk(struct rng *g, struct buffer *b, size_t len);
static void console_flush(struct run *r);
static void check_stderr_line(struct run *r, const char *line, size_t len);
static bool console_synced(struct run *r);

/* the server process */
static bool start_server(struct run *r);
static bool server_ready(struct run *r);
static void read_server_pipe(struct run *r, int which);
static void server_stdout_line(struct run *r, const char *line, size_t len);
static void sample_server(struct run *r, int64_t now);
static bool reap_server(struct run *r);
static void stop_server(struct run *r);
static bool server_exited(struct run *r);
static bool server_pipes_closed(struct run *r);
static void kill_server(struct run *r, const char *why);
static void close_server_pipes(struct run *r);
static const char *describe_status(int status, char *out, size_t len);
static long proc_rss_kib(pid_t pid);
static int proc_fd_count(pid_t pid);

/* results */
static void record_latency(struct latency *l, int64_t us);
static int64_t latency_p99(const struct latency *l);
static void fail(struct run *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
static int finish(struct run *r);
static const char *shown(const void *data, size_t len, char *out,
                         size_t outlen);
static const char *shell_word(const char *s, char *out, size_t len);
static void append(struct buffer *b, const void *data, size_t len);

/* random numbers */
static uint64_t mix64(uint64_t z);
static uint64_t rng_next(struct rng *g);
static uint64_t rng_below(struct rng *g, uint64_t n);
static int64_t rng_range(struct rng *g, int64_t lo, int64_t hi);
static size_t rng_size(struct rng *g, size_t max);
static struct rng rng_derive(uint64_t seed, uint64_t stream, uint64_t index);
static void stream_bytes(uint64_t key, uint64_t off, unsigned char *buf,
                         size_t n, bool letters);

int
main(int argc, char **argv)
{
    struct run run, *r = &run;
    int64_t seconds_us, echo_us;

    memset(r, 0, sizeof *r);
    parse_options(argc, argv, &r->opt);
    setup_run(r);
    print_plan(r);

    r->run_start_us = now_us();
    seconds_us = r->opt.seconds * 1000000;
    if (r->opt.mode == MODE_ECHO) {
        run_phase(r, MODE_ECHO, seconds_us,
                  r->run_start_us + seconds_us + RUN_SLACK_US);
    } else if (r->opt.mode == MODE_CHAT) {
        run_phase(r, MODE_CHAT, seconds_us,
                  r->run_start_us + seconds_us + RUN_SLACK_US);
    } else {
        /* Most of the time in echo, a third in chat: two servers, one
         * after the other, since a server's mode is fixed at start-up. */
        echo_us = (seconds_us * 2 / 3) / 1000000 * 1000000;
        run_phase(r, MODE_ECHO, echo_us,
                  r->run_start_us + echo_us + TEARDOWN_US);
        run_phase(r, MODE_CHAT, seconds_us - echo_us,
                  r->run_start_us + seconds_us + RUN_SLACK_US);
    }
    r->run_end_us = now_us();
    return finish(r);
}

/* ------------------------------------------------------------------ */
/* Options and the plan                                                */
/* ------------------------------------------------------------------ */

static void
usage(FILE *fp)
{
    fprintf(fp,
"Usage: %s [options]\n"
"A seeded stress run against one select_server that it starts itself.\n"
"\n"
"  --seed N          the seed of every random choice (default: from the"
" clock)\n"
"  --seconds S       length of the run (default %d)\n"
"  --clients N       well-behaved clients (default %d; fewer if the"
" server's\n"
"                    client limit needs room for the others)\n"
"  --mode MODE       echo, chat or both (default both: 2/3 echo, then"
" chat)\n"
"  --max-rss-mib M   the server's VmRSS bound (default: from its buffer"
" limits)\n"
"  --server PATH     the server to run (default %s)\n"
"  -h, --help        show this help and exit\n"
"\n"
"Prints one key=value summary line; exit status 0 pass, 1 fail, 2 usage.\n",
            PROGNAME, DEFAULT_SECONDS, DEFAULT_CLIENTS, DEFAULT_SERVER);
}

static void
parse_options(int argc, char **argv, struct options *opt)
{
    enum { OPT_SEED = 256, OPT_SECONDS, OPT_CLIENTS, OPT_MODE, OPT_RSS,
           OPT_SERVER };
    static const struct option longopts[] = {
        { "seed",        required_argument, NULL, OPT_SEED },
        { "seconds",     required_argument, NULL, OPT_SECONDS },
        { "clients",     required_argument, NULL, OPT_CLIENTS },
        { "mode",        required_argument, NULL, OPT_MODE },
        { "max-rss-mib", required_argument, NULL, OPT_RSS },
        { "server",      required_argument, NULL, OPT_SERVER },
        { "help",        no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct timespec ts;
    bool seeded = false;
    long v;
    int c;

    *opt = (struct options){ .seconds = DEFAULT_SECONDS,
                             .clients = DEFAULT_CLIENTS, .mode = MODE_BOTH,
                             .server = DEFAULT_SERVER, .argv0 = argv[0] };
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SEED:
            if (parse_long(optarg, 0, LONG_MAX, &v) < 0)
                usage_error("invalid seed '%s' (expected 0-%ld)", optarg,
                          LONG_MAX);
            opt->seed = (uint64_t)v;
            seeded = true;
            break;
        case OPT_SECONDS:
            if (parse_long(optarg, 1, 86400, &opt->seconds) < 0)
                usage_error("invalid seconds '%s' (expected 1-86400)", optarg);
            break;
        case OPT_CLIENTS:
            if (parse_long(optarg, 1, FD_SETSIZE, &opt->clients) < 0)
                usage_error("invalid clients '%s' (expected 1-%d)", optarg,
                          FD_SETSIZE);
            break;
        case OPT_MODE:
            if (strcmp(optarg, "echo") == 0)
                opt->mode = MODE_ECHO;
            else if (strcmp(optarg, "chat") == 0)
                opt->mode = MODE_CHAT;
            else if (strcmp(optarg, "both") == 0)
                opt->mode = MODE_BOTH;
            else
                usage_error("invalid mode '%s' (expected echo, chat or both)",
                          optarg);
            break;
        case OPT_RSS:
            if (parse_long(optarg, 1, 1048576, &opt->max_rss_mib) < 0)
                usage_error("invalid max-rss-mib '%s' (expected 1-1048576)",
                          optarg);
            opt->rss_given = true;
            break;
        case OPT_SERVER:
            opt->server = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case ':':
            usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (opt->mode == MODE_BOTH && opt->seconds < 3)
        usage_error("--mode both needs --seconds 3 or more");
    if (!seeded) {
        if (clock_gettime(CLOCK_REALTIME, &ts) < 0) {
            report_error(errno, "clock_gettime CLOCK_REALTIME");
            exit(1);
        }
        opt->seed = mix64((uint64_t)ts.tv_sec * 1000000000u +
                          (uint64_t)ts.tv_nsec + (uint64_t)getpid()) %
                    1000000000000u;
    }
}

/*
 * setup_run - the descriptor limit, epoll, the tables and the plan.  Any
 * failure here is the machine's, not the server's: say so and exit 1.
 */
static void
setup_run(struct run *r)
{
    struct sigaction sa;
    const char *asan;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;    /* a dead server's stdin is EPIPE, not death */
    if (sigaction(SIGPIPE, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGPIPE");
        exit(1);
    }
    plan_clients(r);
    if (!r->opt.rss_given)
        r->opt.max_rss_mib = default_rss_mib(r);
    /* An AddressSanitizer build keeps up to 256 MiB of freed memory in
     * quarantine, which VmRSS would count against the server: keep it to
     * ASAN_QUARANTINE_MIB (ignored by a normal build), unless set. */
    asan = getenv("ASAN_OPTIONS");
    if (asan == NULL || strstr(asan, "quarantine_size_mb") == NULL)
        snprintf(r->asan_options, sizeof r->asan_options,
                 "%s%squarantine_size_mb=%d", asan ? asan : "",
                 asan && *asan ? ":" : "", ASAN_QUARANTINE_MIB);

    /* Every slot the server has, a burst beyond them, probes and spares. */
    r->nconns = (int)(2 * r->echo_max_clients + 64);
    raise_fd_limit(r->nconns + 64);
    r->conns = calloc((size_t)r->nconns, sizeof *r->conns);
    r->owner[0] = calloc(65536, sizeof **r->owner);
    r->owner[1] = calloc(65536, sizeof **r->owner);
    r->sendbuf = malloc(RT_MAX);
    r->recvbuf = malloc(RT_MAX);
    r->cmpbuf = malloc(RT_MAX);
    r->echo_lat.hist = calloc(HIST_BUCKETS, sizeof *r->echo_lat.hist);
    r->chat_lat.hist = calloc(HIST_BUCKETS, sizeof *r->chat_lat.hist);
    if (r->conns == NULL || r->owner[0] == NULL || r->owner[1] == NULL ||
        r->sendbuf == NULL || r->recvbuf == NULL || r->cmpbuf == NULL ||
        r->echo_lat.hist == NULL || r->chat_lat.hist == NULL) {
        report_error(ENOMEM, "allocating the tables");
        exit(1);
    }
    for (int i = 0; i < r->nconns; i++)
        r->conns[i].fd = -1;
    if ((r->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        report_error(errno, "epoll_create1");
        exit(1);
    }
    r->srv = (struct server){ .pid = -1, .in_fd = -1, .out_fd = -1,
                              .err_fd = -1 };
    r->observer = -1;
}

/*
 * plan_clients - how many clients of each kind, and the server's limit.
 * The server takes clients on descriptors below FD_SETSIZE, less its own:
 * at most FD_SETSIZE - SRV_OWN_FDS.  Its --max-clients must hold the
 * well-behaved clients, the chat observer, MISBEHAVING_MAX misbehaving
 * ones and SPARE_SLOTS more (a client we closed holds its slot until the
 * server notices), so that a well-behaved client is never refused - and no
 * more, so that a burst beyond the limit stays small.  Chat copies every
 * line to every client, so its work grows with the square of the clients:
 * it uses at most CHAT_MAX_SENDERS, which keeps a sanitizer build in time.
 */
static void
plan_clients(struct run *r)
{
    long others = 1 + MISBEHAVING_MAX + SPARE_SLOTS;
    long room = FD_SETSIZE - SRV_OWN_FDS - others;

    r->wanted_well = r->opt.clients < room ? r->opt.clients : room;
    r->chat_senders = r->wanted_well < CHAT_MAX_SENDERS ? r->wanted_well
                                                        : CHAT_MAX_SENDERS;
    r->echo_max_clients = r->wanted_well + others;
    r->chat_max_clients = r->chat_senders + others;
}

/*
 * default_rss_mib - the memory bound, from the server's buffer limits, for
 * the phases this run has.  A client's output buffer starts at 4 KiB and
 * doubles, and while it grows the old copy is held too:
 *   - echo: a client that does not read is throttled once ECHO_HIGH_WATER
 *     (256 KiB) is pending, after at most one more read (512 KiB): a 1 MiB
 *     buffer, 1.5 MiB while it grows.  A well-behaved client has at most
 *     its one round trip (64 KiB) at the server: 96 KiB while it grows;
 *   - chat: a reader more than CHAT_MAX_PENDING (1 MiB) behind is dropped
 *     after one more line (16 KiB at most, escaped): a 2 MiB buffer, 3 MiB
 *     while it grows.  The well-behaved read everything at once: allow
 *     each of them, and the observer, 64 KiB;
 * every client at its limit at the same time, on top of 32 MiB for the
 * process itself: program, libc, its 1024-slot table, and in a sanitizer
 * build the runtime, shadow memory and ASAN_QUARANTINE_MIB of quarantine.
 */
static long
default_rss_mib(const struct run *r)
{
    /* A read never takes an echo past the high-water mark. */
    long echo_mis = grown_buffer(SRV_ECHO_HIGH_WATER);
    long echo_well = grown_buffer(RT_MAX);
    long chat_mis = grown_buffer(SRV_CHAT_MAX_PENDING + 4 * SRV_MAX_LINE +
                                 128);
    long chat_well = 64 * 1024;
    long echo = r->wanted_well * echo_well + MISBEHAVING_MAX * echo_mis;
    long chat = (r->chat_senders + 1) * chat_well + MISBEHAVING_MAX * chat_mis;
    long bytes = r->opt.mode == MODE_ECHO ? echo
                 : r->opt.mode == MODE_CHAT ? chat
                 : echo > chat ? echo : chat;

    /* The server's own stdout and stderr queues, full. */
    bytes += 2 * grown_buffer(SRV_OUTPUT_CAP);
    return 32 + (bytes + MIB - 1) / MIB;
}

/* grown_buffer - the memory a struct buffer holds for `pending` bytes at
 * worst: 4 KiB doubled until they fit, plus the old half it copies from. */
static long
grown_buffer(long pending)
{
    long cap = 4096;

    for (int i = 0; i < 40 && cap < pending; i++)
        cap *= 2;
    return cap + cap / 2;
}

/*
 * raise_fd_limit - our soft RLIMIT_NOFILE up to `need`, and at least to the
 * server's SRV_FD_LIMIT (the child inherits the hard limit).  Exits 1 if
 * the hard limit is too low: only root can raise that.
 */
static void
raise_fd_limit(long need)
{
    struct rlimit rl;

    if (need < SRV_FD_LIMIT)
        need = SRV_FD_LIMIT;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        report_error(errno, "getrlimit RLIMIT_NOFILE");
        exit(1);
    }
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)need) {
        report_error(0, "the hard limit on open files is %llu; this run"
                     " needs %ld (the server FD_SETSIZE + 64 = %d, and here"
                     " one per connection): raise it (as root: ulimit -Hn"
                     " %ld)%s", (unsigned long long)rl.rlim_max, need,
                     SRV_FD_LIMIT, need,
                     rl.rlim_max >= SRV_FD_LIMIT ? " or use fewer --clients"
                                                 : "");
        exit(1);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)need) {
        rl.rlim_cur = (rlim_t)need;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            report_error(errno, "setrlimit RLIMIT_NOFILE %ld", need);
            exit(1);
        }
    }
}

/* print_plan - the first line (the seed, and the command that repeats
 * the run), then what the run will do and why. */
static void
print_plan(const struct run *r)
{
    char argv0[512], server[512], rss[32] = "";

    if (r->opt.rss_given)
        snprintf(rss, sizeof rss, " --max-rss-mib %ld", r->opt.max_rss_mib);
    printf("stress: seed=%llu seconds=%ld mode=%s clients=%ld"
           " max_rss_mib=%ld server=%s; re-run: %s --seed %llu --seconds %ld"
           " --clients %ld --mode %s%s --server %s\n",
           (unsigned long long)r->opt.seed, r->opt.seconds,
           mode_names[r->opt.mode], r->opt.clients, r->opt.max_rss_mib,
           shell_word(r->opt.server, server, sizeof server),
           shell_word(r->opt.argv0, argv0, sizeof argv0),
           (unsigned long long)r->opt.seed, r->opt.seconds, r->opt.clients,
           mode_names[r->opt.mode], rss, server);
    if (r->wanted_well < r->opt.clients)
        printf("stress: %ld well-behaved clients, not %ld: the server can"
               " hold %d (FD_SETSIZE %d less %d for its own descriptors),"
               " and 1 observer, %d misbehaving clients and %d spare slots"
               " need room too\n", r->wanted_well, r->opt.clients,
               FD_SETSIZE - SRV_OWN_FDS, FD_SETSIZE, SRV_OWN_FDS,
               MISBEHAVING_MAX, SPARE_SLOTS);
    if (r->opt.mode != MODE_ECHO && r->chat_senders < r->wanted_well)
        printf("stress: chat uses %ld of them: the server copies every line"
               " to every client, so its work grows as their square\n",
               r->chat_senders);
    if (!r->opt.rss_given)
        printf("stress: memory bound %ld MiB: 32 MiB for the process, plus"
               " every output buffer at its limit at once (see"
               " default_rss_mib)\n", r->opt.max_rss_mib);
    if (r->asan_options[0] != '\0')
        printf("stress: the server runs with ASAN_OPTIONS=%s (a sanitizer's"
               " quarantine of freed memory would count as the server's)\n",
               r->asan_options);
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* A phase: one server's life                                          */
/* ------------------------------------------------------------------ */

/*
 * run_phase - start a server in `mode`; the ramp (well-behaved clients
 * connect) and the mix until traffic_us after start-up; then the checks:
 * in-flight work completes, every client leaves, the descriptors return to
 * the baseline, a fresh client gets its round trip, the console's errors
 * all arrived, and SIGTERM ends the server with status 0.  Nothing runs
 * past phase_end_us: there the server is killed and the phase fails.
 */
static void
run_phase(struct run *r, enum mode mode, int64_t traffic_us,
          int64_t phase_end_us)
{
    char status[64];
    int64_t now = now_us();

    r->mode = mode;
    r->max_clients = mode == MODE_ECHO ? r->echo_max_clients
                                       : r->chat_max_clients;
    r->phase++;
    r->phase_end_us = phase_end_us;
    r->aborted = r->final_drain = false;
    r->ramping = r->mixing = false;
    r->well_started = r->well_open = r->well_ready = r->ramp_pending = 0;
    r->mis_open = 0;
    r->observer = -1;
    r->observer_ready = false;
    r->burst = (struct burst){ .active = false };
    r->probe_ok = false;
    r->sched = rng_derive(r->opt.seed, (uint64_t)r->phase * 16 + 1, 0);
    r->bursts_rng = rng_derive(r->opt.seed, (uint64_t)r->phase * 16 + 8, 0);
    buf_free(&r->con.out);
    buf_free(&r->con.follow);
    r->con = (struct console){
        .rng = rng_derive(r->opt.seed, (uint64_t)r->phase * 16 + 2, 0),
        .follow_us = INT64_MAX, .next_us = INT64_MAX };
    r->next_wake_us = INT64_MAX;
    if (phase_end_us - TEARDOWN_US <= now + 1000000) {
        fail(r, "%s: no time left for this phase", mode_names[mode]);
        return;
    }

    if (!start_server(r)) {
        stop_server(r);
        return;
    }
    now = now_us();
    r->mix_end_us = now + traffic_us;
    if (r->mix_end_us > phase_end_us - TEARDOWN_US)
        r->mix_end_us = phase_end_us - TEARDOWN_US;
    printf("stress: %s: server pid %ld on port %u, --max-clients %ld, %ld"
           " well-behaved clients, %.1f s\n", mode_names[mode],
           (long)r->srv.pid, r->srv.port, r->max_clients,
           mode == MODE_ECHO ? r->wanted_well : r->chat_senders,
           (double)(r->mix_end_us - now) / 1e6);
    fflush(stdout);

    /* The ramp, then the mix. */
    r->ramping = true;
    pump(r, r->mix_end_us, NULL);
    if (!r->aborted && r->ramping)
        fail(r, "%s: only %ld of %ld well-behaved clients were connected"
             " when the traffic ended", mode_names[mode], r->well_ready,
             mode == MODE_ECHO ? r->wanted_well : r->chat_senders);

    /* The end: work in flight completes, then everyone leaves. */
    stop_traffic(r);
    if (!pump(r, step_deadline(r, DRAIN_US), drained) && !r->aborted)
        report_undrained(r, now_us());
    close_clients(r);
    if (!pump(r, step_deadline(r, BASELINE_US), fds_at_baseline) &&
        !r->aborted)
        fail(r, "%s: the server holds %d descriptors %.1f s after every"
             " client left, %d at start-up", mode_names[mode],
             r->srv.last_fds, (double)BASELINE_US / 1e6, r->srv.base_fds);
    if (!r->aborted && !probe_server(r))
        fail(r, "%s: a fresh client did not get its %s within %.1f s",
             mode_names[mode], mode == MODE_ECHO ? "echo" : "line relayed",
             (double)PROBE_US / 1e6);
    close_clients(r);

    /* Every console line has had its answer: a last unknown command marks
     * the end of the stream, so anything still expected never came. */
    if (!r->aborted) {
        struct expectation sync = { .any_unknown = false };
        char line[64];

        snprintf(line, sizeof line, "zzsync%d", r->phase);
        snprintf(sync.text, sizeof sync.text, "unknown command '%s' (type"
                 " 'help' for the list)", line);
        console_line(r, line, strlen(line), &sync);
        if (!pump(r, step_deadline(r, SYNC_US), console_synced) &&
            !r->aborted)
            fail(r, "%s: %u console error line%s never came on the server's"
                 " stderr (first: '%s')", mode_names[mode], r->con.count,
                 r->con.count == 1 ? "" : "s",
                 r->con.expect[r->con.head].any_unknown
                     ? "unknown command ..."
                     : r->con.expect[r->con.head].text);
    }
    stop_server(r);
    if (r->srv.exited)
        printf("stress: %s: server ended: %s; VmRSS %ld KiB at start-up,"
               " %ld at most; %d descriptors at start-up, %d at most\n",
               mode_names[mode],
               describe_status(r->srv.status, status, sizeof status),
               r->srv.base_rss_kib, r->srv.peak_rss_kib, r->srv.base_fds,
               r->srv.peak_fds);
    fflush(stdout);
}

/*
 * pump - the event loop every stage runs: wait for events (at most one
 * tick), handle them, run the timers, until done(r) holds or deadline_us
 * (done NULL: until the deadline).  Returns true if done(r) became true.
 * At the phase's hard deadline the server is killed and the phase aborted;
 * an aborted phase returns false at once, except in the final drain of the
 * server's pipes.
 */
static bool
pump(struct run *r, int64_t deadline_us, bool (*done)(struct run *))
{
    struct epoll_event ev[256];

    for (;;) {
        int64_t now = now_us(), wait_us;
        int n;

        if (r->aborted && !r->final_drain)
            return false;
        if (done != NULL && done(r))
            return true;
        if (now >= deadline_us)
            return false;
        if (now >= r->phase_end_us && !r->aborted) {
            kill_server(r, "the phase did not end by itself in time");
            r->aborted = true;
            if (!r->final_drain)
                return false;
        }
        wait_us = deadline_us - now < TICK_US ? deadline_us - now : TICK_US;
        n = epoll_wait(r->epfd, ev, (int)(sizeof ev / sizeof ev[0]),
                       (int)((wait_us + 999) / 1000));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            report_error(errno, "epoll_wait");
            exit(1);
        }
        now = now_us();
        for (int i = 0; i < n; i++)
            dispatch(r, ev[i].data.u64, ev[i].events, now);
        run_timers(r, now_us());
    }
}

/* step_deadline - now + step_us, but early enough that SIGTERM still gets
 * its time before the phase's hard deadline. */
static int64_t
step_deadline(const struct run *r, int64_t step_us)
{
    int64_t when = now_us() + step_us, last = r->phase_end_us - TERM_US;

    return when < last ? when : last;
}

/* dispatch - one epoll event: the server's pipes, or a connection. */
static void
dispatch(struct run *r, uint64_t tag, uint32_t events, int64_t now)
{
    struct conn *c;

    if (tag == TAG_STDOUT || tag == TAG_STDERR) {
        read_server_pipe(r, tag == TAG_STDOUT ? 1 : 2);
        return;
    }
    if (tag == TAG_STDIN) {
        console_flush(r);
        return;
    }
    if (tag >= (uint64_t)r->nconns)
        return;
    c = &r->conns[tag];
    if (c->fd < 0)
        return;                 /* closed earlier in this batch */
    if (c->connecting) {
        on_connected(r, c, now);
        return;
    }
    if ((events & EPOLLOUT) && c->watch_out)
        on_writable(r, c);
    if (c->fd >= 0 && ((events & (EPOLLIN | EPOLLRDHUP)) && c->watch_in))
        on_readable(r, c, now);
    else if (c->fd >= 0 && (events & (EPOLLERR | EPOLLHUP)))
        on_readable(r, c, now); /* the handler sees the error */
}

/* run_timers - the server's samples, the schedule, the console, and every
 * connection whose wake-up time has come. */
static void
run_timers(struct run *r, int64_t now)
{
    int64_t next = INT64_MAX;

    if (now >= r->srv.next_sample_us)
        sample_server(r, now);
    schedule(r, now);
    console_tick(r, now);
    if (now < r->next_wake_us)
        return;
    r->next_wake_us = INT64_MAX;        /* set_wake() may lower it */
    for (int i = 0; i < r->nconns; i++) {
        struct conn *c = &r->conns[i];

        if (c->fd >= 0 && c->wake_us <= now) {
            c->wake_us = INT64_MAX;
            on_timer(r, c, now);
        }
        if (c->fd >= 0 && c->wake_us < next)
            next = c->wake_us;
    }
    if (next < r->next_wake_us)
        r->next_wake_us = next;
}

/*
 * schedule - who joins when: during the ramp, the well-behaved clients (a
 * few handshakes at a time, below the listen backlog); once all are in, the
 * mix: misbehaving clients, one every 20-300 ms while fewer than
 * MISBEHAVING_MAX are open, and now and then a burst beyond the limit.
 */
static void
schedule(struct run *r, int64_t now)
{
    long want = r->mode == MODE_ECHO ? r->wanted_well : r->chat_senders;

    if (r->ramping) {
        if (r->mode == MODE_CHAT && r->observer < 0) {
            struct conn *o = conn_open(r, ROLE_OBSERVER, 0,
                                       rng_derive(r->opt.seed,
                                                  (uint64_t)r->phase * 16 + 3,
                                                  0));
            if (o == NULL)
                return;
            r->observer = (int)(o - r->conns);
        }
        if (r->mode == MODE_CHAT && !r->observer_ready)
            return;
        for (int i = 0; i < RAMP_PENDING && r->well_started < want &&
                        r->ramp_pending < RAMP_PENDING; i++) {
            struct rng g = rng_derive(r->opt.seed,
                                      (uint64_t)r->phase * 16 + 4,
                                      (uint64_t)r->well_started);

            if (conn_open(r, ROLE_WELL, r->well_started, g) == NULL)
                return;
            r->well_started++;
            r->well_open++;
            r->ramp_pending++;
        }
        if (r->well_started < want || r->ramp_pending > 0)
            return;
        r->ramping = false;
        r->mixing = true;
        printf("stress: %s: %ld well-behaved clients connected in %.1f s;"
               " the mix begins\n", mode_names[r->mode], r->well_ready,
               (double)(now - r->srv.ready_us) / 1e6);
        fflush(stdout);
        r->mis_next_us = now + rng_range(&r->sched, 0, 200) * 1000;
        r->burst_next_us = now + rng_range(&r->bursts_rng, 500, 3000) * 1000;
        r->con.active = true;
        r->con.next_us = now + rng_range(&r->sched, 0, 100) * 1000;
        return;
    }
    if (!r->mixing)
        return;
    if (now >= r->mix_end_us) {
        r->mixing = false;
        return;
    }
    if (r->burst.active) {
        burst_tick(r, now);
    } else if (now >= r->burst_next_us && !r->con.paused &&
               now + 1000000 < r->mix_end_us) {
        burst_begin(r, now);
    } else if (now >= r->mis_next_us && r->mis_open < MISBEHAVING_MAX) {
        if (room_for_misbehaver(r)) {
            start_misbehaver(r, now);
            r->mis_next_us = now + rng_range(&r->sched, 20, 300) * 1000;
        } else {
            r->mis_next_us = now + 50000;   /* look again soon */
        }
    }
}

/*
 * room_for_misbehaver - true if one more client surely gets a slot.  The
 * server's descriptors beyond its baseline count every client it holds
 * (including ones we closed that it has not yet noticed); to those add
 * each misbehaving client not yet known to be accepted, the new one, and
 * one for the spare descriptor the server may have closed for a moment.
 */
static bool
room_for_misbehaver(struct run *r)
{
    int fds = proc_fd_count(r->srv.pid);
    long unconfirmed = 0;

    if (fds < 0)
        return false;
    r->srv.last_fds = fds;
    for (int i = 0; i < r->nconns; i++) {
        const struct conn *c = &r->conns[i];

        if (c->fd >= 0 && c->role >= FIRST_MISBEHAVING &&
            c->role <= ROLE_JUNK && !c->joined)
            unconfirmed++;
    }
    return (fds - r->srv.base_fds) + unconfirmed + r->burst.open + 2 <=
           r->max_clients;
}

/* stop_traffic - the end of the mix: no more clients, bursts or console
 * events; misbehaving clients leave now, except a half-closed one that is
 * still checking its echo. */
static void
stop_traffic(struct run *r)
{
    r->ramping = r->mixing = false;
    r->con.active = false;
    if (r->burst.active)
        burst_end(r);
    for (int i = 0; i < r->nconns; i++) {
        struct conn *c = &r->conns[i];

        if (c->fd < 0 || c->role < FIRST_MISBEHAVING || c->role > ROLE_JUNK)
            continue;
        if (c->role == ROLE_HALFCLOSE && c->end_us != INT64_MAX)
            continue;           /* checking its echo: drained() waits */
        conn_close(r, c, c->role == ROLE_RESET);
    }
}

/* drained - nothing in flight: no round trip, no chat line unseen, no
 * half-closed client waiting, the console written and its "resume" sent. */
static bool
drained(struct run *r)
{
    if (r->con.follow_us != INT64_MAX || buf_len(&r->con.out) > 0)
        return false;
    if (r->con.says_seen < r->con.says)
        return false;
    for (int i = 0; i < r->nconns; i++) {
        const struct conn *c = &r->conns[i];

        if (c->fd < 0)
            continue;
        if (c->role == ROLE_HALFCLOSE)
            return false;
        if (c->role == ROLE_WELL &&
            (c->busy || c->seq_seen < c->seq_sent || buf_len(&c->out) > 0))
            return false;
    }
    return true;
}

/* report_undrained - what was still in flight at the drain's deadline; an
 * unfinished round trip counts with its time so far. */
static void
report_undrained(struct run *r, int64_t now)
{
    long rts = 0, lines = 0, halfclosed = 0;
    int64_t oldest = 0;

    for (int i = 0; i < r->nconns; i++) {
        const struct conn *c = &r->conns[i];

        if (c->fd < 0)
            continue;
        if (c->role == ROLE_HALFCLOSE)
            halfclosed++;
        if (c->role == ROLE_WELL && c->busy) {
            rts++;
            if (now - c->start_us > oldest)
                oldest = now - c->start_us;
            record_latency(&r->echo_lat, now - c->start_us);
        }
        if (c->role == ROLE_WELL && c->seq_seen < c->seq_sent) {
            lines += (long)(c->seq_sent - c->seq_seen);
            if (now - c->sent_us[c->seq_seen % CHAT_WINDOW] > oldest)
                oldest = now - c->sent_us[c->seq_seen % CHAT_WINDOW];
            record_latency(&r->chat_lat,
                           now - c->sent_us[c->seq_seen % CHAT_WINDOW]);
        }
    }
    if (rts > 0)
        fail(r, "%s: %ld round trip%s still incomplete at the end (the"
             " oldest for %.3f s)", mode_names[r->mode], rts,
             rts == 1 ? "" : "s", (double)oldest / 1e6);
    if (lines > 0)
        fail(r, "%s: %ld chat line%s from well-behaved clients never reached"
             " the observer (the oldest sent %.3f s ago)",
             mode_names[r->mode], lines, lines == 1 ? "" : "s",
             (double)oldest / 1e6);
    if (halfclosed > 0)
        fail(r, "%s: %ld half-closed client%s got no EOF in time",
             mode_names[r->mode], halfclosed, halfclosed == 1 ? "" : "s");
    if (r->con.says_seen < r->con.says)
        fail(r, "chat: the observer saw %ld of the %ld 'say' lines",
             r->con.says_seen, r->con.says);
    if (r->con.follow_us != INT64_MAX || buf_len(&r->con.out) > 0)
        fail(r, "%s: the server stopped reading its console",
             mode_names[r->mode]);
}

/* close_clients - every connection leaves (well-behaved: FIN). */
static void
close_clients(struct run *r)
{
    for (int i = 0; i < r->nconns; i++)
        if (r->conns[i].fd >= 0)
            conn_close(r, &r->conns[i], false);
    r->observer = -1;
}

/* fds_at_baseline - the server's descriptor count is back to start-up's. */
static bool
fds_at_baseline(struct run *r)
{
    int fds = proc_fd_count(r->srv.pid);

    if (fds >= 0)
        r->srv.last_fds = fds;
    return fds == r->srv.base_fds;
}

/*
 * probe_server - a fresh client: in echo, a round trip of 1-4096 bytes; in
 * chat, a line from one fresh client relayed to another, which connected
 * first (so it was accepted first and is there to receive).  Returns true
 * if it came back in time.
 */
static bool
probe_server(struct run *r)
{
    struct rng g = rng_derive(r->opt.seed, (uint64_t)r->phase * 16 + 5, 0);
    struct conn *c;
    int64_t deadline = step_deadline(r, PROBE_US);

    r->probe_ok = false;
    if ((c = conn_open(r, ROLE_PROBE, 0, g)) == NULL)
        return false;
    r->probe_key = rng_next(&g);
    if (r->mode == MODE_ECHO) {
        c->key = r->probe_key;
        c->stream_len = (uint64_t)rng_range(&g, 1, 4096);
        return pump(r, deadline, probe_done);
    }
    c->listener = true;
    if (!pump(r, deadline, probe_done))     /* until it is connected */
        return false;
    r->probe_ok = false;
    if ((c = conn_open(r, ROLE_PROBE, 1, g)) == NULL)
        return false;
    return pump(r, deadline, probe_done);
}

/* probe_done - the probe's check passed (or, for the chat listener's
 * connect, the connect finished). */
static bool
probe_done(struct run *r)
{
    return r->probe_ok;
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

/*
 * conn_open - a non-blocking connect() to the server, on 127.0.0.1 or (if
 * it listens on both) ::1.  Returns the connection, or NULL after counting
 * a failure: a socket we cannot make is this machine's problem.
 */
static struct conn *
conn_open(struct run *r, enum role role, long serial, struct rng rng)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
    struct epoll_event ev = { .events = EPOLLOUT };
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    struct conn *c = NULL;
    int fd, rc;

    for (int i = 0; i < r->nconns; i++)
        if (r->conns[i].fd < 0 && r->conns[i].role == ROLE_FREE) {
            c = &r->conns[i];
            break;
        }
    if (c == NULL) {
        fail(r, "driver: no free connection slot for a %s client",
             role_names[role]);
        return NULL;
    }
    *c = (struct conn){ .role = role, .fd = -1, .serial = serial,
                        .rng = rng, .wake_us = INT64_MAX,
                        .end_us = INT64_MAX, .srv_fd = -1 };
    c->v6 = r->srv.dual_stack && rng_below(&c->rng, 4) == 0;
    fd = socket(c->v6 ? AF_INET6 : AF_INET,
                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(r, "driver: socket for a %s client: %s", role_names[role],
             strerror(errno));
        c->role = ROLE_FREE;
        return NULL;
    }
    if (c->v6) {
        sin6.sin6_addr = in6addr_loopback;
        sin6.sin6_port = htons(r->srv.port);
        rc = connect(fd, (struct sockaddr *)&sin6, sizeof sin6);
    } else {
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin.sin_port = htons(r->srv.port);
        rc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
    }
    if (rc < 0 && errno != EINPROGRESS) {
        fail(r, "connect to the server for a %s client: %s",
             role_names[role], strerror(errno));
        close(fd);
        c->role = ROLE_FREE;
        return NULL;
    }
    /* connect() has chosen our port: record it now, since the observer may
     * see us join before we see the handshake finish. */
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
        fail(r, "driver: getsockname: %s", strerror(errno));
        close(fd);
        c->role = ROLE_FREE;
        return NULL;
    }
    c->fd = fd;
    c->connecting = true;
    c->watch_out = true;
    c->port = ntohs(ss.ss_family == AF_INET6
                    ? ((struct sockaddr_in6 *)&ss)->sin6_port
                    : ((struct sockaddr_in *)&ss)->sin_port);
    r->owner[c->v6][c->port] = (int)(c - r->conns) + 1;
    ev.data.u64 = (uint64_t)(c - r->conns);
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        report_error(errno, "epoll_ctl ADD fd %d", fd);
        exit(1);
    }
    r->started[role]++;
    return c;
}

/*
 * conn_close - close (reset: SO_LINGER {1,0} first, so the kernel sends
 * RST instead of FIN) and free the slot.  Closing removes it from epoll.
 */
static void
conn_close(struct run *r, struct conn *c, bool reset)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    if (c->fd < 0)
        return;
    if (reset) {
        if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) < 0)
            fail(r, "driver: setsockopt SO_LINGER: %s", strerror(errno));
        r->resets++;
    }
    if (close(c->fd) < 0)
        fail(r, "driver: close: %s", strerror(errno));
    if (c->port != 0 && r->owner[c->v6][c->port] == (int)(c - r->conns) + 1)
        r->owner[c->v6][c->port] = 0;
    if (c->role == ROLE_WELL) {
        r->well_open--;
        if (c->rounds == 0 && !c->joined)
            r->ramp_pending--;
    } else if (c->role >= FIRST_MISBEHAVING && c->role <= ROLE_JUNK) {
        r->mis_open--;
    } else if (c->role == ROLE_BURST) {
        r->burst.open--;
        if (c->connecting)
            r->burst.pending--;
    }
    buf_free(&c->out);
    buf_free(&c->in);
    buf_free(&c->expect);
    c->fd = -1;
    c->role = ROLE_FREE;
}

/* conn_watch - set the epoll interest: readable, writable, or both. */
static void
conn_watch(struct run *r, struct conn *c, bool in, bool out)
{
    struct epoll_event ev = { .events = (in ? EPOLLIN | EPOLLRDHUP : 0u) |
                                        (out ? EPOLLOUT : 0u),
                              .data.u64 = (uint64_t)(c - r->conns) };

    if (c->watch_in == in && c->watch_out == out)
        return;
    if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        report_error(errno, "epoll_ctl MOD fd %d", c->fd);
        exit(1);
    }
    c->watch_in = in;
    c->watch_out = out;
}

/* set_wake - on_timer(c) at `when`. */
static void
set_wake(struct run *r, struct conn *c, int64_t when)
{
    c->wake_us = when;
    if (when < r->next_wake_us)
        r->next_wake_us = when;
}

/* on_connected - the handshake finished (or failed): start the client's
 * part.  A chat client's port lets the observer tell whose line it sees. */
static void
on_connected(struct run *r, struct conn *c, int64_t now)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        if (c->role == ROLE_WELL) {
            well_lost(r, c, "connect", err);
            return;
        }
        fail(r, "%s: a %s client could not connect: %s",
             mode_names[r->mode], role_names[c->role], strerror(err));
        conn_close(r, c, false);
        return;
    }
    c->connecting = false;
    c->start_us = now;

    switch (c->role) {
    case ROLE_WELL:
        if (r->mode == MODE_ECHO)
            echo_start(r, c, now);
        else
            conn_watch(r, c, true, false);  /* sends once it has joined */
        break;
    case ROLE_OBSERVER:
        conn_watch(r, c, true, false);
        r->observer_ready = true;
        break;
    case ROLE_BURST:
        r->burst.pending--;
        conn_watch(r, c, true, false);
        break;
    case ROLE_PROBE:
        if (r->mode == MODE_ECHO) {
            conn_watch(r, c, true, true);
            on_writable(r, c);
        } else if (c->listener) {
            conn_watch(r, c, true, false);
            r->probe_ok = true;         /* connected: now the sender */
        } else {
            char line[64];
            int n = snprintf(line, sizeof line, "probe%llx\n",
                             (unsigned long long)r->probe_key);

            append(&c->out, line, (size_t)n);
            conn_watch(r, c, true, true);
            on_writable(r, c);
        }
        break;
    default:
        mis_begin(r, c, now);
        break;
    }
}

/* on_readable - by role. */
static void
on_readable(struct run *r, struct conn *c, int64_t now)
{
    switch (c->role) {
    case ROLE_WELL:
        if (r->mode == MODE_ECHO)
            echo_readable(r, c, now);
        else
            drain_readable(r, c);
        break;
    case ROLE_OBSERVER:
        observer_readable(r, c, now);
        break;
    case ROLE_BURST:
        burst_readable(r, c);
        break;
    case ROLE_PROBE:
        probe_readable(r, c);
        break;
    case ROLE_FREE:
    case NROLES:
        break;
    default:
        mis_readable(r, c, now);
        break;
    }
}

/* on_writable - send what is pending; stop watching once all is sent.  A
 * half-closing client sends its FIN once its stream is out. */
static void
on_writable(struct run *r, struct conn *c)
{
    int err;

    if (send_pending(r, c, SEND_BURST) < 0) {
        err = errno;
        if (c->role == ROLE_WELL)
            well_lost(r, c, "send", err);
        else if (c->role >= FIRST_MISBEHAVING && c->role <= ROLE_JUNK)
            mis_gone(r, c, strerror(err));
        else {
            fail(r, "%s: send on a %s client: %s", mode_names[r->mode],
                 role_names[c->role], strerror(err));
            conn_close(r, c, false);
        }
        return;
    }
    if (buf_len(&c->out) > 0 || c->sent < c->stream_len)
        return;                 /* the rest when writable again */
    if (c->role == ROLE_HALFCLOSE && !c->shut_wr && c->end_us != INT64_MAX) {
        if (shutdown(c->fd, SHUT_WR) < 0) {
            mis_gone(r, c, strerror(errno));
            return;
        }
        c->shut_wr = true;
    }
    conn_watch(r, c, c->watch_in, false);
}

/* on_timer - the wake-up a client asked for. */
static void
on_timer(struct run *r, struct conn *c, int64_t now)
{
    if (c->role == ROLE_WELL) {
        if (!r->mixing && !r->ramping)
            return;             /* the end: no new round trip or line */
        if (r->mode == MODE_ECHO)
            echo_start(r, c, now);
        else
            chat_send_line(r, c, now);
    } else if (c->role >= FIRST_MISBEHAVING && c->role <= ROLE_JUNK) {
        mis_timer(r, c, now);
    }
}

/*
 * send_pending - c->out first, then the stream up to stream_len, at most
 * `max` bytes, until the socket would block.  Returns 0, or -1 with errno
 * set when the connection is gone.
 */
static int
send_pending(struct run *r, struct conn *c, size_t max)
{
    size_t budget = max;

    if (buf_flush(c->fd, &c->out) < 0)
        return -1;
    if (buf_len(&c->out) > 0)
        return 0;
    for (int i = 0; i < 64 && c->sent < c->stream_len && budget > 0; i++) {
        uint64_t left = c->stream_len - c->sent;
        size_t n = left < RT_MAX ? (size_t)left : RT_MAX;
        ssize_t k;

        n = n < budget ? n : budget;
        stream_bytes(c->key, c->sent, r->sendbuf, n, c->letters);
        k = send(c->fd, r->sendbuf, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        c->sent += (uint64_t)k;
        budget -= (size_t)k;
    }
    if (!c->watch_out && (buf_len(&c->out) > 0 || c->sent < c->stream_len))
        conn_watch(r, c, c->watch_in, true);
    return 0;
}

/* recv_some - one recv(), resumed after EINTR.  Returns as recv() does;
 * -1 with errno EAGAIN means nothing there. */
static ssize_t
recv_some(struct conn *c, void *buf, size_t len)
{
    for (int i = 0; i < 8; i++) {
        ssize_t n = recv(c->fd, buf, len, 0);

        if (n >= 0 || errno != EINTR)
            return n;
    }
    errno = EAGAIN;
    return -1;
}

/* check_stream - are the n bytes just received in r->recvbuf the stream's
 * bytes at c->recvd?  On a difference, *bad_at is its offset. */
static bool
check_stream(struct run *r, struct conn *c, size_t n, uint64_t *bad_at)
{
    stream_bytes(c->key, c->recvd, r->cmpbuf, n, c->letters);
    if (memcmp(r->cmpbuf, r->recvbuf, n) == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (r->cmpbuf[i] != r->recvbuf[i]) {
            *bad_at = c->recvd + i;
            break;
        }
    return false;
}

/* well_lost - a well-behaved client's connection failed: a failure of the
 * run, named with what the client was doing. */
static void
well_lost(struct run *r, struct conn *c, const char *what, int err)
{
    fail(r, "%s: well-behaved client %ld: %s: %s (after %llu %s)",
         mode_names[r->mode], c->serial, what,
         err ? strerror(err) : "the server closed the connection",
         (unsigned long long)c->rounds,
         r->mode == MODE_ECHO ? "round trips" : "lines");
    conn_close(r, c, false);
}

/* ------------------------------------------------------------------ */
/* Echo: round trips                                                   */
/* ------------------------------------------------------------------ */

/* echo_start - the next round trip: 1 B to 64 KiB of the client's own
 * random bytes, sized log-uniformly (each power of two as likely). */
static void
echo_start(struct run *r, struct conn *c, int64_t now)
{
    c->key = rng_next(&c->rng);
    c->stream_len = rng_size(&c->rng, RT_MAX);
    c->sent = c->recvd = 0;
    c->start_us = now;
    c->busy = true;
    conn_watch(r, c, true, true);
    on_writable(r, c);
}

/*
 * echo_readable - the echo must be exactly the bytes sent, no more.  The
 * round trip ends with its last byte; the next one starts after a random
 * pause that keeps all clients together near RT_RATE round trips a second.
 */
static void
echo_readable(struct run *r, struct conn *c, int64_t now)
{
    char seen[80];
    uint64_t bad = 0;
    int64_t think;
    ssize_t n = recv_some(c, r->recvbuf, RT_MAX);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        well_lost(r, c, "receive", n < 0 ? errno : 0);
        return;
    }
    if (!c->busy || c->recvd + (uint64_t)n > c->stream_len) {
        fail(r, "echo: well-behaved client %ld received bytes it never sent"
             " ('%s', after %llu of %llu)", c->serial,
             shown(r->recvbuf, (size_t)n, seen, sizeof seen),
             (unsigned long long)c->recvd,
             (unsigned long long)c->stream_len);
        conn_close(r, c, false);
        return;
    }
    if (!check_stream(r, c, (size_t)n, &bad)) {
        fail(r, "echo: well-behaved client %ld, round trip %llu: byte %llu"
             " of %llu differs ('%s')", c->serial,
             (unsigned long long)c->rounds, (unsigned long long)bad,
             (unsigned long long)c->stream_len,
             shown(r->recvbuf + (bad - c->recvd),
                   (size_t)(c->recvd + (uint64_t)n - bad), seen,
                   sizeof seen));
        conn_close(r, c, false);
        return;
    }
    c->recvd += (uint64_t)n;
    if (c->recvd < c->stream_len)
        return;

    record_latency(&r->echo_lat, now - c->start_us);
    r->round_trips++;
    r->bytes += 2 * c->stream_len;
    c->busy = false;
    if (c->rounds++ == 0) {
        r->ramp_pending--;
        r->well_ready++;
    }
    think = (int64_t)r->wanted_well * 2000000 / RT_RATE;
    set_wake(r, c, now + rng_range(&c->rng, 0, think));
}

/* ------------------------------------------------------------------ */
/* Chat: tagged lines and the observer                                 */
/* ------------------------------------------------------------------ */

/*
 * chat_send_line - "wbN.SEQ PAYLOAD\n".  What the observer must then see
 * after the server's "[fd N PEER] " is queued in c->expect, escaped the
 * way the server escapes.  At most CHAT_WINDOW lines may be unseen.
 */
static void
chat_send_line(struct run *r, struct conn *c, int64_t now)
{
    struct buffer raw = { 0 }, esc = { 0 };
    char tag[48];
    int n;
    int64_t think = (int64_t)r->chat_senders * 2000000 / CHAT_LINE_RATE;

    if (c->seq_sent - c->seq_seen >= CHAT_WINDOW) {
        set_wake(r, c, now + 10000);
        return;
    }
    n = snprintf(tag, sizeof tag, "wb%ld.%llu ", c->serial,
                 (unsigned long long)c->seq_sent);
    append(&raw, tag, (size_t)n);
    append(&esc, tag, (size_t)n);
    chat_payload(&c->rng, &raw, &esc);
    append(&raw, "\n", 1);
    append(&esc, "\n", 1);
    append(&c->out, raw.data + raw.start, buf_len(&raw));
    append(&c->expect, esc.data + esc.start, buf_len(&esc));
    buf_free(&raw);
    buf_free(&esc);
    c->sent_us[c->seq_sent % CHAT_WINDOW] = now;
    c->seq_sent++;
    on_writable(r, c);
    if (c->fd >= 0)
        set_wake(r, c, now + rng_range(&c->rng, 0, think));
}

/*
 * chat_payload - 0-60 random pieces: mostly printable ASCII, some tabs,
 * controls and DEL, valid UTF-8 (passed through), C1 controls, bytes that
 * cannot start UTF-8 and truncated sequences (all escaped as \xHH), and at
 * times a trailing CR (dropped by the server).  Each piece is appended to
 * raw as sent and to esc as select_server's escape_text() writes it.
 */
static void
chat_payload(struct rng *g, struct buffer *raw, struct buffer *esc)
{
    static const char *const utf8[] = {
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xd0\x96",
        "\xc2\xa9",
    };
    static const unsigned char lone[] = { 0x80, 0x9f, 0xbf, 0xc0, 0xc1,
                                          0xf5, 0xfe, 0xff };
    static const char hex[] = "0123456789abcdef";
    long pieces = rng_range(g, 0, 60);

    for (long i = 0; i < pieces; i++) {
        unsigned k = (unsigned)rng_below(g, 100);
        unsigned char b[2];
        char e[16];
        const char *s;

        if (k <= 80) {                  /* printable ASCII, or a tab */
            b[0] = k == 80 ? '\t' : (unsigned char)rng_range(g, 0x20, 0x7e);
            append(raw, b, 1);
            append(esc, b, 1);
        } else if (k < 93) {            /* valid UTF-8: unchanged */
            s = utf8[rng_below(g, sizeof utf8 / sizeof *utf8)];
            append(raw, s, strlen(s));
            append(esc, s, strlen(s));
        } else if (k < 95) {            /* a C1 control, U+0080-U+009F */
            b[0] = 0xc2;
            b[1] = (unsigned char)rng_range(g, 0x80, 0x9f);
            snprintf(e, sizeof e, "\\xc2\\x%c%c", hex[b[1] >> 4],
                     hex[b[1] & 15]);
            append(raw, b, 2);
            append(esc, e, strlen(e));
        } else if (k < 99) {            /* a C0 control or DEL (not \t \n
                                         * \r), or a byte that never
                                         * starts UTF-8 */
            b[0] = k < 97 ? (unsigned char)rng_range(g, 0, 0x1f)
                          : lone[rng_below(g, sizeof lone)];
            if (b[0] == '\t' || b[0] == '\n' || b[0] == '\r')
                b[0] = 0x7f;
            snprintf(e, sizeof e, "\\x%c%c", hex[b[0] >> 4], hex[b[0] & 15]);
            append(raw, b, 1);
            append(esc, e, strlen(e));
        } else {                        /* a lead byte cut short */
            b[0] = (unsigned char)rng_range(g, 0xc2, 0xf4);
            b[1] = 'x';
            snprintf(e, sizeof e, "\\x%c%cx", hex[b[0] >> 4],
                     hex[b[0] & 15]);
            append(raw, b, 2);
            append(esc, e, strlen(e));
        }
    }
    if (rng_below(g, 10) == 0)
        append(raw, "\r", 1);
}

/* drain_readable - a chat sender reads (and ignores) everything others
 * say: a reader that falls behind would be dropped as a slow consumer. */
static void
drain_readable(struct run *r, struct conn *c)
{
    for (int i = 0; i < 4; i++) {
        ssize_t n = recv_some(c, r->recvbuf, RT_MAX);

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            well_lost(r, c, "receive", n < 0 ? errno : 0);
            return;
        }
        if ((size_t)n < RT_MAX)
            return;
    }
}

/* observer_readable - split what arrives into lines and check each. */
static void
observer_readable(struct run *r, struct conn *c, int64_t now)
{
    ssize_t n = recv_some(c, r->recvbuf, RT_MAX);
    char *line, *nl;

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        fail(r, "chat: the observer lost its connection: %s",
             n < 0 ? strerror(errno) : "the server closed it");
        conn_close(r, c, false);
        r->observer = -1;
        return;
    }
    append(&c->in, r->recvbuf, (size_t)n);
    for (long i = 0; i < n + 1 && buf_len(&c->in) > 0; i++) {
        line = c->in.data + c->in.start;
        if ((nl = memchr(line, '\n', buf_len(&c->in))) == NULL)
            break;
        observer_line(r, line, (size_t)(nl - line), now);
        buf_consume(&c->in, (size_t)(nl - line) + 1);
    }
    if (buf_len(&c->in) > 4 * SRV_MAX_LINE + 1024) {
        fail(r, "chat: the observer got a line over %d bytes",
             4 * SRV_MAX_LINE + 1024);
        buf_free(&c->in);
    }
}

/*
 * observer_line - one line the server relayed.  "[fd N PEER] TEXT" from a
 * well-behaved sender must be the next line that sender sent, from the fd
 * its join notice named; "*** fd N PEER joined" tells a sender it may
 * start; "*** server: " lines count the console's says.  Anything else
 * (misbehaving clients' lines, other notices) is allowed.
 */
static void
observer_line(struct run *r, const char *line, size_t len, int64_t now)
{
    static const char joined[] = " joined (";
    char want[80], got[80], num[16];
    const char *p, *end = line + len, *peer, *text;
    struct conn *c;
    long fd;
    size_t elen;

    if (len >= 12 && memcmp(line, "*** server: ", 12) == 0) {
        r->con.says_seen++;
        return;
    }
    if (len > 7 && memcmp(line, "*** fd ", 7) == 0) {
        p = memchr(line + 7, ' ', len - 7);
        for (peer = p ? p + 1 : end, text = peer; text + 9 <= end; text++)
            if (memcmp(text, joined, sizeof joined - 1) == 0)
                break;
        if (p == NULL || text + 9 > end || (size_t)(p - line - 7) >= 16)
            goto other;
        memcpy(num, line + 7, (size_t)(p - line - 7));
        num[p - line - 7] = '\0';
        c = peer_owner(r, peer, (size_t)(text - peer));
        if (c != NULL && c->role >= FIRST_MISBEHAVING &&
            c->role <= ROLE_JUNK)
            c->joined = true;   /* accepted: see room_for_misbehaver() */
        if (c == NULL || c->role != ROLE_WELL || c->joined ||
            parse_long(num, 0, 1 << 20, &fd) < 0)
            goto other;
        c->joined = true;
        c->srv_fd = (int)fd;
        r->ramp_pending--;
        r->well_ready++;
        set_wake(r, c, now);
        return;
    }
    if (len < 5 || memcmp(line, "[fd ", 4) != 0)
        goto other;
    p = memchr(line + 4, ' ', len - 4);
    for (peer = p ? p + 1 : end, text = peer; text + 2 <= end; text++)
        if (text[0] == ']' && text[1] == ' ')
            break;
    if (p == NULL || text + 2 > end || (size_t)(p - line - 4) >= 16)
        goto other;
    memcpy(num, line + 4, (size_t)(p - line - 4));
    num[p - line - 4] = '\0';
    c = peer_owner(r, peer, (size_t)(text - peer));
    if (c == NULL || c->role != ROLE_WELL)
        goto other;
    text += 2;
    if (parse_long(num, 0, 1 << 20, &fd) < 0 || !c->joined ||
        fd != c->srv_fd) {
        fail(r, "chat: a line from well-behaved client %ld came from fd %s,"
             " its join notice said fd %d", c->serial, num, c->srv_fd);
        return;
    }
    p = buf_len(&c->expect) > 0
        ? memchr(c->expect.data + c->expect.start, '\n', buf_len(&c->expect))
        : NULL;
    elen = p ? (size_t)(p - (c->expect.data + c->expect.start)) : 0;
    if (p == NULL || elen != (size_t)(end - text) ||
        memcmp(text, c->expect.data + c->expect.start, elen) != 0) {
        const char *e = p ? c->expect.data + c->expect.start : "";
        size_t d = 0, from;

        while (d < elen && d < (size_t)(end - text) && e[d] == text[d])
            d++;                /* the first difference */
        from = d > 24 ? d - 24 : 0;
        fail(r, "chat: well-behaved client %ld: the observer expected '%s',"
             " got '%s' (bytes from %zu; they differ at byte %zu)",
             c->serial, shown(e + from, elen - from, want, sizeof want),
             shown(text + from, (size_t)(end - text) - from, got,
                   sizeof got), from, d);
        conn_close(r, c, false);
        return;
    }
    buf_consume(&c->expect, elen + 1);
    record_latency(&r->chat_lat, now - c->sent_us[c->seq_seen % CHAT_WINDOW]);
    c->seq_seen++;
    c->rounds++;
    r->chat_lines++;
    r->bytes += elen + 1;
    return;
other:
    r->other_lines++;
}

/* peer_owner - the connection with this peer address as the server prints
 * it: "[::ffff:127.0.0.1]:PORT", "127.0.0.1:PORT" or "[::1]:PORT". */
static struct conn *
peer_owner(struct run *r, const char *peer, size_t len)
{
    static const char *const forms[] = { "[::ffff:127.0.0.1]:", "127.0.0.1:",
                                         "[::1]:" };
    char num[8];
    long port;

    for (int f = 0; f < 3; f++) {
        size_t flen = strlen(forms[f]);
        int owner;

        if (len <= flen || len - flen >= sizeof num ||
            memcmp(peer, forms[f], flen) != 0)
            continue;
        memcpy(num, peer + flen, len - flen);
        num[len - flen] = '\0';
        if (parse_long(num, 1, 65535, &port) < 0)
            return NULL;
        owner = r->owner[f == 2][port];
        return owner > 0 ? &r->conns[owner - 1] : NULL;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Misbehaving clients                                                 */
/* ------------------------------------------------------------------ */

/* start_misbehaver - the next misbehaving client, of a kind the schedule
 * picks; its own choices come from its own stream. */
static void
start_misbehaver(struct run *r, int64_t now)
{
    enum role role = (enum role)(FIRST_MISBEHAVING +
                                 (int)rng_below(&r->sched, NMISBEHAVING));
    struct rng g = rng_derive(r->opt.seed, (uint64_t)r->phase * 16 + 6,
                              (uint64_t)r->mis_serial);

    (void)now;
    if (conn_open(r, role, r->mis_serial, g) != NULL)
        r->mis_open++;
    r->mis_serial++;
}

/*
 * mis_begin - connected.  In echo, a first byte and its echo show that the
 * server has accepted us (in chat, the observer sees us join); until then
 * we count as a client that may still be waiting to be accepted (see
 * room_for_misbehaver).  Then the misbehaviour.
 */
static void
mis_begin(struct run *r, struct conn *c, int64_t now)
{
    c->key = rng_next(&c->rng);
    c->letters = c->role == ROLE_HALFLINE ||
                 (c->role == ROLE_FLOOD && r->mode == MODE_CHAT);
    if (r->mode == MODE_CHAT) {
        mis_behave(r, c, now);
        return;
    }
    c->stream_len = 1;
    conn_watch(r, c, true, true);
    on_writable(r, c);
}

/*
 * mis_behave - start misbehaving, for 0.1-3 s.  Echo clients send random
 * binary streams and check whatever echo they read; chat clients send
 * lines (or an endless one) that the observer counts as "other".
 */
static void
mis_behave(struct run *r, struct conn *c, int64_t now)
{
    bool echo = r->mode == MODE_ECHO;

    c->end_us = now + rng_range(&c->rng, 100, 3000) * 1000;
    switch (c->role) {
    case ROLE_NOREAD:           /* echo: flat out; chat: a line now and then */
        c->stream_len = echo ? UINT64_MAX : 0;
        conn_watch(r, c, false, true);
        break;
    case ROLE_HALFLINE:         /* text without its newline, then nothing */
        c->stream_len = c->sent + (uint64_t)rng_range(&c->rng, 1,
                                                      SRV_MAX_LINE - 2);
        conn_watch(r, c, false, true);
        break;
    case ROLE_FLOOD:            /* flat out; chat: one endless line */
        c->stream_len = UINT64_MAX;
        c->reads = rng_below(&c->rng, 4) != 0;
        conn_watch(r, c, false, true);
        break;
    case ROLE_RESET:            /* pieces now and then, reading; then RST */
    case ROLE_JUNK:             /* random bytes now and then, reading */
        conn_watch(r, c, true, false);
        break;
    case ROLE_HALFCLOSE:        /* all at once, FIN, the echo to EOF */
        c->end_us = now + 5000000;
        if (echo) {
            c->stream_len = c->sent + rng_size(&c->rng, HALFCLOSE_MAX);
        } else {
            for (long i = rng_range(&c->rng, 1, 3); i > 0; i--)
                mis_append_line(c, "hc");
        }
        conn_watch(r, c, true, true);
        break;
    default:
        break;
    }
    on_writable(r, c);
    if (c->fd >= 0)
        set_wake(r, c, now + rng_range(&c->rng, 5, 100) * 1000);
}

/* mis_timer - time to leave, or the next piece of misbehaviour. */
static void
mis_timer(struct run *r, struct conn *c, int64_t now)
{
    bool echo = r->mode == MODE_ECHO;
    int64_t next = 0;
    ssize_t n;
    uint64_t bad;

    if (now >= c->end_us) {
        if (c->role == ROLE_HALFCLOSE) {
            fail(r, "%s: a half-closed client got %llu of %llu echoed bytes"
                 " and no EOF in 5 s", mode_names[r->mode],
                 (unsigned long long)c->recvd,
                 (unsigned long long)c->stream_len);
            conn_close(r, c, false);
            return;
        }
        conn_close(r, c, c->role == ROLE_RESET);
        return;
    }
    switch (c->role) {
    case ROLE_NOREAD:
        if (!echo) {
            mis_append_line(c, "nr");
            next = rng_range(&c->rng, 100, 400);
        }
        break;
    case ROLE_FLOOD:            /* the slow read */
        if (!c->reads)
            break;
        n = recv_some(c, r->recvbuf, FLOOD_READ);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            mis_gone(r, c, n == 0 ? "EOF" : strerror(errno));
            return;
        }
        if (n > 0 && echo && !check_stream(r, c, (size_t)n, &bad)) {
            fail(r, "echo: a flooding client's echo differs at byte %llu",
                 (unsigned long long)bad);
            conn_close(r, c, false);
            return;
        }
        if (n > 0)
            c->recvd += (uint64_t)n;
        next = rng_range(&c->rng, 20, 100);
        break;
    case ROLE_RESET:
        if (echo)
            c->stream_len += (uint64_t)rng_range(&c->rng, 1, 16384);
        else
            mis_append_line(c, "rs");
        next = echo ? rng_range(&c->rng, 5, 100) : rng_range(&c->rng, 100,
                                                              400);
        break;
    case ROLE_JUNK:
        if (echo) {
            c->stream_len += (uint64_t)rng_range(&c->rng, 1, 2000);
            next = rng_range(&c->rng, 5, 100);
        } else {                /* relayed, escaped, to everyone: go easy */
            size_t len = (size_t)rng_range(&c->rng, 10, 300);

            stream_bytes(c->key, c->sent, r->sendbuf, len, false);
            c->sent += len;
            append(&c->out, r->sendbuf, len);
            next = rng_range(&c->rng, 100, 400);
        }
        break;
    default:
        break;
    }
    if (buf_len(&c->out) > 0 || c->sent < c->stream_len)
        on_writable(r, c);
    if (c->fd >= 0)
        set_wake(r, c, next > 0 && now + next * 1000 < c->end_us
                       ? now + next * 1000 : c->end_us);
}

/* mis_readable - what comes back to a misbehaving client that reads.  In
 * echo it is checked against the stream it sent; a half-closed client's
 * EOF after the whole echo is its success. */
static void
mis_readable(struct run *r, struct conn *c, int64_t now)
{
    uint64_t bad = 0;
    ssize_t n;

    if (!c->watch_in) {         /* a never-reader: only errors wake it */
        int err = 0;
        socklen_t len = sizeof err;

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        mis_gone(r, c, err ? strerror(err) : "hang-up");
        return;
    }
    n = recv_some(c, r->recvbuf, RT_MAX);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n == 0 && c->role == ROLE_HALFCLOSE && c->shut_wr &&
        (r->mode == MODE_CHAT || c->recvd == c->stream_len)) {
        r->halfclose_ok++;
        conn_close(r, c, false);
        return;
    }
    if (n <= 0) {
        mis_gone(r, c, n == 0 ? "EOF" : strerror(errno));
        return;
    }
    if (r->mode == MODE_CHAT)
        return;                 /* other people's lines: ignored */
    if (c->recvd + (uint64_t)n > c->sent ||
        !check_stream(r, c, (size_t)n, &bad)) {
        char seen[80];

        fail(r, "echo: a %s client's echo differs at byte %llu ('%s')",
             role_names[c->role], (unsigned long long)bad,
             shown(r->recvbuf, (size_t)n, seen, sizeof seen));
        conn_close(r, c, false);
        return;
    }
    c->recvd += (uint64_t)n;
    if (!c->joined) {           /* the first byte is back: accepted */
        c->joined = true;
        mis_behave(r, c, now);
    }
}

/*
 * mis_gone - the server closed (or reset) a misbehaving client.  An echo
 * server has no reason to: it must throttle, not drop.  A chat server drops
 * a reader CHAT_MAX_PENDING behind, which a client that reads slowly or
 * never may become; one that reads promptly must not be dropped.
 */
static void
mis_gone(struct run *r, struct conn *c, const char *how)
{
    if (r->mode == MODE_CHAT &&
        (c->role == ROLE_NOREAD || c->role == ROLE_HALFLINE ||
         c->role == ROLE_FLOOD)) {
        r->dropped++;
    } else {
        fail(r, "%s: the server closed a %s client (%s) after it sent %llu"
             " bytes and read %llu", mode_names[r->mode],
             role_names[c->role], how, (unsigned long long)c->sent,
             (unsigned long long)c->recvd);
    }
    conn_close(r, c, false);
}

/* mis_append_line - a chat line of letters, "TAGserial.k ...", queued. */
static void
mis_append_line(struct conn *c, const char *tag)
{
    unsigned char text[128];
    char head[48];
    size_t len = (size_t)rng_range(&c->rng, 1, sizeof text - 1);
    int n = snprintf(head, sizeof head, "%s%ld.%llu ", tag, c->serial,
                     (unsigned long long)c->rounds++);

    stream_bytes(rng_next(&c->rng), 0, text, len, true);
    text[len] = '\n';
    append(&c->out, head, (size_t)n);
    append(&c->out, text, len + 1);
}

/* ------------------------------------------------------------------ */
/* Bursts beyond the limit, and the probe                              */
/* ------------------------------------------------------------------ */

/*
 * burst_begin - open the slots the server has left beyond the well-behaved
 * clients, and 2-12 more.  While we hold every burst connection it
 * accepted, it can accept at most that many, so at least the extra ones
 * must be refused: "server full", then EOF.  No misbehaving client starts
 * meanwhile (it could be refused too).
 */
static void
burst_begin(struct run *r, int64_t now)
{
    long extra = rng_range(&r->bursts_rng, 2, 12);
    long room = r->max_clients - r->well_open - (r->observer >= 0);

    r->burst = (struct burst){ .active = true, .total = room + extra,
                               .want = extra,
                               .deadline_us = now + BURST_US };
    r->bursts++;
    burst_tick(r, now);
}

/* burst_tick - a few handshakes at a time; done once the extra ones have
 * been refused, failed if not by the deadline. */
static void
burst_tick(struct run *r, int64_t now)
{
    for (int i = 0; i < RAMP_PENDING && r->burst.opened < r->burst.total &&
                    r->burst.pending < RAMP_PENDING; i++) {
        struct rng g = rng_derive(r->opt.seed, (uint64_t)r->phase * 16 + 7,
                                  (uint64_t)(r->bursts * 4096 +
                                             r->burst.opened));

        if (conn_open(r, ROLE_BURST, r->burst.opened, g) == NULL) {
            burst_end(r);
            return;
        }
        r->burst.opened++;
        r->burst.open++;
        r->burst.pending++;
    }
    if (r->burst.opened == r->burst.total && r->burst.pending == 0 &&
        r->burst.refused >= r->burst.want) {
        burst_end(r);
    } else if (now >= r->burst.deadline_us) {
        fail(r, "%s: burst %ld: %ld of %ld connections beyond --max-clients"
             " %ld got 'server full' in %.0f s (at least %ld should)",
             mode_names[r->mode], r->bursts, r->burst.refused,
             r->burst.total, r->max_clients, (double)BURST_US / 1e6,
             r->burst.want);
        burst_end(r);
    }
}

/* burst_readable - a refused connection gets exactly "server full\n" and
 * EOF; an accepted one hears nothing (echo) or chat traffic, and we hold
 * it until the burst ends. */
static void
burst_readable(struct run *r, struct conn *c)
{
    static const char full[] = "server full\n";
    char seen[80];
    ssize_t n = recv_some(c, r->recvbuf, RT_MAX);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n > 0) {
        if (buf_len(&c->in) < 64)
            append(&c->in, r->recvbuf, (size_t)n);
        return;
    }
    if (n == 0 && buf_len(&c->in) == sizeof full - 1 &&
        memcmp(c->in.data + c->in.start, full, sizeof full - 1) == 0) {
        r->burst.refused++;
        r->refused++;
    } else {
        fail(r, "%s: a connection beyond the limit ended with %s after '%s'"
             " (expected 'server full' and EOF)", mode_names[r->mode],
             n == 0 ? "EOF" : strerror(errno),
             shown(c->in.data + c->in.start, buf_len(&c->in), seen,
                   sizeof seen));
    }
    conn_close(r, c, false);
}

/* burst_end - close what is left of the burst: the accepted ones. */
static void
burst_end(struct run *r)
{
    for (int i = 0; i < r->nconns; i++)
        if (r->conns[i].fd >= 0 && r->conns[i].role == ROLE_BURST)
            conn_close(r, &r->conns[i], false);
    r->burst.active = false;
    r->burst_next_us = now_us() + rng_range(&r->bursts_rng, 3000, 8000) *
                                  1000;
}

/* probe_readable - echo: the bytes must be the probe's own; chat: the
 * listener waits for the sender's line, after the server's prefix. */
static void
probe_readable(struct run *r, struct conn *c)
{
    char want[40];
    uint64_t bad;
    ssize_t n = recv_some(c, r->recvbuf, RT_MAX);

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        fail(r, "%s: the fresh client's connection ended: %s",
             mode_names[r->mode], n == 0 ? "EOF" : strerror(errno));
        conn_close(r, c, false);
        return;
    }
    if (r->mode == MODE_ECHO) {
        if (c->recvd + (uint64_t)n > c->stream_len ||
            !check_stream(r, c, (size_t)n, &bad)) {
            fail(r, "echo: the fresh client's echo is not what it sent");
            conn_close(r, c, false);
            return;
        }
        c->recvd += (uint64_t)n;
        r->probe_ok = c->recvd == c->stream_len;
        return;
    }
    if (!c->listener)
        return;
    append(&c->in, r->recvbuf, (size_t)n);
    snprintf(want, sizeof want, "] probe%llx\n",
             (unsigned long long)r->probe_key);
    for (size_t i = c->in.start; i + strlen(want) <= c->in.end; i++)
        if (memcmp(c->in.data + i, want, strlen(want)) == 0)
            r->probe_ok = true;
    if (buf_len(&c->in) > 65536)
        buf_consume(&c->in, buf_len(&c->in) - 64);
}

/* ------------------------------------------------------------------ */
/* The console                                                         */
/* ------------------------------------------------------------------ */

/* console_tick - a due follow-up, else the next event, then write. */
static void
console_tick(struct run *r, int64_t now)
{
    struct console *k = &r->con;

    if (k->follow_us != INT64_MAX && now >= k->follow_us) {
        append(&k->out, k->follow.data + k->follow.start,
                       buf_len(&k->follow));
        buf_free(&k->follow);
        if (k->follow_expects) {
            if (k->count < EXPECT_MAX)
                k->expect[(k->head + k->count++) % EXPECT_MAX] =
                    k->follow_exp;
        }
        k->follow_us = INT64_MAX;
        k->follow_expects = false;
        k->paused = false;
        r->console_lines++;
    }
    if (k->active && k->follow_us == INT64_MAX && now >= k->next_us &&
        k->count < EXPECT_MAX - 4) {
        console_event(r, now);
        k->next_us = now + rng_range(&k->rng, 20, 300) * 1000;
    }
    console_flush(r);
}

/*
 * console_event - one thing typed at the console, picked at random:
 * binary junk, an over-long line, an unknown command, a known command with
 * a wrong argument, a harmless valid command, "pause" then "resume", "trace
 * on" then "off", or a line that arrives in two parts.  Every line whose
 * answer is an error line on stderr queues the line it must be.
 */
static void
console_event(struct run *r, int64_t now)
{
    /* Wrong arguments, and what the server must say (kick: only fds no
     * client can have: stdio, out of range, not a number). */
#define TRACE_EXPECTED "trace: expected 'on' or 'off' (usage: trace on|off)"
    static const char *const wrong[][2] = {
        { "help me", "help: takes no argument (usage: help)" },
        { "list all", "list: takes no argument (usage: list)" },
        { "stats 1", "stats: takes no argument (usage: stats)" },
        { "conns\tx", "conns: takes no argument (usage: conns)" },
        { "pause 5", "pause: takes no argument (usage: pause)" },
        { "resume now", "resume: takes no argument (usage: resume)" },
        { "kick", "kick: missing FD (usage: kick FD)" },
        { "kick   ", "kick: missing FD (usage: kick FD)" },
        { "say", "say: missing TEXT (usage: say TEXT)" },
        { "say \t ", "say: missing TEXT (usage: say TEXT)" },
        { "trace", "trace: missing on|off (usage: trace on|off)" },
        { "trace maybe", TRACE_EXPECTED },
        { "trace ON", TRACE_EXPECTED },
        { "trace on off", TRACE_EXPECTED },
        { "kick 5000", "kick: no client on fd '5000' (see 'list')" },
        { "kick -1", "kick: no client on fd '-1' (see 'list')" },
        { "kick 1024", "kick: no client on fd '1024' (see 'list')" },
        { "kick abc", "kick: no client on fd 'abc' (see 'list')" },
        { "kick +5", "kick: no client on fd '+5' (see 'list')" },
        { "kick 0", "kick: no client on fd '0' (see 'list')" },
        { "kick 2 ", "kick: no client on fd '2' (see 'list')" },
        { "kick 99999999999999999999",
          "kick: no client on fd '99999999999999999999' (see 'list')" },
    };
    static const char *const valid[] = {
        "help", "list", "stats", "conns", "  stats \r", "\tlist", "",
        "stats\r",
    };
    static const char *const commands[] = {
        "help", "list", "stats", "conns", "kick", "say", "pause", "resume",
        "trace", "quit",
    };
    static const struct expectation too_long = {
        .text = "console: line too long (over " STR(SRV_CONSOLE_MAX_LINE)
                " bytes): ignored" };
    struct console *k = &r->con;
    struct expectation e = { .any_unknown = false };
    struct buffer b = { 0 };
    unsigned pick = (unsigned)rng_below(&k->rng, 100);
    char word[16], text[128];
    size_t len, cut;

    if (pick < 24) {                    /* binary junk: unknown command */
        len = (size_t)rng_size(&k->rng, 300);
        console_junk(&k->rng, &b, len);
        e.any_unknown = true;
        console_line(r, b.data + b.start, buf_len(&b), &e);
    } else if (pick < 30) {             /* long: 1024 is fine, 1025 not */
        len = (size_t)rng_range(&k->rng, SRV_CONSOLE_MAX_LINE - 2,
                                SRV_CONSOLE_MAX_LINE + 2);
        if (rng_below(&k->rng, 2) == 0)
            len = (size_t)rng_range(&k->rng, SRV_CONSOLE_MAX_LINE + 1, 6000);
        console_junk(&k->rng, &b, len);
        if (len > SRV_CONSOLE_MAX_LINE)
            e = too_long;
        else
            e.any_unknown = true;
        console_line(r, b.data + b.start, buf_len(&b), &e);
    } else if (pick < 42) {             /* a word that is no command */
        snprintf(word, sizeof word, "zz");
        for (int tries = 0; tries < 8; tries++) {
            bool command = false;

            len = (size_t)rng_range(&k->rng, 1, sizeof word - 1);
            for (size_t i = 0; i < len; i++)
                text[i] = (char)rng_range(&k->rng, 'a', 'z');
            text[len] = '\0';
            for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
                command |= strcmp(text, commands[i]) == 0;
            if (!command) {
                memcpy(word, text, len + 1);
                break;
            }
        }
        snprintf(e.text, sizeof e.text, "unknown command '%s' (type 'help'"
                 " for the list)", word);
        snprintf(text, sizeof text, "%s%s", word,
                 rng_below(&k->rng, 2) ? " some args" : "");
        console_line(r, text, strlen(text), &e);
    } else if (pick < 62) {             /* a wrong argument */
        const char *const *w = wrong[rng_below(&k->rng,
                                               sizeof wrong / sizeof *wrong)];

        snprintf(e.text, sizeof e.text, "%s", w[1]);
        console_line(r, w[0], strlen(w[0]), &e);
    } else if (pick < 88) {             /* harmless and valid */
        const char *v = valid[rng_below(&k->rng,
                                        sizeof valid / sizeof *valid)];

        /* "say" only in chat: in echo its line would join every echo. */
        if (r->mode == MODE_CHAT && rng_below(&k->rng, 3) == 0) {
            len = (size_t)rng_range(&k->rng, 1, 100);
            memcpy(text, "say ", 4);
            stream_bytes(rng_next(&k->rng), 0, (unsigned char *)text + 4,
                         len, true);
            k->says++;
            console_line(r, text, len + 4, NULL);
        } else {
            console_line(r, v, strlen(v), NULL);
        }
    } else if (pick < 93) {             /* pause, and soon resume */
        int64_t pause_us = rng_range(&k->rng, 20, 300) * 1000;

        if (r->burst.active) {          /* it would delay the refusals */
            console_line(r, "stats", 5, NULL);
            return;
        }
        console_line(r, "pause", 5, NULL);
        k->paused = true;
        append(&k->follow, "resume\n", 7);
        k->follow_us = now + pause_us;
    } else if (pick < 95) {             /* trace, briefly: it is verbose */
        console_line(r, "trace on", 8, NULL);
        append(&k->follow, "trace off\n", 10);
        k->follow_us = now + rng_range(&k->rng, 5, 50) * 1000;
    } else {                            /* a line in two parts */
        if (rng_below(&k->rng, 2) == 0) {
            append(&b, "stats", 5);
            k->follow_expects = false;
        } else {
            console_junk(&k->rng, &b, rng_size(&k->rng, 3000));
            k->follow_expects = true;
            k->follow_exp = (struct expectation){ .any_unknown = true };
            if (buf_len(&b) > SRV_CONSOLE_MAX_LINE)
                k->follow_exp = too_long;
        }
        len = buf_len(&b);
        cut = (size_t)rng_range(&k->rng, 1, (int64_t)len);
        append(&k->out, b.data + b.start, cut);
        append(&k->follow, b.data + b.start + cut, len - cut);
        append(&k->follow, "\n", 1);
        k->follow_us = now + rng_range(&k->rng, 50, 800) * 1000;
    }
    buf_free(&b);
}

/* console_line - queue one line (a newline is added) and, if it should
 * make the server complain, what the complaint must be. */
static void
console_line(struct run *r, const void *line, size_t len,
             const struct expectation *exp)
{
    struct console *k = &r->con;

    append(&k->out, line, len);
    append(&k->out, "\n", 1);
    if (exp != NULL && k->count < EXPECT_MAX)
        k->expect[(k->head + k->count++) % EXPECT_MAX] = *exp;
    r->console_lines++;
}

/*
 * console_junk - len random bytes, never a newline, with NULs now and
 * then.  The first is never a blank or a lower-case letter, so the line can
 * only be an unknown command (or too long).
 */
static void
console_junk(struct rng *g, struct buffer *b, size_t len)
{
    unsigned char *p;

    len = len > 0 ? len : 1;
    if ((p = (unsigned char *)buf_reserve(b, len)) == NULL) {
        report_error(ENOMEM, "console junk");
        exit(1);
    }
    stream_bytes(rng_next(g), 0, p, len, false);
    for (size_t i = 1; i < len; i++)
        if (p[i] == '\n' || rng_below(g, 64) == 0)
            p[i] = i % 2 ? '\0' : ' ';
    /* The blanks the server skips and the letters commands begin with are
     * all below 0x80. */
    if (p[0] == ' ' || p[0] == '\t' || p[0] == '\r' || p[0] == '\n' ||
        (p[0] >= 'a' && p[0] <= 'z'))
        p[0] |= 0x80;
    b->end += len;
}

/* console_flush - write what the server's stdin will take; the rest when
 * the pipe is writable again. */
static void
console_flush(struct run *r)
{
    struct console *k = &r->con;
    struct epoll_event ev = { .events = EPOLLOUT, .data.u64 = TAG_STDIN };
    bool want;

    if (r->srv.in_fd < 0) {
        buf_free(&k->out);
        return;
    }
    for (int i = 0; i < 64 && buf_len(&k->out) > 0; i++) {
        ssize_t n = write(r->srv.in_fd, k->out.data + k->out.start,
                          buf_len(&k->out));

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                if (!r->srv.expect_exit)
                    fail(r, "%s: writing to the server's console: %s",
                         mode_names[r->mode], strerror(errno));
                buf_free(&k->out);
            }
            break;
        }
        buf_consume(&k->out, (size_t)n);
    }
    want = buf_len(&k->out) > 0;
    if (want != r->srv.in_watch) {
        if (epoll_ctl(r->epfd, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL,
                      r->srv.in_fd, &ev) < 0) {
            report_error(errno, "epoll_ctl stdin pipe");
            exit(1);
        }
        r->srv.in_watch = want;
    }
}

/*
 * check_stderr_line - every line on the server's stderr must be the next
 * one the console input asked for, in order; anything else (an error of
 * its own, a sanitizer's report) fails the run and is shown at the end.
 */
static void
check_stderr_line(struct run *r, const char *line, size_t len)
{
    static const char prefix[] = "select_server: ";
    static const char unknown[] = "unknown command '";
    static const char tail[] = "' (type 'help' for the list)";
    struct console *k = &r->con;
    const struct expectation *e = &k->expect[k->head];
    const char *body = line + sizeof prefix - 1;
    size_t blen = len - (sizeof prefix - 1);
    bool ok = false;

    if (k->count > 0 && len > sizeof prefix - 1 &&
        memcmp(line, prefix, sizeof prefix - 1) == 0) {
        if (e->any_unknown)
            ok = blen >= sizeof unknown - 1 + sizeof tail - 1 &&
                 memcmp(body, unknown, sizeof unknown - 1) == 0 &&
                 memcmp(body + blen - (sizeof tail - 1), tail,
                        sizeof tail - 1) == 0;
        else
            ok = blen == strlen(e->text) && memcmp(body, e->text, blen) == 0;
    }
    if (ok) {
        k->head = (k->head + 1) % EXPECT_MAX;
        k->count--;
        r->console_errors++;
        return;
    }
    if (r->nstderr < MAX_STDERR_SHOWN)
        shown(line, len, r->stderr_shown[r->nstderr],
              sizeof r->stderr_shown[0]);
    r->nstderr++;
}

/* console_synced - every expected stderr line has come, in order. */
static bool
console_synced(struct run *r)
{
    return r->con.count == 0 && buf_len(&r->con.out) == 0;
}

/* ------------------------------------------------------------------ */
/* The server process                                                  */
/* ------------------------------------------------------------------ */

/*
 * start_server - fork and exec the server on three pipes, with
 * RLIMIT_NOFILE at SRV_FD_LIMIT so that FD_SETSIZE is its ceiling; wait for
 * its first line, "listening on [::]:PORT (tcp, udp)", then take the
 * baselines.  Returns false (after counting the failure) if it did not
 * start.
 */
static bool
start_server(struct run *r)
{
    struct epoll_event ev = { .events = EPOLLIN };
    char maxc[16], msg[600];
    char *argv[] = { (char *)r->opt.server, "-p", "0", "-q", "-m",
                     (char *)mode_names[r->mode], "--max-clients", maxc,
                     NULL };
    int in[2], out[2], err[2];
    pid_t parent = getpid();
    struct rlimit nofile;
    int msglen, maxfd = 65536;

    snprintf(maxc, sizeof maxc, "%ld", r->max_clients);
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 &&
        nofile.rlim_cur < (rlim_t)maxfd)
        maxfd = (int)nofile.rlim_cur;
    msglen = snprintf(msg, sizeof msg, "%s: exec %s: ", PROGNAME,
                      r->opt.server);
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 ||
        pipe2(err, O_CLOEXEC) < 0) {
        report_error(errno, "pipe2");
        exit(1);
    }
    fflush(stdout);
    fflush(stderr);
    r->srv.pid = fork();
    if (r->srv.pid < 0) {
        report_error(errno, "fork");
        exit(1);
    }
    if (r->srv.pid == 0) {
        /* The child: the pipes as stdio, nothing else of ours, die with
         * us, then the server. */
        struct rlimit rl;
        struct sigaction sa;
        const char *why;

        if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0
            || dup2(err[1], STDERR_FILENO) < 0)
            _exit(127);
        for (int fd = 3; fd < maxfd; fd++)
            close(fd);          /* also any we inherited ourselves */
        memset(&sa, 0, sizeof sa);
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = SIG_DFL;
        if (sigaction(SIGPIPE, &sa, NULL) < 0 ||
            prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
            _exit(127);
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
            rl.rlim_cur = SRV_FD_LIMIT;
            if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                _exit(127);
        }
        if (r->asan_options[0] != '\0' &&
            setenv("ASAN_OPTIONS", r->asan_options, 1) < 0)
            _exit(127);
        execv(r->opt.server, argv);
        why = strerror(errno);
        if (write(STDERR_FILENO, msg, (size_t)msglen) < 0 ||
            write(STDERR_FILENO, why, strlen(why)) < 0 ||
            write(STDERR_FILENO, "\n", 1) < 0)
            _exit(127);
        _exit(127);
    }
    if (close(in[0]) < 0 || close(out[1]) < 0 || close(err[1]) < 0) {
        report_error(errno, "close pipe");
        exit(1);
    }
    r->srv.in_fd = in[1];
    r->srv.out_fd = out[0];
    r->srv.err_fd = err[0];
    r->srv.in_watch = r->srv.ready = r->srv.exited = false;
    r->srv.expect_exit = false;
    r->srv.peak_rss_kib = r->srv.base_rss_kib = 0;
    r->srv.base_fds = r->srv.last_fds = r->srv.peak_fds = 0;
    r->srv.next_sample_us = r->srv.next_fds_us = 0;
    /* A bigger stdout pipe: the server blocks on it while we are busy.  If
     * the system refuses, the default 64 KiB still works. */
    if (fcntl(r->srv.out_fd, F_SETPIPE_SZ, 1024 * 1024) < 0 &&
        errno != EPERM && errno != EBUSY)
        report_error(errno, "fcntl F_SETPIPE_SZ");
    if (set_nonblocking(r->srv.in_fd) < 0 ||
        set_nonblocking(r->srv.out_fd) < 0 ||
        set_nonblocking(r->srv.err_fd) < 0) {
        report_error(errno, "fcntl O_NONBLOCK");
        exit(1);
    }
    ev.data.u64 = TAG_STDOUT;
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->srv.out_fd, &ev) < 0) {
        report_error(errno, "epoll_ctl stdout pipe");
        exit(1);
    }
    ev.data.u64 = TAG_STDERR;
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->srv.err_fd, &ev) < 0) {
        report_error(errno, "epoll_ctl stderr pipe");
        exit(1);
    }

    if (!pump(r, step_deadline(r, START_US), server_ready) ||
        !r->srv.ready) {
        if (r->srv.out_fd < 0)          /* its stdout closed: it exited */
            pump(r, now_us() + 1000000, server_exited);
        if (!r->aborted)
            fail(r, "%s: the server (%s) did not print its 'listening on'"
                 " line within %.0f s", mode_names[r->mode], r->opt.server,
                 (double)START_US / 1e6);
        return false;
    }
    r->srv.base_fds = r->srv.peak_fds = r->srv.last_fds =
        proc_fd_count(r->srv.pid);
    r->srv.base_rss_kib = r->srv.peak_rss_kib = proc_rss_kib(r->srv.pid);
    if (r->srv.base_fds < 0) {
        fail(r, "%s: cannot read /proc/%ld/fd", mode_names[r->mode],
             (long)r->srv.pid);
        return false;
    }
    return true;
}

/* server_ready - its first line was read, or it is gone. */
static bool
server_ready(struct run *r)
{
    return r->srv.ready || r->srv.exited || r->srv.out_fd < 0;
}

/* read_server_pipe - what the server wrote to stdout (1) or stderr (2),
 * split into lines.  The server blocks if nobody reads its stdout: read
 * it all, every time. */
static void
read_server_pipe(struct run *r, int which)
{
    int *fd = which == 1 ? &r->srv.out_fd : &r->srv.err_fd;
    struct buffer *b = which == 1 ? &r->srv.out_line : &r->srv.err_line;
    char chunk[65536];

    for (int i = 0; i < 16 && *fd >= 0; i++) {
        ssize_t n = read(*fd, chunk, sizeof chunk);
        char *nl;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {           /* EOF (it exited), or an error */
            if (n < 0)
                fail(r, "driver: reading the server's %s: %s",
                     which == 1 ? "stdout" : "stderr", strerror(errno));
            if (buf_len(b) > 0) {       /* a last line without newline */
                if (which == 1)
                    server_stdout_line(r, b->data + b->start, buf_len(b));
                else
                    check_stderr_line(r, b->data + b->start, buf_len(b));
            }
            buf_free(b);
            if (close(*fd) < 0)
                fail(r, "driver: close pipe: %s", strerror(errno));
            *fd = -1;           /* closing it removed it from epoll */
            return;
        }
        append(b, chunk, (size_t)n);
        for (size_t k = 0; k < (size_t)n + 1 && buf_len(b) > 0; k++) {
            char *line = b->data + b->start;

            if ((nl = memchr(line, '\n', buf_len(b))) == NULL)
                break;
            if (which == 1)
                server_stdout_line(r, line, (size_t)(nl - line));
            else
                check_stderr_line(r, line, (size_t)(nl - line));
            buf_consume(b, (size_t)(nl - line) + 1);
        }
        if (buf_len(b) > 1024 * 1024) {         /* a runaway line: keep */
            buf_consume(b, buf_len(b) - 4096);  /* only its end */
        }
    }
}

/* server_stdout_line - the first line gives the port; the rest (command
 * output, trace) is only counted, except a kick, which must never happen. */
static void
server_stdout_line(struct run *r, const char *line, size_t len)
{
    static const char head[] = "listening on ";
    char text[128], *colon, *space;
    long port;

    r->stdout_lines++;
    if (r->srv.ready) {
        if (len >= 8 && memcmp(line, "kicking ", 8) == 0)
            fail(r, "%s: the server kicked a client: '%s'",
                 mode_names[r->mode], shown(line, len, text, sizeof text));
        return;
    }
    shown(line, len, text, sizeof text);
    if (len >= sizeof text || strncmp(text, head, sizeof head - 1) != 0 ||
        (space = strchr(text + sizeof head - 1, ' ')) == NULL) {
        fail(r, "%s: the server's first line is not 'listening on ADDR:PORT"
             " (...)': '%s'", mode_names[r->mode], text);
        kill_server(r, NULL);
        return;
    }
    *space = '\0';
    if ((colon = strrchr(text, ':')) == NULL ||
        parse_long(colon + 1, 1, 65535, &port) < 0) {
        fail(r, "%s: no port in the server's first line '%s'",
             mode_names[r->mode], text);
        kill_server(r, NULL);
        return;
    }
    r->srv.port = (unsigned short)port;
    r->srv.dual_stack = strncmp(text + sizeof head - 1, "[::]:", 5) == 0;
    r->srv.ready = true;
    r->srv.ready_us = now_us();
}

/*
 * sample_server - every SAMPLE_US: has it exited, its VmRSS, and now and
 * then its descriptors.
 */
static void
sample_server(struct run *r, int64_t now)
{
    long rss;

    r->srv.next_sample_us = now + SAMPLE_US;
    if (r->srv.pid <= 0 || r->srv.exited || reap_server(r) ||
        !r->srv.ready)
        return;
    if ((rss = proc_rss_kib(r->srv.pid)) > r->srv.peak_rss_kib)
        r->srv.peak_rss_kib = rss;
    if (now >= r->srv.next_fds_us) {
        int fds = proc_fd_count(r->srv.pid);

        r->srv.next_fds_us = now + 5 * SAMPLE_US;
        if (fds > r->srv.peak_fds)
            r->srv.peak_fds = fds;
    }
}

/* reap_server - true if the server has exited (waitpid() says so now or
 * said so before).  An exit we did not ask for fails and aborts the phase. */
static bool
reap_server(struct run *r)
{
    char status[64];
    pid_t pid;
    int st;

    if (r->srv.exited || r->srv.pid <= 0)
        return r->srv.exited;
    if ((pid = waitpid(r->srv.pid, &st, WNOHANG)) < 0) {
        report_error(errno, "waitpid %ld", (long)r->srv.pid);
        exit(1);
    }
    if (pid == 0)
        return false;
    r->srv.exited = true;
    r->srv.status = st;
    if (!r->srv.expect_exit) {
        fail(r, "%s: the server exited %s: %s", mode_names[r->mode],
             r->srv.ready ? "during the run" : "before its first line",
             describe_status(st, status, sizeof status));
        r->aborted = true;
    }
    return true;
}

/*
 * stop_server - SIGTERM, then its exit with status 0 within TERM_US; if
 * not, SIGKILL.  Then read its pipes to EOF (a sanitizer reports at exit)
 * and close ours.
 */
static void
stop_server(struct run *r)
{
    char status[64];
    int64_t deadline;
    bool termed = false;

    if (r->srv.pid > 0 && !reap_server(r)) {
        r->srv.expect_exit = termed = true;
        if (kill(r->srv.pid, SIGTERM) < 0)
            report_error(errno, "kill %ld SIGTERM", (long)r->srv.pid);
        r->srv.next_sample_us = 0;
        deadline = now_us() + TERM_US;
        if (deadline > r->phase_end_us)
            deadline = r->phase_end_us;
        if (!pump(r, deadline, server_exited) && !r->srv.exited)
            kill_server(r, r->aborted ? NULL
                                      : "it did not exit after SIGTERM");
    }
    r->final_drain = true;
    if (r->srv.pid > 0 && !r->srv.exited)
        pump(r, now_us() + 1000000, server_exited);
    pump(r, now_us() + 1000000, server_pipes_closed);
    r->final_drain = false;
    if (termed && r->srv.exited && !r->aborted &&
        !(WIFEXITED(r->srv.status) && WEXITSTATUS(r->srv.status) == 0))
        fail(r, "%s: the server ended with %s after SIGTERM, not exit"
             " status 0", mode_names[r->mode],
             describe_status(r->srv.status, status, sizeof status));
    if (r->srv.pid > 0 && !r->srv.exited)
        fail(r, "%s: the server (pid %ld) would not die", mode_names[r->mode],
             (long)r->srv.pid);
    if (r->srv.peak_rss_kib > r->peak_rss_kib)
        r->peak_rss_kib = r->srv.peak_rss_kib;
    if (r->srv.peak_rss_kib > r->opt.max_rss_mib * 1024)
        fail(r, "%s: the server's VmRSS reached %ld KiB, over the bound of"
             " %ld MiB", mode_names[r->mode], r->srv.peak_rss_kib,
             r->opt.max_rss_mib);
    close_server_pipes(r);
}

static bool
server_exited(struct run *r)
{
    if (!r->srv.exited)
        r->srv.next_sample_us = 0;      /* waitpid() on the next pass */
    return r->srv.exited;
}

static bool
server_pipes_closed(struct run *r)
{
    return r->srv.out_fd < 0 && r->srv.err_fd < 0;
}

/* kill_server - SIGKILL by PID, after counting why as a failure. */
static void
kill_server(struct run *r, const char *why)
{
    if (why != NULL)
        fail(r, "%s: %s: killing the server (pid %ld)", mode_names[r->mode],
             why, (long)r->srv.pid);
    if (r->srv.pid > 0 && !r->srv.exited) {
        r->srv.expect_exit = true;
        if (kill(r->srv.pid, SIGKILL) < 0 && errno != ESRCH)
            report_error(errno, "kill %ld SIGKILL", (long)r->srv.pid);
    }
    r->aborted = true;
}

/* close_server_pipes - our ends, and the partial lines. */
static void
close_server_pipes(struct run *r)
{
    int *fds[] = { &r->srv.in_fd, &r->srv.out_fd, &r->srv.err_fd };

    for (int i = 0; i < 3; i++)
        if (*fds[i] >= 0) {
            if (close(*fds[i]) < 0)
                fail(r, "driver: close pipe: %s", strerror(errno));
            *fds[i] = -1;
        }
    r->srv.in_watch = false;
    buf_free(&r->srv.out_line);
    buf_free(&r->srv.err_line);
    buf_free(&r->con.out);
    buf_free(&r->con.follow);
}

/* describe_status - "exit status 0", "signal 11 (Segmentation fault)". */
static const char *
describe_status(int status, char *out, size_t len)
{
    if (WIFEXITED(status))
        snprintf(out, len, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, len, "signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, len, "status %#x", (unsigned)status);
    return out;
}

/* proc_rss_kib - VmRSS from /proc/PID/status, or -1. */
static long
proc_rss_kib(pid_t pid)
{
    char path[64], text[4096], *p;
    long kib = -1;
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    n = read(fd, text, sizeof text - 1);
    if (close(fd) < 0 || n <= 0)
        return -1;
    text[n] = '\0';
    if ((p = strstr(text, "\nVmRSS:")) != NULL)
        kib = strtol(p + 7, NULL, 10);
    return kib;
}

/* proc_fd_count - the entries of /proc/PID/fd, or -1. */
static int
proc_fd_count(pid_t pid)
{
    char path[64];
    struct dirent *d;
    DIR *dir;
    int n = 0;

    snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
    if ((dir = opendir(path)) == NULL)
        return -1;
    for (int i = 0; i < 1 << 20 && (d = readdir(dir)) != NULL; i++)
        if (d->d_name[0] != '.')
            n++;
    if (closedir(dir) < 0)
        return -1;
    return n;
}

/* ------------------------------------------------------------------ */
/* Results                                                             */
/* ------------------------------------------------------------------ */

static void
record_latency(struct latency *l, int64_t us)
{
    int64_t b = us / HIST_STEP_US;

    l->hist[b < HIST_BUCKETS - 1 ? b : HIST_BUCKETS - 1]++;
    l->n++;
    if (us > l->max_us)
        l->max_us = us;
}

/* latency_p99 - the upper edge of the bucket holding the 99th percentile
 * (the maximum, if it is in the last, open-ended bucket). */
static int64_t
latency_p99(const struct latency *l)
{
    uint64_t want = (l->n * 99 + 99) / 100, seen = 0;

    for (int b = 0; b < HIST_BUCKETS; b++) {
        seen += l->hist[b];
        if (seen >= want && l->n > 0)
            return b == HIST_BUCKETS - 1 ? l->max_us
                                         : (int64_t)(b + 1) * HIST_STEP_US;
    }
    return 0;
}

/* fail - count a reason the run fails.  Reasons from the same call site
 * (the same format) are counted under the first: when the server dies,
 * every client says so, and one line is enough. */
static void
fail(struct run *r, const char *fmt, ...)
{
    va_list ap;

    r->nfailures++;
    for (long i = 0; i < r->kinds && i < MAX_FAILURES; i++)
        if (r->failures[i].fmt == fmt) {
            r->failures[i].times++;
            return;
        }
    if (r->kinds < MAX_FAILURES) {
        r->failures[r->kinds].fmt = fmt;
        r->failures[r->kinds].times = 1;
        va_start(ap, fmt);
        vsnprintf(r->failures[r->kinds].text,
                  sizeof r->failures[0].text, fmt, ap);
        va_end(ap);
    }
    r->kinds++;
}

/*
 * finish - the run-wide checks (latency), each failure on its own line,
 * then the summary line.  Returns the exit status: 0 pass, 1 fail.
 */
static int
finish(struct run *r)
{
    bool pass;

    if (r->echo_lat.max_us > LATENCY_LIMIT_US)
        fail(r, "echo: the slowest round trip took %.3f s (limit %.0f s)",
             (double)r->echo_lat.max_us / 1e6, LATENCY_LIMIT_US / 1e6);
    if (r->chat_lat.max_us > LATENCY_LIMIT_US)
        fail(r, "chat: the slowest line took %.3f s to reach the observer"
             " (limit %.0f s)", (double)r->chat_lat.max_us / 1e6,
             LATENCY_LIMIT_US / 1e6);
    if (r->nstderr > 0)
        fail(r, "the server wrote %ld unexpected line%s on stderr",
             r->nstderr, r->nstderr == 1 ? "" : "s");
    pass = r->nfailures == 0;

    for (long i = 0; i < r->kinds && i < MAX_FAILURES; i++) {
        if (r->failures[i].times > 1)
            fprintf(stderr, "%s: FAIL: %s (and %ld more like it)\n",
                    PROGNAME, r->failures[i].text, r->failures[i].times - 1);
        else
            fprintf(stderr, "%s: FAIL: %s\n", PROGNAME,
                    r->failures[i].text);
    }
    if (r->kinds > MAX_FAILURES)
        fprintf(stderr, "%s: FAIL: ... and %ld more of other kinds\n",
                PROGNAME, r->kinds - MAX_FAILURES);
    if (r->nstderr > 0) {
        fprintf(stderr, "%s: the server's unexpected stderr lines:\n",
                PROGNAME);
        for (long i = 0; i < r->nstderr && i < MAX_STDERR_SHOWN; i++)
            fprintf(stderr, "    %s\n", r->stderr_shown[i]);
        if (r->nstderr > MAX_STDERR_SHOWN)
            fprintf(stderr, "    ... and %ld more\n",
                    r->nstderr - MAX_STDERR_SHOWN);
    }
    fflush(stderr);

    printf("seed=%llu seconds=%ld mode=%s clients=%ld chat_clients=%ld"
           " max_clients=%ld chat_max_clients=%ld round_trips=%llu"
           " chat_lines=%llu bytes=%llu"
           " max_latency_ms=%.3f p99_latency_ms=%.3f"
           " chat_max_latency_ms=%.3f chat_p99_latency_ms=%.3f"
           " peak_rss_kib=%ld max_rss_mib=%ld refused=%ld resets=%ld",
           (unsigned long long)r->opt.seed, r->opt.seconds,
           mode_names[r->opt.mode], r->wanted_well,
           r->opt.mode == MODE_ECHO ? 0 : r->chat_senders,
           r->opt.mode == MODE_CHAT ? 0 : r->echo_max_clients,
           r->opt.mode == MODE_ECHO ? 0 : r->chat_max_clients,
           (unsigned long long)r->round_trips,
           (unsigned long long)r->chat_lines, (unsigned long long)r->bytes,
           (double)r->echo_lat.max_us / 1e3,
           (double)latency_p99(&r->echo_lat) / 1e3,
           (double)r->chat_lat.max_us / 1e3,
           (double)latency_p99(&r->chat_lat) / 1e3, r->peak_rss_kib,
           r->opt.max_rss_mib, r->refused, r->resets);
    for (int role = FIRST_MISBEHAVING; role <= ROLE_JUNK; role++)
        printf(" %s=%ld", role_names[role], r->started[role]);
    printf(" halfclose_ok=%ld dropped=%ld bursts=%ld burst_conns=%ld"
           " console_lines=%ld console_errors=%ld server_stdout_lines=%ld"
           " chat_other_lines=%ld elapsed_s=%.1f failures=%ld result=%s\n",
           r->halfclose_ok, r->dropped, r->bursts, r->started[ROLE_BURST],
           r->console_lines, r->console_errors, r->stdout_lines,
           r->other_lines, (double)(r->run_end_us - r->run_start_us) / 1e6,
           r->nfailures, pass ? "pass" : "fail");
    fflush(stdout);
    return pass ? 0 : 1;
}

/* shown - data as printable ASCII, a backslash as \\, other bytes as
 * \xHH, cut to fit with "..." at the end: for messages.  Returns out. */
static const char *
shown(const void *data, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = data;
    size_t o = 0;

    for (size_t i = 0; i < len && o + 8 < outlen; i++) {
        if (p[i] == '\\') {
            out[o++] = '\\';
            out[o++] = '\\';
        } else if (p[i] >= 0x20 && p[i] < 0x7f) {
            out[o++] = (char)p[i];
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[p[i] >> 4];
            out[o++] = hex[p[i] & 15];
        }
        if (o + 8 >= outlen && i + 1 < len) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
    }
    out[o] = '\0';
    return out;
}

/* append - buf_append(), or exit: out of memory is this machine's fault,
 * not the server's. */
static void
append(struct buffer *b, const void *data, size_t len)
{
    if (buf_append(b, data, len) < 0) {
        report_error(ENOMEM, "buffer of %zu bytes", buf_len(b) + len);
        exit(1);
    }
}

/* shell_word - s as one shell word: as is if it is safe, else quoted. */
static const char *
shell_word(const char *s, char *out, size_t len)
{
    size_t o = 0;

    if (*s != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                                "QRSTUVWXYZ0123456789/._-+=:,") == strlen(s)) {
        snprintf(out, len, "%s", s);
        return out;
    }
    out[o++] = '\'';
    for (; *s != '\0' && o + 6 < len; s++) {
        if (*s == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = *s;
        }
    }
    out[o++] = '\'';
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------ */
/* Random numbers                                                      */
/* ------------------------------------------------------------------ */

/* mix64 - splitmix64's finalizer: every input bit affects every output
 * bit. */
static uint64_t
mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* rng_next - splitmix64: a Weyl sequence through the finalizer. */
static uint64_t
rng_next(struct rng *g)
{
    g->state += GOLDEN;
    return mix64(g->state);
}

/* rng_below - 0..n-1 (0 if n is 0); the modulo bias is below 2^-40. */
static uint64_t
rng_below(struct rng *g, uint64_t n)
{
    return n == 0 ? 0 : rng_next(g) % n;
}

/* rng_range - lo..hi, both included. */
static int64_t
rng_range(struct rng *g, int64_t lo, int64_t hi)
{
    return hi <= lo ? lo : lo + (int64_t)rng_below(g, (uint64_t)(hi - lo) + 1);
}

/* rng_size - 1..max, log-uniform: each power of two equally likely, so
 * small and large sizes both come up often. */
static size_t
rng_size(struct rng *g, size_t max)
{
    unsigned bits = 0;
    size_t lo, hi;

    while (((size_t)2 << bits) <= max)
        bits++;
    lo = (size_t)1 << rng_below(g, bits + 1);
    hi = lo * 2 - 1 < max ? lo * 2 - 1 : max;
    return (size_t)rng_range(g, (int64_t)lo, (int64_t)hi);
}

/* rng_derive - the generator of one stream of choices (the schedule, the
 * console, client `index`), from the seed alone. */
static struct rng
rng_derive(uint64_t seed, uint64_t stream, uint64_t index)
{
    struct rng g = { mix64(seed + GOLDEN * mix64(stream * 0x100000001b3ULL +
                                                 index + 1)) };

    return g;
}

/*
 * stream_bytes - bytes off..off+n-1 of the random stream `key`: byte i is
 * byte i % 8 of mix64(key + GOLDEN * (i / 8)).  Any stretch can be made
 * again from its offset, so a client keeps no copy of what it sent: the
 * check regenerates it.  letters: a-z only (chat text, no newline).
 */
static void
stream_bytes(uint64_t key, uint64_t off, unsigned char *buf, size_t n,
             bool letters)
{
    size_t i = 0;

    while (i < n) {
        uint64_t pos = off + i, w = mix64(key + GOLDEN * (pos / 8));

        for (unsigned b = (unsigned)(pos % 8); b < 8 && i < n; b++) {
            unsigned char byte = (unsigned char)(w >> (8 * b));

            buf[i++] = letters ? (unsigned char)('a' + byte % 26) : byte;
        }
    }
}
