/* vrrp_fsm.c -- the RFC 5798 state machine (see vrrp_fsm.h). Section numbers refer to
 * RFC 5798. Every state change goes through set_state(). */
#include "vrrp_fsm.h"

#include "parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *const vrrp_state_names[] = {"INIT", "BACKUP", "MASTER", "FAULT"};

/* 6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256 */
uint64_t vrrp_fsm_skew_ms(const struct vrrp_fsm *f)
{
    return ((256u - f->priority) * (uint64_t)f->master_adv_cs * 10) / 256;
}

/* 6.1: Master_Down_Interval = (3 * Master_Adver_Interval) + Skew_time */
uint64_t vrrp_fsm_master_down_ms(const struct vrrp_fsm *f)
{
    return 3 * (uint64_t)f->master_adv_cs * 10 + vrrp_fsm_skew_ms(f);
}

void vrrp_fsm_init(struct vrrp_fsm *f, const struct vrrp_fsm_config *cfg)
{
    memset(f, 0, sizeof(*f));
    f->cfg = *cfg;
    f->state = VRRP_INIT;
    f->priority = cfg->priority;
    f->master_adv_cs = cfg->adv_cs;
}

static void out_reset(struct vrrp_out *out)
{
    memset(out, 0, sizeof(*out));
}

/* A master's silence is over (it spoke, or the state changed): forget its probes. */
static void silence_reset(struct vrrp_fsm *f)
{
    f->probe_due_ms = f->probed_ms = f->alive_ms = f->hold_since_ms = 0;
    f->grace_used = false;
}

static uint64_t master_iv_ms(const struct vrrp_fsm *f)
{
    return (uint64_t)f->master_adv_cs * 10;
}

/* The one door for state changes. graceful: leaving MASTER keeps the VIPs until the new
 * master is heard. */
__attribute__((format(printf, 6, 7))) static void set_state(struct vrrp_fsm *f, uint64_t now,
                                                            enum vrrp_state to, bool graceful,
                                                            struct vrrp_out *out, const char *fmt,
                                                            ...)
{
    enum vrrp_state from = f->state;
    bool holding = f->handover_due_ms != 0; /* VIPs kept from a graceful resignation */
    uint64_t hand_due = f->handover_due_ms;
    uint32_t hand_master = f->handover_master;
    out->actions |= VRRP_ACT_TRANSITION;
    out->from = from;
    out->to = to;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
    va_end(ap);
    f->state = to;
    f->since_ms = now;
    f->transitions++;
    f->adv_due_ms = f->down_due_ms = 0;
    f->preempt_seen_ms = 0;
    f->resigned_ip = 0;
    f->gone_ip = 0;
    f->handover_due_ms = 0;
    f->handover_master = 0;
    silence_reset(f);
    switch (to) {
    case VRRP_MASTER: /* 6.4.1/6.4.2: advertise, add the addresses, announce them */
        out->actions |= VRRP_ACT_SEND_ADV | VRRP_ACT_ADD_VIPS | VRRP_ACT_GARP;
        out->actions &= ~(unsigned)VRRP_ACT_DEL_VIPS;
        f->adv_due_ms = now + (uint64_t)f->cfg.adv_cs * 10;
        f->master_ip = f->cfg.primary_ip;
        f->master_priority = f->priority;
        break;
    case VRRP_BACKUP:
        if (from == VRRP_MASTER && graceful) {
            /* An operator's resignation (vrrp_fsm_resign): priority 0 so a backup takes
             * over after Skew_Time, and the VIPs kept until it is heard, as at shutdown. */
            out->actions |= VRRP_ACT_SEND_ADV_ZERO;
            f->handover_due_ms = now + vrrp_fsm_master_down_ms(f);
        } else if (from == VRRP_MASTER || holding) {
            out->actions |= VRRP_ACT_DEL_VIPS;
        }
        f->down_due_ms = now + vrrp_fsm_master_down_ms(f);
        break;
    case VRRP_INIT:
    case VRRP_FAULT: /* 6.4.3 Shutdown: resign with priority 0 so the backup takes over */
        if (from == VRRP_MASTER)
            out->actions |= VRRP_ACT_SEND_ADV_ZERO;
        if (from == VRRP_MASTER && graceful) {
            /* Keep answering on the VIPs until the new master announces itself: no
             * moment without a holder, so no client SYN is lost to a 1 s retransmit. */
            f->handover_due_ms = now + vrrp_fsm_master_down_ms(f);
        } else if (from == VRRP_FAULT && graceful && holding) {
            /* A shutdown during a handover (lbd and vrrpd stopped together: lbd's drain
             * faulted the group a moment before): the handover goes on to its end. */
            f->handover_due_ms = hand_due;
            f->handover_master = hand_master;
        } else {
            out->actions |= VRRP_ACT_DEL_VIPS;
        }
        f->master_ip = 0;
        break;
    }
}

