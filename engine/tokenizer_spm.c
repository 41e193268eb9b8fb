/* SentencePiece BPE encoding (Llama 2, TinyLlama, Gemma 3): the text's spaces become U+2581,
 * optionally with a dummy-prefix space; then adjacent symbols merge, highest-scoring result
 * first (leftmost on ties), as SentencePiece's bpe_model.cc and llama.cpp do; whatever is left
 * outside the vocabulary falls back to <0xXX> byte tokens. */
#include <math.h>
#include <string.h>
#include "tokenizer_impl.h"

static const char SPACE_MARK[3] = {'\xe2', '\x96', '\x81'}; /* U+2581 ▁ */

/* Tokens a merge may produce: SentencePiece keeps control, byte and unused pieces out of its
 * piece table, so text never merges into them. */
static int mergeable(const tokenizer *t, int id) {
    return id >= 0 && (t->types[id] == TOK_NORMAL || t->types[id] == TOK_USER);
}

static int try_pair(const tokenizer *t, tok_work *w, int l, int r) {
    int32_t len = w->sym_len[l] + w->sym_len[r];
    int id = tok_find(t, w->buf + w->sym_start[l], (size_t)len);
    if (!mergeable(t, id) || !(t->scores[id] > -INFINITY)) return 0; /* -inf: no merge makes it */
    return tok_heap_push(w, (tok_cand){-t->scores[id], l, r, len, id});
}

/* Merges b[cs, ce) of the normalized text (w->buf) and writes its tokens. */
static ulm_status encode_chunk(const tokenizer *t, tok_work *w, size_t cs, size_t ce, tok_out *o) {
    const char *b = w->buf;
    int ns = 0;
    for (size_t i = cs; i < ce; ns++) {
        uint32_t cp;
        int l = tok_utf8_next(b + i, ce - i, &cp);
        w->sym_start[ns] = (int32_t)i;
        w->sym_len[ns] = l;
        w->sym_prev[ns] = ns - 1;
        w->sym_next[ns] = ns + 1;
        i += (size_t)l;
    }
    w->sym_next[ns - 1] = -1;
    w->n_heap = 0;
    for (int i = 0; i + 1 < ns; i++)
        if (try_pair(t, w, i, i + 1)) return ULM_ERR_NOMEM;
    while (w->n_heap) {
        tok_cand c = tok_heap_pop(w);
        int l = c.left, r = c.right;
        /* stale: one side already merged elsewhere */
        if (w->sym_len[l] == 0 || w->sym_len[r] == 0 || w->sym_next[l] != r || w->sym_len[l] + w->sym_len[r] != c.len)
            continue;
        w->sym_len[l] = c.len;
        w->sym_len[r] = 0;
        w->sym_next[l] = w->sym_next[r];
        if (w->sym_next[r] >= 0) w->sym_prev[w->sym_next[r]] = l;
        if (w->sym_prev[l] >= 0 && try_pair(t, w, w->sym_prev[l], l)) return ULM_ERR_NOMEM;
        if (w->sym_next[l] >= 0 && try_pair(t, w, l, w->sym_next[l])) return ULM_ERR_NOMEM;
    }
    for (int i = 0; i >= 0; i = w->sym_next[i]) {
        const char *p = b + w->sym_start[i];
        int len = w->sym_len[i];
        int id = tok_find(t, p, (size_t)len);
        if (mergeable(t, id)) {
            if (tok_out_push(o, id)) return ULM_ERR_NOMEM;
            continue;
        }
        /* not in the vocabulary: one token per byte, or <unk> */
        int all_bytes = t->byte_fallback;
        for (int k = 0; k < len && all_bytes; k++) all_bytes = t->byte_tok[(uint8_t)p[k]] >= 0;
        if (all_bytes) {
            for (int k = 0; k < len; k++)
                if (tok_out_push(o, t->byte_tok[(uint8_t)p[k]])) return ULM_ERR_NOMEM;
        } else if (t->unk >= 0 && tok_out_push(o, t->unk)) {
            return ULM_ERR_NOMEM;
        }
    }
    return ULM_OK;
}

ulm_status tok_encode_spm(const tokenizer *t, tok_work *w, const char *s, size_t n, int prefix, tok_out *o) {
    int add_prefix = prefix && t->add_space_prefix;
    if (n == 0) return ULM_OK;
    if (tok_work_reserve(w, n + 1, 3 * (n + 1))) return ULM_ERR_NOMEM;
    char *b = w->buf;
    size_t bl = 0;
    if (add_prefix) memcpy(b, SPACE_MARK, 3), bl = 3;
    size_t i0 = 0, i1 = n;
    if (t->remove_extra_spaces) { /* SentencePiece: strip, and squeeze runs of spaces to one */
        while (i0 < n && s[i0] == ' ') i0++;
        while (i1 > i0 && s[i1 - 1] == ' ') i1--;
        if (i0 == i1) return ULM_OK;
    }
    for (size_t i = i0; i < i1; i++) {
        if (s[i] == ' ') {
            if (t->remove_extra_spaces && i > i0 && s[i - 1] == ' ') continue;
            memcpy(b + bl, SPACE_MARK, 3), bl += 3;
        } else {
            b[bl++] = s[i];
        }
    }
    /* merge word by word: a chunk ends before a U+2581 that no piece joins to what precedes
     * it (t->spm_glue), so chunks merge independently with the same result */
    size_t cs = 0;
    for (size_t i = 1; i <= bl; i++) {
        if (i < bl && !((uint8_t)b[i] == 0xE2 && i + 3 <= bl && !memcmp(b + i, SPACE_MARK, 3) && !t->spm_glue[(uint8_t)b[i - 1]]))
            continue;
        ulm_status st = encode_chunk(t, w, cs, i, o);
        if (st) return st;
        cs = i;
    }
    return ULM_OK;
}
