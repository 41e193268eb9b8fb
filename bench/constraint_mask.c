/* Cost of constrained decoding per step on a 262,144-token synthetic vocabulary.
 *
 *   make bench-constraint && build/bench_constraint [n_vocab] [steps]
 *
 * For each constraint, runs random decoding (a uniformly random allowed token per step) twice:
 * cold (fresh automaton: every DFA state's mask is a trie walk) and warm (same constraint
 * again: masks come from the per-state cache, as on a task's second input), and reports the
 * time per step of cons_allowed + cons_advance + applying the mask to a logits row. The
 * model's own decode step is not included; compare with `ulm bench` / `ulm run` timings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include "constraint.h"
#include "json.h"

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (uint32_t)(rs >> 11);
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* BPE-like pieces: all bytes, then words with or without a leading space, digit runs,
 * punctuation runs (JSON-ish), and multi-byte UTF-8. */
static void make_vocab(int n, char ***pieces_out, uint32_t **lens_out) {
    char **p = malloc((size_t)n * sizeof *p);
    uint32_t *l = malloc((size_t)n * sizeof *l);
    static const char punct[] = "{}[]\":,.!?-_()'/\\";
    static const char *const utf[] = {"\xc3\xa9", "\xe6\x97\xa5", "\xd0\xb4", "\xe2\x80\x94", "\xf0\x9f\x98\x80"};
    p[0] = calloc(1, 1);
    l[0] = 0; /* EOS */
    for (int b = 0; b < 256; b++) {
        p[1 + b] = malloc(2);
        p[1 + b][0] = (char)b;
        l[1 + b] = 1;
    }
    for (int i = 257; i < n; i++) {
        char buf[64];
        int k = 0, kind = (int)(rnd() % 100);
        if (kind < 70) {
            if (rnd() % 2) buf[k++] = ' ';
            int len = 1 + (int)(rnd() % 10);
            if (rnd() % 8 == 0) buf[k++] = (char)('A' + rnd() % 26), len--;
            for (int j = 0; j < len; j++) buf[k++] = (char)('a' + rnd() % 26);
        } else if (kind < 80) {
            int len = 1 + (int)(rnd() % 4);
            for (int j = 0; j < len; j++) buf[k++] = (char)('0' + rnd() % 10);
        } else if (kind < 90) {
            int len = 1 + (int)(rnd() % 4);
            for (int j = 0; j < len; j++) buf[k++] = punct[rnd() % (sizeof punct - 1)];
        } else {
            int len = 1 + (int)(rnd() % 3);
            for (int j = 0; j < len; j++) {
                const char *u = utf[rnd() % 5];
                memcpy(buf + k, u, strlen(u));
                k += (int)strlen(u);
            }
        }
        p[i] = malloc((size_t)k + 1);
        memcpy(p[i], buf, (size_t)k);
        l[i] = (uint32_t)k;
    }
    *pieces_out = p;
    *lens_out = l;
}

typedef struct result { double ms_step; int steps; uint64_t walks, nodes; } result;

static result decode(constraint *c, int n_vocab, int steps, float *logits, int32_t *ids) {
    cons_run r;
    ulm_error err;
    result res = {0};
    cons_stats s0;
    cons_get_stats(c, &s0);
    if (cons_begin(c, steps, &r, &err)) {
        fprintf(stderr, "cons_begin: %s\n", err.msg);
        exit(1);
    }
    double t = 0;
    while (r.remaining > 0 && !cons_final(&r)) {
        double t0 = now_ms();
        const uint64_t *m = cons_allowed(&r, &err);
        if (!m) { fprintf(stderr, "cons_allowed: %s\n", err.msg); exit(1); }
        double t1 = now_ms();
        cons_apply_mask(m, logits, n_vocab);
        double t2 = now_ms();
        t += t2 - t0;
        if (getenv("BENCH_VERBOSE")) fprintf(stderr, "allowed %.3f apply %.3f\n", t1 - t0, t2 - t1);
        int n = 0;
        for (int i = 0; i < n_vocab; i++)
            if (cons_bit(m, i)) ids[n++] = i;
        int id = ids[rnd() % (uint32_t)n];
        if (cons_bit(m, 0) && rnd() % 8 == 0) id = 0; /* EOS sometimes, once allowed */
        t0 = now_ms();
        if (cons_advance(&r, id, &err)) { fprintf(stderr, "cons_advance: %s\n", err.msg); exit(1); }
        t += now_ms() - t0;
        res.steps++;
        if (id == 0) break;
    }
    cons_stats s1;
    cons_get_stats(c, &s1);
    res.ms_step = t / (res.steps ? res.steps : 1);
    res.walks = s1.n_walks - s0.n_walks;
    res.nodes = s1.n_walk_nodes - s0.n_walk_nodes;
    return res;
}

