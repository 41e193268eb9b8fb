/* ulm convert from a Hugging Face folder, on synthetic folders written here (config.json,
 * model.safetensors, a byte-level tokenizer.json). Each converted model is checked against an
 * independently built expectation:
 *   llama  — HF q/k rows are NeoX halves, the converter permutes them for interleaved RoPE: the
 *            result must give the logits of the unpermuted weights run with NeoX RoPE (the
 *            qwen2 architecture with zero biases);
 *   gemma3 — norms become 1 + w, query_pre_attn_scalar becomes query_scale, the window/pattern/
 *            local base are kept: the result must equal a .ulm written with those values;
 *   qwen2 / qwen3 — biases and q/k norms carried over; F16 and BF16 sources;
 *   llama 3 rope_scaling keys; refusals of unsupported model types and dtypes by name;
 *   and conv_tensor, every importer's path: a weight that is infinite or NaN is an error
 *   naming the tensor, whatever the target type (a fuzzer found q8 rounding NaN). */
#include <math.h>
#include "test_util.h"
#include "cli.h"
#include "convert.h"
#include "kernels.h"
#include "model.h"
#include "ulm.h"
#include "ulm_file.h"

#define V 257 /* 256 byte-level tokens + <|endoftext|> */
#define D 32
#define F 64
#define L 2

typedef struct { char name[96]; int rows, cols; float *data; } tensor;
typedef struct { tensor t[64]; int n; } tensor_set;

static uint64_t rng = 12345;
static float rnd(float std) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return ((float)(rng >> 40) / (float)(1u << 24) * 2 - 1) * std * 1.7320508f;
}

static tensor *add(tensor_set *s, const char *name, int rows, int cols, float std, float mean) {
    tensor *t = &s->t[s->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows, t->cols = cols;
    t->data = malloc(sizeof(float) * (size_t)(rows ? rows : 1) * cols);
    for (int i = 0; i < (rows ? rows : 1) * cols; i++) t->data[i] = mean + rnd(std);
    return t;
}

static void free_set(tensor_set *s) {
    for (int i = 0; i < s->n; i++) free(s->t[i].data);
    s->n = 0;
}

/* bf16/f16 round trip so the expectation holds the values the file holds */
static void round_to(tensor_set *s, const char *dtype) {
    for (int i = 0; i < s->n; i++) {
        tensor *t = &s->t[i];
        for (int k = 0; k < (t->rows ? t->rows : 1) * t->cols; k++) {
            if (!strcmp(dtype, "BF16")) t->data[k] = ulm_bf16_to_f32(ulm_f32_to_bf16(t->data[k]));
            if (!strcmp(dtype, "F16")) t->data[k] = ulm_f16_to_f32(ulm_f32_to_f16(t->data[k]));
        }
    }
}

static void write_safetensors(const char *path, tensor_set *s, const char *dtype) {
    size_t es = strcmp(dtype, "F32") ? 2 : 4, off = 0;
    char *hdr = malloc(1 << 16);
    size_t h = (size_t)sprintf(hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < s->n; i++) {
        tensor *t = &s->t[i];
        size_t n = (size_t)(t->rows ? t->rows : 1) * t->cols * es;
        if (t->rows) h += (size_t)sprintf(hdr + h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}", t->name, dtype, t->rows, t->cols, off, off + n);
        else h += (size_t)sprintf(hdr + h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%d],\"data_offsets\":[%zu,%zu]}", t->name, dtype, t->cols, off, off + n);
        off += n;
    }
    hdr[h++] = '}';
    while (h % 8) hdr[h++] = ' ';
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint64_t hl = h;
    fwrite(&hl, 8, 1, fp);
    fwrite(hdr, 1, h, fp);
    for (int i = 0; i < s->n; i++) {
        tensor *t = &s->t[i];
        for (int k = 0; k < (t->rows ? t->rows : 1) * t->cols; k++) {
            if (es == 4) fwrite(&t->data[k], 4, 1, fp);
            else {
                uint16_t v = !strcmp(dtype, "BF16") ? ulm_f32_to_bf16(t->data[k]) : ulm_f32_to_f16(t->data[k]);
                fwrite(&v, 2, 1, fp);
            }
        }
    }
    fclose(fp);
    free(hdr);
}

