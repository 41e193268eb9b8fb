/* JSON parser: values, errors with positions, hostile input (truncations, flips, depth). */
#include <math.h>
#include <time.h>
#include "test_util.h"
#include "json.h"

static json_doc *parse_ok(const char *s, size_t n) {
    json_doc *d = NULL;
    ulm_error err = {0};
    ulm_status st = json_parse(s, n, &d, &err);
    if (st != ULM_OK) print_message("unexpected error for %.*s: %s\n", (int)(n > 60 ? 60 : n), s, err.msg);
    assert_int_equal(st, ULM_OK);
    assert_non_null(d);
    return d;
}
#define PARSE_OK(lit) parse_ok(lit, sizeof(lit) - 1)

/* Parses a heap copy of exactly n bytes, so ASan catches any read past the end. */
static ulm_status parse_copy(const char *s, size_t n, json_doc **d, ulm_error *err) {
    char *cp = malloc(n ? n : 1);
    memcpy(cp, s, n);
    ulm_status st = json_parse(cp, n, d, err);
    free(cp);
    return st;
}

static void test_values(void **state) {
    static const char doc[] =
        "\xEF\xBB\xBF { \"a\": 1, \"b\": [true, false, null, -0, 2.5e3, \"x\\ty\"],\n"
        "  \"c\": {\"nested\": {\"k\": -42}}, \"empty_o\": {}, \"empty_a\": [], \"s\": \"\" }";
    json_doc *d = PARSE_OK(doc);
    const json_value *r = json_root(d);
    assert_int_equal(json_typeof(r), JSON_OBJECT);
    assert_int_equal(json_len(r), 6);
    size_t kl;
    assert_string_equal(json_obj_key(r, 0, &kl), "a");
    assert_int_equal(kl, 1);
    assert_string_equal(json_obj_key(r, 5, &kl), "s");
    assert_null(json_obj_key(r, 6, &kl));
    int64_t i;
    assert_int_equal(json_get_int(r, "a", &i), 0);
    assert_int_equal(i, 1);
    const json_value *b = json_get(r, "b");
    assert_int_equal(json_len(b), 6);
    int bv;
    assert_int_equal(json_bool(json_at(b, 0), &bv), 0);
    assert_int_equal(bv, 1);
    assert_int_equal(json_bool(json_at(b, 1), &bv), 0);
    assert_int_equal(bv, 0);
    assert_true(json_is_null(json_at(b, 2)));
    assert_int_equal(json_int(json_at(b, 3), &i), 0);
    assert_int_equal(i, 0);
    assert_true(signbit(json_num(json_at(b, 3))));
    assert_true(json_num(json_at(b, 4)) == 2500.0);
    assert_int_equal(json_int(json_at(b, 4), &i), 0); /* integral value written with an exponent */
    assert_int_equal(i, 2500);
    size_t sl;
    assert_string_equal(json_str(json_at(b, 5), &sl), "x\ty");
    assert_int_equal(sl, 3);
    assert_null(json_at(b, 6));
    assert_int_equal(json_typeof(json_at(b, 6)), JSON_NONE);
    assert_int_equal(json_get_int(json_get(json_get(r, "c"), "nested"), "k", &i), 0);
    assert_int_equal(i, -42);
    assert_int_equal(json_len(json_get(r, "empty_o")), 0);
    assert_true(json_is_obj(json_get(r, "empty_o")));
    assert_true(json_is_arr(json_get(r, "empty_a")));
    assert_true(json_str_eq(json_get(r, "s"), ""));
    /* absent and mistyped lookups answer "absent", chained through NULL */
    assert_null(json_get(r, "zz"));
    assert_null(json_get(json_get(r, "zz"), "a"));
    assert_int_equal(json_get_int(r, "b", &i), -1);
    const char *s;
    assert_int_equal(json_get_str(r, "a", &s, NULL), -1);
    assert_true(isnan(json_num(json_get(r, "s"))));
    assert_null(json_at(r, 0));
    json_free(d);

    /* scalars at top level, surrounding whitespace */
    d = PARSE_OK(" \t\r\n 3.25 \n");
    assert_true(json_num(json_root(d)) == 3.25);
    assert_int_equal(json_int(json_root(d), &i), -1);
    json_free(d);
    d = PARSE_OK("\"top\"");
    assert_true(json_str_eq(json_root(d), "top"));
    json_free(d);
}

