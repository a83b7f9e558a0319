/* test_vrrp_fsm.c -- the RFC 5798 state machine driven event by event
 * (vrrpd/vrrp_fsm.c). Times are in ms; 100 ms adverts unless said otherwise. */
#include "check_main.h"
#include "vrrp_fsm.h"

#include <string.h>

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
#define ME IP(10, 0, 0, 11)
#define PEER_LOW IP(10, 0, 0, 5)   /* lower address than ours */
#define PEER_HIGH IP(10, 0, 0, 21) /* higher address than ours */

static struct vrrp_fsm f;
static struct vrrp_out o;

static void make(uint8_t prio, bool preempt, uint64_t delay)
{
    struct vrrp_fsm_config c = {.vrid = 51,
                                .priority = prio,
                                .adv_cs = 10,
                                .preempt = preempt,
                                .preempt_delay_ms = delay,
                                .primary_ip = ME};
    vrrp_fsm_init(&f, &c);
}

static struct vrrp_adv adv(uint8_t prio, uint16_t cs)
{
    struct vrrp_adv a = {
        .vrid = 51, .priority = prio, .max_adv_cs = cs, .naddrs = 1, .addrs = {IP(10, 0, 0, 100)}};
    return a;
}

/* Run the timer at every due time up to `until`; returns the last output. */
static void run_until(uint64_t until)
{
    uint64_t due;
    while ((due = vrrp_fsm_next_due(&f)) != 0 && due <= until) {
        vrrp_fsm_timer(&f, due, &o);
        if (o.actions & VRRP_ACT_TRANSITION)
            return;
    }
}

