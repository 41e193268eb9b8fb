/* Small helpers for parsing command-line values with one-line errors. */
#ifndef ULM_ARGS_H
#define ULM_ARGS_H
#include <stdint.h>

/* Each returns 0 on success, else prints "ulm: FLAG: ..." to stderr and returns -1. */
int arg_int(const char *flag, const char *s, long min, long max, int *out);
int arg_u64(const char *flag, const char *s, uint64_t *out);
int arg_float(const char *flag, const char *s, float min, float max, float *out);
/* Value of a flag that takes one: checks argv[i+1] exists and advances i. NULL on error. */
const char *arg_value(int argc, char **argv, int *i);
/* Reads a whole file (NUL-terminated); NULL with an error printed. */
char *read_file(const char *path, size_t *len);
#endif
