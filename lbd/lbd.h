/* lbd.h -- the lbd daemon context and the interfaces between its shell files:
 * lbd.c (lifecycle, listeners, signals, reload), session*.c (client sessions and the
 * relay), cancel.c (CancelRequest routing), checker.c (health checks), admin.c (HTTP). */
#ifndef LBD_LBD_H
#define LBD_LBD_H

#include "clock.h"
#include "ctl.h"
#include "guard.h"
#include "httpd.h"
#include "keymap.h"
#include "lbd_config.h"
#include "log.h"
#include "metrics.h"
#include "node.h"
#include "pgwire.h"
#include "pool.h"
#include "reload.h"
#include "signals.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define LBD_BUF_SIZE (32 * 1024)
#define LBD_BUF_CACHE 256 /* free buffers kept for reuse */
/* Connections accepted per loop turn, over all listeners (HAProxy's tune.maxaccept): a
 * flood of new connections waits its turn behind the sessions already open instead of
 * holding the loop in accept() while they starve. */
#define LBD_MAXACCEPT 64

struct lbd_listener {
    uv_tcp_t tcp; /* data = this */
    struct lbd *lbd;
    struct sockaddr_storage addr;
    bool peer;       /* the cancel-peer listener: only CancelRequests, never forwarded again */
    int twin_fd;     /* bound (SO_REUSEPORT) with a drop-all filter, not listening; -1: none */
    bool deferred;   /* a connection waits in libuv for the next loop turn (LBD_MAXACCEPT) */
    bool quiet;      /* paused for a handover: the twin drops new connections (lbd.c) */
    bool closing;    /* paused, and libuv has not let go of tcp yet */
    bool resume_due; /* the pause ended while closing: resume when libuv lets go */
    int paused_fd;   /* the listener's socket while paused; -1: not paused */
    bool orphan;     /* removed while closing: freed by the close callback */
    struct lbd_listener *next;
};

/* A counter of struct lbd_stats: one writer (its worker), read by worker 0 while the
 * worker runs (lbd_stats_total): a relaxed atomic store, as cheap as a plain add. */
#define STAT_ADD(c, n) __atomic_store_n(&(c), (c) + (n), __ATOMIC_RELAXED)
#define STAT_INC(c) STAT_ADD(c, 1)
/* Worker 0's read of what the workers change (a node's session and byte counts, the
 * totals): relaxed, for the views and the bounds' estimates. */
#define RELAXED(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

struct lbd_stats {
    uint64_t sessions_total;   /* accepted client connections */
    uint64_t sessions_relayed; /* reached a node */
    uint64_t refused_maxconn, refused_no_node, refused_bad_packet, refused_connect;
    uint64_t startup_timeouts, idle_timeouts;
    uint64_t drained_at_idle;       /* sessions of a draining node closed at an idle moment */
    uint64_t drain_deadline_ended;  /* busy sessions ended at pool.drain_deadline */
    uint64_t killed_at_idle;        /* sessions an operator killed, closed at an idle moment */
    uint64_t killed_now;            /* relaying sessions an operator killed at once */
    struct metrics_hist connect_s;  /* accept to the node's connection, seconds */
    struct metrics_hist duration_s; /* a client session's life, seconds */
    uint64_t cancel_routed, cancel_to_peer, cancel_broadcast, cancel_one, cancel_dropped;
    uint64_t cancel_failed;
    uint64_t cancel_limited;      /* CancelRequests dropped by a bound (guard.verdicts say which) */
    uint64_t cancel_peer_refused; /* peer-listener connections from another address than the peer */
    uint64_t refused_local; /* sessions refused for lbd's own limits (descriptors, memory, ports) */
    uint64_t
        refused_source_busy; /* too many connections from one source before their first answer */
    uint64_t accept_failed;  /* connections accepted and closed at once (lbd out of memory) */
    uint64_t
        checks_skipped_local; /* health checks lbd could not start itself: not the node's fault */
    uint64_t checks_late;     /* check answers read after their timeout fired late (checker.c) */
    uint64_t node_timeouts_late;  /* the same for a session's connect or node answer (session.c) */
    uint64_t bytes_in, bytes_out; /* client -> node, node -> client */
    uint64_t bulk_started;        /* bulk transfers spliced (bulk.h) */
    uint64_t bulk_failed;         /* splices refused (out of descriptors): copied instead */
    uint64_t bulk_bytes;          /* bytes spliced, either way */
    uint64_t reuse_parked;        /* node connections parked for reuse (reuse.c) */
    uint64_t reuse_taken;         /* sessions served by a parked connection */
    uint64_t reuse_reset_failed;  /* parked connections whose reset did not go through */
    uint64_t reuse_expired;       /* parked connections closed after pool.reuse.idle */
};

