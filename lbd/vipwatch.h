/* vipwatch.h -- addresses leaving this host (a VIP moved to the peer): their sessions end at once.
 */
#ifndef LBD_VIPWATCH_H
#define LBD_VIPWATCH_H

#include "lbd.h"

int vipwatch_start(struct lbd *l);
void vipwatch_stop(struct lbd *l);

#endif
