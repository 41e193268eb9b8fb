/* Tokenizer: load from a .ulm, encode (SentencePiece BPE by score, byte-level BPE by merge
 * rank), decode pieces.
 *
 * Both encoders keep the text as a doubly linked list of symbols and a binary heap of candidate
 * merges, so a word of n characters costs O(n log n) (a 1 MB line without spaces included),
 * not the O(n^2) of "scan for the best pair, merge, repeat".
 */
#include "tokenizer.h"
#include <stdlib.h>
#include <string.h>
#include "tokenizer_impl.h"
#include "ulm_file.h"
#include "unicode.h"

/* ---- piece -> id hash (open addressing over the vocabulary, used in place) ---- */

static uint32_t hash_bytes(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

int tok_find(const tokenizer *t, const char *s, size_t n) {
    for (uint32_t i = hash_bytes(s, n) & t->ht_mask;; i = (i + 1) & t->ht_mask) {
        int32_t id = t->ht[i];
        if (id < 0) return -1;
        size_t len;
        const char *p = tok_piece(t, id, &len);
        if (len == n && !memcmp(p, s, n)) return id;
    }
}

static int build_piece_hash(tokenizer *t) {
    uint32_t size = 1;
    while (size < 2u * (uint32_t)t->n_vocab) size <<= 1;
    t->ht = malloc(size * sizeof *t->ht);
    if (!t->ht) return -1;
    memset(t->ht, 0xff, size * sizeof *t->ht);
    t->ht_mask = size - 1;
    for (int id = 0; id < t->n_vocab; id++) {
        size_t len;
        const char *p = tok_piece(t, id, &len);
        uint32_t i = hash_bytes(p, len) & t->ht_mask;
        for (; t->ht[i] >= 0; i = (i + 1) & t->ht_mask) {
            size_t l2;
            const char *q = tok_piece(t, t->ht[i], &l2);
            if (l2 == len && !memcmp(p, q, len)) break; /* duplicate text: keep the first id */
        }
        if (t->ht[i] < 0) t->ht[i] = id;
    }
    return 0;
}

/* ---- merge pair hash (bpe): (left id, right id) -> rank and result id ---- */

static uint32_t hash_pair(uint32_t l, uint32_t r) {
    uint64_t k = ((uint64_t)l << 32 | r) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(k >> 32);
}

int tok_find_merge(const tokenizer *t, int l, int r, int *result) {
    if (!t->mt) return -1;
    for (uint32_t i = hash_pair((uint32_t)l, (uint32_t)r) & t->mt_mask;; i = (i + 1) & t->mt_mask) {
        const tok_merge *m = &t->mt[i];
        if (m->rank < 0) return -1;
        if (m->left == l && m->right == r) { *result = m->result; return m->rank; }
    }
}

static ulm_status build_merges(tokenizer *t, const int32_t *pairs, uint64_t n_pairs, ulm_error *err) {
    uint32_t size = 1;
    while (size < 2 * n_pairs + 2) size <<= 1;
    t->mt = malloc(size * sizeof *t->mt);
    if (!t->mt) return ulm_set_error(err, ULM_ERR_NOMEM, "tokenizer: out of memory (merges)");
    for (uint32_t i = 0; i < size; i++) t->mt[i].rank = -1;
    t->mt_mask = size - 1;
    char *buf = NULL;
    size_t cap = 0;
    for (uint64_t k = 0; k < n_pairs; k++) {
        int l = pairs[2 * k], r = pairs[2 * k + 1];
        if (l < 0 || r < 0 || l >= t->n_vocab || r >= t->n_vocab) {
            free(buf);
            return ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer: merge %llu names token out of range",
                                 (unsigned long long)k);
        }
        size_t ll, rl;
        const char *lp = tok_piece(t, l, &ll), *rp = tok_piece(t, r, &rl);
        if (ll + rl > cap) {
            cap = 2 * (ll + rl) + 64;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); return ulm_set_error(err, ULM_ERR_NOMEM, "tokenizer: out of memory"); }
            buf = nb;
        }
        memcpy(buf, lp, ll), memcpy(buf + ll, rp, rl);
        int res = tok_find(t, buf, ll + rl);
        if (res < 0) continue; /* a merge whose result is not in the vocabulary never applies */
        uint32_t i = hash_pair((uint32_t)l, (uint32_t)r) & t->mt_mask;
        for (; t->mt[i].rank >= 0; i = (i + 1) & t->mt_mask)
            if (t->mt[i].left == l && t->mt[i].right == r) break;
        if (t->mt[i].rank >= 0) continue; /* repeated merge: the first rank wins */
        t->mt[i] = (tok_merge){l, r, (int32_t)k, res};
    }
    free(buf);
    return ULM_OK;
}

