/* session_kernel.c -- an established session's bytes moved without lbd copying them:
 * the kernel relay (krelay.h: the handoff, the byte counts and idle times from TCP_INFO,
 * the flush before a close, the fallback to lbd when a receiver falls behind) and bulk
 * splicing (bulk.h). session.c relays in user space and calls in here.
 */
#include "session_int.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

/* ---- the kernel relay (krelay.h) ---- */

int session_fd(uv_tcp_t *t)
{
    uv_os_fd_t fd;
    return uv_fileno((uv_handle_t *)t, &fd) == 0 ? fd : -1;
}

static bool totals(struct session *s, int dir, struct krelay_totals *t);

/* The socket direction d's data arrives on: the client for C2S, the node for S2C. */
uv_tcp_t *session_sender(struct session *s, int d)
{
    return d == C2S ? &s->client : &s->server;
}

/* The socket that receives direction d is the one d's data is read from for the other
 * direction: the server for C2S, the client for S2C. */
static bool receiver_totals(struct session *s, int d, struct krelay_totals *t)
{
    return totals(s, d == C2S ? S2C : C2S, t);
}

void session_relay_resume(struct session *s)
{
    uv_read_start((uv_stream_t *)&s->client, session_on_alloc, session_relay_read);
    uv_read_start((uv_stream_t *)&s->server, session_on_alloc, session_relay_read);
}

/* Take a socket lbd no longer reads out of libuv's epoll set. uv_read_stop leaves it
 * there until an event for it comes back, and with the kernel relay none ever does: the
 * relay's data_ready still wakes the waiters of each socket a segment arrives on, and
 * epoll, finding nothing readable, sleeps again. lbd woke 0.3-0.8 times per transaction
 * for nothing that way. libuv counts the socket as unwatched already (the caller makes
 * sure: no read, no write waiting on it) and adds it again when lbd reads or writes it. */
void session_unwatch(struct session *s, uv_tcp_t *t)
{
    int fd = session_fd(t);
    struct epoll_event ev = {0};
    if (fd >= 0)
        (void)epoll_ctl(uv_backend_fd(s->lbd->loop), EPOLL_CTL_DEL, fd, &ev);
}

uint64_t session_tag(struct session *s, int dir)
{
    return (uint64_t)(uintptr_t)s | (uint64_t)dir;
}

struct session *session_from_tag(uint64_t tag, int *dir)
{
    *dir = (int)(tag & 1);
    return (struct session *)(uintptr_t)(tag & ~(uint64_t)1);
}

/* ---- bulk transfers (bulk.h) ---- */

static void on_bulk(void *ctx, enum bulk_event ev, size_t n)
{
    int d;
    struct session *s = session_from_tag((uint64_t)(uintptr_t)ctx, &d);
    struct lbd *l = s->lbd;
    switch (ev) {
    case BULK_MOVED:
        session_count_relayed(s, d, n);
        l->stats.bulk_bytes += n;
        break;
    case BULK_QUIET: /* lbd reads d itself again (and may hand the session to the kernel) */
        session_bulk_end(s, d);
        s->run[d] = 0;
        uv_read_start((uv_stream_t *)session_sender(s, d), session_on_alloc, session_relay_read);
        break;
    case BULK_EOF:
        session_end(s, d == C2S ? "client_closed" : "node_closed");
        break;
    case BULK_IN_ERROR:
        session_end(s, d == C2S ? "client_error" : "node_error");
        break;
    case BULK_OUT_ERROR:
        session_end(s, d == C2S ? "node_error" : "client_error");
        break;
    }
}

/* Direction d read BULK_AFTER bytes with the other direction silent, all written:
 * splice it from here on, until it is quiet (true). Only the copying relay does this (the
 * kernel relay needs neither), and only once the startup is over: a spliced node
 * stream is not parsed, so the session's transaction state is unknown from then on. */
