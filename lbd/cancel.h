/* cancel.h -- CancelRequests routed to the node whose session holds the key, or to the peer lbd. */
#ifndef LBD_CANCEL_H
#define LBD_CANCEL_H

#include "lbd.h"

/* A CancelRequest from a client (src: its guard_source_key) or, from_peer, one the peer
 * lbd forwarded. Bounded by lbd.limits (guard.h); never forwarded twice. */
struct lbd_worker;
/* On worker w's loop (the CancelRequest's session is there; the one it cancels may be
 * on any worker). */
void cancel_route(struct lbd_worker *w, uint32_t pid, const uint8_t *key, size_t key_len,
                  bool from_peer, const uint8_t *src, const char *client);

#endif
