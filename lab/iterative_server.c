/*
 * iterative_server.c - the simplest echo server: one client at a time.
 *
 * Accept a client, echo it with blocking read() and write() until its EOF,
 * close it, accept the next.  Every server starts out like this, and for a
 * request that takes a millisecond (a time-of-day service) it is enough.
 *
 * THE LESSON: while one client is connected, nobody else is served.  The
 * kernel still completes a second client's handshake and queues the
 * connection in the listen backlog, so the second client's connect()
 * succeeds and its bytes are accepted into the socket's receive buffer; but
 * the program is inside read() on the first client and will not call
 * accept() again until that client leaves.  An idle first client therefore
 * blocks everyone, for as long as it likes.  fork_server gives each client
 * a process of its own; select_server waits for all of them in one place.
 *
 * Run:    lab/iterative_server [-p PORT]   127.0.0.1; PORT defaults to 9877,
 *                                          0 lets the kernel choose
 *
 * The first and only line on stdout is "listening on 127.0.0.1:PORT (tcp)";
 * nothing is printed per connection, so a benchmark can open thousands.
 * SIGTERM or SIGINT ends the server with status 0 at once, dropping the
 * client being served and every connection still queued.
 * Exit status: 1 for a bad argument, 2 if the listener cannot be set up.
 *
 * Start reading at main(), then serve(): the accept-echo-close loop.
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
#include <time.h>
#include <unistd.h>

#define PROGNAME     "iterative_server"

/* The shared helpers (strict port parsing, report_error, write_all). */
#include "../common.h"

#define DEFAULT_PORT      9877
#define LISTENQ           1024          /* listen() backlog, as in UNP */
#define BUF_SIZE          16384         /* select_server's read size */
#define ACCEPT_BACKOFF_NS 100000000L    /* 0.1 s pause after accept() fails */

static int parse_args(int argc, char **argv, unsigned short *port);
static int install_handlers(void);
static void on_terminate(int signo);
static int open_listener(unsigned short port);
static _Noreturn void serve(int listen_fd);
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
 * fails with EPIPE instead of killing the server), exit 0 on SIGTERM and
 * SIGINT.  Returns 0, or -1 after printing why.
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
    sa.sa_handler = on_terminate;
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
 * on_terminate - SIGTERM or SIGINT: exit 0 at once.  _exit() is safe in a
 * handler, and there is nothing to flush (stdout is line-buffered and its
 * one line is out); the kernel closes the sockets.  A flag checked in the
 * loop would not be seen while the server sleeps in accept() or read().
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
 * serve - the loop: accept one client, echo it until it leaves, close it.
 * Everyone else waits in the listen backlog meanwhile.  Never returns.
 */
static _Noreturn void
serve(int listen_fd)
{
    for (;;) {
        int conn_fd = accept(listen_fd, NULL, NULL);

        if (conn_fd < 0) {
            int err = errno;
            struct timespec backoff = {0, ACCEPT_BACKOFF_NS};

            /* A signal, or a client that gave up while queued: next one. */
            if (err == EINTR || err == ECONNABORTED)
                continue;
            /* Anything else (ENOBUFS, EMFILE...): say so, pause, retry,
             * rather than spin on a connection that stays queued. */
            report_error(err, "accept on fd %d", listen_fd);
            (void)nanosleep(&backoff, NULL);    /* EINTR: a shorter pause */
            continue;
        }
        echo_until_eof(conn_fd);
        if (close(conn_fd) < 0)
            report_error(errno, "close fd %d", conn_fd);
    }
}

/*
 * echo_until_eof - write back whatever arrives until the client's EOF.  A
 * reset or a vanished reader (ECONNRESET, EPIPE) is the client leaving,
 * not news; any other error is reported.  Either way the next client is
 * served.
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
