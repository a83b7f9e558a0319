/* relay.h -- how an established session's bytes move, one direction at a time.
 *
 * The session (session.c) owns the life of a connection pair, its state and what lbd
 * understands of PostgreSQL (framing, transaction state, drains, reuse). A relay owns a
 * mechanism that moves direction d's bytes from its sender (the client for C2S, the node
 * for S2C) to its receiver, and nothing else: session.c never names the mechanism, it
 * asks the direction's ops (as HAProxy's stream asks its transport's rcv_buf/snd_buf or
 * rcv_pipe/snd_pipe). Two relays exist:
 *   relay_copy   (relay_copy.c)   reads into one 32 KiB buffer and writes it on; holds
 *                                 that buffer only while the receiver is slower than the
 *                                 sender (back-pressure); the session sees every byte.
 *   relay_splice (relay_splice.c) splice(2) through a pipe for a bulk transfer (bulk.h);
 *                                 the bytes pass unseen.
 * Every direction starts with relay_copy; session.c moves one to relay_splice after a
 * run of BULK_AFTER bytes with the other way silent, and back when the splice is quiet.
 * (The experimental kernel relay, a third mechanism, was removed: docs/kernel-relay.md.)
 */
#ifndef LBD_RELAY_H
#define LBD_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct session;
struct bulk;

enum { C2S = 0, S2C = 1 };

struct relay_ops {
    const char *name;
    /* The relay sees the bytes it moves (the session frames them), or not. */
    bool sees_bytes;
    /* Take direction d: 0, or -errno with nothing changed (the caller keeps the relay
     * d had). */
    int (*start)(struct session *s, int d);
    /* A read of d's sender came (libuv's read callback, routed by the session's state):
     * nread bytes in buf, or UV_EOF / an error. Relays that do not read through libuv
     * leave it NULL. */
    void (*data_arrived)(struct session *s, int d, ssize_t nread, const uv_buf_t *buf);
    /* Let go of d: the session ends, or another relay takes d. */
    void (*stop)(struct session *s, int d);
    /* Nothing of d is held by the relay: every byte it took from the sender is with the
     * receiver's kernel. */
    bool (*at_rest)(const struct session *s, int d);
};

extern const struct relay_ops relay_copy, relay_splice;

/* A direction's relay and the state each mechanism keeps for it (owned by its file). */
struct relay_dir {
    const struct relay_ops *ops; /* NULL until the session relays */
    uint32_t run;                /* bytes read in d since the other direction read any */
    struct {
        void *inflight; /* the buffer being written to a slow receiver; NULL: none */
        uv_write_t wreq;
    } copy;
    struct {
        struct bulk *bulk; /* NULL: not splicing */
    } splice;
};

/* What a relay tells the session (session.c). */
/* n bytes of d went through (counted; both sides are active). */
void session_relay_moved(struct session *s, int d, uint64_t n);
/* d's relay read bytes (data: them, n: their count) and is about to send them on: the
 * session frames and observes them. false: the session took the bytes (the client
 * left cleanly and its node connection was kept) or ended; the relay drops them. */
bool session_relay_observe(struct session *s, int d, const uint8_t *data, size_t n);
/* d's relay has nothing in flight (all it read is written): the session may act at this
 * point (close an idle drained session, splice a bulk run). true: the relay reads on. */
bool session_relay_at_rest(struct session *s, int d);
/* d's relay ends the session: its sender closed (eof) or a side failed (in_error: the
 * sender's side, else the receiver's). */
void session_relay_failed(struct session *s, int d, bool eof, bool in_error);
/* d's splice has been quiet: d goes back to relay_copy. */
void session_relay_quiet(struct session *s, int d);

/* The socket d's data arrives on (the client for C2S, the node for S2C); !d's for the
 * receiver. */
uv_tcp_t *session_sender(struct session *s, int d);

#endif
