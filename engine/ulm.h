/* ulm — run one small fine-tuned transformer per task on a CPU.
 *
 * The whole public API. Handles are opaque; every call that can fail returns a ulm_status and,
 * when `err` is not NULL, fills it with a one-line message naming the problem. There is no
 * global state: a model is an mmapped file, a context owns its KV cache, scratch and threads.
 *
 *   ulm_model *m; ulm_ctx *c; ulm_error e;
 *   if (ulm_model_load("model.ulm", &m, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
 *   ulm_ctx_new(m, NULL, &c, &e);
 *   ulm_generate(c, "Once upon a time", &sampling, 40, on_text, user, &e);
 */
#ifndef ULM_H
#define ULM_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ULM_VERSION "0.1.0"

typedef enum {
    ULM_OK = 0,
    ULM_ERR_IO,          /* missing file, unreadable, mmap failed */
    ULM_ERR_FORMAT,      /* corrupt, truncated or hostile file contents */
    ULM_ERR_CHECKSUM,    /* SHA-256 of a .ulm does not match */
    ULM_ERR_UNSUPPORTED, /* valid input this build does not handle (architecture, dtype, version) */
    ULM_ERR_NOMEM,
    ULM_ERR_ARG,         /* bad argument from the caller */
    ULM_ERR_CONTEXT,     /* prompt or generation does not fit the context */
    ULM_ERR_UTF8,        /* invalid UTF-8 input */
    ULM_ERR_CONSTRAINT,  /* an output constraint cannot be satisfied */
    ULM_ERR_SPEC,        /* malformed task spec or golden set */
    ULM_ERR_INTERNAL
} ulm_status;

typedef struct ulm_error {
    ulm_status code;
    char msg[512];
} ulm_error;

const char *ulm_status_name(ulm_status s);
/* Which kernel ISA paths this process picked ("avx512vnni", "neon-dotprod", ...). */
const char *ulm_isa_name(void);

/* ---- model: a .ulm file mapped read-only; weights are used in place ---- */
typedef struct ulm_model ulm_model;

typedef struct ulm_model_info {
    const char *arch;  /* "llama", "gemma3", "qwen2", "qwen3" */
    int n_vocab, dim, n_layers, n_heads, n_kv_heads, head_dim, ffn_dim, max_ctx;
    int bos_id, eos_id; /* -1 when the model has none */
    uint64_t file_size, n_params;
} ulm_model_info;

ulm_status ulm_model_load(const char *path, ulm_model **out, ulm_error *err);
void ulm_model_free(ulm_model *m);
void ulm_model_get_info(const ulm_model *m, ulm_model_info *info);

/* ---- tokenizer (stored inside the .ulm) ---- */
enum {
    ULM_TOK_ADD_BOS = 1,       /* prepend BOS if the model's tokenizer asks for it */
    ULM_TOK_PARSE_SPECIAL = 2  /* "<|im_start|>" in the text becomes its special token */
};
/* Encodes UTF-8 text. Writes at most `cap` ids; *n_out is the number the text needs (so a
 * call with cap 0 measures). Invalid UTF-8 gives ULM_ERR_UTF8. */
ulm_status ulm_tokenize(const ulm_model *m, const char *text, size_t len, int flags,
                        int32_t *out, int cap, int *n_out, ulm_error *err);
/* The raw bytes of one token (byte-fallback tokens give their byte). */
const char *ulm_token_bytes(const ulm_model *m, int32_t id, size_t *len);

/* Streaming detokenizer: holds back an incomplete UTF-8 sequence until it completes. */
typedef struct ulm_detok {
    const ulm_model *m;
    unsigned char pending[8];
    int n_pending;
    int at_start; /* drops the SentencePiece dummy-prefix space of the first token */
} ulm_detok;
void ulm_detok_init(ulm_detok *d, const ulm_model *m);
/* Appends the text of `id` to buf (NUL-terminated, at most cap-1 bytes); returns its length. */
size_t ulm_detok_push(ulm_detok *d, int32_t id, char *buf, size_t cap);

/* ---- context: KV cache + scratch + threads for one sequence ---- */
typedef struct ulm_ctx ulm_ctx;

typedef struct ulm_ctx_params {
    int n_ctx;     /* tokens of context; 0 = the model's maximum, capped at 4096 */
    int n_threads; /* 0 = number of online cores; work under 2^18 multiply-adds (env ULM_PAR_MIN_MACS) stays on the caller */
    int kv_f32;    /* 0: K/V cache in f16 (default); 1: f32 (exact, twice the memory) */
    int n_batch;   /* prefill tokens per forward pass (bounds scratch memory); 0 = 64 */
} ulm_ctx_params;

/* Bytes of K/V cache a context of n_ctx tokens allocates for this model (sliding-window
 * layers keep only their window, so this grows with n_ctx only for the global layers). */
uint64_t ulm_kv_cache_bytes(const ulm_model *m, int n_ctx, int kv_f32, int n_batch);

ulm_status ulm_ctx_new(const ulm_model *m, const ulm_ctx_params *p, ulm_ctx **out, ulm_error *err);
void ulm_ctx_free(ulm_ctx *c);
void ulm_ctx_reset(ulm_ctx *c); /* forget the sequence, keep the buffers */
int ulm_ctx_pos(const ulm_ctx *c);
int ulm_ctx_size(const ulm_ctx *c);

/* Feeds n tokens at the current position. With all_logits, writes [n][n_vocab] logits,
 * else only the last position's [n_vocab]. logits may be NULL (prefill only). A logit that
 * is infinite or NaN (corrupt weights) is ULM_ERR_FORMAT. */
ulm_status ulm_ctx_eval(ulm_ctx *c, const int32_t *tokens, int n, float *logits, int all_logits,
                        ulm_error *err);

/* ---- sampling ---- */
typedef struct ulm_sampling {
    float temperature;   /* 0 = greedy */
    int top_k;           /* 0 = off */
    float top_p;         /* 1 = off */
    float min_p;         /* 0 = off */
    float repeat_penalty;/* 1 = off */
    int repeat_last_n;
    uint64_t seed;
} ulm_sampling;
void ulm_sampling_default(ulm_sampling *s); /* greedy */

/* Text callback for streaming output; return non-zero to stop. */
typedef int (*ulm_text_fn)(const char *text, size_t len, void *user);

typedef struct ulm_gen_stats {
    int n_prompt, n_gen;
    double prefill_ms, decode_ms, ttft_ms;
} ulm_gen_stats;

/* Tokenizes prompt (BOS as the model says), generates up to n_predict tokens, stops at EOS. */
ulm_status ulm_generate(ulm_ctx *c, const char *prompt, const ulm_sampling *s, int n_predict,
                        ulm_text_fn on_text, void *user, ulm_gen_stats *stats, ulm_error *err);

#ifdef __cplusplus
}
#endif
#endif