static void become_backup_start(struct vrrp_fsm *f, uint64_t now, struct vrrp_out *out,
                                const char *why)
{
    f->master_adv_cs = f->cfg.adv_cs; /* 6.4.1: until a master tells us its interval */
    f->master_ip = 0;
    if (f->priority == 255)
        set_state(f, now, VRRP_MASTER, false, out, "%s; address owner (priority 255)", why);
    else
        set_state(f, now, VRRP_BACKUP, false, out, "%s", why);
    if (!f->started && f->state == VRRP_BACKUP && f->cfg.start_yield_ms) {
        f->down_due_ms += f->cfg.start_yield_ms;
        f->yielding = true;
    }
    f->started = true;
}

void vrrp_fsm_start(struct vrrp_fsm *f, uint64_t now, bool fault, struct vrrp_out *out)
{
    out_reset(out);
    if (fault)
        set_state(f, now, VRRP_FAULT, false, out, "start-up with a tracked object down");
    else
        become_backup_start(f, now, out, "start-up");
}

static void handover_done(struct vrrp_fsm *f, struct vrrp_out *out)
{
    f->handover_due_ms = 0;
    f->handover_master = 0;
    out->actions |= VRRP_ACT_DEL_VIPS | VRRP_ACT_HANDOVER_DONE;
}

/* Whether the master's host has answered a probe since this silence began, recently
 * enough: within a master down interval, and 50 ms for a delayed ACK (up to 40 ms) and
 * the kernel's tick. */
static bool master_host_answers(const struct vrrp_fsm *f, uint64_t now)
{
    return f->cfg.silent_hold_ms && f->probed_ms && f->alive_ms >= f->probed_ms &&
           now - f->alive_ms <= vrrp_fsm_master_down_ms(f) + 50;
}

static void take_over(struct vrrp_fsm *f, uint64_t now, struct vrrp_out *out, uint64_t hold_end);

/* 6.4.2: the Master_Down_Timer fired. Before taking over on a silence, two waits of
 * this daemon's (each for a master that is most likely alive): the stall grace and the
 * silent master hold. */
static void master_down_fired(struct vrrp_fsm *f, uint64_t now, struct vrrp_out *out)
{
    char ip[16];
    uint64_t iv = master_iv_ms(f), md = vrrp_fsm_master_down_ms(f);
    uint64_t late = now - f->down_due_ms;
    bool silence = !f->resigned_ip && !f->gone_ip; /* not a resignation or a known death */
    /* The timer ran more than half an interval late: this vrrpd did not run for a while,
     * and whatever stopped it (a stalled host, CPU starvation) most likely stopped the
     * master too, whose advert is about to leave. Before declaring it down on a silence
     * this vrrpd could not have heard, give it one interval, once per silence. */
    if (silence && !f->grace_used && late * 2 > iv) {
        f->grace_used = true;
        f->stall_graces++;
        f->down_due_ms = now + iv;
        out->actions |= VRRP_ACT_STALL_GRACE;
        snprintf(out->reason, sizeof(out->reason),
                 "the master down timer ran %llu ms late: vrrpd itself was stalled; one more "
                 "interval for the master",
                 (unsigned long long)late);
        return;
    }
    bool plain = silence && f->master_ip && !f->preempt_seen_ms;
    uint64_t end = f->last_adv_ms + md + f->cfg.silent_hold_ms;
    if (plain && master_host_answers(f, now) && now < end) {
        if (f->hold_since_ms == 0) {
            f->hold_since_ms = now;
            f->holds++;
            out->actions |= VRRP_ACT_HOLD;
            snprintf(out->reason, sizeof(out->reason),
                     "no advertisement from %s for %llu ms, but its host answers on the peer "
                     "watch link: its vrrpd is stalled, not dead; waiting up to %llu ms more",
                     format_ip4(f->master_ip, ip, sizeof(ip)),
                     (unsigned long long)(now - f->last_adv_ms), (unsigned long long)(end - now));
        }
        f->down_due_ms = now + iv < end ? now + iv : end;
        out->actions |= VRRP_ACT_PROBE;
        return;
    }
    take_over(f, now, out, end);
}

