/* vrrp_fsm.h -- the VRRP state machine of RFC 5798 section 6.4, one per group.
 *
 * Pure code: time (ms) and received advertisements go in; actions (send an advert,
 * add or remove the VIPs, announce them) and a transition with its reason come out.
 * The shell (vrrpd.c) performs the actions and arms one timer at vrrp_fsm_next_due().
 * FAULT is this daemon's addition for tracked objects (link down, lbd dead): a group in
 * FAULT holds no VIP and does not take part until the fault clears. */
#ifndef VRRPD_VRRP_FSM_H
#define VRRPD_VRRP_FSM_H

#include "vrrp_packet.h"

#include <stdbool.h>
#include <stdint.h>

enum vrrp_state { VRRP_INIT, VRRP_BACKUP, VRRP_MASTER, VRRP_FAULT };
#define VRRP_STATE_COUNT 4
extern const char *const vrrp_state_names[];

struct vrrp_fsm_config {
    uint8_t vrid;
    uint8_t priority; /* configured, 1..255 (255: address owner) */
    uint16_t adv_cs;  /* Advertisement_Interval, centiseconds */
    bool preempt;
    uint64_t preempt_delay_ms; /* wait this long seeing a lower-priority master first */
    uint32_t primary_ip;       /* our address on the segment, host order (tie-break) */
    /* vrrpd's addition (see vrrp_fsm_peer_alive): how long past the master down interval
     * a backup waits for a silent master whose host still answers; 0: never waits. */
    uint64_t silent_hold_ms;
    /* vrrpd's addition: at start-up, a group this instance does not prefer (its priority
     * is below its best) waits this long more before claiming a silence, so that the
     * peer, starting a little later, claims its own preferred group first and the pair
     * comes up active-active whatever the start order. 0: off. */
    uint64_t start_yield_ms;
};

enum vrrp_action {
    VRRP_ACT_SEND_ADV = 1 << 0,      /* send an advertisement with the current priority */
    VRRP_ACT_SEND_ADV_ZERO = 1 << 1, /* send a priority-0 advertisement: we resign */
    VRRP_ACT_ADD_VIPS = 1 << 2,
    VRRP_ACT_DEL_VIPS = 1 << 3,
    VRRP_ACT_GARP = 1 << 4,          /* announce the VIPs (gratuitous ARP) */
    VRRP_ACT_TRANSITION = 1 << 5,    /* from, to and reason are set */
    VRRP_ACT_HANDOVER_DONE = 1 << 6, /* with DEL_VIPS: the resigned VIPs are released */
    VRRP_ACT_PROBE = 1 << 7,         /* ask the master's host for a sign of life (master_ip) */
    VRRP_ACT_STALL_GRACE = 1 << 8,   /* the down timer ran late: one more interval (reason) */
    VRRP_ACT_HOLD = 1 << 9,          /* the master is silent but its host answers (reason) */
    VRRP_ACT_HOLD_END = 1 << 10,     /* the held master spoke again (reason) */
};

struct vrrp_out {
    unsigned actions;
    enum vrrp_state from, to;
    bool takeover; /* to MASTER because the master failed (died, went silent): not a claim at
                    * start-up, a preemption or a planned resignation */
    char reason[192];
};

struct vrrp_fsm {
    struct vrrp_fsm_config cfg;
    enum vrrp_state state;
    uint8_t priority;           /* effective: configured, lowered by tracked objects */
    uint16_t master_adv_cs;     /* Master_Adver_Interval, learnt from the master */
    uint64_t adv_due_ms;        /* MASTER: next advertisement; 0 = off */
    uint64_t down_due_ms;       /* BACKUP: Master_Down_Timer expiry; 0 = off */
    uint64_t preempt_seen_ms;   /* BACKUP: since when a lower-priority master is seen */
    uint64_t lower_answered_ms; /* MASTER: when it last answered a lower-priority master */
    uint32_t master_ip;         /* the master we follow (0: none heard), host order */
    uint8_t master_priority;
    uint64_t last_adv_ms;     /* when its last advertisement came */
    uint32_t resigned_ip;     /* BACKUP: a master that sent priority 0, until the timer */
    uint32_t gone_ip;         /* BACKUP: a master whose vrrpd is known to have ended */
    uint64_t since_ms;        /* when the current state was entered */
    uint64_t handover_due_ms; /* resigned gracefully: VIPs kept until a new master is
                                 heard (plus one interval) or this time passes
                                 (make-before-break); 0 = none */
    uint32_t handover_master; /* the new master heard during the handover, 0: none yet */
    uint64_t transitions;
    /* BACKUP, during a silence of the master (all reset when an advert comes): */
    uint64_t probe_due_ms;        /* when to ask the shell to probe the master's host; 0 = off */
    uint64_t probed_ms;           /* when the first probe of this silence was asked for */
    uint64_t alive_ms;            /* the latest sign of life of the master's host reported */
    uint64_t hold_since_ms;       /* waiting past the down timer since then; 0 = not */
    bool grace_used;              /* this silence had its stall grace */
    uint64_t stall_graces, holds; /* counters */
    bool started;                 /* the start-up yield was applied (once per process) */
    bool yielding;                /* BACKUP: the down timer includes the start-up yield */
};