bool session_bulk_begin(struct session *s, int d)
{
    struct lbd *l = s->lbd;
    uv_tcp_t *to = session_sender(s, !d); /* (d's receiver) */
    if (s->bulk[d] || s->krelay || s->state != SS_RELAY || !(s->ready_seen || s->opaque) ||
        s->inflight[d] || to->write_queue_size)
        return false;
    int in = session_fd(session_sender(s, d)), out = session_fd(to);
    if (in < 0 || out < 0)
        return false;
    if (!lbd_fd_room(l, 4)) { /* (copying needs none: keep them for new sessions) */
        s->run[d] = 0;
        l->stats.bulk_failed++;
        return false;
    }
    s->bulk[d] = bulk_start(l->loop, in, out, on_bulk, (void *)(uintptr_t)session_tag(s, d));
    if (s->bulk[d] == NULL) {
        s->run[d] = 0; /* (EMFILE: try again after another BULK_AFTER bytes) */
        if (l->stats.bulk_failed++ == 0)
            log_emit(LOG_WARN, "splice_refused",
                     "client=%s detail=\"%s; relayed by copying (counted in "
                     "lbd_splice_refused_total)\"",
                     s->client_addr, strerror(errno));
        return false;
    }
    s->handles_open++;
    l->n_bulk++;
    s->reusable = false; /* a spliced stream is not framed */
    if (d == C2S)
        s->cframe_lost = true;
    uv_read_stop((uv_stream_t *)session_sender(s, d));
    if (!s->inflight[!d] && !session_sender(s, d)->write_queue_size)
        session_unwatch(s, session_sender(s, d));
    if (d == S2C) {
        s->opaque = true;
        s->tx_status = 0;
    }
    l->stats.bulk_started++;
    return true;
}

static void on_bulk_closed(void *ctx)
{
    int d;
    struct session *s = session_from_tag((uint64_t)(uintptr_t)ctx, &d);
    if (--s->handles_open == 0)
        session_free(s);
}

void session_bulk_end(struct session *s, int d)
{
    if (s->bulk[d] == NULL)
        return;
    bulk_stop(s->bulk[d], on_bulk_closed);
    s->bulk[d] = NULL;
    s->lbd->n_bulk--;
}

/* Hand the session to the kernel once its startup is over (the node's first
 * ReadyForQuery went by, so its BackendKeyData is recorded; or the bytes are TLS), the
 * client has sent KRELAY_AFTER reads' worth, and nothing lbd read is still waiting to
 * be written. Otherwise, or when the kernel refuses, lbd keeps relaying. */
void session_krelay_handoff(struct session *s)
{
    struct lbd *l = s->lbd;
    if (s->krelay || s->krelay_tried || s->state != SS_RELAY || !krelay_is_open(&l->krelay) ||
        s->bulk[C2S] || s->bulk[S2C] || !(s->ready_seen || s->opaque) ||
        s->relay_reads < KRELAY_AFTER || s->inflight[C2S] || s->inflight[S2C] ||
        s->client.write_queue_size || s->server.write_queue_size)
        return;
    int cfd = session_fd(&s->client), sfd = session_fd(&s->server);
    if (cfd < 0 || sfd < 0)
        return;
    /* Nothing unread on either socket. The kernel's relay takes whole segments from the
     * receive queue (tcp_read_skb), so a segment lbd has read only part of (a 64 KiB
     * segment, 32 KiB buffers) would go out again from its start. lbd tries again after
     * its next read; a bulk transfer may never get here, and is better off with lbd. */
    int unread_c = 0, unread_s = 0;
    if (ioctl(cfd, FIONREAD, &unread_c) != 0 || ioctl(sfd, FIONREAD, &unread_s) != 0 ||
        unread_c > 0 || unread_s > 0)
        return;
    s->krelay_tried = true;
    uv_read_stop((uv_stream_t *)&s->client);
    uv_read_stop((uv_stream_t *)&s->server);
    /* What each receiving socket has acked and been given so far: the program's
     * counters start from here. */
    struct krelay_totals t[2];
    if (!totals(s, C2S, &t[C2S]) || !totals(s, S2C, &t[S2C])) {
        s->krelay_tried = false;
        session_relay_resume(s);
        return;
    }
    int rc =
        krelay_join(&l->krelay, cfd, sfd, session_tag(s, C2S), session_tag(s, S2C), s->kcookie);
    if (rc != 0) {
        if (l->stats.krelay_join_failed++ == 0)
            log_emit(LOG_WARN, "kernel_relay_refused",
                     "client=%s detail=\"%s; this and later refused sessions are relayed by "
                     "lbd (counted in lbd_kernel_relay_refused_total)\"",
                     s->client_addr, strerror(-rc));
        session_relay_resume(s);
        return;
    }
    /* C2S is received by the server socket, S2C by the client socket. */
    s->kacked0[C2S] = t[S2C].acked;
    s->kwritten0[C2S] = t[S2C].written;
    s->kacked0[S2C] = t[C2S].acked;
    s->kwritten0[S2C] = t[C2S].written;
    session_unwatch(s, &s->client);
    session_unwatch(s, &s->server);
    s->krelay = true;
    s->reusable = false;
    s->opaque = true; /* lbd no longer sees the whole stream */
    s->cframe_lost = true;
    s->tx_status = 0;
    l->n_krelay++;
    l->stats.krelay_handoffs++;
}

