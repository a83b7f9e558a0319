/* pgvipctl -- the client of lbd's control socket (lbd/control.c, common/ctl.h).
 *
 *   pgvipctl [-s SOCKET] [--json] [--local] COMMAND [ARGS...]   one command
 *   pgvipctl [-s SOCKET] [--json] [--local] < FILE              one command per line
 *
 * Prints the answer as lbd wrote it (psql-style tables, or JSON with --json) and exits
 * 0 when lbd says ok, 1 when it says error, 2 when lbd cannot be reached. The socket is
 * -s, else $PGVIPCTL_SOCKET, else lbd's default (LBD_CONTROL_SOCKET). */
#include "ctl_paths.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ANSWER_TIMEOUT_MS 10000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pgvipctl [-s SOCKET] [-S SOCKET] [--json] [--local] COMMAND [ARGS...]\n"
            "       pgvipctl [-s SOCKET] [--json] [--local] < commands   (one a line, lbd's)\n"
            "--json: JSON (a table as an array of objects; an answer as an object a line per\n"
            "instance). --local: a node command for this lbd only, not its peer too.\n"
            "Talks to lbd's control socket (lbd.control.socket; -s, $PGVIPCTL_SOCKET or\n"
            "%s), and for 'vrrp ...' commands to vrrpd's (vrrp.control.socket;\n"
            "-S, $PGVIPCTL_VRRPD_SOCKET or %s). 'pgvipctl help' and 'pgvipctl vrrp help'\n"
            "list the commands.\n"
            "Exit status: 0 done, 1 the daemon refused the command, 2 it could not be reached.\n",
            LBD_CONTROL_SOCKET, VRRPD_CONTROL_SOCKET);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_to(const char *path, const char *daemon)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "pgvipctl: socket path too long: %s\n", path);
        return -1;
    }
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        int e = errno;
        fprintf(stderr, "pgvipctl: cannot connect to %s at %s: %s%s\n", daemon, path, strerror(e),
                e == ENOENT         ? " (is it running, with its control socket there?)"
                : e == EACCES       ? " (control.mode and control.group decide who may connect)"
                : e == ECONNREFUSED ? " (a stale socket: the daemon is not running)"
                                    : "");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Send one command line and print the answer up to its %end line. Returns 0 (ok), 1
 * (error), 2 (connection lost). */
static int run(int fd, const char *line)
{
    if (write_all(fd, line, strlen(line)) != 0 || write_all(fd, "\n", 1) != 0) {
        fprintf(stderr, "pgvipctl: lbd closed the connection\n");
        return 2;
    }
    static char buf[1 << 16];
    static size_t used;
    int64_t deadline = now_ms() + ANSWER_TIMEOUT_MS;
    for (;;) {
        /* Print every complete line; stop at %end. */
        char *start = buf, *nl;
        while ((nl = memchr(start, '\n', used - (size_t)(start - buf))) != NULL) {
            *nl = '\0';
            if (strncmp(start, "%end ", 5) == 0) {
                int rc = strcmp(start + 5, "ok") == 0 ? 0 : 1;
                size_t rest = used - (size_t)(nl + 1 - buf);
                memmove(buf, nl + 1, rest);
                used = rest;
                fflush(stdout);
                return rc;
            }
            puts(start);
            start = nl + 1;
        }
        size_t rest = used - (size_t)(start - buf);
        memmove(buf, start, rest);
        used = rest;
        if (used == sizeof(buf)) { /* a line longer than the buffer: print it as it comes */
            fwrite(buf, 1, used, stdout);
            used = 0;
        }
        int left = (int)(deadline - now_ms());
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) <= 0) {
            fprintf(stderr, "pgvipctl: no answer from lbd within %d s\n", ANSWER_TIMEOUT_MS / 1000);
            return 2;
        }
        ssize_t r = recv(fd, buf + used, sizeof(buf) - used, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fprintf(stderr, "pgvipctl: lbd closed the connection before its answer ended\n");
            return 2;
        }
        used += (size_t)r;
    }
}

int main(int argc, char **argv)
{
    const char *path = getenv("PGVIPCTL_SOCKET"), *vpath = getenv("PGVIPCTL_VRRPD_SOCKET");
    bool json = false, local = false;
    int i = 1;
    if (path == NULL || path[0] == '\0')
        path = LBD_CONTROL_SOCKET;
    if (vpath == NULL || vpath[0] == '\0')
        vpath = VRRPD_CONTROL_SOCKET;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            path = argv[++i];
        else if (strcmp(argv[i], "-S") == 0 && i + 1 < argc)
            vpath = argv[++i];
        else if (strncmp(argv[i], "--socket=", 9) == 0)
            path = argv[i] + 9;
        else if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
            json = true;
        else if (strcmp(argv[i], "--local") == 0 || strcmp(argv[i], "-l") == 0)
            local = true;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    char line[4096];
    size_t len = 0;
    int first = i;
    if (i < argc) {
        len = (size_t)snprintf(line, sizeof(line), "%s%s%s", json ? "--json" : "",
                               json && local ? " " : "", local ? "--local" : "");
        for (; i < argc && len < sizeof(line); i++) {
            if (strpbrk(argv[i], " \t\n\r") || argv[i][0] == '\0') {
                fprintf(stderr, "pgvipctl: \"%s\": no spaces or empty words in a command\n",
                        argv[i]);
                return 2;
            }
            len +=
                (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", len ? " " : "", argv[i]);
        }
        if (len >= sizeof(line)) {
            fprintf(stderr, "pgvipctl: the command is too long\n");
            return 2;
        }
        /* vrrp commands are vrrpd's; the rest lbd's */
        bool vrrp = strcmp(argv[first], "vrrp") == 0;
        int fd = connect_to(vrrp ? vpath : path, vrrp ? "vrrpd" : "lbd");
        if (fd < 0)
            return 2;
        int rc = run(fd, line);
        close(fd);
        return rc;
    }
    if (isatty(0)) {
        usage(stderr);
        return 2;
    }
    int fd = connect_to(path, "lbd"), worst = 0;
    if (fd < 0)
        return 2;
    char in[4000];
    while (fgets(in, sizeof(in), stdin)) {
        in[strcspn(in, "\r\n")] = '\0';
        if (in[0] == '\0' || in[0] == '#')
            continue;
        snprintf(line, sizeof(line), "%s%s%s", json ? "--json " : "", local ? "--local " : "", in);
        int rc = run(fd, line);
        if (rc > worst)
            worst = rc;
        if (rc == 2)
            break;
    }
    close(fd);
    return worst;
}
