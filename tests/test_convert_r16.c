/* ulm convert --type q8r16/q4r16: matrices repacked 16 rows at a time hold the same quantized
 * values as the plain q8/q4 layout, only moved. With the scalar kernels (the specification)
 * both files give bit-identical logits; with SIMD kernels the float summation order differs
 * between layouts, and in a quantized model a last-bit difference can flip the int8 rounding of
 * a later activation (about 0.1 in a logit), so there the check is on top-1 agreement. */
#include <math.h>
#include "test_util.h"
#include "cli.h"
#include "ulm.h"
#include "ulm_file.h"

#define REF "models/stories260K/"

/* plain: --plain (the GGUF block layout), else the default (interleaved where rows allow) */
static void convert(const char *type, int plain, char *out, size_t n) {
    char bin[512], tok[512];
    assert_int_equal(test_shared_path(bin, sizeof bin, REF "stories260K.bin"), 0);
    assert_int_equal(test_shared_path(tok, sizeof tok, REF "tok512.bin"), 0);
    char name[64];
    snprintf(name, sizeof name, "s260k-%s%s.ulm", type, plain ? "-plain" : "");
    test_tmp_path(out, n, name);
    char *argv[] = {"convert", bin, "--tokenizer", tok, "--type", (char *)type, "-o", out, "--plain", NULL};
    assert_int_equal(cmd_convert(plain ? 9 : 8, argv), 0);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[b]) b = i;
    return b;
}

static float *logits(const char *path, int *n_out) {
    static const int32_t toks[] = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
    int n = (int)(sizeof toks / sizeof *toks);
    ulm_model *m;
    ulm_ctx *c;
    ulm_error err;
    assert_int_equal(ulm_model_load(path, &m, &err), ULM_OK);
    ulm_ctx_params cp = {.n_ctx = 32, .n_threads = 2};
    assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
    float *out = malloc(sizeof(float) * (size_t)n * 512);
    assert_int_equal(ulm_ctx_eval(c, toks, n, out, 1, &err), ULM_OK);
    ulm_ctx_free(c);
    ulm_model_free(m);
    *n_out = n * 512;
    return out;
}

static void check_pair(const char *plain, const char *r16) {
    char a[256], b[256];
    char c[256];
    convert(plain, 1, a, sizeof a);
    convert(r16, 0, b, sizeof b);
    convert(plain, 0, c, sizeof c); /* --type q8 without --plain: interleaved too */
    /* the repacked files really hold interleaved matrices, the embedding table included, and
     * the --plain one the GGUF layout */
    const char *files[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        ulmf *f;
        ulm_error err;
        const char *want = i ? r16 : plain;
        assert_int_equal(ulmf_open(files[i], 1, &f, &err), ULM_OK);
        assert_int_equal(ulmf_find_tensor(f, "blk.0.attn_q")->dtype, ulm_dtype_from_name(want));
        assert_int_equal(ulmf_find_tensor(f, "token_embd")->dtype, ulm_dtype_from_name(want)); /* 512 rows */
        ulmf_close(f);
    }
    int n;
    char *saved = getenv("ULM_ISA") ? strdup(getenv("ULM_ISA")) : NULL;
    setenv("ULM_ISA", "scalar", 1);
    float *la = logits(a, &n), *lb = logits(b, &n);
    assert_memory_equal(la, lb, (size_t)n * sizeof(float));
    if (saved) setenv("ULM_ISA", saved, 1);
    else unsetenv("ULM_ISA");
    free(saved);
    free(la);
    free(lb);
    la = logits(a, &n);
    lb = logits(b, &n);
    float maxd = 0;
    int same = 0;
    for (int i = 0; i < n; i++) maxd = fmaxf(maxd, fabsf(la[i] - lb[i]));
    for (int p = 0; p < n / 512; p++) same += argmax(la + p * 512, 512) == argmax(lb + p * 512, 512);
    print_message("%s vs %s (kernels %s): max |dlogit| %.3g, top-1 %d/%d\n", plain, r16, ulm_isa_name(), maxd, same, n / 512);
    assert_true(same >= n / 512 - 1);
    assert_true(maxd <= 0.5f);
    free(la);
    free(lb);
    remove(a);
    remove(b);
}

static void test_q8r16_matches_q8(void **state) {
    char p[512];
    SKIP_WITHOUT_SHARED(p, REF "stories260K.bin");
    check_pair("q8", "q8r16");
}

static void test_q4r16_matches_q4(void **state) {
    char p[512];
    SKIP_WITHOUT_SHARED(p, REF "stories260K.bin");
    check_pair("q4", "q4r16");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q8r16_matches_q8),
        cmocka_unit_test(test_q4r16_matches_q4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
