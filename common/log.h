/* log.h -- logfmt event logging shared by lbd and vrrpd.
 *
 * One line per event: ts=... level=... daemon=... instance=... event=NAME fields...
 * Lines go to stderr and optionally to a file, each with a single write(2) so lines
 * from concurrent writers never interleave. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Set the daemon name and instance that prefix every line. Safe to call again. */
void log_setup(const char *daemon, const char *instance);
void log_set_level(enum log_level min);
/* Where the lines go besides log_file: stderr as logfmt; the systemd journal, natively
 * (PRIORITY from the level, SYSLOG_IDENTIFIER the daemon, and every logfmt field as a
 * PGVIP_* field, so `journalctl PGVIP_EVENT=transition PGVIP_VRID=51` finds them); or
 * syslog(3) with the level's priority. auto: the journal when stderr is connected to
 * it (systemd sets JOURNAL_STREAM), else stderr. A line the journal does not take goes
 * to stderr. */
enum log_target { LOG_TARGET_AUTO, LOG_TARGET_STDERR, LOG_TARGET_JOURNAL, LOG_TARGET_SYSLOG };
extern const char *const log_target_names[]; /* NULL-terminated, config choices */
void log_set_target(enum log_target t);
/* Also append every line to path ("" or NULL: stderr only). Returns 0 or -errno. */
int log_open_file(const char *path);
void log_close_file(void);

/* Emit one event. fmt holds the extra logfmt fields ("node=%s bytes=%llu"); values
 * that may hold spaces or quotes must go through log_quote(). */
void log_emit(enum log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Render s as a logfmt value into buf: bare when safe, else "quoted" with escapes.
 * Returns buf (always NUL-terminated, truncated to size). */
const char *log_quote(char *buf, size_t size, const char *s);

/* Format a wall-clock time in ms as 2026-11-23T10:15:02.123Z. Returns buf. */
const char *log_format_ts(unsigned long long ms, char *buf, size_t size);

/* A line that an attacker could make come thousands of times a second (counters keep
 * the rest): log_limit_pass() is true at most once a second per limiter, and then
 * *held_back says how many were held back since the last line that passed. */
struct log_limit {
    unsigned long long last_ms, held_back;
};
int log_limit_pass(struct log_limit *lim, unsigned long long now_ms, unsigned long long *held_back);

/* Parse "debug|info|warn|error"; returns -1 when unknown. */
int log_level_parse(const char *s);

#endif
