#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "sampler.h"
#include "ulm_file.h"

void ulm_sampling_default(ulm_sampling *s) {
    memset(s, 0, sizeof *s);
    s->temperature = 0;
    s->top_k = 0;
    s->top_p = 1.0f;
    s->min_p = 0;
    s->repeat_penalty = 1.0f;
    s->repeat_last_n = 64;
    s->seed = 42;
}

ulm_status sampler_init(sampler *s, const ulm_sampling *p, int n_vocab, ulm_error *err) {
    memset(s, 0, sizeof *s);
    if (p) s->p = *p;
    else ulm_sampling_default(&s->p);
    if (!(s->p.temperature >= 0) || !(s->p.top_p > 0 && s->p.top_p <= 1) || !(s->p.min_p >= 0 && s->p.min_p < 1) ||
        s->p.top_k < 0 || !(s->p.repeat_penalty > 0))
        return ulm_set_error(err, ULM_ERR_ARG, "invalid sampling settings (temperature >= 0, 0 < top_p <= 1, 0 <= min_p < 1, top_k >= 0, repeat_penalty > 0)");
    s->rng = s->p.seed ? s->p.seed : 0x2545F4914F6CDD1Dull;
    s->n_vocab = n_vocab;
    s->probs = malloc((size_t)n_vocab * sizeof *s->probs);
    s->idx = malloc((size_t)n_vocab * sizeof *s->idx);
    if (!s->probs || !s->idx) {
        sampler_free(s);
        return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    }
    return ULM_OK;
}

void sampler_free(sampler *s) {
    free(s->probs);
    free(s->idx);
    s->probs = NULL;
    s->idx = NULL;
}

static double rng_uniform(uint64_t *st) { /* xorshift64*, 53-bit uniform in [0,1) */
    *st ^= *st >> 12; *st ^= *st << 25; *st ^= *st >> 27;
    return (double)((*st * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0);
}

static int cmp_desc(const void *a, const void *b, void *ctx) {
    const float *p = ctx;
    float x = p[*(const int32_t *)a], y = p[*(const int32_t *)b];
    return (x < y) - (x > y);
}

/* qsort_r is a GNU extension; a plain insertion into a partial heap would also do. */
static void sort_by_prob(int32_t *idx, int n, const float *p) { qsort_r(idx, (size_t)n, sizeof *idx, cmp_desc, (void *)p); }

int sampler_sample(sampler *s, float *logits, const uint8_t *allowed, const int32_t *hist, int n_hist, float *prob) {
    int V = s->n_vocab;
    if (s->p.repeat_penalty != 1.0f && hist) {
        int from = n_hist > s->p.repeat_last_n ? n_hist - s->p.repeat_last_n : 0;
        for (int i = from; i < n_hist; i++) {
            int t = hist[i];
            if (t < 0 || t >= V) continue;
            /* apply once per distinct token: mark with NaN-free trick via a second pass */
            int seen = 0;
            for (int j = from; j < i; j++) if (hist[j] == t) { seen = 1; break; }
            if (seen) continue;
            logits[t] = logits[t] > 0 ? logits[t] / s->p.repeat_penalty : logits[t] * s->p.repeat_penalty;
        }
    }
    if (allowed)
        for (int i = 0; i < V; i++)
            if (!(allowed[i >> 3] >> (i & 7) & 1)) logits[i] = -INFINITY;
    int best = -1;
    float max = -INFINITY;
    for (int i = 0; i < V; i++)
        if (logits[i] > max) { max = logits[i]; best = i; }
    if (best < 0) return -1;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += expf(logits[i] - max);
    if (s->p.temperature <= 0) {
        if (prob) *prob = (float)(1.0 / sum);
        return best;
    }
    /* candidates: tokens with finite logits, optionally the top k */
    int n = 0;
    for (int i = 0; i < V; i++)
        if (logits[i] > -INFINITY) s->idx[n++] = i;
    float invt = 1.0f / s->p.temperature;
    for (int i = 0; i < n; i++) s->probs[s->idx[i]] = expf((logits[s->idx[i]] - max) * invt);
    sort_by_prob(s->idx, n, s->probs);
    if (s->p.top_k > 0 && s->p.top_k < n) n = s->p.top_k;
    double tot = 0;
    for (int i = 0; i < n; i++) tot += s->probs[s->idx[i]];
    if (s->p.min_p > 0) { /* keep tokens with p >= min_p * p_max */
        float thr = s->p.min_p * s->probs[s->idx[0]];
        int m = 1;
        while (m < n && s->probs[s->idx[m]] >= thr) m++;
        n = m;
    }
    if (s->p.top_p < 1.0f) {
        double acc = 0, cut = s->p.top_p * tot;
        int m = 0;
        while (m < n) { acc += s->probs[s->idx[m++]]; if (acc >= cut) break; }
        n = m;
    }
    tot = 0;
    for (int i = 0; i < n; i++) tot += s->probs[s->idx[i]];
    double r = rng_uniform(&s->rng) * tot, acc = 0;
    int pick = s->idx[n - 1];
    for (int i = 0; i < n; i++) {
        acc += s->probs[s->idx[i]];
        if (r < acc) { pick = s->idx[i]; break; }
    }
    if (prob) *prob = (float)(expf(logits[pick] - max) / sum);
    return pick;
}
