/* vrrpd_state.h -- what lbd's status page needs from vrrpd's state file (vrrpd rewrites
 * it as JSON every 500 ms), read with a real parser: libyaml's, since JSON is YAML's flow
 * style (the same parser as the configuration). Pure: text in, fields out. */
#ifndef LBD_VRRPD_STATE_H
#define LBD_VRRPD_STATE_H

#include <stdbool.h>
#include <stddef.h>

struct vrrpd_state_info {
    long long updated_ms; /* wall clock of the write */
    long long pid;
    bool running; /* false: vrrpd is stopping (it wrote this on its way out) */
};

/* 0 with info filled, or -1 with why saying what is wrong (not JSON, not vrrpd's, a field
 * missing). name: the file's path, for the message. */
int vrrpd_state_parse(const char *name, const char *text, struct vrrpd_state_info *info, char *why,
                      size_t size);

#endif
