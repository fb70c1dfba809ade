/*
 * bench/shutdown_latency.c - how long select_client takes to exit once the
 * server goes away, for three ways a server can go: "quit" typed on its
 * console, SIGTERM, and SIGKILL.
 *
 * Each repetition starts a fresh select_server (-p 0 -b 127.0.0.1: a port
 * the kernel chooses, loopback only) with its stdin and stdout on pipes held
 * here, reads the port from its first line, and starts select_client
 * 127.0.0.1 PORT with stdin a pipe that stays open and silent (a user who
 * types nothing), stdout on /dev/null and stderr on a pipe read here.  Once
 * the server has logged "accepted" and the client "connected to", and a few
 * milliseconds more have passed so the client sits idle in select(), the
 * clock (CLOCK_MONOTONIC) starts and the server is told to go.  The clock
 * stops when waitpid() reaps the client.  The client must exit with status
 * 3, which select_client documents as "the server closed or reset the
 * connection"; the server must then exit with status 0 (quit, SIGTERM) or
 * die of SIGKILL.  Repetitions take the methods in turn (quit, SIGTERM,
 * SIGKILL, quit, ...) so that background load falls on all three alike.
 *
 * What the time includes, besides the client's own wake-up from select(),
 * its recv() of the end of the stream and its exit:
 *   quit     writing "quit\n" to the server's stdin, the server waking on its
 *            console, running the command and closing every client socket:
 *            its whole graceful shutdown path.
 *   sigterm  the signal's delivery, the handler's byte in the self-pipe, the
 *            server's loop waking and the same graceful close as quit.
 *   sigkill  no server code at all: kill() only marks the process, and the
 *            kernel closes its descriptors (sending the FIN, or an RST if
 *            unread data were waiting) while it tears the dying process
 *            down, so the time includes the kernel's cleanup of the server.
 * Each also includes the client's exit and this program's waitpid() noticing
 * it: this program sleeps in sigtimedwait() on SIGCHLD, so that is one
 * wake-up, not a polling interval.
 * Nothing is pinned to a CPU: on a busy machine the numbers are noisy.
 *
 * Build and run from the top of the project:
 *     make select_server select_client
 *     cc -std=c11 -O2 -g -Wall -Wextra -Wpedantic -Werror -D_FORTIFY_SOURCE=2 \
 *         -I. -o bench/shutdown_latency bench/shutdown_latency.c
 *     bench/shutdown_latency [-n REPS] [--server PATH] [--client PATH]
 *
 * Output: one line per method on stdout, for instance
 *     shutdown_latency method=quit reps=20 median_ms=0.31 max_ms=0.52
 *         min_ms=0.25 failures=0 client_status=3
 * (on one line), where client_status is the exit status every client had,
 * or "mixed".  The times are those of the repetitions in which the client
 * exited by itself.  Details of each failure go to stderr.
 *
 * Exit status: 0 when every repetition went as expected; 1 when one did not
 * (a client still running EXIT_DEADLINE_US after the trigger, an unexpected
 * exit status from the client or the server, a start-up that did not
 * finish in time); 2 for a usage error or programs that cannot be run.
 *
 * Every wait has a deadline, so the run always ends by itself; a child past
 * its deadline is killed by the PID recorded when it was started.
 *
 * Where to start reading: main(), then run_repetition(), which is one
 * repetition from start to finish; the helpers follow in the order it calls
 * them.
 */
#define PROGNAME "shutdown_latency"
#define _POSIX_C_SOURCE 200809L
#define EXIT_USAGE 2            /* 1 means a repetition failed */

#include "../common.h"

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>

#define DEFAULT_REPS        20
#define MAX_REPS            10000
#define DEFAULT_SERVER      "./select_server"
#define DEFAULT_CLIENT      "./select_client"
#define STARTUP_DEADLINE_US 5000000     /* first line, then the connection */
#define SETTLE_US           5000        /* let the client go idle in select() */
#define EXIT_DEADLINE_US    3000000     /* the client must be gone by then */
#define REAP_DEADLINE_US    3000000     /* the server's grace period is 1 s */
#define CLIENT_SERVER_GONE  3           /* select_client's documented status */
#define MSG_MAX             1024        /* kept of the client's stderr */

