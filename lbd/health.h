/* health.h -- rise/fall damping of health-check results (pure).
 *
 * A node goes down after `fall` consecutive failures and comes back after `rise`
 * consecutive successes, so one lost check neither drops nor flaps a node. */
#ifndef LBD_HEALTH_H
#define LBD_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

struct health_state {
    uint32_t rise, fall;
    uint32_t ok_run, fail_run; /* consecutive results of each kind */
    bool up;
    bool checked; /* a result has come in since start */
};

enum health_change { HEALTH_SAME, HEALTH_WENT_UP, HEALTH_WENT_DOWN };

/* A node starts up, one failure away from down: a dead node at start-up leaves the
 * pool after its first failed check, a live one serves at once. */
void health_init(struct health_state *h, uint32_t rise, uint32_t fall);
enum health_change health_feed(struct health_state *h, bool ok);
/* Change rise/fall (reload) keeping the current state. */
void health_retune(struct health_state *h, uint32_t rise, uint32_t fall);

#endif
