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
 * Start reading at main(), then serve(): the accept-echo-close loop.  The
 * command line, SIGTERM/SIGINT, the listener and the echo itself are the
 * same as fork_server's and live in blocking_echo.h.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROGNAME     "iterative_server"

/* The shared helpers (strict port parsing, report_error, write_all). */
#include "../common.h"
/* What both blocking servers share: parse_server_args, install_handlers,
 * open_listener, handle_accept_error, echo_until_eof. */
#include "blocking_echo.h"

static _Noreturn void serve(int listen_fd);

int
main(int argc, char **argv)
{
    unsigned short port = DEFAULT_PORT;
    int rc, listen_fd;

    if ((rc = parse_server_args(argc, argv, NULL, NULL, NULL, &port)) >= 0)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* each line at once, even in a pipe */
    if (install_handlers() < 0)
        return 2;
    if ((listen_fd = open_listener(port)) < 0)
        return 2;
    serve(listen_fd);
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
            /* A signal, a client that gave up while queued, or worse. */
            handle_accept_error(listen_fd, errno);
            continue;
        }
        echo_until_eof(conn_fd);
        if (close(conn_fd) < 0)
            report_error(errno, "close fd %d", conn_fd);
    }
}
