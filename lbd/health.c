/* health.c -- rise/fall damping (see health.h). */
#include "health.h"

void health_init(struct health_state *h, uint32_t rise, uint32_t fall)
{
    h->rise = rise ? rise : 1;
    h->fall = fall ? fall : 1;
    h->ok_run = 0;
    h->fail_run = 0;
    h->up = true;
    h->checked = false;
}

void health_retune(struct health_state *h, uint32_t rise, uint32_t fall)
{
    h->rise = rise ? rise : 1;
    h->fall = fall ? fall : 1;
}

enum health_change health_feed(struct health_state *h, bool ok)
{
    bool first = !h->checked;
    h->checked = true;
    if (ok) {
        h->fail_run = 0;
        if (h->ok_run < UINT32_MAX)
            h->ok_run++;
        if (!h->up && h->ok_run >= h->rise) {
            h->up = true;
            return HEALTH_WENT_UP;
        }
    } else {
        h->ok_run = 0;
        if (h->fail_run < UINT32_MAX)
            h->fail_run++;
        if (h->up && (h->fail_run >= h->fall || first)) {
            h->up = false;
            return HEALTH_WENT_DOWN;
        }
    }
    return HEALTH_SAME;
}
