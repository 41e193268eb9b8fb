/* The trainer's model: a llama / gemma3 / qwen3 transformer whose parameters, gradients and
 * AdamW moments are four flat f32 arrays with one shared tensor table, so the optimizer,
 * gradient clipping and checkpoints walk one array. The forward pass follows engine/model.h
 * (same tensor names, norm conventions and RoPE layouts), so the .ulm it writes runs as is.
 *
 * A batch is a flat run of N tokens made of whole examples (segments) laid end to end:
 * attention never crosses a segment, and each segment starts at position 0, exactly as the
 * engine sees one example. Matmuls run over [N, dim], so there is no padding. */
#ifndef ULM_TRAIN_MODEL_H
#define ULM_TRAIN_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "train_gemm.h"
#include "train_pool.h"
#include "ulm.h"
#include "ulm_file.h"

typedef struct train_arch {
    const char *name;
    int rope_interleaved; /* llama: pairs; gemma3/qwen3: NeoX halves */
    int gelu;             /* gemma3: GELU-tanh gate */
    int qk_norm;          /* gemma3, qwen3 */
    int post_norms;       /* gemma3 */
    int embed_scale;      /* gemma3: embeddings * sqrt(dim) */
    int tied_default;     /* gemma3: output shares token_embd */
} train_arch;

const train_arch *train_arch_find(const char *name); /* "llama", "gemma3", "qwen3" */

typedef struct train_config {
    const train_arch *arch;
    int dim, n_layers, n_heads, n_kv_heads, head_dim, ffn_dim, vocab_size, max_ctx;
    float norm_eps, rope_theta, rope_theta_local, query_scale;
    int sliding_window, sliding_pattern; /* gemma3: 0 = every layer global */
    int tied;
} train_config;

/* Sensible defaults for an architecture (caller then sets sizes). */
void train_config_default(train_config *c, const train_arch *arch);
ulm_status train_config_check(const train_config *c, ulm_error *err);

typedef struct train_tensor {
    char name[48];
    int ndim, rows, cols; /* 1-D: rows = 1 */
    size_t off;           /* in floats, into w / g / m / v */
    int decay;            /* weight decay applies (matrices) */
} train_tensor;

typedef struct train_layer {
    int attn_norm, wq, wk, wv, wo, q_norm, k_norm, post_attn_norm;
    int ffn_norm, w_gate, w_up, w_down, post_ffn_norm; /* tensor indices, -1 absent */
} train_layer;

typedef struct train_model {
    train_config cfg;
    int n_tensors;
    train_tensor *t;
    train_layer *layers;
    int tok_embd, output_norm, output; /* output == tok_embd when tied */
    size_t n_params;
    float *w, *g, *m, *v;            /* [n_params] each */
    float *avg;                       /* [n_params] mean of w over the last avg_n steps (tail
                                         averaging, train_run_opts.average_from); NULL when off */
    int avg_n;
    float *rope_cos, *rope_sin;       /* [max_ctx][head_dim/2] (global theta) */
    float *rope_cos_l, *rope_sin_l;   /* local layers (gemma3) */
} train_model;

/* Allocates tensors for cfg; weights are initialized from seed (normal 0.02, residual
 * projections scaled by 1/sqrt(2 n_layers), norms 1). */
ulm_status train_model_new(train_model **out, const train_config *cfg, uint64_t seed, ulm_error *err);
void train_model_free(train_model *m);
float *train_param(train_model *m, int tensor);
float *train_grad(train_model *m, int tensor);
int train_find_tensor(const train_model *m, const char *name);
/* Tail averaging: adds the current weights to the running mean m->avg (allocated on the
 * first call); -1 when out of memory. train_average_swap exchanges w and avg, so the mean
 * can be evaluated or written and the last weights put back by a second swap. */
int train_average_add(train_model *m);
void train_average_swap(train_model *m);

typedef struct train_batch {
    int n;                   /* tokens */
    int32_t *tokens, *targets, *pos; /* [n]; targets[i] = next token to predict, -1 = no loss */
    int32_t *ptargets;       /* [n] the next token where it is still the prompt's, else -1 */
    float prompt_weight;     /* > 0: add the loss on ptargets, weighted so against the output's
                                (a language-model loss on the input); 0 = off, ptargets unread */
    int n_seg;
    int32_t *seg_start, *seg_len;    /* [n_seg] */
    int cap_n, cap_seg;
} train_batch;

void train_batch_free(train_batch *b);
int train_batch_reserve(train_batch *b, int n, int n_seg);

typedef struct train_ws train_ws; /* activations and gradient scratch, grown on demand */
train_ws *train_ws_new(tpool *pool);
void train_ws_free(train_ws *ws);
tgemm *train_ws_gemm(train_ws *ws);
/* The last train_forward's summed loss on prompt tokens, *rows of them (0 unless its batch
 * had a prompt_weight). */
double train_ws_prompt_loss(const train_ws *ws, int *rows);

/* Forward over the batch; returns the summed loss over target tokens (*n_targets of them).
 * backward != 0 also ADDS d(mean loss)/dw into m->g; with b->prompt_weight the loss whose
 * gradient that is also holds prompt_weight * (summed prompt-token loss) / n_targets. logits_out, when not NULL, receives
 * [n_targets][vocab] logits (before the loss turns them into gradients). */
ulm_status train_forward(train_model *m, train_ws *ws, const train_batch *b, int backward, double *loss_sum,
                         int *n_targets, float *logits_out, ulm_error *err);

typedef struct train_opt {
    float lr, min_lr, beta1, beta2, eps, weight_decay, clip;
    int warmup, total_steps;
} train_opt;
void train_opt_default(train_opt *o);
float train_lr_at(const train_opt *o, int step); /* linear warmup, then cosine down to min_lr */
/* Clips the global gradient norm, takes one AdamW step (t = step + 1), zeroes m->g.
 * Returns the gradient norm before clipping. */
float train_adamw_step(train_model *m, const train_opt *o, int step, tpool *pool); /* pool may be NULL */

/* ---- .ulm I/O (train_io.c) ---- */
struct train_tok;
typedef enum { TRAIN_OUT_F32 = 0, TRAIN_OUT_Q8, TRAIN_OUT_Q4, TRAIN_OUT_Q8_PLAIN, TRAIN_OUT_Q4_PLAIN } train_out_type;
/* Writes an engine-loadable .ulm (metadata of engine/model.h + the tokenizer's keys).
 * Q8/Q4 quantize matrices with ulm_quantize_row (Q4: the embedding and output stay Q8) and
 * store those whose rows are a multiple of 16 interleaved (Q8_R16/Q4_R16), as `ulm convert`
 * does; the _PLAIN types keep every matrix in the plain block layout. Norms stay f32. */
ulm_status train_write_ulm(const train_model *m, const struct train_tok *tok, train_out_type type,
                           const char *path, ulm_error *err);
/* Reads config and weights from any .ulm of a supported architecture (dequantized to f32). */
ulm_status train_model_load(train_model **out, const char *path, ulm_error *err);

/* Checkpoint = the f32 .ulm plus AdamW moments and the training state under train.* keys. */
typedef struct train_state {
    int step;
    uint64_t seed;
} train_state;
ulm_status train_save_checkpoint(const train_model *m, const struct train_tok *tok, const train_state *st,
                                 const char *path, ulm_error *err);
ulm_status train_load_checkpoint(train_model **out, train_state *st, const char *path, ulm_error *err);
#endif