START_TEST(start_backup_then_master_after_master_down_interval)
{
    make(100, true, 0);
    vrrp_fsm_start(&f, 1000, false, &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    /* 6.1: skew = (256-100)*100/256 = 60 ms; down = 3*100 + 60 = 360 ms */
    ck_assert_uint_eq(vrrp_fsm_skew_ms(&f), 60);
    ck_assert_uint_eq(vrrp_fsm_master_down_ms(&f), 360);
    vrrp_fsm_timer(&f, 1359, &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    vrrp_fsm_timer(&f, 1360, &o);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_eq(o.actions & (VRRP_ACT_ADD_VIPS | VRRP_ACT_SEND_ADV | VRRP_ACT_GARP),
                      VRRP_ACT_ADD_VIPS | VRRP_ACT_SEND_ADV | VRRP_ACT_GARP);
    ck_assert_ptr_nonnull(strstr(o.reason, "no master heard for 360 ms"));
    ck_assert(!o.takeover);                         /* a claim at start-up: nobody failed */
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 1460); /* next advert */
    vrrp_fsm_timer(&f, 1460, &o);
    ck_assert_uint_eq(o.actions, VRRP_ACT_SEND_ADV);
}
END_TEST

START_TEST(start_yield_lets_the_peer_claim_its_group_first)
{
    /* Two instances started 30 ms apart: lb1 first, in the group lb2 prefers. With the
     * yield, lb1 does not claim it after its master down interval... */
    struct vrrp_fsm_config c = {.vrid = 52,
                                .priority = 100,
                                .adv_cs = 10,
                                .preempt = false,
                                .primary_ip = ME,
                                .start_yield_ms = 2000};
    vrrp_fsm_init(&f, &c);
    vrrp_fsm_start(&f, 0, false, &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    vrrp_fsm_timer(&f, 360, &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    /* ... so lb2's advert (its claim, at 30 + 341 ms) finds it backup, and it follows. */
    struct vrrp_adv a = adv(150, 10);
    a.vrid = 52;
    vrrp_fsm_recv(&f, 371, &a, PEER_HIGH, &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    ck_assert_uint_eq(f.master_ip, PEER_HIGH);
    /* Once a master is heard, its silence counts as usual: no yield again. */
    vrrp_fsm_timer(&f, 371 + 360, &o);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_ptr_null(strstr(o.reason, "yielded"));
}
END_TEST

START_TEST(start_yield_alone_claims_after_the_yield_and_says_so)
{
    struct vrrp_fsm_config c = {
        .vrid = 52, .priority = 100, .adv_cs = 10, .primary_ip = ME, .start_yield_ms = 2000};
    vrrp_fsm_init(&f, &c);
    vrrp_fsm_start(&f, 0, false, &o);
    vrrp_fsm_timer(&f, 2359, &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    vrrp_fsm_timer(&f, 2360, &o);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_ptr_nonnull(strstr(o.reason, "2000 ms yielded at start-up"));
    /* Only the process's first start yields: after a FAULT it is plain VRRP again. */
    vrrp_fsm_set_fault(&f, 3000, true, false, "link down", &o);
    vrrp_fsm_set_fault(&f, 4000, false, false, "link up", &o);
    vrrp_fsm_timer(&f, 4360, &o);
    ck_assert_int_eq(f.state, VRRP_MASTER);
}
END_TEST

/* pgvipctl vrrp resign: a master hands its group over make-before-break and follows
 * the new master; a backup has nothing to resign. */
START_TEST(resign_hands_over_make_before_break)
{
    make(150, true, 0);
    vrrp_fsm_start(&f, 1000, false, &o);
    run_until(5000);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    vrrp_fsm_set_priority(&f, 2000, 1, &o); /* (the caller's: do not take it back) */
    vrrp_fsm_resign(&f, 2000, "resigned by an operator", &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    ck_assert(o.actions & VRRP_ACT_TRANSITION);
    ck_assert(o.actions & VRRP_ACT_SEND_ADV_ZERO);
    ck_assert(!(o.actions & VRRP_ACT_DEL_VIPS)); /* kept until the new master speaks */
    ck_assert(!o.takeover);
    ck_assert_str_eq(o.reason, "resigned by an operator");
    ck_assert_uint_ne(f.handover_due_ms, 0);
    struct vrrp_adv a = adv(100, 10);
    vrrp_fsm_recv(&f, 2030, &a, PEER_LOW, &o); /* the peer took over after its skew */
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    vrrp_fsm_timer(&f, vrrp_fsm_next_due(&f), &o); /* one interval later: released */
    ck_assert(o.actions & VRRP_ACT_HANDOVER_DONE);
    ck_assert(o.actions & VRRP_ACT_DEL_VIPS);
    ck_assert_uint_eq(f.handover_due_ms, 0);
    vrrp_fsm_recv(&f, 2130, &a, PEER_LOW, &o); /* followed, not preempted (priority 1) */
    run_until(2200);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    ck_assert_uint_eq(f.master_ip, PEER_LOW);
    vrrp_fsm_resign(&f, 2200, "again", &o); /* a backup: nothing */
    ck_assert_uint_eq(o.actions, 0);
}
END_TEST

START_TEST(backup_follows_master_and_reports_its_silence)
{
    make(100, false, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(150, 10);
    for (uint64_t t = 100; t <= 1000; t += 100) {
        vrrp_fsm_recv(&f, t, &a, PEER_HIGH, &o);
        vrrp_fsm_timer(&f, t + 50, &o);
        ck_assert_int_eq(f.state, VRRP_BACKUP);
    }
    run_until(5000);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_eq(f.since_ms, 1360);
    ck_assert_str_eq(o.reason,
                     "no advertisement from 10.0.0.21 for 360 ms (master down interval 360 ms)");
}
END_TEST

/* A backup whose down timer runs more than half an interval late was stalled itself:
 * one more interval for the master, once per silence; an advert resets that. */
START_TEST(stall_grace_waits_one_interval_once_per_silence)
{
    make(100, false, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(150, 10);
    vrrp_fsm_recv(&f, 100, &a, PEER_HIGH, &o);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 460);
    vrrp_fsm_timer(&f, 540, &o); /* 80 ms late: more than half of 100 */
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    ck_assert_uint_eq(o.actions, VRRP_ACT_STALL_GRACE);
    ck_assert_ptr_nonnull(strstr(o.reason, "ran 80 ms late"));
    ck_assert_uint_eq(f.stall_graces, 1);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 640);
    vrrp_fsm_recv(&f, 600, &a, PEER_HIGH, &o); /* the overdue advert: no failover */
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    vrrp_fsm_timer(&f, 1060, &o); /* a new silence, late again: a new grace */
    ck_assert_uint_eq(o.actions, VRRP_ACT_STALL_GRACE);
    vrrp_fsm_timer(&f, 1200, &o); /* late again in the same silence: no second grace */
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_eq(f.stall_graces, 2);
    ck_assert_ptr_nonnull(strstr(o.reason, "no advertisement from 10.0.0.21 for 600 ms"));
}
END_TEST

START_TEST(timer_on_time_or_after_a_resignation_gets_no_grace)
{
    make(100, false, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(150, 10), zero = adv(0, 10);
    vrrp_fsm_recv(&f, 100, &a, PEER_HIGH, &o);
    vrrp_fsm_timer(&f, 510, &o); /* 50 ms late is not more than half an interval */
    ck_assert_int_eq(f.state, VRRP_MASTER);
    make(100, false, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    vrrp_fsm_recv(&f, 100, &zero, PEER_HIGH, &o);
    vrrp_fsm_timer(&f, 400, &o); /* late, but the master resigned: nobody to wait for */
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_eq(f.stall_graces, 0);
}
END_TEST

static void make_hold(uint64_t hold)
{
    make(100, false, 0);
    f.cfg.silent_hold_ms = hold;
    vrrp_fsm_start(&f, 0, false, &o);
}

/* A silent master whose host answers the probes is waited for, one interval at a time,
 * up to the hold; then taken over, with the reason. */
START_TEST(silent_master_whose_host_answers_is_held_up_to_the_hold)
{
    make_hold(1000);
    struct vrrp_adv a = adv(150, 10);
    vrrp_fsm_recv(&f, 100, &a, PEER_HIGH, &o);
    /* The probe is asked for one interval before the down timer (460). */
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 360);
    vrrp_fsm_timer(&f, 360, &o);
    ck_assert_uint_eq(o.actions, VRRP_ACT_PROBE);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 460);
    vrrp_fsm_peer_alive(&f, 361, PEER_HIGH, 361);
    vrrp_fsm_timer(&f, 460, &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    ck_assert_uint_eq(o.actions, VRRP_ACT_HOLD | VRRP_ACT_PROBE);
    ck_assert_ptr_nonnull(strstr(o.reason, "its host answers"));
    ck_assert_ptr_nonnull(strstr(o.reason, "waiting up to 1000 ms more"));
    ck_assert_uint_eq(f.holds, 1);
    uint64_t t = 460, due;
    while ((due = vrrp_fsm_next_due(&f)) != 0 && f.state == VRRP_BACKUP) {
        vrrp_fsm_peer_alive(&f, due, PEER_HIGH, t + 1); /* each probe answered */
        ck_assert_uint_le(due - t, 100);                /* one interval at a time */
        t = due;
        vrrp_fsm_timer(&f, t, &o);
        if (f.state == VRRP_BACKUP)
            ck_assert_uint_eq(o.actions, VRRP_ACT_PROBE);
    }
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_eq(f.since_ms, 1460); /* last advert + master down + hold */
    ck_assert_ptr_nonnull(strstr(o.reason, "still answered, but the silent master hold ran out"));
    ck_assert_uint_eq(f.holds, 1);
}
END_TEST

/* An advert at 100, the probe asked for at 360 and answered at 362: at 460 (the down
 * timer) the hold begins. Returns the master's advert. */
static struct vrrp_adv hold_started(uint64_t hold)
{
    make_hold(hold);
    struct vrrp_adv a = adv(150, 10);
    vrrp_fsm_recv(&f, 100, &a, PEER_HIGH, &o);
    vrrp_fsm_timer(&f, 360, &o);
    vrrp_fsm_peer_alive(&f, 362, PEER_HIGH, 362);
    vrrp_fsm_timer(&f, 460, &o);
    ck_assert_uint_eq(o.actions, VRRP_ACT_HOLD | VRRP_ACT_PROBE);
    return a;
}

START_TEST(held_master_that_speaks_again_is_followed)
{
    struct vrrp_adv a = hold_started(1000);
    vrrp_fsm_recv(&f, 700, &a, PEER_HIGH, &o);
    ck_assert_uint_eq(o.actions, VRRP_ACT_HOLD_END);
    ck_assert_ptr_nonnull(strstr(o.reason, "spoke again after 600 ms of silence"));
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    ck_assert_uint_eq(f.hold_since_ms, 0);
    ck_assert_uint_eq(f.probed_ms, 0);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 960); /* the next silence's probe */
}
END_TEST

/* The host stops answering during the hold (it died, or the path was cut): take over
 * once its last answer is more than a master down interval (+50 ms) old. */
START_TEST(hold_ends_when_the_host_stops_answering)
{
    make_hold(5000);
    struct vrrp_adv a = adv(150, 10);
    vrrp_fsm_recv(&f, 100, &a, PEER_HIGH, &o);
    vrrp_fsm_timer(&f, 360, &o);
    vrrp_fsm_peer_alive(&f, 362, PEER_HIGH, 362);
    run_until(10000);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_le(f.since_ms, 362 + 360 + 50 + 100);
    ck_assert_uint_ge(f.since_ms, 362 + 360 + 50);
    ck_assert_ptr_nonnull(strstr(o.reason, "stopped answering"));
}
END_TEST

/* Without an answer since the silence began there is no hold: RFC 5798 timing. An
 * answer from before the first probe, from another router, or with the hold off does
 * not count either. */
START_TEST(no_answer_no_hold)
{
    struct vrrp_adv a = adv(150, 10);
    for (int variant = 0; variant < 4; variant++) {
        make_hold(variant == 3 ? 0 : 1000);
        vrrp_fsm_recv(&f, 100, &a, PEER_HIGH, &o);
        run_until(360);
        if (variant == 1)
            vrrp_fsm_peer_alive(&f, 361, PEER_HIGH, 359); /* before the probe */
        if (variant == 2)
            vrrp_fsm_peer_alive(&f, 361, PEER_LOW, 361); /* not our master */
        if (variant == 3)
            vrrp_fsm_peer_alive(&f, 361, PEER_HIGH, 361); /* hold off */
        run_until(10000);
        ck_assert_int_eq(f.state, VRRP_MASTER);
        ck_assert_uint_eq(f.since_ms, 460);
        ck_assert_uint_eq(f.holds, 0);
        ck_assert_str_eq(
            o.reason, "no advertisement from 10.0.0.21 for 360 ms (master down interval 360 ms)");
        ck_assert(o.takeover); /* the master failed: a warning in the log */
    }
}
END_TEST

/* A master whose vrrpd ends during the hold is taken over after the skew time. */
START_TEST(peer_gone_during_the_hold_takes_over_at_once)
{
    (void)hold_started(1000);
    vrrp_fsm_peer_gone(&f, 500, PEER_HIGH);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 560); /* skew 60 ms */
    vrrp_fsm_timer(&f, 560, &o);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_ptr_nonnull(strstr(o.reason, "its peer watch link closed"));
}
END_TEST

START_TEST(backup_learns_the_masters_interval)
{
    make(100, false, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(150, 100); /* the master advertises every second */
    vrrp_fsm_recv(&f, 10, &a, PEER_HIGH, &o);
    ck_assert_uint_eq(f.master_adv_cs, 100);
    ck_assert_uint_eq(vrrp_fsm_master_down_ms(&f), 3000 + 609);
    vrrp_fsm_timer(&f, 3000, &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
}
END_TEST

START_TEST(priority_zero_hands_over_after_skew_time)
{
    make(100, false, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(150, 10);
    vrrp_fsm_recv(&f, 100, &a, PEER_HIGH, &o);
    a.priority = 0;
    vrrp_fsm_recv(&f, 150, &a, PEER_HIGH, &o);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 150 + 60);
    run_until(1000);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_eq(f.since_ms, 210);
    ck_assert_str_eq(o.reason, "priority 0 received from 10.0.0.21 (it resigned)");
    ck_assert(!o.takeover); /* a planned handover */
}
END_TEST

START_TEST(peer_gone_takes_over_after_skew_time)
{
    make(100, false, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(150, 10);
    vrrp_fsm_recv(&f, 100, &a, PEER_HIGH, &o);
    vrrp_fsm_peer_gone(&f, 130, PEER_HIGH);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 130 + 60); /* skew, not 100 + 360 */
    run_until(1000);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_eq(f.since_ms, 190);
    ck_assert_str_eq(o.reason, "the vrrpd of 10.0.0.21 ended: its peer watch link closed "
                               "(last advert 90 ms ago)");
    ck_assert(o.takeover);
}
END_TEST

START_TEST(peer_gone_of_another_router_or_cancelled_by_an_advert)
{
    make(100, false, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(150, 10);
    vrrp_fsm_recv(&f, 100, &a, PEER_HIGH, &o);
    /* Not the master we follow: nothing changes. */
    vrrp_fsm_peer_gone(&f, 130, PEER_LOW);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 100 + 360);
    /* The master's link closed, but it advertises again within the skew time (a new
     * vrrpd, or the link was reset while it lives): keep following it. */
    vrrp_fsm_peer_gone(&f, 140, PEER_HIGH);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 200);
    vrrp_fsm_recv(&f, 190, &a, PEER_HIGH, &o);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 190 + 360);
    vrrp_fsm_timer(&f, 200, &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    /* A master ignores it. */
    run_until(5000);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    uint64_t due = vrrp_fsm_next_due(&f);
    vrrp_fsm_peer_gone(&f, 600, PEER_HIGH);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), due);
    ck_assert_int_eq(f.state, VRRP_MASTER);
}
END_TEST

START_TEST(master_yields_to_higher_priority)
{
    make(100, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    struct vrrp_adv a = adv(200, 10);
    vrrp_fsm_recv(&f, 500, &a, PEER_LOW, &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    ck_assert(o.actions & VRRP_ACT_DEL_VIPS);
    ck_assert_str_eq(o.reason, "higher priority 200 seen from 10.0.0.5 (ours 100)");
}
END_TEST

START_TEST(master_answers_lower_priority_master_once_a_second)
{
    /* A lower-priority router that took over (a stall) announced the VIPs: the master
     * stays, answers with an advert and announces them again, at most once a second. */
    make(150, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    struct vrrp_adv a = adv(100, 10);
    vrrp_fsm_recv(&f, 1005, &a, PEER_HIGH, &o);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_eq(o.actions, VRRP_ACT_SEND_ADV | VRRP_ACT_GARP);
    ck_assert_uint_eq(f.adv_due_ms, 1105);
    vrrp_fsm_recv(&f, 1050, &a, PEER_HIGH, &o);
    ck_assert_uint_eq(o.actions, 0);
    vrrp_fsm_recv(&f, 2004, &a, PEER_HIGH, &o);
    ck_assert_uint_eq(o.actions, 0);
    vrrp_fsm_recv(&f, 2005, &a, PEER_HIGH, &o);
    ck_assert_uint_eq(o.actions, VRRP_ACT_SEND_ADV | VRRP_ACT_GARP);
    ck_assert_int_eq(f.state, VRRP_MASTER);
}
END_TEST

START_TEST(equal_priority_higher_address_wins)
{
    make(100, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    struct vrrp_adv a = adv(100, 10);
    vrrp_fsm_recv(&f, 500, &a, PEER_LOW, &o); /* lower address: we stay */
    ck_assert_int_eq(f.state, VRRP_MASTER);
    vrrp_fsm_recv(&f, 600, &a, PEER_HIGH, &o); /* higher address: we yield */
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    ck_assert_ptr_nonnull(strstr(o.reason, "equal priority 100 seen from 10.0.0.21"));
}
END_TEST

START_TEST(without_preempt_a_higher_backup_waits)
{
    make(200, false, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(100, 10);
    for (uint64_t t = 100; t < 5000; t += 100) {
        vrrp_fsm_recv(&f, t, &a, PEER_LOW, &o);
        vrrp_fsm_timer(&f, t + 1, &o);
    }
    ck_assert_int_eq(f.state, VRRP_BACKUP);
}
END_TEST

START_TEST(with_preempt_a_higher_backup_takes_over)
{
    make(200, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(100, 10);
    uint64_t t;
    for (t = 100; t < 5000 && f.state == VRRP_BACKUP; t += 100) {
        vrrp_fsm_recv(&f, t, &a, PEER_LOW, &o);
        run_until(t + 99);
    }
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_le(f.since_ms, 100 + 360); /* its adverts were discarded from the first */
    ck_assert_ptr_nonnull(strstr(o.reason, "preempting 10.0.0.5: its priority 100 is below ours"));
    ck_assert(!o.takeover); /* taking its own VIP back: planned */
}
END_TEST

START_TEST(preempt_delay_holds_the_takeover)
{
    make(200, true, 2000);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(100, 10);
    uint64_t t;
    for (t = 100; t < 10000 && f.state == VRRP_BACKUP; t += 100) {
        vrrp_fsm_recv(&f, t, &a, PEER_LOW, &o);
        run_until(t + 99);
    }
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_ge(f.since_ms, 100 + 2000);
    ck_assert_uint_le(f.since_ms, 100 + 2000 + 400);
}
END_TEST

START_TEST(shutdown_resigns_and_keeps_vips_until_the_new_master_speaks)
{
    make(100, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    vrrp_fsm_shutdown(&f, 900, &o);
    ck_assert_int_eq(f.state, VRRP_INIT);
    ck_assert(o.actions & VRRP_ACT_SEND_ADV_ZERO);
    ck_assert_msg(!(o.actions & VRRP_ACT_DEL_VIPS), "VIPs dropped before a new master exists");
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 900 + 360);
    struct vrrp_adv a = adv(0, 10); /* another resigning router does not count */
    vrrp_fsm_recv(&f, 950, &a, PEER_HIGH, &o);
    ck_assert_uint_eq(o.actions & VRRP_ACT_DEL_VIPS, 0);
    a.priority = 100;
    vrrp_fsm_recv(&f, 961, &a, PEER_HIGH, &o);
    ck_assert_msg(o.actions == 0, "released at once: in-flight SYNs would be lost");
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 961 + 100); /* one interval of linger */
    vrrp_fsm_recv(&f, 1000, &a, PEER_HIGH, &o);          /* a second advert does not extend it */
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 1061);
    vrrp_fsm_timer(&f, 1061, &o);
    ck_assert_uint_eq(o.actions, VRRP_ACT_DEL_VIPS | VRRP_ACT_HANDOVER_DONE);
    ck_assert_str_eq(o.reason, "10.0.0.21 is master now");
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 0);
}
END_TEST

START_TEST(shutdown_handover_times_out_without_a_new_master)
{
    make(100, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    vrrp_fsm_shutdown(&f, 900, &o);
    vrrp_fsm_timer(&f, 1259, &o);
    ck_assert_uint_eq(o.actions, 0);
    vrrp_fsm_timer(&f, 1260, &o);
    ck_assert_uint_eq(o.actions, VRRP_ACT_DEL_VIPS | VRRP_ACT_HANDOVER_DONE);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 0);
}
END_TEST

START_TEST(draining_proxy_hands_over_gracefully_dead_one_at_once)
{
    make(100, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    vrrp_fsm_set_fault(&f, 800, true, true, "tracked lbd is draining", &o);
    ck_assert_int_eq(f.state, VRRP_FAULT);
    ck_assert_uint_eq(o.actions & VRRP_ACT_DEL_VIPS, 0);
    /* lbd then dies before anyone took over: release now. */
    vrrp_fsm_set_fault(&f, 820, true, false, "tracked lbd closed its channel", &o);
    ck_assert(o.actions & VRRP_ACT_DEL_VIPS);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 0);
}
END_TEST

START_TEST(shutdown_during_a_drain_handover_keeps_the_vips_until_the_new_master_speaks)
{
    /* SIGTERM to lbd and vrrpd at once: lbd's drain faults the group (handover pending),
     * then vrrpd's own shutdown must not drop the VIPs before the peer has them. */
    make(100, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    vrrp_fsm_set_fault(&f, 800, true, true, "tracked lbd is draining", &o);
    ck_assert_uint_eq(o.actions & VRRP_ACT_DEL_VIPS, 0);
    vrrp_fsm_shutdown(&f, 805, &o);
    ck_assert_int_eq(f.state, VRRP_INIT);
    ck_assert_msg(!(o.actions & VRRP_ACT_DEL_VIPS), "VIPs dropped before the peer took over");
    ck_assert_uint_ne(vrrp_fsm_next_due(&f), 0); /* vrrpd waits for the handover's end */
    struct vrrp_adv a = adv(100, 10);
    vrrp_fsm_recv(&f, 870, &a, PEER_HIGH, &o);
    vrrp_fsm_timer(&f, vrrp_fsm_next_due(&f), &o);
    ck_assert_uint_eq(o.actions, VRRP_ACT_DEL_VIPS | VRRP_ACT_HANDOVER_DONE);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 0);
}
END_TEST

START_TEST(recovery_during_handover_releases_the_vips)
{
    make(100, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    vrrp_fsm_set_fault(&f, 800, true, true, "tracked lbd is draining", &o);
    vrrp_fsm_set_fault(&f, 850, false, false, "tracked lbd answers", &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    ck_assert(o.actions & VRRP_ACT_DEL_VIPS);
}
END_TEST

START_TEST(tracked_fault_resigns_and_recovery_rejoins_as_backup)
{
    make(100, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    vrrp_fsm_set_fault(&f, 800, true, false, "tracked lbd closed its channel", &o);
    ck_assert_int_eq(f.state, VRRP_FAULT);
    ck_assert(o.actions & VRRP_ACT_SEND_ADV_ZERO);
    ck_assert(o.actions & VRRP_ACT_DEL_VIPS);
    ck_assert_str_eq(o.reason, "tracked lbd closed its channel");
    struct vrrp_adv a = adv(50, 10);
    vrrp_fsm_recv(&f, 900, &a, PEER_LOW, &o); /* FAULT ignores adverts */
    ck_assert_uint_eq(o.actions, 0);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 0);
    vrrp_fsm_set_fault(&f, 1000, false, false, "tracked lbd answers", &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
}
END_TEST

START_TEST(start_while_faulted)
{
    make(100, true, 0);
    vrrp_fsm_start(&f, 0, true, &o);
    ck_assert_int_eq(f.state, VRRP_FAULT);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 0);
}
END_TEST

START_TEST(lowered_priority_is_advertised_at_once)
{
    make(150, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    vrrp_fsm_set_priority(&f, 700, 100, &o);
    ck_assert_uint_eq(o.actions, VRRP_ACT_SEND_ADV);
    ck_assert_uint_eq(f.priority, 100);
}
END_TEST

START_TEST(reload_new_interval_is_advertised_at_once)
{
    make(150, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    struct vrrp_fsm_config c = f.cfg;
    c.adv_cs = 2; /* 20 ms */
    vrrp_fsm_reconfigure(&f, 900, &c, &o);
    ck_assert_uint_eq(o.actions, VRRP_ACT_SEND_ADV);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 920);
    ck_assert_uint_eq(f.master_adv_cs, 2);
    /* The same configuration again changes nothing. */
    vrrp_fsm_reconfigure(&f, 905, &c, &o);
    ck_assert_uint_eq(o.actions, 0);
    ck_assert_uint_eq(vrrp_fsm_next_due(&f), 920);
}
END_TEST

START_TEST(reload_raised_priority_with_preempt_takes_over)
{
    make(100, false, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(150, 10);
    vrrp_fsm_recv(&f, 100, &a, PEER_HIGH, &o);
    /* The operator raises our priority above the master's and turns preemption on. */
    struct vrrp_fsm_config c = f.cfg;
    c.priority = 200;
    c.preempt = true;
    vrrp_fsm_reconfigure(&f, 150, &c, &o);
    ck_assert_uint_eq(o.actions, 0);
    vrrp_fsm_set_priority(&f, 150, 200, &o);
    ck_assert_int_eq(f.state, VRRP_BACKUP);
    /* 6.4.2: a lower-priority advert no longer resets the timer, so it runs out. */
    for (uint64_t t = 200; t <= 400; t += 100) {
        vrrp_fsm_recv(&f, t, &a, PEER_HIGH, &o);
        ck_assert_int_eq(f.state, VRRP_BACKUP);
    }
    run_until(1000);
    ck_assert_int_eq(f.state, VRRP_MASTER);
    ck_assert_uint_eq(f.since_ms, 460); /* the advert at 100 + 360 ms */
}
END_TEST

START_TEST(reload_turning_preempt_off_forgets_the_wait)
{
    make(200, true, 5000);
    vrrp_fsm_start(&f, 0, false, &o);
    struct vrrp_adv a = adv(100, 10);
    vrrp_fsm_recv(&f, 100, &a, PEER_HIGH, &o);
    ck_assert_uint_ne(f.preempt_seen_ms, 0);
    struct vrrp_fsm_config c = f.cfg;
    c.preempt = false;
    vrrp_fsm_reconfigure(&f, 200, &c, &o);
    ck_assert_uint_eq(f.preempt_seen_ms, 0);
    for (uint64_t t = 300; t <= 10000; t += 100) {
        vrrp_fsm_recv(&f, t, &a, PEER_HIGH, &o);
        ck_assert_int_eq(f.state, VRRP_BACKUP);
    }
}
END_TEST

START_TEST(address_owner_starts_as_master)
{
    make(255, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    ck_assert_int_eq(f.state, VRRP_MASTER);
}
END_TEST

START_TEST(master_answers_a_resigning_router_at_once)
{
    make(100, true, 0);
    vrrp_fsm_start(&f, 0, false, &o);
    run_until(1000);
    struct vrrp_adv a = adv(0, 10);
    vrrp_fsm_recv(&f, 555, &a, PEER_HIGH, &o);
    ck_assert_uint_eq(o.actions, VRRP_ACT_SEND_ADV);
    ck_assert_int_eq(f.state, VRRP_MASTER);
}
END_TEST

START_TEST(split_brain_heals_to_one_master)
{
    /* Two machines, both MASTER after a partition; when they hear each other again,
     * exactly one stays. */
    struct vrrp_fsm a, b;
    struct vrrp_fsm_config ca = {.vrid = 9, .priority = 100, .adv_cs = 10, .primary_ip = PEER_LOW};
    struct vrrp_fsm_config cb = {.vrid = 9, .priority = 100, .adv_cs = 10, .primary_ip = PEER_HIGH};
    vrrp_fsm_init(&a, &ca);
    vrrp_fsm_init(&b, &cb);
    vrrp_fsm_start(&a, 0, false, &o);
    vrrp_fsm_start(&b, 0, false, &o);
    vrrp_fsm_timer(&a, 400, &o);
    vrrp_fsm_timer(&b, 400, &o);
    ck_assert_int_eq(a.state, VRRP_MASTER);
    ck_assert_int_eq(b.state, VRRP_MASTER);
    struct vrrp_adv from_a = adv(100, 10), from_b = adv(100, 10);
    vrrp_fsm_recv(&b, 500, &from_a, PEER_LOW, &o);
    vrrp_fsm_recv(&a, 500, &from_b, PEER_HIGH, &o);
    ck_assert_int_eq(a.state, VRRP_BACKUP);
    ck_assert_int_eq(b.state, VRRP_MASTER);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("vrrp_fsm");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, start_backup_then_master_after_master_down_interval);
    tcase_add_test(tc, start_yield_lets_the_peer_claim_its_group_first);
    tcase_add_test(tc, start_yield_alone_claims_after_the_yield_and_says_so);
    tcase_add_test(tc, resign_hands_over_make_before_break);
    tcase_add_test(tc, backup_follows_master_and_reports_its_silence);
    tcase_add_test(tc, backup_learns_the_masters_interval);
    tcase_add_test(tc, stall_grace_waits_one_interval_once_per_silence);
    tcase_add_test(tc, timer_on_time_or_after_a_resignation_gets_no_grace);
    tcase_add_test(tc, silent_master_whose_host_answers_is_held_up_to_the_hold);
    tcase_add_test(tc, held_master_that_speaks_again_is_followed);
    tcase_add_test(tc, hold_ends_when_the_host_stops_answering);
    tcase_add_test(tc, no_answer_no_hold);
    tcase_add_test(tc, peer_gone_during_the_hold_takes_over_at_once);
    tcase_add_test(tc, priority_zero_hands_over_after_skew_time);
    tcase_add_test(tc, peer_gone_takes_over_after_skew_time);
    tcase_add_test(tc, peer_gone_of_another_router_or_cancelled_by_an_advert);
    tcase_add_test(tc, master_yields_to_higher_priority);
    tcase_add_test(tc, master_answers_lower_priority_master_once_a_second);
    tcase_add_test(tc, equal_priority_higher_address_wins);
    tcase_add_test(tc, without_preempt_a_higher_backup_waits);
    tcase_add_test(tc, with_preempt_a_higher_backup_takes_over);
    tcase_add_test(tc, preempt_delay_holds_the_takeover);
    tcase_add_test(tc, shutdown_resigns_and_keeps_vips_until_the_new_master_speaks);
    tcase_add_test(tc, shutdown_handover_times_out_without_a_new_master);
    tcase_add_test(tc, draining_proxy_hands_over_gracefully_dead_one_at_once);
    tcase_add_test(tc, recovery_during_handover_releases_the_vips);
    tcase_add_test(tc, shutdown_during_a_drain_handover_keeps_the_vips_until_the_new_master_speaks);
    tcase_add_test(tc, tracked_fault_resigns_and_recovery_rejoins_as_backup);
    tcase_add_test(tc, start_while_faulted);
    tcase_add_test(tc, lowered_priority_is_advertised_at_once);
    tcase_add_test(tc, reload_new_interval_is_advertised_at_once);
    tcase_add_test(tc, reload_raised_priority_with_preempt_takes_over);
    tcase_add_test(tc, reload_turning_preempt_off_forgets_the_wait);
    tcase_add_test(tc, address_owner_starts_as_master);
    tcase_add_test(tc, master_answers_a_resigning_router_at_once);
    tcase_add_test(tc, split_brain_heals_to_one_master);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(suite)
