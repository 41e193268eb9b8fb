/* Constraint engine: every regex and schema feature, adversarial schemas, input-dependent
 * shapes, and random decoding under every constraint checked by independent validators
 * (glibc regexec for regexes, formats/json.h plus a schema checker written here). */
#include <locale.h>
#include <regex.h>
#include "constraint.h"
#include "json.h"
#include "tagged_spans.h"
#include "test_util.h"

/* ---- a synthetic vocabulary: all 256 bytes, multi-byte pieces, partial UTF-8, EOS ---- */
typedef struct tvocab {
    int n;
    char **pieces;
    uint32_t *lens;
    int eos, ctrl;
    cons_vocab *v;
} tvocab;

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void tv_add(tvocab *t, const char *s, size_t n) {
    t->pieces[t->n] = malloc(n + 1);
    memcpy(t->pieces[t->n], s, n);
    t->pieces[t->n][n] = 0;
    t->lens[t->n++] = (uint32_t)n;
}

static void tv_build(tvocab *t, int n_random) {
    static const char *const words[] = {
        "{\"", "\":", "\",\"", "\"}", "\",", "\"]", "[\"", "[]", "{}", "true", "false", "null", "name", "age",
        "tags", "\"name\":\"", "00", "12", "345", "-1", ".5", "e+", "the", " the", " a", " an", "old", " pond",
        "frog", " jumps", "\n", " \n", "\n\n", "abc", "ab", "a", "\\n", "\\\"", "\\", "é", "日本", "\xe6\x97", "\xa5",
        "ok", "yes", "no", "positive", "negative", "pos", "itive", "neg", " positive", "\":\"", "\":[", "\":{",
        "\":1", "},{", "],", "Alice", " Bob", "Paris", " in", " Paris", " lives", "1", "2", "3"};
    int nw = (int)(sizeof words / sizeof *words);
    int cap = 256 + nw + n_random + 2;
    t->n = 0;
    t->pieces = calloc((size_t)cap, sizeof *t->pieces);
    t->lens = calloc((size_t)cap, sizeof *t->lens);
    t->eos = t->n;
    tv_add(t, "", 0); /* EOS: no text */
    t->ctrl = t->n;
    tv_add(t, "", 0); /* a control token: never allowed */
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        tv_add(t, &c, 1);
    }
    for (int i = 0; i < nw; i++) tv_add(t, words[i], strlen(words[i]));
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCZ0123456789 \n\",:{}[]-.\\_!?";
    for (int i = 0; i < n_random; i++) {
        char buf[12];
        int l = 2 + (int)(rnd() % 7);
        for (int k = 0; k < l; k++) buf[k] = alpha[rnd() % (sizeof alpha - 1)];
        tv_add(t, buf, (size_t)l);
    }
    int32_t eog = t->eos;
    ulm_error err;
    assert_int_equal(cons_vocab_new(t->n, (const char *const *)t->pieces, t->lens, &eog, 1, &t->v, &err), ULM_OK);
}

static void tv_free(tvocab *t) {
    for (int i = 0; i < t->n; i++) free(t->pieces[i]);
    free(t->pieces);
    free(t->lens);
    cons_vocab_free(t->v);
}

/* Random decoding: a uniformly random allowed token each step, EOS with some bias once
 * allowed. Checks the mask against cons_advance on a sample of tokens. Returns the text
 * (malloc'd) or NULL when cons_begin reports the constraint unsatisfiable. */
static char *random_decode(constraint *c, const tvocab *t, int max_tokens, size_t *out_len) {
    cons_run r;
    ulm_error err;
    if (cons_begin(c, max_tokens, &r, &err) != ULM_OK) {
        assert_int_equal(err.code, ULM_ERR_CONSTRAINT);
        return NULL;
    }
    size_t cap = 1024, len = 0;
    char *out = malloc(cap);
    int32_t *ids = malloc((size_t)t->n * sizeof *ids);
    for (;;) {
        if (r.remaining == 0 || cons_final(&r)) break;
        const uint64_t *m = cons_allowed(&r, &err);
        if (!m) print_message("cons_allowed: %s\n", err.msg);
        assert_non_null(m);
        assert_false(cons_bit(m, t->ctrl));
        assert_int_equal(cons_bit(m, t->eos), cons_accepting(&r));
        int n = 0;
        for (int i = 0; i < t->n; i++)
            if (cons_bit(m, i)) ids[n++] = i;
        assert_true(n > 0);
        /* the trie walk and the byte-by-byte advance agree on a sample of tokens */
        for (int k = 0; k < 8; k++) {
            int id = (int)(rnd() % (uint32_t)t->n);
            cons_run probe = r;
            ulm_status st = cons_advance(&probe, id, &err);
            assert_int_equal(st == ULM_OK, cons_bit(m, id));
        }
        int id = ids[rnd() % (uint32_t)n];
        if (cons_bit(m, t->eos) && rnd() % 4 == 0) id = t->eos;
        assert_int_equal(cons_advance(&r, id, &err), ULM_OK);
        if (id == t->eos) break;
        if (len + t->lens[id] + 1 > cap) {
            cap = 2 * (len + t->lens[id] + 1);
            out = realloc(out, cap);
        }
        memcpy(out + len, t->pieces[id], t->lens[id]);
        len += t->lens[id];
    }
    assert_true(cons_accepting(&r));
    assert_true(r.n_tokens <= max_tokens);
    out[len] = 0;
    *out_len = len;
    free(ids);
    return out;
}

/* 20 random decodes under c all end in text c accepts. */
static void assert_random_decodes_match(constraint *c, const tvocab *t, int max_tokens) {
    for (int k = 0; k < 20; k++) {
        size_t n;
        char *s = random_decode(c, t, max_tokens, &n);
        assert_non_null(s);
        assert_true(cons_matches(c, s, n));
        free(s);
    }
}

/* ---- independent checkers ---- */
static int posix_full_match(const char *pattern, const char *text) {
    char *anch = malloc(strlen(pattern) + 8);
    sprintf(anch, "^(%s)$", pattern);
    regex_t re;
    int rc = regcomp(&re, anch, REG_EXTENDED | REG_NOSUB);
    free(anch);
    assert_int_equal(rc, 0);
    rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    return rc == 0;
}

static size_t utf8_count(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((uint8_t)s[i] & 0xC0) != 0x80;
    return k;
}

static int values_equal(const json_value *a, const json_value *b) {
    if (json_typeof(a) != json_typeof(b)) return 0;
    size_t la, lb;
    switch (json_typeof(a)) {
    case JSON_STRING: {
        const char *sa = json_str(a, &la), *sb = json_str(b, &lb);
        return la == lb && !memcmp(sa, sb, la);
    }
    case JSON_NUMBER: return json_num(a) == json_num(b);
    case JSON_BOOL: {
        int x, y;
        json_bool(a, &x);
        json_bool(b, &y);
        return x == y;
    }
    case JSON_NULL: return 1;
    case JSON_ARRAY:
        if (json_len(a) != json_len(b)) return 0;
        for (size_t i = 0; i < json_len(a); i++)
            if (!values_equal(json_at(a, i), json_at(b, i))) return 0;
        return 1;
    case JSON_OBJECT:
        if (json_len(a) != json_len(b)) return 0;
        for (size_t i = 0; i < json_len(a); i++) {
            const char *k = json_obj_key(a, i, &la);
            if (!values_equal(json_obj_val(a, i), json_getn(b, k, la))) return 0;
        }
        return 1;
    default: return 0;
    }
}

