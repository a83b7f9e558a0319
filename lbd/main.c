/* main.c -- lbd: the PostgreSQL-wire load-balancing proxy of the pair.
 * Usage: lbd -c FILE [--check]. See README.md. */
#include "lbd.h"
#include "control.h"

#include "cli.h"
#include "log.h"
#include "privs.h"
#include "sdnotify.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int lbd_start(struct lbd *l, uv_loop_t *loop, const char *path, const struct lbd_config *cfg);
void lbd_free(struct lbd *l);
void lbd_launch(struct lbd *l);

static const struct cli_info info = {
    .daemon = "lbd",
    .version = PGVIP_VERSION,
    .summary = "PostgreSQL-wire load-balancing proxy of a pgvip pair",
    .usage = "lbd -c FILE [--check]\n"
             "  -c, --config FILE  the instance configuration (YAML, section lbd:)\n"
             "  -t, --check        validate the configuration and exit (0: valid)\n"
             "  -V, --version      print the version\n"
             "  -h, --help         print this help and every configuration key\n"
             "  --man              print the man page (roff)\n",
    .description =
        "lbd relays PostgreSQL-wire sessions (PostgreSQL, CockroachDB) from the addresses it "
        "listens on, the VIPs that vrrpd moves between the two instances of the pair, to a "
        "pool of health-checked database nodes. It reads each client's first packet, passes "
        "TLS and GSS encryption through end to end, routes CancelRequests to the node (or "
        "the peer lbd) holding the session, and retries another node when one refuses a "
        "startup before anything reached the client.\n\n"
        "Signals: SIGHUP reloads the configuration (nodes, balancing, checks, timeouts; "
        "open sessions stay; a bad file is rejected and the old one stays). SIGTERM hands "
        "the VIPs over (when vrrpd watches), stops accepting and lets sessions finish for "
        "timeouts.drain; a second SIGTERM closes them at once.\n\n"
        "Exit status: 0 after a clean stop or a valid --check, 1 for a configuration error, "
        "2 for a usage error.",
    .offer_status = false,
    .describe_config = lbd_config_describe,
};

/* Each session takes two descriptors (client, node). Shells default to a soft limit of
 * 1024, which would refuse sessions past ~500 whatever maxconn says: raise the soft limit
 * (and, while still root, the hard one) to what maxconn needs, or say what it allows. */
static void raise_fd_limit(const struct lbd_config *cfg)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)cfg->maxconn * 2 + (rlim_t)cfg->n_nodes * 2 + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    if (rl.rlim_max < want && geteuid() == 0) {
        struct rlimit up = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            return;
    }
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        log_emit(LOG_WARN, "fd_limit",
                 "maxconn=%u needs=%llu limit=%llu detail=\"sessions beyond about %llu will be "
                 "refused; raise the limit (LimitNOFILE=, ulimit -n) or lower maxconn\"",
                 cfg->maxconn, (unsigned long long)want, (unsigned long long)rl.rlim_cur,
                 (unsigned long long)((rl.rlim_cur > 64 ? rl.rlim_cur - 64 : 0) / 2));
}

int main(int argc, char **argv)
{
    struct cli cli;
    int rc = cli_parse(argc, argv, &info, &cli);
    if (rc >= 0)
        return rc;
    const char *path = cli.config;
    int check_only = cli.mode == CLI_CHECK;
    static struct lbd_config cfg;
    char err[4096];
    if (lbd_config_load(path, &cfg, err, sizeof(err)) != 0) {
        cli_print_errors(stderr, "lbd", err);
        return 1;
    }
    if (cfg.peer_key_file[0]) { /* read at start: --check says now what would fail then */
        uint8_t key[128];
        size_t klen;
        if (control_read_key(cfg.peer_key_file, key, &klen, err, sizeof(err)) != 0) {
            fprintf(stderr, "lbd: %s: lbd.peer.key_file: %s\n", path, err);
            return 1;
        }
    }
    if (check_only) {
        printf("lbd: %s: configuration ok (instance %s, %zu listen address%s, %zu node%s)\n", path,
               cfg.instance, cfg.n_listen, cfg.n_listen == 1 ? "" : "es", cfg.n_nodes,
               cfg.n_nodes == 1 ? "" : "s");
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    log_setup("lbd", cfg.instance);
    log_set_level((enum log_level)cfg.log_level);
    log_set_target((enum log_target)cfg.log_target);
    if (log_open_file(cfg.log_file) != 0)
        fprintf(stderr, "lbd: cannot open log file %s\n", cfg.log_file);
    raise_fd_limit(&cfg);
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
    lbd_launch(&l); /* (the workers' threads: after the privileges are given up) */
    sdnotify("READY=1\nSTATUS=serving");
    uv_run(loop, UV_RUN_DEFAULT);
    lbd_free(&l);
    uv_loop_close(loop);
    log_close_file();
    return l.exit_code;
}
