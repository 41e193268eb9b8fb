/* The JSON Schema subset of constraints, compiled to NFA fragments of canonical
 * (whitespace-free) JSON. See constraint.h for what is covered. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "constraint_nfa.h"
#include "tagged_spans.h"
#include "json.h"
#include "ulm_file.h"

#define SCHEMA_MAX_DEPTH 64

typedef struct schema_ctx {
    nfa_b *b;
    const char *input;
    size_t input_len;
    int sfi; /* strings from input */
} schema_ctx;

/* ---- canonical serialization of enum / const values ---- */
static int canon(json_buf *s, const json_value *v, int depth) {
    if (depth > JSON_MAX_DEPTH) return -1;
    char num[64];
    int64_t iv;
    size_t len;
    switch (json_typeof(v)) {
    case JSON_NULL: json_buf_put(s, "null", 4); return 0;
    case JSON_BOOL: {
        int bv = 0;
        json_bool(v, &bv);
        json_buf_put(s, bv ? "true" : "false", bv ? 4 : 5);
        return 0;
    }
    case JSON_NUMBER:
        if (json_int(v, &iv) == 0) snprintf(num, sizeof num, "%lld", (long long)iv);
        else snprintf(num, sizeof num, "%.17g", json_num(v));
        json_buf_put(s, num, strlen(num));
        return 0;
    case JSON_STRING: {
        const char *str = json_str(v, &len);
        json_buf_str(s, str, len);
        return 0;
    }
    case JSON_ARRAY:
        json_buf_put(s, "[", 1);
        for (size_t i = 0; i < json_len(v); i++) {
            if (i) json_buf_put(s, ",", 1);
            if (canon(s, json_at(v, i), depth + 1)) return -1;
        }
        json_buf_put(s, "]", 1);
        return 0;
    case JSON_OBJECT:
        json_buf_put(s, "{", 1);
        for (size_t i = 0; i < json_len(v); i++) {
            if (i) json_buf_put(s, ",", 1);
            const char *k = json_obj_key(v, i, &len);
            json_buf_str(s, k, len);
            json_buf_put(s, ":", 1);
            if (canon(s, json_obj_val(v, i), depth + 1)) return -1;
        }
        json_buf_put(s, "}", 1);
        return 0;
    default: return -1;
    }
}

/* Literal alternatives: the canonical text of every element of arr. */
static frag values_frag(schema_ctx *x, const json_value *arr, int single) {
    nfa_b *b = x->b;
    size_t n = single ? 1 : json_len(arr);
    if (n == 0) { nb_fail(b, ULM_ERR_SPEC, "schema: empty enum"); return nb_empty(b); }
    json_buf *bufs = calloc(n, sizeof *bufs);
    const char **strs = malloc(n * sizeof *strs);
    size_t *lens = malloc(n * sizeof *lens);
    frag f;
    if (!bufs || !strs || !lens) {
        nb_fail(b, ULM_ERR_NOMEM, "out of memory compiling a schema");
        f = nb_empty(b);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (canon(&bufs[i], single ? arr : json_at(arr, i), 0) || bufs[i].oom) {
            nb_fail(b, ULM_ERR_NOMEM, "schema: cannot serialize an enum value");
            f = nb_empty(b);
            goto out;
        }
        strs[i] = bufs[i].p ? bufs[i].p : "";
        lens[i] = bufs[i].n;
    }
    f = nb_lits(b, strs, lens, (int)n);
out:
    if (bufs)
        for (size_t i = 0; i < n; i++) free(bufs[i].p);
    free(bufs);
    free(strs);
    free(lens);
    return f;
}

/* Digit runs are bounded so every number parses to a finite double and every integer to an
 * exact one (15 digits < 2^53); exponents take at most 2 digits. */
static frag digits_frag(nfa_b *b, int min, int max) {
    uint8_t d[32] = {0};
    for (int c = '0'; c <= '9'; c++) bs_set(d, c);
    frag f = nb_byteset(b, d);
    return nb_repeat(b, f, min, max);
}

