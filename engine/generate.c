/* Text in, text out: tokenize, prefill, sample, stream UTF-8-safe text. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "model.h"
#include "sampler.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

ulm_status ulm_tokenize(const ulm_model *m, const char *text, size_t len, int flags, int32_t *out, int cap, int *n_out,
                        ulm_error *err) {
    return tok_encode(m->tok, text, len, flags, out, cap, n_out, err);
}

const char *ulm_token_bytes(const ulm_model *m, int32_t id, size_t *len) {
    if (id < 0 || id >= tok_n_vocab(m->tok)) { *len = 0; return ""; }
    return tok_decode_piece(m->tok, id, len);
}

void ulm_detok_init(ulm_detok *d, const ulm_model *m) {
    memset(d, 0, sizeof *d);
    d->m = m;
    d->at_start = 1;
}

/* Length of the UTF-8 sequence that lead byte c starts (1 for a stray continuation byte). */
static int utf8_len(unsigned char c) {
    return c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf8 ? 4 : 1;
}

size_t ulm_detok_push(ulm_detok *d, int32_t id, char *buf, size_t cap) {
    size_t n = 0, plen;
    if (cap == 0) return 0;
    const tokenizer *t = d->m->tok;
    int ty = (id >= 0 && id < tok_n_vocab(t)) ? tok_type(t, id) : TOK_CONTROL;
    if (ty == TOK_CONTROL || ty == TOK_UNUSED) { buf[0] = 0; return 0; } /* BOS, EOS, ... print nothing */
    const char *p = tok_decode_piece(t, id, &plen);
    /* SentencePiece adds a dummy-prefix space to the text; drop it from the first piece */
    if (d->at_start && tok_get_kind(t) == TOK_SPM && tok_add_space_prefix(t) && plen && p[0] == ' ') { p++; plen--; }
    if (plen) d->at_start = 0;
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)p[i];
        if (d->n_pending == 0 && c < 0x80) { if (n + 1 < cap) buf[n++] = (char)c; continue; }
        if (d->n_pending > 0 && (c & 0xc0) != 0x80) { /* broken sequence: emit U+FFFD for it */
            if (n + 3 < cap) { memcpy(buf + n, "\xef\xbf\xbd", 3); n += 3; }
            d->n_pending = 0;
            if (c < 0x80) { if (n + 1 < cap) buf[n++] = (char)c; continue; }
        }
        if (d->n_pending < 0 || d->n_pending >= 4) d->n_pending = 0; /* keeps gcc's bounds analysis happy */
        d->pending[d->n_pending++] = c;
        int need = utf8_len(d->pending[0]);
        if (need == 1 && d->n_pending == 1 && c >= 0x80) { /* stray continuation byte */
            if (n + 3 < cap) { memcpy(buf + n, "\xef\xbf\xbd", 3); n += 3; }
            d->n_pending = 0;
        } else if (d->n_pending == need) {
            if (n + (size_t)need < cap) { memcpy(buf + n, d->pending, (size_t)need); n += (size_t)need; }
            d->n_pending = 0;
        }
    }
    buf[n] = 0;
    return n;
}

ulm_status ulm_generate(ulm_ctx *c, const char *prompt, const ulm_sampling *sp, int n_predict, ulm_text_fn on_text,
                        void *user, ulm_gen_stats *stats, ulm_error *err) {
    const ulm_model *m = NULL;
    ulm_status st;
    double t0 = now_ms();
    m = ulm_ctx_model(c);
    int V = m->cfg.vocab_size, n_ctx = ulm_ctx_size(c), pos0 = ulm_ctx_pos(c);
    int n_tok = 0;
    if ((st = tok_encode(m->tok, prompt, strlen(prompt), ULM_TOK_ADD_BOS, NULL, 0, &n_tok, err))) return st;
    if (n_tok == 0) return ulm_set_error(err, ULM_ERR_ARG, "empty prompt and the model adds no BOS token");
    if (n_tok > n_ctx - pos0)
        return ulm_set_error(err, ULM_ERR_CONTEXT, "prompt of %d tokens does not fit the context of %d", n_tok, n_ctx - pos0);
    int cap = n_ctx - pos0;
    int32_t *toks = malloc((size_t)cap * sizeof *toks);
    float *logits = malloc((size_t)V * sizeof *logits);
    sampler smp;
    memset(&smp, 0, sizeof smp);
    if (!toks || !logits) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
    if ((st = sampler_init(&smp, sp, V, err))) goto done;
    if ((st = tok_encode(m->tok, prompt, strlen(prompt), ULM_TOK_ADD_BOS, toks, cap, &n_tok, err))) goto done;
    ulm_detok d;
    ulm_detok_init(&d, m);
    char piece[256];
    int stop = 0;
    for (int i = 0; i < n_tok && !stop && on_text; i++) { /* echo the prompt, like llama.cpp */
        size_t n = ulm_detok_push(&d, toks[i], piece, sizeof piece);
        if (n) stop = on_text(piece, n, user);
    }
    double tp = now_ms();
    if ((st = ulm_ctx_eval(c, toks, n_tok, logits, 0, err))) goto done;
    double tf = now_ms();
    if (stats) {
        memset(stats, 0, sizeof *stats);
        stats->n_prompt = n_tok;
        stats->prefill_ms = tf - tp;
    }
    int n = n_tok, gen = 0;
    double ttft = 0;
    while (gen < n_predict && !stop) {
        int next = sampler_sample(&smp, logits, NULL, toks, n, NULL);
        if (gen == 0) ttft = now_ms() - t0;
        if (next < 0 || tok_is_eog(m->tok, next)) break;
        gen++;
        size_t k = ulm_detok_push(&d, next, piece, sizeof piece);
        if (k && on_text) stop = on_text(piece, k, user);
        if (gen >= n_predict || stop) break;
        if (n >= cap) { st = ulm_set_error(err, ULM_ERR_CONTEXT, "context of %d tokens is full", n_ctx); break; }
        toks[n++] = next;
        if ((st = ulm_ctx_eval(c, &toks[n - 1], 1, logits, 0, err))) break;
    }
    if (stats) {
        stats->n_gen = gen;
        stats->ttft_ms = ttft;
        stats->decode_ms = now_ms() - tf;
    }
done:
    sampler_free(&smp);
    free(toks);
    free(logits);
    return st;
}