struct nl_sock;    /* libnl */
struct session;    /* session.c */
struct lbd_worker; /* worker.c */
struct lbd_parked; /* reuse.c */

#define LBD_HISTORY 600 /* seconds of history for the status page */
struct lbd_sample {
    uint32_t sessions;         /* open at the sample */
    uint32_t opened;           /* accepted in the second before */
    uint32_t refused;          /* refused in the second before (any reason) */
    uint32_t connect_failures; /* failed connects to nodes (retried or not) */
};

struct lbd {
    uv_loop_t *loop;
    char config_path[512];
    struct lbd_config cfg;
    struct nodes nodes; /* the pool and its nodes' life (node.h) */
    struct keymap keys;
    struct lbd_listener *listeners;
    /* The event loops (worker.h): [0] is this loop; each owns its sessions, buffers,
     * parked connections and counters. */
    struct lbd_worker *workers;
    unsigned n_workers;
    /* Totals over the workers (atomic: each worker adds and subtracts its own). */
    uint32_t n_sessions;     /* client connections open (maxconn) */
    uint32_t n_parked;       /* node connections kept for reuse */
    struct lbd_parked *idle; /* reset parked connections any worker may take (reuse.c;
                                under nodes.lock) */
    uint32_t n_bulk;         /* directions being spliced (4 descriptors each) */
    uint64_t session_ids;    /* the last session id given (the control socket's names) */
    struct daemon_signals signals;
    uv_timer_t drain_timer;
    struct httpd admin;       /* when cfg.admin_enabled */
    uv_timer_t history_timer; /* samples for the status page's chart, every second */
    bool history_on;
    struct lbd_sample history[LBD_HISTORY];
    size_t history_n;                 /* samples taken; the ring holds the last LBD_HISTORY */
    uint64_t history_prev[3];         /* counters at the previous sample */
    void *liveness;                   /* liveness.c */
    uv_poll_t vipwatch;               /* netlink: addresses removed (vipwatch.c) */
    struct nl_sock *vipwatch_sk;      /* its libnl socket; NULL: not watching */
    int quiesced_fds[LBD_MAX_LISTEN]; /* listening twins that drop SYNs during a handover */
    size_t n_quiesced;
    bool draining;      /* (workers read it relaxed) */
    bool startups_wait; /* a planned stop waits for sessions to finish their startup */
    uint64_t stop_ms;   /* loop time of the SIGTERM that began the wait */
    /* VIPs vrrpd quiesced before resigning: it is told "quiet" once their logins under
     * way are done (liveness.c), LIVENESS_QUIET_WAIT_MS at most. */
    struct {
        struct sockaddr_storage ip;
        uint64_t due_ms; /* loop time */
    } quiet_waits[8];
    size_t n_quiet_waits;
    uv_timer_t quiet_wait_timer;
    int exit_code;
    uint64_t started_ms, config_loaded_ms; /* wall clock */
    struct reload_state reload;
    struct guard guard; /* cancels and sources (guard.h; under nodes.lock) */
    uint64_t fd_limit;  /* RLIMIT_NOFILE's soft limit once raised; 0: unknown */
    struct log_limit lim_check;
    /* The front door's log lines, once a second over all workers (lbd_log_pass): */
    struct log_limit lim_cancel, lim_peer, lim_local, lim_accept, lim_busy;
    uv_prepare_t accept_turn;     /* resumes deferred listeners at the next turn */
    void *reload_job;             /* a reload being read on the thread pool (lbd.c) */
    bool reload_again;            /* SIGHUP came meanwhile: read the file again after it */
    bool stopped;                 /* finish() ran */
    uv_timer_t reload_timer;      /* says so when a reload takes long */
    uv_timer_t quiet_timer;       /* ends a quiesce (on_quiesce) */
    uint64_t vrrp_advert_ms[256]; /* per VRID, when vrrpd last heard its master (liveness.c) */
    struct ctl control;           /* the control socket (control.c) */
    uv_timer_t control_timer;     /* drain deadlines of nodes an operator drains */
    bool control_on;
    uid_t control_uid;            /* may change things (beside root): the user lbd started as */
    gid_t control_gid;            /* and lbd.control.operators' members; (gid_t)-1: none */
    uint8_t peer_key[128];        /* the pair's key (lbd.peer.key_file), read at start */
    size_t peer_key_len;          /* 0: node commands are not sent to, or taken from, the peer */
    uint8_t peer_nonces[256][16]; /* the last peer commands taken: a replay is refused */
    unsigned peer_nonce_next;
    uint64_t peer_ctl_taken, peer_ctl_refused, peer_ctl_sent, peer_ctl_failed;
    /* Node commands the peer lbd could not be told (control.c): the last one per node
     * and kind, sent again until the peer takes it; a later change of it drops it. */
    struct peer_pending {
        char kind; /* 'a': admin state (drain, disable, enable), 'w': weight */
        char node[64];
        char cmd[160]; /* "nodes drain pg1" */
        char by[96];
        uint64_t since_ms; /* wall clock of the change here */
        uint32_t seq;
    } peer_pending[2 * POOL_MAX_NODES];
    size_t n_peer_pending;
    uint32_t peer_pending_seq;
    bool peer_retry_busy;   /* a try is on its way */
    uint64_t peer_retry_ms; /* loop time of the last try */
    uint64_t peer_caught_up, peer_catch_up_refused;
    uint64_t state_file_failed; /* writes of lbd.control.state_file that failed */
    struct log_limit lim_peer_ctl;
    uint32_t accepted_this_turn;
    /* Hooks lbd.c registers, so that the modules below it call nothing in lbd.c: */
    /* The last session ended while draining (session.c). */
    void (*on_sessions_gone)(struct lbd *l);
    /* vrrpd hands the VIP ip over (pgvipctl vrrp resign; liveness.c): for ms, new
     * connections to the listeners on ip are dropped (a socket filter on the listener),
     * so their SYN is retried and reaches the new holder instead of opening a session
     * here that the takeover would cut. Open sessions are not touched. */
    void (*on_quiesce)(struct lbd *l, const struct sockaddr_storage *ip, uint64_t ms);
    /* A session left its startup (session.c; only while startups_wait or a quiet wait). */
    void (*on_startup_over)(struct lbd *l);
};

