/* node.h -- a database node's life in lbd: created from the file or at run time, its
 * health (the checks' observations) and admin states changed, referenced while a session,
 * a parked connection or a check holds it, removed, and freed when the last reference
 * goes. One place counts references (node_ref/node_unref).
 *
 * This file acts on nodes only. What the rest of lbd does when a node changes (close
 * its parked connections, cut or drain its sessions, start or stop its check) is done by
 * hooks lbd.c registers, so no call goes from here to a session, reuse or check. */
#ifndef LBD_NODE_H
#define LBD_NODE_H

#include "clock.h"
#include "lbd_config.h"
#include "pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* lbd's workers (worker.h) share the pool: `lock` covers the pool's array, each node's
 * states, weights, session counts and references, and (lbd.h) the cancel key map and
 * the front door's guard. Worker 0 alone changes nodes; the functions below take the
 * lock themselves where they change what the workers read, and call the hooks without
 * it. */
struct nodes {
    struct pool pool;
    pthread_mutex_t lock;
    /* From the configuration (lbd.c sets them at start and reload). */
    uint32_t rise, fall;
    uint64_t drain_deadline_ms; /* 0: a draining node's busy sessions are never ended */
    bool checked;               /* health checks run: a node added at run time waits for one */
    /* Hooks (ctx is their first argument): */
    void *ctx;
    void (*on_state)(void *ctx, struct pool_node *n);     /* n->state changed */
    void (*on_admin)(void *ctx, struct pool_node *n);     /* n->admin changed */
    void (*on_drain_due)(void *ctx, struct pool_node *n); /* its drain deadline has passed */
    void (*on_added)(void *ctx, struct pool_node *n);     /* n is in the pool (start its check) */
    void (*on_dropped)(void *ctx, struct pool_node *n);   /* n has left the pool */
};

/* A node as a file's entry describes it (not in the pool yet); NULL: no memory. */
struct pool_node *node_new(const struct nodes *ns, const struct lbd_node_config *nc);
/* n leaves the pool (the caller has taken it out of ns->pool): removed, and freed once
 * no reference is left. */
void node_drop(struct nodes *ns, struct pool_node *n);
/* Take a reference (the caller holds one already, or the lock with n in the pool). */
static inline void node_ref(struct pool_node *n)
{
    __atomic_add_fetch(&n->refs, 1, __ATOMIC_RELAXED);
}
/* Drop a reference (without the lock: it takes it); a removed node with none left (and
 * no check) is freed. */
void node_unref(struct pool_node *n);

void node_set_state(struct nodes *ns, struct pool_node *n, enum node_state st, const char *reason);
/* Feed one health observation (a check, or a failed connect) into n's rise/fall state;
 * draining marks an explicit "not ready" answer (HTTP 503). */
void node_result(struct nodes *ns, struct pool_node *n, bool ok, bool draining, const char *reason);
/* An operator's change of n's admin state (who: how the log names the caller). */
void node_set_admin(struct nodes *ns, struct pool_node *n, enum node_admin a, const char *who);
/* A draining node's busy sessions ended once drain_deadline_ms has passed (on_drain_due). */
void node_drain_check(struct nodes *ns, struct pool_node *n);
struct pool_node *node_find(struct nodes *ns, const char *name);
/* A node added at run time (the control socket): 0, or -errno with err saying why. */
int node_add(struct nodes *ns, const struct lbd_node_config *nc, char *err, size_t errsize);
/* Remove a node with no sessions that takes none (drain or disabled first). */
int node_remove(struct nodes *ns, struct pool_node *n, char *err, size_t errsize);

#endif
