/* A Hugging Face folder through the converter (convert_hf): input = config.json, NUL, then
 * model.safetensors; the folder's tokenizer.json is fixed (the tok_import seed's). What
 * converts is written, loaded and run for three tokens, as fuzz_gguf does. */
#include "convert.h"
#include "fuzz.h"
#include "ulm.h"

static char *fz_hf_tok;
static size_t fz_hf_tok_len;

static void fz_hf_load_tok(void) {
    if (fz_hf_tok) return;
    FILE *fp = fopen("tests/fuzz/corpus/tok_import/seed-hf.json", "rb");
    if (!fp) {
        fprintf(stderr, "fuzz_hf: tests/fuzz/corpus/tok_import/seed-hf.json: cannot open (run from the repository root)\n");
        abort();
    }
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    FUZZ_CHECK(n > 1 && buf[0] == 0);
    char *z = memchr(buf + 1, 0, n - 1); /* format byte, tokenizer.json, NUL, tokenizer_config.json */
    fz_hf_tok = buf + 1;
    fz_hf_tok_len = z ? (size_t)(z - fz_hf_tok) : n - 1;
}

static int fz_hf_write(const char *dir, const char *name, const void *data, size_t size) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t w = fwrite(data, 1, size, fp);
    return fclose(fp) == 0 && w == size ? 0 : -1;
}

int fuzz_hf(const uint8_t *data, size_t size) {
    fz_hf_load_tok();
    const uint8_t *z = memchr(data, 0, size);
    if (!z) return 0;
    char dir[256];
    fuzz_out_path(dir, sizeof dir, "hf");
    mkdir(dir, 0700);
    if (fz_hf_write(dir, "config.json", data, (size_t)(z - data)) ||
        fz_hf_write(dir, "model.safetensors", z + 1, size - (size_t)(z - data) - 1) ||
        fz_hf_write(dir, "tokenizer.json", fz_hf_tok, fz_hf_tok_len))
        return 0;
    converter cv = fuzz_converter(ULM_DT_Q8);
    ulm_error err;
    if (cv.w && convert_hf(&cv, dir, NULL, &err) == ULM_OK) fuzz_write_load_run(cv.w, "hf.ulm");
    fuzz_converter_done(&cv);
    return 0;
}
FUZZ_ENTRY(fuzz_hf)