static bool totals(struct session *s, int dir, struct krelay_totals *t)
{
    int fd = session_fd(session_sender(s, dir));
    return fd >= 0 && krelay_socket_totals(fd, dir == S2C, t) == 0;
}

/* The byte counts the kernel kept: what each socket received is what was relayed
 * (lbd's own share before the handoff included). */
void session_krelay_account(struct session *s)
{
    struct lbd *l = s->lbd;
    for (int dir = 0; dir < 2; dir++) {
        struct krelay_totals t;
        if (!totals(s, dir, &t) || t.received <= s->bytes[dir])
            continue;
        uint64_t more = t.received - s->bytes[dir];
        s->bytes[dir] = t.received;
        if (dir == C2S) {
            s->node->bytes_in += more;
            l->stats.bytes_in += more;
        } else {
            s->node->bytes_out += more;
            l->stats.bytes_out += more;
        }
    }
    l->n_krelay--;
}

void session_krelay_refresh_idle(struct session *s, uint64_t now)
{
    for (int dir = 0; dir < 2; dir++) {
        struct krelay_totals t;
        if (totals(s, dir, &t))
            s->last_active_ms[dir] = now > t.idle_ms ? now - t.idle_ms : 0;
    }
}

/* How long a sender's rest may take to leave when the receiver reads nothing. */
#define KFLUSH_STALL_MS 10000

/* One side closed: end the session once the kernel has sent on everything that side
 * sent before its FIN (the relay queues segments for the other socket's send side and
 * a worker sends them a moment later; closing first would drop them, like a last
 * ErrorResponse before the node closes). lbd relaying itself gets the same order for
 * free: it reads the FIN only after writing what came before. */
void session_krelay_flush_check(struct session *s)
{
    int from = s->kflush - 1;
    struct krelay_totals in, out;
    uint64_t now = uv_now(s->lbd->loop);
    const char *reason = from == C2S ? "client_closed" : "node_closed";
    if (!totals(s, from, &in) || !receiver_totals(s, from, &out) ||
        out.written + (in.reset ? 1 : 0) >= in.received) {
        session_end(s, reason);
        return;
    }
    if (out.written != s->kflush_written) {
        s->kflush_written = out.written;
        s->kflush_progress_ms = now;
    } else if (now - s->kflush_progress_ms >= KFLUSH_STALL_MS) {
        snprintf(s->detail, sizeof(s->detail), "%llu bytes not taken by the %s in %d s",
                 (unsigned long long)(in.received - out.written), from == C2S ? "node" : "client",
                 KFLUSH_STALL_MS / 1000);
        session_end(s, reason);
        return;
    }
    uv_timer_start(&s->timer, session_on_timer, now - s->kflush_progress_ms < 10 ? 1 : 20, 0);
}

/* One side closed (FIN) or was reset. Reported as closed either way: with the kernel
 * relaying, lbd looks after the fact, when a reset may already follow a FIN (a TLS
 * client closes, the node's close_notify reaches it late, its kernel answers with a
 * reset), so "reset" is not evidence of an error here. */
