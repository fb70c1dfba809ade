/*
 * server.h - what the files of select_server share: its limits, its state,
 * and the functions one file calls in another.
 *
 *   select_server.c  main(), the select() loop, accepting, echo, UDP, closing
 *   chat.c           chat mode: lines, the sender's budget, relaying
 *   udp.c            the UDP echo, answered from the address asked
 *   console.c        the operator's commands on stdin, and the terminal
 *   output.c         everything the server prints, without ever blocking
 *   text.c, text.h   line splitting and escaping (pure: unit-tested alone)
 *
 * Start reading in select_server.c.
 */
#ifndef SERVER_H
#define SERVER_H

#define PROGNAME "select_server"
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE     /* Linux's struct tcp_info, for "conns" */

#include "common.h"
#include "text.h"

/* Defaults and limits; the usage text prints these same constants. */
#define DEFAULT_PORT       9877
#define DEFAULT_BACKLOG    1024             /* UNP's LISTENQ */
#define DEFAULT_READ_SIZE  (512 * 1024)     /* fewer calls per MiB */
#define MAX_READ_SIZE      (1024 * 1024)
#define MAX_LINE           4096             /* chat: longest line relayed */
#define STR(x)             XSTR(x)          /* STR(MAX_LINE) is "4096" */
#define XSTR(x)            #x
#define CONSOLE_MAX_LINE   1024             /* console: longest command */
#define ECHO_HIGH_WATER    (256 * 1024)     /* echo: stop reading at... */
#define ECHO_LOW_WATER     (64 * 1024)      /* ...and resume below this */
#define CHAT_MAX_PENDING   (1024 * 1024)    /* chat: drop a slower reader */
#define CHAT_READ_SIZE     (4 * MAX_LINE)   /* chat: most read per pass */
#define DEFAULT_CHAT_LINES 20               /* chat: lines/s per sender */
#define DEFAULT_CHAT_BYTES 16384            /* chat: relayed bytes/s */
#define CHAT_BURST_US      10000000         /* chat: budget saved up, 10 s */
#define MAX_CHAT_RATE      1000000000
#define MAX_RCVBUF         (1 << 30)
#define OUTPUT_CAP         (1024 * 1024)    /* our own output queued */
#define CONSOLE_RETRY_US   250000           /* background: look again */
#define SHUTDOWN_GRACE_US  1000000          /* flush time on shutdown */
#define ACCEPT_BACKOFF_US  100000           /* pause after accept() fails */
#define MAX_IDLE_SECONDS   31536000         /* a year */

/* Exit statuses (documented in --help and the README). */
#define EXIT_OK      0      /* clean shutdown */
#define EXIT_STARTUP 2      /* socket, bind or listen failed */
#define EXIT_RUNTIME 3      /* select() itself failed: a bug */

enum mode { MODE_ECHO, MODE_CHAT };

struct options {
    unsigned short port;
    const char *bind_addr;      /* NULL: every interface */
    enum mode mode;
    int64_t idle_timeout_us;    /* 0: never time out */
    long max_clients;           /* 0: as many as fit below FD_SETSIZE */
    long backlog;
    long read_size;             /* bytes per read() or recvmsg() */
    long chat_lines;            /* chat budget: lines per second... */
    long chat_bytes;            /* ...and relayed bytes per second */
    long rcvbuf;                /* SO_RCVBUF to ask for; 0: the kernel's */
    bool reuseaddr, udp, trace, quiet;
};

/* One connected client.  The table is indexed by fd; fd -1 marks a free slot. */
struct client {
    int fd;
    char peer[ADDR_STRLEN];     /* "127.0.0.1:43210", for every log line */
    int64_t connected_us;
    int64_t last_active_us;     /* last byte read from it or sent to it */
    uint64_t bytes_in, bytes_out;
    struct buffer in;           /* chat: bytes read, not yet relayed */
    struct buffer out;          /* bytes the socket has not yet taken */
    struct line_splitter lines; /* chat: where `in` stands in its line */
    int64_t chat_clock_us;      /* chat: what its lines cost, as a time */
    bool throttled;             /* not read for now: echo, `out` is full;
                                   chat, it is over its budget */
    bool peer_eof;              /* peer sent FIN: finish, then close */
    bool flush_queued;          /* chat: `out` gained lines this pass */
    const char *close_reason;   /* non-NULL: close at the end of this pass */
};

