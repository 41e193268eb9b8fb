/* llama2.c checkpoints ("v0": 7 int32 header, then f32 weights), as written by karpathy's
 * export of run.c. The file is read whole and checked: its size must be exactly what the
 * header implies (with or without a separate classifier). */
#ifndef ULM_LLAMA2C_H
#define ULM_LLAMA2C_H
#include <stdint.h>
#include "ulm.h"

typedef struct llama2c_ckpt {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared_classifier;
    /* pointers into buf; matrices are [out][in] */
    const float *token_embedding;  /* [vocab][dim] */
    const float *rms_att;          /* [L][dim] */
    const float *wq, *wk, *wv, *wo; /* [L][dim][dim], [L][kv_dim][dim] x2, [L][dim][dim] */
    const float *rms_ffn;          /* [L][dim] */
    const float *w1, *w2, *w3;     /* [L][hidden][dim], [L][dim][hidden], [L][hidden][dim] */
    const float *rms_final;        /* [dim] */
    const float *wcls;             /* [vocab][dim] */
    void *buf;
    uint64_t size;
} llama2c_ckpt;

ulm_status llama2c_load(const char *path, llama2c_ckpt *ck, ulm_error *err);
void llama2c_free(llama2c_ckpt *ck);

#endif
