/* Byte-level BPE training (see bpe_train.h for the rules). The corpus is reduced to its
 * distinct pre-tokenizer pieces with counts; merges are then learned on those, keeping the
 * counts of adjacent pairs up to date as each merge rewrites the pieces that contain it. */
#include "bpe_train.h"
#include <stdlib.h>
#include <string.h>
#include "tokenizer.h"

/* ---- pre-tokenizer ---- */

int bpe_char_class(uint32_t cp) {
    if (cp < 0x80) {
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return BPE_LETTER;
        if (cp >= '0' && cp <= '9') return BPE_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d)) return BPE_SPACE;
        return BPE_OTHER;
    }
    if (cp < 0x100) { /* Latin-1: exact */
        if (cp == 0x85 || cp == 0xa0) return BPE_SPACE;
        if (cp == 0xaa || cp == 0xb5 || cp == 0xba) return BPE_LETTER;
        if (cp == 0xb2 || cp == 0xb3 || cp == 0xb9 || (cp >= 0xbc && cp <= 0xbe)) return BPE_NUMBER;
        if (cp < 0xc0 || cp == 0xd7 || cp == 0xf7) return BPE_OTHER;
        return BPE_LETTER;
    }
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
        cp == 0x205f || cp == 0x3000)
        return BPE_SPACE;
    if ((cp >= 0x2000 && cp <= 0x206f) ||  /* general punctuation */
        (cp >= 0x20a0 && cp <= 0x20cf) ||  /* currency */
        (cp >= 0x2190 && cp <= 0x2bff) ||  /* arrows, math, technical, boxes, shapes, dingbats */
        (cp >= 0x3000 && cp <= 0x303f) ||  /* CJK punctuation */
        (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff01 && cp <= 0xff0f) ||
        (cp >= 0x1f000 && cp <= 0x1faff))  /* emoji and pictographs */
        return BPE_OTHER;
    return BPE_LETTER;
}

/* Decodes one UTF-8 sequence at s[0..len); returns its length, or 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    unsigned char c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    size_t n;
    uint32_t v, min;
    if ((c & 0xe0) == 0xc0) { n = 2; v = c & 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { n = 3; v = c & 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { n = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if (n > len) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return n;
}

/* Class and byte length of the character at s[pos]; invalid bytes are OTHER, one byte. */
static int char_at(const char *s, size_t len, size_t pos, size_t *n) {
    uint32_t cp;
    *n = utf8_decode((const unsigned char *)s + pos, len - pos, &cp);
    if (!*n) { *n = 1; return BPE_OTHER; }
    return bpe_char_class(cp);
}

size_t bpe_pretok_next(const char *s, size_t len, size_t pos) {
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    if (s[pos] == '\'')
        for (int i = 0; i < 7; i++) {
            size_t k = strlen(contractions[i]);
            if (k <= len - pos && !memcmp(s + pos, contractions[i], k)) return k;
        }
    size_t p = pos, n;
    int c = char_at(s, len, p, &n);
    if (s[p] == ' ' && p + 1 < len) { /* " ?X+": a space joins the run that follows */
        size_t n2;
        int c2 = char_at(s, len, p + 1, &n2);
        if (c2 != BPE_SPACE) { c = c2; p += 1; n = n2; }
    }
    if (c != BPE_SPACE) {
        size_t q = p + n;
        while (q < len && char_at(s, len, q, &n) == c) q += n;
        return q - pos;
    }
    /* whitespace: \s+(?!\S) keeps the last one for the next piece when a non-space follows */
    size_t q = p, last = p, count = 0;
    while (q < len && char_at(s, len, q, &n) == BPE_SPACE) { last = q; q += n; count++; }
    if (q < len && count >= 2) return last - pos;
    return q - pos;
}

uint32_t bpe_byte_to_cp(uint8_t b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    /* the others, in byte order, become 256, 257, ... */
    uint32_t k = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) k++;
    return 256 + k;
}

/* ---- hash tables ---- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Distinct pieces: bytes in one arena, each with its count. */
typedef struct { uint64_t hash; size_t off, len; uint64_t count; int used; } piece;
typedef struct { piece *slot; size_t cap, n; char *arena; size_t arena_n, arena_cap; } piece_map;

