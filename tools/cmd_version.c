#include <stdio.h>
#include "cli.h"
#include "ulm.h"

int cmd_version(int argc, char **argv) {
    printf("ulm %s (kernels: %s)\n", ULM_VERSION, ulm_isa_name());
    return 0;
}
