/* fuzz_pgwire_check.c -- a node's answer to a startup: the health check's reading, and
 * the trusted-answer parser reuse depends on (lbd/pgwire.c). */
#include "pgwire.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pgwire_check c;
    pgwire_check_parse(data, size, &c);
    if (strlen(c.sqlstate) >= sizeof(c.sqlstate) || strlen(c.message) >= sizeof(c.message))
        __builtin_trap();
    struct pgwire_reply r;
    if (pgwire_reply_parse(data, size, &r) == PGWIRE_REPLY_TRUSTED &&
        (r.len > size || r.len < 15 || r.key_off + 13 > r.len || data[r.key_off] != 'K' ||
         data[r.len - 6] != 'Z'))
        __builtin_trap(); /* session.c rewrites the key at key_off and trusts len */
    return 0;
}
