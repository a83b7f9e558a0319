/* bulk.c -- a bulk transfer relayed through a pipe with splice(2) (see bulk.h). Two
 * polls on duplicates of the sockets (epoll tells a duplicate from the caller's own
 * registration of the same socket), a pipe, and a timer that notices the end. */
#include "bulk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct bulk {
    uv_poll_t in, out; /* in: the sender readable; out: the receiver writable */
    uv_timer_t quiet, tail;
    int in_fd, out_fd, pipe_r, pipe_w;
    size_t piped;     /* bytes in the pipe */
    uint64_t last_ms; /* loop time bytes were last taken from the sender */
    bool eof, stopped, in_watched, out_watched;
    bool lowat;         /* SO_RCVLOWAT is BULK_LOWAT on the sender */
    size_t since_pause; /* bytes moved since the sender last paused (lowat off) */
    uint8_t open_handles;
    bulk_cb cb;
    void *ctx;
    void (*done)(void *ctx);
};

static size_t pump(struct bulk *b);
static void on_closed(uv_handle_t *h);
static void watch(uv_poll_t *p, bool *watched, bool want, int ev);

/* The transfer is over (the sender's EOF, or an error): tell the caller, which stops it. */
static void finish(struct bulk *b, enum bulk_event ev)
{
    b->cb(b->ctx, ev, 0);
    if (!b->stopped) { /* (the caller is expected to stop; do not spin meanwhile) */
        watch(&b->in, &b->in_watched, false, 0);
        watch(&b->out, &b->out_watched, false, 0);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct bulk *b = p->data;
    (void)events;
    if (status < 0) { /* (EBADF and the like: nothing a retry would mend) */
        finish(b, p == &b->in ? BULK_IN_ERROR : BULK_OUT_ERROR);
        return;
    }
    pump(b);
}

/* Watch p for ev, or not. A change costs an epoll_ctl, so only changes are made. */
static void watch(uv_poll_t *p, bool *watched, bool want, int ev)
{
    if (want == *watched)
        return;
    *watched = want;
    if (want)
        uv_poll_start(p, ev, on_poll);
    else
        uv_poll_stop(p);
}

static void on_quiet(uv_timer_t *t)
{
    struct bulk *b = t->data;
    uint64_t idle = uv_now(t->loop) - b->last_ms;
    if (b->piped == 0 && idle >= BULK_QUIET_MS)
        b->cb(b->ctx, BULK_QUIET, 0);
    else
        uv_timer_start(&b->quiet, on_quiet,
                       b->piped || idle >= BULK_QUIET_MS ? BULK_QUIET_MS : BULK_QUIET_MS - idle, 0);
}

static void set_lowat(struct bulk *b, bool on)
{
    int v = on ? BULK_LOWAT : 1;
    if (on != b->lowat && setsockopt(b->in_fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) == 0)
        b->lowat = on;
    b->since_pause = 0;
}

/* BULK_TAIL_MS after bytes last moved with SO_RCVLOWAT set: take what is waiting below
 * the mark; when nothing is, the sender paused, and any byte wakes lbd again. */
static void on_tail(uv_timer_t *t)
{
    struct bulk *b = t->data;
    if (pump(b) == 0 && !b->stopped)
        set_lowat(b, false);
}

/* Take what is waiting from the sender into the pipe, and send what the pipe holds. Once
 * each: looping until the sender has nothing would race it for each segment it writes
 * (8-24 KiB a system call); epoll says when SO_RCVLOWAT's worth is waiting. Then watch
 * the sender when the pipe is empty (so an EAGAIN from it meant no data, not a full
 * pipe, whose room counts in page slots, not bytes), the receiver when it is not.
 * Returns the bytes taken from the sender. */
static size_t pump(struct bulk *b)
{
    size_t moved = 0;
    if (!b->eof) {
        ssize_t n =
            splice(b->in_fd, NULL, b->pipe_w, NULL, BULK_PIPE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            b->piped += (size_t)n;
            moved = (size_t)n;
        } else if (n == 0) {
            b->eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
            finish(b, BULK_IN_ERROR);
            return 0;
        }
    }
    if (b->piped > 0) {
        ssize_t n =
            splice(b->pipe_r, NULL, b->out_fd, NULL, b->piped, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
            b->piped -= (size_t)n;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            finish(b, BULK_OUT_ERROR);
            return moved;
        }
    }
    if (moved) {
        b->last_ms = uv_now(b->in.loop);
        b->cb(b->ctx, BULK_MOVED, moved);
        if (b->stopped)
            return moved;
        b->since_pause += moved;
        if (!b->lowat && b->since_pause >= BULK_LOWAT) /* (flowing again after a pause) */
            set_lowat(b, true);
        if (b->lowat)
            uv_timer_start(&b->tail, on_tail, BULK_TAIL_MS, 0);
    }
    if (b->eof && b->piped == 0) {
        finish(b, BULK_EOF);
        return moved;
    }
    watch(&b->in, &b->in_watched, !b->eof && b->piped == 0, UV_READABLE);
    watch(&b->out, &b->out_watched, b->piped > 0, UV_WRITABLE);
    if (b->piped == 0 && !uv_is_active((uv_handle_t *)&b->quiet))
        uv_timer_start(&b->quiet, on_quiet, BULK_QUIET_MS, 0);
    return moved;
}

static void close_fds(struct bulk *b)
{
    int *fds[] = {&b->in_fd, &b->out_fd, &b->pipe_r, &b->pipe_w};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
}

struct bulk *bulk_start(uv_loop_t *loop, int in_fd, int out_fd, bulk_cb cb, void *ctx)
{
    struct bulk *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->in_fd = b->out_fd = b->pipe_r = b->pipe_w = -1;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        goto fail;
    b->pipe_r = p[0];
    b->pipe_w = p[1];
    (void)fcntl(b->pipe_w, F_SETPIPE_SZ, BULK_PIPE);
    b->in_fd = fcntl(in_fd, F_DUPFD_CLOEXEC, 0);
    b->out_fd = fcntl(out_fd, F_DUPFD_CLOEXEC, 0);
    if (b->in_fd < 0 || b->out_fd < 0)
        goto fail;
    if (uv_poll_init(loop, &b->in, b->in_fd) != 0)
        goto fail;
    if (uv_poll_init(loop, &b->out, b->out_fd) != 0) {
        /* in is a handle now: on_closed frees it all once libuv is done with it. */
        b->in.data = b;
        b->open_handles = 1;
        uv_close((uv_handle_t *)&b->in, on_closed);
        errno = ENOMEM;
        return NULL;
    }
    uv_timer_init(loop, &b->quiet);
    uv_timer_init(loop, &b->tail);
    b->in.data = b->out.data = b->quiet.data = b->tail.data = b;
    b->cb = cb;
    b->ctx = ctx;
    b->last_ms = uv_now(loop);
    /* The caller's last read was full: more is waiting, or coming. */
    set_lowat(b, true);
    uv_timer_start(&b->tail, on_tail, BULK_TAIL_MS, 0);
    watch(&b->in, &b->in_watched, true, UV_READABLE);
    return b;
fail : {
    int e = errno;
    close_fds(b);
    free(b);
    errno = e;
    return NULL;
}
}

static void on_closed(uv_handle_t *h)
{
    struct bulk *b = h->data;
    if (--b->open_handles > 0)
        return;
    close_fds(b);
    if (b->done)
        b->done(b->ctx);
    free(b);
}

void bulk_stop(struct bulk *b, void (*done)(void *ctx))
{
    b->stopped = true;
    b->done = done;
    set_lowat(b, false); /* (the socket is the caller's again) */
    b->open_handles = 4;
    uv_close((uv_handle_t *)&b->in, on_closed);
    uv_close((uv_handle_t *)&b->out, on_closed);
    uv_close((uv_handle_t *)&b->quiet, on_closed);
    uv_close((uv_handle_t *)&b->tail, on_closed);
}
