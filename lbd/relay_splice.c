/* relay_splice.c -- the splicing relay (relay.h): a direction carrying a bulk transfer (a
 * COPY, a big result) moves from one socket's receive queue to the other's send queue
 * with splice(2) through a pipe (bulk.h), without being copied into lbd and back. The
 * pipe is the direction's only buffer, so a slow receiver holds the sender back as with
 * relay_copy. The bytes pass unseen: session.c stops framing that direction. bulk.c
 * reports each move, the end of the transfer (quiet for BULK_QUIET_MS) and failures.
 */
#include "session_int.h"

#include "bulk.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

/* bulk.c's context for direction d of s: the session's address with d in its low bit. */
static void *splice_tag(struct session *s, int d)
{
    return (void *)((uintptr_t)s | (uintptr_t)d);
}

static struct session *splice_untag(void *ctx, int *d)
{
    *d = (int)((uintptr_t)ctx & 1);
    return (struct session *)((uintptr_t)ctx & ~(uintptr_t)1);
}

/* Take a socket lbd no longer reads out of libuv's epoll set. uv_read_stop leaves it
 * there until an event for it comes back, and each segment the sender writes would wake
 * lbd for nothing (bulk.c polls its own duplicate of the descriptor). libuv counts the
 * socket as unwatched already (the caller makes sure: no read, no write waiting on it)
 * and adds it again when lbd reads or writes it. */
static void unwatch(struct session *s, uv_tcp_t *t)
{
    int fd = session_fd(t);
    struct epoll_event ev = {0};
    if (fd >= 0)
        (void)epoll_ctl(uv_backend_fd(s->w->loop), EPOLL_CTL_DEL, fd, &ev);
}

static void on_bulk(void *ctx, enum bulk_event ev, size_t n)
{
    int d;
    struct session *s = splice_untag(ctx, &d);
    switch (ev) {
    case BULK_MOVED:
        session_relay_moved(s, d, n);
        STAT_ADD(s->w->stats.bulk_bytes, n);
        break;
    case BULK_QUIET:
        session_relay_quiet(s, d);
        break;
    case BULK_EOF:
        session_relay_failed(s, d, true, true);
        break;
    case BULK_IN_ERROR:
        session_relay_failed(s, d, false, true);
        break;
    case BULK_OUT_ERROR:
        session_relay_failed(s, d, false, false);
        break;
    }
}

static void on_bulk_closed(void *ctx)
{
    int d;
    struct session *s = splice_untag(ctx, &d);
    if (--s->handles_open == 0)
        session_free(s);
}

/* Needs 4 descriptors (the two duplicates and the pipe): refused when lbd is short of
 * them (copying needs none: they are kept for new sessions) or the kernel refuses. */
static int splice_start(struct session *s, int d)
{
    struct lbd *l = s->lbd;
    struct lbd_worker *w = s->w;
    uv_tcp_t *from = session_sender(s, d), *to = session_sender(s, !d);
    int in = session_fd(from), out = session_fd(to);
    if (in < 0 || out < 0)
        return -EBADF;
    if (!lbd_fd_room(l, 4)) {
        STAT_INC(w->stats.bulk_failed);
        return -EMFILE;
    }
    struct bulk *b = bulk_start(w->loop, in, out, on_bulk, splice_tag(s, d));
    if (b == NULL) {
        int err = errno;
        STAT_INC(w->stats.bulk_failed);
        if (w->stats.bulk_failed == 1)
            log_emit(LOG_WARN, "splice_refused",
                     "client=%s detail=\"%s; relayed by copying (counted in "
                     "lbd_splice_refused_total)\"",
                     s->client_addr, strerror(err));
        return -err;
    }
    s->relay[d].splice.bulk = b;
    s->handles_open++;
    __atomic_add_fetch(&l->n_bulk, 1, __ATOMIC_RELAXED);
    STAT_INC(w->stats.bulk_started);
    uv_read_stop((uv_stream_t *)from);
    if (!s->relay[!d].copy.inflight && !from->write_queue_size)
        unwatch(s, from);
    return 0;
}

static void splice_stop(struct session *s, int d)
{
    struct bulk *b = s->relay[d].splice.bulk;
    if (b == NULL)
        return;
    bulk_stop(b, on_bulk_closed);
    s->relay[d].splice.bulk = NULL;
    __atomic_sub_fetch(&s->lbd->n_bulk, 1, __ATOMIC_RELAXED);
}

static bool splice_at_rest(const struct session *s, int d)
{
    (void)s;
    (void)d;
    return false; /* (the pipe may hold bytes; the direction is busy until it is quiet) */
}

const struct relay_ops relay_splice = {
    .name = "splice",
    .sees_bytes = false,
    .start = splice_start,
    .data_arrived = NULL,
    .stop = splice_stop,
    .at_rest = splice_at_rest,
};
