/* A .safetensors file: header JSON, dtypes, shapes, offsets; every tensor's first and last
 * byte and the metadata are touched. */
#include "fuzz.h"
#include "safetensors.h"

static volatile uint64_t fz_sft_sink;

int fuzz_safetensors(const uint8_t *data, size_t size) {
    sft_file *f = NULL;
    ulm_error err;
    if (sft_open_mem(data, size, &f, &err) != ULM_OK) return 0;
    for (int i = 0; i < sft_n_tensors(f); i++) {
        const sft_tensor *t = sft_tensor_at(f, i);
        FUZZ_CHECK(t && sft_find(f, t->name) == t && t->n_dims <= SFT_MAX_DIMS);
        if (t->dtype != SFT_UNKNOWN) FUZZ_CHECK(t->size == t->n_elements * sft_dtype_size(t->dtype));
        if (t->size) fz_sft_sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->size - 1];
    }
    const json_value *meta = sft_metadata(f);
    for (size_t i = 0; meta && i < json_len(meta); i++) {
        size_t len;
        const char *s = json_str(json_obj_val(meta, i), &len);
        if (s && len) fz_sft_sink += (uint8_t)s[len - 1];
    }
    sft_close(f);
    return 0;
}
FUZZ_ENTRY(fuzz_safetensors)
