/* End to end on the one real pretrained model: stories260K (../shared), converted from the
 * llama2.c checkpoint, must match the reference logits (1e-4 max abs at all 45 positions) and
 * llama2.c's greedy text for the three reference prompts. */
#include <math.h>
#include "test_util.h"
#include "cli.h"
#include "ulm.h"

#define REF "models/stories260K/"

static char ulm_path[256], gguf_ulm_path[256];

static int convert_bin(void) {
    char bin[512], tok[512];
    if (test_shared_path(bin, sizeof bin, REF "stories260K.bin") || test_shared_path(tok, sizeof tok, REF "tok512.bin")) return -1;
    test_tmp_path(ulm_path, sizeof ulm_path, "stories260K.ulm");
    char *argv[] = {"convert", bin, "--tokenizer", tok, "-o", ulm_path, NULL};
    return cmd_convert(6, argv);
}

/* the same model from its GGUF, tokenizer included (tokenizer.ggml.*) */
static int convert_gguf_file(void) {
    char g[512];
    if (test_shared_path(g, sizeof g, REF "stories260K.gguf")) return -1;
    test_tmp_path(gguf_ulm_path, sizeof gguf_ulm_path, "stories260K-gguf.ulm");
    char *argv[] = {"convert", g, "-o", gguf_ulm_path, NULL};
    return cmd_convert(4, argv);
}

static int setup(void **state) {
    char p[512];
    if (test_shared_path(p, sizeof p, REF "stories260K.bin") == 0) assert_int_equal(convert_bin(), 0);
    if (test_shared_path(p, sizeof p, REF "stories260K.gguf") == 0) assert_int_equal(convert_gguf_file(), 0);
    return 0;
}

static int teardown(void **state) {
    remove(ulm_path);
    remove(gguf_ulm_path);
    return 0;
}

/* The 45 reference token ids, parsed from reference_logits_top5.json's "tokens" array. */
static int read_ref_tokens(int32_t *out, int cap) {
    char p[512];
    if (test_shared_path(p, sizeof p, REF "reference/reference_logits_top5.json")) return -1;
    FILE *fp = fopen(p, "rb");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    char *s = strstr(buf, "\"tokens\"");
    assert_non_null(s);
    s = strchr(s, '[');
    int k = 0;
    for (s++; *s && *s != ']' && k < cap;) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) { s++; continue; }
        out[k++] = (int32_t)v;
        s = end;
    }
    return k;
}

static void check_logits(const char *model_path, int n_threads) {
    int32_t toks[64];
    int n = read_ref_tokens(toks, 64);
    assert_int_equal(n, 45);
    char p[512];
    assert_int_equal(test_shared_path(p, sizeof p, REF "reference/logits_f32_45x512.bin"), 0);
    float *ref = malloc(45 * 512 * sizeof *ref), *got = malloc(45 * 512 * sizeof *got);
    FILE *fp = fopen(p, "rb");
    assert_int_equal(fread(ref, sizeof *ref, 45 * 512, fp), 45 * 512);
    fclose(fp);
    ulm_model *m;
    ulm_ctx *c;
    ulm_error err;
    assert_int_equal(ulm_model_load(model_path, &m, &err), ULM_OK);
    ulm_ctx_params cp = {.n_ctx = 64, .n_threads = n_threads, .kv_f32 = 1};
    assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
    /* all 45 positions in one batch, then again one token at a time (the decode path) */
    assert_int_equal(ulm_ctx_eval(c, toks, n, got, 1, &err), ULM_OK);
    float maxd = 0;
    for (int i = 0; i < 45 * 512; i++) maxd = fmaxf(maxd, fabsf(got[i] - ref[i]));
    print_message("batched: max |logit - reference| = %.3g (threads %d)\n", maxd, n_threads);
    assert_true(maxd <= 1e-4f);
    ulm_ctx_reset(c);
    maxd = 0;
    for (int i = 0; i < n; i++) {
        assert_int_equal(ulm_ctx_eval(c, &toks[i], 1, got, 0, &err), ULM_OK);
        for (int j = 0; j < 512; j++) maxd = fmaxf(maxd, fabsf(got[j] - ref[i * 512 + j]));
    }
    print_message("token by token: max |logit - reference| = %.3g\n", maxd);
    assert_true(maxd <= 1e-4f);
    ulm_ctx_free(c);
    ulm_model_free(m);
    free(ref);
    free(got);
}

