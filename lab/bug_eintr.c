/*
 * bug_eintr.c - a fork-per-client echo server that dies of a signal it
 * handles itself.
 *
 * Experiment 19 of the lab (lab/19-eintr.sh).  The parent sits in a
 * blocking accept(); for each connection it fork()s, the child echoes that
 * client until its EOF and exits, and the parent goes back to accept().  A
 * SIGCHLD handler collects the children that exit, so that none stays a
 * zombie.  It is installed with sigaction() and sa_flags SA_NOCLDSTOP
 * alone, so without SA_RESTART, exactly as lab/fork_server installs its
 * own.
 *
 * THE BUG: serve() takes every failure of accept() for a fatal error,
 * EINTR included.  When a signal arrives while accept() is blocked, and
 * its handler was installed without SA_RESTART, the kernel runs the
 * handler and accept() returns -1 with errno EINTR, "Interrupted system
 * call".  Nothing is wrong, and the right answer is to call accept() again.
 * Here, the first client to leave ends its child, the child's exit sends
 * SIGCHLD, and the server exits: "bug_eintr: accept: Interrupted system
 * call".  lab/fork_server.c is the same server done right: its serve()
 * calls accept() again after EINTR (handle_accept_error() in
 * blocking_echo.h).  select_server's serve() does the same after select()
 * fails with EINTR, and there it must: Linux never restarts select().
 *
 * With -r the handler is installed with SA_RESTART.  Linux then restarts
 * the interrupted accept() itself, and the bug stays hidden: for accept(),
 * read() and write() on sockets, but not for select(), poll() or a socket
 * with a receive timeout (signal(7) has the list).
 *
 * Everything else is done the careful way: the child closes the listener
 * and the parent its copy of the connection, the handler saves errno and
 * reaps every finished child in a loop, SIGPIPE is ignored, the child's
 * read() and write() retry after EINTR, every call is checked.
 *
 * Run:    lab/bug_eintr [-r] [-p PORT]   127.0.0.1; PORT defaults to 9877,
 *                                        0 lets the kernel choose
 *
 * The first line is "listening on 127.0.0.1:PORT (tcp)"; then one line
 * per client, "accepted fd N: child PID".  SIGTERM and SIGINT keep their
 * default action (status 143 or 130); children still serving a client live
 * on until their client leaves.
 * Exit status: 1 for a bad argument, 2 if the listener or the handlers
 * cannot be set up, 3 when accept() fails.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGNAME "bug_eintr"

/* The shared helpers (strict port parsing, report_error, write_all). */
#include "../common.h"

#define DEFAULT_PORT 9877
#define BUF_SIZE     16384
/* open_listener() and echo_until_eof(), as fork_server has them. */
#include "blocking_server.h"

static int install_handlers(bool restart);
static void on_sigchld(int signo);
static int serve(int listen_fd);
static void start_child(int listen_fd, int conn_fd);

int
main(int argc, char **argv)
{
    unsigned short port = DEFAULT_PORT;
    bool restart = false;
    int rc, listen_fd;

    if ((rc = parse_server_args(argc, argv, "-r", "-r: SA_RESTART", &restart,
                                &port)) >= 0)
        return rc;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* each line at once, even in a pipe */
    if (install_handlers(restart) < 0)
        return 2;
    if ((listen_fd = open_listener(port)) < 0)
        return 2;
    return serve(listen_fd);
}

/*
 * install_handlers - ignore SIGPIPE (a write to a client that has gone
 * fails with EPIPE instead of killing the child), and reap children on
 * SIGCHLD; SA_NOCLDSTOP: on exits only, not stops.  SA_RESTART only with
 * -r.  Returns 0, or -1 after printing why.
 */
static int
install_handlers(bool restart)
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
    sa.sa_flags = SA_NOCLDSTOP | (restart ? SA_RESTART : 0);
    if (sigaction(SIGCHLD, &sa, NULL) < 0) {
        report_error(errno, "sigaction SIGCHLD");
        return -1;
    }
    return 0;
}

/*
 * on_sigchld - reap every child that has exited: signals do not queue, so
 * one SIGCHLD may stand for several exits.  WNOHANG: never block in a
 * handler.  errno is saved, for the call this handler interrupted.
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
 * serve - the parent's loop: wait in accept(), hand the connection to a
 * new child, wait again.  Returns 3 when accept() fails.
 */
static int
serve(int listen_fd)
{
    for (;;) {
        int conn_fd = accept(listen_fd, NULL, NULL);

        if (conn_fd < 0) {
            /* THE BUG: EINTR is not an error.  Right: if errno is EINTR
             * (or ECONNABORTED), call accept() again. */
            report_error(errno, "accept");
            return 3;
        }
        start_child(listen_fd, conn_fd);
    }
}

/*
 * start_child - fork a process to serve conn_fd.  The child closes the
 * listener, the parent its copy of the connection: the connection ends,
 * FIN and all, when its last descriptor is closed.  If fork() fails, this
 * one client is closed and the server goes on.
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

