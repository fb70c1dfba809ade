/*
 * bug_fork_noclose.c - a fork-per-client echo server whose parent keeps its
 * copy of every connection.
 *
 * Experiment 21 of the lab (lab/21-fork-forgets-close.sh).  The parent
 * sits in a blocking accept(); for each connection it fork()s, the child
 * echoes that client until its EOF and exits, the parent reaps it.
 *
 * THE BUG: after fork() the parent does not close(conn_fd).  fork() copies
 * the descriptor table, so parent and child each hold a descriptor for the
 * one socket, and the kernel closes a socket (sends its FIN) only when the
 * last descriptor for it is closed.  The child's exit closes its copy and
 * nothing happens on the wire: the parent's copy keeps the connection open.
 * The client, its own input done, waits for an end that never comes; the
 * server's end of the connection stays in CLOSE-WAIT; and the parent holds
 * one more descriptor for every client it has ever served, until accept()
 * fails with EMFILE.  Each new child inherits all of them too.
 * lab/fork_server.c does it right: start_child() there closes conn_fd in
 * the parent as soon as the child has been forked.
 *
 * Everything else is as in fork_server: the child closes the listener,
 * SIGCHLD reaps every finished child, SIGPIPE is ignored, EINTR and
 * ECONNABORTED from accept() are retried, every call is checked.
 *
 * Run:    lab/bug_fork_noclose [-p PORT] 127.0.0.1; PORT defaults to 9877,
 *                                        0 lets the kernel choose
 *
 * The first line is "listening on 127.0.0.1:PORT (tcp)"; then, unlike
 * fork_server, one line per client, "accepted fd N: child PID".  SIGTERM
 * or SIGINT ends the parent with status 0, and only then are the
 * connections it kept closed.
 * Exit status: 1 for a bad argument, 2 if the listener cannot be set up.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGNAME     "bug_fork_noclose"

/* The shared helpers (strict port parsing, report_error, write_all). */
#include "../common.h"
/* What the blocking servers share: parse_server_args, install_handlers,
 * set_signal, open_listener, handle_accept_error, echo_until_eof. */
#include "blocking_echo.h"

static void reap_children(int signo);
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
    /* SA_NOCLDSTOP: a child that stops is not news, only one that exits. */
    if (install_handlers() < 0 ||
        set_signal(SIGCHLD, reap_children, SA_NOCLDSTOP, "SIGCHLD") < 0)
        return 2;
    if ((listen_fd = open_listener(port)) < 0)
        return 2;
    serve(listen_fd);
}

/*
 * reap_children - SIGCHLD: collect the status of every child that has
 * exited, so none stays a zombie.  One signal may stand for several exits
 * (a pending signal is not counted twice), hence the loop; WNOHANG, so the
 * handler returns while other children still run.  The handler must not
 * change the errno that accept() may just have set.
 */
static void
reap_children(int signo)
{
    int saved_errno = errno;

    (void)signo;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        continue;
    errno = saved_errno;
}

/*
 * serve - the parent's loop: wait in accept(), hand the connection to a new
 * child, wait again.  accept() fails with EINTR whenever a child exits
 * (the handler is installed without SA_RESTART); that is retried like any
 * other passing error.  Never returns.
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
 * start_child - fork a process to serve conn_fd.  The child closes the
 * listener, which only the parent uses.  THE BUG is in the parent's half:
 * when fork() works, it leaves conn_fd open ("the child has it now"), so
 * the connection outlives the child.  Only when fork() fails, and no child
 * will ever serve this client, is conn_fd closed.
 */
static void
start_child(int listen_fd, int conn_fd)
{
    pid_t pid = fork();

    if (pid == 0) {
        if (close(listen_fd) < 0)
            report_error(errno, "close listener fd %d", listen_fd);
        echo_until_eof(conn_fd);
        _exit(0);       /* closes the child's copy of conn_fd, and only that */
    }
    if (pid < 0) {
        report_error(errno, "fork for the client on fd %d", conn_fd);
        if (close(conn_fd) < 0)
            report_error(errno, "close fd %d", conn_fd);
        return;
    }
    printf("accepted fd %d: child %ld\n", conn_fd, (long)pid);
}
