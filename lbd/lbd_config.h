/* lbd_config.h -- lbd's section of the instance configuration file.
 *
 * The file holds `instance:`, `lbd:` (read here) and `vrrp:` (read by vrrpd). */
#ifndef LBD_CONFIG_H
#define LBD_CONFIG_H

#include "ctl_config.h"
#include "ctl_paths.h"
#include "pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define LBD_MAX_LISTEN 8

enum lbd_check_type { LBD_CHECK_TCP, LBD_CHECK_PG, LBD_CHECK_HTTP, LBD_CHECK_NONE };
enum lbd_on_down { LBD_ON_DOWN_KEEP, LBD_ON_DOWN_CUT };
enum lbd_on_drain { LBD_ON_DRAIN_AT_IDLE, LBD_ON_DRAIN_KEEP };
/* What to do with a CancelRequest whose key no session here (or on the peer) holds. */
enum lbd_cancel_unknown { LBD_CANCEL_ALL, LBD_CANCEL_ONE, LBD_CANCEL_DROP };
/* Who relays established sessions: lbd, in user space (both values; the kernel relay was
 * removed, docs/kernel-relay.md). Kept so that existing files still load. */
enum lbd_relay { LBD_RELAY_AUTO, LBD_RELAY_USER };

extern const char *const lbd_check_type_names[];
extern const char *const lbd_cancel_unknown_names[];
extern const char *const lbd_relay_names[];

#define LBD_MAX_WORKERS 64

struct lbd_node_config {
    char name[64];
    struct sockaddr_storage addr;
    uint32_t weight;
    uint32_t max_sessions;
    uint32_t check_port;
};

struct lbd_config {
    char instance[64];
    struct sockaddr_storage listen[LBD_MAX_LISTEN];
    size_t n_listen;
    struct sockaddr_storage admin;
    bool admin_enabled;
    uint32_t maxconn;
    uint32_t workers; /* event loops; 0: one per CPU lbd may run on (worker.h) */
    int relay;        /* enum lbd_relay */
    int log_level;
    int log_target; /* enum log_target */
    char log_file[256];
    char liveness_socket[108];           /* unix socket vrrpd watches; "" = none */
    bool close_on_vip_loss;              /* close a VIP's sessions when the VIP leaves this host */
    bool log_sessions;                   /* a session_end line for each session ending well */
    char vrrpd_state_file[256];          /* vrrp.state_file, shown on the status page; "" = none */
    char user[64];                       /* started as root: become this user after binding */
    struct ctl_config control;           /* the control socket (pgvipctl) */
    struct sockaddr_storage peer;        /* the other lbd's cancel listener */
    struct sockaddr_storage peer_listen; /* ours */
    char peer_key_file[256];             /* the pair's shared key for node commands; "" */
    bool has_peer, has_peer_listen;

    uint64_t connect_ms, startup_ms, client_idle_ms, server_idle_ms, drain_ms, handover_ms;
    uint64_t keepalive_ms; /* TCP keepalive idle time; 0 = off */

    int balance; /* enum pool_balance */
    uint32_t retries;
    int on_node_down;           /* enum lbd_on_down */
    int on_node_drain;          /* enum lbd_on_drain */
    uint64_t drain_deadline_ms; /* then a draining node's busy sessions are ended; 0 = never */
    int cancel_unknown;         /* enum lbd_cancel_unknown */
    uint32_t reuse_max_idle;    /* node connections kept per node for reuse; 0 = no reuse */
    uint64_t reuse_idle_ms;     /* a kept connection unused this long is closed */

    /* lbd.limits: the front door's bounds (guard.h); 0 = no limit */
    uint32_t cancel_inflight, cancel_rate, cancel_source_rate;
    uint64_t cancel_window_ms;
    uint32_t startup_per_source;

    int check_type; /* enum lbd_check_type */
    uint64_t check_interval_ms, check_timeout_ms;
    uint32_t rise, fall;
    uint32_t http_port;
    char http_path[128];
    char pg_user[64], pg_database[64];

    struct lbd_node_config nodes[POOL_MAX_NODES];
    size_t n_nodes;
};

/* Load path into cfg. On error returns -errno and writes a one-line message naming
 * file:line:column into err. */
int lbd_config_load(const char *path, struct lbd_config *cfg, char *err, size_t errsize);
int lbd_config_load_string(const char *name, const char *text, struct lbd_config *cfg, char *err,
                           size_t errsize);

void lbd_config_set_defaults(struct lbd_config *c);
/* The configuration reference (every key, type, default, meaning), text or roff. */
void lbd_config_describe(FILE *out, bool roff);

#endif