static void test_strings(void **state) {
    json_doc *d = PARSE_OK("[\"a\\u0000b\", \"\\ud83d\\ude00\", \"\\u00e9\\u20AC\", \"\\\"\\\\\\/\\b\\f\\n\\r\\t\","
                           " \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\", \"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"]");
    const json_value *r = json_root(d);
    size_t n;
    const char *s = json_str(json_at(r, 0), &n);
    assert_int_equal(n, 3); /* NUL kept inside, with its length */
    assert_memory_equal(s, "a\0b", 4);
    s = json_str(json_at(r, 1), &n);
    assert_int_equal(n, 4);
    assert_memory_equal(s, "\xf0\x9f\x98\x80", 4);
    s = json_str(json_at(r, 2), &n);
    assert_int_equal(n, 5);
    assert_memory_equal(s, "\xc3\xa9\xe2\x82\xac", 5);
    s = json_str(json_at(r, 3), &n);
    assert_int_equal(n, 8);
    assert_memory_equal(s, "\"\\/\b\f\n\r\t", 8);
    s = json_str(json_at(r, 4), &n);
    assert_int_equal(n, 9);
    s = json_str(json_at(r, 5), &n);
    assert_int_equal(n, 7);
    json_free(d);
}

static void test_numbers(void **state) {
    json_doc *d = PARSE_OK("[9223372036854775807, -9223372036854775808, 9223372036854775808,"
                           " 123456789012345678901234567890, 1e-400, 1.5, 0.1, -12e-1, 1E+2, 123456789012345678,"
                           " 1.0e16]");
    const json_value *r = json_root(d);
    int64_t i;
    assert_int_equal(json_int(json_at(r, 0), &i), 0);
    assert_true(i == INT64_MAX);
    assert_int_equal(json_int(json_at(r, 1), &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(json_int(json_at(r, 2), &i), -1); /* beyond int64 and beyond 2^53 */
    assert_true(json_num(json_at(r, 2)) == 9223372036854775808.0);
    assert_int_equal(json_int(json_at(r, 3), &i), -1);
    assert_true(fabs(json_num(json_at(r, 3)) / 1.2345678901234568e29 - 1) < 1e-15);
    assert_true(json_num(json_at(r, 4)) == 0.0);
    assert_true(json_num(json_at(r, 5)) == 1.5);
    assert_true(json_num(json_at(r, 6)) == 0.1);
    assert_true(json_num(json_at(r, 7)) == -1.2);
    assert_int_equal(json_int(json_at(r, 8), &i), 0);
    assert_int_equal(i, 100);
    assert_int_equal(json_int(json_at(r, 9), &i), 0);
    assert_true(i == 123456789012345678LL);
    assert_int_equal(json_int(json_at(r, 10), &i), -1); /* 1e16 > 2^53: not claimed exact */
    json_free(d);
}

static void test_invalid_corpus(void **state) {
    static const char *bad[] = {
        "", " ", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{\"a\":}", "{1:2}", "{'a':1}", "[", "]", "{",
        "[1", "{\"a\":1", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\ud800\"", "\"\\udc00\"",
        "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"a\tb\"", "\"a\nb\"", "\"\xc0\x80\"", "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"", "\"\xff\"", "\"\xe2\x82\"", "\"\x80\"", "01", "-", "+1", ".5", "1.", "1e", "1e+",
        "-01", "0x10", "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "tru", "nul", "falsey", "[true false]",
        "1 2", "[]]", "{}}", "[,1]", "[1,,2]", "{\"a\":1 \"b\":2}", "\"a\" : 1", "[\"\\\"]",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        json_doc *d = (json_doc *)1;
        ulm_error err = {0};
        ulm_status st = parse_copy(bad[k], strlen(bad[k]), &d, &err);
        if (st == ULM_OK) print_message("accepted invalid input #%zu: %s\n", k, bad[k]);
        assert_int_not_equal(st, ULM_OK);
        assert_null(d);
        assert_non_null(strstr(err.msg, "line 1, column "));
        assert_null(strchr(err.msg, '\n'));
    }
    /* a raw NUL byte outside a string, and inside one */
    json_doc *d;
    ulm_error err;
    assert_int_not_equal(parse_copy("[1,\0 2]", 7, &d, &err), ULM_OK);
    assert_int_not_equal(parse_copy("\"a\0b\"", 5, &d, &err), ULM_OK);
    assert_int_equal(parse_copy("\"\xf0\x9f\x98\x80\"", 6, &d, &err), ULM_OK);
    json_free(d);
    assert_int_equal(parse_copy("\"\xed\xa0\x80\"", 5, &d, &err), ULM_ERR_UTF8);
}

static void test_error_position(void **state) {
    json_doc *d;
    ulm_error err;
    const char *s = "{\n  \"a\": [1, 2,\n    ]\n}";
    assert_int_equal(json_parse(s, strlen(s), &d, &err), ULM_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "line 3, column 5"));
    s = "[\"ok\",\n\"bad \\q\"]";
    assert_int_equal(json_parse(s, strlen(s), &d, &err), ULM_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "line 2, column 6"));
}

static void test_depth(void **state) {
    size_t n = 10000;
    char *s = malloc(2 * n);
    for (size_t i = 0; i < n; i++) s[i] = '[', s[2 * n - 1 - i] = ']';
    json_doc *d;
    ulm_error err;
    assert_int_equal(parse_copy(s, 2 * n, &d, &err), ULM_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "nesting"));
    /* exactly the limit is fine, one more is not */
    size_t m = JSON_MAX_DEPTH;
    assert_int_equal(json_parse(s + n - m, 2 * m, &d, &err), ULM_OK);
    const json_value *v = json_root(d);
    for (size_t i = 1; i < m; i++) v = json_at(v, 0);
    assert_true(json_is_arr(v));
    assert_int_equal(json_len(v), 0);
    json_free(d);
    assert_int_equal(json_parse(s + n - m - 1, 2 * m + 2, &d, &err), ULM_ERR_FORMAT);
    for (size_t i = 0; i < n; i++) s[i] = i % 2 ? '[' : '{'; /* unterminated mix: {[{[... */
    assert_int_equal(parse_copy(s, n, &d, &err), ULM_ERR_FORMAT);
    free(s);
}

