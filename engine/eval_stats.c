/* Golden-set statistics (see eval_stats.h for the definitions). */
#include "eval_stats.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

static int is_ws(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static void trim(const char **s, size_t *n) {
    while (*n && is_ws(**s)) (*s)++, (*n)--;
    while (*n && is_ws((*s)[*n - 1])) (*n)--;
}

/* ---- flattened pairs ---- */
typedef struct pairs { char **v; int n, cap; int oom; } pairs;

static void pairs_add(pairs *p, const char *path, const char *val, size_t vl) {
    if (p->oom) return;
    if (p->n == p->cap) {
        int nc = p->cap ? p->cap * 2 : 16;
        char **q = realloc(p->v, (size_t)nc * sizeof *q);
        if (!q) { p->oom = 1; return; }
        p->v = q;
        p->cap = nc;
    }
    size_t pl = strlen(path);
    char *s = malloc(pl + vl + 2);
    if (!s) { p->oom = 1; return; }
    memcpy(s, path, pl);
    s[pl] = '\x1f';
    memcpy(s + pl + 1, val, vl);
    s[pl + 1 + vl] = 0;
    p->v[p->n++] = s;
}

static void flatten(pairs *p, const json_value *v, char *path, size_t plen, size_t pcap, int depth) {
    char buf[64];
    size_t l;
    if (depth > JSON_MAX_DEPTH) { p->oom = 1; return; }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        for (size_t i = 0; i < json_len(v); i++) {
            const char *k = json_obj_key(v, i, &l);
            if (plen + l + 2 > pcap) { p->oom = 1; return; }
            path[plen] = '.';
            memcpy(path + plen + 1, k, l);
            path[plen + 1 + l] = 0;
            flatten(p, json_obj_val(v, i), path, plen + 1 + l, pcap, depth + 1);
            path[plen] = 0;
        }
        return;
    case JSON_ARRAY:
        for (size_t i = 0; i < json_len(v); i++) flatten(p, json_at(v, i), path, plen, pcap, depth + 1);
        return;
    case JSON_STRING: {
        const char *s = json_str(v, &l);
        char *e = malloc(l + 2);
        if (!e) { p->oom = 1; return; }
        e[0] = 's';
        memcpy(e + 1, s, l);
        pairs_add(p, path, e, l + 1);
        free(e);
        return;
    }
    case JSON_NUMBER: snprintf(buf, sizeof buf, "n%.17g", json_num(v)); break;
    case JSON_BOOL: { int b = 0; json_bool(v, &b); snprintf(buf, sizeof buf, "b%d", b); break; }
    case JSON_NULL: snprintf(buf, sizeof buf, "z"); break;
    default: return;
    }
    pairs_add(p, path, buf, strlen(buf));
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void pairs_free(pairs *p) {
    for (int i = 0; i < p->n; i++) free(p->v[i]);
    free(p->v);
}

/* Flattens text if it is JSON (an object or array when containers_only); -1 if not. */
static int flatten_text(const char *s, size_t n, pairs *p, int containers_only) {
    json_doc *d;
    memset(p, 0, sizeof *p);
    if (json_parse(s, n, &d, NULL)) return -1;
    if (containers_only && !json_is_obj(json_root(d)) && !json_is_arr(json_root(d))) {
        json_free(d);
        return -1;
    }
    char *path = malloc(4096);
    if (!path) { json_free(d); return -1; }
    path[0] = 0;
    flatten(p, json_root(d), path, 0, 4096, 0);
    free(path);
    json_free(d);
    if (p->n) qsort(p->v, (size_t)p->n, sizeof *p->v, str_cmp); /* v is NULL when empty */
    return 0;
}

int eval_fields(const char *expected, size_t elen, const char *output, size_t olen, long *tp, long *fp, long *fn) {
    pairs e, o;
    if (flatten_text(expected, elen, &e, 1)) { pairs_free(&e); return 0; }
    if (flatten_text(output, olen, &o, 0)) {
        pairs_free(&o);
        memset(&o, 0, sizeof o);
    }
    int i = 0, j = 0;
    long t = 0;
    while (i < e.n && j < o.n) { /* multiset intersection of two sorted lists */
        int c = strcmp(e.v[i], o.v[j]);
        if (!c) { t++; i++; j++; }
        else if (c < 0) i++;
        else j++;
    }
    *tp += t;
    *fp += o.n - t;
    *fn += e.n - t;
    pairs_free(&e);
    pairs_free(&o);
    return 1;
}

static int canon_equal(const char *a, size_t al, const char *b, size_t bl) {
    pairs pa, pb;
    /* canonical comparison through the sorted flattened pairs plus structure-free equality:
     * two JSON texts are equal when their pair multisets are equal and their roots have the
     * same type (enough for golden sets, where order of object members is not significant). */
    json_doc *da, *db;
    if (json_parse(a, al, &da, NULL)) return -1;
    if (json_parse(b, bl, &db, NULL)) { json_free(da); return -1; }
    int same_type = json_typeof(json_root(da)) == json_typeof(json_root(db));
    json_free(da);
    json_free(db);
    if (!same_type) return 0;
    flatten_text(a, al, &pa, 0);
    flatten_text(b, bl, &pb, 0);
    int eq = pa.n == pb.n && !pa.oom && !pb.oom;
    for (int i = 0; eq && i < pa.n; i++) eq = !strcmp(pa.v[i], pb.v[i]);
    pairs_free(&pa);
    pairs_free(&pb);
    return eq;
}

int eval_exact(const char *expected, size_t elen, const char *output, size_t olen) {
    trim(&expected, &elen);
    trim(&output, &olen);
    if (elen == olen && !memcmp(expected, output, elen)) return 1;
    int c = canon_equal(expected, elen, output, olen);
    return c > 0;
}

static int dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double eval_percentile(double *v, int n, double q) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, dbl_cmp);
    if (q <= 0) return v[0];
    if (q >= 1) return v[n - 1];
    double pos = q * (n - 1);
    int lo = (int)pos;
    double f = pos - lo;
    return lo + 1 < n ? v[lo] + f * (v[lo + 1] - v[lo]) : v[lo];
}

