/* Every architecture against llama.cpp: tiny random models (tests/fixtures/families, written by
 * regen.sh from the peer kit's make_gguf.py and converted by our GGUF importer) must give
 * llama.cpp's logits (bench.mjs exact mode: f32 KV, no flash attention) at all 64 positions:
 *   F32:            max |Δlogit| <= 1e-3 * max |logit|, same top-1 at >= 99% of positions;
 *   F16, Q8_0, Q4_0 (requantized here from the F32 model by our converter, the same reference
 *   quantizers make_gguf.py uses): top-1 >= 95%, mean KL(llama.cpp || ulm) printed and bounded.
 * Also: the f16 KV cache, 1 vs 2 threads (identical logits), batched vs token by token, and
 * gemma3's sliding-window ring wrapping (small batches, so the ring is smaller than the prompt).
 * And a model whose weights hold a NaN or an overflowing value: its logits are an error, in
 * ulm_ctx_eval and in the batched kv_state_eval, never tokens. */
#include <math.h>
#include "test_util.h"
#include "cli.h"
#include "convert.h"
#include "kernels.h"
#include "model.h"
#include "ulm.h"

#define DIR "tests/fixtures/families/"
#define NPOS 64
#define VOCAB 512

typedef struct {
    int n, vocab, kind;
    uint16_t top1[NPOS];
    float logits[NPOS * VOCAB];
} ref_logits;

static void read_tokens(int32_t *toks) {
    FILE *fp = fopen(DIR "tokens.txt", "r");
    assert_non_null(fp);
    int n = 0;
    for (long v; n < NPOS && fscanf(fp, "%ld,", &v) == 1;) toks[n++] = (int32_t)v;
    fclose(fp);
    assert_int_equal(n, NPOS);
}