static void test_large_object_lookup(void **state) {
    /* big enough for the hash index; includes a duplicate key (first wins) and keys with NUL */
    size_t cap = 1 << 20, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "{");
    for (int i = 0; i < 5000; i++) n += (size_t)snprintf(s + n, cap - n, "\"key%d\":%d,", i, i);
    n += (size_t)snprintf(s + n, cap - n, "\"key7\":-1, \"nul\\u0000x\": 5, \"\": 6}");
    json_doc *d = parse_ok(s, n);
    const json_value *r = json_root(d);
    assert_int_equal(json_len(r), 5003);
    char k[32];
    for (int i = 0; i < 5000; i++) {
        int64_t v;
        snprintf(k, sizeof k, "key%d", i);
        assert_int_equal(json_get_int(r, k, &v), 0);
        assert_int_equal(v, i);
        size_t kl;
        assert_string_equal(json_obj_key(r, (size_t)i, &kl), k); /* member order kept */
    }
    int64_t v;
    assert_int_equal(json_int(json_obj_val(r, 5000), &v), 0);
    assert_int_equal(v, -1);
    assert_null(json_get(r, "key5000"));
    assert_null(json_get(r, "nul")); /* NUL inside a key is part of it */
    assert_non_null(json_getn(r, "nul\0x", 5));
    assert_int_equal(json_get_int(r, "", &v), 0);
    assert_int_equal(v, 6);
    json_free(d);
    /* the same with a small object (linear lookup) */
    d = PARSE_OK("{\"a\":1,\"a\":2,\"b\":3}");
    assert_int_equal(json_get_int(json_root(d), "a", &v), 0);
    assert_int_equal(v, 1);
    json_free(d);
    free(s);
}

