/* vrrpd_opstate.c -- vrrpd's operator state file (see vrrpd_opstate.h). One line a group
 * with an operator's priority:
 *
 *   groups:
 *     - {vrid: 51, priority: 1}
 */
#include "vrrpd_opstate.h"

#include "cfg.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define GOFF(f) offsetof(struct vrrpd_opstate_group, f)

static const struct cfg_field group_fields[] = {
    {"vrid", CFG_UINT, GOFF(vrid), .min = 1, .max = 255, .required = true,
     .doc = "The group (vrrp.groups[].vrid)."},
    {"priority", CFG_UINT, GOFF(priority), .min = 1, .max = 254, .required = true,
     .doc = "The operator's priority (1: resigned)."},
    {NULL},
};

static int check_group(struct cfg_doc *d, yaml_node_t *item, const char *sub, size_t i, void *ctx)
{
    struct vrrpd_opstate *s = ctx;
    for (size_t j = 0; j < i; j++)
        if (s->groups[j].vrid == s->groups[i].vrid)
            return cfg_error(d, item, sub, "vrid %u is listed twice", s->groups[i].vrid);
    return 0;
}

static int parse_groups(struct cfg_doc *d, yaml_node_t *n, const char *path, void *base)
{
    struct vrrpd_opstate *s = base;
    static const struct vrrpd_opstate_group none;
    const struct cfg_list l = {.max = VRRPD_MAX_GROUPS,
                               .what = "groups",
                               .one = "group",
                               .fields = group_fields,
                               .items = s->groups,
                               .item_size = sizeof(s->groups[0]),
                               .defaults = &none,
                               .check = check_group,
                               .ctx = s};
    return cfg_list_apply(d, n, path, &l, &s->n);
}

static const struct cfg_field top_fields[] = {
    {"groups", CFG_CUSTOM, 0, .custom = parse_groups, .type_doc = "list of mappings", .list = true,
     .sub = group_fields, .doc = "The groups with an operator's priority."},
    {NULL},
};

static void set_defaults(void *base)
{
    memset(base, 0, sizeof(struct vrrpd_opstate));
}

int vrrpd_opstate_parse(const char *name, const char *text, struct vrrpd_opstate *s, char *err,
                        size_t errsize)
{
    static const struct cfg_loader ld = {.top = top_fields, .set_defaults = set_defaults};
    return cfg_load(&ld, name, text, s, err, errsize);
}

size_t vrrpd_opstate_render(const struct vrrpd_opstate *s, char *buf, size_t size)
{
    size_t len = 0;
    int k = snprintf(buf, size,
                     "# vrrpd's operator state (vrrp.control.state_file): the priorities pgvipctl\n"
                     "# set (1: resigned), kept across a restart. vrrpd rewrites it on every\n"
                     "# change; use pgvipctl vrrp.\ngroups:%s\n",
                     s->n ? "" : " []");
    len += k > 0 ? (size_t)k : 0;
    for (size_t i = 0; i < s->n; i++) {
        k = snprintf(buf + (len < size ? len : size), len < size ? size - len : 0,
                     "  - {vrid: %u, priority: %u}\n", s->groups[i].vrid, s->groups[i].priority);
        len += k > 0 ? (size_t)k : 0;
    }
    return len;
}