int main(int argc, char **argv) {
    int n_vocab = argc > 1 ? atoi(argv[1]) : 262144;
    int steps = argc > 2 ? atoi(argv[2]) : 128;
    struct utsname u;
    uname(&u);
    printf("command: %s %d %d\nmachine: %s %s, %ld cores\n", argv[0], n_vocab, steps, u.sysname, u.machine,
           sysconf(_SC_NPROCESSORS_ONLN));
    char **pieces;
    uint32_t *lens;
    make_vocab(n_vocab, &pieces, &lens);
    cons_vocab *v;
    ulm_error err;
    int32_t eog = 0;
    double t0 = now_ms();
    if (cons_vocab_new(n_vocab, (const char *const *)pieces, lens, &eog, 1, &v, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("vocabulary: %d tokens, trie %zu nodes, built in %.1f ms (once per tokenizer)\n\n", n_vocab,
           cons_vocab_trie_nodes(v), now_ms() - t0);
    static const char input[] = "Alice Smith met Bob Jones in Paris on 12 May 2021 to sign the lease for "
                                "their new office on Rue de Rivoli";
    static const struct { const char *name, *spec; } cases[] = {
        {"choice (3 labels)", "{\"type\":\"choice\",\"choices\":[\"positive\",\"negative\",\"neutral\"]}"},
        {"regex sentence", "{\"type\":\"regex\",\"pattern\":\"[A-Z][a-z]+( [a-z]+)*\\\\.\"}"},
        {"json object", "{\"type\":\"json_schema\",\"schema\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":"
                        "\"string\",\"maxLength\":40},\"age\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\","
                        "\"items\":{\"type\":\"string\",\"enum\":[\"a\",\"b\",\"c\"]},\"maxItems\":4}},\"required\":"
                        "[\"name\",\"age\"]}}"},
        {"json free string", "{\"type\":\"json_schema\",\"schema\":{\"type\":\"string\"}}"},
        {"entities (substr)", "{\"type\":\"json_schema\",\"strings_from_input\":true,\"schema\":{\"type\":\"object\","
                              "\"properties\":{\"people\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
                              "\"place\":{\"type\":\"string\"}},\"required\":[\"people\",\"place\"]}}"},
        {"lines (haiku, N=2)", "{\"type\":\"lines\",\"breaks\":2}"},
    };
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    int32_t *ids = malloc((size_t)n_vocab * sizeof *ids);
    printf("%-20s %8s %12s %12s %10s %14s\n", "constraint", "steps", "cold ms/step", "warm ms/step", "walks",
           "nodes/walk");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_doc *d;
        if (json_parse(cases[i].spec, strlen(cases[i].spec), &d, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        constraint *c;
        t0 = now_ms();
        if (cons_compile_spec(v, json_root(d), input, sizeof input - 1, &c, &err)) {
            fprintf(stderr, "%s: %s\n", cases[i].name, err.msg);
            return 1;
        }
        double tc = now_ms() - t0;
        uint64_t seed = rs;
        result cold = decode(c, n_vocab, steps, logits, ids);
        rs = seed; /* the same token choices again: every mask now comes from the cache */
        result warm = decode(c, n_vocab, steps, logits, ids);
        printf("%-20s %8d %12.3f %12.3f %10llu %14.0f   (compile %.2f ms)\n", cases[i].name, cold.steps,
               cold.ms_step, warm.ms_step, (unsigned long long)cold.walks,
               cold.walks ? (double)cold.nodes / (double)cold.walks : 0.0, tc);
        cons_free(c);
        json_free(d);
    }
    /* the floor: applying a mask to one logits row */
    uint64_t *mask = calloc((size_t)(n_vocab + 63) / 64, sizeof *mask);
    t0 = now_ms();
    for (int k = 0; k < 100; k++) cons_apply_mask(mask, logits, n_vocab);
    printf("\napplying a mask to a %d-logit row: %.3f ms\n", n_vocab, (now_ms() - t0) / 100);
    free(mask);
    free(logits);
    free(ids);
    cons_vocab_free(v);
    for (int i = 0; i < n_vocab; i++) free(pieces[i]);
    free(pieces);
    free(lens);
    return 0;
}
