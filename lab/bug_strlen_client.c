/*
 * bug_strlen_client.c - an echo client that prints what it receives as if
 * it were a C string.
 *
 * Experiment 17 of the lab (lab/17-binary-data.sh).  For each line of
 * stdin it sends the line, reads the echo back, every byte of it (it reads
 * until as many bytes have come back as it sent), and prints the echo.
 *
 * THE BUG: the echo is printed with printf("%s", reply).  recv() puts the
 * bytes in the buffer and returns how many there are; it writes no NUL
 * after them.  %s ignores that count and stops only at the first NUL
 * byte.  Two things go wrong:
 *   - a NUL byte in the data ends the output there: the echo of
 *     "hello\0world\n" prints as "hello", and a line that starts with a
 *     NUL prints as nothing at all;
 *   - after a short echo, printf goes on into what the buffer held before,
 *     and the tail of an earlier, longer echo is printed a second time.
 * The count is the length of the data, and the only one: write exactly
 * that many bytes, fwrite(reply, 1, n, stdout).  select_client does (its
 * socket_readable() adds recv()'s count to its output buffer, and
 * write_stdout() writes that many bytes), so it passes all 256 byte values
 * through unchanged.
 *
 * One precaution keeps the bug harmless to the program itself: the buffer
 * has one byte more than the longest echo, and that byte stays 0, so
 * printf always finds a NUL inside the array.  Programs with this bug often
 * lack it, and print whatever memory follows their buffer.
 *
 * Everything else is done the careful way: every byte of a line is sent,
 * NULs included (getline() returns the line's length, where fgets() and
 * strlen() would stop at the first NUL), short reads and writes are
 * resumed, EINTR is retried, SIGPIPE is ignored, every call is checked.
 *
 * Run:    lab/bug_strlen_client HOST PORT     then type lines, or pipe them
 *
 * A line longer than REPLY_MAX bytes is sent and echoed in pieces of at
 * most REPLY_MAX bytes.  Exit status, as select_client's: 0 at the end of
 * stdin, 1 for a usage error, 2 if it cannot connect, 3 if the server
 * closed or reset the connection, 4 for a local error (stdin, stdout).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define PROGNAME "bug_strlen_client"

/* The shared helpers (report_error, write_all) of the real programs. */
#include "../common.h"
/* connect_to(): getaddrinfo(), then connect() to each address in turn. */
#include "connect_to.h"

#define REPLY_MAX 4096          /* the longest echo one printf handles */

static int echo_lines(int fd);
static int echo_piece(int fd, const char *data, size_t len);
static int read_exactly(int fd, char *buf, size_t len);

/*
 * The echo of one piece, and one byte more that is never written: static,
 * so it is all zeros at start, and nothing ever stores past
 * reply[REPLY_MAX - 1].  Reused for every echo, as such buffers are.
 */
static char reply[REPLY_MAX + 1];

int
main(int argc, char **argv)
{
    int fd, status;

    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST PORT\n", PROGNAME);
        return 1;
    }
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        report_error(errno, "signal SIGPIPE");
        return 4;
    }
    if ((fd = connect_to(argv[1], argv[2])) < 0)
        return 2;
    status = echo_lines(fd);
    if (close(fd) < 0 && status == 0) {
        report_error(errno, "close");
        status = 4;
    }
    return status;
}


/*
 * echo_lines - each line of stdin (getline: up to and including '\n', or
 * the last bytes before EOF) to the server and its echo to stdout, in
 * pieces of at most REPLY_MAX bytes.  Returns the exit status.
 */
static int
echo_lines(int fd)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int status = 0;

    while (status == 0 && (len = getline(&line, &cap, stdin)) > 0) {
        for (size_t done = 0; status == 0 && done < (size_t)len; ) {
            size_t piece = (size_t)len - done;

            if (piece > REPLY_MAX)
                piece = REPLY_MAX;
            status = echo_piece(fd, line + done, piece);
            done += piece;
        }
    }
    if (status == 0 && ferror(stdin)) {
        report_error(errno, "reading stdin");
        status = 4;
    }
    free(line);
    return status;
}

/*
 * echo_piece - send len bytes, read their echo into reply[], print it.
 * Returns 0, 3 if the connection failed, 4 if stdout failed.
 */
static int
echo_piece(int fd, const char *data, size_t len)
{
    int status;

    if (write_all(fd, data, len) < 0) {
        report_error(errno, "send");
        return 3;
    }
    if ((status = read_exactly(fd, reply, len)) != 0)
        return status;
    /* THE BUG: %s stops at the first NUL and knows nothing of len, the
     * number of bytes that really arrived.  Right: fwrite(reply, 1, len,
     * stdout). */
    if (printf("%s", reply) < 0 || fflush(stdout) == EOF) {
        report_error(errno, "writing stdout");
        return 4;
    }
    return 0;
}

/*
 * read_exactly - read until len bytes are in buf: TCP may deliver them in
 * any number of pieces.  Returns 0, or 3 after printing why the server's
 * side ended first.
 */
static int
read_exactly(int fd, char *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = recv(fd, buf + got, len - got, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            report_error(errno, "recv");
            return 3;
        }
        if (n == 0) {
            report_error(0, "server closed the connection");
            return 3;
        }
        got += (size_t)n;
    }
    return 0;
}
