/* fuzz_pgwire_check.c -- a node's answer to the health check's startup (lbd/pgwire.c). */
#include "pgwire.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pgwire_check c;
    pgwire_check_parse(data, size, &c);
    if (strlen(c.sqlstate) >= sizeof(c.sqlstate) || strlen(c.message) >= sizeof(c.message))
        __builtin_trap();
    return 0;
}
