/* ulm mkmodel --preset P [--seed N] [--type f32|f16|bf16|q8|q4] -o OUT.ulm
 * A random-weight model of exactly the shape of a real one, for tests and for benchmarking a
 * board without downloading anything. Presets (shapes as the published configs / the peer
 * kit's make_gguf.py table):
 *   smollm2-135m  llama   dim 576,  30 layers,  9/3 heads, hd 64,  ffn 1536, vocab 49152, untied
 *   gemma3-270m   gemma3  dim 640,  18 layers,  4/1 heads, hd 256, ffn 2048, vocab 262144, tied,
 *                         window 512, 5 local : 1 global, rope 1e6 / local 1e4
 *   qwen3-0.6b    qwen3   dim 1024, 28 layers, 16/8 heads, hd 128, ffn 3072, vocab 151936, tied
 *   llama3.2-1b   llama   dim 2048, 16 layers, 32/8 heads, hd 64,  ffn 8192, vocab 128256, tied,
 *                         llama 3 RoPE scaling (factor 32)
 *   tiny          llama   dim 64,    2 layers,  4/2 heads, hd 16,  ffn 192,  vocab 512
 * The tokenizer is SYNTHETIC: a SentencePiece-style vocabulary of the preset's size (<unk>,
 * <s>, </s>, the 256 byte tokens, then made-up pieces "▁a", "▁b", ... with falling scores), so
 * any text encodes (byte fallback) but not as the real model's tokenizer would.
 * Weights: uniform with std 0.03 (embeddings of tied gemma3: 0.25/sqrt(dim), so the model does
 * not just predict its input), norms 1; each row is generated and converted at once, so memory
 * is about the output file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "cli.h"
#include "kernels.h"
#include "ulm_file.h"

typedef struct {
    const char *name, *arch;
    int dim, n_layers, n_heads, n_kv, hd, ffn, vocab, ctx, tied;
    float theta, eps;
    int window, pattern;
    float theta_local;
    int llama3_rope;
} preset;

static const preset presets[] = {
    {"smollm2-135m", "llama", 576, 30, 9, 3, 64, 1536, 49152, 8192, 0, 100000.0f, 1e-5f, 0, 0, 0, 0},
    {"gemma3-270m", "gemma3", 640, 18, 4, 1, 256, 2048, 262144, 32768, 1, 1e6f, 1e-6f, 512, 6, 10000.0f, 0},
    {"qwen3-0.6b", "qwen3", 1024, 28, 16, 8, 128, 3072, 151936, 40960, 1, 1e6f, 1e-6f, 0, 0, 0, 0},
    {"llama3.2-1b", "llama", 2048, 16, 32, 8, 64, 8192, 128256, 131072, 1, 500000.0f, 1e-5f, 0, 0, 0, 1},
    {"tiny", "llama", 64, 2, 4, 2, 16, 192, 512, 2048, 0, 10000.0f, 1e-5f, 0, 0, 0, 0},
};

static uint64_t rng_next(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [-std*sqrt(3), std*sqrt(3)): variance std^2 */
static float rng_uniform(uint64_t *s, float std) {
    return ((float)(rng_next(s) >> 40) / (float)(1u << 24) * 2.0f - 1.0f) * std * 1.7320508f;
}

static int add_matrix(ulmw *w, const char *name, int rows, int cols, ulm_dtype dt, float std, uint64_t *seed) {
    size_t rb = ulm_dtype_row_bytes(dt, (uint64_t)cols);
    char *buf = malloc((size_t)rows * rb);
    float *row = malloc((size_t)cols * sizeof *row);
    if (!buf || !row) { free(buf); free(row); return -1; }
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++) row[c] = rng_uniform(seed, std);
        ulm_quantize_row(dt, row, buf + (size_t)r * rb, cols);
    }
    free(row);
    uint64_t shape[2] = {(uint64_t)rows, (uint64_t)cols};
    if (ulmw_add_tensor(w, name, dt, 2, shape, buf, 1)) { free(buf); return -1; }
    return 0;
}

static int add_norm(ulmw *w, const char *name, int n) {
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return -1;
    for (int i = 0; i < n; i++) v[i] = 1.0f;
    uint64_t shape[1] = {(uint64_t)n};
    if (ulmw_add_tensor(w, name, ULM_DT_F32, 1, shape, v, 1)) { free(v); return -1; }
    return 0;
}

