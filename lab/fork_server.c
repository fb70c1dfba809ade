/*
 * fork_server.c - the textbook concurrent echo server: one process per client.
 *
 * The classic answer to "how does one server talk to many clients?" before
 * select() (Stevens, UNP chapter 5): the parent sits in a blocking accept();
 * for each connection it fork()s, the child echoes that one client with plain
 * blocking read() and write() until its EOF and exits, and the parent goes
 * straight back to accept().  No fd sets, no buffers, no state machine: the
 * kernel's scheduler does the multiplexing.
 *
 * THE LESSON: concurrency here costs a process per client.  A thousand
 * connected clients are a thousand processes, each with its own stack, page
 * tables and kernel bookkeeping, and every connection pays for a fork().
 * And a child that exits stays a zombie (an entry in the process table
 * holding its exit status) until the parent wait()s for it: without
 * on_sigchld below, the table fills with one zombie per client served.
 * select_server serves the same thousand clients from one process.
 *
 * Run:    lab/fork_server [-p PORT]      127.0.0.1; PORT defaults to 9877,
 *                                        0 lets the kernel choose
 *
 * The first and only line on stdout is "listening on 127.0.0.1:PORT (tcp)";
 * nothing is printed per connection, so a benchmark can open thousands.
 * SIGTERM or SIGINT ends the parent with status 0 at once.  Children still
 * serving a client are not told: each lives on until its client leaves
 * (Ctrl-C in a terminal reaches them all anyway, as the terminal signals the
 * whole process group).
 * Exit status: 1 for a bad argument, 2 if the listener cannot be set up.
 *
 * Start reading at main(), then serve(): the accept-and-fork loop.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PROGNAME     "fork_server"

/* The shared helpers (strict port parsing, report_error, write_all). */
#include "../common.h"

#define DEFAULT_PORT      9877
#define LISTENQ           1024          /* listen() backlog, as in UNP */
#define BUF_SIZE          16384         /* select_server's read size */
#define ACCEPT_BACKOFF_NS 100000000L    /* 0.1 s pause after accept() fails */

static int parse_args(int argc, char **argv, unsigned short *port);
static int install_handlers(void);
static void on_sigchld(int signo);
static void on_terminate(int signo);
static int open_listener(unsigned short port);
static _Noreturn void serve(int listen_fd);
static void start_child(int listen_fd, int conn_fd);
static void echo_until_eof(int fd);

int
main(int argc, char **argv)
{
    unsigned short port = DEFAULT_PORT;
    int rc, listen_fd;

    if ((rc = parse_args(argc, argv, &port)) >= 0)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* each line at once, even in a pipe */
    if (install_handlers() < 0)
        return 2;
    if ((listen_fd = open_listener(port)) < 0)
        return 2;
    serve(listen_fd);
}

/*
 * parse_args - "-h", "-p PORT" or nothing.  Returns -1 to go on, or the exit
 * status after printing the usage (0) or one line saying what is wrong (1).
 */
static int
parse_args(int argc, char **argv, unsigned short *port)
{
    if (argc == 2 && strcmp(argv[1], "-h") == 0) {
        printf("usage: %s [-p PORT]   (default %d, 0 = kernel chooses)\n",
               PROGNAME, DEFAULT_PORT);
        return 0;
    }
    if (argc == 1)
        return -1;
    if (strcmp(argv[1], "-p") != 0) {
        report_error(0, "unexpected argument '%s' (usage: %s [-p PORT])",
                     argv[1], PROGNAME);
        return 1;
    }
    if (argc == 2) {
        report_error(0, "-p needs a port (0-65535)");
        return 1;
    }
    if (parse_port(argv[2], 0, port) < 0) {
        report_error(0, "invalid port '%s' (expected 0-65535)", argv[2]);
        return 1;
    }
    if (argc > 3) {
        report_error(0, "unexpected argument '%s' (usage: %s [-p PORT])",
                     argv[3], PROGNAME);
        return 1;
    }
    return -1;
}

/*
 * install_handlers - ignore SIGPIPE (a write to a client that has gone
 * fails with EPIPE instead of killing the child), reap children on SIGCHLD,
 * exit 0 on SIGTERM and SIGINT.  No SA_RESTART: a blocking accept() then
 * returns EINTR when a child exits, and serve() shows the retry UNP teaches
 * (some systems never restart accept() anyway).  Returns 0, or -1 after
 * printing why.
 */