/* ---- special-token trie: leftmost-longest matching of control / user-defined tokens ---- */

static int trie_node(tokenizer *t) {
    if (t->n_trie == t->cap_trie) {
        int nc = t->cap_trie ? 2 * t->cap_trie : 256;
        tok_trie *n = realloc(t->trie, (size_t)nc * sizeof *n);
        if (!n) return -1;
        t->trie = n, t->cap_trie = nc;
    }
    t->trie[t->n_trie] = (tok_trie){-1, -1, -1, 0, {0}};
    return t->n_trie++;
}

static int trie_add(tokenizer *t, const char *s, size_t n, int id) {
    int node = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        int ch = t->trie[node].child;
        while (ch >= 0 && t->trie[ch].byte != c) ch = t->trie[ch].sibling;
        if (ch < 0) {
            if ((ch = trie_node(t)) < 0) return -1;
            t->trie[ch].byte = c;
            t->trie[ch].sibling = t->trie[node].child;
            t->trie[node].child = ch;
        }
        node = ch;
    }
    if (t->trie[node].id < 0) t->trie[node].id = id;
    return 0;
}

/* Longest special token starting at s (types allowed by parse_special); returns its length. */
static size_t trie_match(const tokenizer *t, const char *s, size_t n, int parse_special, int *id) {
    int node = 0;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        int ch = t->trie[node].child;
        while (ch >= 0 && t->trie[ch].byte != c) ch = t->trie[ch].sibling;
        if (ch < 0) break;
        node = ch;
        int tid = t->trie[node].id;
        if (tid >= 0 && (parse_special || t->types[tid] == TOK_USER)) best = i + 1, *id = tid;
    }
    return best;
}

/* ---- load ---- */

static int get_i32_or(const ulmf *f, const char *key, int def) {
    int32_t v;
    return ulmf_get_i32(f, key, &v) == 0 ? v : def;
}

