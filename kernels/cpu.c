/* ISA detection and kernel table selection. */
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

static const ulm_kernels *const all_tables[] = {&ulm_kernels_scalar};

const ulm_kernels *ulm_kernels_by_name(const char *isa) {
    for (size_t i = 0; i < sizeof all_tables / sizeof *all_tables; i++)
        if (all_tables[i] && strcmp(all_tables[i]->isa, isa) == 0) return all_tables[i];
    return NULL;
}

const ulm_kernels *ulm_kernels_best(void) {
    const char *force = getenv("ULM_ISA");
    if (force && *force) return ulm_kernels_by_name(force);
    return &ulm_kernels_scalar;
}
