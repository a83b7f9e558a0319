/* admin.h -- the admin endpoint: / (status page), /health, /metrics, /status. */
#ifndef LBD_ADMIN_H
#define LBD_ADMIN_H

#include "lbd.h"

int admin_start(struct lbd *l);
void admin_stop(struct lbd *l);
void admin_render_metrics(struct lbd *l, struct metrics_buf *m);
void admin_render_status(struct lbd *l, struct metrics_buf *m);

#endif
