/*
 * bug_no_listen.c - a TCP server that binds its port and never calls
 * listen().
 *
 * Experiment 20 of the lab (lab/20-bind-without-listen.sh).  It makes a
 * TCP socket, sets SO_REUSEADDR, binds it to 127.0.0.1:PORT, prints the
 * port it got, and waits for clients in accept().
 *
 * THE BUG: there is no listen() between bind() and accept().  bind() only
 * gives the socket a local address; listen() is what makes it a listening
 * socket, one the kernel completes handshakes for and queues connections
 * on.  Without it:
 *   - accept() fails at once with EINVAL, "Invalid argument" (accept(2):
 *     "Socket is not listening for connections");
 *   - a client's SYN finds no listening socket on the port, so the kernel
 *     answers with a RST, and connect() fails with ECONNREFUSED;
 *   - the port is taken all the same: a second socket's bind() to it fails
 *     with EADDRINUSE, unless both sockets set SO_REUSEADDR;
 *   - ss and netstat do not list the socket: it is neither a listener nor
 *     a connection.
 * Every other server of the lab calls listen() right after bind() (see
 * open_socket() in select_server.c, open_listener() in naive_server.c).
 *
 * Everything else is done the careful way: every call is checked, and
 * when accept() fails, the error is reported and accept() is tried again a
 * second later, as select_server does (after a tenth of a second) with an
 * accept() error it does not expect, instead of dying or spinning.  That
 * also keeps the socket bound, so that you can look at it.
 *
 * Run:    lab/bug_no_listen [-p PORT]    127.0.0.1; PORT defaults to 9877,
 *                                        0 lets the kernel choose
 *
 * The first line is "listening on 127.0.0.1:PORT (tcp)", as the other lab
 * servers print it: what the program believes.  Each failed accept() adds
 * "bug_no_listen: accept: Invalid argument" on stderr.  SIGTERM and SIGINT
 * keep their default action (status 143 or 130).
 * Exit status: 1 for a bad argument, 2 if the socket cannot be set up.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PROGNAME "bug_no_listen"

/* The shared helpers (strict port parsing, report_error). */
#include "../common.h"

#define DEFAULT_PORT 9877
#define RETRY_SECONDS 1                 /* between two failed accept()s */

/* The command line: -h, -p PORT, each mistake named in one line. */
#include "server_args.h"

static int open_socket(unsigned short port);
static _Noreturn void serve(int fd);

int
main(int argc, char **argv)
{
    unsigned short port = DEFAULT_PORT;
    int fd, rc;

    if ((rc = parse_server_args(argc, argv, NULL, NULL, NULL, &port)) >= 0)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* each line at once, even in a pipe */
    if ((fd = open_socket(port)) < 0)
        return 2;
    serve(fd);
}

/*
 * open_socket - a TCP socket bound to 127.0.0.1:port, and the first line
 * naming the port really bound.  THE BUG: no listen().  Returns the fd, or
 * -1 after printing why.
 */
static int
open_socket(unsigned short port)
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
        /* THE BUG: listen(fd, LISTENQ) belongs here. */
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        report_error(errno, "binding 127.0.0.1:%u", (unsigned)port);
        (void)close(fd);        /* the failure above is the one to report */
        return -1;
    }
    printf("listening on 127.0.0.1:%u (tcp)\n", (unsigned)ntohs(sin.sin_port));
    return fd;
}

/*
 * serve - wait for a client in accept(); when it fails, say why and try
 * again RETRY_SECONDS later.  A client accepted (there is none without
 * listen()) would be closed at once.  Never returns.
 */
static _Noreturn void
serve(int fd)
{
    for (;;) {
        struct timespec backoff = {RETRY_SECONDS, 0};
        int conn = accept(fd, NULL, NULL);

        if (conn >= 0) {
            printf("accepted fd %d\n", conn);
            if (close(conn) < 0)
                report_error(errno, "close fd %d", conn);
            continue;
        }
        if (errno != EINTR)
            report_error(errno, "accept");
        (void)nanosleep(&backoff, NULL);    /* EINTR: a shorter pause */
    }
}
