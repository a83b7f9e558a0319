/* reload.h -- what both daemons keep about SIGHUP reloads: the counters, the last
 * error (kept until a reload succeeds), the reload_failed log line, the systemd notify
 * protocol around a reload, and the metrics and JSON fields that show them. */
#ifndef COMMON_RELOAD_H
#define COMMON_RELOAD_H

#include "metrics.h"

#include <stdbool.h>
#include <stdint.h>

struct reload_state {
    uint64_t reloads, failures;
    bool last_failed;
    char last_error[512];
};

/* RELOADING=1 before, READY=1 after, with STATUS=serving or the failure. */
void reload_begin(void);
void reload_end(const struct reload_state *r, const char *serving);
/* A rejected file: counted, kept for the status page, logged; the old config stays. */
void reload_failed(struct reload_state *r, const char *err);
void reload_succeeded(struct reload_state *r);
/* <daemon>_config_reloads_total, _reload_failures_total, _last_reload_successful. */
void reload_metrics(struct metrics_buf *m, const char *daemon, const struct reload_state *r);
/* ,"last_reload_failed":B,"last_reload_error":"..." */
void reload_json(struct metrics_buf *m, const struct reload_state *r);

#endif