static frag integer_frag(nfa_b *b, int allow_neg) {
    frag sign = allow_neg ? nb_opt(b, nb_lit(b, "-", 1)) : nb_empty(b);
    frag zero = nb_lit(b, "0", 1);
    uint8_t nz[32] = {0};
    for (int c = '1'; c <= '9'; c++) bs_set(nz, c);
    frag lead = nb_byteset(b, nz);
    frag rest = digits_frag(b, 0, 14);
    frag nonzero = nb_cat(b, lead, rest);
    return nb_cat(b, sign, nb_alt(b, zero, nonzero));
}

static frag number_frag(nfa_b *b, int allow_neg) {
    frag ip = integer_frag(b, allow_neg);
    frag dot = nb_lit(b, ".", 1);
    frag fr = nb_opt(b, nb_cat(b, dot, digits_frag(b, 1, 15)));
    uint8_t e[32] = {0}, pm[32] = {0};
    bs_set(e, 'e');
    bs_set(e, 'E');
    bs_set(pm, '+');
    bs_set(pm, '-');
    frag ef = nb_byteset(b, e);
    frag sg = nb_opt(b, nb_byteset(b, pm));
    frag ex = nb_opt(b, nb_cat(b, nb_cat(b, ef, sg), digits_frag(b, 1, 2)));
    return nb_cat(b, nb_cat(b, ip, fr), ex);
}

static int get_count(const json_value *s, const char *key, int dflt, int *out, nfa_b *b) {
    const json_value *v = json_get(s, key);
    int64_t n;
    if (!v) { *out = dflt; return 0; }
    if (json_int(v, &n) || n < 0 || n > 100000) {
        nb_fail(b, ULM_ERR_SPEC, "schema: \"%s\" must be an integer 0..100000", key);
        return -1;
    }
    *out = (int)n;
    return 0;
}

static frag value_frag(schema_ctx *x, const json_value *s, int depth);

static frag string_frag(schema_ctx *x, const json_value *s) {
    nfa_b *b = x->b;
    frag open = nb_lit(b, "\"", 1);
    frag body;
    const char *pat;
    size_t plen;
    int minl, maxl;
    if (json_get_str(s, "pattern", &pat, &plen) == 0) {
        /* a pattern's characters go in unescaped: keep out what would need escaping */
        memset(b->excl, 0, sizeof b->excl);
        for (int c = 0; c < 0x20; c++) bs_set(b->excl, c);
        bs_set(b->excl, '"');
        bs_set(b->excl, '\\');
        b->use_excl = 1;
        body = re_build(b, pat, plen);
        b->use_excl = 0;
    } else if (x->sfi >= 2) { /* word spans: never empty; lengths are the input's */
        body = words_substr_build(b, x->input, x->input_len);
    } else if (x->sfi) { /* minLength >= 1 keeps out the empty string; lengths are otherwise the input's */
        if (get_count(s, "minLength", 0, &minl, b)) return open;
        body = substr_build(b, x->input, x->input_len, minl > 0);
    } else {
        if (get_count(s, "minLength", 0, &minl, b) || get_count(s, "maxLength", -1, &maxl, b)) return open;
        if (maxl >= 0 && maxl < minl) {
            nb_fail(b, ULM_ERR_SPEC, "schema: maxLength < minLength");
            return open;
        }
        frag ch = nb_json_char(b);
        body = nb_repeat(b, ch, minl, maxl);
    }
    frag close = nb_lit(b, "\"", 1);
    return nb_cat(b, nb_cat(b, open, body), close);
}