/* Exit statuses of this program. */
#define EXIT_ALL_OK   0
#define EXIT_FAILURES 1
#define EXIT_BAD_USE  EXIT_USAGE

/* The ways the server goes away, in the order repetitions take them. */
enum method { METHOD_QUIT, METHOD_SIGTERM, METHOD_SIGKILL, NMETHODS };

static const char *const method_names[NMETHODS] = { "quit", "sigterm",
                                                    "sigkill" };

/* wait_child() results. */
enum reaped { REAPED, STILL_RUNNING, WAIT_FAILED };

/* The whole run: made in main() and passed by pointer. */
struct bench {
    const char *server_path;
    const char *client_path;
    long reps;                  /* per method */
    int devnull;                /* the client's stdout */
    int64_t *latency_us[NMETHODS];      /* one per client that exited */
    long nlatencies[NMETHODS];
    long failures[NMETHODS];
    int client_status[NMETHODS];        /* -1 until one is seen */
    bool status_mixed[NMETHODS];
};

/* One repetition: the two children and our ends of their pipes (-1: none). */
struct rep {
    pid_t server, client;       /* -1 once reaped */
    int server_in;              /* the server's console: we write "quit" */
    int server_out;             /* its log: the port, then "accepted" */
    int client_in;              /* the client's stdin: open, never written */
    int client_err;             /* its messages: "connected to", the end */
    char port[8];               /* "" until the first line is read */
    bool accepted;              /* the server logged "accepted" */
    bool connected;             /* the client said "connected to" */
    char line[512];             /* the server's line being assembled */
    size_t line_len;
    char msgs[MSG_MAX];         /* what the client wrote on stderr */
    size_t msgs_len;
};

/* Table of contents, in the order the program runs. */
static void parse_options(struct bench *b, int argc, char **argv);
static void print_usage(FILE *fp);
static void setup(struct bench *b);
static void on_sigchld(int signo);
static int run_repetition(struct bench *b, enum method m, long rep);
static int start_server(const struct bench *b, struct rep *r);
static int start_client(const struct bench *b, struct rep *r);
static int make_pipe(int fds[2]);
static int spawn(const char *path, char *const argv[], const int std[3],
                 pid_t *pid);
static int wait_for(struct rep *r, bool (*ready)(const struct rep *),
                    const char *what);
static bool port_known(const struct rep *r);
static bool connection_up(const struct rep *r);
static int take_output(struct rep *r, int fd);
static void server_line(struct rep *r);
static const char *client_said(struct rep *r);
static int settle(void);
static int trigger(const struct rep *r, enum method m);
static enum reaped wait_child(pid_t pid, int64_t deadline, int *status);
static bool server_status_ok(enum method m, int status);
static const char *describe_status(int status, char *out, size_t len);
static void kill_and_reap(pid_t *pid, const char *who);
static void end_repetition(struct rep *r);
static void close_fd(int *fd);
static void record(struct bench *b, enum method m, int64_t us, int status);
static void report(struct bench *b, enum method m);
static int compare_us(const void *a, const void *b);

int
main(int argc, char **argv)
{
    struct bench b = { .server_path = DEFAULT_SERVER,
                       .client_path = DEFAULT_CLIENT,
                       .reps = DEFAULT_REPS, .devnull = -1 };
    bool failed = false;

    parse_options(&b, argc, argv);
    setup(&b);
    for (long rep = 0; rep < b.reps; rep++)
        for (int m = 0; m < NMETHODS; m++)
            if (run_repetition(&b, (enum method)m, rep) < 0) {
                b.failures[m]++;
                failed = true;
            }
    for (int m = 0; m < NMETHODS; m++) {
        report(&b, (enum method)m);
        free(b.latency_us[m]);
    }
    close_fd(&b.devnull);
    if (fflush(stdout) == EOF) {
        report_error(errno, "write stdout");
        return EXIT_FAILURES;
    }
    return failed ? EXIT_FAILURES : EXIT_ALL_OK;
}

/* ------------------------------------------------------------------ */
/* The command line and set-up                                         */
/* ------------------------------------------------------------------ */

