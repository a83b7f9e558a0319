/* log.c -- logfmt event logging (see log.h). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
    char daemon[32];
    char instance[64];
    enum log_level min;
    int fd; /* extra file, -1 when none */
} logger = {"pgvip", "", LOG_INFO, -1};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_setup(const char *daemon, const char *instance)
{
    snprintf(logger.daemon, sizeof(logger.daemon), "%s", daemon ? daemon : "");
    snprintf(logger.instance, sizeof(logger.instance), "%s", instance ? instance : "");
}

void log_set_level(enum log_level min)
{
    logger.min = min;
}

int log_level_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

int log_open_file(const char *path)
{
    log_close_file();
    if (path == NULL || path[0] == '\0')
        return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    logger.fd = fd;
    return 0;
}

void log_close_file(void)
{
    if (logger.fd >= 0)
        close(logger.fd);
    logger.fd = -1;
}

const char *log_quote(char *buf, size_t size, const char *s)
{
    if (size == 0)
        return buf;
    if (s == NULL)
        s = "";
    int bare = s[0] != '\0';
    for (const char *p = s; *p && bare; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p >= 0x7f)
            bare = 0;
    if (bare) {
        snprintf(buf, size, "%s", s);
        return buf;
    }
    size_t o = 0;
    buf[o++] = '"';
    for (const char *p = s; *p && o + 3 < size; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c < ' ' || c == 0x7f) {
            buf[o++] = '?';
        } else {
            buf[o++] = (char)c;
        }
    }
    if (o < size)
        buf[o++] = '"';
    buf[o < size ? o : size - 1] = '\0';
    return buf;
}

const char *log_format_ts(unsigned long long ms, char *buf, size_t size)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03lluZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
    return buf;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void log_emit(enum log_level lvl, const char *event, const char *fmt, ...)
{
    if (lvl < logger.min)
        return;
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s daemon=%s%s%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000), level_names[lvl], logger.daemon,
                     logger.instance[0] ? " instance=" : "", logger.instance, event);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (fmt && fmt[0] && len + 2 < sizeof(line)) {
        line[len++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
        va_end(ap);
        if (m > 0)
            len += (size_t)m < sizeof(line) - len ? (size_t)m : sizeof(line) - len - 1;
    }
    if (len + 1 >= sizeof(line))
        len = sizeof(line) - 2;
    line[len++] = '\n';
    write_all(STDERR_FILENO, line, len);
    if (logger.fd >= 0)
        write_all(logger.fd, line, len);
}

int log_limit_pass(struct log_limit *lim, unsigned long long now_ms, unsigned long long *held_back)
{
    if (lim->last_ms && now_ms - lim->last_ms < 1000) {
        lim->held_back++;
        return 0;
    }
    lim->last_ms = now_ms ? now_ms : 1;
    *held_back = lim->held_back;
    lim->held_back = 0;
    return 1;
}
