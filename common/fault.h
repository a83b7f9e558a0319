/* fault.h -- failure points for tests, in the spirit of PostgreSQL's injection points.
 *
 * A path that can fail in ways a test cannot cause from outside (an allocation while
 * accepting) asks fault_hit("name") first. Started with PGVIP_FAULTS="name=N[,name=N]"
 * in its environment, a daemon fails the first N hits of each named point; without it,
 * nothing fails. Compiled in only with PGVIP_FAULT_INJECTION (the default when the tests
 * are built); otherwise fault_hit() is a constant false and costs nothing. */
#ifndef COMMON_FAULT_H
#define COMMON_FAULT_H

#include <stdbool.h>

#ifdef PGVIP_FAULT_INJECTION
bool fault_hit(const char *name);
#else
static inline bool fault_hit(const char *name)
{
    (void)name;
    return false;
}
#endif

#endif