static int
install_handlers(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGPIPE");
        return -1;
    }
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_NOCLDSTOP;         /* exits only, not stops */
    if (sigaction(SIGCHLD, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGCHLD");
        return -1;
    }
    sa.sa_handler = on_terminate;
    sa.sa_flags = 0;
    if (sigaction(SIGTERM, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGTERM");
        return -1;
    }
    if (sigaction(SIGINT, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGINT");
        return -1;
    }
    return 0;
}

/*
 * on_sigchld - reap every child that has exited.  A loop, not one wait():
 * signals do not queue, so one SIGCHLD may stand for several exits (UNP
 * 5.10).  WNOHANG, so a handler never blocks while other children still
 * run.  errno is saved: the handler may interrupt a call whose errno the
 * main program is about to read.
 */
static void
on_sigchld(int signo)
{
    int saved_errno = errno;

    (void)signo;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        continue;
    errno = saved_errno;
}

/*
 * on_terminate - SIGTERM or SIGINT: exit 0 at once.  _exit() is safe in a
 * handler, and there is nothing to flush (stdout is line-buffered and its
 * one line is out); the kernel closes the sockets.  A flag checked before
 * each accept() would miss a signal that lands between the check and the
 * call, until the next client came: the race select_server's self-pipe
 * closes.
 */
static void
on_terminate(int signo)
{
    (void)signo;
    _exit(0);
}

/*
 * open_listener - a blocking listening socket on 127.0.0.1:port, and the
 * first line naming the port really bound.  Returns the fd, or -1 after
 * printing why.
 */
static int
open_listener(unsigned short port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int fd, on = 1;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
        report_error(errno, "socket");
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(fd, LISTENQ) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        report_error(errno, "listening on 127.0.0.1:%u", (unsigned)port);
        close(fd);
        return -1;
    }
    printf("listening on 127.0.0.1:%u (tcp)\n", (unsigned)ntohs(sin.sin_port));
    return fd;
}

/*
 * serve - the parent's loop: wait in accept(), hand the connection to a new
 * child, close the parent's copy, wait again.  Never returns.
 */
static _Noreturn void
serve(int listen_fd)
{
    for (;;) {
        int conn_fd = accept(listen_fd, NULL, NULL);

        if (conn_fd < 0) {
            int err = errno;
            struct timespec backoff = {0, ACCEPT_BACKOFF_NS};

            /* A child exited (SIGCHLD), or a client gave up while queued. */
            if (err == EINTR || err == ECONNABORTED)
                continue;
            /* Anything else (EMFILE, ENOBUFS...): say so, pause, retry,
             * rather than spin on a connection that stays queued. */
            report_error(err, "accept on fd %d", listen_fd);
            (void)nanosleep(&backoff, NULL);    /* EINTR: a shorter pause */
            continue;
        }
        start_child(listen_fd, conn_fd);
    }
}

/*
 * start_child - fork a process to serve conn_fd.  After fork() both
 * processes hold both sockets: the child closes the listener (only the
 * parent accepts), the parent closes the connection (only the child talks
 * to it).  The connection is really closed, FIN and all, only when its last
 * descriptor goes: if the parent kept its copy, no client would ever see
 * the server close, and the parent would run out of descriptors.  If fork()
 * fails (EAGAIN: too many processes), this one client is closed and the
 * server goes on.
 */
static void
start_child(int listen_fd, int conn_fd)
{
    pid_t pid = fork();

    if (pid == 0) {
        if (close(listen_fd) < 0)
            report_error(errno, "close listener fd %d", listen_fd);
        echo_until_eof(conn_fd);
        _exit(0);       /* closes conn_fd; not exit(): no stdio flushing */
    }
    if (pid < 0)
        report_error(errno, "fork for the client on fd %d", conn_fd);
    if (close(conn_fd) < 0)
        report_error(errno, "close fd %d", conn_fd);
}

/*
 * echo_until_eof - in the child: write back whatever arrives until the
 * client's EOF.  A reset or a vanished reader (ECONNRESET, EPIPE) is the
 * client leaving, not news; any other error is reported.
 */
static void
echo_until_eof(int fd)
{
    char buf[BUF_SIZE];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);

        if (n == 0)
            return;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != ECONNRESET)
                report_error(errno, "read fd %d", fd);
            return;
        }
        if (write_all(fd, buf, (size_t)n) < 0) {
            if (errno != EPIPE && errno != ECONNRESET)
                report_error(errno, "write fd %d", fd);
            return;
        }
    }
}
