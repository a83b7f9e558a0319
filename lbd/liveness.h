/* liveness.h -- the liveness channel vrrpd tracks lbd through (a Unix socket). */
#ifndef LBD_LIVENESS_H
#define LBD_LIVENESS_H

#include "lbd.h"

int liveness_start(struct lbd *l);
void liveness_stop(struct lbd *l);
/* Tell every watcher lbd's state now (a change: draining, no node eligible). */
int liveness_push(struct lbd *l);
/* The quiet waits (lbd.h: quiet_waits): tell vrrpd "quiet ADDR" for each VIP whose
 * logins under way are done, or, expired, whose time is up. */
void liveness_quiet_check(struct lbd *l, bool expired);
/* vrrpd instances watching lbd now. */
size_t liveness_watchers(struct lbd *l);

#endif