static ref_logits *read_ref(const char *arch, const char *type) {
    char p[256];
    snprintf(p, sizeof p, DIR "%s-%s.ref", arch, type);
    FILE *fp = fopen(p, "rb");
    if (!fp) print_message("missing fixture %s\n", p);
    assert_non_null(fp);
    ref_logits *r = calloc(1, sizeof *r);
    char magic[4];
    uint32_t hdr[3];
    assert_int_equal(fread(magic, 1, 4, fp), 4);
    assert_memory_equal(magic, "ULR1", 4);
    assert_int_equal(fread(hdr, 4, 3, fp), 3);
    assert_int_equal(hdr[0], NPOS);
    assert_int_equal(hdr[1], VOCAB);
    r->n = NPOS, r->vocab = VOCAB, r->kind = (int)hdr[2];
    assert_int_equal(fread(r->top1, 2, NPOS, fp), NPOS);
    for (int i = 0; i < NPOS; i++) {
        if (r->kind == 0) {
            uint16_t h[VOCAB];
            assert_int_equal(fread(h, 2, VOCAB, fp), VOCAB);
            for (int j = 0; j < VOCAB; j++) r->logits[i * VOCAB + j] = ulm_f16_to_f32(h[j]);
        } else {
            float s;
            int8_t q[VOCAB];
            assert_int_equal(fread(&s, 4, 1, fp), 1);
            assert_int_equal(fread(q, 1, VOCAB, fp), VOCAB);
            for (int j = 0; j < VOCAB; j++) r->logits[i * VOCAB + j] = s * q[j];
        }
    }
    fclose(fp);
    return r;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* KL(p || q) of two logit rows */
static double kl_row(const float *p, const float *q, int n) {
    double mp = -INFINITY, mq = -INFINITY, zp = 0, zq = 0, kl = 0;
    for (int i = 0; i < n; i++) mp = fmax(mp, p[i]), mq = fmax(mq, q[i]);
    for (int i = 0; i < n; i++) zp += exp(p[i] - mp), zq += exp(q[i] - mq);
    for (int i = 0; i < n; i++) {
        double lp = p[i] - mp - log(zp), lq = q[i] - mq - log(zq);
        kl += exp(lp) * (lp - lq);
    }
    return kl;
}

/* Logits at all positions; chunk > 0 feeds the prompt in pieces of that size. */
static float *run(const char *path, int threads, int kv_f32, int n_batch, int chunk) {
    int32_t toks[NPOS];
    read_tokens(toks);
    ulm_model *m;
    ulm_ctx *c;
    ulm_error err;
    if (ulm_model_load(path, &m, &err)) print_message("%s\n", err.msg);
    ulm_ctx_params cp = {.n_ctx = 128, .n_threads = threads, .kv_f32 = kv_f32, .n_batch = n_batch};
    assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
    float *out = malloc(sizeof(float) * NPOS * VOCAB);
    if (chunk <= 0) chunk = NPOS;
    for (int i = 0; i < NPOS; i += chunk) {
        int n = NPOS - i < chunk ? NPOS - i : chunk;
        assert_int_equal(ulm_ctx_eval(c, toks + i, n, out + (size_t)i * VOCAB, 1, &err), ULM_OK);
    }
    ulm_ctx_free(c);
    ulm_model_free(m);
    return out;
}

typedef struct { double maxd_rel, mean_kl; int top1; } agreement;

/* aarch64 GCC 12 crashes (internal compiler error) vectorizing these reductions */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-vectorize")))
#endif
static agreement compare(const ref_logits *r, const float *got) {
    agreement a = {0, 0, 0};
    float maxref = 0, maxd = 0;
    for (int i = 0; i < NPOS * VOCAB; i++) {
        maxref = fmaxf(maxref, fabsf(r->logits[i]));
        maxd = fmaxf(maxd, fabsf(r->logits[i] - got[i]));
    }
    for (int i = 0; i < NPOS; i++) {
        a.top1 += argmax(got + i * VOCAB, VOCAB) == r->top1[i];
        a.mean_kl += kl_row(r->logits + i * VOCAB, got + i * VOCAB, VOCAB) / NPOS;
    }
    a.maxd_rel = maxd / maxref;
    return a;
}

/* The F32 fixture requantized to dt by the converter's own path (conv_tensor). */
static void requantize(const char *src, const char *dst, ulm_dtype dt) {
    ulmf *f;
    ulm_error err;
    assert_int_equal(ulmf_open(src, 0, &f, &err), ULM_OK);
    converter cv = {.w = ulmw_new(), .target = dt, .quiet = 1};
    for (int i = 0; i < ulmf_n_meta(f); i++) assert_int_equal(ulmw_copy_kv(cv.w, ulmf_meta_at(f, i)), 0);
    for (int i = 0; i < ulmf_n_tensors(f); i++) {
        const ulmf_tensor *t = ulmf_tensor_at(f, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name_len, t->name);
        assert_int_equal(conv_tensor(&cv, name, t->dtype, t->ndim, t->shape, t->data, &err), ULM_OK);
    }
    assert_int_equal(ulmw_write(cv.w, dst, &err), ULM_OK);
    ulmw_free(cv.w);
    conv_release(&cv);
    ulmf_close(f);
}

static void check_arch(const char *arch) {
    char path[256], tmp[64];
    snprintf(path, sizeof path, DIR "%s.ulm", arch);
    /* F32, exact mode */
    ref_logits *r = read_ref(arch, "f32");
    float *got = run(path, 1, 1, 0, 0);
    agreement a = compare(r, got);
    print_message("%-6s f32      max|d|/max|logit| %.2e  top-1 %d/%d  mean KL %.2e\n", arch, a.maxd_rel, a.top1, NPOS, a.mean_kl);
    assert_true(a.maxd_rel <= 1e-3);
    assert_true(a.top1 >= (int)ceil(0.99 * NPOS));
    /* 2 threads: identical; token by token: the decode path, same logits to rounding */
    float *t2 = run(path, 2, 1, 0, 0); /* ULM_PAR_MIN_MACS=0 (main): every op over the pool */
    assert_memory_equal(got, t2, sizeof(float) * NPOS * VOCAB);
    unsetenv("ULM_PAR_MIN_MACS"); /* the default: small work stays on the calling thread */
    float *tdef = run(path, 2, 1, 0, 0);
    assert_int_equal(setenv("ULM_PAR_MIN_MACS", "0", 1), 0);
    assert_memory_equal(got, tdef, sizeof(float) * NPOS * VOCAB);
    free(tdef);
    float *one = run(path, 2, 1, 0, 1);
    float *one1 = run(path, 1, 1, 0, 1); /* decode (one token at a time): 2 threads, same bits as 1 */
    assert_memory_equal(one, one1, sizeof(float) * NPOS * VOCAB);
    free(one1);
    float maxd = 0;
    for (int i = 0; i < NPOS * VOCAB; i++) maxd = fmaxf(maxd, fabsf(one[i] - got[i]));
    assert_true(maxd <= 1e-4f);
    /* small batches: gemma3's window-8 layers keep a ring of 8 + 4 - 1 slots over 64 positions */
    float *small = run(path, 2, 1, 4, 5);
    maxd = 0;
    for (int i = 0; i < NPOS * VOCAB; i++) maxd = fmaxf(maxd, fabsf(small[i] - got[i]));
    assert_true(maxd <= 1e-4f);
    /* f16 KV cache (the default) */
    float *kv16 = run(path, 2, 0, 0, 0);
    agreement a16 = compare(r, kv16);
    print_message("%-6s f32 + f16 KV: max|d|/max|logit| %.2e  top-1 %d/%d  mean KL %.2e\n", arch, a16.maxd_rel, a16.top1, NPOS, a16.mean_kl);
    assert_true(a16.top1 >= (int)ceil(0.95 * NPOS));
    assert_true(a16.maxd_rel <= 1e-2);
    free(t2), free(one), free(small), free(kv16), free(got), free(r);

    static const struct { const char *type; ulm_dtype dt; double max_kl; } q[] = {
        {"f16", ULM_DT_F16, 1e-4}, {"q8_0", ULM_DT_Q8, 1e-3}, {"q4_0", ULM_DT_Q4, 1e-2}};
    for (size_t k = 0; k < sizeof q / sizeof *q; k++) {
        snprintf(tmp, sizeof tmp, "%s-%s.ulm", arch, q[k].type);
        char qpath[512];
        test_tmp_path(qpath, sizeof qpath, tmp);
        requantize(path, qpath, q[k].dt);
        r = read_ref(arch, q[k].type);
        got = run(qpath, 2, 1, 0, 0);
        a = compare(r, got);
        print_message("%-6s %-8s top-1 %d/%d  mean KL %.2e  (max|d|/max|logit| %.2e, reference stored as int8)\n", arch, q[k].type, a.top1, NPOS, a.mean_kl, a.maxd_rel);
        assert_true(a.top1 >= (int)ceil(0.95 * NPOS));
        assert_true(a.mean_kl <= q[k].max_kl);
        remove(qpath);
        free(got), free(r);
    }
}

static void test_llama(void **state) { check_arch("llama"); }
static void test_qwen2(void **state) { check_arch("qwen2"); }
static void test_qwen3(void **state) { check_arch("qwen3"); }
static void test_gemma3(void **state) { check_arch("gemma3"); }

/* KV memory: sliding-window layers do not grow with the context. */
static void test_kv_cache_size(void **state) {
    ulm_model *m;
    ulm_error err;
    assert_int_equal(ulm_model_load(DIR "gemma3.ulm", &m, &err), ULM_OK);
    const model_config *c = &m->cfg;
    uint64_t row16 = (uint64_t)c->n_kv_heads * c->head_dim * 2 * 2; /* K and V, f16 */
    assert_int_equal(c->n_layers, 2);
    assert_true(m->layers[0].is_local && !m->layers[1].is_local);
    /* layer 0: window 8 + batch 64 - 1 slots; layer 1: the whole context */
    assert_int_equal(ulm_kv_cache_bytes(m, 256, 0, 0), (71 + 256) * row16);
    assert_int_equal(ulm_kv_cache_bytes(m, 256, 1, 0), 2 * (71 + 256) * row16);
    assert_int_equal(ulm_kv_cache_bytes(m, 40, 0, 0), (40 + 40) * row16);
    ulm_model_free(m);
}

/* ulm_ctx_rewind: feeding again from a rewound position gives the same logits, bit for bit;
 * a rewind past what gemma3's window-8 ring (8 + 4 - 1 slots with batches of 4) still holds
 * is refused and changes nothing. */
static void check_rewind(const char *arch, int back_ok, int back_refused) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s.ulm", arch);
    int32_t toks[NPOS];
    read_tokens(toks);
    ulm_model *m;
    ulm_ctx *c;
    ulm_error err;
    assert_int_equal(ulm_model_load(path, &m, &err), ULM_OK);
    ulm_ctx_params cp = {.n_ctx = 128, .n_threads = 1, .n_batch = 4};
    assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
    float *ref = malloc(sizeof(float) * NPOS * VOCAB), *again = malloc(sizeof(float) * VOCAB);
    for (int i = 0; i < 40; i++) assert_int_equal(ulm_ctx_eval(c, toks + i, 1, ref + (size_t)i * VOCAB, 0, &err), ULM_OK);
    /* a 40-token prefill in chunks of 4 returns the last position's logits (only the last
     * chunk computes any) */
    ulm_ctx *c2;
    assert_int_equal(ulm_ctx_new(m, &cp, &c2, &err), ULM_OK);
    assert_int_equal(ulm_ctx_eval(c2, toks, 40, again, 0, &err), ULM_OK);
    for (int v = 0; v < VOCAB; v++) assert_true(fabsf(again[v] - ref[39 * VOCAB + v]) <= 1e-3f);
    ulm_ctx_free(c2);
    if (back_refused) {
        assert_int_equal(ulm_ctx_rewind(c, 40 - back_refused), -1);
        assert_int_equal(ulm_ctx_pos(c), 40);
    }
    assert_int_equal(ulm_ctx_rewind(c, 41), -1); /* forward is no rewind */
    assert_int_equal(ulm_ctx_rewind(c, 40 - back_ok), 0);
    assert_int_equal(ulm_ctx_pos(c), 40 - back_ok);
    for (int i = 40 - back_ok; i < 40; i++) {
        assert_int_equal(ulm_ctx_eval(c, toks + i, 1, again, 0, &err), ULM_OK);
        assert_memory_equal(again, ref + (size_t)i * VOCAB, sizeof(float) * VOCAB);
    }
    /* and a different token after the rewind point, then back again: still exact */
    assert_int_equal(ulm_ctx_rewind(c, 39), 0);
    int32_t other = (toks[39] + 1) % VOCAB;
    assert_int_equal(ulm_ctx_eval(c, &other, 1, again, 0, &err), ULM_OK);
    assert_int_equal(ulm_ctx_rewind(c, 39), 0);
    assert_int_equal(ulm_ctx_eval(c, toks + 39, 1, again, 0, &err), ULM_OK);
    assert_memory_equal(again, ref + (size_t)39 * VOCAB, sizeof(float) * VOCAB);
    free(ref), free(again);
    ulm_ctx_free(c);
    ulm_model_free(m);
}
static void test_ctx_rewind(void **state) {
    check_rewind("llama", 30, 0); /* no ring: any depth */
    check_rewind("gemma3", 2, 6);
}