/* "a", "b", ..., "z", "aa", "ab", ...: the made-up piece number i */
static int piece_name(int i, char *out) {
    char tmp[16];
    int n = 0;
    i++;
    while (i > 0 && n < 15) {
        i--;
        tmp[n++] = (char)('a' + i % 26);
        i /= 26;
    }
    for (int k = 0; k < n; k++) out[k] = tmp[n - 1 - k];
    return n;
}

static int add_tokenizer(ulmw *w, int vocab) {
    char **toks = calloc((size_t)vocab, sizeof *toks);
    uint32_t *lens = calloc((size_t)vocab, sizeof *lens);
    float *scores = calloc((size_t)vocab, sizeof *scores);
    uint8_t *types = calloc((size_t)vocab, 1);
    char *blob = malloc((size_t)vocab * 24);
    int rc = -1;
    if (!toks || !lens || !scores || !types || !blob) goto done;
    for (int i = 0; i < vocab; i++) {
        char *p = blob + (size_t)i * 24;
        toks[i] = p;
        if (i == 0) lens[i] = (uint32_t)sprintf(p, "<unk>"), types[i] = 2;
        else if (i == 1) lens[i] = (uint32_t)sprintf(p, "<s>"), types[i] = 3;
        else if (i == 2) lens[i] = (uint32_t)sprintf(p, "</s>"), types[i] = 3;
        else if (i < 259) lens[i] = (uint32_t)sprintf(p, "<0x%02X>", i - 3), types[i] = 6;
        else {
            memcpy(p, "\xe2\x96\x81", 3); /* U+2581, SentencePiece's space */
            lens[i] = 3 + (uint32_t)piece_name(i - 259, p + 3);
            types[i] = 1;
            scores[i] = -(float)(i - 259);
        }
    }
    rc = ulmw_set_str(w, "tokenizer.model", "spm", 3) || ulmw_set_str(w, "tokenizer.pre", "default", 7) ||
         ulmw_set_strarr(w, "tokenizer.tokens", (const char *const *)toks, lens, (uint64_t)vocab) ||
         ulmw_set_arr(w, "tokenizer.scores", ULMF_F32, scores, (uint64_t)vocab) ||
         ulmw_set_arr(w, "tokenizer.types", ULMF_BOOL, types, (uint64_t)vocab) ||
         ulmw_set_i32(w, "tokenizer.unk_id", 0) || ulmw_set_i32(w, "tokenizer.bos_id", 1) ||
         ulmw_set_i32(w, "tokenizer.eos_id", 2) || ulmw_set_bool(w, "tokenizer.add_bos", 1) ||
         ulmw_set_bool(w, "tokenizer.add_space_prefix", 1) || ulmw_set_bool(w, "tokenizer.byte_fallback", 1) ||
         ulmw_set_str(w, "tokenizer.chat_template", "none", 4) ? -1 : 0;
done:
    free(toks), free(lens), free(scores), free(types), free(blob);
    return rc;
}

static const char *usage =
    "usage: ulm mkmodel --preset smollm2-135m|gemma3-270m|qwen3-0.6b|llama3.2-1b|tiny [--seed N]\n"
    "                   [--type f32|f16|bf16|q8|q4] -o OUT.ulm\n"
    "  random weights of exactly that shape, with a synthetic tokenizer of the right size\n";

