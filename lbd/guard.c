/* guard.c -- the front door's bounds (see guard.h). Pure code. */
#include "guard.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

const char *const guard_verdict_names[] = {"ok",   "duplicate", "source_rate",
                                           "rate", "inflight",  "source_busy"};

bool guard_bucket_take(struct guard_bucket *b, double rate, double burst, uint64_t now_ms)
{
    if (rate <= 0)
        return true;
    if (burst < 1)
        burst = 1;
    if (!b->primed) {
        b->tokens = burst;
        b->t_ms = now_ms;
        b->primed = true;
    } else if (now_ms > b->t_ms) {
        b->tokens += (double)(now_ms - b->t_ms) * rate / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
        b->t_ms = now_ms;
    }
    if (b->tokens < 1)
        return false;
    b->tokens -= 1;
    return true;
}

int guard_init(struct guard *g, const struct guard_limits *lim)
{
    memset(g, 0, sizeof(*g));
    g->lim = *lim;
    g->sources = calloc(GUARD_SOURCES, sizeof(*g->sources));
    g->seen = calloc(GUARD_SEEN, sizeof(*g->seen));
    if (g->sources == NULL || g->seen == NULL) {
        guard_free(g);
        return -ENOMEM;
    }
    return 0;
}

void guard_free(struct guard *g)
{
    free(g->sources);
    free(g->seen);
    g->sources = NULL;
    g->seen = NULL;
}

void guard_source_key(const void *sockaddr, uint8_t out[16])
{
    const struct sockaddr_in *a4 = sockaddr;
    const struct sockaddr_in6 *a6 = sockaddr;
    memset(out, 0, 16);
    if (a4->sin_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a4->sin_addr, 4);
    } else if (a6->sin6_family == AF_INET6) {
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
            memcpy(out, &a6->sin6_addr, 16);
        else
            memcpy(out, &a6->sin6_addr, 8); /* one /64 is one source: a host has them all */
    }
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

/* The entry of src, made if need be; NULL when every slot it may use holds a source
 * with connections in their startup (they cannot be forgotten). */
static struct guard_source *source_get(struct guard *g, const uint8_t *src, uint64_t now_ms)
{
    size_t base = (size_t)hash_bytes(src, 16);
    struct guard_source *victim = NULL;
    for (size_t i = 0; i < GUARD_PROBE; i++) {
        struct guard_source *e = &g->sources[(base + i) & (GUARD_SOURCES - 1)];
        if (e->used && memcmp(e->ip, src, 16) == 0) {
            e->used_ms = now_ms;
            return e;
        }
        if (!e->used) {
            if (victim == NULL || victim->used)
                victim = e;
        } else if (e->startup == 0 &&
                   (victim == NULL || (victim->used && e->used_ms < victim->used_ms))) {
            victim = e;
        }
    }
    if (victim == NULL)
        return NULL;
    if (victim->used)
        g->evictions++;
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->ip, src, 16);
    victim->used = true;
    victim->used_ms = now_ms;
    return victim;
}

static struct guard_source *source_find(struct guard *g, const uint8_t *src)
{
    size_t base = (size_t)hash_bytes(src, 16);
    for (size_t i = 0; i < GUARD_PROBE; i++) {
        struct guard_source *e = &g->sources[(base + i) & (GUARD_SOURCES - 1)];
        if (e->used && memcmp(e->ip, src, 16) == 0)
            return e;
    }
    return NULL;
}

static enum guard_verdict verdict(struct guard *g, enum guard_verdict v)
{
    g->verdicts[v]++;
    return v;
}

enum guard_verdict guard_cancel_admit(struct guard *g, const uint8_t *src, uint32_t pid,
                                      uint32_t key, uint32_t forwards, uint64_t now_ms)
{
    const struct guard_limits *lim = &g->lim;
    /* The window's slot for (pid, key): looked at now, written once admitted (a dropped
     * cancel may come again). */
    uint8_t k[8];
    memcpy(k, &pid, 4);
    memcpy(k + 4, &key, 4);
    struct guard_seen *seen = &g->seen[hash_bytes(k, 8) & (GUARD_SEEN - 1)];
    if (lim->cancel_window_ms && seen->t_ms && seen->pid == pid && seen->key == key &&
        now_ms - seen->t_ms < lim->cancel_window_ms)
        return verdict(g, GUARD_DUPLICATE);
    if (src && lim->cancel_source_rate > 0) {
        struct guard_source *e = source_get(g, src, now_ms);
        if (e && !guard_bucket_take(&e->cancels, lim->cancel_source_rate,
                                    2 * lim->cancel_source_rate, now_ms))
            return verdict(g, GUARD_SOURCE_RATE);
    }
    if (!guard_bucket_take(&g->cancels, lim->cancel_rate, lim->cancel_rate, now_ms))
        return verdict(g, GUARD_RATE);
    if (lim->cancel_inflight && g->inflight + forwards > lim->cancel_inflight)
        return verdict(g, GUARD_INFLIGHT);
    if (lim->cancel_window_ms) {
        seen->pid = pid;
        seen->key = key;
        seen->t_ms = now_ms ? now_ms : 1;
    }
    g->inflight += forwards;
    return verdict(g, GUARD_OK);
}

void guard_cancel_done(struct guard *g)
{
    if (g->inflight > 0)
        g->inflight--;
}

enum guard_verdict guard_source_startup_begin(struct guard *g, const uint8_t *src, uint64_t now_ms,
                                              bool *counted)
{
    *counted = false;
    if (g->lim.startup_per_source == 0)
        return GUARD_OK;
    struct guard_source *e = source_get(g, src, now_ms);
    if (e == NULL)
        return GUARD_OK; /* maxconn still bounds it */
    if (e->startup >= g->lim.startup_per_source)
        return verdict(g, GUARD_SOURCE_BUSY);
    e->startup++;
    *counted = true;
    return GUARD_OK;
}

void guard_source_startup_end(struct guard *g, const uint8_t *src)
{
    struct guard_source *e = source_find(g, src);
    if (e && e->startup > 0)
        e->startup--;
}