static void test_logits_from_llama2c(void **state) {
    char p[512];
    SKIP_WITHOUT_SHARED(p, REF "stories260K.bin");
    check_logits(ulm_path, 1);
    check_logits(ulm_path, 2);
}

static void test_logits_from_gguf(void **state) {
    char p[512];
    SKIP_WITHOUT_SHARED(p, REF "stories260K.gguf");
    check_logits(gguf_ulm_path, 1);
    check_logits(gguf_ulm_path, 2);
}

/* Top-1 agreement with the f32 reference through q8 and q4 (and the f16 KV cache): the drop
 * is printed; the bounds only catch a broken path. */
static int top1_agreement(const char *model_path, int kv_f32, float *ref, const int32_t *toks, int n) {
    ulm_model *m;
    ulm_ctx *c;
    ulm_error err;
    assert_int_equal(ulm_model_load(model_path, &m, &err), ULM_OK);
    ulm_ctx_params cp = {.n_ctx = 64, .n_threads = 2, .kv_f32 = kv_f32};
    assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
    float *got = malloc((size_t)n * 512 * sizeof *got);
    assert_int_equal(ulm_ctx_eval(c, toks, n, got, 1, &err), ULM_OK);
    int agree = 0;
    for (int i = 0; i < n; i++) {
        int a = 0, b = 0;
        for (int j = 1; j < 512; j++) {
            if (got[i * 512 + j] > got[i * 512 + a]) a = j;
            if (ref[i * 512 + j] > ref[i * 512 + b]) b = j;
        }
        agree += a == b;
    }
    free(got);
    ulm_ctx_free(c);
    ulm_model_free(m);
    return agree;
}

static void test_quantized_top1(void **state) {
    char p[512], bin[512], tok[512], q[256];
    SKIP_WITHOUT_SHARED(p, REF "stories260K.bin");
    int32_t toks[64];
    int n = read_ref_tokens(toks, 64);
    assert_int_equal(test_shared_path(p, sizeof p, REF "reference/logits_f32_45x512.bin"), 0);
    float *ref = malloc(45 * 512 * sizeof *ref);
    FILE *fp = fopen(p, "rb");
    assert_int_equal(fread(ref, sizeof *ref, 45 * 512, fp), 45 * 512);
    fclose(fp);
    assert_int_equal(top1_agreement(ulm_path, 1, ref, toks, n), n);
    int kv16 = top1_agreement(ulm_path, 0, ref, toks, n);
    print_message("f32 weights, f16 KV cache: top-1 %d/%d\n", kv16, n);
    assert_true(kv16 >= n - 1);
    test_shared_path(bin, sizeof bin, REF "stories260K.bin");
    test_shared_path(tok, sizeof tok, REF "tok512.bin");
    static const char *types[] = {"f16", "q8", "q4"};
    static const int min_agree[] = {44, 40, 30};
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "stories260K-%s.ulm", types[i]);
        test_tmp_path(q, sizeof q, name);
        char *argv[] = {"convert", bin, "--tokenizer", tok, "--type", (char *)types[i], "-o", q, NULL};
        assert_int_equal(cmd_convert(8, argv), 0);
        int agree = top1_agreement(q, 1, ref, toks, n);
        print_message("%s weights: top-1 %d/%d (drop %d)\n", types[i], agree, n, n - agree);
        assert_true(agree >= min_agree[i]);
        remove(q);
    }
    free(ref);
}

typedef struct { char *buf; size_t n, cap; } text_buf;
static int collect(const char *s, size_t n, void *u) {
    text_buf *t = u;
    if (t->n + n + 1 > t->cap) { t->cap = (t->n + n + 1) * 2; t->buf = realloc(t->buf, t->cap); }
    memcpy(t->buf + t->n, s, n);
    t->n += n;
    t->buf[t->n] = 0;
    return 0;
}

static void rstrip(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = 0;
}