static frag array_frag(schema_ctx *x, const json_value *s, int depth) {
    nfa_b *b = x->b;
    const json_value *items = json_get(s, "items");
    int mn, mx;
    if (get_count(s, "minItems", 0, &mn, b) || get_count(s, "maxItems", -1, &mx, b)) return nb_empty(b);
    if (mx >= 0 && mx < mn) { nb_fail(b, ULM_ERR_SPEC, "schema: maxItems < minItems"); return nb_empty(b); }
    if (!items || !json_is_obj(items)) {
        nb_fail(b, ULM_ERR_UNSUPPORTED, "schema: an array needs an \"items\" schema object");
        return nb_empty(b);
    }
    const char *ty;
    if (x->sfi == 3 && json_get_str(items, "type", &ty, NULL) == 0 && !strcmp(ty, "string") &&
        !json_get(items, "pattern"))
        return words_in_order_array_build(b, x->input, x->input_len, mn, mx);
    frag open = nb_lit(b, "[", 1);
    frag f = open;
    if (mx != 0) {
        frag first = value_frag(x, items, depth + 1);
        frag rest = nb_cat(b, nb_lit(b, ",", 1), value_frag(x, items, depth + 1));
        rest = nb_repeat(b, rest, mn > 0 ? mn - 1 : 0, mx < 0 ? -1 : mx - 1);
        frag body = nb_cat(b, first, rest);
        if (mn == 0) body = nb_opt(b, body);
        f = nb_cat(b, open, body);
    }
    return nb_cat(b, f, nb_lit(b, "]", 1));
}

/* Properties in declared order. State A_i: '{' written, no member yet; B_i: some member
 * written. A member's value is built once and reached from either with or without ','. */
static frag object_frag(schema_ctx *x, const json_value *s, int depth) {
    nfa_b *b = x->b;
    const json_value *props = json_get(s, "properties"), *req = json_get(s, "required");
    if (props && !json_is_obj(props)) { nb_fail(b, ULM_ERR_SPEC, "schema: \"properties\" must be an object"); return nb_empty(b); }
    if (req && !json_is_arr(req)) { nb_fail(b, ULM_ERR_SPEC, "schema: \"required\" must be an array"); return nb_empty(b); }
    size_t np = json_len(props);
    for (size_t r = 0; r < json_len(req); r++) {
        size_t rl;
        const char *rn = json_str(json_at(req, r), &rl);
        if (!rn || !json_getn(props, rn, rl)) {
            nb_fail(b, ULM_ERR_SPEC, "schema: required \"%.60s\" is not among the properties", rn ? rn : "?");
            return nb_empty(b);
        }
    }
    int32_t lo = b->n;
    frag open = nb_lit(b, "{", 1);
    int32_t A = open.e, B = nb_state(b);
    for (size_t i = 0; i < np && !b->failed; i++) {
        size_t kl;
        const char *k = json_obj_key(props, i, &kl);
        int required = 0;
        for (size_t r = 0; r < json_len(req); r++) {
            size_t rl;
            const char *rn = json_str(json_at(req, r), &rl);
            if (rl == kl && !memcmp(rn, k, kl)) required = 1;
        }
        json_buf key = {0};
        json_buf_str(&key, k, kl);
        json_buf_put(&key, ":", 1);
        if (key.oom) { free(key.p); nb_fail(b, ULM_ERR_NOMEM, "out of memory compiling a schema"); break; }
        frag k1 = nb_lit(b, key.p, key.n);
        frag comma = nb_lit(b, ",", 1);
        frag k2 = nb_lit(b, key.p, key.n);
        free(key.p);
        frag val = value_frag(x, json_obj_val(props, i), depth + 1);
        int32_t A2 = nb_state(b), B2 = nb_state(b);
        nb_eps(b, A, k1.s);
        nb_eps(b, k1.e, val.s);
        nb_eps(b, B, comma.s);
        nb_eps(b, comma.e, k2.s);
        nb_eps(b, k2.e, val.s);
        nb_eps(b, val.e, B2);
        if (!required) {
            nb_eps(b, A, A2);
            nb_eps(b, B, B2);
        }
        A = A2;
        B = B2;
    }
    int32_t e = nb_state(b);
    nb_range(b, A, '}', '}', e);
    nb_range(b, B, '}', '}', e);
    return (frag){open.s, e, lo, b->n};
}

static frag typed_frag(schema_ctx *x, const json_value *s, const char *t, int depth) {
    nfa_b *b = x->b;
    double mn;
    int nonneg = json_get_num(s, "minimum", &mn) == 0 && mn >= 0;
    if (!strcmp(t, "null")) return nb_lit(b, "null", 4);
    if (!strcmp(t, "boolean")) {
        const char *tf[2] = {"true", "false"};
        size_t l[2] = {4, 5};
        return nb_lits(b, tf, l, 2);
    }
    if (!strcmp(t, "integer")) return integer_frag(b, !nonneg);
    if (!strcmp(t, "number")) return number_frag(b, !nonneg);
    if (!strcmp(t, "string")) return string_frag(x, s);
    if (!strcmp(t, "array")) return array_frag(x, s, depth);
    if (!strcmp(t, "object")) return object_frag(x, s, depth);
    nb_fail(b, ULM_ERR_UNSUPPORTED, "schema: type \"%.40s\" is not supported", t);
    return nb_empty(b);
}

