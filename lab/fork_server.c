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
 * Start reading at main(), then serve(): the accept-and-fork loop.  The
 * command line, SIGTERM/SIGINT, the listener and the echo itself are the
 * same as iterative_server's and live in blocking_echo.h.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGNAME     "fork_server"

/* The shared helpers (strict port parsing, report_error, write_all). */
#include "../common.h"
/* What both blocking servers share: parse_server_args, install_handlers,
 * set_signal, open_listener, handle_accept_error, echo_until_eof. */
#include "blocking_echo.h"

static int install_reaper(void);
static void on_sigchld(int signo);
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
    if (install_handlers() < 0 || install_reaper() < 0)
        return 2;
    if ((listen_fd = open_listener(port)) < 0)
        return 2;
    serve(listen_fd);
}

/*
 * install_reaper - reap children on SIGCHLD (SIGPIPE, SIGTERM and SIGINT
 * are install_handlers' job); SA_NOCLDSTOP: on exits only, not stops.  No
 * SA_RESTART: a blocking accept() then returns EINTR when a child exits,
 * and serve() shows the retry UNP teaches (some systems never restart
 * accept() anyway).  Returns 0, or -1 after printing why.
 */
static int
install_reaper(void)
{
    return set_signal(SIGCHLD, on_sigchld, SA_NOCLDSTOP, "SIGCHLD");
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
 * serve - the parent's loop: wait in accept(), hand the connection to a new
 * child, close the parent's copy, wait again.  Never returns.
 */
static _Noreturn void
serve(int listen_fd)
{
    for (;;) {
        int conn_fd = accept(listen_fd, NULL, NULL);

        if (conn_fd < 0) {
            /* Most often EINTR: a child exited (SIGCHLD).  Again. */
            handle_accept_error(listen_fd, errno);
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
