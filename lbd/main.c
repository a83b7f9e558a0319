/* main.c -- lbd: the PostgreSQL-wire load-balancing proxy of the pair.
 * Usage: lbd -c FILE [--check]. See README.md. */
#include "lbd.h"

#include "cli.h"
#include "log.h"
#include "privs.h"
#include "sdnotify.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int lbd_start(struct lbd *l, uv_loop_t *loop, const char *path, const struct lbd_config *cfg);
void lbd_free(struct lbd *l);

static const char usage_text[] =
    "lbd -c FILE [--check]\n"
    "  -c, --config FILE  the instance configuration (YAML, section lbd:)\n"
    "  -t, --check        validate the configuration and exit\n"
    "  -V, --version      print the version\n"
    "signals: SIGHUP reloads, SIGTERM hands over, drains and stops\n";

int main(int argc, char **argv)
{
    struct cli cli;
    int rc = cli_parse(argc, argv, "lbd", PGVIP_VERSION, usage_text, false, &cli);
    if (rc >= 0)
        return rc;
    const char *path = cli.config;
    int check_only = cli.mode == CLI_CHECK;
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
    sdnotify("READY=1\nSTATUS=serving");
    uv_run(loop, UV_RUN_DEFAULT);
    lbd_free(&l);
    uv_loop_close(loop);
    log_close_file();
    return l.exit_code;
}