static frag value_frag(schema_ctx *x, const json_value *s, int depth) {
    nfa_b *b = x->b;
    if (b->failed) return nb_empty(b);
    if (depth > SCHEMA_MAX_DEPTH) {
        nb_fail(b, ULM_ERR_CONSTRAINT, "schema: nested deeper than %d", SCHEMA_MAX_DEPTH);
        return nb_empty(b);
    }
    if (!json_is_obj(s)) { nb_fail(b, ULM_ERR_SPEC, "schema: a schema must be an object"); return nb_empty(b); }
    if (json_get(s, "$ref")) { nb_fail(b, ULM_ERR_UNSUPPORTED, "schema: $ref is not supported"); return nb_empty(b); }
    const json_value *en = json_get(s, "enum");
    if (en) {
        if (!json_is_arr(en)) { nb_fail(b, ULM_ERR_SPEC, "schema: \"enum\" must be an array"); return nb_empty(b); }
        return values_frag(x, en, 0);
    }
    const json_value *cn = json_get(s, "const");
    if (cn) return values_frag(x, cn, 1);
    const json_value *any = json_get(s, "anyOf");
    if (!any) any = json_get(s, "oneOf");
    if (any) {
        if (!json_is_arr(any) || !json_len(any)) { nb_fail(b, ULM_ERR_SPEC, "schema: anyOf/oneOf must be a non-empty array"); return nb_empty(b); }
        frag f = value_frag(x, json_at(any, 0), depth + 1);
        for (size_t i = 1; i < json_len(any) && !b->failed; i++) f = nb_alt(b, f, value_frag(x, json_at(any, i), depth + 1));
        return f;
    }
    const json_value *t = json_get(s, "type");
    if (json_is_str(t)) return typed_frag(x, s, json_str(t, NULL), depth);
    if (json_is_arr(t) && json_len(t)) {
        frag f = {0, 0, 0, 0};
        for (size_t i = 0; i < json_len(t) && !b->failed; i++) {
            const char *tn = json_str(json_at(t, i), NULL);
            if (!tn) { nb_fail(b, ULM_ERR_SPEC, "schema: \"type\" list must hold strings"); break; }
            frag g = typed_frag(x, s, tn, depth);
            f = i ? nb_alt(b, f, g) : g;
        }
        return f;
    }
    if (t) { nb_fail(b, ULM_ERR_SPEC, "schema: \"type\" must be a string or a list"); return nb_empty(b); }
    if (json_get(s, "properties")) return object_frag(x, s, depth);
    if (json_get(s, "items")) return array_frag(x, s, depth);
    nb_fail(b, ULM_ERR_UNSUPPORTED, "schema: needs a type, enum, const or anyOf (any-value schemas are not supported)");
    return nb_empty(b);
}

frag schema_build(nfa_b *b, const json_value *schema, const char *input, size_t input_len, int sfi) {
    schema_ctx x = {b, input, input_len, sfi};
    return value_frag(&x, schema, 0);
}

ulm_status cons_compile_schema(const cons_vocab *v, const json_value *schema, const char *input, size_t input_len,
                               const cons_opts *o, constraint **out, ulm_error *err) {
    *out = NULL;
    nfa_b b;
    nb_init(&b, o ? o->max_states : 0);
    frag f = schema_build(&b, schema, input ? input : "", input ? input_len : 0, o ? o->strings_from_input : 0);
    ulm_status st = cons_from_nfa(v, &b, f, o, out, err);
    nb_free(&b);
    return st;
}

/* ---- constraint spec objects (task files) ---- */

