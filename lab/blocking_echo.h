/*
 * blocking_echo.h - what fork_server and iterative_server share.
 *
 * The two comparison servers differ only in who serves an accepted client:
 * a forked child, or the one process itself while everyone else waits.
 * Everything around that is the same and lives here: the command line, the
 * signal handling, the blocking listener, what to do when accept() fails,
 * and the blocking echo of one client.  Each server's .c file keeps its
 * lesson: its serve() loop, and in fork_server the child and the reaping
 * of zombies.
 *
 * Header-only on purpose, as common.h is: each server stays one .c file
 * plus headers, builds with one compiler call, and a student finds every
 * helper one file away.  The functions are plain `static`, not `static
 * inline` as in common.h: both servers use every one of them, and the
 * compiler says so (-Wunused-function) if one ever stops being shared.
 *
 * Contents, in order:
 *   constants            DEFAULT_PORT, BUF_SIZE, ACCEPT_BACKOFF_NS (and
 *                        blocking_server.h's LISTENQ)
 *   the command line     blocking_server.h's parse_server_args()
 *   signals              install_handlers(), set_signal(), on_terminate()
 *   the listener         blocking_server.h's open_listener(),
 *                        handle_accept_error()
 *   one client           blocking_server.h's echo_until_eof()
 *
 * Each server defines _POSIX_C_SOURCE and PROGNAME, then includes
 * "../common.h" (report_error, parse_port, write_all), then this.
 */
#ifndef BLOCKING_ECHO_H
#define BLOCKING_ECHO_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef COMMON_H
#error "include ../common.h before blocking_echo.h"
#endif

#define DEFAULT_PORT      9877
#define BUF_SIZE          16384         /* select_server's read size */
#define ACCEPT_BACKOFF_NS 100000000L    /* 0.1 s pause after accept() fails */

/* open_listener(), echo_until_eof(): shared with two bug programs. */
#include "blocking_server.h"

static int install_handlers(void);
static int set_signal(int signo, void (*handler)(int), int flags,
                      const char *name);
static void on_terminate(int signo);
static void handle_accept_error(int listen_fd, int err);

/*
 * install_handlers - ignore SIGPIPE (a write to a client that has gone
 * fails with EPIPE instead of killing the process), exit 0 on SIGTERM and
 * SIGINT.  Returns 0, or -1 after printing why.
 */
static int
install_handlers(void)
{
    if (set_signal(SIGPIPE, SIG_IGN, 0, "SIGPIPE") < 0 ||
        set_signal(SIGTERM, on_terminate, 0, "SIGTERM") < 0 ||
        set_signal(SIGINT, on_terminate, 0, "SIGINT") < 0)
        return -1;
    return 0;
}

/*
 * set_signal - sigaction() for one signal: handler (or SIG_IGN) with
 * exactly the given sa_flags and nothing blocked beyond the signal itself.
 * The flags are the caller's to choose: without SA_RESTART, a blocking call
 * the signal interrupts fails with EINTR instead of carrying on.  name is
 * for the error message.  Returns 0, or -1 after printing why.
 */
static int
set_signal(int signo, void (*handler)(int), int flags, const char *name)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    if (sigaction(signo, &sa, NULL) < 0) {
        report_error(errno, "sigaction %s", name);
        return -1;
    }
    return 0;
}

/*
 * on_terminate - SIGTERM or SIGINT: exit 0 at once.  _exit() is safe in a
 * handler, and there is nothing to flush (stdout is line-buffered and its
 * one line is out); the kernel closes the sockets.  A flag would not do: it
 * is not seen while the server sleeps in accept() or read(), and one checked
 * before each accept() misses a signal that lands between the check and the
 * call, until the next client comes: the race select_server's self-pipe
 * closes.
 */
static void
on_terminate(int signo)
{
    (void)signo;
    _exit(0);
}

/*
 * handle_accept_error - accept() on listen_fd failed with err; the caller
 * accepts again.  EINTR (a signal arrived) and ECONNABORTED (a client gave
 * up while queued) are normal and pass in silence.  Anything else (EMFILE,
 * ENOBUFS...) is reported, then a short pause, rather than spin on a
 * connection that stays queued.
 */
static void
handle_accept_error(int listen_fd, int err)
{
    struct timespec backoff = {0, ACCEPT_BACKOFF_NS};

    if (err == EINTR || err == ECONNABORTED)
        return;
    report_error(err, "accept on fd %d", listen_fd);
    (void)nanosleep(&backoff, NULL);    /* EINTR: a shorter pause */
}

#endif /* BLOCKING_ECHO_H */