/* A validator for the schema subset, written from the JSON Schema semantics, not from the
 * compiler. input != NULL: free strings must be substrings of it. */
static int schema_ok(const json_value *s, const json_value *v, const char *input) {
    const json_value *en = json_get(s, "enum");
    if (en) {
        for (size_t i = 0; i < json_len(en); i++)
            if (values_equal(json_at(en, i), v)) return 1;
        return 0;
    }
    if (json_get(s, "const")) return values_equal(json_get(s, "const"), v);
    const json_value *any = json_get(s, "anyOf");
    if (any) {
        for (size_t i = 0; i < json_len(any); i++)
            if (schema_ok(json_at(any, i), v, input)) return 1;
        return 0;
    }
    const json_value *tv = json_get(s, "type");
    if (json_is_arr(tv)) {
        for (size_t i = 0; i < json_len(tv); i++) {
            /* the same schema restricted to one type */
            const char *tn = json_str(json_at(tv, i), NULL);
            json_type jt = json_typeof(v);
            int64_t iv;
            if ((!strcmp(tn, "string") && jt == JSON_STRING) || (!strcmp(tn, "null") && jt == JSON_NULL) ||
                (!strcmp(tn, "boolean") && jt == JSON_BOOL) || (!strcmp(tn, "number") && jt == JSON_NUMBER) ||
                (!strcmp(tn, "integer") && json_int(v, &iv) == 0))
                return 1;
        }
        return 0;
    }
    const char *t = json_str(tv, NULL);
    assert_non_null(t);
    int64_t n;
    size_t len;
    if (!strcmp(t, "null")) return json_is_null(v);
    if (!strcmp(t, "boolean")) return json_is_bool(v);
    if (!strcmp(t, "integer")) {
        if (json_int(v, &n)) return 0;
        double mn;
        if (json_get_num(s, "minimum", &mn) == 0 && (double)n < mn) return 0;
        return 1;
    }
    if (!strcmp(t, "number")) return json_is_num(v);
    if (!strcmp(t, "string")) {
        const char *str = json_str(v, &len);
        if (!str) return 0;
        if (json_get_int(s, "maxLength", &n) == 0 && (int64_t)utf8_count(str, len) > n) return 0;
        if (json_get_int(s, "minLength", &n) == 0 && (int64_t)utf8_count(str, len) < n) return 0;
        const char *pat;
        if (json_get_str(s, "pattern", &pat, NULL) == 0) return posix_full_match(pat, str);
        if (input && !memmem(input, strlen(input), str, len) && len) return 0;
        return 1;
    }
    if (!strcmp(t, "array")) {
        if (!json_is_arr(v)) return 0;
        if (json_get_int(s, "maxItems", &n) == 0 && (int64_t)json_len(v) > n) return 0;
        if (json_get_int(s, "minItems", &n) == 0 && (int64_t)json_len(v) < n) return 0;
        for (size_t i = 0; i < json_len(v); i++)
            if (!schema_ok(json_get(s, "items"), json_at(v, i), input)) return 0;
        return 1;
    }
    if (!strcmp(t, "object")) {
        if (!json_is_obj(v)) return 0;
        const json_value *props = json_get(s, "properties"), *req = json_get(s, "required");
        for (size_t i = 0; i < json_len(req); i++)
            if (!json_get(v, json_str(json_at(req, i), NULL))) return 0;
        for (size_t i = 0; i < json_len(v); i++) {
            const char *k = json_obj_key(v, i, &len);
            const json_value *ps = json_getn(props, k, len);
            if (!ps || !schema_ok(ps, json_obj_val(v, i), input)) return 0;
        }
        return 1;
    }
    return 0;
}

static json_doc *parse(const char *s) {
    json_doc *d;
    ulm_error err;
    ulm_status st = json_parse(s, strlen(s), &d, &err);
    if (st) print_message("json_parse(%s): %s\n", s, err.msg);
    assert_int_equal(st, ULM_OK);
    return d;
}

static constraint *compile_re(const tvocab *t, const char *re, ulm_status want) {
    constraint *c = NULL;
    ulm_error err;
    ulm_status st = cons_compile_regex(t->v, re, strlen(re), NULL, &c, &err);
    if (st != want) print_message("regex %s: %s\n", re, st ? err.msg : "ok");
    assert_int_equal(st, want);
    return c;
}

static int matches(constraint *c, const char *s) { return cons_matches(c, s, strlen(s)); }

/* ---- tests ---- */

static void test_vocab_trie(void **state) {
    tvocab t;
    tv_build(&t, 200);
    assert_int_equal(cons_vocab_size(t.v), t.n);
    /* a trie node per distinct non-empty prefix: at most the total bytes, at least 256 */
    size_t total = 0;
    for (int i = 0; i < t.n; i++) total += t.lens[i];
    assert_true(cons_vocab_trie_nodes(t.v) >= 256 && cons_vocab_trie_nodes(t.v) <= total);
    /* "[a-z]*" allows exactly the tokens made of lowercase letters, and EOS */
    constraint *c = compile_re(&t, "[a-z]*", ULM_OK);
    cons_run r;
    ulm_error err;
    assert_int_equal(cons_begin(c, 100, &r, &err), ULM_OK);
    const uint64_t *m = cons_allowed(&r, &err);
    assert_non_null(m);
    for (int i = 0; i < t.n; i++) {
        int want = i == t.eos;
        if (t.lens[i]) {
            want = 1;
            for (uint32_t k = 0; k < t.lens[i]; k++)
                if (t.pieces[i][k] < 'a' || t.pieces[i][k] > 'z') want = 0;
        }
        assert_int_equal(cons_bit(m, i), want);
    }
    cons_free(c);
    tv_free(&t);
}

