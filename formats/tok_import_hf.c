/* Hugging Face tokenizer.json importer (with tokenizer_config.json / config.json beside it
 * when present, for BOS/EOS and the chat template).
 *
 * Byte-level BPE (ByteLevel pre-tokenizer or decoder) is stored as tokenizer.model "bpe" with
 * the merges as id pairs and the pre-tokenizer recognised from its split pattern. A BPE with
 * byte fallback and "▁" for spaces (Gemma 3) is stored as "spm": each piece scores minus the rank
 * of the first merge that produces it, so merging the best-scoring pair picks HF's merges
 * (its merges list every split of every piece in piece order); pieces no merge produces score
 * -inf and are never merge results. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"
#include "tok_import.h"
#include "tokenizer.h"

typedef struct hf_vocab {
    int n;
    const char **text;
    uint32_t *len;
    uint8_t *type;
    float *score;
} hf_vocab;

static void vocab_free(hf_vocab *v) {
    free(v->text), free(v->len), free(v->type), free(v->score);
}

/* Looks for a member "type" == name anywhere under v (pre_tokenizer / decoder trees). */
static const json_value *find_typed(const json_value *v, const char *name) {
    if (json_is_obj(v)) {
        if (json_str_eq(json_get(v, "type"), name)) return v;
        for (size_t i = 0; i < json_len(v); i++) {
            const json_value *r = find_typed(json_obj_val(v, i), name);
            if (r) return r;
        }
    } else if (json_is_arr(v)) {
        for (size_t i = 0; i < json_len(v); i++) {
            const json_value *r = find_typed(json_at(v, i), name);
            if (r) return r;
        }
    }
    return NULL;
}

static const char *split_regex(const json_value *pre) {
    const json_value *split = find_typed(pre, "Split");
    return json_str(json_get(json_get(split, "pattern"), "Regex"), NULL);
}

/* The pre-tokenizer name from the shape of the pre_tokenizer tree, or NULL if unknown. */
static const char *detect_pre(const json_value *pre) {
    const char *re = split_regex(pre);
    const json_value *bl = find_typed(pre, "ByteLevel");
    const json_value *dg = find_typed(pre, "Digits");
    int use_regex = 1;
    json_get_bool(bl, "use_regex", &use_regex);
    if (re) {
        if (strstr(re, "\\p{N}{1,3}") && strstr(re, "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+")) return "llama3";
        if (strstr(re, "\\p{N}|") && strstr(re, "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+")) return "qwen2";
        return NULL;
    }
    int indiv = 0;
    if (dg && !json_get_bool(dg, "individual_digits", &indiv) && indiv && bl && use_regex) return "smollm";
    if (!dg && bl && use_regex) return "gpt2";
    return NULL;
}

/* A token named in tokenizer_config.json: "text" or {"content": "text"}. */
static const char *config_token(const json_value *cfg, const char *key) {
    const json_value *v = json_get(cfg, key);
    if (json_is_obj(v)) v = json_get(v, "content");
    return json_str(v, NULL);
}

static int find_id(const hf_vocab *v, const char *s) {
    if (!s) return -1;
    size_t n = strlen(s);
    for (int i = 0; i < v->n; i++) /* only a handful of lookups: a scan is fine */
        if (v->text[i] && v->len[i] == n && !memcmp(v->text[i], s, n)) return i;
    return -1;
}

/* "gemma3" | "chatml" | "llama3" | "none", from the Jinja text if any, else from the vocabulary. */
static const char *detect_chat(const char *jinja, const hf_vocab *v) {
    if (jinja) {
        if (strstr(jinja, "<start_of_turn>")) return "gemma3";
        if (strstr(jinja, "<|start_header_id|>")) return "llama3";
        if (strstr(jinja, "<|im_start|>")) return "chatml";
    }
    if (find_id(v, "<start_of_turn>") >= 0) return "gemma3";
    if (find_id(v, "<|start_header_id|>") >= 0) return "llama3";
    if (find_id(v, "<|im_start|>") >= 0) return "chatml";
    return "none";
}

