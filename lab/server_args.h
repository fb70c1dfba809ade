/*
 * server_args.h - the command line of the lab's small servers: "-h", or any
 * of "-p PORT" and one on/off option of the program's own, each mistake
 * named in one line.  The blocking servers get it through
 * blocking_server.h; naive_server, naive_udp_echo, bug_no_listen and
 * bug_sigpipe_server include it themselves.
 *
 * Header-only and `static inline`, as common.h.  Include "../common.h"
 * (report_error, parse_port) first, and define PROGNAME and DEFAULT_PORT.
 */
#ifndef SERVER_ARGS_H
#define SERVER_ARGS_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#ifndef COMMON_H
#error "include ../common.h before server_args.h"
#endif
#if !defined(PROGNAME) || !defined(DEFAULT_PORT)
#error "define PROGNAME and DEFAULT_PORT before including server_args.h"
#endif

/*
 * parse_server_args - the command line of a lab server: "-h", or any of
 * "-p PORT" and SWITCH, an on/off option of the program's own (NULL: it
 * has none; SWITCH_HELP, if not NULL, says what it does in the usage).
 * Sets *port, and *switch_on when SWITCH is given.  Returns -1 to go on,
 * or the exit status after printing the usage (0) or one line saying what
 * is wrong (1).
 */
static inline int
parse_server_args(int argc, char **argv, const char *switch_name,
                  const char *switch_help, bool *switch_on,
                  unsigned short *port)
{
    char usage[96];

    snprintf(usage, sizeof usage, "%s%s%s%s [-p PORT]", PROGNAME,
             switch_name ? " [" : "", switch_name ? switch_name : "",
             switch_name ? "]" : "");
    if (argc == 2 && strcmp(argv[1], "-h") == 0) {
        printf("usage: %s   (default %d, 0 = kernel chooses%s%s)\n", usage,
               DEFAULT_PORT, switch_help ? "; " : "",
               switch_help ? switch_help : "");
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (switch_name != NULL && strcmp(argv[i], switch_name) == 0) {
            *switch_on = true;
        } else if (strcmp(argv[i], "-p") != 0) {
            report_error(0, "unexpected argument '%s' (usage: %s)", argv[i],
                         usage);
            return 1;
        } else if (++i == argc) {
            report_error(0, "-p needs a port (0-65535)");
            return 1;
        } else if (parse_port(argv[i], 0, port) < 0) {
            report_error(0, "invalid port '%s' (expected 0-65535)", argv[i]);
            return 1;
        }
    }
    return -1;
}

#endif /* SERVER_ARGS_H */
