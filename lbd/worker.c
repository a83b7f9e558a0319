/* worker.c -- lbd's event loops and the messages between them (see worker.h). */
#include "worker.h"

#include "clock.h"
#include "log.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static void run_queue(uv_async_t *a)
{
    struct lbd_worker *w = a->data;
    pthread_mutex_lock(&w->qlock);
    struct worker_msg *m = w->q_head;
    w->q_head = w->q_tail = NULL;
    pthread_mutex_unlock(&w->qlock);
    while (m) {
        struct worker_msg *next = m->next;
        m->fn(w, m->arg);
        if (m->wait) {
            pthread_mutex_lock(&w->qlock);
            m->done = true;
            pthread_cond_broadcast(&w->qdone);
            pthread_mutex_unlock(&w->qlock);
        } else if (!m->kept) {
            free(m);
        }
        m = next;
    }
}

/* Queue m; false when w's loop has ended (the caller runs it). */
static bool enqueue(struct lbd_worker *w, struct worker_msg *m)
{
    pthread_mutex_lock(&w->qlock);
    if (w->stopped) {
        pthread_mutex_unlock(&w->qlock);
        return false;
    }
    m->next = NULL;
    if (w->q_tail)
        w->q_tail->next = m;
    else
        w->q_head = m;
    w->q_tail = m;
    uv_async_send(&w->wake);
    pthread_mutex_unlock(&w->qlock);
    return true;
}

void worker_run(struct lbd_worker *w, worker_fn fn, void *arg)
{
    if (!w->threaded) {
        fn(w, arg);
        return;
    }
    struct worker_msg m = {.fn = fn, .arg = arg, .wait = true};
    if (!enqueue(w, &m)) {
        fn(w, arg); /* (its loop has ended: nothing else runs on it) */
        return;
    }
    pthread_mutex_lock(&w->qlock);
    while (!m.done)
        pthread_cond_wait(&w->qdone, &w->qlock);
    pthread_mutex_unlock(&w->qlock);
}

void workers_run(struct lbd *l, worker_fn fn, void *arg)
{
    for (unsigned i = 0; i < l->n_workers; i++)
        worker_run(&l->workers[i], fn, arg);
}

bool worker_post(struct lbd_worker *w, worker_fn fn, void *arg)
{
    struct worker_msg *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return false;
    m->fn = fn;
    m->arg = arg;
    if (!enqueue(w, m)) {
        free(m);
        return false;
    }
    return true;
}

void worker_tell_main(struct lbd_worker *w, worker_fn fn, void *arg)
{
    struct lbd_worker *w0 = &w->lbd->workers[0];
    if (w == w0)
        fn(w0, arg);
    else
        (void)worker_post(w0, fn, arg);
}

void worker_post_msg(struct lbd_worker *w, struct worker_msg *m)
{
    m->wait = m->done = false;
    m->kept = true;
    (void)enqueue(w, m); /* (false: w has ended, at exit; m is not run) */
}

struct lbd_worker *workers_pick(struct lbd *l)
{
    /* The fewest sessions; among equals the first: at a light load one loop serves all,
     * and a client finds the connection the one before it parked (reuse is per worker);
     * a burst spreads at once, as each session counts from the moment it is handed. */
    unsigned best = 0;
    uint32_t best_load = UINT32_MAX;
    for (unsigned i = 0; i < l->n_workers; i++) {
        uint32_t load = RELAXED(l->workers[i].load);
        if (load < best_load) {
            best_load = load;
            best = i;
        }
    }
    __atomic_add_fetch(&l->workers[best].load, 1, __ATOMIC_RELAXED);
    return &l->workers[best];
}

void *worker_buf_get(struct lbd_worker *w)
{
    if (w->n_buf_free > 0)
        return w->buf_free[--w->n_buf_free];
    return malloc(LBD_BUF_SIZE);
}

void worker_buf_put(struct lbd_worker *w, void *buf)
{
    if (buf == NULL)
        return;
    if (w->n_buf_free < LBD_BUF_CACHE)
        w->buf_free[w->n_buf_free++] = buf;
    else
        free(buf);
}

uint64_t worker_random(struct lbd_worker *w)
{
    /* xorshift64*: enough for spreading load, seeded at start. */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

unsigned workers_wanted(const struct lbd_config *c)
{
    if (c->workers > 0)
        return c->workers;
    /* The environment may say what 0 means (the test suite runs itself with one loop
     * this way; see docs/workers.md). */
    const char *env = getenv("PGVIP_LBD_WORKERS");
    if (env && *env) {
        char *end;
        unsigned long v = strtoul(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= LBD_MAX_WORKERS)
            return (unsigned)v;
    }
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    return n < 1 ? 1 : n > LBD_MAX_WORKERS ? LBD_MAX_WORKERS : (unsigned)n;
}

static void thread_main(void *arg)
{
    struct lbd_worker *w = arg;
    uv_run(w->loop, UV_RUN_DEFAULT);
}

static int worker_init(struct lbd *l, struct lbd_worker *w, unsigned index, uv_loop_t *loop)
{
    static const double connect_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,   0.25,   0.5,   1,    2.5};
    static const double duration_le[] = {0.01, 0.1, 1, 10, 60, 600, 3600, 36000};
    w->lbd = l;
    w->index = index;
    w->cfg = l->cfg;
    w->rng = ((uint64_t)lbd_secret_key() << 32 | lbd_secret_key()) | 1;
    metrics_hist_init(&w->stats.connect_s, connect_le, sizeof(connect_le) / sizeof(double));
    metrics_hist_init(&w->stats.duration_s, duration_le, sizeof(duration_le) / sizeof(double));
    if (loop == NULL) {
        int rc = uv_loop_init(&w->own_loop);
        if (rc != 0)
            return rc;
        loop = &w->own_loop;
        w->own = true;
    }
    pthread_mutex_init(&w->qlock, NULL);
    pthread_cond_init(&w->qdone, NULL);
    w->loop = loop;
    uv_async_init(loop, &w->wake, run_queue);
    w->wake.data = w;
    w->wake_open = true;
    return 0;
}

