/* ulm bench: argument errors, and a run on a tiny random model whose --json report is parsed
 * back (shape and sanity of the figures; no speed assertions). */
#include "test_util.h"
#include "cli.h"
#include "json.h"

static char model_path[512];

static int setup(void **state) {
    (void)state;
    test_tmp_path(model_path, sizeof model_path, "bench-tiny.ulm");
    char *argv[] = {"mkmodel", "--preset", "tiny", "-o", model_path};
    return cmd_mkmodel(5, argv) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    unlink(model_path);
    return 0;
}

static int bench(int argc, char **argv) { return cmd_bench(argc, argv); }
#define BENCH(...)                                                  \
    do {                                                            \
        char *args_[] = {"bench", __VA_ARGS__};                     \
        rc = bench((int)(sizeof args_ / sizeof *args_), args_);    \
    } while (0)

static void test_bad_arguments(void **state) {
    (void)state;
    int rc;
    char *none[] = {"bench"};
    assert_int_equal(bench(1, none), 2);                           /* no model */
    BENCH(model_path, "-p");                  assert_int_equal(rc, 2); /* missing value */
    BENCH(model_path, "-p", "");              assert_int_equal(rc, 2);
    BENCH(model_path, "-p", "128,");          assert_int_equal(rc, 2);
    BENCH(model_path, "-p", ",128");          assert_int_equal(rc, 2);
    BENCH(model_path, "-p", "0");             assert_int_equal(rc, 2);
    BENCH(model_path, "-p", "12x");           assert_int_equal(rc, 2);
    BENCH(model_path, "-p", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17"); assert_int_equal(rc, 2);
    BENCH(model_path, "-n", "-1");            assert_int_equal(rc, 2);
    BENCH(model_path, "-t", "0");             assert_int_equal(rc, 2);
    BENCH(model_path, "--reps", "0");         assert_int_equal(rc, 2);
    BENCH(model_path, "--duration", "-3");    assert_int_equal(rc, 2);
    BENCH(model_path, "--duration", "nan");   assert_int_equal(rc, 2);
    BENCH(model_path, "--interval", "0.5");   assert_int_equal(rc, 2); /* needs --duration */
    BENCH(model_path, "--duration", "100000", "--interval", "0.001"); assert_int_equal(rc, 2);
    BENCH(model_path, "--kv-type", "q8");     assert_int_equal(rc, 2);
    BENCH(model_path, "--frobnicate", "1");   assert_int_equal(rc, 2);
    BENCH(model_path, "other.ulm");           assert_int_equal(rc, 2); /* two models */
    BENCH(model_path, "-p", "600", "-c", "64"); assert_int_equal(rc, 2); /* context too small */
    /* runtime errors are 1 */
    BENCH("/nonexistent/model.ulm", "--reps", "1"); assert_int_equal(rc, 1);
    BENCH(model_path, "-p", "8", "-n", "4", "--reps", "1", "-c", "4096"); assert_int_equal(rc, 1); /* > max ctx 2048 */
}

static double stat_median(const json_value *o, const char *key) {
    const json_value *s = json_get(o, key);
    assert_non_null(s);
    double med = -1, mn = -1, mx = -1;
    assert_int_equal(json_get_num(s, "median", &med), 0);
    assert_int_equal(json_get_num(s, "min", &mn), 0);
    assert_int_equal(json_get_num(s, "max", &mx), 0);
    assert_true(mn > 0 && mn <= med && med <= mx);
    return med;
}

static void test_tiny_json(void **state) {
    (void)state;
    char out[512];
    test_tmp_path(out, sizeof out, "bench.json");
    int rc;
    BENCH(model_path, "-t", "2", "-p", "8,24", "-n", "6", "--reps", "3", "--ttft-prompt", "5", "--duration", "0.3",
          "--interval", "0.05", "--json", "-o", out);
    assert_int_equal(rc, 0);
    json_doc *d = NULL;
    ulm_error err;
    assert_int_equal(json_parse_file(out, &d, &err), ULM_OK);
    const json_value *r = json_root(d);
    assert_true(json_str_eq(json_get(r, "arch"), "llama"));
    int64_t v;
    assert_int_equal(json_get_int(r, "threads", &v), 0);
    assert_int_equal(v, 2);
    assert_int_equal(json_get_int(r, "reps", &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(json_get_int(r, "n_ctx", &v), 0);
    assert_int_equal(v, 24); /* sized to the longest run */
    assert_int_equal(json_get_int(r, "n_vocab", &v), 0);
    assert_int_equal(v, 512);
    const json_value *pp = json_get(r, "prefill");
    assert_true(json_is_arr(pp));
    assert_int_equal(json_len(pp), 2);
    assert_int_equal(json_get_int(json_at(pp, 0), "n_prompt", &v), 0);
    assert_int_equal(v, 8);
    assert_int_equal(json_get_int(json_at(pp, 1), "n_prompt", &v), 0);
    assert_int_equal(v, 24);
    stat_median(json_at(pp, 0), "tok_s");
    stat_median(json_at(pp, 1), "tok_s");
    const json_value *tg = json_get(r, "decode");
    assert_int_equal(json_get_int(tg, "n_gen", &v), 0);
    assert_int_equal(v, 6);
    stat_median(tg, "tok_s");
    const json_value *tt = json_get(r, "ttft");
    assert_int_equal(json_get_int(tt, "n_prompt", &v), 0);
    assert_int_equal(v, 5);
    stat_median(tt, "ms");
    double rss = 0, load = -1;
    assert_int_equal(json_get_num(r, "peak_rss_mib", &rss), 0);
    assert_true(rss > 0.1 && rss < 1e5);
    assert_int_equal(json_get_num(r, "load_ms", &load), 0);
    assert_true(load >= 0);
    const json_value *s = json_get(r, "sustained");
    assert_non_null(s);
    double dur = 0, floor_ = 0, med = 0, mx = 0;
    int64_t tokens = 0;
    assert_int_equal(json_get_num(s, "duration_s", &dur), 0);
    assert_true(dur >= 0.3 && dur < 30);
    assert_int_equal(json_get_int(s, "tokens", &tokens), 0);
    assert_true(tokens > 0);
    assert_int_equal(json_get_num(s, "floor_tok_s", &floor_), 0);
    assert_int_equal(json_get_num(s, "median_tok_s", &med), 0);
    assert_int_equal(json_get_num(s, "max_tok_s", &mx), 0);
    const json_value *iv = json_get(s, "tok_s");
    assert_true(json_is_arr(iv));
    size_t n = json_len(iv);
    assert_true(n >= 1 && n <= 7); /* 0.3 s / 0.05 s, plus a closing partial interval */
    double lo = 1e300;
    for (size_t i = 0; i < n; i++) {
        double x = json_num(json_at(iv, i));
        assert_true(x > 0);
        if (x < lo) lo = x;
    }
    assert_true(floor_ == lo && floor_ <= med && med <= mx);
    json_free(d);
    unlink(out);
}

/* The table for people names every test; -o FILE gets it. */
static void test_tiny_table(void **state) {
    (void)state;
    char out[512];
    test_tmp_path(out, sizeof out, "bench.txt");
    int rc;
    BENCH(model_path, "-t", "1", "-p", "16", "-n", "4", "--reps", "1", "--kv-type", "f32", "-b", "4", "-o", out);
    assert_int_equal(rc, 0);
    char buf[4096] = {0};
    FILE *fp = fopen(out, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "| pp16 "));
    assert_non_null(strstr(buf, "| tg4 "));
    assert_non_null(strstr(buf, "| ttft p32 "));
    assert_non_null(strstr(buf, "peak RSS"));
    assert_non_null(strstr(buf, "KV f32"));
    assert_null(strstr(buf, "sustained"));
    unlink(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_tiny_json),
        cmocka_unit_test(test_tiny_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
