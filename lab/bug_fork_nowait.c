/*
 * bug_fork_nowait.c - a fork-per-client echo server that never waits for
 * its children.
 *
 * Experiment 22 of the lab (lab/22-zombies.sh).  The parent sits in a
 * blocking accept(); for each connection it fork()s, the child echoes that
 * client until its EOF and exits, and the parent goes back to accept().
 *
 * THE BUG: nobody calls wait() or waitpid(), and SIGCHLD keeps its default
 * action.  A child that exits cannot vanish: the kernel keeps its entry in
 * the process table, with its PID and exit status, until the parent asks
 * for that status.  Each client served leaves one such zombie (`ps` shows
 * it in state Z, "<defunct>"), for as long as the parent lives.  Enough of
 * them and fork() fails with EAGAIN: every zombie still holds a PID.
 * lab/fork_server.c does it right: install_reaper() there catches SIGCHLD,
 * and the handler, on_sigchld(), collects every finished child with
 * waitpid() and WNOHANG, in a loop.
 *
 * Everything else is as in fork_server: the child closes the listener and
 * the parent its copy of the connection, SIGPIPE is ignored, EINTR and
 * ECONNABORTED from accept() are retried, every call is checked.
 *
 * Run:    lab/bug_fork_nowait [-p PORT]  127.0.0.1; PORT defaults to 9877,
 *                                        0 lets the kernel choose
 *
 * The first line is "listening on 127.0.0.1:PORT (tcp)"; then, unlike
 * fork_server, one line per client, "accepted fd N: child PID", so that
 * the PIDs in `ps` can be matched with the clients.  SIGTERM or SIGINT ends
 * the parent with status 0; its zombies then go to init (or the nearest
 * subreaper), which waits for them.
 * Exit status: 1 for a bad argument, 2 if the listener cannot be set up.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define PROGNAME     "bug_fork_nowait"

/* The shared helpers (strict port parsing, report_error, write_all). */
#include "../common.h"
/* What the blocking servers share: parse_server_args, install_handlers,
 * open_listener, handle_accept_error, echo_until_eof. */
#include "blocking_echo.h"

static _Noreturn void serve(int listen_fd);
static void start_child(int listen_fd, int conn_fd);

int
main(int argc, char **argv)
{
    unsigned short port = DEFAULT_PORT;
    int rc, listen_fd;

    if ((rc = parse_server_args(argc, argv, NULL, NULL, NULL, &port)) >= 0)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* each line at once, even in a pipe */
    /* THE BUG: SIGPIPE, SIGTERM and SIGINT are set up, SIGCHLD is not. */
    if (install_handlers() < 0)
        return 2;
    if ((listen_fd = open_listener(port)) < 0)
        return 2;
    serve(listen_fd);
}

/*
 * serve - the parent's loop: wait in accept(), hand the connection to a new
 * child, wait again.  Never returns.
 */
static _Noreturn void
serve(int listen_fd)
{
    for (;;) {
        int conn_fd = accept(listen_fd, NULL, NULL);

        if (conn_fd < 0) {
            handle_accept_error(listen_fd, errno);
            continue;
        }
        start_child(listen_fd, conn_fd);
    }
}

/*
 * start_child - fork a process to serve conn_fd, and close the parent's
 * copy of it.  THE BUG is what is missing: the parent never learns that
 * the child has finished, because it never asks (no waitpid()).
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
    else
        printf("accepted fd %d: child %ld\n", conn_fd, (long)pid);
    if (close(conn_fd) < 0)
        report_error(errno, "close fd %d", conn_fd);
}