static void test_regex_features(void **state) {
    tvocab t;
    tv_build(&t, 50);
    static const struct { const char *re, *yes[4], *no[4]; } cases[] = {
        {"abc", {"abc"}, {"ab", "abcd", "", "abd"}},
        {"a|bc|", {"a", "bc", ""}, {"b", "abc"}},
        {"[a-c]x", {"ax", "cx"}, {"dx", "x", "Ax"}},
        {"[^a-c]", {"d", "\xc3\xa9", "\n"}, {"a", "", "dd", "c"}},
        {".", {"x", "\xe6\x97\xa5", " "}, {"\n", "", "\xe6\x97", "xy"}},
        {"a*", {"", "a", "aaaa"}, {"b", "ab"}},
        {"a+b?", {"a", "aab", "ab"}, {"", "b", "abb"}},
        {"(ab)+", {"ab", "abab"}, {"", "aba", "ba"}},
        {"(?:x|y){2,3}", {"xy", "yyy", "xxy"}, {"x", "xyxy", ""}},
        {"a{3}", {"aaa"}, {"aa", "aaaa"}},
        {"a{2,}", {"aa", "aaaaaaa"}, {"a", ""}},
        {"a{0,2}b", {"b", "ab", "aab"}, {"aaab"}},
        {"\\d+\\.\\d", {"12.5", "0.0"}, {"12.", ".5", "a.5"}},
        {"\\w\\s\\W", {"a !", "_\t."}, {"a a", "!  "}},
        {"[\\d_]x", {"1x", "_x"}, {"ax"}},
        {"\\(\\)\\*\\[\\{\\|", {"()*[{|"}, {""}},
        {"^ab$", {"ab"}, {"^ab$", "a"}},
        {"[é日]", {"\xc3\xa9", "\xe6\x97\xa5"}, {"e", ""}},
        {"", {""}, {"a"}},
        {"((a|b)(c|d))*", {"", "ac", "bdac"}, {"a", "ab"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        constraint *c = compile_re(&t, cases[i].re, ULM_OK);
        for (int k = 0; k < 4 && cases[i].yes[k]; k++) {
            if (!matches(c, cases[i].yes[k])) print_message("%s should match '%s'\n", cases[i].re, cases[i].yes[k]);
            assert_true(matches(c, cases[i].yes[k]));
        }
        for (int k = 0; k < 4 && cases[i].no[k]; k++) {
            if (matches(c, cases[i].no[k])) print_message("%s should not match '%s'\n", cases[i].re, cases[i].no[k]);
            assert_false(matches(c, cases[i].no[k]));
        }
        cons_free(c);
    }
    tv_free(&t);
}

static void test_regex_errors(void **state) {
    tvocab t;
    tv_build(&t, 10);
    static const char *const bad[] = {"(", "a)", "[abc", "*a", "a{2,1}", "a{", "\\q", "[z-a]", "\xff", "(?=a)",
                                      "a\\", "[\\D]", "[é-ë]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        constraint *c = NULL;
        ulm_error err;
        ulm_status st = cons_compile_regex(t.v, bad[i], strlen(bad[i]), NULL, &c, &err);
        assert_int_not_equal(st, ULM_OK);
        assert_null(c);
        assert_true(strlen(err.msg) > 0);
    }
    /* random regex-alphabet strings: compile or fail cleanly, never crash */
    static const char alpha[] = "ab()[]{}|*+?.\\^$-,0123dws:";
    for (int i = 0; i < 3000; i++) {
        char re[16];
        int l = (int)(rnd() % 15);
        for (int k = 0; k < l; k++) re[k] = alpha[rnd() % (sizeof alpha - 1)];
        re[l] = 0;
        constraint *c = NULL;
        ulm_error err;
        if (cons_compile_regex(t.v, re, (size_t)l, NULL, &c, &err) == ULM_OK) {
            size_t n;
            char *s = random_decode(c, &t, 20, &n);
            if (s) assert_true(cons_matches(c, s, n));
            free(s);
            cons_free(c);
        }
    }
    tv_free(&t);
}

static void test_regex_random_decode(void **state) {
    tvocab t;
    tv_build(&t, 400);
    static const char *const res[] = {
        "[A-Z][a-z]+( [a-z]+)*\\.", "(yes|no|maybe)", "[0-9]{3}-[0-9]{4}", "a(b|c)*d{1,3}",
        "(\\{\"k\":[0-9]+\\})?", "[a-z ]{0,12}", "x|xy|xyz|", "(ab|a)(bc|c)?"};
    static const char *const posix[] = {
        "[A-Z][a-z]+( [a-z]+)*\\.", "(yes|no|maybe)", "[0-9]{3}-[0-9]{4}", "a(b|c)*d{1,3}",
        "(\\{\"k\":[0-9]+\\})?", "[a-z ]{0,12}", "x|xy|xyz|", "(ab|a)(bc|c)?"};
    for (size_t i = 0; i < sizeof res / sizeof *res; i++) {
        constraint *c = compile_re(&t, res[i], ULM_OK);
        for (int k = 0; k < 40; k++) {
            size_t n;
            char *s = random_decode(c, &t, 30, &n);
            assert_non_null(s);
            if (!posix_full_match(posix[i], s)) print_message("%s produced '%s'\n", res[i], s);
            assert_true(posix_full_match(posix[i], s));
            free(s);
        }
        cons_free(c);
    }
    tv_free(&t);
}

static void test_choices(void **state) {
    tvocab t;
    tv_build(&t, 300);
    const char *ch[] = {"positive", "negative", "neutral", "neg"};
    size_t l[] = {8, 8, 7, 3};
    constraint *c;
    ulm_error err;
    assert_int_equal(cons_compile_choices(t.v, ch, l, 4, NULL, &c, &err), ULM_OK);
    int seen[4] = {0};
    for (int k = 0; k < 200; k++) {
        size_t n;
        char *s = random_decode(c, &t, 10, &n);
        int which = -1;
        for (int j = 0; j < 4; j++)
            if (!strcmp(s, ch[j])) which = j;
        assert_true(which >= 0);
        seen[which]++;
        free(s);
    }
    for (int j = 0; j < 4; j++) assert_true(seen[j] > 0);
    cons_free(c);
    /* a huge choice list stays a trie: 20000 distinct words */
    int nh = 20000;
    char **hs = malloc((size_t)nh * sizeof *hs);
    size_t *hl = malloc((size_t)nh * sizeof *hl);
    for (int i = 0; i < nh; i++) {
        hs[i] = malloc(32);
        hl[i] = (size_t)snprintf(hs[i], 32, "w%dq%d", i * 7919 % 100003, i);
    }
    assert_int_equal(cons_compile_choices(t.v, (const char *const *)hs, hl, nh, NULL, &c, &err), ULM_OK);
    for (int k = 0; k < 30; k++) {
        size_t n;
        char *s = random_decode(c, &t, 20, &n);
        int found = 0;
        for (int i = 0; i < nh && !found; i++) found = hl[i] == n && !memcmp(hs[i], s, n);
        assert_true(found);
        free(s);
    }
    cons_free(c);
    for (int i = 0; i < nh; i++) free(hs[i]);
    free(hs);
    free(hl);
    tv_free(&t);
}

static constraint *compile_schema(const tvocab *t, const char *schema_text, const char *input, ulm_status want,
                                  json_doc **doc) {
    *doc = parse(schema_text);
    cons_opts o = {0};
    o.strings_from_input = input != NULL;
    constraint *c = NULL;
    ulm_error err;
    ulm_status st = cons_compile_schema(t->v, json_root(*doc), input, input ? strlen(input) : 0, &o, &c, &err);
    if (st != want) print_message("schema %s: %s\n", schema_text, st ? err.msg : "ok");
    assert_int_equal(st, want);
    return c;
}

static void check_schema_decodes(const tvocab *t, const char *schema_text, const char *input, int runs, int max_tokens) {
    json_doc *sd;
    constraint *c = compile_schema(t, schema_text, input, ULM_OK, &sd);
    for (int k = 0; k < runs; k++) {
        size_t n;
        char *s = random_decode(c, t, max_tokens, &n);
        assert_non_null(s);
        json_doc *d;
        ulm_error err;
        ulm_status st = json_parse(s, n, &d, &err);
        if (st) print_message("schema %s produced invalid JSON '%s': %s\n", schema_text, s, err.msg);
        assert_int_equal(st, ULM_OK);
        int ok = schema_ok(json_root(sd), json_root(d), input);
        if (!ok) print_message("schema %s produced '%s'\n", schema_text, s);
        assert_true(ok);
        json_free(d);
        free(s);
    }
    cons_free(c);
    json_free(sd);
}

static const char *const feature_schemas[] = {
    "{\"type\":\"boolean\"}",
    "{\"type\":\"null\"}",
    "{\"type\":\"integer\"}",
    "{\"type\":\"integer\",\"minimum\":0}",
    "{\"type\":\"number\"}",
    "{\"type\":\"string\"}",
    "{\"type\":\"string\",\"maxLength\":5}",
    "{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}",
    "{\"type\":\"string\",\"enum\":[\"red\",\"green\",\"a\\\"b\"]}",
    "{\"type\":\"string\",\"pattern\":\"[A-Z][a-z]{1,4}\"}",
    "{\"enum\":[1,\"x\",null,[true,2],{\"k\":\"v\"}]}",
    "{\"const\":{\"a\":[1,2]}}",
    "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"maxItems\":3}",
    "{\"type\":\"array\",\"items\":{\"type\":\"boolean\"},\"minItems\":2,\"maxItems\":4}",
    "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":3}}",
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":8},\"age\":{\"type\":\"integer\"}},"
    "\"required\":[\"name\",\"age\"]}",
    "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"boolean\"},\"c\":{\"type\":\"null\"}},"
    "\"required\":[\"b\"]}",
    "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"boolean\"}}}",
    "{\"type\":\"object\",\"properties\":{}}",
    "{\"anyOf\":[{\"type\":\"integer\"},{\"type\":\"string\",\"maxLength\":2}]}",
    "{\"type\":[\"string\",\"null\"],\"maxLength\":3}",
    "{\"type\":\"object\",\"properties\":{\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":"
    "{\"k\":{\"type\":\"string\",\"enum\":[\"p\",\"q\"]},\"v\":{\"type\":\"number\"}},\"required\":[\"k\"]},\"maxItems\":2}},"
    "\"required\":[\"tags\"]}",
};