static int is_byte_piece(const char *s, size_t n) {
    return n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && strchr("0123456789ABCDEF", s[3]) && s[3] &&
           strchr("0123456789ABCDEF", s[4]) && s[4];
}

/* Splits a merge ("a b" or ["a", "b"]) into its two pieces. */
static int merge_parts(const json_value *m, const char **a, size_t *al, const char **b, size_t *bl) {
    if (json_is_arr(m) && json_len(m) == 2) {
        *a = json_str(json_at(m, 0), al);
        *b = json_str(json_at(m, 1), bl);
        return *a && *b ? 0 : -1;
    }
    size_t n;
    const char *s = json_str(m, &n);
    if (!s) return -1;
    const char *sp = memchr(s, ' ', n);
    if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s))) return -1;
    *a = s, *al = (size_t)(sp - s), *b = sp + 1, *bl = n - *al - 1;
    return 0;
}

static int vocab_id(const json_value *vocab, const char *s, size_t n) {
    int64_t id;
    return json_int(json_getn(vocab, s, n), &id) == 0 && id >= 0 && id < INT32_MAX ? (int)id : -1;
}

static ulm_status import_doc(const json_value *root, const json_value *cfg, const json_value *mcfg, ulmw *w,
                             ulm_error *err) {
    const json_value *model = json_get(root, "model");
    if (!json_str_eq(json_get(model, "type"), "BPE"))
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "tokenizer.json: only BPE models are supported");
    const json_value *vocab = json_get(model, "vocab"), *merges = json_get(model, "merges");
    const json_value *added = json_get(root, "added_tokens");
    if (!json_is_obj(vocab) || json_len(vocab) == 0)
        return ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer.json: model.vocab is not an object");
    if (merges && !json_is_arr(merges))
        return ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer.json: model.merges is not an array");
    const json_value *pre = json_get(root, "pre_tokenizer"), *dec = json_get(root, "decoder");
    int byte_level = find_typed(pre, "ByteLevel") || find_typed(dec, "ByteLevel");
    int byte_fallback = 0;
    json_get_bool(model, "byte_fallback", &byte_fallback);
    const char *pre_name = "default";
    if (byte_level) {
        pre_name = detect_pre(pre);
        if (!pre_name) return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "tokenizer.json: unknown pre-tokenizer");
    } else if (!byte_fallback) {
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "tokenizer.json: BPE without ByteLevel or byte fallback");
    }

    /* ids: the vocabulary, then added tokens (which may add ids or restate existing ones) */
    int64_t max_id = -1, id;
    for (size_t i = 0; i < json_len(vocab); i++) {
        if (json_int(json_obj_val(vocab, i), &id) || id < 0 || id >= (1 << 24))
            return ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer.json: bad id in model.vocab");
        if (id > max_id) max_id = id;
    }
    for (size_t i = 0; i < json_len(added); i++) {
        const json_value *a = json_at(added, i);
        if (json_get_int(a, "id", &id) || id < 0 || id >= (1 << 24) || !json_is_str(json_get(a, "content")))
            return ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer.json: bad entry in added_tokens");
        if (id > max_id) max_id = id;
    }
    hf_vocab v = {(int)max_id + 1, 0, 0, 0, 0};
    v.text = calloc((size_t)v.n, sizeof *v.text);
    v.len = calloc((size_t)v.n, sizeof *v.len);
    v.type = malloc((size_t)v.n);
    v.score = malloc((size_t)v.n * sizeof *v.score);
    int32_t *pairs = NULL;
    ulm_status st = ULM_OK;
    if (!v.text || !v.len || !v.type || !v.score) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
    memset(v.type, TOK_UNUSED, (size_t)v.n);
    for (int i = 0; i < v.n; i++) v.score[i] = -INFINITY;
    for (size_t i = 0; i < json_len(vocab); i++) {
        size_t n;
        const char *k = json_obj_key(vocab, i, &n);
        json_int(json_obj_val(vocab, i), &id);
        v.text[id] = k, v.len[id] = (uint32_t)n;
        v.type[id] = byte_fallback && !byte_level && is_byte_piece(k, n) ? TOK_BYTE : TOK_NORMAL;
    }
    for (size_t i = 0; i < json_len(added); i++) {
        const json_value *a = json_at(added, i);
        size_t n;
        const char *s = json_str(json_get(a, "content"), &n);
        int special = 0;
        json_get_bool(a, "special", &special);
        json_get_int(a, "id", &id);
        v.text[id] = s, v.len[id] = (uint32_t)n;
        v.type[id] = special ? TOK_CONTROL : TOK_USER;
    }
    for (int i = 0; i < v.n; i++)
        if (!v.text[i]) v.text[i] = "", v.len[i] = 0;
    const char *unk = json_str(json_get(model, "unk_token"), NULL);
    int unk_id = unk ? vocab_id(vocab, unk, strlen(unk)) : -1;
    if (unk_id >= 0) v.type[unk_id] = TOK_UNKNOWN;

    size_t n_merges = json_len(merges), n_pairs = 0;
    pairs = malloc((2 * n_merges + 1) * sizeof *pairs);
    if (!pairs) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
    char *cat = NULL;
    size_t cat_cap = 0;
    for (size_t k = 0; k < n_merges; k++) {
        const char *a, *b;
        size_t al, bl;
        if (merge_parts(json_at(merges, k), &a, &al, &b, &bl)) {
            free(cat);
            st = ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer.json: merge %zu is malformed", k);
            goto done;
        }
        int l = vocab_id(vocab, a, al), r = vocab_id(vocab, b, bl);
        if (l < 0 || r < 0) continue; /* names a piece outside the vocabulary: can never apply */
        if (byte_level) {
            pairs[2 * n_pairs] = l, pairs[2 * n_pairs + 1] = r, n_pairs++;
            continue;
        }
        if (al + bl > cat_cap) {
            cat_cap = 2 * (al + bl) + 64;
            char *nc = realloc(cat, cat_cap);
            if (!nc) { free(cat); st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
            cat = nc;
        }
        memcpy(cat, a, al), memcpy(cat + al, b, bl);
        int res = vocab_id(vocab, cat, al + bl);
        if (res >= 0 && isinf(v.score[res])) v.score[res] = -(float)k;
    }
    free(cat);

    /* special ids and flags */
    const char *bos_s = config_token(cfg, "bos_token"), *eos_s = config_token(cfg, "eos_token");
    const char *pad_s = config_token(cfg, "pad_token");
    int bos = find_id(&v, bos_s), eos = find_id(&v, eos_s), pad = find_id(&v, pad_s);
    int64_t x;
    if (bos < 0 && !json_get_int(mcfg, "bos_token_id", &x) && x >= 0 && x < v.n) bos = (int)x;
    if (eos < 0 && !json_get_int(mcfg, "eos_token_id", &x) && x >= 0 && x < v.n) eos = (int)x;
    if (eos < 0 && json_int(json_at(json_get(mcfg, "eos_token_id"), 0), &x) == 0 && x >= 0 && x < v.n) eos = (int)x;
    if (pad < 0 && !json_get_int(mcfg, "pad_token_id", &x) && x >= 0 && x < v.n) pad = (int)x;
    /* BOS is added when the post-processor's template starts with a special token */
    const json_value *post = json_get(root, "post_processor");
    const json_value *tp = find_typed(post, "TemplateProcessing");
    const char *first_special = json_str(json_get(json_get(json_at(json_get(tp, "single"), 0), "SpecialToken"), "id"), NULL);
    int add_bos = first_special != NULL;
    if (first_special && bos < 0) bos = find_id(&v, first_special);
    int b;
    if (!json_get_bool(cfg, "add_bos_token", &b)) add_bos = b;
    else if (!first_special && !strcmp(pre_name, "llama3")) add_bos = 1; /* Llama 3 models are run with <|begin_of_text|>, as llama.cpp does */
    const char *chat = detect_chat(json_str(json_get(cfg, "chat_template"), NULL), &v);
    static const char *const eot_of[][2] = {{"gemma3", "<end_of_turn>"}, {"chatml", "<|im_end|>"}, {"llama3", "<|eot_id|>"}};
    int eot = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(chat, eot_of[i][0])) eot = find_id(&v, eot_of[i][1]);
    int add_prefix = 0; /* a Metaspace / Prepend("▁") stage would ask for the dummy prefix */
    const json_value *norm = json_get(root, "normalizer");
    if (find_typed(norm, "Prepend") || find_typed(pre, "Metaspace")) add_prefix = 1;
    int nfc = find_typed(norm, "NFC") != NULL;
    int ignore_merges = 0;
    json_get_bool(model, "ignore_merges", &ignore_merges);

    const char *kind = byte_level ? "bpe" : "spm";
    if (ulmw_set_str(w, "tokenizer.model", kind, strlen(kind)) ||
        ulmw_set_str(w, "tokenizer.pre", pre_name, strlen(pre_name)) ||
        ulmw_set_strarr(w, "tokenizer.tokens", v.text, v.len, (uint64_t)v.n) ||
        ulmw_set_arr(w, "tokenizer.types", ULMF_BOOL, v.type, (uint64_t)v.n) ||
        (!byte_level && ulmw_set_arr(w, "tokenizer.scores", ULMF_F32, v.score, (uint64_t)v.n)) ||
        (byte_level && ulmw_set_arr(w, "tokenizer.merges", ULMF_I32, pairs, 2 * n_pairs)) ||
        ulmw_set_i32(w, "tokenizer.bos_id", bos) || ulmw_set_i32(w, "tokenizer.eos_id", eos) ||
        ulmw_set_i32(w, "tokenizer.unk_id", unk_id) || ulmw_set_i32(w, "tokenizer.pad_id", pad) ||
        ulmw_set_i32(w, "tokenizer.eot_id", eot) || ulmw_set_bool(w, "tokenizer.add_bos", add_bos) ||
        ulmw_set_bool(w, "tokenizer.add_space_prefix", add_prefix) ||
        ulmw_set_bool(w, "tokenizer.ignore_merges", ignore_merges) ||
        ulmw_set_bool(w, "tokenizer.byte_fallback", byte_fallback) ||
        ulmw_set_str(w, "tokenizer.normalizer", nfc ? "nfc" : "none", nfc ? 3 : 4) ||
        ulmw_set_str(w, "tokenizer.chat_template", chat, strlen(chat)))
        st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
