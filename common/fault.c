/* fault.c -- see fault.h. */
#include "fault.h"

#ifdef PGVIP_FAULT_INJECTION
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAULT_MAX 8

/* Read once (pthread_once), counted down atomically: lbd's workers hit points from
 * several threads. */
static struct {
    char name[32];
    unsigned long left;
} points[FAULT_MAX];
static int n_points;
static pthread_once_t read_once = PTHREAD_ONCE_INIT;

static void faults_read(void)
{
    const char *spec = getenv("PGVIP_FAULTS");
    while (spec && *spec && n_points < FAULT_MAX) {
        const char *eq = strchr(spec, '='), *end = strchr(spec, ',');
        if (end == NULL)
            end = spec + strlen(spec);
        if (eq && eq < end && (size_t)(eq - spec) < sizeof(points[0].name)) {
            memcpy(points[n_points].name, spec, (size_t)(eq - spec));
            points[n_points].name[eq - spec] = '\0';
            points[n_points].left = strtoul(eq + 1, NULL, 10);
            n_points++;
        }
        spec = *end ? end + 1 : end;
    }
}

bool fault_hit(const char *name)
{
    pthread_once(&read_once, faults_read);
    for (int i = 0; i < n_points; i++) {
        if (strcmp(points[i].name, name) != 0)
            continue;
        unsigned long left = __atomic_load_n(&points[i].left, __ATOMIC_RELAXED);
        while (left > 0)
            if (__atomic_compare_exchange_n(&points[i].left, &left, left - 1, false,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                return true;
        return false;
    }
    return false;
}
#else
typedef int fault_unused; /* (ISO C wants something in a translation unit) */
#endif
