/* reuse.h -- node connections kept for the next client with the same StartupMessage (pool.reuse).
 * Each worker keeps its own (worker.h): a parked connection serves the next matching
 * client of the same worker; pool.reuse.max_idle bounds them per node over all workers. */
#ifndef LBD_REUSE_H
#define LBD_REUSE_H

#include "lbd.h"
#include "worker.h"

struct reuse_grant {
    int fd;          /* the node connection, now the caller's */
    uint8_t *params; /* the node's ParameterStatus messages, now the caller's */
    uint32_t params_len;
    uint32_t pid, key; /* the node's BackendKeyData */
};
/* May a connection to n be parked now (reuse on, node up, below pool.reuse.max_idle)? */
bool reuse_can_park(const struct lbd_worker *w, const struct pool_node *n);
/* Park the node connection fd (a descriptor of its own) opened with startup; takes
 * fd, startup and params in every case. Returns 0 or a negative errno. */
int reuse_park(struct lbd_worker *w, struct pool_node *n, int fd, uint8_t *startup,
               uint32_t startup_len, uint8_t *params, uint32_t params_len, uint32_t pid,
               uint32_t key);
/* A reset, idle connection to n opened with this StartupMessage: 0 and g filled, or
 * -ENOENT. */
int reuse_take(struct lbd_worker *w, struct pool_node *n, const uint8_t *startup, uint32_t len,
               struct reuse_grant *g);
/* Close the parked connections to n (NULL: all): w's, or (worker 0) every worker's. */
void reuse_close_on(struct lbd_worker *w, struct pool_node *n, const char *why);
void reuse_close_node(struct lbd *l, struct pool_node *n, const char *why);

#endif
