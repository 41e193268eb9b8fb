/* Shared by the fuzz targets, tests/fuzz/fuzz_<name>.c. Each defines
 *     int fuzz_<name>(const uint8_t *data, size_t size);
 * which must neither crash, leak nor read out of bounds on any input, and aborts through
 * FUZZ_CHECK where a property it checks does not hold. Each file is built two ways:
 *   - make fuzz: with clang's libFuzzer under ASan + UBSan (FUZZ_LIBFUZZER defines the entry
 *     point), run from the repository root for FUZZ_SECONDS each (tests/fuzz/run.sh);
 *   - tests/test_fuzz_corpus.c includes them all and replays tests/fuzz/corpus/<name>/ in
 *     make test (and so under make asan and qemu): seeds and every input a fuzzer once broke.
 * Fixed resources (a task model for its vocabulary) are read from the repository by relative
 * path, so both run from its root. */
#ifndef ULM_FUZZ_H
#define ULM_FUZZ_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "cli.h"
#include "ulm.h"
#include "ulm_file.h"
#include "convert.h"

#define FUZZ_CHECK(c)                                                                   \
    do {                                                                                \
        if (!(c)) {                                                                     \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #c);  \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* The input as a file, for the APIs that take a path: an anonymous memory file
 * (/proc/self/fd/N) where the kernel has memfd_create, else a temp file. Returns the fd to
 * close (and fuzz_file_done to call), or -1. */
static inline int fuzz_file(const uint8_t *data, size_t size, char *path, size_t cap) {
    int fd = memfd_create("ulm-fuzz", 0);
    if (fd >= 0) snprintf(path, cap, "/proc/self/fd/%d", fd);
    else {
        const char *t = getenv("TMPDIR");
        snprintf(path, cap, "%s/ulm-fuzz-%d.bin", t ? t : "/tmp", (int)getpid());
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) return -1;
    }
    for (size_t off = 0; off < size;) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) { close(fd); return -1; }
        off += (size_t)n;
    }
    return fd;
}
static inline void fuzz_file_done(int fd, const char *path) {
    close(fd);
    if (strncmp(path, "/proc/", 6) != 0) unlink(path);
}

/* A scratch path for outputs (writers that rename a temp file into place). */
static inline void fuzz_out_path(char *path, size_t cap, const char *name) {
    const char *t = getenv("TMPDIR");
    if (!t) t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, cap, "%s/ulm-fuzz-%d-%s", t, (int)getpid(), name);
}

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF):
 * the harnesses' own check, independent of the engine's. */
static inline int fuzz_utf8_valid(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!k || i + k > n) return 0;
        uint32_t cp = k == 1 ? c : k == 2 ? c & 0x1F : k == 3 ? c & 0x0F : c & 0x07;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k;
    }
    return 1;
}

/* ulm mkmodel's tiny preset (random q4 weights, a SentencePiece-style vocabulary of 512 with
 * byte fallback), written once to a temp file and loaded: a fast model for the targets that
 * run one. Kept for the life of the process. */
static inline ulm_model *fuzz_tiny_model(void) {
    static ulm_model *m;
    if (m) return m;
    char path[256];
    fuzz_out_path(path, sizeof path, "tiny.ulm");
    char *argv[] = {"mkmodel", "--preset", "tiny", "--type", "q4", "-o", path, NULL};
    int saved = dup(2), null = open("/dev/null", O_WRONLY); /* mkmodel's "wrote" line */
    if (null >= 0) dup2(null, 2);
    int rc = cmd_mkmodel(7, argv);
    if (saved >= 0) dup2(saved, 2), close(saved);
    if (null >= 0) close(null);
    ulm_error err;
    FUZZ_CHECK(rc == 0 && ulm_model_load(path, &m, &err) == ULM_OK);
    unlink(path);
    return m;
}

/* A quiet converter to target (cv.w NULL when out of memory), and its release. */
static inline converter fuzz_converter(int target) {
    converter cv;
    memset(&cv, 0, sizeof cv);
    cv.w = ulmw_new();
    cv.target = target;
    cv.quiet = 1;
    return cv;
}
static inline void fuzz_converter_done(converter *cv) {
    conv_release(cv);
    ulmw_free(cv->w);
}

/* A converter's result written as a .ulm, loaded and run for three tokens: what converts must
 * load or be refused with an error, never be misread (fuzz_gguf, fuzz_hf, fuzz_llama2c). */
static inline void fuzz_write_load_run(ulmw *w, const char *name) {
    char out[256];
    ulm_error err;
    fuzz_out_path(out, sizeof out, name);
    if (ulmw_write(w, out, &err) != ULM_OK) return;
    ulm_model *m = NULL;
    if (ulm_model_load(out, &m, &err) == ULM_OK) {
        ulm_ctx_params p = {.n_ctx = 8, .n_threads = 1};
        ulm_ctx *c = NULL;
        int32_t ids[3] = {0, 1, 2};
        ulm_model_info info;
        ulm_model_get_info(m, &info);
        if (info.n_vocab >= 3 && ulm_ctx_new(m, &p, &c, &err) == ULM_OK) {
            ulm_ctx_eval(c, ids, 3, NULL, 0, &err);
            ulm_ctx_free(c);
        }
        ulm_model_free(m);
    }
    unlink(out);
}

#ifdef FUZZ_LIBFUZZER
#define FUZZ_ENTRY(fn) \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fn(data, size); }
#else
#define FUZZ_ENTRY(fn)
#endif

#endif