/* "strings_from_input": false (0), true (1, any substring), "words" (2, word spans) or
 * "words_in_order" (3: word spans, and the items of an array of strings in order of
 * appearance without overlap); -1 for any other value. */
static int spec_sfi(const json_value *spec) {
    const json_value *v = json_get(spec, "strings_from_input");
    int x = 0;
    if (!v) return 0;
    if (json_is_str(v)) return !strcmp(json_str(v, NULL), "words") ? 2 : !strcmp(json_str(v, NULL), "words_in_order") ? 3 : -1;
    return json_bool(v, &x) == 0 ? x : -1;
}

static ulm_status spec_kind(const json_value *spec, const char **kind, ulm_error *err) {
    if (!json_is_obj(spec)) return ulm_set_error(err, ULM_ERR_SPEC, "constraint: must be an object");
    if (json_get_str(spec, "type", kind, NULL))
        return ulm_set_error(err, ULM_ERR_SPEC, "constraint: needs \"type\" (choice, regex, json_schema, lines, any_of)");
    return ULM_OK;
}

#define SPEC_MAX_DEPTH 8 /* any_of nesting */

static int needs_input(const json_value *spec, int depth) {
    const char *kind;
    if (depth > SPEC_MAX_DEPTH || spec_kind(spec, &kind, NULL)) return 0;
    if (!strcmp(kind, "any_of")) {
        const json_value *of = json_get(spec, "of");
        for (size_t i = 0; i < json_len(of); i++)
            if (needs_input(json_at(of, i), depth + 1)) return 1;
        return 0;
    }
    return !strcmp(kind, "lines") || !strcmp(kind, "tagged_spans") || (!strcmp(kind, "json_schema") && spec_sfi(spec) > 0);
}

int cons_spec_needs_input(const json_value *spec) { return needs_input(spec, 0); }

/* The fragment of one spec object in b (any_of: the alternation of its members, each with its
 * own options; leading_space applies to the whole constraint and is read by the caller). */