/* kv_state_eval: separate sequences at different positions, one token each per batched pass,
 * give each sequence's own token-by-token logits (to rounding: a batch of rows may take
 * another matmul path than one row); kv_state_copy forks a sequence; gemma3's window-8 rings
 * (8 + 4 - 1 slots with batches of 4) wrap on the way; misuse is refused. */
#define SEQ_STEPS 24
static const int seq_off[4] = {0, 7, 19, 33}, seq_pre[4] = {1, 12, 30, 40};

/* Token-by-token logits of sequence s: rows k = 0..SEQ_STEPS after its token pre-1+k; the
 * fork (s = 3) is sequence 2 up to its token pre[3]-1, then tokens from offset off[3]. */
static int32_t seq_tok(const int32_t *toks, int s, int i) {
    if (s == 3 && i < seq_pre[3]) return toks[(seq_off[2] + i) % NPOS];
    return toks[(seq_off[s] + i) % NPOS];
}

static void check_states(const char *arch) {
    char path[256];
    snprintf(path, sizeof path, DIR "%s.ulm", arch);
    int32_t toks[NPOS];
    read_tokens(toks);
    ulm_model *m;
    ulm_error err;
    assert_int_equal(ulm_model_load(path, &m, &err), ULM_OK);
    ulm_ctx_params cp = {.n_ctx = 128, .n_threads = 1, .kv_f32 = 1, .n_batch = 4};
    float *ref = malloc(sizeof(float) * 4 * (SEQ_STEPS + 1) * VOCAB), *out = malloc(sizeof(float) * 4 * VOCAB);
    for (int s = 0; s < 4; s++) {
        ulm_ctx *c;
        assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
        for (int i = 0; i < seq_pre[s] + SEQ_STEPS; i++) {
            int32_t t = seq_tok(toks, s, i);
            assert_int_equal(ulm_ctx_eval(c, &t, 1, out, 0, &err), ULM_OK);
            if (i >= seq_pre[s] - 1) memcpy(ref + ((size_t)s * (SEQ_STEPS + 1) + i - (seq_pre[s] - 1)) * VOCAB, out, sizeof(float) * VOCAB);
        }
        ulm_ctx_free(c);
    }
    ulm_ctx *c;
    assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
    int32_t own[5] = {toks[1], toks[2], toks[3], toks[4], toks[5]};
    assert_int_equal(ulm_ctx_eval(c, own, 5, out, 0, &err), ULM_OK); /* c's own sequence */
    kv_state *st[4];
    for (int s = 0; s < 4; s++) assert_int_equal(kv_state_new(c, &st[s], &err), ULM_OK);
    for (int s = 0; s < 3; s++) { /* prefill each in batches of 4 */
        int32_t pre[64];
        for (int i = 0; i < seq_pre[s]; i++) pre[i] = seq_tok(toks, s, i);
        kv_state_swap(c, st[s]);
        assert_int_equal(ulm_ctx_pos(c), 0);
        assert_int_equal(ulm_ctx_eval(c, pre, seq_pre[s], out, 0, &err), ULM_OK);
        kv_state_swap(c, st[s]);
        for (int v = 0; v < VOCAB; v++) assert_true(fabsf(out[v] - ref[(size_t)s * (SEQ_STEPS + 1) * VOCAB + v]) <= 1e-4f);
    }
    assert_int_equal(ulm_ctx_pos(c), 5);
    float maxd = 0;
    int n = 3;
    for (int k = 1; k <= SEQ_STEPS; k++) {
        if (n == 3 && seq_pre[2] + k - 1 == seq_pre[3]) { /* fork sequence 2 here */
            kv_state_copy(st[3], st[2]);
            n = 4;
        }
        int32_t t[4];
        int row[4]; /* the reference row each sequence's output is */
        for (int s = 0; s < n; s++) {
            row[s] = s == 3 ? k - seq_pre[3] + seq_pre[2] : k;
            t[s] = seq_tok(toks, s, seq_pre[s] - 1 + row[s]);
        }
        assert_int_equal(kv_state_eval(c, st, t, n, out, &err), ULM_OK);
        for (int s = 0; s < n; s++) {
            const float *r = ref + ((size_t)s * (SEQ_STEPS + 1) + row[s]) * VOCAB;
            for (int v = 0; v < VOCAB; v++) maxd = fmaxf(maxd, fabsf(out[(size_t)s * VOCAB + v] - r[v]));
        }
    }
    print_message("%-6s 4 sequences batched vs token by token: max|d| %.2e\n", arch, maxd);
    assert_true(n == 4);
    assert_true(maxd <= 1e-4f);
    assert_int_equal(ulm_ctx_pos(c), 5); /* c's own sequence is where it was */
    /* misuse */
    kv_state *dup[2] = {st[0], st[0]};
    int32_t t2[5] = {1, 2, 3, 4, 5};
    assert_int_equal(kv_state_eval(c, dup, t2, 2, out, &err), ULM_ERR_ARG);
    assert_non_null(strstr(err.msg, "also sequence"));
    kv_state *five[5] = {st[0], st[1], st[2], st[3], st[0]};
    assert_int_equal(kv_state_eval(c, five, t2, 5, out, &err), ULM_ERR_ARG);
    ulm_ctx *small;
    ulm_ctx_params sp = {.n_ctx = 8, .n_threads = 1, .kv_f32 = 1, .n_batch = 4};
    assert_int_equal(ulm_ctx_new(m, &sp, &small, &err), ULM_OK);
    kv_state *other;
    assert_int_equal(kv_state_new(small, &other, &err), ULM_OK);
    assert_int_equal(kv_state_eval(c, &other, t2, 1, out, &err), ULM_ERR_ARG); /* another shape */
    kv_state_swap(small, other);
    assert_int_equal(ulm_ctx_eval(small, toks, 8, out, 0, &err), ULM_OK);
    kv_state_swap(small, other);
    assert_int_equal(kv_state_eval(small, &other, t2, 1, out, &err), ULM_ERR_CONTEXT); /* full */
    int32_t bad = VOCAB + 7;
    assert_int_equal(kv_state_eval(c, st, &bad, 1, out, &err), ULM_ERR_ARG);
    kv_state_free(other);
    ulm_ctx_free(small);
    for (int s = 0; s < 4; s++) kv_state_free(st[s]);
    ulm_ctx_free(c);
    free(ref), free(out);
    ulm_model_free(m);
}

