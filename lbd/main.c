/* main.c -- lbd: the PostgreSQL-wire load-balancing proxy of the pair.
 * Usage: lbd -c FILE [--check]. See README.md. */
#include "lbd.h"

#include "log.h"
#include "privs.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int lbd_start(struct lbd *l, uv_loop_t *loop, const char *path, const struct lbd_config *cfg);
void lbd_free(struct lbd *l);

static void usage(FILE *f)
{
    fprintf(f, "usage: lbd -c FILE [--check]\n"
               "  -c, --config FILE  the instance configuration (YAML, section lbd:)\n"
               "  -t, --check        validate the configuration and exit\n"
               "  -V, --version      print the version\n"
               "signals: SIGHUP reloads, SIGTERM drains and stops\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check", no_argument, NULL, 't'},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    int check_only = 0, c;
    while ((c = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check_only = 1;
            break;
        case 'V':
            printf("lbd %s\n", PGVIP_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    static struct lbd_config cfg;
    char err[1024];
    if (lbd_config_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "lbd: %s\n", err);
        return 1;
    }
    if (check_only) {
        printf("lbd: %s: configuration ok (instance %s, %zu listen address%s, %zu node%s)\n",
               path, cfg.instance, cfg.n_listen, cfg.n_listen == 1 ? "" : "es", cfg.n_nodes,
               cfg.n_nodes == 1 ? "" : "s");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    log_setup("lbd", cfg.instance);
    log_set_level((enum log_level)cfg.log_level);
    if (log_open_file(cfg.log_file) != 0)
        fprintf(stderr, "lbd: cannot open log file %s\n", cfg.log_file);
    static struct lbd l;
    uv_loop_t *loop = uv_default_loop();
    if (lbd_start(&l, loop, path, &cfg) != 0)
        return 1;
    /* Everything privileged (binding low ports, the log file) is done: become the
     * configured user. lbd needs no root to relay. */
    char perr[256];
    if (privs_become_user(cfg.user, perr, sizeof(perr)) != 0) {
        fprintf(stderr, "lbd: %s\n", perr);
        return 1;
    }
    if (cfg.user[0])
        log_emit(LOG_INFO, "privileges", "user=%s uid=%d", cfg.user, (int)getuid());
    uv_run(loop, UV_RUN_DEFAULT);
    lbd_free(&l);
    uv_loop_close(loop);
    log_close_file();
    return l.exit_code;
}
