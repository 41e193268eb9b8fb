/* Byte-level BPE encoding (GPT-2 style: SmolLM2, Qwen2/3, Llama 3): the family's pre-tokenizer
 * cuts the text into words; each word starts as one symbol per byte (the GPT-2 byte map makes
 * every byte a token) and adjacent symbols merge, lowest merge rank first, leftmost on ties. */
#include <string.h>
#include "tokenizer_impl.h"
#include "tokenizer_pre.h"
#include "unicode.h"

static int try_merge(const tokenizer *t, tok_work *w, int l, int r) {
    int res;
    if (w->sym_id[l] < 0 || w->sym_id[r] < 0) return 0;
    int rank = tok_find_merge(t, w->sym_id[l], w->sym_id[r], &res);
    if (rank < 0) return 0;
    return tok_heap_push(w, (tok_cand){(float)rank, l, r, w->sym_len[l] + w->sym_len[r], res});
}

static ulm_status encode_word(const tokenizer *t, tok_work *w, const uint8_t *p, size_t n, tok_out *o) {
    if (n == 1 && t->byte_tok[p[0]] >= 0) return tok_out_push(o, t->byte_tok[p[0]]) ? ULM_ERR_NOMEM : ULM_OK;
    if (tok_work_reserve(w, n, 2 * n)) return ULM_ERR_NOMEM;
    if (t->ignore_merges) { /* Llama 3: a word that is a token stays whole */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += tok_byte_to_utf8(p[i], w->buf + k);
        int id = tok_find(t, w->buf, k);
        if (id >= 0) return tok_out_push(o, id) ? ULM_ERR_NOMEM : ULM_OK;
    }
    int ns = (int)n;
    for (int i = 0; i < ns; i++) {
        w->sym_id[i] = t->byte_tok[p[i]];
        w->sym_len[i] = 1;
        w->sym_prev[i] = i - 1;
        w->sym_next[i] = i + 1;
    }
    w->sym_next[ns - 1] = -1;
    w->n_heap = 0;
    for (int i = 0; i + 1 < ns; i++)
        if (try_merge(t, w, i, i + 1)) return ULM_ERR_NOMEM;
    while (w->n_heap) {
        tok_cand c = tok_heap_pop(w);
        int l = c.left, r = c.right;
        if (w->sym_len[l] == 0 || w->sym_len[r] == 0 || w->sym_next[l] != r || w->sym_len[l] + w->sym_len[r] != c.len)
            continue;
        w->sym_id[l] = c.id;
        w->sym_len[l] = c.len;
        w->sym_len[r] = 0;
        w->sym_next[l] = w->sym_next[r];
        if (w->sym_next[r] >= 0) w->sym_prev[w->sym_next[r]] = l;
        if (w->sym_prev[l] >= 0 && try_merge(t, w, w->sym_prev[l], l)) return ULM_ERR_NOMEM;
        if (w->sym_next[l] >= 0 && try_merge(t, w, l, w->sym_next[l])) return ULM_ERR_NOMEM;
    }
    for (int i = 0; i >= 0; i = w->sym_next[i]) {
        int id = w->sym_id[i] >= 0 ? w->sym_id[i] : t->unk;
        if (id >= 0 && tok_out_push(o, id)) return ULM_ERR_NOMEM;
    }
    return ULM_OK;
}

ulm_status tok_encode_bpe(const tokenizer *t, tok_work *w, const char *s, size_t n, tok_out *o) {
    if (tok_work_reserve_cp(w, n + 1)) return ULM_ERR_NOMEM;
    size_t nc = 0;
    for (size_t i = 0; i < n; nc++) {
        uint32_t cp;
        int l = tok_utf8_next(s + i, n - i, &cp);
        w->cps[nc] = cp;
        w->fls[nc] = (uint8_t)unicode_flags(cp);
        w->boff[nc] = (uint32_t)i;
        i += (size_t)l;
    }
    w->boff[nc] = (uint32_t)n;
    size_t seg = 0;
    for (size_t i = 0; i < nc;) {
        size_t e = tok_pre_next(t->pre, w->cps, w->fls, i, nc, &seg);
        ulm_status st = encode_word(t, w, (const uint8_t *)s + w->boff[i], w->boff[e] - w->boff[i], o);
        if (st) return st;
        i = e;
    }
    return ULM_OK;
}
