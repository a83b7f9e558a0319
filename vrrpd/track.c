/* track.c -- the lbd liveness channel, vrrpd's side (see track.h). */
#include "track.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void schedule(struct track *t, uint64_t ms);
static void set_ok(struct track *t, bool ok, const char *why)
{
    if (t->ok == ok)
        return;
    t->ok = ok;
    t->cb(t->arg, ok, why);
}

static void on_pipe_closed(uv_handle_t *h)
{
    struct track *t = h->data;
    t->pipe_open = false;
    t->handles--;
    if (!t->closing)
        schedule(t, t->interval_ms); /* reconnect */
}

static void drop(struct track *t, const char *why)
{
    t->connected = false;
    t->draining = false;
    set_ok(t, false, why);
    if (t->pipe_open && !uv_is_closing((uv_handle_t *)&t->pipe))
        uv_close((uv_handle_t *)&t->pipe, on_pipe_closed);
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *buf)
{
    struct track *t = h->data;
    *buf = uv_buf_init(t->rbuf + t->rlen, (unsigned)(sizeof(t->rbuf) - t->rlen - 1));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct track *t = s->data;
    if (nread < 0) {
        drop(t, "tracked lbd closed its channel");
        return;
    }
    t->late_read = false;
    t->rlen += (size_t)nread;
    t->rbuf[t->rlen] = '\0';
    char *nl;
    while ((nl = strchr(t->rbuf, '\n')) != NULL) {
        *nl = '\0';
        if (strncmp(t->rbuf, "quiet ", 6) == 0) {
            if (t->on_line)
                t->on_line(t->arg, t->rbuf);
            size_t used = (size_t)(nl - t->rbuf) + 1;
            memmove(t->rbuf, t->rbuf + used, t->rlen - used + 1);
            t->rlen -= used;
            continue;
        }
        snprintf(t->last_answer, sizeof(t->last_answer), "%s", t->rbuf);
        t->last_answer_ms = uv_now(t->loop);
        t->ping_out_ms = 0;
        bool draining = strstr(t->rbuf, "draining=1") != NULL;
        t->draining = draining;
        if (draining)
            set_ok(t, false, "tracked lbd is draining (shutting down)");
        else
            set_ok(t, true, "tracked lbd answers");
        size_t used = (size_t)(nl - t->rbuf) + 1;
        memmove(t->rbuf, t->rbuf + used, t->rlen - used + 1);
        t->rlen -= used;
    }
    if (t->rlen >= sizeof(t->rbuf) - 1)
        t->rlen = 0;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct track *t = req->data;
    if (t->closing)
        return;
    if (status < 0) {
        drop(t, "tracked lbd is not listening");
        return;
    }
    t->connected = true;
    t->connected_ms = uv_now(t->loop);
    t->last_answer_ms = 0;
    t->ping_out_ms = 0;
    t->rlen = 0;
    uv_read_start((uv_stream_t *)&t->pipe, on_alloc, on_read);
    schedule(t, 0);
}

static void on_written(uv_write_t *req, int status)
{
}

static void on_timer(uv_timer_t *h)
{
    struct track *t = h->data;
    uint64_t now = uv_now(t->loop);
    if (t->closing)
        return;
    if (!t->connected) {
        if (t->pipe_open)
            return; /* a connect or close is under way */
        uv_pipe_init(t->loop, &t->pipe, 0);
        t->pipe.data = t;
        t->pipe_open = true;
        t->handles++;
        t->creq.data = t;
        uv_pipe_connect(&t->creq, &t->pipe, t->path, on_connect);
        return;
    }
    if (t->ping_out_ms && now - t->ping_out_ms > t->timeout_ms) {
        /* libuv runs timers before it reads sockets: after a stall of vrrpd itself (CPU
         * starvation, SIGSTOP) lbd's answer may be waiting unread. Read it first: once,
         * 1 ms on (libuv 1.44 runs a 0 ms timer started in a timer's callback again in
         * the same pass, before any read, so a 0 here spun for ever and hung vrrpd). */
        int fd;
        char c;
        if (!t->late_read && uv_fileno((uv_handle_t *)&t->pipe, &fd) == 0 &&
            recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
            t->late_read = true;
            schedule(t, 1);
            return;
        }
        char why[96];
        snprintf(why, sizeof(why), "tracked lbd did not answer for %llu ms",
                 (unsigned long long)(now - t->ping_out_ms));
        drop(t, why);
        return;
    }
    static const char ping[] = "ping\n";
    uv_buf_t b = uv_buf_init((char *)ping, sizeof(ping) - 1);
    if (uv_try_write((uv_stream_t *)&t->pipe, &b, 1) < 0 &&
        uv_stream_get_write_queue_size((uv_stream_t *)&t->pipe) == 0)
        uv_write(&t->wreq, (uv_stream_t *)&t->pipe, &b, 1, on_written);
    if (t->ping_out_ms == 0)
        t->ping_out_ms = now; /* the oldest unanswered ping: what a timeout counts from */
    schedule(t, t->interval_ms);
}

int track_send(struct track *t, const char *line)
{
    if (!t->connected || t->closing)
        return -1;
    uv_buf_t b = uv_buf_init((char *)line, (unsigned)strlen(line));
    return uv_try_write((uv_stream_t *)&t->pipe, &b, 1) == (int)b.len ? 0 : -1;
}

static void schedule(struct track *t, uint64_t ms)
{
    if (!t->closing)
        uv_timer_start(&t->timer, on_timer, ms, 0);
}

int track_start(struct track *t, uv_loop_t *loop, const char *path, uint64_t interval_ms,
                uint64_t timeout_ms, track_cb cb, void *arg)
{
    memset(t, 0, sizeof(*t));
    t->loop = loop;
    snprintf(t->path, sizeof(t->path), "%s", path);
    t->interval_ms = interval_ms;
    t->timeout_ms = timeout_ms;
    t->cb = cb;
    t->arg = arg;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    t->handles = 1;
    schedule(t, 0);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct track *t = h->data;
    t->handles--;
}

void track_stop(struct track *t)
{
    if (t->closing || t->loop == NULL)
        return;
    t->closing = true;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
    if (t->pipe_open && !uv_is_closing((uv_handle_t *)&t->pipe))
        uv_close((uv_handle_t *)&t->pipe, on_pipe_closed);
}