/* GPT-2 byte-level alphabet: printable bytes map to themselves, the rest to U+0100 + n */
static void write_tokenizer_json(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("{\"model\":{\"type\":\"BPE\",\"vocab\":{", fp);
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
        unsigned cp = printable ? (unsigned)b : 256u + (unsigned)n++;
        char u[8];
        int k = 0;
        if (cp < 0x80) {
            if (cp == '"' || cp == '\\') u[k++] = '\\';
            u[k++] = (char)cp;
        } else u[k++] = (char)(0xc0 | cp >> 6), u[k++] = (char)(0x80 | (cp & 63));
        fprintf(fp, "%s\"%.*s\":%d", b ? "," : "", k, u, b);
    }
    fputs("},\"merges\":[]},\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},"
          "\"decoder\":{\"type\":\"ByteLevel\"},"
          "\"added_tokens\":[{\"id\":256,\"content\":\"<|endoftext|>\",\"special\":true}]}", fp);
    fclose(fp);
}

static void write_config(const char *dir, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* HF-named weights of one model; hd = head_dim, heads/kv as given */
static void hf_weights(tensor_set *s, int heads, int kv, int hd, int qkv_bias, int qk_norm, int gemma, int tied) {
    char n[96];
    float nstd = 0.1f, nmean = gemma ? 0.0f : 1.0f; /* gemma stores w of (1 + w) */
    add(s, "model.embed_tokens.weight", V, D, 0.3f, 0);
    add(s, "model.norm.weight", 0, D, nstd, nmean);
    if (!tied) add(s, "lm_head.weight", V, D, 0.2f, 0);
    for (int l = 0; l < L; l++) {
#define T(suffix, r, c, std, mean) (snprintf(n, sizeof n, "model.layers.%d.%s", l, suffix), add(s, n, r, c, std, mean))
        T("input_layernorm.weight", 0, D, nstd, nmean);
        T("self_attn.q_proj.weight", heads * hd, D, 0.2f, 0);
        T("self_attn.k_proj.weight", kv * hd, D, 0.2f, 0);
        T("self_attn.v_proj.weight", kv * hd, D, 0.2f, 0);
        T("self_attn.o_proj.weight", D, heads * hd, 0.2f, 0);
        if (qkv_bias) {
            T("self_attn.q_proj.bias", 0, heads * hd, 0.3f, 0);
            T("self_attn.k_proj.bias", 0, kv * hd, 0.3f, 0);
            T("self_attn.v_proj.bias", 0, kv * hd, 0.3f, 0);
        }
        if (qk_norm) {
            T("self_attn.q_norm.weight", 0, hd, nstd, nmean);
            T("self_attn.k_norm.weight", 0, hd, nstd, nmean);
        }
        T("post_attention_layernorm.weight", 0, D, nstd, nmean);
        if (gemma) {
            T("pre_feedforward_layernorm.weight", 0, D, nstd, nmean);
            T("post_feedforward_layernorm.weight", 0, D, nstd, nmean);
        }
        T("mlp.gate_proj.weight", F, D, 0.2f, 0);
        T("mlp.up_proj.weight", F, D, 0.2f, 0);
        T("mlp.down_proj.weight", D, F, 0.2f, 0);
#undef T
    }
}

static const tensor *get(const tensor_set *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    fail_msg("no tensor %s", name);
    return NULL;
}

/* The expected .ulm, built by hand from the HF tensors: GGUF names, gemma norms + 1, the
 * metadata given, and the tokenizer copied from the converted file. */
static void write_expected(const char *path, const char *from_ulm, const tensor_set *s, const char *arch, int heads,
                           int kv, int hd, int gemma, float qscale) {
    ulmf *f;
    ulm_error err;
    assert_int_equal(ulmf_open(from_ulm, 0, &f, &err), ULM_OK);
    ulmw *w = ulmw_new();
    for (int i = 0; i < ulmf_n_meta(f); i++) {
        const ulmf_kv *kv_ = ulmf_meta_at(f, i);
        if (!strncmp(kv_->key, "tokenizer.", 10)) ulmw_copy_kv(w, kv_);
    }
    ulmw_set_str(w, "general.architecture", arch, strlen(arch));
    ulmw_set_u32(w, "model.dim", D), ulmw_set_u32(w, "model.n_layers", L), ulmw_set_u32(w, "model.n_heads", (uint32_t)heads);
    ulmw_set_u32(w, "model.n_kv_heads", (uint32_t)kv), ulmw_set_u32(w, "model.head_dim", (uint32_t)hd);
    ulmw_set_u32(w, "model.ffn_dim", F), ulmw_set_u32(w, "model.vocab_size", V), ulmw_set_u32(w, "model.max_ctx", 128);
    ulmw_set_f32(w, "model.norm_eps", 1e-6f), ulmw_set_f32(w, "model.rope_theta", 10000.0f);
    if (gemma) {
        ulmw_set_f32(w, "model.query_scale", qscale);
        ulmw_set_u32(w, "model.sliding_window", 4), ulmw_set_u32(w, "model.sliding_pattern", 2);
        ulmw_set_f32(w, "model.rope_theta_local", 100.0f);
    }
    static const char *map[][2] = {
        {"embed_tokens", "token_embd"}, {"norm", "output_norm"}, {"input_layernorm", "attn_norm"},
        {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"}, {"self_attn.v_proj", "attn_v"},
        {"self_attn.o_proj", "attn_output"}, {"self_attn.q_norm", "attn_q_norm"}, {"self_attn.k_norm", "attn_k_norm"},
        {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"}, {"mlp.down_proj", "ffn_down"},
        {"pre_feedforward_layernorm", "ffn_norm"}, {"post_feedforward_layernorm", "post_ffw_norm"}};
    for (int i = 0; i < s->n; i++) {
        const tensor *t = &s->t[i];
        char base[96], ours[96], layer[16] = "";
        const char *p = t->name;
        if (!strcmp(p, "lm_head.weight")) snprintf(ours, sizeof ours, "output");
        else {
            p += 6; /* "model." */
            int l = -1;
            if (sscanf(p, "layers.%d.", &l) == 1) {
                snprintf(layer, sizeof layer, "blk.%d.", l);
                p = strchr(p + 7, '.') + 1;
            }
            snprintf(base, sizeof base, "%s", p);
            int bias = strstr(base, ".bias") != NULL;
            *strrchr(base, '.') = 0;
            const char *m = NULL;
            if (!strcmp(base, "post_attention_layernorm")) m = gemma ? "post_attention_norm" : "ffn_norm";
            for (size_t k = 0; !m && k < sizeof map / sizeof *map; k++)
                if (!strcmp(map[k][0], base)) m = map[k][1];
            assert_non_null(m);
            snprintf(ours, sizeof ours, "%s%s%s", layer, m, bias ? ".bias" : "");
        }
        int n = (t->rows ? t->rows : 1) * t->cols;
        float *d = malloc(sizeof(float) * (size_t)n);
        for (int k = 0; k < n; k++) d[k] = t->data[k] + (gemma && !t->rows && !strstr(t->name, "bias") ? 1.0f : 0.0f);
        uint64_t shape[2] = {(uint64_t)(t->rows ? t->rows : t->cols), (uint64_t)t->cols};
        ulmw_add_tensor(w, ours, ULM_DT_F32, t->rows ? 2 : 1, t->rows ? shape : shape + 1, d, 1);
    }
    assert_int_equal(ulmw_write(w, path, &err), ULM_OK);
    ulmw_free(w);
    ulmf_close(f);
}

static float *logits_of(const char *path, int n, const int32_t *toks) {
    ulm_model *m;
    ulm_ctx *c;
    ulm_error err;
    if (ulm_model_load(path, &m, &err)) fail_msg("%s", err.msg);
    ulm_ctx_params cp = {.n_ctx = 64, .n_threads = 1, .kv_f32 = 1};
    assert_int_equal(ulm_ctx_new(m, &cp, &c, &err), ULM_OK);
    float *out = malloc(sizeof(float) * (size_t)n * V);
    assert_int_equal(ulm_ctx_eval(c, toks, n, out, 1, &err), ULM_OK);
    ulm_ctx_free(c);
    ulm_model_free(m);
    return out;
}

static float max_diff(const float *a, const float *b, int n) {
    float d = 0;
    for (int i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static char dir[200], out[300], expect[300];

static int convert_dir(void) {
    char *argv[] = {"convert", dir, "-o", out, NULL};
    return cmd_convert(4, argv);
}

static void make_dir(const char *config, tensor_set *s, const char *dtype) {
    test_tmp_path(dir, sizeof dir, "hf");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    assert_int_equal(system(cmd), 0);
    write_config(dir, config);
    write_tokenizer_json(dir);
    char p[512];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_safetensors(p, s, dtype);
    snprintf(out, sizeof out, "%s.ulm", dir);
    snprintf(expect, sizeof expect, "%s-expect.ulm", dir);
}

static void cleanup(void) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", dir, out, expect);
    assert_int_equal(system(cmd), 0);
}

static const int32_t prompt[12] = {72, 101, 108, 108, 111, 32, 119, 111, 114, 108, 100, 256};

static void test_llama_permutes_qk(void **state) {
    tensor_set s = {0};
    hf_weights(&s, 4, 2, 8, 0, 0, 0, 1);
    make_dir("{\"model_type\":\"llama\",\"hidden_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
             "\"num_key_value_heads\":2,\"intermediate_size\":64,\"vocab_size\":257,\"max_position_embeddings\":128,"
             "\"rms_norm_eps\":1e-6,\"rope_theta\":10000.0,\"tie_word_embeddings\":true}", &s, "F32");
    assert_int_equal(convert_dir(), 0);
    /* expectation: the same HF weights with NeoX RoPE = qwen2 with zero biases */
    char b[64];
    for (int l = 0; l < L; l++) {
        snprintf(b, sizeof b, "model.layers.%d.self_attn.q_proj.bias", l), memset(add(&s, b, 0, 32, 0, 0)->data, 0, 32 * 4);
        snprintf(b, sizeof b, "model.layers.%d.self_attn.k_proj.bias", l), memset(add(&s, b, 0, 16, 0, 0)->data, 0, 16 * 4);
        snprintf(b, sizeof b, "model.layers.%d.self_attn.v_proj.bias", l), memset(add(&s, b, 0, 16, 0, 0)->data, 0, 16 * 4);
    }
    write_expected(expect, out, &s, "qwen2", 4, 2, 8, 0, 0);
    float *a = logits_of(out, 12, prompt), *e = logits_of(expect, 12, prompt);
    float d = max_diff(a, e, 12 * V);
    print_message("llama (HF, permuted to interleaved) vs NeoX reference: max |d| = %.3g\n", d);
    assert_true(d < 1e-4f);
    /* and the permutation matters: the unpermuted rows as llama give other logits */
    ulmf *f;
    ulm_error err;
    assert_int_equal(ulmf_open(out, 0, &f, &err), ULM_OK);
    const ulmf_tensor *q = ulmf_find_tensor(f, "blk.0.attn_q");
    assert_non_null(q);
    const float *hq = get(&s, "model.layers.0.self_attn.q_proj.weight")->data;
    /* row 1 of head 0 (interleaved pair partner of row 0) is HF row hd/2 = 4 */
    assert_memory_equal((const float *)q->data + 1 * D, hq + 4 * D, D * sizeof(float));
    assert_memory_equal((const float *)q->data + 2 * D, hq + 1 * D, D * sizeof(float));
    ulmf_close(f);
    free(a), free(e);
    free_set(&s);
    cleanup();
}

static void test_gemma3(void **state) {
    tensor_set s = {0};
    hf_weights(&s, 2, 1, 16, 0, 1, 1, 1);
    make_dir("{\"model_type\":\"gemma3_text\",\"hidden_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":2,"
             "\"num_key_value_heads\":1,\"head_dim\":16,\"intermediate_size\":64,\"vocab_size\":257,"
             "\"max_position_embeddings\":128,\"rms_norm_eps\":1e-6,\"rope_theta\":10000.0,\"query_pre_attn_scalar\":64,"
             "\"sliding_window\":4,\"layer_types\":[\"sliding_attention\",\"full_attention\"],\"rope_local_base_freq\":100.0,"
             "\"final_logit_softcapping\":null,\"attn_logit_softcapping\":null,\"rope_scaling\":null}", &s, "BF16");
    round_to(&s, "BF16");
    assert_int_equal(convert_dir(), 0);
    write_expected(expect, out, &s, "gemma3", 2, 1, 16, 1, 0.125f);
    float *a = logits_of(out, 12, prompt), *e = logits_of(expect, 12, prompt);
    float d = max_diff(a, e, 12 * V);
    print_message("gemma3 (HF bf16) vs expectation: max |d| = %.3g\n", d);
    assert_true(d < 1e-4f);
    ulm_model *m;
    ulm_error err;
    assert_int_equal(ulm_model_load(out, &m, &err), ULM_OK);
    assert_true(fabsf(m->cfg.query_scale - 0.125f) < 1e-7f);
    assert_int_equal(m->cfg.sliding_window, 4);
    assert_true(m->layers[0].is_local && !m->layers[1].is_local);
    assert_true(m->cfg.rope_theta_local == 100.0f);
    ulm_model_free(m);
    free(a), free(e);
    free_set(&s);
    cleanup();
}

static void test_qwen2_qwen3(void **state) {
    static const struct { const char *type, *dtype; int bias, norm, hd; } c[] = {
        {"qwen2", "F16", 1, 0, 8}, {"qwen3", "F32", 0, 1, 16}};
    for (int i = 0; i < 2; i++) {
        tensor_set s = {0};
        hf_weights(&s, 4, 2, c[i].hd, c[i].bias, c[i].norm, 0, 0);
        char cfg[1024];
        snprintf(cfg, sizeof cfg, "{\"model_type\":\"%s\",\"hidden_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                 "\"num_key_value_heads\":2,\"head_dim\":%d,\"intermediate_size\":64,\"vocab_size\":257,"
                 "\"max_position_embeddings\":128,\"rms_norm_eps\":1e-6,\"rope_theta\":10000.0,\"tie_word_embeddings\":false,"
                 "\"sliding_window\":4096,\"use_sliding_window\":false}", c[i].type, c[i].hd);
        make_dir(cfg, &s, c[i].dtype);
        round_to(&s, c[i].dtype);
        assert_int_equal(convert_dir(), 0);
        write_expected(expect, out, &s, c[i].type, 4, 2, c[i].hd, 0, 0);
        float *a = logits_of(out, 12, prompt), *e = logits_of(expect, 12, prompt);
        float d = max_diff(a, e, 12 * V);
        print_message("%s (HF %s) vs expectation: max |d| = %.3g\n", c[i].type, c[i].dtype, d);
        assert_true(d < 1e-4f);
        free(a), free(e);
        free_set(&s);
        cleanup();
    }
}

static void test_llama3_rope_scaling_and_refusals(void **state) {
    tensor_set s = {0};
    hf_weights(&s, 4, 2, 8, 0, 0, 0, 1);
    make_dir("{\"model_type\":\"llama\",\"hidden_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
             "\"num_key_value_heads\":2,\"intermediate_size\":64,\"vocab_size\":257,\"max_position_embeddings\":128,"
             "\"rms_norm_eps\":1e-5,\"rope_theta\":500000.0,\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":32.0,"
             "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}", &s, "F32");
    assert_int_equal(convert_dir(), 0);
    ulm_model *m;
    ulm_error err;
    assert_int_equal(ulm_model_load(out, &m, &err), ULM_OK);
    assert_true(m->cfg.rope_llama3);
    assert_non_null(m->rope_freq_factors);
    /* the highest frequency is kept, the lowest slowed by the full factor */
    assert_true(m->rope_freq_factors[0] == 1.0f);
    assert_true(m->rope_freq_factors[3] > 1.0f);
    ulm_model_free(m);
    /* unsupported model type and rope scaling: refused by name */
    write_config(dir, "{\"model_type\":\"phi3\",\"hidden_size\":32}");
    assert_int_equal(convert_dir(), 1);
    write_config(dir, "{\"model_type\":\"llama\",\"hidden_size\":32,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                      "\"intermediate_size\":64,\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4.0}}");
    assert_int_equal(convert_dir(), 1);
    free_set(&s);
    cleanup();
}

static void test_nonfinite_weights_refused(void **state) {
    (void)state;
    static const int targets[] = {-1, ULM_DT_F32, ULM_DT_F16, ULM_DT_Q8, ULM_DT_Q4};
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t t = 0; t < sizeof targets / sizeof *targets; t++)
        for (size_t b = 0; b < 3; b++)
            for (int src16 = 0; src16 < 2; src16++) {
                float w[2 * 64];
                for (int i = 0; i < 128; i++) w[i] = 0.01f * (float)(i % 7) - 0.03f;
                w[64 + 37] = bad[b]; /* row 1 */
                uint16_t h[128];
                for (int i = 0; i < 128; i++) h[i] = ulm_f32_to_f16(w[i]);
                converter cv;
                memset(&cv, 0, sizeof cv);
                cv.w = ulmw_new();
                cv.target = targets[t];
                cv.quiet = 1;
                assert_non_null(cv.w);
                uint64_t shape[2] = {2, 64};
                ulm_error err;
                ulm_status st = conv_tensor(&cv, "blk.0.attn_q", src16 ? ULM_DT_F16 : ULM_DT_F32, 2, shape,
                                            src16 ? (const void *)h : (const void *)w, &err);
                assert_int_equal(st, ULM_ERR_FORMAT);
                assert_non_null(strstr(err.msg, "blk.0.attn_q"));
                assert_non_null(strstr(err.msg, "row 1"));
                /* the same tensor with the value finite converts */
                w[64 + 37] = 0.5f;
                h[64 + 37] = ulm_f32_to_f16(0.5f);
                assert_int_equal(conv_tensor(&cv, "blk.0.attn_k", src16 ? ULM_DT_F16 : ULM_DT_F32, 2, shape,
                                             src16 ? (const void *)h : (const void *)w, &err), ULM_OK);
                ulmw_free(cv.w);
                conv_release(&cv);
            }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_permutes_qk),
        cmocka_unit_test(test_gemma3),
        cmocka_unit_test(test_qwen2_qwen3),
        cmocka_unit_test(test_llama3_rope_scaling_and_refusals),
        cmocka_unit_test(test_nonfinite_weights_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