ulm_status tok_load(const ulmf *f, tokenizer **out, ulm_error *err) {
    *out = NULL;
    char model[16] = "", pre[16] = "default";
    if (ulmf_get_cstr(f, "tokenizer.model", model, sizeof model))
        return ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer: no tokenizer.model key");
    ulmf_get_cstr(f, "tokenizer.pre", pre, sizeof pre);
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return ulm_set_error(err, ULM_ERR_NOMEM, "tokenizer: out of memory");
    ulm_status st = ULM_OK;
    if (!strcmp(model, "spm")) t->kind = TOK_SPM;
    else if (!strcmp(model, "bpe")) t->kind = TOK_BPE;
    else { st = ulm_set_error(err, ULM_ERR_UNSUPPORTED, "tokenizer: unknown model '%s'", model); goto fail; }
    t->pre = tok_pre_from_name(pre);
    if (t->pre < 0) { st = ulm_set_error(err, ULM_ERR_UNSUPPORTED, "tokenizer: unknown pre-tokenizer '%s'", pre); goto fail; }

    uint64_t n;
    if (ulmf_get_strarr(f, "tokenizer.tokens", &t->offs, &t->blob, &n) || n == 0 || n > (1u << 24)) {
        st = ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer: missing or empty tokenizer.tokens");
        goto fail;
    }
    t->n_vocab = (int)n;
    const void *arr;
    uint64_t cnt;
    if (!ulmf_get_arr(f, "tokenizer.scores", ULMF_F32, &arr, &cnt)) {
        if (cnt != n) { st = ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer: %llu scores for %llu tokens", (unsigned long long)cnt, (unsigned long long)n); goto fail; }
        t->scores = arr;
    } else if (t->kind == TOK_SPM) {
        st = ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer: spm needs tokenizer.scores");
        goto fail;
    }
    t->types = malloc(n);
    if (!t->types) { st = ulm_set_error(err, ULM_ERR_NOMEM, "tokenizer: out of memory"); goto fail; }
    if (!ulmf_get_arr(f, "tokenizer.types", ULMF_BOOL, &arr, &cnt) && cnt == n) {
        memcpy(t->types, arr, n);
    } else if (!ulmf_get_arr(f, "tokenizer.types", ULMF_I32, &arr, &cnt) && cnt == n) {
        for (uint64_t i = 0; i < n; i++) t->types[i] = (uint8_t)((const int32_t *)arr)[i];
    } else if (ulmf_find(f, "tokenizer.types")) {
        st = ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer: tokenizer.types has the wrong type or length");
        goto fail;
    } else {
        memset(t->types, TOK_NORMAL, n);
    }
    for (uint64_t i = 0; i < n; i++)
        if (t->types[i] < TOK_NORMAL || t->types[i] > TOK_BYTE) t->types[i] = TOK_NORMAL;

    t->bos = get_i32_or(f, "tokenizer.bos_id", -1);
    t->eos = get_i32_or(f, "tokenizer.eos_id", -1);
    t->unk = get_i32_or(f, "tokenizer.unk_id", -1);
    t->pad = get_i32_or(f, "tokenizer.pad_id", -1);
    t->eot = get_i32_or(f, "tokenizer.eot_id", -1);
    int *ids[] = {&t->bos, &t->eos, &t->unk, &t->pad, &t->eot};
    for (int i = 0; i < 5; i++)
        if (*ids[i] >= t->n_vocab || *ids[i] < -1) *ids[i] = -1;
    int b;
    t->add_bos = ulmf_get_bool(f, "tokenizer.add_bos", &b) == 0 ? b : t->kind == TOK_SPM;
    t->add_space_prefix = ulmf_get_bool(f, "tokenizer.add_space_prefix", &b) == 0 ? b : 0;
    t->ignore_merges = ulmf_get_bool(f, "tokenizer.ignore_merges", &b) == 0 ? b : 0;
    t->byte_fallback = ulmf_get_bool(f, "tokenizer.byte_fallback", &b) == 0 ? b : 1;
    t->remove_extra_spaces = ulmf_get_bool(f, "tokenizer.remove_extra_spaces", &b) == 0 ? b : 0;
    char norm[16] = "none";
    ulmf_get_cstr(f, "tokenizer.normalizer", norm, sizeof norm);
    t->nfc = !strcmp(norm, "nfc");
    if (ulmf_get_cstr(f, "tokenizer.chat_template", t->chat, sizeof t->chat)) strcpy(t->chat, "none");

    if (build_piece_hash(t)) { st = ulm_set_error(err, ULM_ERR_NOMEM, "tokenizer: out of memory"); goto fail; }

    /* byte -> token: spm "<0xXX>" pieces; bpe the one-character GPT-2 mapped piece */
    for (int c = 0; c < 256; c++) {
        char buf[8];
        size_t len;
        if (t->kind == TOK_SPM) {
            static const char hex[] = "0123456789ABCDEF";
            memcpy(buf, "<0x", 3), buf[3] = hex[c >> 4], buf[4] = hex[c & 15], buf[5] = '>';
            len = 6;
        } else {
            len = tok_byte_to_utf8(c, buf);
        }
        t->byte_tok[c] = tok_find(t, buf, len);
    }

    /* spm: where no piece glues a character to the U+2581 after it, no merge crosses the
     * boundary before that U+2581, so the encoder may merge word by word (small heaps) */
    if (t->kind == TOK_SPM)
        for (int id = 0; id < t->n_vocab; id++) {
            size_t len;
            const uint8_t *p = (const uint8_t *)tok_piece(t, id, &len);
            for (size_t k = 1; k + 3 <= len; k++)
                if (p[k] == 0xE2 && p[k + 1] == 0x96 && p[k + 2] == 0x81) t->spm_glue[p[k - 1]] = 1;
        }

    /* End of generation: eos, eot, and the control tokens chat templates end turns with. */
    if (t->eos >= 0) t->eog[t->n_eog++] = t->eos;
    if (t->eot >= 0 && t->eot != t->eos) t->eog[t->n_eog++] = t->eot;
    static const char *const eog_text[] = {"<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|eom_id|>"};
    for (size_t i = 0; i < sizeof eog_text / sizeof *eog_text && t->n_eog < TOK_MAX_EOG; i++) {
        int id = tok_find(t, eog_text[i], strlen(eog_text[i]));
        int dup = 0;
        for (int j = 0; j < t->n_eog; j++) dup |= t->eog[j] == id;
        if (id >= 0 && !dup) t->eog[t->n_eog++] = id;
    }

    /* Special tokens matched in the input text before the model sees it. */
    if (trie_node(t) < 0) { st = ulm_set_error(err, ULM_ERR_NOMEM, "tokenizer: out of memory"); goto fail; }
    for (int id = 0; id < t->n_vocab; id++) {
        int ty = t->types[id];
        size_t len;
        const char *p = tok_piece(t, id, &len);
        if (len == 0) continue;
        if (ty == TOK_USER || ty == TOK_CONTROL || ty == TOK_UNKNOWN) { /* "<unk>" too, as HF and llama.cpp match it */
            if (trie_add(t, p, len, id)) { st = ulm_set_error(err, ULM_ERR_NOMEM, "tokenizer: out of memory"); goto fail; }
            t->trie_first[(uint8_t)p[0]] = 1;
        }
    }

    if (t->kind == TOK_BPE) {
        if (!ulmf_get_arr(f, "tokenizer.merges", ULMF_I32, &arr, &cnt)) {
            if (cnt % 2) { st = ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer: odd tokenizer.merges length"); goto fail; }
            if ((st = build_merges(t, arr, cnt / 2, err))) goto fail;
        }
    }

    /* Decoded text of every token, built once so decoding is a lookup. */
    if ((st = tok_build_decoded(t, err))) goto fail;
    *out = t;
    return ULM_OK;
fail:
    tok_free(t);
    return st;
}

void tok_free(tokenizer *t) {
    if (!t) return;
    free(t->types), free(t->ht), free(t->mt), free(t->trie), free(t->dec), free(t->dec_offs);
    free(t);
}

int tok_n_vocab(const tokenizer *t) { return t->n_vocab; }
int tok_bos(const tokenizer *t) { return t->bos; }
int tok_eos(const tokenizer *t) { return t->eos; }
int tok_add_bos(const tokenizer *t) { return t->add_bos; }
tok_kind tok_get_kind(const tokenizer *t) { return t->kind; }
int tok_add_space_prefix(const tokenizer *t) { return t->add_space_prefix; }
const char *tok_chat_template(const tokenizer *t) { return t->chat; }
int tok_type(const tokenizer *t, int id) { return id >= 0 && id < t->n_vocab ? t->types[id] : 0; }

int tok_is_eog(const tokenizer *t, int id) {
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return 1;
    return 0;
}

const char *tok_piece(const tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) { *len = 0; return ""; }
    *len = t->offs[id + 1] - t->offs[id];
    return t->blob + t->offs[id];
}

const char *tok_decode_piece(const tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) { *len = 0; return ""; }
    *len = t->dec_offs[id + 1] - t->dec_offs[id];
    return t->dec + t->dec_offs[id];
}