/* parse_options - fill in b; exits 0 after --help, 2 on a usage error. */
static void
parse_options(struct bench *b, int argc, char **argv)
{
    enum { OPT_SERVER = 256, OPT_CLIENT };
    static const struct option longopts[] = {
        { "reps",   required_argument, NULL, 'n' },
        { "server", required_argument, NULL, OPT_SERVER },
        { "client", required_argument, NULL, OPT_CLIENT },
        { "help",   no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int opt;

    opterr = 0;                 /* our messages, and our exit status */
    while ((opt = getopt_long(argc, argv, ":n:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            if (parse_long(optarg, 1, MAX_REPS, &b->reps) < 0)
                usage_error("invalid repetitions '%s' (expected 1-%d)", optarg,
                          MAX_REPS);
            break;
        case OPT_SERVER:
            b->server_path = optarg;
            break;
        case OPT_CLIENT:
            b->client_path = optarg;
            break;
        case 'h':
            print_usage(stdout);
            exit(fflush(stdout) == EOF ? EXIT_FAILURES : EXIT_ALL_OK);
        case ':':
            usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            if (optopt != 0)
                usage_error("unknown option '-%c'", optopt);
            usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (access(b->server_path, X_OK) < 0) {
        report_error(errno, "cannot run %s (make select_server)",
                     b->server_path);
        exit(EXIT_BAD_USE);
    }
    if (access(b->client_path, X_OK) < 0) {
        report_error(errno, "cannot run %s (make select_client)",
                     b->client_path);
        exit(EXIT_BAD_USE);
    }
}

static void
print_usage(FILE *fp)
{
    fprintf(fp,
"Usage: %s [-n REPS] [--server PATH] [--client PATH]\n"
"Measure how long select_client takes to exit after the server goes away\n"
"by \"quit\" on its console, by SIGTERM and by SIGKILL.\n"
"\n"
"  -n, --reps REPS    repetitions per method (default %d, at most %d)\n"
"      --server PATH  the server to run (default %s)\n"
"      --client PATH  the client to run (default %s)\n"
"  -h, --help         show this help and exit\n"
"\n"
"One line per method on stdout: method=, reps=, median_ms=, max_ms=,\n"
"min_ms=, failures=, client_status= (expected %d).\n"
"Exit status: %d all went as expected, %d a repetition failed, %d usage\n"
"error or a program cannot be run.\n",
            PROGNAME, DEFAULT_REPS, MAX_REPS, DEFAULT_SERVER, DEFAULT_CLIENT,
            CLIENT_SERVER_GONE, EXIT_ALL_OK, EXIT_FAILURES, EXIT_BAD_USE);
}

/*
 * setup - descriptors, signals and memory for the whole run; exits 2 if
 * any of it fails.  SIGCHLD is blocked for good and only ever taken by
 * sigtimedwait() in wait_child(); it has a handler (that never runs)
 * because a blocked signal whose action is "ignore" may be discarded
 * instead of left pending.  SIGPIPE is ignored so that writing "quit" to a
 * server that died is an EPIPE to report, not our death.
 */
static void
setup(struct bench *b)
{
    struct sigaction sa;
    sigset_t chld;

    if (open_std_fds() < 0) {
        report_error(errno, "open /dev/null");
        exit(EXIT_BAD_USE);
    }
    if ((b->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) {
        report_error(errno, "open /dev/null");
        exit(EXIT_BAD_USE);
    }
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGPIPE");
        exit(EXIT_BAD_USE);
    }
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_NOCLDSTOP;
    if (sigaction(SIGCHLD, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGCHLD");
        exit(EXIT_BAD_USE);
    }
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0) {
        report_error(errno, "sigprocmask SIG_BLOCK SIGCHLD");
        exit(EXIT_BAD_USE);
    }
    for (int m = 0; m < NMETHODS; m++) {
        b->latency_us[m] = calloc((size_t)b->reps, sizeof *b->latency_us[m]);
        if (b->latency_us[m] == NULL) {
            report_error(ENOMEM, "allocating %ld results", b->reps);
            exit(EXIT_BAD_USE);
        }
        b->client_status[m] = -1;
    }
}

/* on_sigchld - never runs (SIGCHLD stays blocked); see setup(). */
static void
on_sigchld(int signo)
{
    (void)signo;
}

/* ------------------------------------------------------------------ */
/* One repetition                                                      */
/* ------------------------------------------------------------------ */

/*
 * run_repetition - start a server and a client, make the server go away by
 * method m, time the client's exit, reap both.  Records the latency if the
 * client exited.  Returns 0 if everything went as expected, or -1 after
 * saying on stderr what did not.
 */
static int
run_repetition(struct bench *b, enum method m, long rep)
{
    struct rep r = { .server = -1, .client = -1, .server_in = -1,
                     .server_out = -1, .client_in = -1, .client_err = -1 };
    const char *name = method_names[m];
    char st[64];
    int64_t started, ended;
    int status, result = 0;
    enum reaped how;

    /* Set up: server, port, client, connection, a moment of quiet. */
    if (start_server(b, &r) < 0 || wait_for(&r, port_known, "port") < 0 ||
        start_client(b, &r) < 0 ||
        wait_for(&r, connection_up, "connection") < 0 || settle() < 0) {
        report_error(0, "%s rep %ld: could not set up", name, rep + 1);
        end_repetition(&r);
        return -1;
    }

    /* The measurement: trigger, then wait for the client to be reaped. */
    started = now_us();
    if (trigger(&r, m) < 0) {
        report_error(0, "%s rep %ld: could not trigger", name, rep + 1);
        end_repetition(&r);
        return -1;
    }
    how = wait_child(r.client, started + EXIT_DEADLINE_US, &status);
    ended = now_us();
    if (how == REAPED) {
        r.client = -1;
        record(b, m, ended - started, status);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != CLIENT_SERVER_GONE) {
            take_output(&r, r.client_err);      /* its last words */
            report_error(0, "%s rep %ld: client %s, expected exit status %d;"
                         " its stderr: %s", name, rep + 1,
                         describe_status(status, st, sizeof st),
                         CLIENT_SERVER_GONE, client_said(&r));
            result = -1;
        }
    } else {
        if (how == STILL_RUNNING)
            report_error(0, "%s rep %ld: client still running %lld ms after"
                         " the trigger: killed", name, rep + 1,
                         (long long)(EXIT_DEADLINE_US / 1000));
        kill_and_reap(&r.client, "client");
        result = -1;
    }

    /* The server must be gone too, the way the method says. */
    how = wait_child(r.server, now_us() + REAP_DEADLINE_US, &status);
    if (how == REAPED) {
        r.server = -1;
        if (!server_status_ok(m, status)) {
            report_error(0, "%s rep %ld: server %s", name, rep + 1,
                         describe_status(status, st, sizeof st));
            result = -1;
        }
    } else {
        if (how == STILL_RUNNING)
            report_error(0, "%s rep %ld: server still running %lld ms after"
                         " the client: killed", name, rep + 1,
                         (long long)(REAP_DEADLINE_US / 1000));
        result = -1;
    }
    end_repetition(&r);
    return result;
}

/*
 * start_server - select_server -p 0 -b 127.0.0.1 with stdin and stdout on
 * pipes; its stderr is ours, so its error messages reach the user.
 * Returns 0, or -1 after saying why.
 */
static int
start_server(const struct bench *b, struct rep *r)
{
    char *argv[] = { (char *)b->server_path, "-p", "0", "-b", "127.0.0.1",
                     NULL };
    int in[2], out[2], rc;

    if (make_pipe(in) < 0)
        return -1;
    if (make_pipe(out) < 0) {
        close_fd(&in[0]);
        close_fd(&in[1]);
        return -1;
    }
    rc = spawn(b->server_path, argv, (const int[3]){ in[0], out[1], -1 },
               &r->server);
    close_fd(&in[0]);
    close_fd(&out[1]);
    r->server_in = in[1];
    r->server_out = out[0];
    if (rc < 0)
        return -1;
    if (set_nonblocking(r->server_out) < 0) {
        report_error(errno, "set O_NONBLOCK on the server's stdout pipe");
        return -1;
    }
    return 0;
}

/*
 * start_client - select_client 127.0.0.1 PORT with stdin a pipe we keep
 * open and never write, stdout /dev/null, stderr a pipe we read.
 * Returns 0, or -1 after saying why.
 */
static int
start_client(const struct bench *b, struct rep *r)
{
    char *argv[] = { (char *)b->client_path, "127.0.0.1", r->port, NULL };
    int in[2], err[2], rc;

    if (make_pipe(in) < 0)
        return -1;
    if (make_pipe(err) < 0) {
        close_fd(&in[0]);
        close_fd(&in[1]);
        return -1;
    }
    rc = spawn(b->client_path, argv,
               (const int[3]){ in[0], b->devnull, err[1] }, &r->client);
    close_fd(&in[0]);
    close_fd(&err[1]);
    r->client_in = in[1];
    r->client_err = err[0];
    if (rc < 0)
        return -1;
    if (set_nonblocking(r->client_err) < 0) {
        report_error(errno, "set O_NONBLOCK on the client's stderr pipe");
        return -1;
    }
    return 0;
}

/*
 * make_pipe - a pipe whose ends both close on exec, so that no child
 * inherits another's pipe (a stray write end would hide an EOF).  The
 * child's end loses FD_CLOEXEC when spawn() dup2()s it onto 0, 1 or 2.
 * Returns 0, or -1 after saying why.
 */
static int
make_pipe(int fds[2])
{
    if (pipe(fds) < 0) {
        report_error(errno, "pipe");
        return -1;
    }
    if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(fds[1], F_SETFD, FD_CLOEXEC) < 0) {
        report_error(errno, "fcntl FD_CLOEXEC");
        close_fd(&fds[0]);
        close_fd(&fds[1]);
        return -1;
    }
    return 0;
}

/*
 * spawn - run path with argv; std[0], std[1], std[2] (each -1: leave ours)
 * become its stdin, stdout and stderr.  Every signal is unblocked in the
 * child and SIGPIPE is back to its default (an ignored signal stays
 * ignored across exec).  Returns 0 with *pid set, or -1 after saying why.
 */
static int
spawn(const char *path, char *const argv[], const int std[3], pid_t *pid)
{
    extern char **environ;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, pipe_only;
    int rc;

    sigemptyset(&none);
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        report_error(rc, "posix_spawn_file_actions_init");
        return -1;
    }
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        report_error(rc, "posix_spawnattr_init");
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO && rc == 0; fd++)
        if (std[fd] >= 0)
            rc = posix_spawn_file_actions_adddup2(&fa, std[fd], fd);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &pipe_only);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, (short)(POSIX_SPAWN_SETSIGMASK |
                                                     POSIX_SPAWN_SETSIGDEF));
    if (rc != 0)
        report_error(rc, "posix_spawn attributes for %s", path);
    else if ((rc = posix_spawn(pid, path, &fa, &attr, argv, environ)) != 0)
        report_error(rc, "posix_spawn %s", path);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? 0 : -1;
}

