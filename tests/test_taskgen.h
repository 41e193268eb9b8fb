/* Shared by tests/test_taskgen_*.c: reads the generators' JSONL back, runs a generator into
 * memory. */
#ifndef ULM_TEST_TASKGEN_H
#define ULM_TEST_TASKGEN_H
#include "test_util.h"
#include "../tasks/gen_util.h"

/* ---- a JSONL reader for the generators' lines ---- */

/* Parses a JSON string literal at *p (UTF-8 output; \uXXXX below 0x80 only, as the
 * generators write). Returns a malloc'd string, advances *p; NULL when malformed. */
static inline char *json_str(const char **p) {
    const char *s = *p;
    if (*s != '"') return NULL;
    gen_str o = {0};
    gen_str_add(&o, "", 0);
    for (s++; *s != '"'; s++) {
        if (!*s) { gen_str_free(&o); return NULL; }
        char c = *s;
        if (c == '\\') {
            s++;
            if (*s == 'n') c = '\n';
            else if (*s == '"' || *s == '\\' || *s == '/') c = *s;
            else if (*s == 'u') {
                unsigned v;
                if (sscanf(s + 1, "%4x", &v) != 1 || v >= 0x80) { gen_str_free(&o); return NULL; }
                c = (char)v;
                s += 4;
            } else { gen_str_free(&o); return NULL; }
        }
        gen_str_add(&o, &c, 1);
    }
    *p = s + 1;
    return o.p;
}

typedef struct { char *in, *out; } pair_t;
typedef struct { pair_t *v; int n; } pairs_t;

static inline void pairs_free(pairs_t *ps) {
    for (int i = 0; i < ps->n; i++) free(ps->v[i].in), free(ps->v[i].out);
    free(ps->v);
    ps->v = NULL;
    ps->n = 0;
}

/* Parses JSONL text of {"input": "...", "output": "..."} lines. */
static inline pairs_t parse_jsonl(const char *text) {
    pairs_t ps = {0};
    int cap = 0;
    for (const char *p = text; *p;) {
        const char *q = p;
        assert_true(!strncmp(q, "{\"input\": ", 10));
        q += 10;
        char *in = json_str(&q);
        assert_non_null(in);
        assert_true(!strncmp(q, ", \"output\": ", 12));
        q += 12;
        char *out = json_str(&q);
        assert_non_null(out);
        assert_true(!strncmp(q, "}\n", 2));
        p = q + 2;
        if (ps.n == cap) {
            cap = cap ? 2 * cap : 1024;
            ps.v = realloc(ps.v, (size_t)cap * sizeof *ps.v);
            assert_non_null(ps.v);
        }
        ps.v[ps.n++] = (pair_t){in, out};
    }
    return ps;
}

/* Runs a generator into memory. */
#define CAPTURE(buf, len, call)                          \
    do {                                                 \
        FILE *mem_ = open_memstream(&(buf), &(len));     \
        assert_non_null(mem_);                           \
        assert_int_equal((call), 0);                     \
        assert_int_equal(fclose(mem_), 0);               \
    } while (0)
#define MEM mem_

static inline char *read_text(const char *path, size_t *len) {
    char *t = gen_read_file(path, len);
    if (!t) fail_msg("cannot read %s", path);
    return t;
}

#endif
