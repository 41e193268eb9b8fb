/* Tokenizing arbitrary bytes with the two tokenizer kinds ulm ships: the entity task's
 * byte-level BPE (tasks/entities/entities.ulm) and a SentencePiece-style one with byte
 * fallback (ulm mkmodel's tiny preset, written once to a temp file). Properties:
 *   - invalid UTF-8 is ULM_ERR_UTF8, valid UTF-8 is encoded, and a cap-0 call measures;
 *   - every id is in the vocabulary;
 *   - decoding through the streaming detokenizer gives the text back byte for byte (for the
 *     SentencePiece one, where the text has no U+2581, which it stands for a space with; and
 *     since its synthetic vocabulary has no U+2581 piece, a space comes back as the bytes of
 *     U+2581, which the check maps back);
 *   - with ULM_TOK_PARSE_SPECIAL too, no crash and ids in range. */
#include "fuzz.h"
#include "ulm.h"

static ulm_model *fz_models[2];

static void fz_load_models(void) {
    static int done;
    if (done) return;
    done = 1;
    ulm_error err;
    const char *bpe = getenv("ULM_FUZZ_BPE_MODEL");
    if (ulm_model_load(bpe ? bpe : "tasks/entities/entities.ulm", &fz_models[0], &err) != ULM_OK) {
        fprintf(stderr, "fuzz_tokenize: %s (run from the repository root)\n", err.msg);
        abort();
    }
    fz_models[1] = fuzz_tiny_model();
}

static int fz_has_lower_block(const uint8_t *s, size_t n) { /* U+2581 */
    for (size_t i = 0; i + 2 < n; i++)
        if (s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) return 1;
    return 0;
}

static void fz_tok_check(ulm_model *m, int spm, const uint8_t *data, size_t size) {
    ulm_model_info info;
    ulm_model_get_info(m, &info);
    ulm_error err;
    int n = -1, valid = fuzz_utf8_valid(data, size);
    ulm_status st = ulm_tokenize(m, (const char *)data, size, 0, NULL, 0, &n, &err);
    FUZZ_CHECK(valid ? st == ULM_OK : st == ULM_ERR_UTF8);
    if (!valid) return;
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    FUZZ_CHECK(ids != NULL);
    int n2 = -1;
    FUZZ_CHECK(ulm_tokenize(m, (const char *)data, size, 0, ids, n, &n2, &err) == ULM_OK && n2 == n);
    char *out = malloc(size * 4 + 64), piece[64];
    FUZZ_CHECK(out != NULL);
    size_t len = 0;
    ulm_detok d;
    ulm_detok_init(&d, m);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(ids[i] >= 0 && ids[i] < info.n_vocab);
        size_t k = ulm_detok_push(&d, ids[i], piece, sizeof piece);
        FUZZ_CHECK(len + k <= size * 4 + 64);
        memcpy(out + len, piece, k);
        len += k;
    }
    if (spm) { /* a space that reached bytes (the synthetic vocabulary has no "\u2581" piece) */
        size_t k = 0;
        for (size_t i = 0; i < len; i++) {
            if (i + 2 < len && (uint8_t)out[i] == 0xE2 && (uint8_t)out[i + 1] == 0x96 && (uint8_t)out[i + 2] == 0x81)
                out[k++] = ' ', i += 2;
            else out[k++] = out[i];
        }
        len = k;
        if (len == size + 1 && out[0] == ' ') memmove(out, out + 1, --len); /* its dummy prefix, likewise */
    }
    if ((!spm || !fz_has_lower_block(data, size)) && (len != size || memcmp(out, data, size) != 0)) {
        fprintf(stderr, "fuzz_tokenize: %s tokenizer: %zu bytes in, %zu decoded:\n", spm ? "spm" : "bpe", size, len);
        fwrite(data, 1, size, stderr);
        fprintf(stderr, "\n");
        fwrite(out, 1, len, stderr);
        fprintf(stderr, "\n");
        FUZZ_CHECK(!"decoding gives the text back");
    }
    free(out);
    /* special tokens spelled in the text: any ids, in range */
    n = 0;
    st = ulm_tokenize(m, (const char *)data, size, ULM_TOK_PARSE_SPECIAL | ULM_TOK_ADD_BOS, ids, 0, &n, &err);
    FUZZ_CHECK(st == ULM_OK && n >= 0);
    int32_t *ids2 = malloc(((size_t)n + 1) * sizeof *ids2);
    FUZZ_CHECK(ids2 != NULL);
    FUZZ_CHECK(ulm_tokenize(m, (const char *)data, size, ULM_TOK_PARSE_SPECIAL | ULM_TOK_ADD_BOS, ids2, n, &n2, &err) ==
               ULM_OK);
    for (int i = 0; i < n; i++) FUZZ_CHECK(ids2[i] >= 0 && ids2[i] < info.n_vocab);
    free(ids2);
    free(ids);
}

int fuzz_tokenize(const uint8_t *data, size_t size) {
    fz_load_models();
    fz_tok_check(fz_models[0], 0, data, size);
    fz_tok_check(fz_models[1], 1, data, size);
    return 0;
}
FUZZ_ENTRY(fuzz_tokenize)
