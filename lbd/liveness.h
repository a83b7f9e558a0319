/* liveness.h -- the liveness channel vrrpd tracks lbd through (a Unix socket). */
#ifndef LBD_LIVENESS_H
#define LBD_LIVENESS_H

#include "lbd.h"

int liveness_start(struct lbd *l);
void liveness_stop(struct lbd *l);
/* Tell every watcher lbd's state now (a change: draining, no node eligible). */
int liveness_push(struct lbd *l);
/* vrrpd instances watching lbd now. */
size_t liveness_watchers(struct lbd *l);

#endif
