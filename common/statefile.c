/* statefile.c -- see statefile.h. */
#include "statefile.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATEFILE_MAX (1 << 20)

static void dir_of(const char *path, char *dir, size_t size)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", path);
    snprintf(dir, size, "%s", dirname(tmp));
}

int statefile_prepare(const char *path, const char *user, char *err, size_t errsize)
{
    char dir[512];
    dir_of(path, dir, sizeof(dir));
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errsize, "%s is not a directory", dir);
            return -ENOTDIR;
        }
        return 0;
    }
    int e = errno;
    /* Its missing parents as mkdir -p makes them (root's, 0755), then the directory. */
    for (char *p = strchr(dir + 1, '/'); e == ENOENT && p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            e = errno;
        *p = '/';
    }
    if (e == ENOENT && mkdir(dir, 0755) != 0) {
        e = errno;
        /* (made meanwhile by the other daemon, whose state file shares a parent) */
        if (e == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
    } else if (e == ENOENT) {
        e = 0;
    }
    if (e != 0) {
        snprintf(err, errsize, "cannot make the directory %s: %s", dir, strerror(e));
        return -e;
    }
    if (user[0] && geteuid() == 0) {
        struct passwd *pw = getpwnam(user);
        if (pw == NULL || chown(dir, pw->pw_uid, pw->pw_gid) != 0) {
            e = pw ? errno : ENOENT;
            snprintf(err, errsize, "cannot give the directory %s to user %s: %s", dir, user,
                     strerror(e));
            return -e;
        }
    }
    return 0;
}

int statefile_read(const char *path, char **text, char *err, size_t errsize)
{
    *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        int e = errno;
        snprintf(err, errsize, "cannot open %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > STATEFILE_MAX) {
        close(fd);
        snprintf(err, errsize, "%s is not a regular file of at most 1 MiB", path);
        return -EINVAL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (buf == NULL || got != (size_t)st.st_size) {
        free(buf);
        snprintf(err, errsize, "cannot read %s", path);
        return -EIO;
    }
    buf[got] = '\0';
    *text = buf;
    return 0;
}

int statefile_load(const char *path, const char *user, const char *key, const char *without,
                   int (*parse)(const char *name, const char *text, void *st, char *err,
                                size_t errsize),
                   void *st)
{
    char err[1024], q[1100];
    int rc = statefile_prepare(path, user, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", key, err);
        return rc;
    }
    char *text = NULL;
    rc = statefile_read(path, &text, err, sizeof(err));
    if (rc == 1) {
        log_emit(LOG_INFO, "state_file", "file=%s detail=\"none yet: %s\"", path, without);
        return 1;
    }
    if (rc == 0)
        rc = parse(path, text, st, err, sizeof(err));
    free(text);
    if (rc == 0)
        return 0;
    char *nl = strchr(err, '\n'); /* (the first error; the rest are like it) */
    if (nl)
        *nl = '\0';
    log_emit(LOG_ERROR, "state_file_invalid", "file=%s error=%s detail=\"ignored: %s\"", path,
             log_quote(q, sizeof(q), err), without);
    return 1;
}

int statefile_write(const char *path, const char *text, size_t len, char *err, size_t errsize)
{
    char tmp[512];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        snprintf(err, errsize, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
    int e = 0;
    if (fd < 0) {
        e = errno;
    } else {
        size_t done = 0;
        while (done < len && e == 0) {
            ssize_t w = write(fd, text + done, len - done);
            if (w < 0 && errno != EINTR)
                e = errno;
            else if (w > 0)
                done += (size_t)w;
        }
        if (e == 0 && fdatasync(fd) != 0)
            e = errno;
        if (close(fd) != 0 && e == 0)
            e = errno;
        if (e == 0 && rename(tmp, path) != 0)
            e = errno;
        if (e != 0)
            unlink(tmp);
    }
    if (e != 0) {
        snprintf(err, errsize, "cannot write %s: %s", fd < 0 ? tmp : path, strerror(e));
        return -e;
    }
    return 0;
}
