/* fuzz_pgwire_check.c -- a node's answer to a startup: the health check's reading, and
 * the trusted-answer parser and builder reuse depends on, and the reset answer
 * (lbd/pgwire.c). */
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
        __builtin_trap(); /* session_start.c rewrites the key at key_off and trusts len */
    if (pgwire_reply_parse(data, size, &r) == PGWIRE_REPLY_TRUSTED) {
        /* What reuse replays: the same parameters, pid and a new key parse back alike. */
        static uint8_t params[PGWIRE_REPLY_MAX], built[PGWIRE_REPLY_MAX + PGWIRE_TRUSTED_FIXED];
        struct pgwire_reply r2;
        size_t plen = pgwire_reply_params(data, &r, params);
        size_t n = pgwire_trusted_build(built, sizeof(built), params, plen, r.pid, r.key + 1);
        if (n == 0 || pgwire_reply_parse(built, n, &r2) != PGWIRE_REPLY_TRUSTED || r2.len != n ||
            r2.pid != r.pid || r2.key != r.key + 1 || pgwire_reply_params(built, &r2, NULL) != plen)
            __builtin_trap();
    }
    (void)pgwire_reset_answer(data, size);
    return 0;
}
