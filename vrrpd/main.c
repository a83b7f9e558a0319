/* main.c -- vrrpd: the VRRPv3 daemon of the pair.
 * Usage: vrrpd -c FILE [--check | --status]. See README.md. */
#include "vrrpd.h"

#include "cli.h"
#include "log.h"
#include "privs.h"
#include "sdnotify.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

static const char usage_text[] =
    "vrrpd -c FILE [--check | --status]\n"
    "  -c, --config FILE  the instance configuration (YAML, section vrrp:)\n"
    "  -t, --check        validate the configuration and exit\n"
    "  -s, --status       print the running daemon's state (JSON) and exit;\n"
    "                     exit 3 when the state file is stale (daemon dead or hung)\n"
    "  -V, --version      print the version\n";

/* Print the state file; a file older than 2 s means the daemon is not running. */
static int print_status(const struct vrrpd_config *cfg)
{
    if (cfg->state_file[0] == '\0') {
        fprintf(stderr, "vrrpd: vrrp.state_file is not set in the configuration\n");
        return 2;
    }
    FILE *f = fopen(cfg->state_file, "r");
    if (f == NULL) {
        fprintf(stderr, "vrrpd: %s: %s (is vrrpd running?)\n", cfg->state_file, strerror(errno));
        return 3;
    }
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stdout);
    fclose(f);
    struct stat st;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (stat(cfg->state_file, &st) == 0 && tv.tv_sec - st.st_mtime > 2) {
        fprintf(stderr, "vrrpd: %s is %lld s old: vrrpd is not running (or hung)\n",
                cfg->state_file, (long long)(tv.tv_sec - st.st_mtime));
        return 3;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct cli cli;
    int rc = cli_parse(argc, argv, "vrrpd", PGVIP_VERSION, usage_text, true, &cli);
    if (rc >= 0)
        return rc;
    const char *path = cli.config;
    int mode = cli.mode == CLI_CHECK ? 't' : cli.mode == CLI_STATUS ? 's' : 0;
    static struct vrrpd_config cfg;
    char err[1024];
    if (vrrpd_config_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "vrrpd: %s\n", err);
        return 1;
    }
    if (mode == 't') {
        printf("vrrpd: %s: configuration ok (instance %s, interface %s, %zu group%s, %s)\n", path,
               cfg.instance, cfg.interface, cfg.n_groups, cfg.n_groups == 1 ? "" : "s",
               cfg.n_peers ? "unicast" : "multicast");
        return 0;
    }
    if (mode == 's')
        return print_status(&cfg);
    signal(SIGPIPE, SIG_IGN);
    log_setup("vrrpd", cfg.instance);
    log_set_level((enum log_level)cfg.log_level);
    if (log_open_file(cfg.log_file) != 0)
        fprintf(stderr, "vrrpd: cannot open log file %s\n", cfg.log_file);
    static struct vrrpd d;
    uv_loop_t *loop = uv_default_loop();
    if (vrrpd_start(&d, loop, &cfg) != 0)
        return 1;
    /* Sockets are open and real-time scheduling is set: keep only what moving VIPs
     * needs from here on (netlink address changes, raw VRRP and ARP sockets). */
    char perr[256];
    if (privs_keep_net_caps(perr, sizeof(perr)) != 0) {
        fprintf(stderr, "vrrpd: %s\n", perr);
        return 1;
    }
    log_emit(LOG_INFO, "privileges", "capabilities=net_admin,net_raw");
    sdnotify("READY=1\nSTATUS=running");
    uv_run(loop, UV_RUN_DEFAULT);
    vrrpd_free(&d);
    uv_loop_close(loop);
    return 0;
}
