/* Sampling a token from logits: repetition penalty, an optional allowed-token mask (output
 * constraints), then greedy argmax or temperature / top-k / min-p / top-p sampling. Owns its
 * scratch so sampling allocates nothing per token. */
#ifndef ULM_SAMPLER_H
#define ULM_SAMPLER_H
#include <stdint.h>
#include "ulm.h"

typedef struct sampler {
    ulm_sampling p;
    uint64_t rng;
    int n_vocab;
    float *probs; /* [n_vocab] */
    int32_t *idx; /* [n_vocab] */
} sampler;

ulm_status sampler_init(sampler *s, const ulm_sampling *p, int n_vocab, ulm_error *err);
void sampler_free(sampler *s);
/* Samples from logits (modified in place). allowed: bitset over ids (bit i of allowed[i/8]),
 * or NULL for all. hist: previous tokens for the repetition penalty. *prob gets the chosen
 * token's probability under the model's distribution after penalty and mask (temperature 1).
 * Returns -1 when the mask allows nothing. */
int sampler_sample(sampler *s, float *logits, const uint8_t *allowed, const int32_t *hist, int n_hist, float *prob);

#endif