static int piece_grow(piece_map *m) {
    size_t nc = m->cap ? 2 * m->cap : 4096;
    piece *ns = calloc(nc, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slot[i].used) continue;
        size_t j = m->slot[i].hash & (nc - 1);
        while (ns[j].used) j = (j + 1) & (nc - 1);
        ns[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = ns;
    m->cap = nc;
    return 0;
}

static int piece_add(piece_map *m, const char *s, size_t n) {
    if (2 * (m->n + 1) > m->cap && piece_grow(m)) return -1;
    uint64_t h = hash_bytes(s, n);
    size_t i = h & (m->cap - 1);
    for (; m->slot[i].used; i = (i + 1) & (m->cap - 1)) {
        piece *p = &m->slot[i];
        if (p->hash == h && p->len == n && !memcmp(m->arena + p->off, s, n)) { p->count++; return 0; }
    }
    if (m->arena_n + n > m->arena_cap) {
        size_t nc = m->arena_cap ? 2 * m->arena_cap : 65536;
        while (nc < m->arena_n + n) nc *= 2;
        char *na = realloc(m->arena, nc);
        if (!na) return -1;
        m->arena = na;
        m->arena_cap = nc;
    }
    memcpy(m->arena + m->arena_n, s, n);
    m->slot[i] = (piece){h, m->arena_n, n, 1, 1};
    m->arena_n += n;
    m->n++;
    return 0;
}

/* Pair counts keyed by (left << 32 | right); entries are never removed, only reach 0. */
#define PAIR_EMPTY UINT64_MAX
typedef struct { uint64_t key; int64_t count; } pair_slot;
typedef struct { pair_slot *slot; size_t cap, n; } pair_map;

static int pair_grow(pair_map *m) {
    size_t nc = m->cap ? 2 * m->cap : 4096;
    pair_slot *ns = malloc(nc * sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < nc; i++) ns[i].key = PAIR_EMPTY;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slot[i].key == PAIR_EMPTY) continue;
        size_t j = mix64(m->slot[i].key) & (nc - 1);
        while (ns[j].key != PAIR_EMPTY) j = (j + 1) & (nc - 1);
        ns[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = ns;
    m->cap = nc;
    return 0;
}

static int pair_add(pair_map *m, int32_t a, int32_t b, int64_t d) {
    if (2 * (m->n + 1) > m->cap && pair_grow(m)) return -1;
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = mix64(key) & (m->cap - 1);
    for (; m->slot[i].key != PAIR_EMPTY; i = (i + 1) & (m->cap - 1))
        if (m->slot[i].key == key) { m->slot[i].count += d; return 0; }
    m->slot[i].key = key;
    m->slot[i].count = d;
    m->n++;
    return 0;
}

/* ---- training ---- */

void bpe_model_free(bpe_model *m) {
    if (m->tokens)
        for (int i = 0; i < m->n_vocab; i++) free(m->tokens[i]);
    free(m->tokens);
    free(m->types);
    free(m->merges);
    free(m->merge_out);
    memset(m, 0, sizeof *m);
}

static char *cp_utf8(uint32_t cp, char *o) { /* cp < 0x800 here: bytes map below 0x144 */
    if (cp < 0x80) *o++ = (char)cp;
    else { *o++ = (char)(0xc0 | (cp >> 6)); *o++ = (char)(0x80 | (cp & 0x3f)); }
    return o;
}

static char *concat(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 1);
    if (s) { memcpy(s, a, na); memcpy(s + na, b, nb + 1); }
    return s;
}

