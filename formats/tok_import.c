/* Tokenizer importers shared code + the llama2.c tokenizer.bin reader. */
#include "mapped_file.h"
#include "tok_import.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "spm_model.h"
#include "tokenizer.h"

/* Reads a whole file into a malloc'd buffer (one spare NUL byte after it). */
ulm_status tok_read_file(const char *path, char **buf, size_t *size, ulm_error *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return ulm_set_error(err, ULM_ERR_IO, "%s: %s", path, strerror(errno));
    char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t nc = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(b, nc + 1);
            if (!nb) { free(b); fclose(fp); return ulm_set_error(err, ULM_ERR_NOMEM, "%s: out of memory", path); }
            b = nb, cap = nc;
        }
        size_t r = fread(b + n, 1, cap - n, fp);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) { free(b); return ulm_set_error(err, ULM_ERR_IO, "%s: read error", path); }
    b[n] = 0;
    *buf = b, *size = n;
    return ULM_OK;
}

static uint32_t rd_u32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* Is s the byte-fallback piece "<0xXX>"? */
static int is_byte_piece(const char *s, size_t n) {
    return n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' &&
           strchr("0123456789ABCDEF", s[3]) && strchr("0123456789ABCDEF", s[4]) && s[3] && s[4];
}

ulm_status tok_import_llama2c_mem(const void *buf, size_t size, ulmw *w, ulm_error *err) {
    const unsigned char *p = buf, *end = p + size;
    if (size < 4) return ulm_set_error(err, ULM_ERR_FORMAT, "llama2.c tokenizer: file too short");
    uint32_t max_len = rd_u32(p);
    p += 4;
    if (max_len == 0 || max_len > 65536)
        return ulm_set_error(err, ULM_ERR_FORMAT, "llama2.c tokenizer: bad max_token_length %u", max_len);
    /* First pass: count tokens and the text bytes they need (spaces become 3-byte U+2581). */
    size_t n = 0, text = 0;
    for (const unsigned char *q = p; q < end; n++) {
        if (end - q < 8) return ulm_set_error(err, ULM_ERR_FORMAT, "llama2.c tokenizer: truncated at token %zu", n);
        uint32_t len = rd_u32(q + 4);
        if (len > max_len || len > (size_t)(end - q - 8))
            return ulm_set_error(err, ULM_ERR_FORMAT, "llama2.c tokenizer: token %zu has bad length %u", n, len);
        text += 3 * (size_t)len;
        q += 8 + len;
    }
    if (n < 3 || n > (1u << 24)) return ulm_set_error(err, ULM_ERR_FORMAT, "llama2.c tokenizer: %zu tokens", n);
    char **strs = malloc(n * sizeof *strs);
    uint32_t *lens = malloc(n * sizeof *lens);
    float *scores = malloc(n * sizeof *scores);
    uint8_t *types = malloc(n);
    char *blob = malloc(text + 1);
    ulm_status st = ULM_OK;
    if (!strs || !lens || !scores || !types || !blob) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
    char *o = blob;
    for (size_t i = 0; i < n; i++) {
        memcpy(&scores[i], p, 4);
        uint32_t len = rd_u32(p + 4);
        const char *s = (const char *)p + 8;
        p += 8 + len;
        /* llama2.c's exporter wrote BOS/EOS as "\n<s>\n" / "\n</s>\n" and ▁ as ' '. */
        if ((i == 1 || i == 2) && len >= 2 && s[0] == '\n' && s[len - 1] == '\n') s++, len -= 2;
        strs[i] = o;
        for (uint32_t j = 0; j < len; j++) {
            if (s[j] == ' ') memcpy(o, "\xe2\x96\x81", 3), o += 3;
            else *o++ = s[j];
        }
        lens[i] = (uint32_t)(o - strs[i]);
        types[i] = TOK_NORMAL;
        if (i == 0) types[i] = TOK_UNKNOWN;
        else if (i == 1 || i == 2) types[i] = TOK_CONTROL;
        else if (is_byte_piece(strs[i], lens[i])) types[i] = TOK_BYTE;
    }
    if (ulmw_set_str(w, "tokenizer.model", "spm", 3) || ulmw_set_str(w, "tokenizer.pre", "default", 7) ||
        ulmw_set_strarr(w, "tokenizer.tokens", (const char *const *)strs, lens, n) ||
        ulmw_set_arr(w, "tokenizer.scores", ULMF_F32, scores, n) ||
        ulmw_set_arr(w, "tokenizer.types", ULMF_BOOL, types, n) || ulmw_set_i32(w, "tokenizer.unk_id", 0) ||
        ulmw_set_i32(w, "tokenizer.bos_id", 1) || ulmw_set_i32(w, "tokenizer.eos_id", 2) ||
        ulmw_set_bool(w, "tokenizer.add_bos", 1) || ulmw_set_bool(w, "tokenizer.add_space_prefix", 1) ||
        ulmw_set_bool(w, "tokenizer.byte_fallback", 1) || ulmw_set_str(w, "tokenizer.chat_template", "none", 4))
        st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
done:
    free(strs), free(lens), free(scores), free(types), free(blob);
    return st;
}