int workers_start(struct lbd *l, uv_loop_t *loop, unsigned n)
{
    if (n == 0)
        n = 1;
    l->workers = calloc(n + 1, sizeof(*l->workers)); /* (+1: workers_free's end mark) */
    if (l->workers == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        int rc = worker_init(l, &l->workers[i], i, i == 0 ? loop : NULL);
        if (rc != 0) {
            log_emit(LOG_WARN, "worker_failed", "worker=%u error=\"%s\" workers=%u", i,
                     uv_strerror(rc), i);
            break; /* (runs with the workers it has) */
        }
        l->n_workers = i + 1;
    }
    return 0;
}

unsigned workers_launch(struct lbd *l)
{
    unsigned running = 1;
    for (unsigned i = 1; i < l->n_workers; i++) {
        struct lbd_worker *w = &l->workers[i];
        int rc = uv_thread_create(&w->thread, thread_main, w);
        if (rc != 0) {
            log_emit(LOG_WARN, "worker_failed", "worker=%u error=\"%s\"", i, uv_strerror(rc));
            break;
        }
        w->threaded = true;
        running++;
    }
    /* (A worker whose thread could not start takes no connection.) */
    l->n_workers = running;
    return running;
}

static void worker_end(struct lbd_worker *w, void *arg)
{
    (void)arg;
    /* (Its sessions and parked connections are closing already: uv_run returns once
     * their handles are closed.) */
    pthread_mutex_lock(&w->qlock);
    w->stopped = true;
    pthread_mutex_unlock(&w->qlock);
    uv_close((uv_handle_t *)&w->wake, NULL);
    w->wake_open = false;
}

void workers_stop(struct lbd *l)
{
    for (unsigned i = 0; i < l->n_workers; i++) {
        struct lbd_worker *w = &l->workers[i];
        if (w->threaded)
            worker_run(w, worker_end, NULL);
        else if (w->wake_open)
            worker_end(w, NULL); /* (worker 0: messages posted from now on run nowhere) */
    }
}

void workers_free(struct lbd *l)
{
    if (l->workers == NULL)
        return;
    /* (n_workers may have shrunk at launch: every worker set up is freed.) */
    for (unsigned i = 0; l->workers[i].lbd; i++) {
        struct lbd_worker *w = &l->workers[i];
        if (w->threaded) {
            if (w->wake_open)
                worker_run(w, worker_end, NULL);
            uv_thread_join(&w->thread);
        } else if (w->own && w->wake_open) {
            worker_end(w, NULL); /* (never launched) */
        }
        if (w->own) {
            uv_run(&w->own_loop, UV_RUN_DEFAULT); /* (closes what was left; none when launched) */
            uv_loop_close(&w->own_loop);
        }
        /* Messages posted after the end (none should be) are dropped with their arg. */
        for (struct worker_msg *m = w->q_head, *next; m; m = next) {
            next = m->next;
            if (!m->wait && !m->kept)
                free(m);
        }
        for (size_t k = 0; k < w->n_buf_free; k++)
            free(w->buf_free[k]);
        pthread_mutex_destroy(&w->qlock);
        pthread_cond_destroy(&w->qdone);
    }
    free(l->workers);
    l->workers = NULL;
    l->n_workers = 0;
}

void lbd_stats_total(const struct lbd *l, struct lbd_stats *out)
{
    /* The counters are uint64_t but for the two histograms in the middle. */
    _Static_assert(offsetof(struct lbd_stats, connect_s) % sizeof(uint64_t) == 0, "layout");
    _Static_assert(sizeof(struct lbd_stats) % sizeof(uint64_t) == 0, "layout");
    const size_t head = offsetof(struct lbd_stats, connect_s) / sizeof(uint64_t);
    const size_t tail_from = (offsetof(struct lbd_stats, duration_s) + sizeof(struct metrics_hist) +
                              sizeof(uint64_t) - 1) /
                             sizeof(uint64_t);
    const size_t all = sizeof(struct lbd_stats) / sizeof(uint64_t);
    memset(out, 0, sizeof(*out));
    out->connect_s = l->workers[0].stats.connect_s;
    out->duration_s = l->workers[0].stats.duration_s;
    memset(out->connect_s.bucket, 0, sizeof(out->connect_s.bucket));
    memset(out->duration_s.bucket, 0, sizeof(out->duration_s.bucket));
    out->connect_s.count = out->duration_s.count = 0;
    out->connect_s.sum = out->duration_s.sum = 0;
    uint64_t *o = (uint64_t *)out;
    for (unsigned i = 0; i < l->n_workers; i++) {
        const struct lbd_stats *st = &l->workers[i].stats;
        const uint64_t *p = (const uint64_t *)st;
        for (size_t k = 0; k < all; k++)
            if (k < head || k >= tail_from)
                o[k] += RELAXED(p[k]);
        const struct metrics_hist *src[2] = {&st->connect_s, &st->duration_s};
        struct metrics_hist *dst[2] = {&out->connect_s, &out->duration_s};
        for (int h = 0; h < 2; h++) {
            for (size_t b = 0; b <= src[h]->n; b++)
                dst[h]->bucket[b] += RELAXED(src[h]->bucket[b]);
            dst[h]->count += RELAXED(src[h]->count);
            double sum;
            __atomic_load(&src[h]->sum, &sum, __ATOMIC_RELAXED);
            dst[h]->sum += sum;
        }
    }
}
