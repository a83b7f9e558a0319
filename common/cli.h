/* cli.h -- the command line lbd and vrrpd share:
 *   -c, --config FILE   -t, --check   -s, --status (when offered)   -V, --version   -h */
#ifndef COMMON_CLI_H
#define COMMON_CLI_H

#include <stdbool.h>

enum cli_mode { CLI_RUN, CLI_CHECK, CLI_STATUS };

struct cli {
    const char *config;
    enum cli_mode mode;
};

/* Parse argv. Returns -1 to go on, or the exit status to return now (after --help,
 * --version, or a usage error, which it has printed). usage is the text after
 * "usage: ". */
int cli_parse(int argc, char **argv, const char *daemon, const char *version,
              const char *usage, bool offer_status, struct cli *out);

#endif