static void test_kv_states(void **state) {
    check_states("llama");
    check_states("qwen3");
    check_states("gemma3");
}

/* tiny model of weight type `type` with one f32 value of `tensor` replaced by v; returns the path */
static void corrupt_model(const char *type, const char *tensor, float v, char *path, size_t n) {
    test_tmp_path(path, n, "nonfinite.ulm");
    char *argv[] = {"mkmodel", "--preset", "tiny", "--type", (char *)type, "-o", path, NULL};
    assert_int_equal(cmd_mkmodel(7, argv), 0);
    size_t len = 0;
    char *buf = test_read_file(path, &len);
    assert_non_null(buf);
    ulmf *f;
    ulm_error err;
    assert_int_equal(ulmf_open_mem(buf, len, 0, &f, &err), ULM_OK);
    const ulmf_tensor *t = ulmf_find_tensor(f, tensor);
    assert_non_null(t);
    size_t off = (size_t)((const char *)t->data - buf) + 4 * 5;
    ulmf_close(f);
    memcpy(buf + off, &v, 4);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
    free(buf);
}

/* In q8 and q4 models the norms stay f32: a NaN or an overflow there reaches the quantized
 * activations of the next product, which must carry it on (scale NaN) rather than quantize it
 * to finite values, so the logit check still sees it. */
