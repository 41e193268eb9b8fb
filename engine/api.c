/* Public API glue that does not belong to one module. */
#include "kernels.h"
#include "ulm.h"

const char *ulm_status_name(ulm_status s) {
    static const char *const names[] = {"ok", "io", "format", "checksum", "unsupported", "nomem", "arg",
                                        "context", "utf8", "constraint", "spec", "internal"};
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "unknown";
}

const char *ulm_isa_name(void) {
    const ulm_kernels *k = ulm_kernels_best();
    return k ? k->isa : "none (ULM_ISA names an ISA this CPU or build lacks)";
}