/* 6.4.2: the master is down; become master, saying why in words and numbers. */
static void take_over(struct vrrp_fsm *f, uint64_t now, struct vrrp_out *out, uint64_t hold_end)
{
    char ip[16];
    uint64_t md = vrrp_fsm_master_down_ms(f);
    /* (Read before set_state, which clears what it is decided on.) */
    bool failed = !f->resigned_ip && (f->gone_ip || (f->master_ip && !f->preempt_seen_ms));
    if (f->resigned_ip)
        set_state(f, now, VRRP_MASTER, false, out, "priority 0 received from %s (it resigned)",
                  format_ip4(f->resigned_ip, ip, sizeof(ip)));
    else if (f->gone_ip)
        set_state(f, now, VRRP_MASTER, false, out,
                  "the vrrpd of %s ended: its peer watch link closed (last advert %llu ms ago)",
                  format_ip4(f->gone_ip, ip, sizeof(ip)),
                  (unsigned long long)(now - f->last_adv_ms));
    else if (f->preempt_seen_ms && f->master_ip)
        set_state(f, now, VRRP_MASTER, false, out,
                  "preempting %s: its priority %u is below ours (%u)",
                  format_ip4(f->master_ip, ip, sizeof(ip)), f->master_priority, f->priority);
    else if (f->master_ip && f->hold_since_ms)
        set_state(f, now, VRRP_MASTER, false, out,
                  "no advertisement from %s for %llu ms (master down interval %llu ms); its "
                  "host %s after %llu ms of waiting",
                  format_ip4(f->master_ip, ip, sizeof(ip)),
                  (unsigned long long)(now - f->last_adv_ms), (unsigned long long)md,
                  now >= hold_end ? "still answered, but the silent master hold ran out"
                                  : "stopped answering",
                  (unsigned long long)(now - f->hold_since_ms));
    else if (f->master_ip)
        set_state(f, now, VRRP_MASTER, false, out,
                  "no advertisement from %s for %llu ms (master down interval %llu ms)",
                  format_ip4(f->master_ip, ip, sizeof(ip)),
                  (unsigned long long)(now - f->last_adv_ms), (unsigned long long)md);
    else if (f->yielding)
        set_state(f, now, VRRP_MASTER, false, out,
                  "no master heard for %llu ms (master down interval %llu ms, and %llu ms "
                  "yielded at start-up: no peer claimed this group)",
                  (unsigned long long)(now - f->since_ms), (unsigned long long)md,
                  (unsigned long long)f->cfg.start_yield_ms);
    else
        set_state(f, now, VRRP_MASTER, false, out,
                  "no master heard for %llu ms (master down interval %llu ms)",
                  (unsigned long long)(now - f->since_ms), (unsigned long long)md);
    out->takeover = failed;
    f->yielding = false;
}

void vrrp_fsm_timer(struct vrrp_fsm *f, uint64_t now, struct vrrp_out *out)
{
    char ip[16];
    out_reset(out);
    if (f->handover_due_ms && now >= f->handover_due_ms) {
        if (f->handover_master)
            snprintf(out->reason, sizeof(out->reason), "%s is master now",
                     format_ip4(f->handover_master, ip, sizeof(ip)));
        else
            snprintf(out->reason, sizeof(out->reason), "no new master heard for %llu ms",
                     (unsigned long long)vrrp_fsm_master_down_ms(f));
        handover_done(f, out);
        return;
    }
    if (f->state == VRRP_MASTER && f->adv_due_ms && now >= f->adv_due_ms) {
        out->actions |= VRRP_ACT_SEND_ADV;
        uint64_t iv = (uint64_t)f->cfg.adv_cs * 10;
        f->adv_due_ms += iv;
        if (f->adv_due_ms <= now) /* the loop stalled: do not send a burst */
            f->adv_due_ms = now + iv;
        return;
    }
    if (f->state == VRRP_BACKUP && f->probe_due_ms && now >= f->probe_due_ms) {
        out->actions |= VRRP_ACT_PROBE; /* answered (or not) by the time the timer fires */
        if (f->probed_ms == 0)
            f->probed_ms = now;
        f->probe_due_ms = 0;
    }
    if (f->state == VRRP_BACKUP && f->down_due_ms && now >= f->down_due_ms)
        master_down_fired(f, now, out);
}