static void test_nonfinite_logits(void **state) {
    const struct { const char *type, *tensor; float v; } cases[] = {
        {"f32", "output_norm", NAN}, {"f32", "blk.1.ffn_down", INFINITY}, {"f32", "blk.0.attn_norm", 3e38f},
        {"f32", "output", -INFINITY}, {"q8", "output_norm", NAN}, {"q8", "blk.0.attn_norm", 3e38f},
        {"q8", "blk.1.ffn_norm", -NAN}, {"q4", "output_norm", INFINITY}, {"q4", "blk.0.attn_norm", NAN}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char path[256];
        corrupt_model(cases[k].type, cases[k].tensor, cases[k].v, path, sizeof path);
        ulm_model *m;
        ulm_ctx *c;
        ulm_error err;
        assert_int_equal(ulm_model_load(path, &m, &err), ULM_OK); /* weights are not read at load */
        unlink(path);
        ulm_ctx_params cp = {.n_ctx = 16, .n_threads = 1, .kv_f32 = 1};
        assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
        const int32_t toks[4] = {1, 300, 301, 302};
        float *logits = malloc(4 * 512 * sizeof *logits);
        assert_non_null(logits);
        assert_int_equal(ulm_ctx_eval(c, toks, 4, logits, 0, &err), ULM_ERR_FORMAT);
        assert_non_null(strstr(err.msg, "NaN"));
        ulm_ctx_reset(c);
        assert_int_equal(ulm_ctx_eval(c, toks, 4, logits, 1, &err), ULM_ERR_FORMAT);
        ulm_ctx_reset(c);
        ulm_sampling s;
        ulm_sampling_default(&s);
        assert_int_equal(ulm_generate(c, "ab", &s, 4, NULL, NULL, NULL, &err), ULM_ERR_FORMAT);
        kv_state *ks[2];
        for (int i = 0; i < 2; i++) assert_int_equal(kv_state_new(c, &ks[i], &err), ULM_OK);
        assert_int_equal(kv_state_eval(c, ks, toks, 2, logits, &err), ULM_ERR_FORMAT);
        for (int i = 0; i < 2; i++) kv_state_free(ks[i]);
        free(logits);
        ulm_ctx_free(c);
        ulm_model_free(m);
    }
}

