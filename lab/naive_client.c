/*
 * naive_client.c - the textbook line-at-a-time echo client, with its flaw.
 *
 * Experiment 9 of the lab (lab/09-shutdown-seen-from-client.sh).  It loops:
 * read a line from stdin with fgets(), write it to the socket, read the
 * echo, print it.  This is the first str_cli() of Stevens' UNP (5.5), the
 * one every course starts with.
 *
 * THE FLAW: while it sits in fgets() it watches only the keyboard.  If the
 * server goes away meanwhile, the server's FIN arrives and waits, unread, in
 * our socket (ss shows it in CLOSE-WAIT).  Nothing happens until the user
 * types a line: the write() still succeeds (the kernel queues it; the dead
 * server's kernel answers with a reset), and only the read() that follows
 * returns 0, "server terminated prematurely" (UNP 5.12).  select_client
 * waits for stdin and the socket in one select() and notices at once.
 *
 * Everything else is done the careful way: every call is checked, EINTR is
 * retried, SIGPIPE is ignored, partial writes are resumed.
 *
 * Run:    lab/naive_client HOST PORT      then type lines
 *
 * Exit status, as select_client's: 0 at the end of stdin, 1 for a usage
 * error, 2 if it cannot connect, 3 if the server closed or reset the
 * connection, 4 for a local error (reading stdin, writing stdout).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROGNAME "naive_client"

/* The shared helpers (strict port parsing, write_all) of the real programs. */
#include "../common.h"
/* connect_to(): getaddrinfo(), then connect() to each address in turn. */
#include "connect_to.h"

#define MAXLINE  4096

static int str_cli(int fd);
static int read_echo(int fd, size_t want);

int
main(int argc, char **argv)
{
    int fd, status;

    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST PORT\n", PROGNAME);
        return 1;
    }
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        perror(PROGNAME ": signal SIGPIPE");
        return 4;
    }
    if ((fd = connect_to(argv[1], argv[2])) < 0)
        return 2;
    status = str_cli(fd);
    if (close(fd) < 0) {
        perror(PROGNAME ": close");
        return status ? status : 4;
    }
    return status;
}


/*
 * str_cli - the loop: a line from stdin, to the server, its echo to stdout.
 * THE FLAW is the fgets(): it blocks on stdin alone, deaf to the socket.
 * Returns the exit status.
 */
static int
str_cli(int fd)
{
    char line[MAXLINE];

    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strlen(line);
        int status;

        if (write_all(fd, line, len) < 0) {
            int err = errno;

            fprintf(stderr, "%s: write: %s\n", PROGNAME, strerror(err));
            return (err == EPIPE || err == ECONNRESET) ? 3 : 4;
        }
        if ((status = read_echo(fd, len)) != 0)
            return status;
    }
    if (ferror(stdin)) {
        perror(PROGNAME ": reading stdin");
        return 4;
    }
    return 0;
}

/*
 * read_echo - read `want` bytes of echo and copy them to stdout.  Returns 0,
 * 3 if the server closed or reset the connection, 4 if stdout fails.
 */
static int
read_echo(int fd, size_t want)
{
    char buf[MAXLINE];

    while (want > 0) {
        ssize_t n = read(fd, buf, want < sizeof buf ? want : sizeof buf);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror(PROGNAME ": read");
            return 3;
        }
        if (n == 0) {
            fprintf(stderr, "%s: server terminated prematurely\n", PROGNAME);
            return 3;
        }
        if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n ||
            fflush(stdout) == EOF) {
            perror(PROGNAME ": writing stdout");
            return 4;
        }
        want -= (size_t)n;
    }
    return 0;
}