/* Follow the master that sent adv: learn its interval, restart the down timer. */
static void follow(struct vrrp_fsm *f, uint64_t now, const struct vrrp_adv *adv, uint32_t src)
{
    f->master_adv_cs = adv->max_adv_cs;
    f->master_ip = src;
    f->master_priority = adv->priority;
    f->last_adv_ms = now;
    f->resigned_ip = 0;
    f->gone_ip = 0;
    f->down_due_ms = now + vrrp_fsm_master_down_ms(f);
    f->yielding = false; /* a master is heard: the yield has done its work */
    silence_reset(f);
    /* One interval before the down timer (after two missed adverts), ask whether the
     * master's host still answers, so the answer is in when the timer fires. */
    if (f->cfg.silent_hold_ms)
        f->probe_due_ms = f->down_due_ms - master_iv_ms(f);
}

void vrrp_fsm_peer_alive(struct vrrp_fsm *f, uint64_t now, uint32_t peer, uint64_t at)
{
    if (f->state != VRRP_BACKUP || peer == 0 || peer != f->master_ip || at > now)
        return;
    if (at > f->alive_ms)
        f->alive_ms = at;
}

void vrrp_fsm_peer_gone(struct vrrp_fsm *f, uint64_t now, uint32_t peer)
{
    if (f->state != VRRP_BACKUP || peer == 0 || f->master_ip != peer || f->resigned_ip ||
        f->gone_ip)
        return;
    f->gone_ip = peer;
    uint64_t due = now + vrrp_fsm_skew_ms(f);
    if (f->down_due_ms == 0 || due < f->down_due_ms)
        f->down_due_ms = due;
}

void vrrp_fsm_recv(struct vrrp_fsm *f, uint64_t now, const struct vrrp_adv *adv, uint32_t src,
                   struct vrrp_out *out)
{
    char ip[16];
    out_reset(out);
    if (f->handover_due_ms && adv->priority > 0) {
        /* The new master speaks. Linger one interval: packets the clients sent before
         * its gratuitous ARP reached them still find the address here, and the new
         * master's repeated announcements outlast us. */
        if (f->handover_master == 0) {
            f->handover_master = src;
            uint64_t linger = now + (uint64_t)f->cfg.adv_cs * 10;
            if (linger < f->handover_due_ms)
                f->handover_due_ms = linger;
        }
        return;
    }
    if (f->state == VRRP_BACKUP && f->hold_since_ms && src == f->master_ip && adv->priority) {
        out->actions |= VRRP_ACT_HOLD_END;
        snprintf(out->reason, sizeof(out->reason),
                 "%s spoke again after %llu ms of silence; waited %llu ms past the master "
                 "down interval instead of taking over",
                 format_ip4(src, ip, sizeof(ip)), (unsigned long long)(now - f->last_adv_ms),
                 (unsigned long long)(now - f->hold_since_ms));
    }
    if (f->state == VRRP_BACKUP) {
        if (adv->priority == 0) {
            /* 6.4.2: the master resigns; take over after Skew_Time only. */
            f->master_ip = src;
            f->last_adv_ms = now;
            f->resigned_ip = src;
            f->down_due_ms = now + vrrp_fsm_skew_ms(f);
            return;
        }
        if (!f->cfg.preempt || adv->priority >= f->priority) {
            f->preempt_seen_ms = 0;
            follow(f, now, adv, src);
            return;
        }
        /* Preempt a lower-priority master: discard its adverts (6.4.2), after the
         * configured delay of seeing it (this daemon's addition). */
        if (f->preempt_seen_ms == 0)
            f->preempt_seen_ms = now;
        if (now - f->preempt_seen_ms < f->cfg.preempt_delay_ms) {
            uint64_t seen = f->preempt_seen_ms;
            follow(f, now, adv, src);
            f->preempt_seen_ms = seen;
        } else {
            f->master_ip = src;
            f->master_priority = adv->priority;
        }
        return;
    }
    if (f->state == VRRP_MASTER) {
        if (adv->priority == 0) { /* 6.4.3: another router resigned; assert ourselves now */
            out->actions |= VRRP_ACT_SEND_ADV;
            f->adv_due_ms = now + (uint64_t)f->cfg.adv_cs * 10;
            return;
        }
        bool higher = adv->priority > f->priority;
        bool tie_lost = adv->priority == f->priority && src > f->cfg.primary_ip;
        if (higher || tie_lost) {
            f->master_adv_cs = adv->max_adv_cs;
            if (higher)
                set_state(f, now, VRRP_BACKUP, false, out,
                          "higher priority %u seen from %s (ours %u)", adv->priority,
                          format_ip4(src, ip, sizeof(ip)), f->priority);
            else
                set_state(f, now, VRRP_BACKUP, false, out,
                          "equal priority %u seen from %s, a higher address than ours",
                          adv->priority, format_ip4(src, ip, sizeof(ip)));
            f->master_ip = src;
            f->master_priority = adv->priority;
            f->last_adv_ms = now;
        }
        /* else: the advert is discarded (6.4.3), and the other side backs off when it
         * hears us. But it took over (a stall, a lost advert) and announced the VIPs with
         * gratuitous ARP, so the segment's ARP caches point at it: answer now with an
         * advert and announce the VIPs again, or clients would keep sending to a host
         * that is about to drop them (keepalived's vrrp_garp_lower_prio_repeat). At
         * most once a second, so a peer stuck as master costs no storm. */
        else if (f->lower_answered_ms == 0 || now >= f->lower_answered_ms + 1000) {
            f->lower_answered_ms = now;
            out->actions |= VRRP_ACT_SEND_ADV | VRRP_ACT_GARP;
            f->adv_due_ms = now + (uint64_t)f->cfg.adv_cs * 10;
        }
    }
}