/*
 * wait_for - take in what the server and the client write until ready(r)
 * holds, for at most STARTUP_DEADLINE_US; what names the wait in messages.
 * Returns 0, or -1 after saying why (time ran out, or one of them closed
 * its end of the pipe, which means it exited).
 */
static int
wait_for(struct rep *r, bool (*ready)(const struct rep *), const char *what)
{
    int64_t deadline = now_us() + STARTUP_DEADLINE_US;

    while (!ready(r)) {
        struct pollfd pfd[2] = { { .fd = r->server_out, .events = POLLIN },
                                 { .fd = r->client_err, .events = POLLIN } };
        int64_t left = deadline - now_us();
        int n;

        if (left <= 0) {
            report_error(0, "no %s within %lld ms", what,
                         (long long)(STARTUP_DEADLINE_US / 1000));
            return -1;
        }
        /* poll() ignores a negative fd: the client may not exist yet. */
        n = poll(pfd, 2, (int)((left + 999) / 1000));
        if (n < 0 && errno != EINTR) {
            report_error(errno, "poll");
            return -1;
        }
        for (int i = 0; n > 0 && i < 2; i++)
            if (pfd[i].revents != 0 && take_output(r, pfd[i].fd) <= 0) {
                if (i == 0)
                    report_error(0, "waiting for the %s: the server exited",
                                 what);
                else
                    report_error(0, "waiting for the %s: the client exited;"
                                 " its stderr: %s", what, client_said(r));
                return -1;
            }
    }
    return 0;
}

