/* log_syslog.c -- log.c's syslog(3) target, apart: <syslog.h>'s LOG_* priority macros
 * would shadow log.h's level names in log.c. */
#include <syslog.h>

void log_syslog_open(const char *ident);
void log_syslog_line(int priority, const char *line);

void log_syslog_open(const char *ident)
{
    openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_syslog_line(int priority, const char *line)
{
    syslog(priority, "%s", line);
}
