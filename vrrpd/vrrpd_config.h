/* vrrpd_config.h -- vrrpd's section (`vrrp:`) of the instance configuration file. */
#ifndef VRRPD_CONFIG_H
#define VRRPD_CONFIG_H

#include "ctl_config.h"
#include "ctl_paths.h"
#include "vrrp_packet.h"

#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define VRRPD_MAX_GROUPS 16
#define VRRPD_MAX_PEERS 8
#define VRRPD_MAX_VIPS6 8 /* IPv6 VIPs per group */

enum vrrpd_track_action { VRRPD_TRACK_FAULT, VRRPD_TRACK_WEIGHT };

struct vrrpd_group_config {
    uint32_t vrid;
    uint32_t priority;
    uint64_t interval_ms; /* multiple of 10 ms */
    bool preempt;
    uint64_t preempt_delay_ms;
    uint32_t vips[VRRP_MAX_ADDRS]; /* host order; what the adverts carry */
    size_t n_vips;
    /* IPv6 VIPs that move with the group (added, removed and announced with unsolicited
     * neighbor advertisements alongside the IPv4 ones) but are not carried in its IPv4
     * adverts: RFC 5798 advertises IPv6 addresses only from IPv6 virtual routers (not
     * implemented); keepalived calls these virtual_ipaddress_excluded. */
    struct in6_addr vips6[VRRPD_MAX_VIPS6];
    size_t n_vips6;
};

struct vrrpd_config {
    char instance[64];
    char interface[IF_NAMESIZE];
    uint32_t address; /* our primary IPv4 on the interface (0: the interface's first) */
    uint32_t peers[VRRPD_MAX_PEERS]; /* unicast instead of multicast when set */
    size_t n_peers;
    int log_level;
    int log_target; /* enum log_target */
    char log_file[256];
    char state_file[256];
    struct sockaddr_storage admin; /* /metrics and /status over HTTP */
    bool admin_enabled;
    struct ctl_config control; /* pgvipctl vrrp ... */
    char transitions_file[256];
    char notify[256];
    uint32_t garp_repeat;
    uint64_t garp_interval_ms;
    bool track_link;
    char track_lbd[108]; /* lbd's liveness socket; "" = not tracked */
    uint64_t track_lbd_interval_ms, track_lbd_timeout_ms;
    int track_lbd_action; /* enum vrrpd_track_action */
    uint32_t track_lbd_weight;
    bool realtime;            /* SCHED_FIFO and locked memory */
    uint16_t peer_watch_port; /* 0: off */
    uint64_t silent_hold_ms;  /* vrrp_fsm_config.silent_hold_ms; 0: off */
    uint64_t start_yield_ms;  /* vrrp_fsm_config.start_yield_ms, for groups not preferred */
    struct vrrpd_group_config groups[VRRPD_MAX_GROUPS];
    size_t n_groups;
};

int vrrpd_config_load(const char *path, struct vrrpd_config *cfg, char *err, size_t errsize);
int vrrpd_config_load_string(const char *name, const char *text, struct vrrpd_config *cfg,
                             char *err, size_t errsize);

void vrrpd_config_set_defaults(struct vrrpd_config *c);
/* The configuration reference (every key, type, default, meaning), text or roff. */
void vrrpd_config_describe(FILE *out, bool roff);

#endif
