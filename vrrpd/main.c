/* main.c -- vrrpd: the VRRPv3 daemon of the pair.
 * Usage: vrrpd -c FILE [--check | --status]. See README.md. */
#include "vrrpd.h"

#include "cli.h"
#include "log.h"
#include "privs.h"
#include "sdnotify.h"

#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

static const struct cli_info info = {
    .daemon = "vrrpd",
    .version = PGVIP_VERSION,
    .summary = "VRRPv3 daemon that moves the VIPs of a pgvip pair",
    .usage = "vrrpd -c FILE [--check | --status]\n"
             "  -c, --config FILE  the instance configuration (YAML, section vrrp:)\n"
             "  -t, --check        validate the configuration and exit (0: valid)\n"
             "  -s, --status       print the running daemon's state (JSON) and exit;\n"
             "                     exit 3 when the state file is stale (daemon dead or hung)\n"
             "  -V, --version      print the version\n"
             "  -h, --help         print this help and every configuration key\n"
             "  --man              print the man page (roff)\n",
    .description =
        "vrrpd speaks VRRP version 3 (RFC 5798) over IPv4, by multicast or to unicast "
        "peers, and moves the VIPs of each group to the instance that is master: it adds "
        "and removes them through netlink and announces them with gratuitous ARP. It tracks "
        "the interface and this instance's lbd, so a VIP only sits where a proxy serves it; "
        "on SIGTERM it resigns (priority 0) and keeps the VIPs until the new master speaks. "
        "SIGHUP reloads the configuration: each group's priority, interval, preemption and "
        "VIPs, the unicast peers, tracking weights, notify and log settings change live; the "
        "interface, address, sockets, what is tracked and groups added or removed need a "
        "restart (named in a reload_partial line); a bad file is rejected and the old one "
        "stays.\n\n"
        "Every transition is logged with its reason in words and numbers, appended to "
        "vrrp.transitions_file, passed to vrrp.notify, and shown in the state file and on "
        "lbd's status page. After start-up vrrpd keeps only CAP_NET_ADMIN and CAP_NET_RAW.\n\n"
        "Exit status: 0 after a clean stop or a valid --check, 1 for a configuration or "
        "start-up error, 2 for a usage error, 3 from --status when the daemon is not running.",
    .offer_status = true,
    .describe_config = vrrpd_config_describe,
};

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
    int rc = cli_parse(argc, argv, &info, &cli);
    if (rc >= 0)
        return rc;
    const char *path = cli.config;
    int mode = cli.mode == CLI_CHECK ? 't' : cli.mode == CLI_STATUS ? 's' : 0;
    static struct vrrpd_config cfg;
    char err[4096];
    if (vrrpd_config_load(path, &cfg, err, sizeof(err)) != 0) {
        cli_print_errors(stderr, "vrrpd", err);
        return 1;
    }
    if (mode == 't') {
        printf("vrrpd: %s: configuration ok (instance %s, interface %s, %zu group%s, %s)\n", path,
               cfg.instance, cfg.interface, cfg.n_groups, cfg.n_groups == 1 ? "" : "s",
               cfg.n_peers ? "unicast" : "multicast");
        /* (--check may run where the daemon will not, a build host: a warning, not an
         * error; vrrpd itself refuses to start without its interface.) */
        if (if_nametoindex(cfg.interface) == 0)
            fprintf(stderr,
                    "vrrpd: %s: warning: this host has no interface %s; vrrpd will not start "
                    "here with this file\n",
                    path, cfg.interface);
        /* 255 is RFC 5798's address owner: it takes the group at once and never yields it
         * to a live peer, and two instances at 255 are two masters for good. vrrpd adds
         * the VIPs itself, so it is never their owner. */
        for (size_t i = 0; i < cfg.n_groups; i++)
            if (cfg.groups[i].priority == 255)
                fprintf(stderr,
                        "vrrpd: %s: warning: vrrp.groups[%zu] (vrid %u): priority 255 is for "
                        "the owner of the addresses; this instance would never yield the group "
                        "to a live peer, and a peer at 255 too makes two masters: use 1-254\n",
                        path, i, cfg.groups[i].vrid);
        return 0;
    }
    if (mode == 's')
        return print_status(&cfg);
    signal(SIGPIPE, SIG_IGN);
    log_setup("vrrpd", cfg.instance);
    log_set_level((enum log_level)cfg.log_level);
    log_set_target((enum log_target)cfg.log_target);
    if (log_open_file(cfg.log_file) != 0)
        fprintf(stderr, "vrrpd: cannot open log file %s\n", cfg.log_file);
    static struct vrrpd d;
    uv_loop_t *loop = uv_default_loop();
    if (vrrpd_start(&d, loop, path, &cfg) != 0)
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