/* port_known - the server's first line has given us its port. */
static bool
port_known(const struct rep *r)
{
    return r->port[0] != '\0';
}

/* connection_up - both ends have said the connection is made. */
static bool
connection_up(const struct rep *r)
{
    return r->accepted && r->connected;
}

/*
 * take_output - read what is waiting on fd, the server's stdout or the
 * client's stderr, and note what it says.  Returns 1 if something (or
 * nothing yet) was read, 0 at EOF, -1 on an error (said).
 */
static int
take_output(struct rep *r, int fd)
{
    char chunk[1024];
    ssize_t n;

    while ((n = read(fd, chunk, sizeof chunk)) > 0) {
        if (fd == r->client_err) {
            size_t room = sizeof r->msgs - 1 - r->msgs_len;
            size_t len = (size_t)n < room ? (size_t)n : room;

            memcpy(r->msgs + r->msgs_len, chunk, len);
            r->msgs_len += len;
            r->msgs[r->msgs_len] = '\0';
            r->connected = strstr(r->msgs, "connected to ") != NULL;
            continue;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\n') {
                r->line[r->line_len] = '\0';
                server_line(r);
                r->line_len = 0;
            } else if (r->line_len < sizeof r->line - 1) {
                r->line[r->line_len++] = chunk[i];
            }
        }
    }
    if (n == 0)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 1;
    report_error(errno, "read from the %s",
                 fd == r->client_err ? "client" : "server");
    return -1;
}