int eval_compute(const eval_item *items, int n, eval_report *r) {
    memset(r, 0, sizeof *r);
    r->n = n;
    if (n <= 0) return 0;
    double *ttft = malloc((size_t)n * sizeof *ttft), *tot = malloc((size_t)n * sizeof *tot);
    if (!ttft || !tot) {
        free(ttft);
        free(tot);
        return -1;
    }
    double time_sum = 0;
    long tokens = 0;
    for (int i = 0; i < n; i++) {
        const eval_item *it = &items[i];
        r->n_exact += eval_exact(it->expected, it->expected_len, it->output ? it->output : "", it->output ? it->output_len : 0);
        r->n_valid += it->valid != 0;
        r->n_escalated += it->escalated != 0;
        r->n_json += eval_fields(it->expected, it->expected_len, it->output ? it->output : "", it->output ? it->output_len : 0,
                                 &r->tp, &r->fp, &r->fn);
        ttft[i] = it->ttft_ms;
        tot[i] = it->total_ms;
        time_sum += it->total_ms;
        tokens += it->n_tokens;
    }
    r->accuracy = (double)r->n_exact / n;
    r->validity = (double)r->n_valid / n;
    r->escalation = (double)r->n_escalated / n;
    if (r->n_json) {
        r->precision = r->tp + r->fp ? (double)r->tp / (double)(r->tp + r->fp) : 0;
        r->recall = r->tp + r->fn ? (double)r->tp / (double)(r->tp + r->fn) : 0;
        r->f1 = r->precision + r->recall > 0 ? 2 * r->precision * r->recall / (r->precision + r->recall) : 0;
    }
    r->ttft_p50 = eval_percentile(ttft, n, 0.5);
    r->ttft_p95 = eval_percentile(ttft, n, 0.95);
    r->total_p50 = eval_percentile(tot, n, 0.5);
    r->total_p95 = eval_percentile(tot, n, 0.95);
    r->tokens_per_s = time_sum > 0 ? tokens / (time_sum / 1000.0) : 0;
    free(ttft);
    free(tot);
    return 0;
}
