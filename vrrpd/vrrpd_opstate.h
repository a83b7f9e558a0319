/* vrrpd_opstate.h -- what operators changed on vrrpd's groups with pgvipctl (an
 * operator's priority: `vrrp priority`, or 1 after `vrrp resign`), as
 * vrrp.control.state_file keeps it across a restart: rendered to and parsed from a small
 * YAML file. Pure: vrrpd_control.c takes it from the groups and gives it back. */
#ifndef VRRPD_OPSTATE_H
#define VRRPD_OPSTATE_H

#include "vrrpd_config.h"

#include <stddef.h>
#include <stdint.h>

struct vrrpd_opstate_group {
    uint32_t vrid;
    uint32_t priority; /* the operator's (1-254) */
};

struct vrrpd_opstate {
    size_t n;
    struct vrrpd_opstate_group groups[VRRPD_MAX_GROUPS];
};

/* The file's text (NUL-terminated) into buf: its length, or >= size when it did not fit. */
size_t vrrpd_opstate_render(const struct vrrpd_opstate *s, char *buf, size_t size);
/* Parse a file's text (name: for errors): 0, or nonzero with every error in err, one a
 * line, each with name:line:column. */
int vrrpd_opstate_parse(const char *name, const char *text, struct vrrpd_opstate *s, char *err,
                        size_t errsize);

#endif
