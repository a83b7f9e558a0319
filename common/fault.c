/* fault.c -- see fault.h. */
#include "fault.h"

#ifdef PGVIP_FAULT_INJECTION
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAULT_MAX 8

static struct {
    char name[32];
    unsigned long left;
} points[FAULT_MAX];
static int n_points = -1; /* -1: PGVIP_FAULTS not read yet */

static void faults_read(void)
{
    n_points = 0;
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
    if (n_points < 0)
        faults_read();
    for (int i = 0; i < n_points; i++) {
        if (strcmp(points[i].name, name) == 0 && points[i].left > 0) {
            points[i].left--;
            return true;
        }
    }
    return false;
}
#else
typedef int fault_unused; /* (ISO C wants something in a translation unit) */
#endif
