/* fuzz_config.c -- the configuration loaders (common/cfg.c, lbd_config.c,
 * vrrpd_config.c): any text gives a config or one error naming a place. */
#include "lbd_config.h"
#include "vrrpd_config.h"

#include <stdlib.h>
#include <string.h>

static struct lbd_config lc;
static struct vrrpd_config vc;

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
    free(text);
    return 0;
}