/*
 * One of the server's own output streams, stdout or stderr: a bounded
 * queue of whole lines and the way to write them without blocking (see
 * output.c, and struct out_fd in common.h).
 */
struct output {
    struct out_fd dst;          /* where the lines go, and how */
    bool ready;                 /* OUT_PIPE_BUF: select() said writable */
    bool broken;                /* a write failed for good: discard */
    bool dropping;              /* over OUTPUT_CAP: drop until drained */
    uint64_t dropped;           /* lines dropped, not yet reported */
    struct buffer queue;
};

struct server {
    struct options opt;
    unsigned short port;        /* the one we got, even with -p 0 */
    int listen_fd, udp_fd;      /* -1 once closed for shutdown */
    int spare_fd;               /* held in reserve for EMFILE, or -1 */
    int sig_read_fd;            /* self-pipe: the handler writes the other end */
    bool console_open;          /* stdin not at EOF */
    bool console_background;    /* stdin is a terminal we may not read */
    int64_t console_retry_us;   /* stdin unwatched until then */
    bool accepting;             /* false after the "pause" command */
    bool trace;
    bool shutting_down;
    bool closes_pending;        /* some client has a close_reason */
    bool flush_pending;         /* chat: some client has flush_queued */
    int64_t shutdown_deadline_us;
    int64_t accept_retry_us;    /* listener unwatched until then (backoff) */
    struct client *clients;     /* FD_SETSIZE slots, indexed by fd */
    int max_client_fd;          /* highest fd in use by a client, or -1 */
    long max_clients;           /* effective limit */
    long nclients, peak_clients;
    long chat_throttled;        /* chat clients over their budget now */
    uint64_t total_clients, bytes_in, bytes_out, select_calls;
    uint64_t udp_datagrams, udp_truncated, udp_ignored;
    uint64_t lines_dropped;     /* of our own output, since start */
    int64_t started_us;
    struct buffer console_in;   /* typed, not yet run as commands */
    struct line_splitter console_lines;
    char console_line[CONSOLE_MAX_LINE + 1];    /* the command being run */
    struct output out;          /* stdout: log, replies, chat, trace */
    struct output err_stream;   /* stderr, when it is not stdout's file */
    struct output *err;         /* &err_stream, or &out if they are one */
    char *readbuf;              /* opt.read_size bytes, for every read */
    char *linebuf;              /* one formatted chat line */
};

/* select_server.c */
void queue_output(struct server *s, struct client *c, const void *data,
                  size_t len);
void mark_closing(struct server *s, struct client *c, const char *reason);
void close_if_finished(struct server *s, struct client *c);
void begin_shutdown(struct server *s, const char *why);
const char *plural(long n);

/* chat.c */
void chat_input(struct server *s, struct client *c, const char *data,
                size_t len);
void chat_relay(struct server *s, struct client *c, int64_t now);
void chat_resume(struct server *s, int64_t now);
int64_t chat_resume_time(const struct client *c);
void broadcast(struct server *s, const struct client *except,
               const char *text, size_t len);

/* udp.c */
int udp_ask_destination(int fd, int family);
void handle_datagram(struct server *s);

/* console.c */
bool console_watched(const struct server *s, int64_t now);
void handle_console(struct server *s);
void check_terminal(struct server *s);

/* output.c */
void output_open(struct server *s);
void output_flush(struct server *s);
void output_watch(struct server *s, fd_set *wset, int *maxfd);
void output_writable(struct server *s, const fd_set *wset);
bool output_pending(const struct server *s);
void output_drain(struct server *s, int64_t deadline_us);
void output_close(struct server *s);
void print_line(struct server *s, const char *fmt, ...) PRINTF_LIKE(2, 3);
void print_bytes(struct server *s, const char *text, size_t len);
void log_event(struct server *s, const char *fmt, ...) PRINTF_LIKE(2, 3);
void log_error(struct server *s, int errnum, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

#endif /* SERVER_H */