static void check_greedy(const char *model_path) {
    char p[512];
    assert_int_equal(test_shared_path(p, sizeof p, REF "reference/greedy_text.txt"), 0);
    FILE *fp = fopen(p, "rb");
    static char ref[1 << 16];
    size_t rn = fread(ref, 1, sizeof ref - 1, fp);
    fclose(fp);
    ref[rn] = 0;
    ulm_model *m;
    ulm_ctx *c;
    ulm_error err;
    assert_int_equal(ulm_model_load(model_path, &m, &err), ULM_OK);
    ulm_ctx_params cp = {.n_ctx = 256, .n_threads = 2, .kv_f32 = 1};
    assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
    ulm_sampling s;
    ulm_sampling_default(&s);
    int sections = 0;
    for (char *h = strstr(ref, "### prompt=["); h; h = strstr(h + 1, "### prompt=[")) {
        char prompt[256];
        char *pe = strstr(h, "]\n");
        assert_non_null(pe);
        size_t pl = (size_t)(pe - (h + 12));
        memcpy(prompt, h + 12, pl);
        prompt[pl] = 0;
        char *body = pe + 2, *next = strstr(body, "### prompt=[");
        size_t bl = next ? (size_t)(next - body) : strlen(body);
        char *want = strndup(body, bl);
        rstrip(want);
        int n_prompt;
        assert_int_equal(ulm_tokenize(m, prompt, strlen(prompt), ULM_TOK_ADD_BOS, NULL, 0, &n_prompt, &err), ULM_OK);
        text_buf got = {0};
        ulm_ctx_reset(c);
        /* llama2.c's -n 256 runs the forward pass at positions 0..255, each producing the next
         * token: 256 - (n_prompt - 1) of them are generated */
        assert_int_equal(ulm_generate(c, prompt, &s, 257 - n_prompt, collect, &got, NULL, &err), ULM_OK);
        rstrip(got.buf);
        if (strcmp(got.buf, want) != 0) print_message("prompt [%s]\n got: %s\nwant: %s\n", prompt, got.buf, want);
        assert_string_equal(got.buf, want);
        free(got.buf);
        free(want);
        sections++;
    }
    assert_int_equal(sections, 3);
    ulm_ctx_free(c);
    ulm_model_free(m);
}

static void test_greedy_text(void **state) {
    char p[512];
    SKIP_WITHOUT_SHARED(p, REF "stories260K.bin");
    check_greedy(ulm_path);
}

static void test_greedy_text_gguf(void **state) {
    char p[512];
    SKIP_WITHOUT_SHARED(p, REF "stories260K.gguf");
    check_greedy(gguf_ulm_path);
}

static void test_context_overflow_is_an_error(void **state) {
    char p[512];
    SKIP_WITHOUT_SHARED(p, REF "stories260K.bin");
    ulm_model *m;
    ulm_ctx *c;
    ulm_error err;
    assert_int_equal(ulm_model_load(ulm_path, &m, &err), ULM_OK);
    ulm_ctx_params cp = {.n_ctx = 8, .n_threads = 1};
    assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
    int32_t t[9] = {1, 403, 407, 261, 378, 432, 383, 286, 261};
    assert_int_equal(ulm_ctx_eval(c, t, 9, NULL, 0, &err), ULM_ERR_CONTEXT);
    assert_non_null(strstr(err.msg, "context"));
    assert_int_equal(ulm_ctx_eval(c, t, 8, NULL, 0, &err), ULM_OK);
    assert_int_equal(ulm_ctx_eval(c, t, 1, NULL, 0, &err), ULM_ERR_CONTEXT);
    int32_t bad = 512;
    ulm_ctx_reset(c);
    assert_int_equal(ulm_ctx_eval(c, &bad, 1, NULL, 0, &err), ULM_ERR_ARG);
    cp.n_ctx = 100000;
    ulm_ctx *c2;
    assert_int_equal(ulm_ctx_new(m, &cp, &c2, &err), ULM_ERR_CONTEXT);
    ulm_ctx_free(c);
    ulm_model_free(m);
}

int main(void) {
    setenv("ULM_PAR_MIN_MACS", "0", 1); /* the 2-thread runs go through the pool on this small model */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logits_from_llama2c),
        cmocka_unit_test(test_greedy_text),
        cmocka_unit_test(test_logits_from_gguf),
        cmocka_unit_test(test_greedy_text_gguf),
        cmocka_unit_test(test_quantized_top1),
        cmocka_unit_test(test_context_overflow_is_an_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
