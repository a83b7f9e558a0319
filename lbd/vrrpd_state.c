/* vrrpd_state.c -- vrrpd's state file, parsed (see vrrpd_state.h). */
#include "vrrpd_state.h"

#include "cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool number(struct cfg_doc *d, yaml_node_t *root, const char *key, long long *out)
{
    const char *v = cfg_scalar(cfg_map_get(d, root, key));
    char *end;
    if (v == NULL || *v == '\0')
        return false;
    errno = 0;
    *out = strtoll(v, &end, 10);
    return errno == 0 && *end == '\0';
}

int vrrpd_state_parse(const char *name, const char *text, struct vrrpd_state_info *info, char *why,
                      size_t size)
{
    struct cfg_doc d;
    memset(info, 0, sizeof(*info));
    if (cfg_doc_load_string(&d, name, text) != 0) {
        snprintf(why, size, "state file %s is not JSON: %s", name, d.err);
        return -1;
    }
    yaml_node_t *root = cfg_doc_root(&d);
    const char *daemon = root && root->type == YAML_MAPPING_NODE
                             ? cfg_scalar(cfg_map_get(&d, root, "daemon"))
                             : NULL;
    const char *running = daemon ? cfg_scalar(cfg_map_get(&d, root, "running")) : NULL;
    int rc = -1;
    if (daemon == NULL || strcmp(daemon, "vrrpd") != 0)
        snprintf(why, size, "state file %s is not vrrpd's (no \"daemon\":\"vrrpd\")", name);
    else if (!number(&d, root, "updated_ms", &info->updated_ms) ||
             !number(&d, root, "pid", &info->pid) || running == NULL ||
             (strcmp(running, "true") != 0 && strcmp(running, "false") != 0))
        snprintf(why, size, "state file %s lacks updated_ms, pid or running", name);
    else
        rc = 0;
    if (rc == 0)
        info->running = strcmp(running, "true") == 0;
    cfg_doc_free(&d);
    return rc;
}