ulm_status bpe_learn(const char *const *texts, const size_t *lens, size_t n, int vocab_size,
                     const char *const *specials, int n_specials, bpe_model *out, ulm_error *err) {
    static const char *const defaults[] = {BPE_BOS, BPE_EOS, BPE_PAD, BPE_IN, BPE_OUT};
    memset(out, 0, sizeof *out);
    if (!specials) { specials = defaults; n_specials = 5; }
    if (n_specials < 0 || vocab_size < 256 + n_specials || vocab_size > (1 << 20))
        return ulm_set_error(err, ULM_ERR_ARG, "bpe: vocab size %d must hold the 256 bytes and %d special tokens",
                             vocab_size, n_specials);
    for (int i = 0; i < n_specials; i++) {
        if (!specials[i] || !specials[i][0])
            return ulm_set_error(err, ULM_ERR_ARG, "bpe: special token %d is empty", i);
        for (int j = 0; j < i; j++)
            if (!strcmp(specials[i], specials[j]))
                return ulm_set_error(err, ULM_ERR_ARG, "bpe: special token '%s' given twice", specials[i]);
    }

    ulm_status st = ULM_ERR_NOMEM;
    piece_map pm = {0};
    pair_map pairs = {0};
    int32_t *sym = NULL;         /* all pieces' symbols, piece i at [woff[i], woff[i] + wlen[i]) */
    size_t *woff = NULL, *wlen = NULL;
    uint64_t *wcount = NULL;
    int cap_tok = vocab_size, max_merges = 4 * vocab_size;

    for (size_t t = 0; t < n; t++) {
        const char *s = texts[t];
        size_t len = lens ? lens[t] : strlen(s);
        for (size_t pos = 0; pos < len;) {
            size_t k = bpe_pretok_next(s, len, pos);
            if (piece_add(&pm, s + pos, k)) goto nomem;
            pos += k;
        }
    }

    out->tokens = calloc((size_t)cap_tok, sizeof *out->tokens);
    out->types = calloc((size_t)cap_tok, 1);
    out->merges = malloc((size_t)max_merges * 2 * sizeof *out->merges);
    out->merge_out = malloc((size_t)max_merges * sizeof *out->merge_out);
    sym = malloc((pm.arena_n ? pm.arena_n : 1) * sizeof *sym);
    woff = malloc((pm.n ? pm.n : 1) * sizeof *woff);
    wlen = malloc((pm.n ? pm.n : 1) * sizeof *wlen);
    wcount = malloc((pm.n ? pm.n : 1) * sizeof *wcount);
    if (!out->tokens || !out->types || !out->merges || !out->merge_out || !sym || !woff || !wlen || !wcount) goto nomem;

    for (int b = 0; b < 256; b++) {
        char buf[4], *e = cp_utf8(bpe_byte_to_cp((uint8_t)b), buf);
        if (!(out->tokens[b] = malloc((size_t)(e - buf) + 1))) goto nomem;
        memcpy(out->tokens[b], buf, (size_t)(e - buf));
        out->tokens[b][e - buf] = 0;
        out->types[b] = TOK_NORMAL;
    }
    int n_tok = 256;
    out->n_vocab = n_tok; /* so bpe_model_free frees what exists so far */

    /* pieces in first-seen order would need another pass; slot order is deterministic too
     * (same corpus, same table), and the merge choice never depends on it */
    size_t nw = 0, ns = 0;
    for (size_t i = 0; i < pm.cap; i++) {
        if (!pm.slot[i].used) continue;
        woff[nw] = ns;
        wlen[nw] = pm.slot[i].len;
        wcount[nw] = pm.slot[i].count;
        for (size_t k = 0; k < pm.slot[i].len; k++) sym[ns++] = (unsigned char)pm.arena[pm.slot[i].off + k];
        for (size_t k = 1; k < wlen[nw]; k++)
            if (pair_add(&pairs, sym[woff[nw] + k - 1], sym[woff[nw] + k], (int64_t)wcount[nw])) goto nomem;
        nw++;
    }

    int target = vocab_size - n_specials;
    while (n_tok < target && out->n_merges < max_merges) {
        uint64_t best = PAIR_EMPTY;
        int64_t best_count = 1; /* a pair must occur at least twice */
        for (size_t i = 0; i < pairs.cap; i++) {
            pair_slot *p = &pairs.slot[i];
            if (p->key == PAIR_EMPTY) continue;
            if (p->count > best_count || (p->count == best_count && best != PAIR_EMPTY && p->key < best)) {
                best = p->key;
                best_count = p->count;
            }
        }
        if (best == PAIR_EMPTY) break;
        int32_t a = (int32_t)(best >> 32), b = (int32_t)(best & 0xffffffffu);
        char *text = concat(out->tokens[a], out->tokens[b]);
        if (!text) goto nomem;
        int32_t id = -1;
        for (int i = 0; i < n_tok; i++)
            if (!strcmp(out->tokens[i], text)) { id = i; break; }
        if (id < 0) {
            id = n_tok++;
            out->tokens[id] = text;
            out->types[id] = TOK_NORMAL;
            out->n_vocab = n_tok;
        } else {
            free(text);
        }
        out->merges[2 * out->n_merges] = a;
        out->merges[2 * out->n_merges + 1] = b;
        out->merge_out[out->n_merges++] = id;

        for (size_t w = 0; w < nw; w++) {
            int32_t *s = sym + woff[w];
            size_t len = wlen[w], k;
            for (k = 1; k < len; k++)
                if (s[k - 1] == a && s[k] == b) break;
            if (k >= len) continue;
            int64_t c = (int64_t)wcount[w];
            for (k = 1; k < len; k++)
                if (pair_add(&pairs, s[k - 1], s[k], -c)) goto nomem;
            size_t o = 0;
            for (k = 0; k < len; k++) {
                if (k + 1 < len && s[k] == a && s[k + 1] == b) { s[o++] = id; k++; }
                else s[o++] = s[k];
            }
            wlen[w] = len = o;
            for (k = 1; k < len; k++)
                if (pair_add(&pairs, s[k - 1], s[k], c)) goto nomem;
        }
    }

    out->first_special = n_tok;
    out->bos_id = out->eos_id = out->pad_id = -1;
    for (int i = 0; i < n_specials; i++) {
        int id = n_tok + i;
        if (!(out->tokens[id] = concat(specials[i], ""))) goto nomem;
        out->types[id] = TOK_CONTROL;
        out->n_vocab = id + 1;
        if (!strcmp(specials[i], BPE_BOS)) out->bos_id = id;
        if (!strcmp(specials[i], BPE_EOS)) out->eos_id = id;
        if (!strcmp(specials[i], BPE_PAD)) out->pad_id = id;
    }
    st = ULM_OK;
    goto done;
nomem:
    bpe_model_free(out);
    ulm_set_error(err, ULM_ERR_NOMEM, "bpe: out of memory");
done:
    free(pm.slot);
    free(pm.arena);
    free(pairs.slot);
    free(sym);
    free(woff);
    free(wlen);
    free(wcount);
    return st;
}

