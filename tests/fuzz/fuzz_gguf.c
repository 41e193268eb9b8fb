/* A GGUF file: the reader (every value, array element and tensor touched), its tokenizer
 * importer, and the whole converter (convert_gguf: architecture, config, tensors, tokenizer)
 * into a .ulm, which is then loaded and run for three tokens. Seeds: small GGUFs written by the test suite's
 * shapes (tests/fuzz/corpus/gguf). */
#include "convert.h"
#include "fuzz.h"
#include "gguf.h"
#include "tok_import.h"
#include "ulm.h"

static volatile uint64_t fz_gguf_sink;

static void fz_gguf_walk(const gguf *g) {
    for (int i = 0; i < gguf_n_kv(g); i++) {
        const gguf_kv *kv = gguf_kv_at(g, i);
        FUZZ_CHECK(kv && kv->key && gguf_find(g, kv->key) == kv);
        if (kv->type == GGUF_STR && kv->str.len) fz_gguf_sink += (uint8_t)kv->str.s[kv->str.len - 1];
        if (kv->type != GGUF_ARR) continue;
        uint64_t n = kv->count < 1024 ? kv->count : 1024;
        for (uint64_t j = 0; j < n; j++) {
            const char *s;
            uint64_t len;
            double d;
            if (kv->arr_type == GGUF_STR) {
                FUZZ_CHECK(gguf_arr_str(kv, j, &s, &len) == 0);
                if (len) fz_gguf_sink += (uint8_t)s[len - 1];
            } else if (gguf_arr_num(kv, j, &d) == 0) fz_gguf_sink += (uint64_t)(d != d);
        }
    }
    for (int i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        FUZZ_CHECK(t && gguf_find_tensor(g, t->name) == t);
        if (t->size) fz_gguf_sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->size - 1];
    }
}

int fuzz_gguf(const uint8_t *data, size_t size) {
    gguf *g = NULL;
    ulm_error err;
    if (gguf_open_mem(data, size, &g, &err) == ULM_OK) {
        fz_gguf_walk(g);
        ulmw *w = ulmw_new();
        if (w) tok_import_gguf(g, w, &err);
        ulmw_free(w);
        gguf_close(g);
    }
    /* the converter opens a path; q8 makes it quantize every matrix it accepts */
    char path[256];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    converter cv = fuzz_converter(ULM_DT_Q8);
    if (cv.w && convert_gguf(&cv, path, NULL, &err) == ULM_OK) fuzz_write_load_run(cv.w, "gguf.ulm");
    fuzz_converter_done(&cv);
    fuzz_file_done(fd, path);
    return 0;
}
FUZZ_ENTRY(fuzz_gguf)
