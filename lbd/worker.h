/* worker.h -- lbd's event loops (lbd.workers).
 *
 * Worker 0 is the main loop: it accepts every connection and runs everything that is not
 * a client session (checks, the admin and control endpoints, the liveness channel, the
 * VIP watch, reload, signals). Workers 1.. are threads, each with its own loop. A new
 * connection goes to the worker with the fewest sessions (HAProxy's multi-queue accept):
 * the worker owns the session from then on, with its buffers, its parked node
 * connections (reuse), its counters and its copy of the configuration, so nothing on the
 * relay's path takes a lock.
 *
 * What is shared (the pool and its nodes, the cancel key map, the front door's guard) is
 * under l->nodes.lock, taken at a session's start and end, per CancelRequest and when
 * worker 0 changes a node; never per message. Worker 0 asks the others for what only they
 * can do to their sessions (drain, kill, cut, list, close) with worker_run, which waits
 * for the answer; the others tell worker 0 what only it may do (a node's failed connect,
 * the last session gone) with worker_post, which does not wait. */
#ifndef LBD_WORKER_H
#define LBD_WORKER_H

#include "lbd.h"

#include <pthread.h>

struct lbd_worker;
typedef void (*worker_fn)(struct lbd_worker *w, void *arg);

struct worker_msg {
    worker_fn fn;
    void *arg;
    bool wait; /* worker_run: the caller waits for done */
    bool kept; /* worker_post_msg: the caller's memory, not freed after */
    bool done; /* (under the worker's qlock) */
    struct worker_msg *next;
};

struct lbd_worker {
    struct lbd *lbd;
    unsigned index;
    uv_loop_t *loop; /* worker 0: the main loop; others: own_loop */
    uv_loop_t own_loop;
    uv_thread_t thread;
    bool own;      /* has own_loop (workers 1..) */
    bool threaded; /* its thread runs (workers_launch) */
    /* Its copy of the configuration (the main loop's for worker 0): a reload gives each
     * worker the new one on its own loop. */
    struct lbd_config cfg;
    struct session *sessions;  /* doubly linked list of its live sessions */
    uint32_t n_sessions;       /* one writer (this worker); others read it relaxed */
    uint32_t load;             /* sessions handed to it and not ended (worker 0 adds at accept) */
    struct lbd_parked *parked; /* node connections kept for reuse, newest first */
    uint32_t n_parked;
    uint32_t n_bulk; /* directions being spliced */
    void *buf_free[LBD_BUF_CACHE];
    size_t n_buf_free;
    struct lbd_stats stats; /* one writer: this worker; summed by lbd_stats_total */
    uint64_t rng;
    /* Messages to this worker's loop (any thread posts; this worker runs them). */
    uv_async_t wake;
    bool wake_open;
    pthread_mutex_t qlock;
    pthread_cond_t qdone;
    struct worker_msg *q_head, *q_tail;
    bool stopped; /* its loop has ended (or never began): messages run on the caller */
};

/* lbd.workers, or (0) $PGVIP_LBD_WORKERS when set (1..LBD_MAX_WORKERS), or the CPUs lbd
 * may run on (its affinity), LBD_MAX_WORKERS at most. */
unsigned workers_wanted(const struct lbd_config *c);
/* Set up l->workers[0..n-1] (worker 0 on loop, the others on loops of their own, not
 * running yet). 0 or a negative errno. */
int workers_start(struct lbd *l, uv_loop_t *loop, unsigned n);
/* Start the other workers' threads (after lbd gave up its privileges: capabilities are
 * per thread). Returns how many workers run. */
unsigned workers_launch(struct lbd *l);
/* After the main loop ended: stop the other workers (their sessions are gone), join and
 * free. */
void workers_free(struct lbd *l);
/* End the other workers' loops once their sessions and parked connections are closed
 * (asked from worker 0 at shutdown; returns at once). */
void workers_stop(struct lbd *l);

/* Run fn(w, arg) on w's loop and wait for it to return. Worker 0's thread only, holding
 * no lock; on worker 0 itself, or a stopped worker, fn runs at once. */
void worker_run(struct lbd_worker *w, worker_fn fn, void *arg);
/* worker_run on every worker in turn. */
void workers_run(struct lbd *l, worker_fn fn, void *arg);
/* Run fn(w, arg) on w's loop later (any thread; does not wait). arg belongs to fn. false:
 * no memory (fn is not run). */
bool worker_post(struct lbd_worker *w, worker_fn fn, void *arg);

/* fn(worker 0, arg) on the main loop: at once when w is worker 0, else posted (arg is
 * dropped, not freed, when that fails: pass NULL or memory fn does not own). */
void worker_tell_main(struct lbd_worker *w, worker_fn fn, void *arg);

/* worker_post with a message in the caller's memory (m->fn, m->arg set; m must live
 * until fn has run): cannot fail while w runs. */
void worker_post_msg(struct lbd_worker *w, struct worker_msg *m);

/* The worker a new connection goes to: the fewest sessions handed to it. */
struct lbd_worker *workers_pick(struct lbd *l);

void *worker_buf_get(struct lbd_worker *w);
void worker_buf_put(struct lbd_worker *w, void *buf);
uint64_t worker_random(struct lbd_worker *w);

/* Every worker's counters added up (for /metrics, /status and the history; each
 * counter has one writer, read here relaxed). */
void lbd_stats_total(const struct lbd *l, struct lbd_stats *out);

#endif
