/* pool.c -- balancing choice over the node pool (see pool.h). */
#include "pool.h"

const char *const pool_balance_names[] = {"roundrobin", "leastconn", "p2c", NULL};

const char *node_state_name(enum node_state s)
{
    switch (s) {
    case NODE_UP:
        return "up";
    case NODE_DOWN:
        return "down";
    case NODE_DRAINING:
        return "draining";
    }
    return "?";
}

const char *node_admin_name(enum node_admin a)
{
    switch (a) {
    case NODE_ADMIN_READY:
        return "ready";
    case NODE_ADMIN_DRAIN:
        return "drain";
    case NODE_ADMIN_DISABLED:
        return "disabled";
    }
    return "?";
}

bool pool_node_eligible(const struct pool_node *n)
{
    return n->state == NODE_UP && n->admin == NODE_ADMIN_READY && !n->removed && n->weight > 0 &&
           (n->max_sessions == 0 || n->active < n->max_sessions);
}

size_t pool_count_eligible(const struct pool *p)
{
    size_t c = 0;
    for (size_t i = 0; i < p->n; i++)
        c += pool_node_eligible(p->nodes[i]);
    return c;
}

static bool usable(const struct pool *p, size_t i, uint64_t tried)
{
    return !(tried & (1ULL << i)) && pool_node_eligible(p->nodes[i]);
}

/* nginx's smooth weighted round robin: even spread, weights honoured. */
static int pick_roundrobin(struct pool *p, uint64_t tried)
{
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (!usable(p, i, tried))
            continue;
        struct pool_node *n = p->nodes[i];
        n->rr_current += n->weight;
        total += n->weight;
        if (best < 0 || n->rr_current > p->nodes[best]->rr_current)
            best = (int)i;
    }
    if (best >= 0)
        p->nodes[best]->rr_current -= total;
    return best;
}

/* a has less load than b, per unit of weight. */
static bool lighter(const struct pool_node *a, const struct pool_node *b)
{
    return (uint64_t)a->active * b->weight < (uint64_t)b->active * a->weight;
}

/* Least sessions per weight; ties broken starting from a random offset. */
static int pick_leastconn(struct pool *p, uint64_t tried, uint64_t rnd)
{
    int best = -1;
    size_t start = p->n ? (size_t)(rnd % p->n) : 0;
    for (size_t k = 0; k < p->n; k++) {
        size_t i = (start + k) % p->n;
        if (!usable(p, i, tried))
            continue;
        if (best < 0 || lighter(p->nodes[i], p->nodes[best]))
            best = (int)i;
    }
    return best;
}

static int pick_weighted_random(struct pool *p, uint64_t tried, uint64_t r, int skip)
{
    uint64_t total = 0;
    for (size_t i = 0; i < p->n; i++)
        if ((int)i != skip && usable(p, i, tried))
            total += p->nodes[i]->weight;
    if (total == 0)
        return -1;
    uint64_t x = r % total;
    for (size_t i = 0; i < p->n; i++) {
        if ((int)i == skip || !usable(p, i, tried))
            continue;
        if (x < p->nodes[i]->weight)
            return (int)i;
        x -= p->nodes[i]->weight;
    }
    return -1;
}

/* Power of two choices: two weighted random candidates, the lighter one wins. Near
 * leastconn's balance without herding every new session onto one node at once. */
static int pick_p2c(struct pool *p, uint64_t tried, uint64_t rnd)
{
    int a = pick_weighted_random(p, tried, rnd & 0xffffffffu, -1);
    if (a < 0)
        return -1;
    int b = pick_weighted_random(p, tried, rnd >> 32, a);
    if (b < 0)
        return a;
    return lighter(p->nodes[b], p->nodes[a]) ? b : a;
}

int pool_pick(struct pool *p, uint64_t tried, uint64_t rnd)
{
    switch (p->balance) {
    case POOL_LEASTCONN:
        return pick_leastconn(p, tried, rnd);
    case POOL_P2C:
        return pick_p2c(p, tried, rnd);
    case POOL_ROUNDROBIN:
    default:
        return pick_roundrobin(p, tried);
    }
}
