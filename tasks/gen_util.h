/* Shared by the task data generators (tasks/<name>/gen.c): a seeded RNG that gives the same
 * numbers on every platform (integers only, no floating point), a set of 64-bit hashes for
 * train/golden disjointness, a growable string and JSON string escaping.
 * Header-only so each generator stays one C file and the tests can include it directly. */
#ifndef ULM_TASK_GEN_UTIL_H
#define ULM_TASK_GEN_UTIL_H
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: tiny, full-period, and identical everywhere. */
typedef struct { uint64_t s; } gen_rng;

static inline uint64_t gen_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The seed is scrambled first: with a plain splitmix start, seed s + 1 would replay the
 * stream of seed s shifted by one number. */
static inline void gen_rng_seed(gen_rng *r, uint64_t seed) { r->s = gen_mix64(seed ^ 0x632BE59BD9B4E019ull); }

static inline uint64_t gen_rng_next(gen_rng *r) { return gen_mix64(r->s += 0x9E3779B97F4A7C15ull); }

/* Uniform in [0, n), n > 0, without modulo bias (rejection). */
static inline uint32_t gen_rng_below(gen_rng *r, uint32_t n) {
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = gen_rng_next(r); while (x >= lim);
    return (uint32_t)(x % n);
}

/* True with probability num/den. */
static inline int gen_rng_chance(gen_rng *r, uint32_t num, uint32_t den) { return gen_rng_below(r, den) < num; }

static inline uint64_t gen_hash(const char *s, size_t n) { /* FNV-1a 64 */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

/* Open-addressing set of nonzero 64-bit hashes. */
typedef struct { uint64_t *slot; size_t cap, n; } gen_set;

static inline int gen_set_has(const gen_set *s, uint64_t h) {
    if (!s->cap) return 0;
    h |= 1;
    for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->slot[i] == h) return 1;
        if (!s->slot[i]) return 0;
    }
}

/* Returns 1 if added, 0 if present, -1 out of memory. */
static inline int gen_set_add(gen_set *s, uint64_t h) {
    if (2 * (s->n + 1) > s->cap) {
        size_t nc = s->cap ? 2 * s->cap : 1024;
        uint64_t *ns = calloc(nc, sizeof *ns);
        if (!ns) return -1;
        for (size_t i = 0; i < s->cap; i++) {
            uint64_t v = s->slot[i];
            if (!v) continue;
            size_t j = v & (nc - 1);
            while (ns[j]) j = (j + 1) & (nc - 1);
            ns[j] = v;
        }
        free(s->slot);
        s->slot = ns;
        s->cap = nc;
    }
    h |= 1;
    size_t i = h & (s->cap - 1);
    for (; s->slot[i]; i = (i + 1) & (s->cap - 1))
        if (s->slot[i] == h) return 0;
    s->slot[i] = h;
    s->n++;
    return 1;
}

static inline void gen_set_free(gen_set *s) { free(s->slot); s->slot = NULL; s->cap = s->n = 0; }

/* Growable NUL-terminated string; on allocation failure `oom` is set and appends stop. */
typedef struct { char *p; size_t n, cap; int oom; } gen_str;

static inline void gen_str_add(gen_str *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static inline void gen_str_cat(gen_str *b, const char *s) { gen_str_add(b, s, strlen(s)); }
static inline void gen_str_clear(gen_str *b) { b->n = 0; if (b->p) b->p[0] = 0; }
static inline void gen_str_free(gen_str *b) { free(b->p); memset(b, 0, sizeof *b); }

/* Appends s as a JSON string literal (quotes included). Bytes >= 0x80 pass through: the data
 * files are UTF-8 and JSON allows it raw. */
static inline void gen_str_json(gen_str *b, const char *s, size_t n) {
    gen_str_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        if (c == '"' || c == '\\') { e[0] = '\\'; e[1] = (char)c; gen_str_add(b, e, 2); }
        else if (c == '\n') gen_str_add(b, "\\n", 2);
        else if (c < 0x20) { snprintf(e, sizeof e, "\\u%04x", c); gen_str_add(b, e, 6); }
        else gen_str_add(b, (const char *)&s[i], 1);
    }
    gen_str_add(b, "\"", 1);
}

/* Reads a whole file into a NUL-terminated buffer; NULL on failure. */
static inline char *gen_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    gen_str b = {0};
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) gen_str_add(&b, buf, k);
    int bad = ferror(f) || b.oom;
    fclose(f);
    if (bad) { gen_str_free(&b); return NULL; }
    if (!b.p) gen_str_add(&b, "", 0);
    if (len) *len = b.n;
    return b.p;
}

#endif
