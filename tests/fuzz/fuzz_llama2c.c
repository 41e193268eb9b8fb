/* A llama2.c checkpoint (7-int header, then f32 weights) through the converter
 * (convert_llama2c), with a fixed tokenizer.bin (the tok_import seed's); what converts is
 * written, loaded and run for three tokens. */
#include "convert.h"
#include "fuzz.h"
#include "ulm.h"

int fuzz_llama2c(const uint8_t *data, size_t size) {
    static char tok[256];
    if (!tok[0]) { /* the seed is a format byte, then tokenizer.bin */
        char seed[] = "tests/fuzz/corpus/tok_import/seed-llama2c.bin";
        size_t n = 0;
        FILE *fp = fopen(seed, "rb");
        static uint8_t buf[1 << 16];
        if (fp) n = fread(buf, 1, sizeof buf, fp), fclose(fp);
        if (n < 2 || buf[0] != 2) {
            fprintf(stderr, "fuzz_llama2c: %s: cannot read (run from the repository root)\n", seed);
            abort();
        }
        fuzz_out_path(tok, sizeof tok, "tok512.bin");
        fp = fopen(tok, "wb");
        FUZZ_CHECK(fp && fwrite(buf + 1, 1, n - 1, fp) == n - 1);
        fclose(fp);
    }
    char path[256];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    converter cv;
    memset(&cv, 0, sizeof cv);
    cv.w = ulmw_new();
    cv.target = ULM_DT_Q4;
    cv.quiet = 1;
    ulm_error err;
    void *keep = NULL;
    if (cv.w && convert_llama2c(&cv, path, tok, &keep, &err) == ULM_OK) {
        char out[256];
        fuzz_out_path(out, sizeof out, "llama2c.ulm");
        if (ulmw_write(cv.w, out, &err) == ULM_OK) {
            ulm_model *m = NULL;
            if (ulm_model_load(out, &m, &err) == ULM_OK) {
                ulm_ctx_params p = {.n_ctx = 8, .n_threads = 1};
                ulm_ctx *c = NULL;
                int32_t ids[3] = {0, 1, 2};
                ulm_model_info info;
                ulm_model_get_info(m, &info);
                if (info.n_vocab >= 3 && ulm_ctx_new(m, &p, &c, &err) == ULM_OK) {
                    ulm_ctx_eval(c, ids, 3, NULL, 0, &err);
                    ulm_ctx_free(c);
                }
                ulm_model_free(m);
            }
            unlink(out);
        }
    }
    free(keep);
    conv_release(&cv);
    ulmw_free(cv.w);
    fuzz_file_done(fd, path);
    return 0;
}
FUZZ_ENTRY(fuzz_llama2c)
