/* Models: architectures as data, weights bound to tensors of a mapped .ulm.
 *
 * .ulm metadata written by every importer (and by tools/train):
 *   general.architecture  str  "llama" | "gemma3" | "qwen2" | "qwen3"
 *   general.name          str  (optional)
 *   model.dim, model.n_layers, model.n_heads, model.n_kv_heads, model.head_dim,
 *   model.ffn_dim, model.vocab_size, model.max_ctx                         u32
 *   model.norm_eps, model.rope_theta                                        f32
 *   model.rope_theta_local f32, model.sliding_window u32, model.sliding_pattern u32
 *         (gemma3: layer i is global when (i + 1) % pattern == 0, else local with the window)
 *   model.query_scale     f32  (optional; default 1/sqrt(head_dim))
 *   model.rope_scaling    str  "none" | "llama3", with model.rope_scaling.factor,
 *         .low_freq_factor, .high_freq_factor (f32), .original_max_ctx (u32)
 *
 * Tensors (GGUF names; matrices are [out, in] row-major):
 *   token_embd [vocab, dim]      output_norm [dim]      output [vocab, dim] (absent: tied)
 *   blk.N.attn_norm [dim]
 *   blk.N.attn_q [n_heads*hd, dim]  blk.N.attn_k / attn_v [n_kv*hd, dim]  (+ .bias: qwen2)
 *   blk.N.attn_q_norm / attn_k_norm [hd]                     (qwen3, gemma3)
 *   blk.N.attn_output [dim, n_heads*hd]
 *   blk.N.post_attention_norm [dim]                          (gemma3)
 *   blk.N.ffn_norm [dim]
 *   blk.N.ffn_gate / ffn_up [ffn, dim]   blk.N.ffn_down [dim, ffn]
 *   blk.N.post_ffw_norm [dim]                                (gemma3)
 * Conventions fixed at conversion so the forward pass never branches on the source:
 *   - norm weights are the final multiplier (Gemma's 1 + w is added by the converter);
 *   - q/k rows are laid out for the architecture's RoPE style (llama: interleaved pairs, as
 *     llama2.c and GGUF; qwen2/qwen3/gemma3: NeoX halves, as Hugging Face).
 */
#ifndef ULM_MODEL_H
#define ULM_MODEL_H
#include "kernels.h"
#include "tokenizer.h"
#include "ulm.h"
#include "ulm_file.h"

/* Per-architecture behaviour: a row of data, not a code path (engine/arch.c). */
typedef struct arch_desc {
    const char *name;
    int rope_interleaved;  /* 1: pairs (2i, 2i+1); 0: NeoX halves */
    int gelu;              /* FFN gate activation: 0 SiLU, 1 GELU-tanh */
    int qkv_bias;          /* q/k/v projections have biases */
    int qk_norm;           /* per-head RMSNorm on q and k */
    int post_norms;        /* RMSNorm after attention and after FFN (gemma) */
    int embed_scale_sqrt_dim; /* multiply embeddings by sqrt(dim) */
} arch_desc;

const arch_desc *arch_find(const char *name);

typedef struct model_config {
    const arch_desc *arch;
    int dim, n_layers, n_heads, n_kv_heads, head_dim, ffn_dim, vocab_size, max_ctx;
    float norm_eps, rope_theta, rope_theta_local, query_scale;
    int sliding_window, sliding_pattern;  /* 0 = no sliding-window layers */
    int rope_llama3;                      /* llama 3 RoPE frequency scaling */
    float rope_factor, rope_low_freq, rope_high_freq;
    int rope_orig_ctx;
} model_config;

typedef struct tensor_ref {
    ulm_dtype dtype;
    int rows, cols;
    const void *data; /* in the mapping */
} tensor_ref;

typedef struct layer_weights {
    tensor_ref attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, post_attn_norm;
    tensor_ref ffn_norm, w_gate, w_up, w_down, post_ffn_norm;
    int is_local; /* sliding-window layer */
} layer_weights;

struct ulm_model {
    ulmf *file;
    model_config cfg;
    tokenizer *tok;
    tensor_ref tok_embd, output_norm, output;
    layer_weights *layers; /* [n_layers] */
    float *rope_freq_factors; /* [head_dim/2] llama3 scaling, or NULL */
    uint64_t n_params;     /* of this weight set */
    int n_members;         /* weight sets in the file (metadata model.members, default 1) */
    const struct ulm_model *parent; /* a member: the model whose file and tokenizer it borrows */
};

/* A file may carry more than one weight set of the same config and tokenizer ("members"):
 * the model's own tensors, then "member1.token_embd", "member1.blk.0.attn_q", ... The task
 * runtime decodes from the mean of the members' log-probabilities (engine/task.c). */
#define MODEL_MAX_MEMBERS 8

/* The model a context runs (engine-internal accessor). */
const struct ulm_model *ulm_ctx_model(const ulm_ctx *c);

/* Moves the sequence back to pos (<= the current position), forgetting the later tokens;
 * the next ulm_ctx_eval feeds position pos. -1 (and nothing changes) when a sliding-window
 * layer's ring has already overwritten keys a query at pos would see. */
int ulm_ctx_rewind(ulm_ctx *c, int pos);

/* A context's sequence state (its K/V cache and position) held apart from it, so one context
 * can run several sequences (beam search): swapped in and out, or stepped together by
 * kv_state_eval. A state fits only contexts of its model and size (made from one of them). */
typedef struct kv_state kv_state;
ulm_status kv_state_new(const ulm_ctx *c, kv_state **out, ulm_error *err);
void kv_state_free(kv_state *s);
/* Exchanges c's sequence state with s (no copy). */
void kv_state_swap(ulm_ctx *c, kv_state *s);
/* dst becomes a copy of src (the filled slots only). */
void kv_state_copy(kv_state *dst, const kv_state *src);
/* One token for each of n separate sequences (distinct states of c's shape), in one batched
 * forward pass: the matmuls read each weight once for all of them; each row attends to its
 * own sequence and moves it on by one. logits: [n][vocab_size]. c's own sequence is
 * untouched. */
ulm_status kv_state_eval(ulm_ctx *c, kv_state *const *seqs, const int32_t *tokens, int n, float *logits,
                         ulm_error *err);

/* Reads config + binds every tensor, checking dtypes and shapes. */
ulm_status model_bind(struct ulm_model *m, ulm_error *err);

/* Member k (1 .. n_members-1) of m: its weights bound, the file and tokenizer m's (so it
 * must be freed before m). */
ulm_status model_member(const struct ulm_model *m, int k, struct ulm_model **out, ulm_error *err);

#endif
