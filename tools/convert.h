/* The conversion pipeline: importers hand tensors in their source dtype to conv_tensor, which
 * applies the target type once (matrices → f32/f16/bf16/q8/q4; 1-D tensors stay f32), so the
 * engine never repacks or converts at load. */
#ifndef ULM_CONVERT_H
#define ULM_CONVERT_H
#include <stdint.h>
#include "quant.h"
#include "ulm_file.h"

typedef struct converter {
    ulmw *w;
    int target;      /* ulm_dtype for matrices, or -1 = keep the source dtype */
    int n_fallback;  /* matrices kept wider because cols % 32 != 0 */
    int quiet;
} converter;

/* Adds one tensor. src data must stay valid until ulmw_write unless it gets converted. */
ulm_status conv_tensor(converter *cv, const char *name, ulm_dtype src, uint32_t ndim, const uint64_t *shape,
                       const void *data, ulm_error *err);

/* Importers: each fills cv->w with model metadata, tokenizer and tensors. `keep` receives
 * memory that must outlive ulmw_write (free with free()). */
ulm_status convert_llama2c(converter *cv, const char *ckpt, const char *tokenizer_path, void **keep, ulm_error *err);

#endif
