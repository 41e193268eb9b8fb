/* Shared helpers for the cmocka tests: paths to ../shared fixtures and temp files, reading a file. */
#ifndef ULM_TEST_UTIL_H
#define ULM_TEST_UTIL_H
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Root of ../shared (override with ULM_SHARED). Tests that need it call skip() when absent. */
static inline const char *test_shared_dir(void) {
    const char *d = getenv("ULM_SHARED");
    return d ? d : "../shared";
}

/* Fills buf with ../shared/<rel>; returns 0 if the file exists. */
static inline int test_shared_path(char *buf, size_t n, const char *rel) {
    snprintf(buf, n, "%s/%s", test_shared_dir(), rel);
    return access(buf, R_OK) == 0 ? 0 : -1;
}

#define SKIP_WITHOUT_SHARED(buf, rel)                                                   \
    do {                                                                                \
        if (test_shared_path(buf, sizeof(buf), rel) != 0) {                             \
            print_message("skipped: %s not found (../shared is absent)\n", buf);        \
            skip();                                                                     \
        }                                                                               \
    } while (0)

/* A unique temp path under $TMPDIR (or /tmp) for this test process. */
static inline void test_tmp_path(char *buf, size_t n, const char *name) {
    const char *t = getenv("TMPDIR");
    snprintf(buf, n, "%s/ulm-test-%d-%s", t ? t : "/tmp", (int)getpid(), name);
}

/* The whole file at path, NUL-terminated, its length in *len (may be NULL); NULL when it
 * cannot be read. The caller frees it. */
static inline char *test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)n + 1)) != NULL) {
        if (fread(s, 1, (size_t)n, f) != (size_t)n) free(s), s = NULL;
        else s[n] = 0;
    }
    fclose(f);
    if (s && len) *len = (size_t)n;
    return s;
}

#endif
