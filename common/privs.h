/* privs.h -- least privilege after start-up: lbd becomes an unprivileged user once its
 * sockets are bound; vrrpd keeps only the capabilities its work needs. */
#ifndef COMMON_PRIVS_H
#define COMMON_PRIVS_H

#include <stddef.h>

/* As root: switch to user (its primary group, no supplementary groups). Returns 0, or
 * -errno with err saying why. Not root: 0 and nothing changes. */
int privs_become_user(const char *user, char *err, size_t errsize);

/* Keep only CAP_NET_ADMIN and CAP_NET_RAW: drop every other capability from the
 * bounding set and shrink the effective, permitted and inheritable sets to those two.
 * Returns 0 or -errno. Without CAP_SETPCAP (not root) it does nothing and returns 0. */
int privs_keep_net_caps(char *err, size_t errsize);

#endif