/*
 * server_line - one line of the server's log.  The first is its contract:
 * "listening on 127.0.0.1:PORT (tcp, udp)"; later, "accepted PEER on fd N
 * (clients: 1)" says our client is in.
 */
static void
server_line(struct rep *r)
{
    const char *prefix = "listening on ";
    unsigned short port;
    char *paren, *colon;

    if (strncmp(r->line, "accepted ", 9) == 0) {
        r->accepted = true;
        return;
    }
    if (r->port[0] != '\0' || strncmp(r->line, prefix, strlen(prefix)) != 0)
        return;
    if ((paren = strstr(r->line, " (")) == NULL)
        return;
    *paren = '\0';
    if ((colon = strrchr(r->line, ':')) == NULL ||
        parse_port(colon + 1, 1, &port) < 0)
        return;
    snprintf(r->port, sizeof r->port, "%u", (unsigned)port);
}

/* client_said - the client's stderr so far on one line, for a message:
 * newlines become spaces, the last one goes.  Returns r->msgs. */
static const char *
client_said(struct rep *r)
{
    for (size_t i = 0; i < r->msgs_len; i++)
        if (r->msgs[i] == '\n')
            r->msgs[i] = i + 1 == r->msgs_len ? '\0' : ' ';
    return r->msgs;
}

/* settle - SETTLE_US of quiet, so the client is asleep in select().
 * Returns 0, or -1 after saying why. */
static int
settle(void)
{
    struct timespec ts = { 0, SETTLE_US * 1000L };

    while (nanosleep(&ts, &ts) < 0) {
        if (errno != EINTR) {
            report_error(errno, "nanosleep");
            return -1;
        }
    }
    return 0;
}

/*
 * trigger - make the server go away: "quit" on its console, or a signal.
 * Returns 0, or -1 after saying why.
 */
static int
trigger(const struct rep *r, enum method m)
{
    int sig = m == METHOD_SIGTERM ? SIGTERM : SIGKILL;

    if (m == METHOD_QUIT) {
        if (write_all(r->server_in, "quit\n", 5) < 0) {
            report_error(errno, "write \"quit\" to the server's stdin");
            return -1;
        }
        return 0;
    }
    if (kill(r->server, sig) < 0) {
        report_error(errno, "kill %ld %s", (long)r->server,
                     sig == SIGTERM ? "SIGTERM" : "SIGKILL");
        return -1;
    }
    return 0;
}

/*
 * wait_child - reap pid, waiting until deadline (monotonic microseconds).
 * Sleeps in sigtimedwait() on the blocked SIGCHLD: a child that exits
 * between our waitpid() and the sleep leaves SIGCHLD pending, so the sleep
 * ends at once.  Another child's SIGCHLD only means one more look.
 * Returns REAPED with *status set, STILL_RUNNING at the deadline, or
 * WAIT_FAILED after saying why.
 */
