/* The distinct_strings scanner (engine/distinct_strings.c): which strings are values, where a
 * repeated one is reported, and that a restored state plus a truncated list rescan the same. */
#include "test_util.h"
#include "distinct_strings.h"

/* Feeds text in pieces of `step` bytes; the offset of the repeated value's opening quote, or -1. */
static long scan_text(const char *text, size_t step) {
    dstr_scan s;
    dstr_list l = {0};
    dstr_init(&s);
    size_t n = strlen(text);
    long at = -1;
    for (size_t i = 0; i < n && at < 0; i += step)
        if (dstr_feed(&s, &l, text, i, i + step < n ? i + step : n)) at = (long)s.str_quote;
    dstr_list_free(&l);
    return at;
}

static void test_values_and_keys(void **state) {
    (void)state;
    static const struct { const char *text; long at; } cases[] = {
        {"{\"people\":[\"Ann\"],\"places\":[\"Ann\"]}", 28},      /* across arrays */
        {"{\"a\":[\"x\",\"x\"]}", 10},                           /* within one array */
        {"{\"a\":[\"x\",\"y\"],\"b\":[\"xy\",\"y\"]}", 25},
        {"{\"a\":\"a\"}", -1},                                   /* a key is no value */
        {"{\"a\":[\"b\"],\"b\":[]}", -1},                        /* nor is a later key equal to a value */
        {"{\"a\":{\"x\":\"v\"},\"b\":{\"x\":\"w\"}}", -1},       /* keys repeat in nested objects */
        {"{\"a\":{\"x\":\"v\"},\"b\":{\"y\":\"v\"}}", 24},
        {"[\"a\\\"b\",\"a\\\"b\"]", 8},                          /* escaped quotes stay inside */
        {"[\"a\\\\\",\"a\\\\\"]", 7},                            /* an escaped backslash ends before the quote */
        {"[\"ab\",\"a\",\"b\",\"\",\"\"]", 17},                  /* prefixes differ; the empty string repeats */
        {"[[\"q\"],[[\"r\"]],{\"k\":[\"q\"]}]", 21},
        {"{\"a\":1,\"b\":true,\"c\":[null,\"1\"]}", -1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        for (size_t step = 1; step <= 5; step += 2) {
            long at = scan_text(cases[k].text, step);
            if (at != cases[k].at) print_message("case %zu step %zu: got %ld want %ld\n", k, step, at, cases[k].at);
            assert_int_equal(at, cases[k].at);
        }
}

/* Deeper than DSTR_MAX_DEPTH: the scanner stops checking rather than misreading. */
static void test_too_deep(void **state) {
    (void)state;
    char text[400];
    size_t n = 0;
    for (int i = 0; i < DSTR_MAX_DEPTH + 1; i++) text[n++] = '[';
    memcpy(text + n, "\"a\",\"a\"", 7);
    n += 7;
    text[n] = 0;
    assert_int_equal(scan_text(text, 1), -1);
    assert_int_equal(scan_text(text + 1, 1), (long)(DSTR_MAX_DEPTH + 4)); /* at the limit: checked */
}

/* A snapshot restored with the list it truncates scans a different continuation as if fresh. */
static void test_restore(void **state) {
    (void)state;
    const char *a = "{\"p\":[\"Ann\",\"Bo\"],\"q\":[\"Bo\"]}";
    const char *b = "{\"p\":[\"Ann\",\"Cy\"],\"q\":[\"Bo\"]}";
    dstr_scan s, snap;
    dstr_list l = {0};
    dstr_init(&s);
    assert_int_equal(dstr_feed(&s, &l, a, 0, 11), 0); /* through "Ann", */
    snap = s;
    assert_int_equal(dstr_feed(&s, &l, a, 11, strlen(a)), 1);
    s = snap; /* b shares a's first 11 bytes */
    assert_int_equal(dstr_feed(&s, &l, b, 11, strlen(b)), 0);
    assert_int_equal(s.n_vals, 3);
    dstr_list_free(&l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_keys),
        cmocka_unit_test(test_too_deep),
        cmocka_unit_test(test_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