int cmd_mkmodel(int argc, char **argv) {
    const char *pname = NULL, *out = NULL, *type = "q8";
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); return 0; }
        const char *v = arg_value(argc, argv, &i);
        if (!v) return 2;
        if (!strcmp(a, "--preset")) pname = v;
        else if (!strcmp(a, "-o")) out = v;
        else if (!strcmp(a, "--type")) type = v;
        else if (!strcmp(a, "--seed")) { if (arg_u64(a, v, &seed)) return 2; }
        else { fprintf(stderr, "ulm mkmodel: unknown option %s\n%s", a, usage); return 2; }
    }
    if (!pname || !out) { fputs(usage, stderr); return 2; }
    const preset *p = NULL;
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
        if (!strcmp(presets[i].name, pname)) p = &presets[i];
    if (!p) { fprintf(stderr, "ulm mkmodel: unknown preset '%s'\n%s", pname, usage); return 2; }
    int dt = ulm_dtype_from_name(type);
    if (dt < 0 || dt > ULM_DT_Q4) { fprintf(stderr, "ulm mkmodel: unknown --type '%s' (f32, f16, bf16, q8, q4)\n", type); return 2; }

    ulmw *w = ulmw_new();
    if (!w) return 1;
    int D = p->dim, hd = p->hd, qd = p->n_heads * hd, kvd = p->n_kv * hd, F = p->ffn, V = p->vocab;
    int gemma = !strcmp(p->arch, "gemma3"), qwen3 = !strcmp(p->arch, "qwen3");
    int bad = ulmw_set_str(w, "general.architecture", p->arch, strlen(p->arch));
    char name[96];
    snprintf(name, sizeof name, "random %s (seed %llu)", p->name, (unsigned long long)seed);
    bad |= ulmw_set_str(w, "general.name", name, strlen(name));
    bad |= ulmw_set_u32(w, "model.dim", (uint32_t)D) | ulmw_set_u32(w, "model.n_layers", (uint32_t)p->n_layers) |
           ulmw_set_u32(w, "model.n_heads", (uint32_t)p->n_heads) | ulmw_set_u32(w, "model.n_kv_heads", (uint32_t)p->n_kv) |
           ulmw_set_u32(w, "model.head_dim", (uint32_t)hd) | ulmw_set_u32(w, "model.ffn_dim", (uint32_t)F) |
           ulmw_set_u32(w, "model.vocab_size", (uint32_t)V) | ulmw_set_u32(w, "model.max_ctx", (uint32_t)p->ctx) |
           ulmw_set_f32(w, "model.norm_eps", p->eps) | ulmw_set_f32(w, "model.rope_theta", p->theta);
    if (p->window) {
        bad |= ulmw_set_u32(w, "model.sliding_window", (uint32_t)p->window) | ulmw_set_u32(w, "model.sliding_pattern", (uint32_t)p->pattern) |
               ulmw_set_f32(w, "model.rope_theta_local", p->theta_local);
    }
    if (gemma) bad |= ulmw_set_f32(w, "model.query_scale", 1.0f / sqrtf((float)hd));
    if (p->llama3_rope) {
        bad |= ulmw_set_str(w, "model.rope_scaling", "llama3", 6) | ulmw_set_f32(w, "model.rope_scaling.factor", 32.0f) |
               ulmw_set_f32(w, "model.rope_scaling.low_freq_factor", 1.0f) | ulmw_set_f32(w, "model.rope_scaling.high_freq_factor", 4.0f) |
               ulmw_set_u32(w, "model.rope_scaling.original_max_ctx", 8192);
    }
    bad |= add_tokenizer(w, V);
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    const float std = 0.03f;
    bad |= add_matrix(w, "token_embd", V, D, (ulm_dtype)dt, gemma ? 0.25f / sqrtf((float)D) : std, &s);
    bad |= add_norm(w, "output_norm", D);
    if (!p->tied) bad |= add_matrix(w, "output", V, D, (ulm_dtype)dt, std, &s);
    for (int l = 0; l < p->n_layers && !bad; l++) {
        char n[8][64];
        /* each name in its own buffer: the operands of | are evaluated in any order */
#define M(i, suffix, rows, cols) (snprintf(n[i], 64, "blk.%d." suffix, l), add_matrix(w, n[i], rows, cols, (ulm_dtype)dt, std, &s))
#define N(i, suffix, len) (snprintf(n[i], 64, "blk.%d." suffix, l), add_norm(w, n[i], len))
        bad |= N(0, "attn_norm", D);
        bad |= M(1, "attn_q", qd, D);
        bad |= M(2, "attn_k", kvd, D);
        bad |= M(3, "attn_v", kvd, D);
        bad |= M(4, "attn_output", D, qd);
        if (gemma || qwen3) {
            bad |= N(5, "attn_q_norm", hd);
            bad |= N(6, "attn_k_norm", hd);
        }
        if (gemma) {
            bad |= N(5, "post_attention_norm", D);
            bad |= N(6, "post_ffw_norm", D);
        }
        bad |= N(7, "ffn_norm", D);
        bad |= M(1, "ffn_gate", F, D);
        bad |= M(2, "ffn_up", F, D);
        bad |= M(3, "ffn_down", D, F);
#undef M
#undef N
    }
    ulm_error err = {0};
    ulm_status st = bad ? ulm_set_error(&err, ULM_ERR_NOMEM, "out of memory building the model") : ulmw_write(w, out, &err);
    ulmw_free(w);
    if (st) { fprintf(stderr, "ulm mkmodel: %s\n", err.msg); return 1; }
    fprintf(stderr, "ulm mkmodel: wrote %s (%s, %s, seed %llu, synthetic tokenizer of %d tokens)\n", out, p->name, type,
            (unsigned long long)seed, V);
    return 0;
}
