/* relay_copy.c -- the copying relay (relay.h): a read of d's sender is written on to its
 * receiver at once when the receiver's socket takes it all (the usual case: one read,
 * one write, no buffer held); otherwise lbd keeps that one buffer, stops reading the
 * sender and reads on once it is written. Memory per direction stays at one 32 KiB
 * buffer, held only while the receiver is slower than the sender (back-pressure).
 */
#include "session_int.h"

static int copy_start(struct session *s, int d);

static void on_copy_written(uv_write_t *req, int status)
{
    struct session *s = req->handle->data;
    int d = req == &s->relay[C2S].copy.wreq ? C2S : S2C;
    worker_buf_put(s->w, s->relay[d].copy.inflight);
    s->relay[d].copy.inflight = NULL;
    if (s->state != SS_RELAY)
        return;
    if (status < 0) {
        session_relay_failed(s, d, false, false);
        return;
    }
    if (session_relay_at_rest(s, d))
        (void)copy_start(s, d);
}

static void copy_data_arrived(struct session *s, int d, ssize_t nread, const uv_buf_t *buf)
{
    if (nread <= 0) {
        session_buf_release(s, buf);
        if (nread < 0)
            session_relay_failed(s, d, nread == UV_EOF, true);
        return;
    }
    if (!session_relay_observe(s, d, (const uint8_t *)buf->base, (size_t)nread)) {
        session_buf_release(s, buf);
        return;
    }
    session_relay_moved(s, d, (uint64_t)nread);
    if (s->relay[d].run < BULK_AFTER)
        s->relay[d].run += (uint32_t)nread;
    s->relay[!d].run = 0;
    uv_stream_t *sender = (uv_stream_t *)session_sender(s, d);
    uv_stream_t *to = (uv_stream_t *)session_sender(s, !d);
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
    int w = uv_try_write(to, &b, 1);
    if (w == nread) {
        session_buf_release(s, buf);
        (void)session_relay_at_rest(s, d); /* (reading on, unless it says otherwise) */
        return;
    }
    if (w < 0 && w != UV_EAGAIN) {
        session_buf_release(s, buf);
        session_relay_failed(s, d, false, false);
        return;
    }
    if (w > 0) {
        b.base += w;
        b.len -= (size_t)w;
    }
    /* The receiver is slower than the sender: hold this one buffer and stop reading the
     * sender until it is written. */
    s->relay[d].copy.inflight = buf->base;
    uv_read_stop(sender);
    if (uv_write(&s->relay[d].copy.wreq, to, &b, 1, on_copy_written) != 0)
        session_relay_failed(s, d, false, false);
}

/* Read d's sender (what was parked first). */
static int copy_start(struct session *s, int d)
{
    if (d == C2S)
        session_read_client(s);
    else
        session_read_server(s);
    return 0;
}

static void copy_stop(struct session *s, int d)
{
    uv_read_stop((uv_stream_t *)session_sender(s, d));
}

static bool copy_at_rest(const struct session *s, int d)
{
    const uv_tcp_t *to = d == C2S ? &s->server : &s->client;
    return s->relay[d].copy.inflight == NULL && to->write_queue_size == 0;
}

const struct relay_ops relay_copy = {
    .name = "copy",
    .sees_bytes = true,
    .start = copy_start,
    .data_arrived = copy_data_arrived,
    .stop = copy_stop,
    .at_rest = copy_at_rest,
};
