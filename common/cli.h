/* cli.h -- the command line lbd and vrrpd share:
 *   -c, --config FILE   -t, --check   -s, --status (when offered)   -V, --version
 *   -h, --help (options and every configuration key)   --man (the man page, roff) */
#ifndef COMMON_CLI_H
#define COMMON_CLI_H

#include <stdbool.h>
#include <stdio.h>

enum cli_mode { CLI_RUN, CLI_CHECK, CLI_STATUS };

struct cli {
    const char *config;
    enum cli_mode mode;
};

struct cli_info {
    const char *daemon, *version;
    const char *summary;     /* one line, for NAME */
    const char *usage;       /* "lbd -c FILE ...\n" then option lines "  -x, --xx  text" */
    const char *description; /* paragraphs separated by blank lines */
    bool offer_status;
    /* Print the configuration reference (cfg_describe) as text or roff. */
    void (*describe_config)(FILE *out, bool roff);
};

/* Parse argv. Returns -1 to go on, or the exit status to return now (after --help,
 * --man, --version, or a usage error, which it has printed). */
int cli_parse(int argc, char **argv, const struct cli_info *info, struct cli *out);

/* The man page (roff), as --man prints it. */
void cli_print_man(FILE *out, const struct cli_info *info);
/* A loader's errors, one a line ("DAEMON: file:line:column: ..."), and how many when more
 * than one. */
void cli_print_errors(FILE *out, const char *daemon, const char *errors);

#endif
