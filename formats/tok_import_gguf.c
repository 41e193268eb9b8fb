/* GGUF tokenizer.ggml.* importer: the vocabulary llama.cpp's converter wrote, turned into our
 * tokenizer.* keys (engine/tokenizer.h).
 *
 *   tokenizer.ggml.model        "llama" (SentencePiece) -> spm, "gpt2" (byte-level BPE) -> bpe
 *   tokenizer.ggml.pre          bpe pre-tokenizer: gpt-2, llama-bpe/llama3/llama-v3, smaug-bpe, qwen2, smollm
 *   tokenizer.ggml.tokens       token texts (same conventions as ours: U+2581 / GPT-2 byte map)
 *   tokenizer.ggml.scores       f32 (or i32) per token (spm)
 *   tokenizer.ggml.token_type   i32 per token, the same numbers as our TOK_* types
 *   tokenizer.ggml.merges       "left right" strings in rank order (bpe) -> id pairs
 *   tokenizer.ggml.{bos,eos,unknown,padding,eot}_token_id, add_bos_token, add_space_prefix,
 *   remove_extra_whitespaces, tokenizer.chat_template (Jinja text -> our built-in template name)
 *
 * Defaults for absent keys are llama.cpp's (it is what reads these files): spm adds BOS, adds the
 * dummy prefix, and has unk 0 / bos 1 / eos 2; bpe adds BOS only for the Llama 3 pre-tokenizer,
 * which also ignores merges for words that are one token. llama.cpp's own "gpt2" fallback BOS
 * id (11) is not taken over: a file that names no BOS has none here.
 *
 * The qwen2 pre-tokenizer is recorded with the NFC normalizer of Qwen's tokenizer.json, so a
 * GGUF gives the ids Hugging Face gives (llama.cpp does not normalize).
 *
 * Known difference from Hugging Face, inherited from the converter: it writes Gemma 3's
 * user-defined whitespace runs ("▁▁", ...) with plain spaces and score -1000, so they are
 * matched in the raw text like llama.cpp does, and text holding a literal U+2581 next to a
 * space tokenizes as llama.cpp does, not as HF does. (Writing U+2581 back would make every run
 * of spaces differ instead: the merge ranks of those pieces are lost in the GGUF.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gguf.h"
#include "tok_import.h"
#include "tokenizer.h"

/* ---- piece -> id hash over the GGUF's strings (for the merges and a few names) ---- */

typedef struct piece_index {
    const char **s;
    const uint32_t *len;
    int32_t *slot;
    uint32_t mask;
} piece_index;

static uint32_t fnv1a(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int index_build(piece_index *x, const char **s, const uint32_t *len, int n) {
    uint32_t size = 1;
    while (size < 2u * (uint32_t)n) size <<= 1;
    x->s = s, x->len = len, x->mask = size - 1;
    x->slot = malloc(size * sizeof *x->slot);
    if (!x->slot) return -1;
    memset(x->slot, 0xff, size * sizeof *x->slot);
    for (int id = 0; id < n; id++) {
        uint32_t i = fnv1a(s[id], len[id]) & x->mask;
        for (; x->slot[i] >= 0; i = (i + 1) & x->mask) {
            int o = x->slot[i];
            if (len[o] == len[id] && !memcmp(s[o], s[id], len[id])) break; /* duplicate: first id wins */
        }
        if (x->slot[i] < 0) x->slot[i] = id;
    }
    return 0;
}

static int index_find(const piece_index *x, const char *s, size_t n) {
    for (uint32_t i = fnv1a(s, n) & x->mask;; i = (i + 1) & x->mask) {
        int id = x->slot[i];
        if (id < 0) return -1;
        if (x->len[id] == n && !memcmp(x->s[id], s, n)) return id;
    }
}

/* ---- small helpers ---- */

static int contains(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(s + i, needle, k)) return 1;
    return 0;
}

/* An id key: -1 when absent, out of range, or the converter's "none" (0xFFFFFFFF). */
static int id_key(const gguf *g, const char *key, int n_vocab, int def) {
    if (!gguf_find(g, key)) return def;
    int32_t v;
    return gguf_get_i32(g, key, &v) == 0 && v >= 0 && v < n_vocab ? v : -1;
}

static int bool_key(const gguf *g, const char *key, int def) {
    int b;
    return gguf_get_bool(g, key, &b) == 0 ? b : def;
}

typedef struct pre_map { const char *gguf_name, *ours; int ignore_merges, add_bos; } pre_map;
static const pre_map pre_names[] = {
    {"gpt-2", "gpt2", 0, 0},       {"gpt2", "gpt2", 0, 0},        {"llama-bpe", "llama3", 1, 1},
    {"llama3", "llama3", 1, 1},    {"llama-v3", "llama3", 1, 1},  {"smaug-bpe", "llama3", 0, 0},
    {"qwen2", "qwen2", 0, 0},      {"smollm", "smollm", 0, 0},
};

