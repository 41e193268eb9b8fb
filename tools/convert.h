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
    int plain;       /* keep q8/q4 in the GGUF block layout; else they are interleaved by 16 rows */
    /* what must outlive ulmw_write: malloc'd buffers and the mapped source file */
    void **bufs;
    int n_bufs, cap_bufs;
    void *src;
    void (*src_close)(void *);
} converter;

/* Hands buf to the converter (freed by conv_release); returns buf, or NULL (and frees it) on
 * out of memory. */
void *conv_keep(converter *cv, void *buf);
/* Frees what conv_keep and the importers kept, and closes the source file. */
void conv_release(converter *cv);

/* Adds one tensor. src data must stay valid until ulmw_write unless it gets converted. */
ulm_status conv_tensor(converter *cv, const char *name, ulm_dtype src, uint32_t ndim, const uint64_t *shape,
                       const void *data, ulm_error *err);

/* Importers: each fills cv->w with model metadata, tokenizer and tensors. `keep` receives
 * memory that must outlive ulmw_write (free with free()). */
ulm_status convert_llama2c(converter *cv, const char *ckpt, const char *tokenizer_path, void **keep, ulm_error *err);
/* A GGUF file (llama, qwen2, qwen3, gemma3). tokenizer_path (optional) replaces the GGUF's own
 * tokenizer. */
ulm_status convert_gguf(converter *cv, const char *path, const char *tokenizer_path, ulm_error *err);
/* A Hugging Face folder: config.json + *.safetensors + tokenizer.json or tokenizer.model. */
ulm_status convert_hf(converter *cv, const char *dir, const char *tokenizer_path, ulm_error *err);

#endif