static enum reaped
wait_child(pid_t pid, int64_t deadline, int *status)
{
    sigset_t chld;

    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        pid_t got = waitpid(pid, status, WNOHANG);
        int64_t left;
        struct timespec ts;

        if (got == pid)
            return REAPED;
        if (got < 0) {
            if (errno == EINTR)
                continue;
            report_error(errno, "waitpid %ld", (long)pid);
            return WAIT_FAILED;
        }
        if ((left = deadline - now_us()) <= 0)
            return STILL_RUNNING;
        ts.tv_sec = (time_t)(left / 1000000);
        ts.tv_nsec = (long)(left % 1000000) * 1000;
        if (sigtimedwait(&chld, NULL, &ts) < 0 && errno != EAGAIN &&
            errno != EINTR) {
            report_error(errno, "sigtimedwait SIGCHLD");
            return WAIT_FAILED;
        }
    }
}

/* server_status_ok - exit status 0 after quit or SIGTERM (a clean
 * shutdown), death by SIGKILL after SIGKILL. */
static bool
server_status_ok(enum method m, int status)
{
    if (m == METHOD_SIGKILL)
        return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* describe_status - "exited with status 3", "killed by signal 9".
 * Returns out. */
static const char *
describe_status(int status, char *out, size_t len)
{
    if (WIFEXITED(status))
        snprintf(out, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, len, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(out, len, "ended with wait status %#x", (unsigned)status);
    return out;
}

/*
 * kill_and_reap - SIGKILL a child we started, by the PID we recorded, and
 * reap it; who names it in messages.  Sets *pid to -1.
 */
static void
kill_and_reap(pid_t *pid, const char *who)
{
    int status;

    if (*pid < 0)
        return;
    if (kill(*pid, SIGKILL) < 0)
        report_error(errno, "kill %s %ld SIGKILL", who, (long)*pid);
    while (waitpid(*pid, &status, 0) < 0) {
        if (errno != EINTR) {
            report_error(errno, "waitpid %s %ld", who, (long)*pid);
            break;
        }
    }
    *pid = -1;
}

/* end_repetition - kill whichever child is still there, close our ends. */
static void
end_repetition(struct rep *r)
{
    kill_and_reap(&r->client, "client");
    kill_and_reap(&r->server, "server");
    close_fd(&r->server_in);
    close_fd(&r->server_out);
    close_fd(&r->client_in);
    close_fd(&r->client_err);
}

/* close_fd - close *fd if open, say so if that fails, and set it to -1. */
static void
close_fd(int *fd)
{
    if (*fd < 0)
        return;
    if (close(*fd) < 0)
        report_error(errno, "close fd %d", *fd);
    *fd = -1;
}

/* ------------------------------------------------------------------ */
/* Results                                                             */
/* ------------------------------------------------------------------ */

/* record - one client's time to exit and its wait status; a client killed
 * by signal N counts as status 128+N, as in the shell. */
static void
record(struct bench *b, enum method m, int64_t us, int status)
{
    int code = 128;

    if (WIFEXITED(status))
        code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        code = 128 + WTERMSIG(status);

    b->latency_us[m][b->nlatencies[m]++] = us;
    if (b->client_status[m] < 0)
        b->client_status[m] = code;
    else if (b->client_status[m] != code)
        b->status_mixed[m] = true;
}

/*
 * report - the machine-readable line for method m.  The median of an even
 * count is the mean of the middle two; "none" when no client exited.
 */
static void
report(struct bench *b, enum method m)
{
    int64_t *v = b->latency_us[m];
    long n = b->nlatencies[m];
    char status[16];

    if (b->status_mixed[m])
        snprintf(status, sizeof status, "mixed");
    else if (b->client_status[m] < 0)
        snprintf(status, sizeof status, "none");
    else
        snprintf(status, sizeof status, "%d", b->client_status[m]);

    printf("%s method=%s reps=%ld ", PROGNAME, method_names[m], b->reps);
    if (n == 0) {
        printf("median_ms=none max_ms=none min_ms=none");
    } else {
        double median;

        qsort(v, (size_t)n, sizeof *v, compare_us);
        median = n % 2 ? (double)v[n / 2]
                       : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2;
        printf("median_ms=%.2f max_ms=%.2f min_ms=%.2f", median / 1000,
               (double)v[n - 1] / 1000, (double)v[0] / 1000);
    }
    printf(" failures=%ld client_status=%s\n", b->failures[m], status);
}

/* compare_us - qsort() order for int64_t microseconds. */
static int
compare_us(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}
