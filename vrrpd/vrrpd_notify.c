/* vrrpd_notify.c -- what a transition leaves behind: its log line (the level an on-call
 * person would pick), the transitions file, the group's history for the status page, and
 * the notify hook (sh -c "$notify" notify STATE VRID INSTANCE, with VRRP_* set); and the
 * lines of a backup that waits for a master it believes alive. */
#include "vrrpd_int.h"

#include "log.h"
#include "parse.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- transitions ---- */

static void append_line(int fd, const char *line)
{
    if (fd >= 0 && write(fd, line, strlen(line)) < 0) {
        /* the log line on stderr still says it */
    }
}

static void notify_exited(uv_process_t *p, int64_t status, int signal)
{
    if (status != 0 || signal != 0)
        log_emit(LOG_WARN, "notify_exit", "status=%lld signal=%d", (long long)status, signal);
    uv_close((uv_handle_t *)p, (uv_close_cb)free);
}

/* Run the notify hook: sh -c "$notify" notify STATE VRID INSTANCE, with VRRP_* set. */
static void run_notify(struct vrrpd_group *g, const struct vrrp_out *o)
{
    struct vrrpd *d = g->d;
    if (d->cfg.notify[0] == '\0')
        return;
    char vrid[8], env_state[32], env_vrid[32], env_inst[96], env_from[32];
    snprintf(vrid, sizeof(vrid), "%u", g->cfg.vrid);
    snprintf(env_state, sizeof(env_state), "VRRP_STATE=%s", vrrp_state_names[o->to]);
    snprintf(env_from, sizeof(env_from), "VRRP_FROM=%s", vrrp_state_names[o->from]);
    snprintf(env_vrid, sizeof(env_vrid), "VRRP_VRID=%u", g->cfg.vrid);
    snprintf(env_inst, sizeof(env_inst), "VRRP_INSTANCE=%s", d->cfg.instance);
    char *args[] = {
        "/bin/sh",       "-c", d->cfg.notify, "notify", (char *)vrrp_state_names[o->to], vrid,
        d->cfg.instance, NULL};
    char *env[] = {env_state, env_from, env_vrid, env_inst, "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                   NULL};
    uv_process_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return;
    uv_process_options_t opt = {
        .file = "/bin/sh", .args = args, .env = env, .exit_cb = notify_exited};
    int rc = uv_spawn(d->loop, p, &opt);
    if (rc != 0) {
        log_emit(LOG_WARN, "notify_failed", "vrid=%u error=\"%s\"", g->cfg.vrid, uv_strerror(rc));
        uv_close((uv_handle_t *)p, (uv_close_cb)free);
        return;
    }
    uv_unref((uv_handle_t *)p); /* a slow hook never holds up shutdown */
}

void vrrpd_log_transition(struct vrrpd_group *g, const struct vrrp_out *o, unsigned actions,
                          bool held_before)
{
    struct vrrpd *d = g->d;
    char reason[256], vips[512], line[1024], ts[40];
    vrrpd_vip_list(g, vips, sizeof(vips));
    log_quote(reason, sizeof(reason), o->reason);
    const char *vipkey = (actions & VRRP_ACT_ADD_VIPS) && !held_before  ? " vips_added="
                         : (actions & VRRP_ACT_DEL_VIPS) && held_before ? " vips_removed="
                         : held_before && g->vips_held ? " vips_kept_until_handover="
                                                       : "";
    const char *vipval = vipkey[0] ? vips : "";
    /* The levels an on-call person would pick: a takeover from a failed master and a
     * FAULT after start-up are warnings; start-up, preemption, a planned handover and
     * recovery are information. */
    bool alarm = o->takeover || (o->to == VRRP_FAULT && o->from != VRRP_INIT);
    log_emit(alarm ? LOG_WARN : LOG_INFO, "transition",
             "vrid=%u from=%s to=%s priority=%u reason=%s%s%s", g->cfg.vrid,
             vrrp_state_names[o->from], vrrp_state_names[o->to], g->fsm.priority, reason, vipkey,
             vipval);
    uint64_t w = clock_wall_ms();
    snprintf(line, sizeof(line),
             "ts=%s instance=%s event=transition vrid=%u from=%s to=%s priority=%u reason=%s%s%s\n",
             log_format_ts(w, ts, sizeof(ts)), d->cfg.instance, g->cfg.vrid,
             vrrp_state_names[o->from], vrrp_state_names[o->to], g->fsm.priority, reason, vipkey,
             vipval);
    append_line(d->transitions_fd, line);
    struct vrrpd_history *h = &g->history[g->history_next % VRRPD_HISTORY];
    g->history_next++;
    h->wall_ms = w;
    h->from = o->from;
    h->to = o->to;
    snprintf(h->reason, sizeof(h->reason), "%s", o->reason);
    run_notify(g, o);
}

/* A backup waits for a master it believes alive (vrrp_fsm.c says why): the stall grace,
 * and the silent master hold's start and end. */
void vrrpd_log_wait(struct vrrpd_group *g, const struct vrrp_out *o)
{
    char ip[16], q[220];
    const char *event = (o->actions & VRRP_ACT_STALL_GRACE) ? "stall_grace"
                        : (o->actions & VRRP_ACT_HOLD)      ? "silent_master_hold"
                                                            : "silent_master_back";
    uint64_t n = (o->actions & VRRP_ACT_STALL_GRACE) ? g->fsm.stall_graces : g->fsm.holds;
    log_emit((o->actions & VRRP_ACT_HOLD_END) ? LOG_INFO : LOG_WARN, event,
             "vrid=%u master=%s count=%llu reason=%s", g->cfg.vrid,
             g->fsm.master_ip ? format_ip4(g->fsm.master_ip, ip, sizeof(ip)) : "-",
             (unsigned long long)n, log_quote(q, sizeof(q), o->reason));
}

/* Open the transitions file (vrrp.transitions_file) for appending; a failure is logged
 * and the daemon goes on without it. */
void vrrpd_transitions_open(struct vrrpd *d)
{
    if (d->cfg.transitions_file[0] == '\0')
        return;
    d->transitions_fd =
        open(d->cfg.transitions_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (d->transitions_fd < 0)
        log_emit(LOG_WARN, "transitions_file_failed", "path=%s error=\"%s\"",
                 d->cfg.transitions_file, strerror(errno));
}