done:
    free(pairs);
    vocab_free(&v);
    return st;
}

ulm_status tok_import_hf_json_mem(const char *json, size_t len, const char *config_json, size_t config_len,
                                  ulmw *w, ulm_error *err) {
    json_doc *d = NULL, *c = NULL;
    ulm_status st = json_parse(json, len, &d, err);
    if (st) return st;
    if (config_json && (st = json_parse(config_json, config_len, &c, err))) {
        json_free(d);
        return st;
    }
    st = import_doc(json_root(d), c ? json_root(c) : NULL, NULL, w, err);
    json_free(d), json_free(c);
    return st;
}

/* path of a sibling file of `path` */
static void sibling(char *out, size_t cap, const char *path, const char *name) {
    const char *slash = strrchr(path, '/');
    int dir = slash ? (int)(slash - path + 1) : 0;
    snprintf(out, cap, "%.*s%s", dir, path, name);
}

ulm_status tok_import_hf_json(const char *path, ulmw *w, ulm_error *err) {
    json_doc *d = NULL, *c = NULL, *m = NULL;
    ulm_status st = json_parse_file(path, &d, err);
    if (st) return st;
    char side[4096];
    ulm_error e2;
    sibling(side, sizeof side, path, "tokenizer_config.json");
    if (json_parse_file(side, &c, &e2) && e2.code != ULM_ERR_IO) {
        json_free(d);
        if (err) *err = e2;
        return e2.code;
    }
    sibling(side, sizeof side, path, "config.json");
    if (json_parse_file(side, &m, &e2) && e2.code != ULM_ERR_IO) {
        json_free(d), json_free(c);
        if (err) *err = e2;
        return e2.code;
    }
    st = import_doc(json_root(d), json_root(c), json_root(m), w, err);
    if (st && err) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        ulm_set_error(err, st, "%s: %s", path, msg);
    }
    json_free(d), json_free(c), json_free(m);
    return st;
}
