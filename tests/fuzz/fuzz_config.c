/* fuzz_config.c -- the configuration loaders (common/cfg.c, lbd_config.c,
 * vrrpd_config.c) and both operator state files (lbd/opstate.c, vrrpd_opstate.c): any
 * text gives a config or one error naming a place; a state file that parses is written
 * back by its daemon to the same state. */
#include "lbd_config.h"
#include "opstate.h"
#include "vrrpd_config.h"
#include "vrrpd_opstate.h"

#include <stdlib.h>
#include <string.h>

static struct lbd_config lc;
static struct vrrpd_config vc;
static struct opstate os, os2;
static struct vrrpd_opstate vs, vs2;
static char out[1 << 16];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char err[1024];
    err[0] = '\0';
    if (lbd_config_load_string("f.yaml", text, &lc, err, sizeof(err)) != 0 &&
        strncmp(err, "f.yaml", 6) != 0)
        abort();
    err[0] = '\0';
    if (vrrpd_config_load_string("f.yaml", text, &vc, err, sizeof(err)) != 0 &&
        strncmp(err, "f.yaml", 6) != 0)
        abort();
    err[0] = '\0';
    if (opstate_parse("f.yaml", text, &os, err, sizeof(err)) != 0) {
        if (strncmp(err, "f.yaml", 6) != 0)
            abort();
    } else if (opstate_render(&os, out, sizeof(out)) >= sizeof(out) ||
               opstate_parse("g.yaml", out, &os2, err, sizeof(err)) != 0 || os2.n != os.n) {
        abort();
    } else {
        for (size_t i = 0; i < os.n; i++)
            if (strcmp(os.nodes[i].name, os2.nodes[i].name) != 0 ||
                os.nodes[i].admin != os2.nodes[i].admin ||
                os.nodes[i].weight_set != os2.nodes[i].weight_set ||
                os.nodes[i].weight != os2.nodes[i].weight ||
                os.nodes[i].file_weight != os2.nodes[i].file_weight)
                abort();
    }
    err[0] = '\0';
    if (vrrpd_opstate_parse("f.yaml", text, &vs, err, sizeof(err)) != 0) {
        if (strncmp(err, "f.yaml", 6) != 0)
            abort();
    } else if (vrrpd_opstate_render(&vs, out, sizeof(out)) >= sizeof(out) ||
               vrrpd_opstate_parse("g.yaml", out, &vs2, err, sizeof(err)) != 0 || vs2.n != vs.n ||
               memcmp(vs.groups, vs2.groups, sizeof(vs.groups[0]) * vs.n) != 0) {
        abort();
    }
    free(text);
    return 0;
}