ulm_status bpe_write(const bpe_model *m, ulmw *w, ulm_error *err) {
    static const char model[] = "bpe", pre[] = "gpt2", tmpl[] = "none";
    if (ulmw_set_str(w, "tokenizer.model", model, sizeof model - 1) ||
        ulmw_set_str(w, "tokenizer.pre", pre, sizeof pre - 1) ||
        ulmw_set_strarr(w, "tokenizer.tokens", (const char *const *)m->tokens, NULL, (uint64_t)m->n_vocab) ||
        ulmw_set_arr(w, "tokenizer.types", ULMF_BOOL, m->types, (uint64_t)m->n_vocab) ||
        ulmw_set_arr(w, "tokenizer.merges", ULMF_I32, m->merges, 2 * (uint64_t)m->n_merges) ||
        ulmw_set_bool(w, "tokenizer.add_bos", m->bos_id >= 0) ||
        ulmw_set_str(w, "tokenizer.chat_template", tmpl, sizeof tmpl - 1))
        return ulm_set_error(err, ULM_ERR_NOMEM, "bpe: out of memory writing the tokenizer");
    if ((m->bos_id >= 0 && ulmw_set_i32(w, "tokenizer.bos_id", m->bos_id)) ||
        (m->eos_id >= 0 && ulmw_set_i32(w, "tokenizer.eos_id", m->eos_id)) ||
        (m->pad_id >= 0 && ulmw_set_i32(w, "tokenizer.pad_id", m->pad_id)))
        return ulm_set_error(err, ULM_ERR_NOMEM, "bpe: out of memory writing the tokenizer");
    return ULM_OK;
}

ulm_status bpe_train(const char *const *texts, size_t n, int vocab_size, ulmw *w, ulm_error *err) {
    bpe_model m;
    ulm_status st = bpe_learn(texts, NULL, n, vocab_size, NULL, 0, &m, err);
    if (st) return st;
    st = bpe_write(&m, w, err);
    bpe_model_free(&m);
    return st;
}