static frag spec_frag(nfa_b *b, const json_value *spec, const char *input, size_t input_len, int depth) {
    const char *kind;
    ulm_error kerr;
    if (depth > SPEC_MAX_DEPTH) {
        nb_fail(b, ULM_ERR_SPEC, "constraint: any_of nested deeper than %d", SPEC_MAX_DEPTH);
        return nb_empty(b);
    }
    if (spec_kind(spec, &kind, &kerr)) {
        nb_fail(b, ULM_ERR_SPEC, "%s", kerr.msg);
        return nb_empty(b);
    }
    int distinct = 0;
    if (json_get(spec, "distinct_strings") &&
        (depth > 0 || strcmp(kind, "json_schema") || json_get_bool(spec, "distinct_strings", &distinct))) {
        nb_fail(b, ULM_ERR_SPEC, "constraint: \"distinct_strings\" must be true or false, on a json_schema constraint itself");
        return nb_empty(b);
    }
    int sfi = spec_sfi(spec);
    if (sfi < 0) {
        nb_fail(b, ULM_ERR_SPEC, "constraint: \"strings_from_input\" must be true, false, \"words\" or \"words_in_order\"");
        return nb_empty(b);
    }
    if (!strcmp(kind, "any_of")) {
        const json_value *of = json_get(spec, "of");
        if (!json_is_arr(of) || !json_len(of)) {
            nb_fail(b, ULM_ERR_SPEC, "constraint: any_of needs \"of\", a non-empty array of constraints");
            return nb_empty(b);
        }
        frag f = spec_frag(b, json_at(of, 0), input, input_len, depth + 1);
        for (size_t i = 1; i < json_len(of) && !b->failed; i++)
            f = nb_alt(b, f, spec_frag(b, json_at(of, i), input, input_len, depth + 1));
        return f;
    }
    if (!strcmp(kind, "choice")) {
        const json_value *ch = json_get(spec, "choices");
        size_t n = json_len(ch);
        if (!json_is_arr(ch) || !n || n > (1u << 20)) {
            nb_fail(b, ULM_ERR_SPEC, "constraint: \"choices\" must be a non-empty array");
            return nb_empty(b);
        }
        const char **s = malloc(n * sizeof *s);
        size_t *l = malloc(n * sizeof *l);
        if (!s || !l) {
            free(s);
            free(l);
            nb_fail(b, ULM_ERR_NOMEM, "out of memory");
            return nb_empty(b);
        }
        size_t i;
        for (i = 0; i < n; i++)
            if (!(s[i] = json_str(json_at(ch, i), &l[i]))) break;
        frag f;
        if (i < n) {
            nb_fail(b, ULM_ERR_SPEC, "constraint: choice %zu is not a string", i);
            f = nb_empty(b);
        } else {
            f = nb_lits(b, s, l, (int)n);
        }
        free(s);
        free(l);
        return f;
    }
    if (!strcmp(kind, "regex")) {
        const char *p;
        size_t pl;
        if (json_get_str(spec, "pattern", &p, &pl)) {
            nb_fail(b, ULM_ERR_SPEC, "constraint: regex needs \"pattern\"");
            return nb_empty(b);
        }
        return re_build(b, p, pl);
    }
    if (!strcmp(kind, "json_schema")) {
        const json_value *sc = json_get(spec, "schema");
        if (!json_is_obj(sc)) {
            nb_fail(b, ULM_ERR_SPEC, "constraint: json_schema needs a \"schema\" object");
            return nb_empty(b);
        }
        return schema_build(b, sc, input ? input : "", input ? input_len : 0, sfi);
    }
    if (!strcmp(kind, "lines")) {
        int64_t n;
        if (json_get_int(spec, "breaks", &n) || n < 0 || n > 256) {
            nb_fail(b, ULM_ERR_SPEC, "constraint: lines needs \"breaks\" 0..256");
            return nb_empty(b);
        }
        return lines_build(b, input ? input : "", input ? input_len : 0, (int)n);
    }
    if (!strcmp(kind, "tagged_spans")) {
        tagged_form tf;
        ulm_error terr;
        if (depth > 0) { /* the task rewrites the whole output into JSON: not one alternative of many */
            nb_fail(b, ULM_ERR_SPEC, "constraint: tagged_spans cannot be a member of any_of");
            return nb_empty(b);
        }
        if (tagged_form_parse(spec, &tf, &terr)) {
            nb_fail(b, ULM_ERR_SPEC, "%s", terr.msg);
            return nb_empty(b);
        }
        return tagged_spans_build(b, input ? input : "", input ? input_len : 0, tf.tag, tf.n_tags, tf.max_items, tf.space);
    }
    nb_fail(b, ULM_ERR_SPEC, "constraint: unknown type \"%.40s\"", kind);
    return nb_empty(b);
}

ulm_status cons_compile_spec(const cons_vocab *v, const json_value *spec, const char *input, size_t input_len,
                             constraint **out, ulm_error *err) {
    *out = NULL;
    const char *kind;
    ulm_status st = spec_kind(spec, &kind, err);
    if (st) return st;
    cons_opts o = {0};
    json_get_bool(spec, "leading_space", &o.leading_space);
    o.strings_from_input = spec_sfi(spec) > 0 ? spec_sfi(spec) : 0;
    nfa_b b;
    nb_init(&b, 0);
    frag f = spec_frag(&b, spec, input, input_len, 0);
    st = cons_from_nfa(v, &b, f, &o, out, err);
    nb_free(&b);
    return st;
}

ulm_status cons_check_spec(const json_value *spec, ulm_error *err) {
    /* compile against a tiny vocabulary of all single bytes and a sample input */
    const char *pieces[256];
    uint32_t lens[256];
    char bytes[256];
    for (int i = 0; i < 256; i++) {
        bytes[i] = (char)i;
        pieces[i] = &bytes[i];
        lens[i] = 1;
    }
    cons_vocab *v;
    ulm_status st = cons_vocab_new(256, pieces, lens, NULL, 0, &v, err);
    if (st) return st;
    constraint *c;
    st = cons_compile_spec(v, spec, "sample input words here", 23, &c, err);
    if (st == ULM_ERR_CONSTRAINT && cons_spec_needs_input(spec)) st = ULM_OK; /* depends on the input */
    if (!st && c) cons_free(c);
    cons_vocab_free(v);
    return st;
}
