/* sdnotify.h -- the systemd notify protocol (one datagram to $NOTIFY_SOCKET), so units
 * can be Type=notify: READY=1 when the daemon serves, RELOADING=1, STOPPING=1. Without
 * NOTIFY_SOCKET it does nothing. */
#ifndef COMMON_SDNOTIFY_H
#define COMMON_SDNOTIFY_H

/* state: e.g. "READY=1\nSTATUS=serving". Returns 0, or -errno when a send failed. */
int sdnotify(const char *state);

#endif