void vrrp_fsm_init(struct vrrp_fsm *f, const struct vrrp_fsm_config *cfg);
/* Startup event: to BACKUP (or MASTER as address owner, or FAULT while faulted). */
void vrrp_fsm_start(struct vrrp_fsm *f, uint64_t now, bool fault, struct vrrp_out *out);
/* Call when now >= vrrp_fsm_next_due(). */
void vrrp_fsm_timer(struct vrrp_fsm *f, uint64_t now, struct vrrp_out *out);
/* An advertisement for this VRID that passed the packet checks; src in host order. */
void vrrp_fsm_recv(struct vrrp_fsm *f, uint64_t now, const struct vrrp_adv *adv, uint32_t src,
                   struct vrrp_out *out);
/* The vrrpd of the master at peer (host order) has ended: its process closed the peer
 * watch link (vrrpd's addition, see peerwatch.h). It cannot resign with priority 0 any
 * more, so take the same path as if it had (6.4.2): a BACKUP following it takes over
 * after Skew_Time instead of the Master_Down_Interval. An advert from it in the meantime
 * cancels this. Ignored in other states or for another master. */
void vrrp_fsm_peer_gone(struct vrrp_fsm *f, uint64_t now, uint32_t peer);
/* The master at peer (host order) showed a sign of life at time at (<= now) that is not
 * an advertisement: its host acknowledged a probe on the peer watch link (vrrpd's
 * addition). VRRP reads a master's silence as its death, but a master whose vrrpd is
 * starved or stopped (a stalled vCPU, CPU starvation, SIGSTOP) still holds and serves its
 * addresses, and taking them over resets every session on them. So when the
 * Master_Down_Timer fires and the master's host has answered since this silence began
 * (and within the last master down interval and 50 ms), a BACKUP waits on, one interval at a
 * time and probing each, for at most cfg.silent_hold_ms; it takes over as soon as the
 * answers stop, and when the hold runs out. A dead process closes the link (peer_gone)
 * and a dead host or a cut path answers nothing, so neither waits. */
void vrrp_fsm_peer_alive(struct vrrp_fsm *f, uint64_t now, uint32_t peer, uint64_t at);
/* A tracked object changed: enter or leave FAULT. why says what, in words. graceful:
 * the local proxy still serves (it drains), so a master keeps its VIPs until the new
 * master is heard; otherwise (proxy dead, link down) they go at once. */
void vrrp_fsm_set_fault(struct vrrp_fsm *f, uint64_t now, bool fault, bool graceful,
                        const char *why, struct vrrp_out *out);
/* A tracked object changed the effective priority (1..254). */
void vrrp_fsm_set_priority(struct vrrp_fsm *f, uint64_t now, uint8_t priority,
                           struct vrrp_out *out);
/* A reloaded configuration (vrrpd's addition): the configured priority, interval and
 * preemption change in place; vrid and primary_ip stay (they change on restart only).
 * A MASTER whose interval changed advertises at once with the new one, so its backups
 * learn it (6.4.2: Master_Adver_Interval comes from the adverts). The effective
 * priority follows through vrrp_fsm_set_priority(), which the caller computes from the
 * new configured priority and what is tracked. */
void vrrp_fsm_reconfigure(struct vrrp_fsm *f, uint64_t now, const struct vrrp_fsm_config *cfg,
                          struct vrrp_out *out);
/* An operator's planned move (vrrpd's addition): a MASTER resigns with a priority-0
 * advert and becomes BACKUP, keeping its VIPs until the new master is heard (plus one
 * interval) or the master down interval passes (make-before-break, as at shutdown). If
 * no other router takes over, its down timer makes it master again. Only a MASTER
 * resigns; the caller lowers the priority first if it must not take the group back. */
void vrrp_fsm_resign(struct vrrp_fsm *f, uint64_t now, const char *why, struct vrrp_out *out);
/* Shutdown event: resign with priority 0 if master, go to INIT, keeping the VIPs until
 * the new master is heard (make-before-break). Done when vrrp_fsm_next_due() is 0. */
void vrrp_fsm_shutdown(struct vrrp_fsm *f, uint64_t now, struct vrrp_out *out);
/* The earliest timer, 0 when none runs. */
uint64_t vrrp_fsm_next_due(const struct vrrp_fsm *f);
uint64_t vrrp_fsm_master_down_ms(const struct vrrp_fsm *f);
uint64_t vrrp_fsm_skew_ms(const struct vrrp_fsm *f);

#endif
