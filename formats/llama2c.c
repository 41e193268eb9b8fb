#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "llama2c.h"
#include "ulm_file.h"

ulm_status llama2c_load(const char *path, llama2c_ckpt *ck, ulm_error *err) {
    memset(ck, 0, sizeof *ck);
    FILE *fp = fopen(path, "rb");
    if (!fp) return ulm_set_error(err, ULM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    int32_t h[7];
    if (fread(h, 4, 7, fp) != 7) { fclose(fp); return ulm_set_error(err, ULM_ERR_FORMAT, "%s: truncated llama2.c header", path); }
    fseek(fp, 0, SEEK_END);
    long fsize = ftell(fp);
    ck->dim = h[0]; ck->hidden_dim = h[1]; ck->n_layers = h[2]; ck->n_heads = h[3]; ck->n_kv_heads = h[4];
    ck->shared_classifier = h[5] > 0;
    ck->vocab_size = h[5] > 0 ? h[5] : (h[5] == INT32_MIN ? 0 : -h[5]);
    ck->seq_len = h[6];
    if (ck->dim <= 0 || ck->dim > 65536 || ck->hidden_dim <= 0 || ck->hidden_dim > 1 << 18 || ck->n_layers <= 0 ||
        ck->n_layers > 1024 || ck->n_heads <= 0 || ck->n_heads > ck->dim || ck->n_kv_heads <= 0 ||
        ck->n_kv_heads > ck->n_heads || ck->n_heads % ck->n_kv_heads || ck->dim % ck->n_heads ||
        ck->vocab_size <= 0 || ck->vocab_size > 1 << 22 || ck->seq_len <= 0 || ck->seq_len > 1 << 24) {
        fclose(fp);
        return ulm_set_error(err, ULM_ERR_FORMAT, "%s: not a llama2.c checkpoint (implausible header)", path);
    }
    uint64_t D = (uint64_t)ck->dim, F = (uint64_t)ck->hidden_dim, L = (uint64_t)ck->n_layers, V = (uint64_t)ck->vocab_size;
    uint64_t hs = D / (uint64_t)ck->n_heads, kvd = hs * (uint64_t)ck->n_kv_heads;
    uint64_t floats = V * D + L * D + L * D * D + 2 * L * kvd * D + L * D * D + L * D + 3 * L * F * D + D +
                      (uint64_t)ck->seq_len * hs; /* freq_cis_real + imag: seq_len * hs/2 each */
    if (!ck->shared_classifier) floats += V * D;
    if ((uint64_t)fsize != 28 + floats * 4) {
        fclose(fp);
        return ulm_set_error(err, ULM_ERR_FORMAT, "%s: llama2.c file is %ld bytes, its header implies %llu", path, fsize,
                             (unsigned long long)(28 + floats * 4));
    }
    ck->size = (uint64_t)fsize;
    ck->buf = malloc(floats * 4);
    if (!ck->buf) { fclose(fp); return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory reading %s", path); }
    fseek(fp, 28, SEEK_SET);
    if (fread(ck->buf, 4, floats, fp) != floats) {
        fclose(fp);
        llama2c_free(ck);
        return ulm_set_error(err, ULM_ERR_IO, "%s: read failed", path);
    }
    fclose(fp);
    const float *p = ck->buf;
    ck->token_embedding = p; p += V * D;
    ck->rms_att = p; p += L * D;
    ck->wq = p; p += L * D * D;
    ck->wk = p; p += L * kvd * D;
    ck->wv = p; p += L * kvd * D;
    ck->wo = p; p += L * D * D;
    ck->rms_ffn = p; p += L * D;
    ck->w1 = p; p += L * F * D;
    ck->w2 = p; p += L * D * F;
    ck->w3 = p; p += L * F * D;
    ck->rms_final = p; p += D;
    p += (uint64_t)ck->seq_len * hs; /* precomputed RoPE tables: recomputed by the engine */
    ck->wcls = ck->shared_classifier ? ck->token_embedding : p;
    return ULM_OK;
}

void llama2c_free(llama2c_ckpt *ck) {
    free(ck->buf);
    ck->buf = NULL;
}