ulm_status tok_import_gguf(const gguf *g, ulmw *w, ulm_error *err) {
    char model[32] = "", pre[64] = "";
    if (gguf_get_cstr(g, "tokenizer.ggml.model", model, sizeof model))
        return ulm_set_error(err, ULM_ERR_FORMAT, "gguf: no tokenizer.ggml.model");
    int spm = !strcmp(model, "llama"), bpe = !strcmp(model, "gpt2");
    if (!spm && !bpe)
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "gguf: tokenizer model '%s' (want llama or gpt2)", model);
    const pre_map *pm = NULL;
    if (bpe) {
        if (gguf_get_cstr(g, "tokenizer.ggml.pre", pre, sizeof pre))
            return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "gguf: gpt2 tokenizer without tokenizer.ggml.pre");
        for (size_t i = 0; i < sizeof pre_names / sizeof *pre_names && !pm; i++)
            if (!strcmp(pre, pre_names[i].gguf_name)) pm = &pre_names[i];
        if (!pm) return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "gguf: pre-tokenizer '%s' is not supported", pre);
    }

    const gguf_kv *tokens = gguf_find_arr(g, "tokenizer.ggml.tokens", GGUF_STR);
    if (!tokens || tokens->count == 0 || tokens->count > (1u << 24))
        return ulm_set_error(err, ULM_ERR_FORMAT, "gguf: missing or empty tokenizer.ggml.tokens");
    int n = (int)tokens->count;
    const gguf_kv *scores_kv = gguf_find(g, "tokenizer.ggml.scores");
    const gguf_kv *types_kv = gguf_find(g, "tokenizer.ggml.token_type");
    if (scores_kv && (scores_kv->type != GGUF_ARR || (scores_kv->arr_type != GGUF_F32 && scores_kv->arr_type != GGUF_I32) ||
                      scores_kv->count < (uint64_t)n))
        return ulm_set_error(err, ULM_ERR_FORMAT, "gguf: tokenizer.ggml.scores has the wrong type or length");
    if (types_kv && (types_kv->type != GGUF_ARR || types_kv->arr_type != GGUF_I32 || types_kv->count < (uint64_t)n))
        return ulm_set_error(err, ULM_ERR_FORMAT, "gguf: tokenizer.ggml.token_type has the wrong type or length");
    const gguf_kv *merges = bpe ? gguf_find(g, "tokenizer.ggml.merges") : NULL;
    if (bpe && (!merges || merges->type != GGUF_ARR || merges->arr_type != GGUF_STR))
        return ulm_set_error(err, ULM_ERR_FORMAT, "gguf: gpt2 tokenizer without tokenizer.ggml.merges strings");

    const char **text = malloc((size_t)n * sizeof *text);
    uint32_t *len = malloc((size_t)n * sizeof *len);
    float *score = malloc((size_t)n * sizeof *score);
    uint8_t *type = malloc((size_t)n);
    int32_t *pairs = NULL;
    piece_index idx = {0};
    ulm_status st = ULM_OK;
    if (!text || !len || !score || !type) { st = ulm_set_error(err, ULM_ERR_NOMEM, "gguf: out of memory"); goto done; }
    int has_byte = 0;
    for (int i = 0; i < n; i++) {
        const char *s;
        uint64_t l;
        double d;
        int64_t ty;
        gguf_arr_str(tokens, (uint64_t)i, &s, &l);
        if (l > UINT32_MAX) { st = ulm_set_error(err, ULM_ERR_FORMAT, "gguf: token %d is too long", i); goto done; }
        text[i] = s, len[i] = (uint32_t)l;
        score[i] = scores_kv && gguf_arr_num(scores_kv, (uint64_t)i, &d) == 0 && isfinite(d) ? (float)d : 0.0f;
        type[i] = TOK_NORMAL;
        if (types_kv && gguf_arr_i64(types_kv, (uint64_t)i, &ty) == 0 && ty >= TOK_NORMAL && ty <= TOK_BYTE)
            type[i] = (uint8_t)ty;
        has_byte |= type[i] == TOK_BYTE;
    }
    /* merges: "left right", split at the first space after the first byte (a piece may be a
     * space itself only in the left position, as llama.cpp reads them) */
    uint64_t n_pairs = 0;
    if (bpe) {
        if (merges->count > (1u << 26)) { st = ulm_set_error(err, ULM_ERR_FORMAT, "gguf: too many merges"); goto done; }
        pairs = malloc((2 * merges->count + 1) * sizeof *pairs);
        if (!pairs || index_build(&idx, text, len, n)) { st = ulm_set_error(err, ULM_ERR_NOMEM, "gguf: out of memory"); goto done; }
        for (uint64_t k = 0; k < merges->count; k++) {
            const char *s;
            uint64_t l;
            gguf_arr_str(merges, k, &s, &l);
            const char *sp = l > 1 ? memchr(s + 1, ' ', l - 1) : NULL;
            if (!sp) {
                st = ulm_set_error(err, ULM_ERR_FORMAT, "gguf: merge %llu has no space", (unsigned long long)k);
                goto done;
            }
            size_t al = (size_t)(sp - s);
            int a = index_find(&idx, s, al), b = index_find(&idx, sp + 1, l - al - 1);
            if (a < 0 || b < 0) continue; /* names a piece outside the vocabulary: can never apply */
            pairs[2 * n_pairs] = a, pairs[2 * n_pairs + 1] = b, n_pairs++;
        }
    }

    /* special ids, flags */
    int bos = id_key(g, "tokenizer.ggml.bos_token_id", n, spm && n > 1 ? 1 : -1);
    int eos = id_key(g, "tokenizer.ggml.eos_token_id", n, spm && n > 2 ? 2 : -1);
    int unk = id_key(g, "tokenizer.ggml.unknown_token_id", n, spm ? 0 : -1);
    int pad = id_key(g, "tokenizer.ggml.padding_token_id", n, -1);
    int eot = id_key(g, "tokenizer.ggml.eot_token_id", n, -1);
    int add_bos = bool_key(g, "tokenizer.ggml.add_bos_token", spm ? 1 : pm->add_bos);
    int add_prefix = bool_key(g, "tokenizer.ggml.add_space_prefix", spm);
    int remove_extra = bool_key(g, "tokenizer.ggml.remove_extra_whitespaces", 0);

    /* chat template: from the Jinja text if any, else from the vocabulary */
    const char *jinja;
    uint64_t jl = 0;
    if (gguf_get_str(g, "tokenizer.chat_template", &jinja, &jl)) jinja = NULL, jl = 0;
    static const char *const chats[][3] = {
        {"gemma3", "<start_of_turn>", "<end_of_turn>"},
        {"llama3", "<|start_header_id|>", "<|eot_id|>"},
        {"chatml", "<|im_start|>", "<|im_end|>"},
    };
    int chat = -1;
    for (int i = 0; i < 3 && chat < 0 && jinja; i++)
        if (contains(jinja, (size_t)jl, chats[i][1])) chat = i;
    if (chat < 0 && !idx.slot && index_build(&idx, text, len, n)) {
        st = ulm_set_error(err, ULM_ERR_NOMEM, "gguf: out of memory");
        goto done;
    }
    for (int i = 0; i < 3 && chat < 0; i++)
        if (index_find(&idx, chats[i][1], strlen(chats[i][1])) >= 0) chat = i;
    if (chat >= 0 && eot < 0) {
        if (!idx.slot && index_build(&idx, text, len, n)) { st = ulm_set_error(err, ULM_ERR_NOMEM, "gguf: out of memory"); goto done; }
        eot = index_find(&idx, chats[chat][2], strlen(chats[chat][2]));
    }
    const char *chat_name = chat >= 0 ? chats[chat][0] : "none";
    const char *kind = spm ? "spm" : "bpe", *pre_name = spm ? "default" : pm->ours;
    int nfc = bpe && !strcmp(pre_name, "qwen2");
    if (ulmw_set_str(w, "tokenizer.model", kind, strlen(kind)) ||
        ulmw_set_str(w, "tokenizer.pre", pre_name, strlen(pre_name)) ||
        ulmw_set_strarr(w, "tokenizer.tokens", text, len, (uint64_t)n) ||
        ulmw_set_arr(w, "tokenizer.types", ULMF_BOOL, type, (uint64_t)n) ||
        (spm && ulmw_set_arr(w, "tokenizer.scores", ULMF_F32, score, (uint64_t)n)) ||
        (bpe && ulmw_set_arr(w, "tokenizer.merges", ULMF_I32, pairs, 2 * n_pairs)) ||
        ulmw_set_i32(w, "tokenizer.bos_id", bos) || ulmw_set_i32(w, "tokenizer.eos_id", eos) ||
        ulmw_set_i32(w, "tokenizer.unk_id", unk) || ulmw_set_i32(w, "tokenizer.pad_id", pad) ||
        ulmw_set_i32(w, "tokenizer.eot_id", eot) || ulmw_set_bool(w, "tokenizer.add_bos", add_bos) ||
        ulmw_set_bool(w, "tokenizer.add_space_prefix", add_prefix) ||
        ulmw_set_bool(w, "tokenizer.remove_extra_spaces", remove_extra) ||
        ulmw_set_bool(w, "tokenizer.ignore_merges", bpe && pm->ignore_merges) ||
        ulmw_set_bool(w, "tokenizer.byte_fallback", spm && has_byte) ||
        ulmw_set_str(w, "tokenizer.normalizer", nfc ? "nfc" : "none", nfc ? 3 : 4) ||
        ulmw_set_str(w, "tokenizer.chat_template", chat_name, strlen(chat_name)))
        st = ulm_set_error(err, ULM_ERR_NOMEM, "gguf: out of memory");
done:
    free(text), free(len), free(score), free(type), free(pairs), free(idx.slot);
    return st;
}

ulm_status tok_import_gguf_path(const char *path, ulmw *w, ulm_error *err) {
    gguf *g;
    ulm_status st = gguf_open(path, &g, err);
    if (st) return st;
    st = tok_import_gguf(g, w, err);
    if (st && err) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err->msg);
        ulm_set_error(err, st, "%s: %s", path, m);
    }
    gguf_close(g);
    return st;
}
