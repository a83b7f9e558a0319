/* vrrpd.h -- the vrrpd daemon context (vrrpd.c, vrrpd_status.c, vrrpd_reload.c) and what
 * main.c calls. */
#ifndef VRRPD_VRRPD_H
#define VRRPD_VRRPD_H

#include "garp.h"
#include "clock.h"
#include "ctl.h"
#include "httpd.h"
#include "metrics.h"
#include "signals.h"
#include "peerwatch.h"
#include "reload.h"
#include "track.h"
#include "vip.h"
#include "vrrp_fsm.h"
#include "vrrpd_config.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define VRRPD_HISTORY 8

/* Reasons a received packet is dropped: the parser's, then the daemon's own checks. */
enum vrrpd_drop {
    VRRPD_DROP_OWN = VRRP_ERR__COUNT,
    VRRPD_DROP_UNKNOWN_VRID,
    VRRPD_DROP_NOT_PEER,
    VRRPD_DROP_ADDR_MISMATCH,
    VRRPD_DROP__COUNT
};
extern const char *const vrrpd_drop_names[];

struct vrrpd_history {
    uint64_t wall_ms;
    enum vrrp_state from, to;
    char reason[192];
};

struct vrrpd;
struct vrrpd_group {
    struct vrrpd *d;
    struct vrrpd_group_config cfg;
    struct vrrp_fsm fsm;
    uv_timer_t timer;      /* data = this; the state machine's next due time */
    uv_timer_t garp_timer; /* repeats of the gratuitous ARP */
    /* A resignation waiting for lbd's "quiet" on each VIP (vrrpd_control.c): */
    uint32_t resign_waiting; /* VIPs not quiet yet; 0: none pending */
    bool resign_sticky;      /* vrrp resign: priority 1 (prio_override) once resigned */
    uint64_t resign_due_ms;  /* monotonic: resign then anyway */
    char resign_why[200];
    uint32_t garp_left;
    bool vips_held;
    uint8_t prio_override;   /* an operator's priority (pgvipctl vrrp resign|priority); 0: none */
    uint32_t watched_master; /* fsm.master_ip when the peer watch last synced */
    uint64_t tx_adverts, tx_errors, rx_adverts, garps_sent, garp_errors, last_rx_ms;
    /* Adverts this master sent late: its timer ran more than half an interval after it
     * was due (vrrpd itself starved, stopped or descheduled). None late while backups
     * still see gaps points at the path between them instead. */
    uint64_t tx_late, tx_late_max_ms, last_late_log_ms;
    struct vrrpd_history history[VRRPD_HISTORY];
    size_t history_next;
};

struct vrrpd {
    uv_loop_t *loop;
    struct vrrpd_config cfg;
    int ifindex;
    uint32_t primary; /* host order */
    int rx_fd, tx_fd, transitions_fd;
    uv_poll_t rx_poll;
    bool rx_polling, joined, stopping, closed;
    struct vip_ctx vip;
    struct garp garp;
    struct track track;
    bool link_up, lbd_ok;
    char lbd_why[128];
    struct vrrpd_group groups[VRRPD_MAX_GROUPS];
    size_t n_groups;
    struct daemon_signals signals;
    uv_timer_t status_timer;
    uv_timer_t resign_timer; /* resignations whose wait for lbd has run out */
    uint64_t rx_drops[VRRPD_DROP__COUNT];
    uint64_t last_drop_log_ms;
    uint64_t started_wall_ms;
    struct httpd admin;     /* when cfg.admin_enabled */
    struct peerwatch watch; /* when cfg.peer_watch_port */
    char config_path[256];  /* read again on SIGHUP */
    struct reload_state reload;
    struct ctl control; /* pgvipctl vrrp ... (vrrpd_control.c) */
    bool control_on;
    uid_t control_uid;
    gid_t control_gid;
    uint64_t state_file_failed; /* writes of vrrp.control.state_file that failed */
};

int vrrpd_start(struct vrrpd *d, uv_loop_t *loop, const char *path, const struct vrrpd_config *cfg);
void vrrpd_free(struct vrrpd *d);
void vrrpd_write_state(struct vrrpd *d);
void vrrpd_render_state(struct vrrpd *d, struct metrics_buf *m);
void vrrpd_render_metrics(struct vrrpd *d, struct metrics_buf *m);
int vrrpd_join_group(struct vrrpd *d);

/* vrrpd_status.c: the admin endpoint's handler (httpd.h). */
void vrrpd_admin_handle(void *ctx, const char *path, const char *query, struct httpd_reply *r);
/* vrrpd_control.c: the control socket (vrrp.control) */
int vrrpd_control_start(struct vrrpd *d);
void vrrpd_control_stop(struct vrrpd *d);
/* vrrp.control.state_file: at start (before the groups start), the operators'
 * priorities it keeps set on the groups of the file (a vrid the file lacks is skipped
 * with a line; an unreadable or damaged file is logged and ignored): 0, or -errno when
 * its directory cannot be made (a line on stderr). Saved after each change of them. */
int vrrpd_state_restore(struct vrrpd *d);
void vrrpd_state_save(struct vrrpd *d);
/* vrrpd_reload.c: SIGHUP (reload the file, apply what can change live). */
void vrrpd_reload(struct vrrpd *d);
/* For vrrpd_status.c and vrrpd_reload.c (clocks: common/clock.h): a group's VIPs as
 * "a.b.c.d,e.f.g.h" (vrrpd_vips.c); carry out what a group's state machine asked for
 * (vrrpd.c); recompute the groups' priorities and faults from the tracked objects (what:
 * why, for the log; vrrpd_tracking.c); whether every VIP of groups lies in one of
 * ifname's subnets (0, or nonzero with the reason in err; vrrpd_vips.c). */
void vrrpd_vip_list(const struct vrrpd_group *g, char *buf, size_t size);
struct vrrp_out;
void vrrpd_apply(struct vrrpd_group *g, const struct vrrp_out *o);
void vrrpd_reevaluate(struct vrrpd *d, const char *what);
int vrrpd_check_vips_on_segment(const char *ifname, const struct vrrpd_group_config *groups,
                                size_t n_groups, char *err, size_t errsize);

#endif
