/* checker.h -- health checks, one runner per node; results go to node_result() (node.h). */
#ifndef LBD_CHECKER_H
#define LBD_CHECKER_H

#include "lbd.h"

int check_start(struct lbd *l, struct pool_node *n);
void check_stop(struct lbd *l, struct pool_node *n);

#endif
