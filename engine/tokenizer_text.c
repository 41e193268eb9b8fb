/* Tokenizer helpers: UTF-8, the GPT-2 byte map, the merge heap, scratch buffers, decoded pieces. */
#include <stdlib.h>
#include <string.h>
#include "tokenizer_impl.h"
#include "ulm_file.h"

/* ---- UTF-8 ---- */

size_t tok_utf8_validate(const char *str, size_t n) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        int len;
        uint32_t min;
        if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
        else if ((c & 0xF0) == 0xE0) len = 3, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
        else return i;
        if (n - i < (size_t)len) return i;
        uint32_t cp = c & (0x7F >> len);
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += (size_t)len;
    }
    return n;
}

int tok_utf8_next(const char *str, size_t n, uint32_t *cp) {
    const uint8_t *s = (const uint8_t *)str;
    uint8_t c = s[0];
    int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if ((size_t)len > n) len = 1; /* never reached on validated text */
    if (len == 1) { *cp = c; return 1; }
    uint32_t v = c & (0x7F >> len);
    for (int k = 1; k < len; k++) v = v << 6 | (s[k] & 0x3F);
    *cp = v;
    return len;
}

/* ---- GPT-2 byte map: printable bytes stand for themselves, the rest take 256, 257, ... ---- */

static int byte_printable(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

static uint32_t byte_to_cp(int b) {
    if (byte_printable(b)) return (uint32_t)b;
    uint32_t k = 0;
    for (int i = 0; i < b; i++) k += !byte_printable(i);
    return 256 + k;
}

size_t tok_byte_to_utf8(int byte, char *out) {
    uint32_t cp = byte_to_cp(byte);
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    out[0] = (char)(0xC0 | cp >> 6);
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* code point -> byte, -1 for code points outside the map */
static int cp_to_byte(uint32_t cp) {
    static int16_t rev[324];
    static int init;
    if (!init) { /* idempotent, so a race only repeats the same writes */
        for (int i = 0; i < 324; i++) rev[i] = -1;
        for (int b = 0; b < 256; b++) rev[byte_to_cp(b)] = (int16_t)b;
        init = 1;
    }
    return cp < 324 ? rev[cp] : -1;
}

/* ---- scratch ---- */

void tok_work_free(tok_work *w) {
    free(w->sym_start), free(w->sym_len), free(w->sym_prev), free(w->sym_next), free(w->sym_id);
    free(w->heap), free(w->buf), free(w->cps), free(w->boff), free(w->fls);
    free(w->nfc);
    memset(w, 0, sizeof *w);
}

static int grow(void **p, size_t n, size_t elem) {
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    return 0;
}

int tok_work_reserve(tok_work *w, size_t n_sym, size_t n_buf) {
    if (n_sym > INT32_MAX / 2 || n_buf > INT32_MAX) return -1;
    if ((int)n_sym > w->cap_sym) {
        size_t c = n_sym + n_sym / 2 + 16;
        if (grow((void **)&w->sym_start, c, 4) || grow((void **)&w->sym_len, c, 4) ||
            grow((void **)&w->sym_prev, c, 4) || grow((void **)&w->sym_next, c, 4) || grow((void **)&w->sym_id, c, 4))
            return -1;
        w->cap_sym = (int)c;
    }
    if (n_buf > w->cap_buf) {
        size_t c = n_buf + n_buf / 2 + 64;
        if (grow((void **)&w->buf, c, 1)) return -1;
        w->cap_buf = c;
    }
    return 0;
}

int tok_work_reserve_cp(tok_work *w, size_t n) {
    if (n <= w->cap_cp) return 0;
    size_t c = n + n / 2 + 16;
    if (grow((void **)&w->cps, c, 4) || grow((void **)&w->boff, c, 4) || grow((void **)&w->fls, c, 1)) return -1;
    w->cap_cp = c;
    return 0;
}

/* ---- heap of merge candidates (lowest key, then leftmost, on top) ---- */

static int cand_before(const tok_cand *a, const tok_cand *b) {
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

int tok_heap_push(tok_work *w, tok_cand c) {
    if (w->n_heap == w->cap_heap) {
        int nc = w->cap_heap ? 2 * w->cap_heap : 256;
        if (grow((void **)&w->heap, (size_t)nc, sizeof *w->heap)) return -1;
        w->cap_heap = nc;
    }
    int i = w->n_heap++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!cand_before(&c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
    return 0;
}

tok_cand tok_heap_pop(tok_work *w) {
    tok_cand top = w->heap[0], last = w->heap[--w->n_heap];
    int i = 0, n = w->n_heap;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* ---- decoded text of each token ---- */

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Writes the decoded bytes of token id into out (room for the piece's own length: decoding
 * never grows a piece); returns their count. */
static size_t decode_one(const tokenizer *t, int id, char *out) {
    size_t n;
    const char *p = tok_piece(t, id, &n);
    int ty = t->types[id];
    if (ty == TOK_CONTROL || ty == TOK_UNKNOWN || (ty == TOK_USER && t->kind == TOK_BPE)) {
        memcpy(out, p, n);
        return n;
    }
    if (ty == TOK_BYTE && n == 6 && p[0] == '<' && hexval(p[3]) >= 0 && hexval(p[4]) >= 0) {
        out[0] = (char)(hexval(p[3]) << 4 | hexval(p[4]));
        return 1;
    }
    size_t k = 0;
    if (t->kind == TOK_SPM) {
        for (size_t i = 0; i < n;) {
            if (n - i >= 3 && !memcmp(p + i, "\xe2\x96\x81", 3)) out[k++] = ' ', i += 3;
            else out[k++] = p[i++];
        }
        return k;
    }
    /* byte-level: every character stands for one byte; anything else is kept as it is */
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = (size_t)tok_utf8_next(p + i, n - i, &cp);
        if (tok_utf8_validate(p + i, l) != l) { out[k++] = p[i++]; continue; }
        int b = cp_to_byte(cp);
        if (b >= 0) out[k++] = (char)b;
        else memcpy(out + k, p + i, l), k += l;
        i += l;
    }
    return k;
}

ulm_status tok_build_decoded(tokenizer *t, ulm_error *err) {
    size_t total = t->offs[t->n_vocab] - t->offs[0];
    t->dec = malloc(total + 1);
    t->dec_offs = malloc(((size_t)t->n_vocab + 1) * sizeof *t->dec_offs);
    if (!t->dec || !t->dec_offs) return ulm_set_error(err, ULM_ERR_NOMEM, "tokenizer: out of memory");
    uint32_t k = 0;
    for (int id = 0; id < t->n_vocab; id++) {
        t->dec_offs[id] = k;
        k += (uint32_t)decode_one(t, id, t->dec + k);
    }
    t->dec_offs[t->n_vocab] = k;
    return ULM_OK;
}

int tok_pre_from_name(const char *name) {
    static const char *const names[] = {"default", "gpt2", "llama3", "qwen2", "smollm"};
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
        if (!strcmp(name, names[i])) return i;
    if (!strcmp(name, "gpt-2")) return TOK_PRE_GPT2;
    if (!strcmp(name, "llama-bpe")) return TOK_PRE_LLAMA3;
    return -1;
}
