/* The readers' common first step: map a whole regular file read-only. */
#ifndef ULM_MAPPED_FILE_H
#define ULM_MAPPED_FILE_H
#include <stdint.h>
#include "ulm.h"

/* Maps path; a file shorter than min_size is reported as a truncated `what` (".ulm", "GGUF"). */
ulm_status map_file(const char *path, uint64_t min_size, const char *what, const void **base, uint64_t *size,
                    ulm_error *err);
void unmap_file(const void *base, uint64_t size);
/* Prefixes err->msg with "path: " (parsers report problems without knowing the path). */
void error_prefix_path(ulm_error *err, const char *path);

#endif