/* Descriptors lbd may still open (estimated from what it holds: 2 a session, 4 a spliced
 * direction, 1 a parked connection, a cancel forward or a check), with `reserve` kept
 * back. Past the limit a new session is refused with 53300 before it costs a node
 * anything. */
bool lbd_fd_room(const struct lbd *l, uint64_t need);
/* Errors that are lbd's own (out of descriptors, memory, buffers or local ports), not
 * the node's: they never count against a node's health. err: a libuv (negative errno)
 * code. */
bool lbd_error_is_local(int err);
/* A timeout of a node's (a check, a connect, an answer) that fires with the node's answer
 * already waiting unread: libuv runs due timers before it polls for I/O, so after a loop
 * turn that ran long (a busy loop, a starved host) the delay is lbd's, not the node's.
 * True when something waits on h: with connecting, the connect's completion (writable or
 * an error); else data, an error or a close. The caller gives the loop one turn (a 1 ms
 * timer: libuv 1.44 runs a 0 ms one started in a timer callback again before polling). */
bool lbd_io_waiting(const uv_handle_t *h, bool connecting);
/* 32 bits from the kernel's CSPRNG (getrandom), for secret keys a client sees. */
uint32_t lbd_secret_key(void);

/* The shared lock (struct nodes' lock): the pool, the cancel key map, the guard. Held
 * briefly, never across a hook, a worker_run or a system call that may block. */
static inline void lbd_lock(struct lbd *l)
{
    pthread_mutex_lock(&l->nodes.lock);
}
static inline void lbd_unlock(struct lbd *l)
{
    pthread_mutex_unlock(&l->nodes.lock);
}

/* log_limit_pass on one of the limits the workers share, under the lock. */
static inline bool lbd_log_pass(struct lbd *l, struct log_limit *lim, unsigned long long *held)
{
    lbd_lock(l);
    bool pass = log_limit_pass(lim, clock_wall_ms(), held);
    lbd_unlock(l);
    return pass;
}

/* lbd.c (clocks: common/clock.h) */
/* TCP_NODELAY and keepalive on a socket that exists (idle = keepalive, then 3 probes
 * at most 10 s apart), set directly: libuv's uv_tcp_keepalive() sets its own interval
 * and count, and on a handle without a socket yet it defers its options so ours were
 * lost (node connections probed every 1 s x 10 instead). */
void lbd_tune_socket(const struct lbd_config *c, uv_tcp_t *t);
#endif
