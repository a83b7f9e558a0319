/* pool.h -- the database node pool and the balancing choice (pure).
 *
 * The shell (session.c, checker.c) owns sockets and timers; this file only decides
 * which node a new session goes to, from node states, weights and session counts. */
#ifndef LBD_POOL_H
#define LBD_POOL_H

#include "health.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define POOL_MAX_NODES 64 /* a tried-nodes set fits one uint64_t */

enum pool_balance { POOL_ROUNDROBIN, POOL_LEASTCONN, POOL_P2C };
extern const char *const pool_balance_names[]; /* NULL-terminated, config choices */

enum node_state { NODE_UP, NODE_DOWN, NODE_DRAINING };
const char *node_state_name(enum node_state s);

/* What an operator set (the control socket), beside what the checks say: ready takes
 * new sessions; drain takes none and closes the open ones at their next idle moment
 * (pool.on_node_drain); disabled takes none and leaves the open ones alone. */
enum node_admin { NODE_ADMIN_READY, NODE_ADMIN_DRAIN, NODE_ADMIN_DISABLED };
const char *node_admin_name(enum node_admin a);

struct pool_node {
    char name[64];
    struct sockaddr_storage addr;
    uint32_t weight;     /* 0: never chosen */
    uint32_t weight_cfg; /* the file's weight (weight differs: set at run time) */
    enum node_admin admin;
    uint64_t admin_since_ms; /* wall clock of the last admin change */
    bool runtime;            /* added at run time (the control socket), not by the file */
    uint32_t max_sessions;   /* 0: unlimited */
    uint16_t check_port;     /* http checks; 0: none configured */
    enum node_state state;
    struct health_state health;
    uint32_t active;    /* sessions now (changed under the lock) */
    uint32_t parked;    /* idle connections kept for reuse (the shell's reuse.c; atomic) */
    uint64_t tls_no_ms; /* loop time it last answered 'N' to an SSLRequest; 0: not since an 'S' */
    int64_t rr_current; /* smooth weighted round robin */
    bool removed;       /* dropped by a reload; freed when no session holds it */
    uint32_t refs;      /* sessions holding a pointer (node.c: node_ref, node_unref) */
    pthread_mutex_t *lock; /* the shared lock it is under (struct nodes' lock; node.c) */
    uint64_t sessions_total, bytes_in, bytes_out, connect_failures, checks_failed;
    uint64_t state_changes; /* up/down/draining transitions (flapping shows here) */
    uint64_t state_since_ms, last_check_ms, last_check_latency_us;
    char last_check[128]; /* result in words */
    void *check;          /* the shell's check runner */
};

struct pool {
    struct pool_node *nodes[POOL_MAX_NODES];
    size_t n;
    enum pool_balance balance;
};

/* Can this node take a new session now? */
bool pool_node_eligible(const struct pool_node *n);
/* Does it drain: its readiness check says so, or an operator? (Inline: the relay asks
 * at each of a node's reads.) */
static inline bool pool_node_draining(const struct pool_node *n)
{
    /* (Relaxed loads: lbd's workers ask without the lock, worker 0 writes under it.) */
    return __atomic_load_n(&n->state, __ATOMIC_RELAXED) == NODE_DRAINING ||
           __atomic_load_n(&n->admin, __ATOMIC_RELAXED) == NODE_ADMIN_DRAIN;
}

/* Choose a node index for a new session, skipping nodes whose bit is set in tried.
 * rnd is a random 64-bit value (p2c and tie breaks). Returns -1 when none fits. */
int pool_pick(struct pool *p, uint64_t tried, uint64_t rnd);

/* Number of nodes eligible now. */
size_t pool_count_eligible(const struct pool *p);

#endif