static void test_schema_features(void **state) {
    tvocab t;
    tv_build(&t, 400);
    for (size_t i = 0; i < sizeof feature_schemas / sizeof *feature_schemas; i++)
        check_schema_decodes(&t, feature_schemas[i], NULL, 25, 60);
    /* exact acceptance of canonical texts */
    json_doc *d;
    constraint *c = compile_schema(&t,
                                   "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":"
                                   "\"string\",\"maxLength\":2}},\"required\":[\"b\"]}",
                                   NULL, ULM_OK, &d);
    assert_true(matches(c, "{\"b\":\"\"}"));
    assert_true(matches(c, "{\"a\":-12,\"b\":\"x\\n\"}"));
    assert_true(matches(c, "{\"b\":\"\xc3\xa9\xc3\xa9\"}"));
    assert_false(matches(c, "{\"a\":1}"));                  /* b required */
    assert_false(matches(c, "{\"b\":\"x\",\"a\":1}"));      /* declared order */
    assert_false(matches(c, "{\"a\":01,\"b\":\"\"}"));      /* no leading zero */
    assert_false(matches(c, "{\"b\":\"abc\"}"));            /* maxLength */
    assert_false(matches(c, "{ \"b\":\"\"}"));              /* canonical: no whitespace */
    assert_false(matches(c, "{\"b\":\"\x01\"}"));           /* control character */
    assert_false(matches(c, "{\"b\":\"\\u0041\"}"));        /* no \u escapes */
    cons_free(c);
    json_free(d);
    tv_free(&t);
}

static void test_schema_adversarial(void **state) {
    tvocab t;
    tv_build(&t, 100);
    /* nesting 60 deep: fine; 100 deep: reported, not a stack overflow */
    char *deep = malloc(8192);
    for (int depth = 60; depth <= 100; depth += 40) {
        size_t k = 0;
        for (int i = 0; i < depth; i++)
            k += (size_t)sprintf(deep + k, "{\"type\":\"object\",\"properties\":{\"a\":");
        k += (size_t)sprintf(deep + k, "{\"type\":\"integer\"}");
        for (int i = 0; i < depth; i++) k += (size_t)sprintf(deep + k, "}}");
        deep[k] = 0;
        json_doc *d;
        constraint *c = compile_schema(&t, deep, NULL, depth == 60 ? ULM_OK : ULM_ERR_CONSTRAINT, &d);
        if (c) {
            size_t n;
            char *s = random_decode(c, &t, 400, &n);
            assert_non_null(s);
            json_doc *o;
            ulm_error err;
            assert_int_equal(json_parse(s, n, &o, &err), ULM_OK);
            assert_true(schema_ok(json_root(d), json_root(o), NULL));
            json_free(o);
            free(s);
            cons_free(c);
        }
        json_free(d);
    }
    /* optional properties nested deep stay linear in size */
    size_t k = 0;
    for (int i = 0; i < 40; i++)
        k += (size_t)sprintf(deep + k, "{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"null\"},\"a\":");
    k += (size_t)sprintf(deep + k, "{\"type\":\"integer\"}");
    for (int i = 0; i < 40; i++) k += (size_t)sprintf(deep + k, "}}");
    deep[k] = 0;
    check_schema_decodes(&t, deep, NULL, 5, 400);
    free(deep);
    /* a huge enum */
    size_t cap = 400000;
    char *big = malloc(cap);
    k = (size_t)sprintf(big, "{\"type\":\"string\",\"enum\":[");
    for (int i = 0; i < 10000; i++) k += (size_t)sprintf(big + k, "%s\"v%d_%d\"", i ? "," : "", i, i * 31 % 977);
    k += (size_t)sprintf(big + k, "]}");
    check_schema_decodes(&t, big, NULL, 20, 30);
    free(big);
    /* empty pattern: only "" */
    json_doc *d;
    constraint *c = compile_schema(&t, "{\"type\":\"string\",\"pattern\":\"\"}", NULL, ULM_OK, &d);
    assert_true(matches(c, "\"\""));
    assert_false(matches(c, "\"a\""));
    cons_free(c);
    json_free(d);
    check_schema_decodes(&t, "{\"type\":\"string\",\"pattern\":\"\"}", NULL, 5, 5);
    /* a pattern that asks for a quote can never be written inside a JSON string */
    c = compile_schema(&t, "{\"type\":\"string\",\"pattern\":\"a\\\"b\"}", NULL, ULM_OK, &d);
    cons_run r;
    ulm_error err;
    assert_int_equal(cons_begin(c, 50, &r, &err), ULM_ERR_CONSTRAINT);
    cons_free(c);
    json_free(d);
    /* long maxLength and unsupported / malformed schemas */
    check_schema_decodes(&t, "{\"type\":\"string\",\"maxLength\":2000}", NULL, 3, 100);
    static const char *const bad[] = {"{\"type\":\"string\",\"maxLength\":-1}", "{\"type\":\"frob\"}", "{}",
                                      "{\"$ref\":\"#/x\"}", "{\"type\":\"array\"}",
                                      "{\"type\":\"object\",\"properties\":{},\"required\":[\"x\"]}",
                                      "{\"type\":\"string\",\"minLength\":3,\"maxLength\":1}", "{\"enum\":[]}",
                                      "{\"type\":\"string\",\"pattern\":\"(\"}", "{\"type\":7}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        d = parse(bad[i]);
        c = NULL;
        assert_int_not_equal(cons_compile_schema(t.v, json_root(d), NULL, 0, NULL, &c, &err), ULM_OK);
        assert_null(c);
        json_free(d);
    }
    tv_free(&t);
}

