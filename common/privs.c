/* privs.c -- dropping privileges (see privs.h). Raw syscalls, no libcap. */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int privs_become_user(const char *user, char *err, size_t errsize)
{
    if (user == NULL || user[0] == '\0' || geteuid() != 0)
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        snprintf(err, errsize, "user \"%s\" does not exist", user);
        return -ENOENT;
    }
    if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        int e = errno;
        snprintf(err, errsize, "cannot become %s: %s", user, strerror(e));
        return -e;
    }
    if (pw->pw_uid != 0 && setuid(0) == 0) {
        snprintf(err, errsize, "could regain root after becoming %s", user);
        return -EPERM;
    }
    return 0;
}

int privs_keep_net_caps(char *err, size_t errsize)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) != 0) {
        snprintf(err, errsize, "capget: %s", strerror(errno));
        return -errno;
    }
    if (!(data[0].effective & (1u << CAP_SETPCAP)))
        return 0; /* not privileged: nothing to give up */
    for (int cap = 0; cap <= 63; cap++) {
        if (cap == CAP_NET_ADMIN || cap == CAP_NET_RAW)
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
            snprintf(err, errsize, "dropping capability %d: %s", cap, strerror(errno));
            return -errno;
        }
    }
    uint32_t keep = (1u << CAP_NET_ADMIN) | (1u << CAP_NET_RAW);
    memset(data, 0, sizeof(data));
    data[0].effective = data[0].permitted = keep;
    if (syscall(SYS_capset, &hdr, data) != 0) {
        snprintf(err, errsize, "capset: %s", strerror(errno));
        return -errno;
    }
    return 0;
}