/* ---- encode: split at special tokens, then run the model's encoder on each text span ---- */

int tok_out_push(tok_out *o, int id) {
    if (o->n < o->cap) o->out[o->n] = id;
    if (o->n == INT32_MAX) return -1;
    o->n++;
    return 0;
}

ulm_status tok_encode(const tokenizer *t, const char *text, size_t len, int flags, int32_t *out, int cap,
                      int *n_out, ulm_error *err) {
    *n_out = 0;
    if (!text && len) return ulm_set_error(err, ULM_ERR_ARG, "tokenize: NULL text");
    if (cap < 0 || (cap > 0 && !out)) return ulm_set_error(err, ULM_ERR_ARG, "tokenize: bad output buffer");
    size_t bad = tok_utf8_validate(text, len);
    if (bad != len) return ulm_set_error(err, ULM_ERR_UTF8, "tokenize: invalid UTF-8 at byte %zu", bad);
    tok_out o = {out, cap, 0};
    tok_work w = {0};
    ulm_status st = ULM_OK;
    if ((flags & ULM_TOK_ADD_BOS) && t->add_bos && t->bos >= 0) tok_out_push(&o, t->bos);
    int parse_special = (flags & ULM_TOK_PARSE_SPECIAL) != 0;
    size_t start = 0, i = 0;
    int after_special = 1; /* llama.cpp (and SentencePiece per segment) prefix every text span that starts the text or follows a special token */
    while (i <= len) {
        int id = -1;
        size_t m = 0;
        if (i < len && t->n_trie > 1 && t->trie_first[(uint8_t)text[i]])
            m = trie_match(t, text + i, len - i, parse_special, &id);
        if (m == 0 && i < len) { i++; continue; }
        if (i > start) {
            /* the normalizer runs on each span between special tokens, as HF runs it after
             * splitting off added tokens that are not normalized */
            const char *span = text + start;
            size_t span_len = i - start;
            if (t->nfc && unicode_nfc_prefix(span, span_len) != span_len) {
                if (unicode_nfc(span, span_len, &w.nfc, &w.cap_nfc, &span_len)) { st = ULM_ERR_NOMEM; break; }
                span = w.nfc;
            }
            st = t->kind == TOK_SPM ? tok_encode_spm(t, &w, span, span_len, after_special, &o)
                                    : tok_encode_bpe(t, &w, span, span_len, &o);
            if (st) break;
            after_special = 0;
        }
        if (m == 0) break; /* i == len */
        tok_out_push(&o, id);
        after_special = 1;
        i += m;
        start = i;
    }
    tok_work_free(&w);
    if (st) return ulm_set_error(err, st, st == ULM_ERR_NOMEM ? "tokenize: out of memory" : "tokenize: unsupported tokenizer");
    if (o.n < 0) return ulm_set_error(err, ULM_ERR_ARG, "tokenize: too many tokens");
    *n_out = o.n;
    return ULM_OK;
}