static void test_unsatisfiable(void **state) {
    tvocab t;
    tv_build(&t, 0);
    ulm_error err;
    cons_run r;
    /* 50 'a's cannot fit in 10 tokens ("aa"-like pieces are absent with 0 random tokens,
     * except "a" itself) */
    constraint *c = compile_re(&t, "a{50}", ULM_OK);
    assert_int_equal(cons_begin(c, 10, &r, &err), ULM_ERR_CONSTRAINT);
    assert_int_equal(err.code, ULM_ERR_CONSTRAINT);
    assert_int_equal(cons_begin(c, 50, &r, &err), ULM_OK);
    cons_free(c);
    /* a JSON object with a long required string cannot fit in 5 tokens */
    json_doc *d;
    c = compile_schema(&t, "{\"type\":\"string\",\"minLength\":20}", NULL, ULM_OK, &d);
    assert_int_equal(cons_begin(c, 5, &r, &err), ULM_ERR_CONSTRAINT);
    cons_free(c);
    json_free(d);
    /* lines: 3 words cannot hold 5 line breaks */
    assert_int_equal(cons_compile_lines(t.v, "one two three", 13, 5, NULL, &c, &err), ULM_OK);
    assert_int_equal(cons_begin(c, 100, &r, &err), ULM_ERR_CONSTRAINT);
    cons_free(c);
    /* a vocabulary that cannot spell the constraint */
    const char *pieces[] = {"", "a", "b"};
    uint32_t lens[] = {0, 1, 1};
    int32_t eog = 0;
    cons_vocab *v;
    assert_int_equal(cons_vocab_new(3, pieces, lens, &eog, 1, &v, &err), ULM_OK);
    assert_int_equal(cons_compile_regex(v, "abc", 3, NULL, &c, &err), ULM_OK);
    assert_int_equal(cons_begin(c, 100, &r, &err), ULM_ERR_CONSTRAINT);
    cons_free(c);
    cons_vocab_free(v);
    tv_free(&t);
}

static void test_budget_forces_completion(void **state) {
    tvocab t;
    tv_build(&t, 300);
    /* the automaton would happily run on; the budget makes every run end accepting */
    constraint *c = compile_re(&t, "[a-z ]*!", ULM_OK);
    for (int max = 1; max <= 8; max++)
        for (int k = 0; k < 20; k++) {
            size_t n;
            char *s = random_decode(c, &t, max, &n);
            assert_non_null(s);
            assert_true(posix_full_match("[a-z ]*!", s));
            free(s);
        }
    cons_free(c);
    check_schema_decodes(&t,
                         "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
                         "\"required\":[\"a\"]}",
                         NULL, 40, 12);
    tv_free(&t);
}

static void test_lines(void **state) {
    tvocab t;
    tv_build(&t, 300);
    const char *in = "  an old silent pond\n a frog jumps into the pond   splash silence again ";
    const char *words[] = {"an", "old", "silent", "pond", "a", "frog", "jumps", "into", "the", "pond", "splash",
                           "silence", "again"};
    for (int breaks = 0; breaks <= 2; breaks++) {
        constraint *c;
        ulm_error err;
        cons_opts o = {0};
        o.leading_space = breaks == 2;
        assert_int_equal(cons_compile_lines(t.v, in, strlen(in), breaks, &o, &c, &err), ULM_OK);
        for (int k = 0; k < 30; k++) {
            size_t n;
            char *s = random_decode(c, &t, 80, &n);
            assert_non_null(s);
            const char *p = cons_strip_leading(c, s, &n);
            /* independent check: split on ' ' and '\n', compare words, count newlines */
            int nl = 0, w = 0;
            size_t i = 0;
            while (i <= n) {
                size_t j = i;
                while (j < n && p[j] != ' ' && p[j] != '\n') j++;
                assert_true(w < 13);
                assert_int_equal(j - i, strlen(words[w]));
                assert_memory_equal(p + i, words[w], j - i);
                w++;
                if (j < n && p[j] == '\n') nl++;
                i = j + 1;
            }
            assert_int_equal(w, 13);
            assert_int_equal(nl, breaks);
            free(s);
        }
        cons_free(c);
    }
    tv_free(&t);
}

static void test_entities(void **state) {
    tvocab t;
    tv_build(&t, 300);
    const char *in = "Alice met Bob in Paris on 12 May; she said \"bonjour\" \xe6\x97\xa5\xe6\x9c\xac\\ok.";
    const char *schema = "{\"type\":\"object\",\"properties\":{\"people\":{\"type\":\"array\",\"items\":{\"type\":"
                         "\"string\"},\"maxItems\":3},\"place\":{\"type\":\"string\"}},\"required\":[\"people\"]}";
    check_schema_decodes(&t, schema, in, 60, 60);
    json_doc *d;
    constraint *c = compile_schema(&t, schema, in, ULM_OK, &d);
    assert_true(matches(c, "{\"people\":[\"Alice\",\"Bob\"],\"place\":\"Paris\"}"));
    assert_true(matches(c, "{\"people\":[\"said \\\"bonjour\\\"\"]}"));
    assert_true(matches(c, "{\"people\":[\"\xe6\x9c\xac\\\\ok\"]}"));
    assert_false(matches(c, "{\"people\":[\"Carol\"]}"));
    assert_false(matches(c, "{\"people\":[\"Alice met Paris\"]}"));
    assert_false(matches(c, "{\"people\":[\"\xe6\x97\"]}")); /* half a character */
    cons_free(c);
    json_free(d);
    tv_free(&t);
}

/* "tagged_spans": SPAN US TAG items, each a word span after the previous one, raw bytes
 * (no JSON escaping), never a control character; every random decode is text that
 * tagged_to_json turns into an object of the input's word spans. */
