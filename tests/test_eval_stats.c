/* Eval statistics against hand-computed values. */
#include "eval_stats.h"
#include "test_util.h"

static void test_percentiles(void **state) {
    double a[] = {4, 1, 3, 2};
    assert_float_equal(eval_percentile(a, 4, 0.5), 2.5, 1e-12);   /* between 2 and 3 */
    assert_float_equal(eval_percentile(a, 4, 0.95), 3.85, 1e-12); /* pos 2.85: 3 + 0.85 */
    assert_float_equal(eval_percentile(a, 4, 0), 1, 1e-12);
    assert_float_equal(eval_percentile(a, 4, 1), 4, 1e-12);
    double b[] = {7};
    assert_float_equal(eval_percentile(b, 1, 0.95), 7, 1e-12);
    assert_float_equal(eval_percentile(NULL, 0, 0.5), 0, 1e-12);
    double c[] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110};
    assert_float_equal(eval_percentile(c, 11, 0.95), 105, 1e-9); /* pos 9.5 */
}

static void test_exact(void **state) {
    assert_true(eval_exact("positive", 8, "  positive\n", 11));
    assert_false(eval_exact("positive", 8, "Positive", 8));
    assert_false(eval_exact("pos", 3, "positive", 8));
    /* JSON: member order and whitespace do not matter, values do */
    const char *e = "{\"a\":1,\"b\":[\"x\",\"y\"]}";
    const char *o = "{ \"b\": [\"x\",\"y\"], \"a\": 1.0 }";
    assert_true(eval_exact(e, strlen(e), o, strlen(o)));
    assert_false(eval_exact(e, strlen(e), "{\"a\":2,\"b\":[\"x\",\"y\"]}", 21));
    assert_false(eval_exact(e, strlen(e), "{\"a\":1,\"b\":[\"x\"]}", 17));
    assert_false(eval_exact(e, strlen(e), "not json", 8));
}

static void test_fields(void **state) {
    long tp = 0, fp = 0, fn = 0;
    /* expected pairs: .name=Ann, .tags=a, .tags=b ; output: .name=Ann, .tags=a, .tags=c, .x=1 */
    const char *e = "{\"name\":\"Ann\",\"tags\":[\"a\",\"b\"]}";
    const char *o = "{\"name\":\"Ann\",\"tags\":[\"c\",\"a\"],\"x\":1}";
    assert_int_equal(eval_fields(e, strlen(e), o, strlen(o), &tp, &fp, &fn), 1);
    assert_int_equal(tp, 2);
    assert_int_equal(fp, 2);
    assert_int_equal(fn, 1);
    /* invalid output: every expected pair is a miss */
    assert_int_equal(eval_fields(e, strlen(e), "{oops", 5, &tp, &fp, &fn), 1);
    assert_int_equal(tp, 2);
    assert_int_equal(fp, 2);
    assert_int_equal(fn, 4);
    /* a plain-text expected value takes no part */
    assert_int_equal(eval_fields("sad", 3, "sad", 3, &tp, &fp, &fn), 0);
    assert_int_equal(tp + fp + fn, 8);
    /* duplicates count as a multiset */
    long t2 = 0, f2 = 0, n2 = 0;
    assert_int_equal(eval_fields("[1,1,2]", 7, "[1,2,2]", 7, &t2, &f2, &n2), 1);
    assert_int_equal(t2, 2);
    assert_int_equal(f2, 1);
    assert_int_equal(n2, 1);
    /* no fields at all (an entity answer with only empty lists): nothing counted, no sort
     * of an empty list (UBSan: qsort of NULL) */
    static const char empty[] = "{\"people\":[],\"places\":[]}";
    long t3 = 0, f3 = 0, n3 = 0;
    assert_int_equal(eval_fields(empty, strlen(empty), empty, strlen(empty), &t3, &f3, &n3), 1);
    assert_int_equal(t3 + f3 + n3, 0);
    assert_true(eval_exact(empty, strlen(empty), empty, strlen(empty)));
}

static void test_report(void **state) {
    eval_item it[4] = {
        {"sad", "sad", 3, 3, 1, 0, 2, 10, 20},
        {"happy", "sad", 5, 3, 1, 1, 2, 20, 40},
        {"{\"k\":\"v\",\"n\":2}", "{\"k\":\"v\",\"n\":3}", 15, 15, 1, 0, 8, 30, 60},
        {"{\"k\":\"w\"}", "", 9, 0, 0, 1, 0, 40, 80},
    };
    eval_report r;
    assert_int_equal(eval_compute(it, 4, &r), 0);
    assert_int_equal(r.n, 4);
    assert_int_equal(r.n_exact, 1);
    assert_float_equal(r.accuracy, 0.25, 1e-12);
    assert_float_equal(r.validity, 0.75, 1e-12);
    assert_float_equal(r.escalation, 0.5, 1e-12);
    /* fields: item 3 tp 1 (.k=v) fp 1 (.n=3) fn 1 (.n=2); item 4 fn 1 */
    assert_int_equal(r.n_json, 2);
    assert_int_equal(r.tp, 1);
    assert_int_equal(r.fp, 1);
    assert_int_equal(r.fn, 2);
    assert_float_equal(r.precision, 0.5, 1e-12);
    assert_float_equal(r.recall, 1.0 / 3, 1e-12);
    assert_float_equal(r.f1, 0.4, 1e-12); /* 2 * 0.5 * 1/3 / (0.5 + 1/3) */
    assert_float_equal(r.ttft_p50, 25, 1e-12);
    assert_float_equal(r.ttft_p95, 38.5, 1e-12);   /* pos 2.85 in {10,20,30,40} */
    assert_float_equal(r.total_p50, 50, 1e-12);
    assert_float_equal(r.total_p95, 77, 1e-12);
    assert_float_equal(r.tokens_per_s, 12 / 0.2, 1e-9); /* 12 tokens in 200 ms */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles),
        cmocka_unit_test(test_exact),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
