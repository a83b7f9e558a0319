/* node.c -- a database node's life in lbd (see node.h). */
#include "node.h"

#include "log.h"
#include "parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void node_unref(struct pool_node *n)
{
    pthread_mutex_lock(n->lock);
    bool gone =
        __atomic_sub_fetch(&n->refs, 1, __ATOMIC_RELAXED) == 0 && n->removed && n->check == NULL;
    pthread_mutex_unlock(n->lock);
    if (gone)
        free(n);
}

void node_set_state(struct nodes *ns, struct pool_node *n, enum node_state st, const char *reason)
{
    if (n->state == st)
        return;
    char r[200];
    log_emit(st == NODE_UP ? LOG_INFO : LOG_WARN, "node_state",
             "node=%s from=%s to=%s reason=%s sessions=%u", n->name, node_state_name(n->state),
             node_state_name(st), log_quote(r, sizeof(r), reason), n->active);
    pthread_mutex_lock(&ns->lock);
    __atomic_store_n(&n->state, st, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&ns->lock);
    n->state_since_ms = clock_wall_ms();
    n->state_changes++;
    ns->on_state(ns->ctx, n);
}

void node_result(struct nodes *ns, struct pool_node *n, bool ok, bool draining, const char *reason)
{
    if (n->removed)
        return;
    if (draining && n->state == NODE_UP) {
        /* An explicit "not ready" (CockroachDB drain) is not a lost packet: act at once. */
        n->health.up = false;
        n->health.ok_run = 0;
        n->health.fail_run = n->health.fall;
        node_set_state(ns, n, NODE_DRAINING, reason);
        return;
    }
    enum health_change ch = health_feed(&n->health, ok);
    char why[200];
    if (ch == HEALTH_WENT_DOWN) {
        if (n->health.fail_run < n->health.fall)
            snprintf(why, sizeof(why), "%s (first check since start)", reason);
        else
            snprintf(why, sizeof(why), "%s (%u failed in a row)", reason, n->health.fail_run);
        node_set_state(ns, n, draining ? NODE_DRAINING : NODE_DOWN, why);
    } else if (ch == HEALTH_WENT_UP) {
        snprintf(why, sizeof(why), "%s (%u passed in a row)", reason, n->health.ok_run);
        node_set_state(ns, n, NODE_UP, why);
    } else if (!n->health.up && !ok) {
        node_set_state(ns, n, draining ? NODE_DRAINING : NODE_DOWN, reason);
    }
    node_drain_check(ns, n);
}

void node_drain_check(struct nodes *ns, struct pool_node *n)
{
    if (!pool_node_draining(n) || ns->drain_deadline_ms == 0 ||
        __atomic_load_n(&n->active, __ATOMIC_RELAXED) == 0)
        return;
    uint64_t since = n->state == NODE_DRAINING ? n->state_since_ms : UINT64_MAX;
    if (n->admin == NODE_ADMIN_DRAIN && n->admin_since_ms < since)
        since = n->admin_since_ms;
    if (clock_wall_ms() - since >= ns->drain_deadline_ms)
        ns->on_drain_due(ns->ctx, n);
}

void node_set_admin(struct nodes *ns, struct pool_node *n, enum node_admin a, const char *who)
{
    if (n->admin == a)
        return;
    log_emit(a == NODE_ADMIN_READY ? LOG_INFO : LOG_WARN, "node_admin",
             "node=%s from=%s to=%s by=%s health=%s sessions=%u", n->name,
             node_admin_name(n->admin), node_admin_name(a), who, node_state_name(n->state),
             n->active);
    pthread_mutex_lock(&ns->lock);
    __atomic_store_n(&n->admin, a, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&ns->lock);
    n->admin_since_ms = clock_wall_ms();
    ns->on_admin(ns->ctx, n);
}

struct pool_node *node_find(struct nodes *ns, const char *name)
{
    for (size_t i = 0; i < ns->pool.n; i++)
        if (strcmp(ns->pool.nodes[i]->name, name) == 0)
            return ns->pool.nodes[i];
    return NULL;
}

struct pool_node *node_new(const struct nodes *ns, const struct lbd_node_config *nc)
{
    struct pool_node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    snprintf(n->name, sizeof(n->name), "%s", nc->name);
    n->addr = nc->addr;
    n->weight = n->weight_cfg = nc->weight;
    n->max_sessions = nc->max_sessions;
    n->check_port = (uint16_t)nc->check_port;
    n->state = NODE_UP;
    n->state_since_ms = clock_wall_ms();
    health_init(&n->health, ns->rise, ns->fall);
    snprintf(n->last_check, sizeof(n->last_check), "not checked yet");
    n->refs = 1; /* the pool's */
    n->lock = (pthread_mutex_t *)&ns->lock;
    return n;
}

void node_drop(struct nodes *ns, struct pool_node *n)
{
    pthread_mutex_lock(&ns->lock);
    __atomic_store_n(&n->removed, true, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&ns->lock);
    ns->on_dropped(ns->ctx, n);
    node_unref(n);
}

int node_add(struct nodes *ns, const struct lbd_node_config *nc, char *err, size_t errsize)
{
    if (ns->pool.n >= POOL_MAX_NODES) {
        snprintf(err, errsize, "the pool has %d nodes, the most it takes", POOL_MAX_NODES);
        return -ENOSPC;
    }
    for (size_t i = 0; i < ns->pool.n; i++) {
        const struct pool_node *o = ns->pool.nodes[i];
        if (strcmp(o->name, nc->name) == 0 ||
            sockaddr_equal((const struct sockaddr *)&o->addr, (const struct sockaddr *)&nc->addr)) {
            snprintf(err, errsize, "node \"%s\" already has that %s", o->name,
                     strcmp(o->name, nc->name) == 0 ? "name" : "address");
            return -EEXIST;
        }
    }
    struct pool_node *n = node_new(ns, nc);
    if (n == NULL) {
        snprintf(err, errsize, "out of memory");
        return -ENOMEM;
    }
    n->runtime = true;
    /* Not chosen before its first check says it is up (a node that was never seen is
     * not assumed healthy, unlike the file's nodes at start, which must serve at once). */
    if (ns->checked) {
        n->state = NODE_DOWN;
        n->health.up = false;
        n->health.ok_run = n->health.rise - 1; /* (its first good check brings it up) */
        snprintf(n->last_check, sizeof(n->last_check), "added; waiting for its first check");
    }
    pthread_mutex_lock(&ns->lock);
    ns->pool.nodes[ns->pool.n] = n;
    ns->pool.n++;
    pthread_mutex_unlock(&ns->lock);
    ns->on_added(ns->ctx, n);
    return 0;
}

int node_remove(struct nodes *ns, struct pool_node *n, char *err, size_t errsize)
{
    pthread_mutex_lock(&ns->lock);
    if (n->admin == NODE_ADMIN_READY || n->active > 0) {
        pthread_mutex_unlock(&ns->lock);
        snprintf(err, errsize,
                 "node \"%s\" %s: drain or disable it first and wait for its sessions to end "
                 "(or kill them)",
                 n->name, n->admin == NODE_ADMIN_READY ? "takes new sessions" : "has sessions");
        return -EBUSY;
    }
    size_t j = 0;
    for (size_t i = 0; i < ns->pool.n; i++)
        if (ns->pool.nodes[i] != n)
            ns->pool.nodes[j++] = ns->pool.nodes[i];
    ns->pool.n = j;
    pthread_mutex_unlock(&ns->lock);
    node_drop(ns, n);
    return 0;
}