void session_krelay_closed(struct session *s, int dir, bool hangup)
{
    struct krelay_totals t;
    if (s->state != SS_RELAY || !s->krelay)
        return;
    if (s->kflush == 1 + dir) /* the same close, seen by libuv and by the watch */
        return;
    if (s->kflush) { /* the receiver of the rest went away too */
        session_end(s, s->kflush - 1 == C2S ? "client_closed" : "node_closed");
        return;
    }
    if (!hangup || !totals(s, dir, &t)) {
        session_end(s, dir == C2S ? "client_error" : "node_error");
        return;
    }
    s->kflush = (uint8_t)(1 + dir);
    s->kflush_written = UINT64_MAX;
    s->kflush_progress_ms = uv_now(s->lbd->loop);
    struct krelay_totals out;
    if (receiver_totals(s, dir, &out) && out.written + (t.reset ? 1 : 0) < t.received)
        s->lbd->stats.krelay_flush_waits++;
    session_krelay_flush_check(s);
}

/* The receiver of direction d fell a window behind (its allowance ran out and the
 * program now keeps d's data on the sending socket): once the kernel has sent on
 * everything it redirected, lbd relays d itself, with its usual back-pressure.
 * Returns true while a direction still waits (the timer is re-armed). */
bool session_krelay_demote_check(struct session *s)
{
    struct lbd *l = s->lbd;
    bool waiting = false;
    for (int d = 0; d < 2; d++) {
        if (s->kdemote[d] != 1)
            continue;
        struct krelay_state st;
        struct krelay_totals out;
        if (krelay_state_get(&l->krelay, s->kcookie[d], &st) != 0 || !receiver_totals(s, d, &out)) {
            session_end(s, d == C2S ? "node_error" : "client_error");
            return true;
        }
        if (out.written < s->kwritten0[d] + st.redirected) {
            waiting = true;
            continue;
        }
        s->kdemote[d] = 2;
        s->kdemote_ms[d] = uv_now(l->loop);
        uv_read_start((uv_stream_t *)session_sender(s, d), session_on_alloc, session_relay_read);
    }
    if (waiting) {
        /* 2 ms, doubling to 128: a receiver that reads again is caught quickly, one that
         * stays away costs a few looks a second. */
        s->kdemote_wait = !s->kdemote_wait        ? 2
                          : s->kdemote_wait < 128 ? (uint8_t)(s->kdemote_wait * 2)
                                                  : 128;
        uv_timer_start(&s->timer, session_on_timer, s->kdemote_wait, 0);
    } else {
        s->kdemote_wait = 0;
        session_arm_idle(s);
    }
    return waiting;
}

/* lbd stops reading d's sender, and takes it out of libuv's epoll set unless lbd is
 * writing to it (the other direction is lbd's and blocked). */
static void krelay_stop_reading(struct session *s, int d)
{
    uv_read_stop((uv_stream_t *)session_sender(s, d));
    if (!s->inflight[!d] && !session_sender(s, d)->write_queue_size)
        session_unwatch(s, session_sender(s, d));
}

/* How long a direction stays with lbd after it was taken back before lbd offers it to
 * the kernel again: a bulk transfer to a slow reader would otherwise go back and forth
 * every window. */
#define KRELAY_RETURN_MS 1000

/* Whether lbd offers a taken-back direction to the kernel again at all. Off: on Linux
 * 6.18 a socket whose verdict went from passing to redirecting and back to passing was
 * now and then given one segment (about 64 KiB) twice to read (lbd_kernel_relay's
 * rounds of fall back and return: the program's count of bytes passed grew by one
 * segment more than the node sent, and the client's stream broke at that point, in
 * about 1 round in 30). A session whose direction fell back keeps it with lbd from then
 * on. (A single fallback did the same once in 116 sessions: scripts/krelay-stress.sh,
 * and why relay: kernel is not the default.) */
#define KRELAY_RETURN 0

/* Direction d, taken back from the kernel a while ago, is quiet: lbd has written all it
 * read and nothing is waiting on d's sender. Offer it to the kernel again (a pooled
 * connection that once ran a big query would otherwise keep that direction in user
 * space for good). The program takes it only if nothing was passed to lbd in between;
 * otherwise (a MISSED note) lbd reads on and offers again at its next quiet moment. */