/* Reads path whole and runs an in-memory importer on it; errors name the path. */
static ulm_status import_file(const char *path, ulm_status (*import_mem)(const void *, size_t, ulmw *, ulm_error *),
                              ulmw *w, ulm_error *err) {
    char *buf;
    size_t n;
    ulm_status st = tok_read_file(path, &buf, &n, err);
    if (st) return st;
    st = import_mem(buf, n, w, err);
    if (st) error_prefix_path(err, path);
    free(buf);
    return st;
}

ulm_status tok_import_llama2c(const char *path, ulmw *w, ulm_error *err) {
    return import_file(path, tok_import_llama2c_mem, w, err);
}

/* ---- SentencePiece tokenizer.model ---- */

ulm_status tok_import_spm_model_mem(const void *buf, size_t size, ulmw *w, ulm_error *err) {
    spm_model m;
    ulm_status st = spm_model_parse(buf, size, &m, err);
    if (st) return st;
    if (m.model_type != SPM_BPE) {
        spm_model_free(&m);
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "tokenizer.model: model type %d (only BPE is supported)", m.model_type);
    }
    int n = m.n_pieces;
    const char **strs = malloc((size_t)n * sizeof *strs);
    uint32_t *lens = malloc((size_t)n * sizeof *lens);
    float *scores = malloc((size_t)n * sizeof *scores);
    uint8_t *types = malloc((size_t)n);
    if (!strs || !lens || !scores || !types) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
    for (int i = 0; i < n; i++) {
        strs[i] = m.pieces[i].text, lens[i] = m.pieces[i].len;
        scores[i] = m.pieces[i].score, types[i] = (uint8_t)m.pieces[i].type;
    }
    if (ulmw_set_str(w, "tokenizer.model", "spm", 3) || ulmw_set_str(w, "tokenizer.pre", "default", 7) ||
        ulmw_set_strarr(w, "tokenizer.tokens", strs, lens, (uint64_t)n) ||
        ulmw_set_arr(w, "tokenizer.scores", ULMF_F32, scores, (uint64_t)n) ||
        ulmw_set_arr(w, "tokenizer.types", ULMF_BOOL, types, (uint64_t)n) ||
        ulmw_set_i32(w, "tokenizer.unk_id", m.unk_id) || ulmw_set_i32(w, "tokenizer.bos_id", m.bos_id) ||
        ulmw_set_i32(w, "tokenizer.eos_id", m.eos_id) || ulmw_set_i32(w, "tokenizer.pad_id", m.pad_id) ||
        ulmw_set_bool(w, "tokenizer.add_bos", m.bos_id >= 0) ||
        ulmw_set_bool(w, "tokenizer.add_space_prefix", m.add_dummy_prefix) ||
        ulmw_set_bool(w, "tokenizer.remove_extra_spaces", m.remove_extra_whitespaces) ||
        ulmw_set_bool(w, "tokenizer.byte_fallback", m.byte_fallback) ||
        ulmw_set_str(w, "tokenizer.chat_template", "none", 4))
        st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
done:
    free(strs), free(lens), free(scores), free(types);
    spm_model_free(&m);
    return st;
}

ulm_status tok_import_spm_model(const char *path, ulmw *w, ulm_error *err) {
    return import_file(path, tok_import_spm_model_mem, w, err);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

ulm_status tok_import_path(const char *path, ulmw *w, ulm_error *err) {
    if (ends_with(path, ".json")) return tok_import_hf_json(path, w, err);
    if (ends_with(path, ".bin")) return tok_import_llama2c(path, w, err);
    if (ends_with(path, ".model")) return tok_import_spm_model(path, w, err);
    if (ends_with(path, ".gguf")) return tok_import_gguf_path(path, w, err);
    return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "%s: unknown tokenizer file type (want .json, .model, .gguf or .bin)", path);
}
