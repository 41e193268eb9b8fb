/* safetensors reader (one file, or a Hugging Face folder's shards) and config.json helpers.
 *
 * A .safetensors file is: u64 little-endian N, N bytes of JSON header, then the data buffer.
 * The header maps each tensor name to {"dtype": "F32", "shape": [rows, cols],
 * "data_offsets": [begin, end]} (offsets into the data buffer); the optional "__metadata__"
 * member maps strings to strings. The file is mapped and tensors are used in place.
 *
 * Checked before anything is used: header length within the file (and <= 100 MB), the header
 * is valid JSON (formats/json.h) of the shape above, offsets are integers with
 * begin <= end <= data size, tensors do not overlap, and end - begin equals the byte size the
 * dtype and shape imply (computed with overflow checks). Dtypes other than F32, F16 and BF16
 * are listed with their name and sizes but flagged unsupported (sft_dtype_supported); a dtype
 * name this reader does not know at all is SFT_UNKNOWN and its size cannot be checked.
 *
 * Shapes are in PyTorch order, outermost first (a Linear weight is [out_features, in_features],
 * row-major), the reverse of GGUF's ne[]. Data is NOT guaranteed aligned (the header length is
 * arbitrary): read elements with memcpy or convert while copying. */
#ifndef ULM_SAFETENSORS_H
#define ULM_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "json.h"
#include "ulm.h"

#define SFT_MAX_DIMS 8
#define SFT_MAX_HEADER (100u << 20)

typedef enum {
    SFT_F32 = 0, SFT_F16, SFT_BF16, /* supported as weights */
    SFT_F64, SFT_I64, SFT_I32, SFT_I16, SFT_I8, SFT_U64, SFT_U32, SFT_U16, SFT_U8, SFT_BOOL,
    SFT_F8_E4M3, SFT_F8_E5M2,
    SFT_UNKNOWN /* a dtype name not in this list; its byte size is not checked */
} sft_dtype;

typedef struct sft_tensor {
    const char *name;          /* NUL-terminated */
    sft_dtype dtype;
    const char *dtype_name;    /* as written in the header ("F32", "F8_E8M0", ...) */
    uint32_t n_dims;
    uint64_t shape[SFT_MAX_DIMS]; /* outermost first; n_dims 0 is a scalar */
    uint64_t n_elements;
    uint64_t size;             /* bytes (end - begin) */
    const void *data;          /* inside the mapping; may be unaligned */
    int shard;                 /* which file of a sft_model (0 for a single file) */
} sft_tensor;

/* ---- one file ---- */
typedef struct sft_file sft_file;

/* Maps and validates path. Errors: ULM_ERR_IO, ULM_ERR_FORMAT, ULM_ERR_NOMEM; messages name
 * the path. */
ulm_status sft_open(const char *path, sft_file **out, ulm_error *err);
/* Validates buf (not copied; must outlive the reader). */
ulm_status sft_open_mem(const void *buf, size_t size, sft_file **out, ulm_error *err);
void sft_close(sft_file *f);
int sft_n_tensors(const sft_file *f);
const sft_tensor *sft_tensor_at(const sft_file *f, int i); /* header order */
const sft_tensor *sft_find(const sft_file *f, const char *name);
/* The "__metadata__" object (NULL if absent). */
const json_value *sft_metadata(const sft_file *f);

const char *sft_dtype_name(sft_dtype dt);
size_t sft_dtype_size(sft_dtype dt); /* bytes per element; 0 for SFT_UNKNOWN */
int sft_dtype_supported(sft_dtype dt); /* F32, F16, BF16 */

/* ---- a Hugging Face folder ----
 * Opens dir/model.safetensors.index.json ("weight_map": tensor -> shard file name) and every
 * shard it names, or else dir/model.safetensors alone. Shard names must be plain file names
 * (no '/', no leading '.'); every weight_map entry must be found in the shard it names, and a
 * tensor name may not appear in two shards. */
typedef struct sft_model sft_model;
ulm_status sft_model_open(const char *dir, sft_model **out, ulm_error *err);
void sft_model_close(sft_model *m);
int sft_model_n_tensors(const sft_model *m);
const sft_tensor *sft_model_tensor_at(const sft_model *m, int i); /* shard by shard, header order */
const sft_tensor *sft_model_find(const sft_model *m, const char *name);
int sft_model_n_shards(const sft_model *m);

/* ---- config.json ----
 * Multimodal checkpoints (Gemma 3 4B+) keep the language model's hyperparameters under
 * "text_config": these look up key at the top level first, then inside "text_config".
 * Return 0 and set *out when found with that type (ints: an integral number), else -1. */
const json_value *hf_config_get(const json_value *cfg, const char *key);
int hf_config_int(const json_value *cfg, const char *key, int64_t *out);
int hf_config_num(const json_value *cfg, const char *key, double *out);
int hf_config_bool(const json_value *cfg, const char *key, int *out);
int hf_config_str(const json_value *cfg, const char *key, const char **s, size_t *len);

#endif
