/* session.h -- client sessions: accepted, relayed, listed, killed, drained and ended (session.c,
 * session_start.c; relays: relay.h). */
#ifndef LBD_SESSION_H
#define LBD_SESSION_H

#include "lbd.h"

struct lbd_worker;

/* A connection libuv holds for the listener ls, on worker 0 (w). */
void session_accept(struct lbd_listener *ls, struct lbd_worker *w);
/* Take over a connection accepted outside w's loop (worker 0 hands it over; the
 * quiesce drains a listener). listen: the listener's address, or NULL. */
void session_adopt(struct lbd_worker *w, int fd, bool from_peer,
                   const struct sockaddr_storage *listen);
/* The calls below are worker 0's: each acts on every worker's sessions, on that
 * worker's loop, and returns when all have (worker.h: workers_run). */
void session_close_all(struct lbd *l, const char *reason);
/* Client sessions still in their startup (before the relay; CancelRequests and the peer's
 * connections not counted). */
size_t session_count_starting(struct lbd *l);
/* The same for the sessions whose client connected to ip (a VIP). */
size_t session_count_starting_on(struct lbd *l, const struct sockaddr_storage *ip);
void session_cut_node(struct lbd *l, struct pool_node *n, const char *reason);
/* Close the sessions whose client connected to ip (AF_INET: 4 bytes, AF_INET6: 16, in
 * network order); returns how many. */
size_t session_close_on_addr(struct lbd *l, int af, const void *ip);
/* A node starts to drain: its sessions idle now are closed (the rest at their next idle
 * moment, pool.on_node_drain). */
void session_drain_node(struct lbd *l, struct pool_node *n);
/* pool.drain_deadline passed: the node's sessions still open are ended. */
void session_drain_deadline(struct lbd *l, struct pool_node *n);
/* A client session as the control socket lists it. */
struct session_view {
    uint64_t id;
    const char *client, *user, *database, *app;
    char vip[46];
    const struct pool_node *node; /* NULL before one is chosen */
    const char *state;            /* startup, idle, idle in transaction, idle in failed transaction,
                                     active, encrypted */
    uint64_t age_ms, bytes_in, bytes_out;
    uint32_t backend_pid; /* as the client knows it (BackendKeyData); 0: none yet */
    bool kill_pending;    /* killed at idle, not idle yet */
};
void session_each(struct lbd *l, void (*fn)(void *ctx, const struct session_view *v), void *ctx);
/* End session id now (57P01; its transaction rolls back) or at its next idle moment.
 * 0, or -ENOENT when no such client session is open. */
int session_kill(struct lbd *l, uint64_t id, bool now);
/* The same for every client session on n; returns how many. */
size_t session_kill_node(struct lbd *l, struct pool_node *n, bool now);
/* The node of the session (on any worker) that received BackendKeyData (pid, key), or
 * NULL; node_key gets the key to send that node (the node's own, when lbd gave the
 * client another). The caller holds the shared lock (lbd_lock) while it uses the node. */
struct pool_node *session_node_for_key(struct lbd *l, uint32_t pid, uint32_t key,
                                       uint32_t *node_key);

#endif
