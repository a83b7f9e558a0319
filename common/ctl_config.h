/* ctl_config.h -- the `control:` section both daemons share (lbd.control, vrrp.control):
 * where the control socket is, who may connect and who may change things; and opening
 * the socket from it (ctl.h), with the same rules in both daemons. */
#ifndef COMMON_CTL_CONFIG_H
#define COMMON_CTL_CONFIG_H

#include "cfg.h"
#include "ctl.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct ctl_config {
    char socket[108]; /* "" = off */
    bool socket_set;  /* named in the file (else the default, used only if it can be) */
    uint32_t mode;
    char group[64];       /* the socket's group; "" = root's */
    char operators[64];   /* a group whose members may change things; "" = none */
    char state_file[256]; /* what operators changed, kept across a restart; "" = off */
};

/* Defaults: socket at path, mode 0660, no groups. */
void ctl_config_defaults(struct ctl_config *c, const char *path);
bool ctl_config_equal(const struct ctl_config *a, const struct ctl_config *b);
/* A cfg_field handler for the section: base is the struct that holds a struct ctl_config
 * at the offset the field's .off gives (use CTL_CONFIG_FIELD). Checks that the groups
 * exist. */
int ctl_config_parse(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base);
extern const struct cfg_field ctl_config_fields[];
#define CTL_CONFIG_FIELD(key, offset, what)                                                        \
    {                                                                                              \
        key, CFG_CUSTOM, offset, .custom = ctl_config_parse, .type_doc = "section",                \
                                 .sub = ctl_config_fields, .doc = what                             \
    }

/* Open the socket the section names, for daemon ("lbd", "vrrpd"). Who may change things
 * afterwards: root, the user the daemon was started as (*owner_uid) and the operators'
 * group (*operators_gid, (gid_t)-1: none). With the default path, a missing directory or
 * another daemon answering there is logged and the daemon runs without one (returns 0,
 * *open false); a path set in the file must work (returns -errno, a line on stderr). */
int ctl_config_open(struct ctl *c, uv_loop_t *loop, const struct ctl_config *cfg,
                    const char *daemon, ctl_handler handler, void *ctx, uid_t *owner_uid,
                    gid_t *operators_gid, bool *open);

#endif
