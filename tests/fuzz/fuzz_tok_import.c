/* Tokenizer importers: the first byte picks the format of the rest: 0 a Hugging Face
 * tokenizer.json (then NUL and an optional tokenizer_config.json), 1 a SentencePiece
 * tokenizer.model (protobuf), 2 a llama2.c tokenizer.bin. What imports is written into a .ulm,
 * loaded back as the engine's tokenizer, and used on a short text. */
#include "fuzz.h"
#include "tok_import.h"
#include "tokenizer.h"
#include "ulm_file.h"

static void fz_tok_use(ulmw *w) {
    char path[256];
    fuzz_out_path(path, sizeof path, "tok.ulm");
    ulm_error err;
    if (ulmw_write(w, path, &err) != ULM_OK) return;
    ulmf *f = NULL;
    tokenizer *t = NULL;
    if (ulmf_open(path, 1, &f, &err) == ULM_OK && tok_load(f, &t, &err) == ULM_OK) {
        int32_t ids[64];
        int n = 0;
        const char *text = "Hello, world <|im_start|> 2026";
        if (tok_encode(t, text, strlen(text), ULM_TOK_ADD_BOS | ULM_TOK_PARSE_SPECIAL, ids, 64, &n, &err) == ULM_OK)
            for (int i = 0; i < n && i < 64; i++) {
                FUZZ_CHECK(ids[i] >= 0 && ids[i] < tok_n_vocab(t));
                size_t len;
                const char *p = tok_decode_piece(t, ids[i], &len);
                FUZZ_CHECK(p != NULL || len == 0);
            }
        tok_free(t);
    }
    ulmf_close(f);
    unlink(path);
}

int fuzz_tok_import(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    ulmw *w = ulmw_new();
    if (!w) return 0;
    ulm_error err;
    ulm_status st = ULM_ERR_ARG;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    if (data[0] == 0) {
        const uint8_t *z = memchr(p, 0, n);
        size_t jl = z ? (size_t)(z - p) : n;
        st = tok_import_hf_json_mem((const char *)p, jl, z ? (const char *)z + 1 : NULL, z ? n - jl - 1 : 0, w, &err);
    } else if (data[0] == 1) st = tok_import_spm_model_mem(p, n, w, &err);
    else if (data[0] == 2) st = tok_import_llama2c_mem(p, n, w, &err);
    if (st == ULM_OK) fz_tok_use(w);
    ulmw_free(w);
    return 0;
}
FUZZ_ENTRY(fuzz_tok_import)