/* ULM_PAR_MIN_MACS must be a non-negative integer: anything else fails ulm_ctx_new, named. */
static void test_par_min_env(void **state) {
    (void)state;
    ulm_model *m;
    ulm_ctx *c = NULL;
    ulm_error err;
    assert_int_equal(ulm_model_load(DIR "llama.ulm", &m, &err), ULM_OK);
    ulm_ctx_params cp = {.n_ctx = 16, .n_threads = 2};
    static const char *const bad[] = {"", "12x", "-1", "lots"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(setenv("ULM_PAR_MIN_MACS", bad[i], 1), 0);
        assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_ERR_ARG);
        assert_null(c);
        assert_non_null(strstr(err.msg, "ULM_PAR_MIN_MACS"));
    }
    assert_int_equal(setenv("ULM_PAR_MIN_MACS", "1000000", 1), 0);
    assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
    ulm_ctx_free(c);
    assert_int_equal(setenv("ULM_PAR_MIN_MACS", "0", 1), 0);
    ulm_model_free(m);
}

int main(void) {
    /* fork every op over the pool, so the 2-thread runs exercise it on these small models */
    setenv("ULM_PAR_MIN_MACS", "0", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_par_min_env),
        cmocka_unit_test(test_llama),
        cmocka_unit_test(test_qwen2),
        cmocka_unit_test(test_qwen3),
        cmocka_unit_test(test_gemma3),
        cmocka_unit_test(test_kv_cache_size),
        cmocka_unit_test(test_ctx_rewind),
        cmocka_unit_test(test_kv_states),
        cmocka_unit_test(test_nonfinite_logits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