static const char sample[] =
    "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 0, \"content\": \"<pad>\", \"special\": true},"
    " {\"id\": 106, \"content\": \"<start_of_turn>\", \"special\": true}],"
    " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"vocab\": {\"a\": 0, \"\\u2581b\": 1, \"\\ud83d\\ude00\": 2},"
    " \"merges\": [[\"a\", \"b\"], \"c d\"], \"score\": -1.25e-3}}";

static void test_every_truncation(void **state) {
    size_t n = sizeof sample - 1;
    json_doc *d = parse_ok(sample, n);
    assert_int_equal(json_len(json_get(json_get(json_root(d), "model"), "vocab")), 3);
    json_free(d);
    for (size_t len = 0; len < n; len++) {
        ulm_error err = {0};
        d = (json_doc *)1;
        assert_int_not_equal(parse_copy(sample, len, &d, &err), ULM_OK);
        assert_null(d);
        assert_true(strlen(err.msg) > 0);
    }
}

static void touch(const json_value *v, int depth, uint64_t *acc) {
    /* walks the whole tree so ASan checks every pointer the parser produced */
    switch (json_typeof(v)) {
    case JSON_STRING: { size_t n; const char *s = json_str(v, &n); *acc += n + (unsigned char)s[n]; break; }
    case JSON_ARRAY: for (size_t i = 0; i < json_len(v); i++) touch(json_at(v, i), depth + 1, acc); break;
    case JSON_OBJECT:
        for (size_t i = 0; i < json_len(v); i++) {
            size_t kl;
            const char *k = json_obj_key(v, i, &kl);
            assert_true(json_getn(v, k, kl) != NULL);
            touch(json_obj_val(v, i), depth + 1, acc);
        }
        break;
    case JSON_NUMBER: *acc += (uint64_t)isfinite(json_num(v)); break;
    default: break;
    }
}

static void test_random_flips(void **state) {
    size_t n = sizeof sample - 1;
    uint64_t rng = 0x243f6a8885a308d3ull, acc = 0;
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        char *cp = malloc(n);
        memcpy(cp, sample, n);
        for (int k = 0; k <= it % 3; k++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            size_t pos = (rng >> 8) % n;
            if (it % 4 == 3) cp[pos] = "[]{}\",:\\u0"[(rng >> 40) % 11]; /* structural bytes */
            else cp[pos] ^= (char)(1 + (rng & 0xfe));
        }
        json_doc *d = NULL;
        ulm_error err;
        if (json_parse(cp, n, &d, &err) == ULM_OK) {
            accepted++;
            touch(json_root(d), 0, &acc);
            json_free(d);
        } else {
            assert_null(d);
        }
        free(cp);
    }
    /* pure random bytes, some printable-biased */
    for (int it = 0; it < 3000; it++) {
        size_t len = (size_t)(it % 64);
        char *cp = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            cp[i] = it % 2 ? "[]{}\"\\,:0123456789-+.eEtrufalsn \n"[(rng >> 20) % 34] : (char)(rng >> 24);
        }
        json_doc *d = NULL;
        ulm_error err;
        if (json_parse(cp, len, &d, &err) == ULM_OK) {
            touch(json_root(d), 0, &acc);
            json_free(d);
        }
        free(cp);
    }
    assert_true(accepted > 0 && accepted < 20000);
}

