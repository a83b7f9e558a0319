/* statefile.h -- a small file a daemon rewrites whole: what operators changed with
 * pgvipctl (lbd.control.state_file, vrrp.control.state_file), kept across a restart.
 *
 * A write goes to PATH.tmp, is synced and renamed over PATH, so a crash or a full disk
 * leaves the previous file or the new one, never a part of one. The daemon writes after
 * it has given up root (lbd runs as lbd.user), so the file's directory must be that
 * user's to write: statefile_prepare, called while still root, makes it when missing. */
#ifndef COMMON_STATEFILE_H
#define COMMON_STATEFILE_H

#include <stddef.h>

/* As root, before giving up privileges: the directory of path exists (made 0755 and
 * given to user when missing, with its missing parents as mkdir -p makes them, root's
 * and 0755 too, so that the other daemon's user can reach its own directory beside;
 * user "" or not root: made as is). 0, or -errno with err saying why. */
int statefile_prepare(const char *path, const char *user, char *err, size_t errsize);
/* The whole file, NUL-terminated, in *text (free it): 0; 1 when there is none yet
 * (*text NULL); -errno with err saying why (unreadable, larger than 1 MiB). */
int statefile_read(const char *path, char **text, char *err, size_t errsize);
/* At a daemon's start, the steps above in one: the directory prepared for user, the file
 * read and parsed into st by parse. 0: st holds state to apply; 1: nothing to apply (no
 * file yet, or one that cannot be read or parsed: logged, first error with its
 * file:line:column, "ignored: " and without, what the daemon starts from instead);
 * -errno: the directory cannot be made (a line on stderr after key: "lbd:
 * lbd.control.state_file"). */
int statefile_load(const char *path, const char *user, const char *key, const char *without,
                   int (*parse)(const char *name, const char *text, void *st, char *err,
                                size_t errsize),
                   void *st);
/* Replace path with text[0..len): 0, or -errno with err saying why. */
int statefile_write(const char *path, const char *text, size_t len, char *err, size_t errsize);

#endif
