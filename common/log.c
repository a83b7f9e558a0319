/* log.c -- logfmt event logging (see log.h). */
#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static struct {
    char daemon[32];
    char instance[64];
    enum log_level min;
    int fd;                 /* extra file, -1 when none */
    enum log_target target; /* resolved: never AUTO */
    int journal_fd;         /* datagram socket to the journal, -1 when none */
    bool syslog_open;
} logger = {"pgvip", "", LOG_INFO, -1, LOG_TARGET_STDERR, -1, false};

const char *const log_target_names[] = {"auto", "stderr", "journal", "syslog", NULL};

void log_syslog_open(const char *ident); /* log_syslog.c */
void log_syslog_line(int priority, const char *line);

/* systemd sets JOURNAL_STREAM=DEV:INODE to the stream it connected stderr to. */
static bool stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long dev, ino;
    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_target(enum log_target t)
{
    if (t == LOG_TARGET_AUTO)
        t = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
    if (t == LOG_TARGET_JOURNAL && logger.journal_fd < 0) {
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", JOURNAL_SOCKET);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
            close(fd);
            fd = -1;
        }
        logger.journal_fd = fd; /* (-1: every line falls back to stderr) */
    }
    if (t == LOG_TARGET_SYSLOG && !logger.syslog_open) {
        log_syslog_open(logger.daemon);
        logger.syslog_open = true;
    }
    logger.target = t;
}

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

/* Append "KEY=value\n" to a journal datagram (values here never hold a newline). */
static size_t jfield(char *buf, size_t used, size_t size, const char *key, const char *v, size_t vn)
{
    size_t kn = strlen(key);
    if (used + kn + vn + 2 > size)
        return used;
    memcpy(buf + used, key, kn);
    buf[used + kn] = '=';
    memcpy(buf + used + kn + 1, v, vn);
    buf[used + kn + 1 + vn] = '\n';
    return used + kn + vn + 2;
}

/* syslog's priorities for our levels (debug, info, warning, err); <syslog.h> is kept out
 * of this file, its LOG_* macros would shadow our levels (log_syslog.c has it). */
static const int syslog_prio[] = {7, 6, 4, 3};

/* The line as journal fields: MESSAGE (the logfmt line), PRIORITY, SYSLOG_IDENTIFIER,
 * and each logfmt field after ts and level as PGVIP_KEY=value, unquoted. */
static bool to_journal(enum log_level lvl, const char *line, size_t len)
{
    if (logger.journal_fd < 0)
        return false;
    char d[4096], key[64], val[1024], prio[4];
    size_t u = 0;
    u = jfield(d, u, sizeof(d), "MESSAGE", line, len);
    snprintf(prio, sizeof(prio), "%d", syslog_prio[lvl]);
    u = jfield(d, u, sizeof(d), "PRIORITY", prio, strlen(prio));
    u = jfield(d, u, sizeof(d), "SYSLOG_IDENTIFIER", logger.daemon, strlen(logger.daemon));
    const char *p = line, *end = line + len;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        size_t kn = 0;
        while (p < end && *p != '=' && *p != ' ' && kn + 1 < sizeof(key) - 6) {
            char c = *p++;
            key[kn++] = (char)(c >= 'a' && c <= 'z' ? c - 32 : (c == '.' || c == '-') ? '_' : c);
        }
        if (p >= end || *p != '=') {
            while (p < end && *p != ' ')
                p++;
            continue;
        }
        p++;
        size_t vn = 0;
        if (p < end && *p == '"') {
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < end)
                    p++;
                if (vn + 1 < sizeof(val))
                    val[vn++] = *p;
            }
            p++;
        } else {
            while (p < end && *p != ' ')
                if (vn + 1 < sizeof(val))
                    val[vn++] = *p++;
                else
                    p++;
        }
        key[kn] = '\0';
        if (kn == 0 || strcmp(key, "TS") == 0 || strcmp(key, "LEVEL") == 0)
            continue;
        char jkey[80];
        snprintf(jkey, sizeof(jkey), "PGVIP_%s", key);
        u = jfield(d, u, sizeof(d), jkey, val, vn);
    }
    return send(logger.journal_fd, d, u, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)u;
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
    line[len] = '\0';
    bool sent = false;
    if (logger.target == LOG_TARGET_JOURNAL)
        sent = to_journal(lvl, line, len);
    else if (logger.target == LOG_TARGET_SYSLOG) {
        log_syslog_line(syslog_prio[lvl], line);
        sent = true;
    }
    line[len++] = '\n';
    if (!sent)
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