void session_krelay_try_return(struct session *s, int d)
{
    struct lbd *l = s->lbd;
    if (!KRELAY_RETURN || !s->krelay || s->kdemote[d] != 2 || s->kflush || s->inflight[d] ||
        uv_now(l->loop) - s->kdemote_ms[d] < KRELAY_RETURN_MS)
        return;
    int unread = 0, fd = session_fd(session_sender(s, d));
    struct krelay_state st;
    struct krelay_totals out;
    if (session_sender(s, !d)->write_queue_size || fd < 0 || ioctl(fd, FIONREAD, &unread) != 0 ||
        unread > 0 || krelay_state_get(&l->krelay, s->kcookie[d], &st) != 0 ||
        st.passed != s->kread[d] || !receiver_totals(s, d, &out) || out.written < st.redirected)
        return;
    /* The receiver's counters as if the kernel had relayed everything lbd wrote: the
     * flush, the demotion's wait and the allowance count from here. */
    s->kwritten0[d] = s->kacked0[d] = out.written - st.redirected;
    if (krelay_return(&l->krelay, s->kcookie[d], st.redirected + KRELAY_WINDOW, st.passed) != 0)
        return;
    /* lbd reads nothing more from d's sender until the program says which way the next
     * segment went (RETURNED or MISSED): a segment lbd read while the kernel took the
     * direction back could overtake what the kernel was sending, or be sent twice. */
    s->kdemote[d] = 3;
    krelay_stop_reading(s, d);
}

static void krelay_note(struct session *s, int d, enum krelay_note_kind kind)
{
    struct lbd *l = s->lbd;
    struct krelay_totals out;
    if (s->state != SS_RELAY || !s->krelay)
        return;
    if (kind == KRELAY_NOTE_RETURNED) {
        /* The kernel relays d again (lbd stopped reading its sender when it asked). */
        s->kdemote[d] = 0;
        l->stats.krelay_returned++;
        return;
    }
    if (kind == KRELAY_NOTE_MISSED) {
        /* A segment came between lbd's look and its request: d stays lbd's, and lbd
         * offers it again at its next quiet moment. */
        if (s->kdemote[d] == 3) {
            s->kdemote[d] = 2;
            l->stats.krelay_return_missed++;
            uv_read_start((uv_stream_t *)session_sender(s, d), session_on_alloc,
                          session_relay_read);
        }
        return;
    }
    if (s->kdemote[d])
        return;
    if (kind == KRELAY_NOTE_LOW) {
        /* Let the kernel run a window ahead of what the receiver's peer acked. */
        if (receiver_totals(s, d, &out)) {
            uint64_t acked = out.acked > s->kacked0[d] ? out.acked - s->kacked0[d] : 0;
            (void)krelay_allow(&l->krelay, s->kcookie[d], acked + KRELAY_WINDOW);
        }
        return;
    }
    s->kdemote[d] = 1;
    l->stats.krelay_demoted++;
    if (!s->kflush)
        session_krelay_demote_check(s);
}

void session_krelay_drain_notes(struct lbd *l, struct session *ending)
{
    uint64_t tag;
    enum krelay_note_kind kind;
    int dir;
    while (krelay_next_note(&l->krelay, &tag, &kind) == 1) {
        struct session *s = session_from_tag(tag, &dir);
        if (s != ending)
            krelay_note(s, dir, kind);
    }
}

void session_krelay_events(struct lbd *l)
{
    uint64_t tag;
    bool hangup;
    int r, dir;
    /* A session's sockets leave the watch when they close, and its notes are read
     * before it is freed, so no tag outlives its session (lbd never shares these
     * fds). */
    while ((r = krelay_next_event(&l->krelay, &tag, &hangup)) != 0) {
        if (r == 2) {
            session_krelay_drain_notes(l, NULL);
        } else {
            struct session *s = session_from_tag(tag, &dir);
            session_krelay_closed(s, dir, hangup);
        }
    }
}
