/* reload.c -- reload bookkeeping shared by lbd and vrrpd (see reload.h). */
#include "reload.h"

#include "log.h"
#include "sdnotify.h"

#include <stdio.h>

void reload_begin(void)
{
    sdnotify("RELOADING=1");
}

void reload_end(const struct reload_state *r, const char *serving)
{
    char state[128];
    if (r->last_failed)
        snprintf(state, sizeof(state), "READY=1\nSTATUS=reload failed; old configuration in force");
    else
        snprintf(state, sizeof(state), "READY=1\nSTATUS=%s", serving);
    sdnotify(state);
}

void reload_failed(struct reload_state *r, const char *err)
{
    char q[1100];
    r->failures++;
    r->last_failed = true;
    snprintf(r->last_error, sizeof(r->last_error), "%s", err);
    log_emit(LOG_ERROR, "reload_failed", "error=%s detail=\"the old configuration stays\"",
             log_quote(q, sizeof(q), err));
}

void reload_succeeded(struct reload_state *r)
{
    r->reloads++;
    r->last_failed = false;
    r->last_error[0] = '\0';
}

void reload_metrics(struct metrics_buf *m, const char *daemon, const struct reload_state *r)
{
    char name[64];
    snprintf(name, sizeof(name), "%s_config_reloads_total", daemon);
    metrics_family(m, name, METRICS_COUNTER, "Configuration reloads applied.");
    metrics_sample(m, NULL, (double)r->reloads);
    snprintf(name, sizeof(name), "%s_config_reload_failures_total", daemon);
    metrics_family(m, name, METRICS_COUNTER,
                   "Configuration reloads rejected (the old configuration stayed).");
    metrics_sample(m, NULL, (double)r->failures);
    snprintf(name, sizeof(name), "%s_config_last_reload_successful", daemon);
    metrics_family(m, name, METRICS_GAUGE, "0 when the last reload was rejected.");
    metrics_sample(m, NULL, !r->last_failed);
}

void reload_json(struct metrics_buf *m, const struct reload_state *r)
{
    metrics_printf(
        m, ",\"last_reload_failed\":%s,\"last_reload_error\":", r->last_failed ? "true" : "false");
    metrics_json_str(m, r->last_error);
}