static void test_tagged_spans(void **state) {
    (void)state;
    tvocab t;
    tv_build(&t, 300);
    json_doc *d = parse("{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"people\",\"l\":\"places\"},\"max_items\":3}");
    ulm_error err;
    assert_true(cons_spec_needs_input(json_root(d)));
    assert_int_equal(cons_check_spec(json_root(d), &err), ULM_OK);
    const char *in = "Ann met \"Bo\" Li in S\xc3\xa3o Paulo,\tthen\nAnn left.";
    constraint *c;
    assert_int_equal(cons_compile_spec(t.v, json_root(d), in, strlen(in), &c, &err), ULM_OK);
    static const struct { const char *text; int ok; } cases[] = {
        {"", 1},                                        /* no items */
        {"Ann\x1fp", 1},
        {"Ann\x1fpS\xc3\xa3o Paulo\x1fl", 1},
        {"Bo\" Li\x1fp", 1},                            /* raw quote inside a span */
        {"Ann\x1fpAnn\x1fp", 1},                        /* the second occurrence */
        {"Ann\x1fpBo\x1fpLi\x1fpAnn\x1fp", 0},          /* max_items 3 */
        {"Paulo\x1flAnn\x1fp", 1},                      /* the later Ann */
        {"Paulo\x1flBo\x1fp", 0},                       /* out of order */
        {"Bo\" Li\x1fpLi\x1fp", 0},                     /* overlap */
        {"Ann\x1fx", 0},                                /* unknown tag */
        {"Ann\x1f", 0},                                 /* no tag */
        {"Ann", 0},
        {"An\x1fp", 0},                                 /* not a word span */
        {"Paulo,\tthen\x1fl", 0},                       /* a tab inside: control characters never copied */
        {"then\nAnn\x1fp", 0},
        {"Bo\\\" Li\x1fp", 0},                          /* no JSON escapes */
        {" Ann\x1fp", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (cons_matches(c, cases[i].text, strlen(cases[i].text)) != cases[i].ok) fail_msg("tagged_spans case %zu", i);
    tagged_form f;
    assert_int_equal(tagged_form_parse(json_root(d), &f, &err), ULM_OK);
    for (int k = 0; k < 40; k++) {
        size_t n;
        char *s = random_decode(c, &t, 60, &n);
        assert_non_null(s);
        assert_true(cons_matches(c, s, n));
        char *j;
        size_t jl;
        assert_int_equal(tagged_to_json(&f, s, n, &j, &jl, &err), ULM_OK);
        json_doc *a;
        assert_int_equal(json_parse(j, jl, &a, &err), ULM_OK);
        const json_value *r = json_root(a);
        assert_int_equal(json_len(r), 2);
        for (size_t key = 0; key < 2; key++) {
            const json_value *list = json_obj_val(r, key);
            for (size_t i = 0; i < json_len(list); i++) {
                size_t sl;
                const char *str = json_str(json_at(list, i), &sl);
                assert_non_null(memmem(in, strlen(in), str, sl));
            }
        }
        json_free(a);
        free(j);
        free(s);
    }
    cons_free(c);
    /* invalid UTF-8 input; an input with no words allows only the empty text */
    assert_int_equal(cons_compile_spec(t.v, json_root(d), "a\xff b", 4, &c, &err), ULM_ERR_UTF8);
    assert_int_equal(cons_compile_spec(t.v, json_root(d), "...", 3, &c, &err), ULM_OK);
    assert_true(cons_matches(c, "", 0));
    assert_false(cons_matches(c, "...\x1fp", 5));
    cons_free(c);
    json_free(d);
    /* malformed forms are spec errors; tagged_spans only as the whole constraint */
    static const char *const bad[] = {
        "{\"type\":\"tagged_spans\"}",
        "{\"type\":\"tagged_spans\",\"tags\":{}}",
        "{\"type\":\"tagged_spans\",\"tags\":[\"p\"]}",
        "{\"type\":\"tagged_spans\",\"tags\":{\"pp\":\"people\"}}",
        "{\"type\":\"tagged_spans\",\"tags\":{\" \":\"people\"}}",
        "{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"\"}}",
        "{\"type\":\"tagged_spans\",\"tags\":{\"p\":1}}",
        "{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"a\",\"p\":\"b\"}}",
        "{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"a\",\"q\":\"a\"}}",
        "{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"a\"},\"max_items\":0}",
        "{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"a\"},\"max_items\":1000}",
        "{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"a\"},\"max_items\":\"3\"}",
        "{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"a\"},\"space_before_spans\":1}",
        "{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"a\"},\"space_before_span\":true}", /* a typo is no option */
        "{\"type\":\"any_of\",\"of\":[{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"a\"}}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        d = parse(bad[i]);
        if (cons_check_spec(json_root(d), &err) != ULM_ERR_SPEC) fail_msg("accepted: %s", bad[i]);
        json_free(d);
    }
    tv_free(&t);
}

/* "space_before_spans": every span comes after exactly one space, whatever stands before it in
 * the input; the rest of the form is unchanged, and random decodes read back as word spans. */
static void test_tagged_spans_space(void **state) {
    (void)state;
    tvocab t;
    tv_build(&t, 300);
    json_doc *d = parse("{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"people\",\"l\":\"places\"},\"space_before_spans\":true}");
    ulm_error err;
    assert_int_equal(cons_check_spec(json_root(d), &err), ULM_OK);
    const char *in = "Ann met (Bo Li) in S\xc3\xa3o Paulo.";
    constraint *c;
    assert_int_equal(cons_compile_spec(t.v, json_root(d), in, strlen(in), &c, &err), ULM_OK);
    static const struct { const char *text; int ok; } cases[] = {
        {"", 1},
        {" Ann\x1fp", 1},
        {" Ann\x1fp Bo Li\x1fp S\xc3\xa3o Paulo\x1fl", 1},
        {" Bo\x1fp", 1},                                /* after "(" in the input: still one space */
        {"Ann\x1fp", 0},                                /* no space */
        {"  Ann\x1fp", 0},                              /* two */
        {" Ann\x1fpBo Li\x1fp", 0},                     /* the second item without one */
        {" Ann \x1fp", 0},                              /* nor after the span */
        {" An\x1fp", 0},
        {" Paulo\x1fl Bo\x1fp", 0},                     /* out of order */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (cons_matches(c, cases[i].text, strlen(cases[i].text)) != cases[i].ok) fail_msg("space case %zu", i);
    tagged_form f;
    assert_int_equal(tagged_form_parse(json_root(d), &f, &err), ULM_OK);
    assert_int_equal(f.space, 1);
    for (int k = 0; k < 40; k++) {
        size_t n;
        char *s = random_decode(c, &t, 60, &n);
        assert_non_null(s);
        char *j;
        size_t jl;
        assert_int_equal(tagged_to_json(&f, s, n, &j, &jl, &err), ULM_OK);
        json_doc *a;
        assert_int_equal(json_parse(j, jl, &a, &err), ULM_OK);
        for (size_t key = 0; key < 2; key++) {
            const json_value *list = json_obj_val(json_root(a), key);
            for (size_t i = 0; i < json_len(list); i++) {
                size_t sl;
                const char *str = json_str(json_at(list, i), &sl);
                assert_true(sl > 0 && str[0] != ' '); /* the space is the form's, not the name's */
                assert_non_null(memmem(in, strlen(in), str, sl));
            }
        }
        json_free(a);
        free(j);
        free(s);
    }
    cons_free(c);
    json_free(d);
    tv_free(&t);
}

static void test_spec_objects(void **state) {
    tvocab t;
    tv_build(&t, 50);
    static const struct { const char *spec; ulm_status st; } cases[] = {
        {"{\"type\":\"choice\",\"choices\":[\"yes\",\"no\"]}", ULM_OK},
        {"{\"type\":\"regex\",\"pattern\":\"[0-9]+\"}", ULM_OK},
        {"{\"type\":\"json_schema\",\"schema\":{\"type\":\"integer\"}}", ULM_OK},
        {"{\"type\":\"lines\",\"breaks\":1}", ULM_OK},
        {"{\"type\":\"json_schema\",\"schema\":{\"type\":\"string\"},\"strings_from_input\":true}", ULM_OK},
        {"{\"type\":\"choice\",\"choices\":[]}", ULM_ERR_SPEC},
        {"{\"type\":\"choice\",\"choices\":[1]}", ULM_ERR_SPEC},
        {"{\"type\":\"regex\"}", ULM_ERR_SPEC},
        {"{\"type\":\"lines\",\"breaks\":-1}", ULM_ERR_SPEC},
        {"{\"type\":\"json_schema\"}", ULM_ERR_SPEC},
        {"{\"type\":\"grammar\"}", ULM_ERR_SPEC},
        {"[1]", ULM_ERR_SPEC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_doc *d = parse(cases[i].spec);
        constraint *c = NULL;
        ulm_error err;
        ulm_status st = cons_compile_spec(t.v, json_root(d), "one two", 7, &c, &err);
        if (st != cases[i].st) print_message("%s: %s\n", cases[i].spec, err.msg);
        assert_int_equal(st, cases[i].st);
        assert_int_equal(cons_check_spec(json_root(d), &err), cases[i].st);
        if (c) {
            size_t n;
            char *s = random_decode(c, &t, 20, &n);
            assert_non_null(s);
            free(s);
        }
        cons_free(c);
        json_free(d);
    }
    json_doc *d = parse("{\"type\":\"lines\",\"breaks\":1}");
    assert_true(cons_spec_needs_input(json_root(d)));
    json_free(d);
    d = parse("{\"type\":\"regex\",\"pattern\":\"a\"}");
    assert_false(cons_spec_needs_input(json_root(d)));
    json_free(d);
    tv_free(&t);
}

/* any_of: the haiku spec's union of input lines and a refusal, compiled per input; each
 * member keeps its own options; the union is exactly the members' texts. */
static void test_any_of(void **state) {
    tvocab t;
    tv_build(&t, 50);
    static const char haiku[] = "{\"type\":\"any_of\",\"of\":[{\"type\":\"lines\",\"breaks\":2},"
                                "{\"type\":\"choice\",\"choices\":[\"NOT_A_HAIKU\"]}]}";
    json_doc *d = parse(haiku);
    ulm_error err;
    assert_true(cons_spec_needs_input(json_root(d)));
    assert_int_equal(cons_check_spec(json_root(d), &err), ULM_OK);
    constraint *c;
    const char *in = "an old silent pond";
    assert_int_equal(cons_compile_spec(t.v, json_root(d), in, strlen(in), &c, &err), ULM_OK);
    static const struct { const char *text; int ok; } cases[] = {
        {"NOT_A_HAIKU", 1}, {"an old\nsilent\npond", 1}, {"an\nold silent\npond", 1}, {"an\nold\nsilent pond", 1},
        {"an old silent pond", 0}, {"an\nold\nsilent\npond", 0}, {"NOT_A_HAIKU an", 0}, {"NOT_A", 0}, {"", 0},
        {"an old\nsilent\nfrog", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        assert_int_equal(cons_matches(c, cases[i].text, strlen(cases[i].text)), cases[i].ok);
    for (int k = 0; k < 30; k++) { /* random decoding only ever ends in one of the members */
        size_t n;
        char *s = random_decode(c, &t, 24, &n);
        assert_non_null(s);
        int nl = 0;
        for (size_t j = 0; j < n; j++) nl += s[j] == '\n';
        assert_true(!strcmp(s, "NOT_A_HAIKU") || nl == 2);
        assert_true(cons_matches(c, s, n));
        free(s);
    }
    cons_free(c);
    /* too few words for two breaks: the lines member is empty, the refusal still works */
    assert_int_equal(cons_compile_spec(t.v, json_root(d), "two words", 9, &c, &err), ULM_OK);
    assert_true(cons_matches(c, "NOT_A_HAIKU", 11));
    assert_false(cons_matches(c, "two\nwords", 9));
    cons_free(c);
    json_free(d);
    /* a member's own options: strings_from_input inside any_of */
    d = parse("{\"type\":\"any_of\",\"of\":[{\"type\":\"json_schema\",\"strings_from_input\":true,"
              "\"schema\":{\"type\":\"string\"}},{\"type\":\"regex\",\"pattern\":\"[0-9]+\"}]}");
    assert_true(cons_spec_needs_input(json_root(d)));
    assert_int_equal(cons_compile_spec(t.v, json_root(d), "Alice in Paris", 14, &c, &err), ULM_OK);
    assert_true(cons_matches(c, "\"Paris\"", 7));
    assert_true(cons_matches(c, "42", 2));
    assert_false(cons_matches(c, "\"Bob\"", 5));
    assert_true(cons_matches(c, "\"\"", 2)); /* no minLength: the empty substring too */
    cons_free(c);
    json_free(d);
    /* minLength >= 1 with strings from the input: never the empty string */
    d = parse("{\"type\":\"json_schema\",\"strings_from_input\":true,\"schema\":{\"type\":\"array\","
              "\"items\":{\"type\":\"string\",\"minLength\":1}}}");
    assert_int_equal(cons_compile_spec(t.v, json_root(d), "Alice in Paris", 14, &c, &err), ULM_OK);
    assert_true(cons_matches(c, "[\"Alice\",\"Paris\"]", 17));
    assert_true(cons_matches(c, "[]", 2));
    assert_false(cons_matches(c, "[\"\"]", 4));
    assert_false(cons_matches(c, "[\"Alice\",\"\"]", 12));
    cons_free(c);
    json_free(d);
    /* "words": spans from a word start to a word end, escapes kept */
    d = parse("{\"type\":\"json_schema\",\"strings_from_input\":\"words\",\"schema\":{\"type\":\"array\","
              "\"items\":{\"type\":\"string\"}}}");
    assert_true(cons_spec_needs_input(json_root(d)));
    assert_int_equal(cons_check_spec(json_root(d), &err), ULM_OK);
    const char *win = "Dr. Chlo\xc3\xa9 Ng met \"Zed\" in S\xc3\xa3o Paulo, 3/14/2021.";
    assert_int_equal(cons_compile_spec(t.v, json_root(d), win, strlen(win), &c, &err), ULM_OK);
    static const struct { const char *text; int ok; } wc[] = {
        {"[\"Chlo\xc3\xa9 Ng\"]", 1}, {"[\"Dr\"]", 1}, {"[\"S\xc3\xa3o Paulo\",\"3/14/2021\"]", 1},
        {"[\"Zed\\\" in S\xc3\xa3o\"]", 1}, {"[\"Dr. Chlo\xc3\xa9\"]", 1}, {"[]", 1},
        {"[\"Chlo\"]", 0}, {"[\"hlo\xc3\xa9\"]", 0}, {"[\"\"]", 0}, {"[\"Dr.\"]", 0}, {"[\" Ng\"]", 0},
        {"[\"Paulo,\"]", 0}, {"[\"14/2\"]", 0}, {"[\"Zed\"]", 1}, {"[\"\\\"Zed\"]", 0},
    };
    for (size_t i = 0; i < sizeof wc / sizeof *wc; i++) {
        if (cons_matches(c, wc[i].text, strlen(wc[i].text)) != wc[i].ok) fail_msg("words: %s", wc[i].text);
    }
    assert_random_decodes_match(c, &t, 60); /* random decoding stays within word spans */
    cons_free(c);
    json_free(d);
    /* "words_in_order": array items follow each other in the input, minItems/maxItems kept;
     * a lone string property is a plain word span */
    d = parse("{\"type\":\"json_schema\",\"strings_from_input\":\"words_in_order\",\"schema\":{\"type\":\"object\","
              "\"properties\":{\"a\":{\"type\":\"array\",\"maxItems\":2,\"items\":{\"type\":\"string\"}},"
              "\"b\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"type\":\"string\"}},\"c\":{\"type\":\"string\"}},"
              "\"required\":[\"a\",\"b\",\"c\"]}}");
    assert_true(cons_spec_needs_input(json_root(d)));
    assert_int_equal(cons_check_spec(json_root(d), &err), ULM_OK);
    const char *oin = "Ann met Bo Li in Oslo, then Ann left.";
    assert_int_equal(cons_compile_spec(t.v, json_root(d), oin, strlen(oin), &c, &err), ULM_OK);
    static const struct { const char *text; int ok; } oc[] = {
        {"{\"a\":[\"Ann\",\"Bo Li\"],\"b\":[\"Oslo\"],\"c\":\"Ann\"}", 1},
        {"{\"a\":[],\"b\":[\"Ann\",\"Ann\"],\"c\":\"left\"}", 1},        /* two occurrences, in order */
        {"{\"a\":[\"Ann\",\"Bo\"],\"b\":[\"Li in Oslo\",\"left\"],\"c\":\"Bo Li\"}", 1},
        {"{\"a\":[\"Bo Li\",\"Ann\"],\"b\":[\"Oslo\"],\"c\":\"Ann\"}", 1}, /* the later Ann */
        {"{\"a\":[\"Oslo\",\"Bo Li\"],\"b\":[\"Oslo\"],\"c\":\"Ann\"}", 0}, /* out of order */
        {"{\"a\":[\"Bo Li\",\"Li\"],\"b\":[\"Oslo\"],\"c\":\"Ann\"}", 0},  /* overlaps */
        {"{\"a\":[\"Bo\",\"Bo\"],\"b\":[\"Oslo\"],\"c\":\"Ann\"}", 0},     /* repeat of one occurrence */
        {"{\"a\":[\"Ann\",\"Bo\",\"Oslo\"],\"b\":[\"Oslo\"],\"c\":\"Ann\"}", 0}, /* maxItems 2 */
        {"{\"a\":[],\"b\":[],\"c\":\"Ann\"}", 0},                              /* minItems 1 */
        {"{\"a\":[\"Os\"],\"b\":[\"Oslo\"],\"c\":\"Ann\"}", 0},              /* not a word span */
        {"{\"a\":[],\"b\":[\"Oslo\"],\"c\":\"Oslo, then\"}", 1},
        {"{\"a\":[],\"b\":[\"Oslo,\"],\"c\":\"Ann\"}", 0},
    };
    for (size_t i = 0; i < sizeof oc / sizeof *oc; i++) {
        if (cons_matches(c, oc[i].text, strlen(oc[i].text)) != oc[i].ok) fail_msg("words_in_order: %s", oc[i].text);
    }
    assert_random_decodes_match(c, &t, 120);
    cons_free(c);
    /* invalid UTF-8 input and an input with no words (only empty arrays can close) */
    assert_int_equal(cons_compile_spec(t.v, json_root(d), "a\xff b", 4, &c, &err), ULM_ERR_UTF8);
    /* no words: "b" (minItems 1) and "c" have nothing to copy, so nothing is accepted */
    assert_int_equal(cons_compile_spec(t.v, json_root(d), "...", 3, &c, &err), ULM_OK);
    assert_false(cons_matches(c, "{\"a\":[],\"b\":[],\"c\":\"...\"}", 26));
    assert_false(cons_matches(c, "{\"a\":[],\"b\":[\"...\"],\"c\":\"...\"}", 31));
    cons_free(c);
    json_free(d);
    d = parse("{\"type\":\"json_schema\",\"strings_from_input\":\"all\",\"schema\":{\"type\":\"string\"}}");
    assert_int_equal(cons_compile_spec(t.v, json_root(d), "x", 1, &c, &err), ULM_ERR_SPEC);
    json_free(d);
    /* malformed unions are spec errors, nesting is bounded */
    static const char *const bad[] = {
        "{\"type\":\"any_of\"}", "{\"type\":\"any_of\",\"of\":[]}", "{\"type\":\"any_of\",\"of\":{}}",
        "{\"type\":\"any_of\",\"of\":[{\"type\":\"regex\"}]}", "{\"type\":\"any_of\",\"of\":[1]}",
    };
    char nested[1024] = "";
    for (int k = 0; k < 10; k++) strcat(nested, "{\"type\":\"any_of\",\"of\":[");
    strcat(nested, "{\"type\":\"regex\",\"pattern\":\"a\"}");
    for (int k = 0; k < 10; k++) strcat(nested, "]}");
    for (size_t i = 0; i <= sizeof bad / sizeof *bad; i++) {
        d = parse(i < sizeof bad / sizeof *bad ? bad[i] : nested);
        c = NULL;
        assert_int_equal(cons_compile_spec(t.v, json_root(d), "x y z", 5, &c, &err), ULM_ERR_SPEC);
        assert_null(c);
        assert_int_equal(cons_check_spec(json_root(d), &err), ULM_ERR_SPEC);
        json_free(d);
    }
    tv_free(&t);
}

/* Every golden answer of the shipped tasks is what the task's own constraint accepts for its
 * input (tasks/<name>/task.json compiled per input), so constrained decoding can reach it
 * (with tagged_spans: the answer written as tagged spans, as the model must write it). */
static void test_task_golden_valid(void **state) {
    static const char *const tasks[] = {"haiku", "entities"};
    tvocab t;
    tv_build(&t, 0);
    for (int k = 0; k < 2; k++) {
        char path[64];
        snprintf(path, sizeof path, "tasks/%s/task.json", tasks[k]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static char spec[8192], line[4096];
        size_t n = fread(spec, 1, sizeof spec - 1, f);
        spec[n] = 0;
        fclose(f);
        json_doc *sd = parse(spec);
        const json_value *cs = json_get(json_root(sd), "constraint");
        assert_non_null(cs);
        tagged_form tf;
        ulm_error ferr;
        int tagged = json_str_eq(json_get(cs, "type"), "tagged_spans");
        if (tagged) assert_int_equal(tagged_form_parse(cs, &tf, &ferr), ULM_OK);
        snprintf(path, sizeof path, "tasks/%s/golden.jsonl", tasks[k]);
        f = fopen(path, "rb");
        assert_non_null(f);
        int count = 0;
        while (fgets(line, sizeof line, f)) {
            json_doc *d = parse(line);
            size_t il, ol;
            const char *in = json_str(json_get(json_root(d), "input"), &il);
            const char *out = json_str(json_get(json_root(d), "output"), &ol);
            constraint *c;
            ulm_error err;
            assert_int_equal(cons_compile_spec(t.v, cs, in, il, &c, &err), ULM_OK);
            char *tt = NULL;
            if (tagged) {
                assert_int_equal(tagged_from_json(&tf, in, il, out, ol, &tt, &ol, &err), ULM_OK);
                out = tt;
            }
            if (!cons_matches(c, out, ol)) fail_msg("%s: golden answer not accepted: %s", tasks[k], line);
            free(tt);
            cons_free(c);
            json_free(d);
            count++;
        }
        fclose(f);
        assert_int_equal(count, 400);
        json_free(sd);
    }
    tv_free(&t);
}

static void test_mask_cache_bounded(void **state) {
    tvocab t;
    tv_build(&t, 300);
    cons_opts o = {0};
    o.mask_cache_bytes = 4 * ((size_t)(t.n + 63) / 64) * 8; /* room for 4 masks */
    constraint *c;
    ulm_error err;
    assert_int_equal(cons_compile_regex(t.v, "[a-z]{0,40}", 11, &o, &c, &err), ULM_OK);
    for (int k = 0; k < 10; k++) {
        size_t n;
        char *s = random_decode(c, &t, 40, &n);
        assert_true(posix_full_match("[a-z]{0,40}", s));
        free(s);
    }
    cons_stats st;
    cons_get_stats(c, &st);
    assert_true(st.n_masks_cached <= 4);
    assert_true(st.n_walks > 4);
    cons_free(c);
    tv_free(&t);
}

int main(void) {
    setlocale(LC_ALL, "C.UTF-8"); /* regexec's '.' and classes on UTF-8 */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_trie),
        cmocka_unit_test(test_regex_features),
        cmocka_unit_test(test_regex_errors),
        cmocka_unit_test(test_regex_random_decode),
        cmocka_unit_test(test_choices),
        cmocka_unit_test(test_schema_features),
        cmocka_unit_test(test_schema_adversarial),
        cmocka_unit_test(test_unsatisfiable),
        cmocka_unit_test(test_budget_forces_completion),
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_entities),
        cmocka_unit_test(test_tagged_spans),
        cmocka_unit_test(test_tagged_spans_space),
        cmocka_unit_test(test_spec_objects),
        cmocka_unit_test(test_any_of),
        cmocka_unit_test(test_task_golden_valid),
        cmocka_unit_test(test_mask_cache_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