void vrrp_fsm_set_fault(struct vrrp_fsm *f, uint64_t now, bool fault, bool graceful,
                        const char *why, struct vrrp_out *out)
{
    out_reset(out);
    if (fault && f->state != VRRP_FAULT && f->state != VRRP_INIT) {
        set_state(f, now, VRRP_FAULT, graceful, out, "%s", why);
    } else if (fault && f->state == VRRP_FAULT && !graceful && f->handover_due_ms) {
        handover_done(f, out); /* the proxy died during the handover: release now */
    } else if (!fault && f->state == VRRP_FAULT)
        become_backup_start(f, now, out, why);
}

void vrrp_fsm_set_priority(struct vrrp_fsm *f, uint64_t now, uint8_t priority, struct vrrp_out *out)
{
    out_reset(out);
    if (priority == f->priority)
        return;
    f->priority = priority;
    if (f->state == VRRP_MASTER) {
        /* Tell the backups at once, so a preempting one can take over. */
        out->actions |= VRRP_ACT_SEND_ADV;
        f->adv_due_ms = now + (uint64_t)f->cfg.adv_cs * 10;
    }
}

void vrrp_fsm_reconfigure(struct vrrp_fsm *f, uint64_t now, const struct vrrp_fsm_config *cfg,
                          struct vrrp_out *out)
{
    out_reset(out);
    bool interval_changed = cfg->adv_cs != f->cfg.adv_cs;
    f->cfg.priority = cfg->priority;
    f->cfg.adv_cs = cfg->adv_cs;
    f->cfg.preempt = cfg->preempt;
    f->cfg.preempt_delay_ms = cfg->preempt_delay_ms;
    f->cfg.silent_hold_ms = cfg->silent_hold_ms; /* a hold under way ends at the new bound */
    if (!cfg->preempt)
        f->preempt_seen_ms = 0;
    if (!interval_changed)
        return;
    if (f->state == VRRP_MASTER) {
        f->master_adv_cs = cfg->adv_cs;
        out->actions |= VRRP_ACT_SEND_ADV;
        f->adv_due_ms = now + (uint64_t)cfg->adv_cs * 10;
    } else if (f->master_ip == 0) {
        f->master_adv_cs = cfg->adv_cs; /* 6.4.1: ours until a master tells us its own */
    }
}

void vrrp_fsm_resign(struct vrrp_fsm *f, uint64_t now, const char *why, struct vrrp_out *out)
{
    out_reset(out);
    if (f->state == VRRP_MASTER)
        set_state(f, now, VRRP_BACKUP, true, out, "%s", why);
}

void vrrp_fsm_shutdown(struct vrrp_fsm *f, uint64_t now, struct vrrp_out *out)
{
    out_reset(out);
    if (f->state != VRRP_INIT) {
        set_state(f, now, VRRP_INIT, true, out, "shutdown");
    }
}

uint64_t vrrp_fsm_next_due(const struct vrrp_fsm *f)
{
    uint64_t due = 0;
    const uint64_t t[] = {f->adv_due_ms, f->down_due_ms, f->handover_due_ms, f->probe_due_ms};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (t[i] && (due == 0 || t[i] < due))
            due = t[i];
    return due;
}