static void test_writer(void **state) {
    const char raw[] = "q\"b\\s/\n\t\x01\x1f\x7f \xc3\xa9\0end";
    size_t rn = sizeof raw - 1;
    char buf[128];
    size_t need = json_escape(buf, sizeof buf, raw, rn);
    assert_int_equal(need, strlen(buf));
    json_doc *d = parse_ok(buf, need);
    size_t n;
    const char *s = json_str(json_root(d), &n);
    assert_int_equal(n, rn);
    assert_memory_equal(s, raw, rn);
    json_free(d);
    /* truncation behaves like snprintf */
    char small[5];
    assert_int_equal(json_escape(small, sizeof small, "abcdef", 6), 8);
    assert_string_equal(small, "\"abc");
    assert_int_equal(json_escape(NULL, 0, "ab", 2), 4);
    /* the stream writer writes the same bytes */
    char path[256];
    test_tmp_path(path, sizeof path, "w.json");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(json_write_str(fp, raw, rn), 0);
    fclose(fp);
    fp = fopen(path, "rb");
    char back[128];
    size_t got = fread(back, 1, sizeof back, fp);
    fclose(fp);
    remove(path);
    assert_int_equal(got, need);
    assert_memory_equal(back, buf, need);
}

static void test_parse_file(void **state) {
    json_doc *d;
    ulm_error err;
    assert_int_equal(json_parse_file("/nonexistent/config.json", &d, &err), ULM_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/config.json"));
    char path[256];
    test_tmp_path(path, sizeof path, "bad.json");
    FILE *fp = fopen(path, "wb");
    fputs("{\"hidden_size\": 64,\n \"x\": tru}", fp);
    fclose(fp);
    assert_int_equal(json_parse_file(path, &d, &err), ULM_ERR_FORMAT);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "line 2, column 7"));
    remove(path);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The real tokenizer files parse, and their structure is what importers will read. */
static void test_shared_tokenizers(void **state) {
    char path[512];
    SKIP_WITHOUT_SHARED(path, "tokenizers/gemma3/tokenizer.json");
    const char *names[] = {"gemma3", "llama3", "qwen3"};
    for (int k = 0; k < 3; k++) {
        char rel[128];
        snprintf(rel, sizeof rel, "tokenizers/%s/tokenizer.json", names[k]);
        if (test_shared_path(path, sizeof path, rel)) continue;
        json_doc *d;
        ulm_error err;
        double t0 = now_s();
        ulm_status st = json_parse_file(path, &d, &err);
        double t1 = now_s();
        if (st) print_message("%s\n", err.msg);
        assert_int_equal(st, ULM_OK);
        const json_value *model = json_get(json_root(d), "model");
        const json_value *vocab = json_get(model, "vocab");
        assert_true(json_is_obj(vocab));
        assert_true(json_len(vocab) > 100000);
        assert_true(json_is_arr(json_get(json_root(d), "added_tokens")));
        /* every vocab entry maps to an integer id, found again by lookup */
        for (size_t i = 0; i < json_len(vocab); i += 97) {
            int64_t id;
            size_t kl;
            const char *key = json_obj_key(vocab, i, &kl);
            assert_int_equal(json_int(json_obj_val(vocab, i), &id), 0);
            assert_ptr_equal(json_getn(vocab, key, kl), json_obj_val(vocab, i));
        }
        print_message("%s: %zu vocab entries, parsed in %.1f ms (read + parse)\n", rel, json_len(vocab), (t1 - t0) * 1e3);
        json_free(d);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_invalid_corpus),
        cmocka_unit_test(test_error_position),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_large_object_lookup),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_random_flips),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_shared_tokenizers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
