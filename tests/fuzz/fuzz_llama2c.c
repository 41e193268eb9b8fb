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
    converter cv = fuzz_converter(ULM_DT_Q4);
    ulm_error err;
    void *keep = NULL;
    if (cv.w && convert_llama2c(&cv, path, tok, &keep, &err) == ULM_OK) fuzz_write_load_run(cv.w, "llama2c.ulm");
    free(keep);
    fuzz_converter_done(&cv);
    fuzz_file_done(fd, path);
    return 0;
}
FUZZ_ENTRY(fuzz_llama2c)
