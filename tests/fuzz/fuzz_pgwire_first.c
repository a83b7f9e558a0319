/* fuzz_pgwire_first.c -- the client's first packet, the bytes an attacker controls
 * before anything else (lbd/pgwire.c). The parse must never read out of bounds, and its
 * verdict must be consistent: a complete packet's length fits what was given. */
#include "pgwire.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pgwire_first f;
    enum pgwire_first_kind k = pgwire_first_parse(data, size, &f);
    if (k != PGWIRE_FIRST_INCOMPLETE && k != PGWIRE_FIRST_BAD && f.len > size)
        abort();
    if (k == PGWIRE_FIRST_BAD && f.reason == NULL)
        abort();
    /* PostgreSQL's answer to it fits what lbd has for it, or is nothing. */
    uint8_t answer[256];
    size_t n = pgwire_first_answer_build(answer, sizeof(answer), &f);
    if (k == PGWIRE_FIRST_BAD && f.sqlstate != NULL && n == 0)
        abort();
    if ((k != PGWIRE_FIRST_BAD || f.sqlstate == NULL) && n != 0)
        abort();
    return 0;
}
