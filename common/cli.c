/* cli.c -- the shared command line (see cli.h). */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

int cli_parse(int argc, char **argv, const char *daemon, const char *version,
              const char *usage, bool offer_status, struct cli *out)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check", no_argument, NULL, 't'},
                                         {"status", no_argument, NULL, 's'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    out->config = NULL;
    out->mode = CLI_RUN;
    while ((c = getopt_long(argc, argv, offer_status ? "c:tsVh" : "c:tVh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            out->config = optarg;
            break;
        case 't':
            out->mode = CLI_CHECK;
            break;
        case 's':
            if (!offer_status)
                goto bad;
            out->mode = CLI_STATUS;
            break;
        case 'V':
            printf("%s %s\n", daemon, version);
            return 0;
        case 'h':
            printf("usage: %s", usage);
            return 0;
        default:
            goto bad;
        }
    }
    if (out->config != NULL && optind == argc)
        return -1;
bad:
    fprintf(stderr, "usage: %s", usage);
    return 2;
}
