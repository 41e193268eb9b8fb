/* GGUF (v2, v3) reader: the file is mapped and used in place.
 *
 * Layout (little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv; n_kv entries of
 * (string key, u32 type, value); n_tensors infos of (string name, u32 n_dims, u64 ne[n_dims],
 * u32 ggml type, u64 offset); padding to general.alignment (default 32); the data section.
 * A string is u64 length + bytes; an array is u32 element type + u64 count + elements.
 *
 * Every count, length and offset is checked against the mapping with overflow-safe
 * arithmetic before use: a truncated or hostile file gives a one-line error, never a crash.
 * Also rejected: duplicate keys or tensor names, NUL bytes inside keys or names, nested arrays
 * (no model needs them), more than 4 dimensions, tensor offsets off the alignment, tensors
 * overlapping each other or running past the end, and ggml types whose block size is unknown
 * (the data size of such a tensor could not be checked).
 *
 * Shapes follow ggml: ne[0] is the innermost (contiguous, column) dimension, so a weight
 * matrix [rows=out, cols=in] has ne[0] = in, ne[1] = out.
 * Keys and tensor names are handed out as NUL-terminated copies; string values and tensor data
 * point into the mapping (string values are NOT NUL-terminated: use the length). Numeric array
 * elements may be unaligned in the file: read them with gguf_arr_* or memcpy. */
#ifndef ULM_GGUF_H
#define ULM_GGUF_H
#include <stddef.h>
#include <stdint.h>
#include "ulm.h"

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

/* Metadata value types (the numbers are the file's). */
typedef enum {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STR = 8, GGUF_ARR = 9, GGUF_U64 = 10, GGUF_I64 = 11,
    GGUF_F64 = 12, GGUF_TYPE_COUNT
} gguf_type;

/* ggml tensor types this reader knows the block layout of (the numbers are ggml's). */
enum {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3, GGML_Q5_0 = 6, GGML_Q5_1 = 7,
    GGML_Q8_0 = 8, GGML_Q8_1 = 9, GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12, GGML_Q5_K = 13,
    GGML_Q6_K = 14, GGML_Q8_K = 15, GGML_IQ2_XXS = 16, GGML_IQ2_XS = 17, GGML_IQ3_XXS = 18,
    GGML_IQ1_S = 19, GGML_IQ4_NL = 20, GGML_IQ3_S = 21, GGML_IQ2_S = 22, GGML_IQ4_XS = 23,
    GGML_I8 = 24, GGML_I16 = 25, GGML_I32 = 26, GGML_I64 = 27, GGML_F64 = 28, GGML_IQ1_M = 29,
    GGML_BF16 = 30, GGML_TQ1_0 = 34, GGML_TQ2_0 = 35, GGML_MXFP4 = 39
};

typedef struct gguf_str { const char *s; uint64_t len; } gguf_str; /* s not NUL-terminated */

typedef struct gguf_kv {
    const char *key;           /* NUL-terminated copy */
    gguf_type type;
    union { uint64_t u; int64_t i; double f; } v; /* scalars: unsigned kinds and bool in u,
                                                     signed in i, F32/F64 in f */
    gguf_str str;              /* GGUF_STR */
    gguf_type arr_type;        /* GGUF_ARR: element type (never GGUF_ARR) */
    uint64_t count;            /* GGUF_ARR: elements */
    const void *arr_data;      /* GGUF_ARR of numbers: packed little-endian elements, unaligned */
    const gguf_str *arr_strs;  /* GGUF_ARR of GGUF_STR: count entries */
} gguf_kv;

typedef struct gguf_tensor {
    const char *name;          /* NUL-terminated copy */
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];/* ne[0] innermost; unused dims are 1 */
    uint32_t type;             /* ggml type (GGML_*) */
    uint64_t offset;           /* from the start of the data section */
    uint64_t n_elements;
    uint64_t size;             /* bytes */
    const void *data;          /* inside the mapping */
} gguf_tensor;

typedef struct gguf gguf;

/* Maps and validates path. Errors: ULM_ERR_IO, ULM_ERR_FORMAT, ULM_ERR_UNSUPPORTED (version,
 * big-endian file, nested arrays, unknown tensor type), ULM_ERR_NOMEM; messages name the path. */
ulm_status gguf_open(const char *path, gguf **out, ulm_error *err);
/* Validates buf (not copied; must outlive the reader). */
ulm_status gguf_open_mem(const void *buf, size_t size, gguf **out, ulm_error *err);
void gguf_close(gguf *g);

uint32_t gguf_version(const gguf *g);
uint32_t gguf_alignment(const gguf *g);
const void *gguf_data(const gguf *g, uint64_t *size); /* data section */

int gguf_n_kv(const gguf *g);
const gguf_kv *gguf_kv_at(const gguf *g, int i);
const gguf_kv *gguf_find(const gguf *g, const char *key); /* NULL if absent */

/* Typed getters: return 0 and set *out when the key exists with a compatible type and the
 * value fits, else -1. Integers convert between all integer kinds when in range; floats
 * accept F32 and F64. */
int gguf_get_u32(const gguf *g, const char *key, uint32_t *out);
int gguf_get_i32(const gguf *g, const char *key, int32_t *out);
int gguf_get_u64(const gguf *g, const char *key, uint64_t *out);
int gguf_get_f32(const gguf *g, const char *key, float *out);
int gguf_get_bool(const gguf *g, const char *key, int *out);
int gguf_get_str(const gguf *g, const char *key, const char **s, uint64_t *len);
/* Copies a string value into buf as a C string (truncating); 0 if found. */
int gguf_get_cstr(const gguf *g, const char *key, char *buf, size_t cap);
/* The array under key: element type and count (0 if found and an array, else -1). */
int gguf_get_arr(const gguf *g, const char *key, gguf_type *elem, uint64_t *count);
const gguf_kv *gguf_find_arr(const gguf *g, const char *key, gguf_type elem); /* NULL unless that element type */

/* Array element access (kv must be a GGUF_ARR). Return 0, or -1 on a wrong type or index.
 * gguf_arr_num converts any numeric or bool element; gguf_arr_i64 any integer or bool. */
int gguf_arr_str(const gguf_kv *kv, uint64_t i, const char **s, uint64_t *len);
int gguf_arr_num(const gguf_kv *kv, uint64_t i, double *out);
int gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out);

int gguf_n_tensors(const gguf *g);
const gguf_tensor *gguf_tensor_at(const gguf *g, int i); /* in file order */
const gguf_tensor *gguf_find_tensor(const gguf *g, const char *name);

/* Value type name ("u32", "string", ...); "?" for an unknown number. */
const char *gguf_type_name(gguf_type t);
/* ggml type name ("F32", "Q4_K", ...); NULL for a type this reader does not know. */
const char *gguf_ggml_type_name(uint32_t t);
/* Elements per block and bytes per block of a ggml type; -1 if unknown. */
int gguf_ggml_block(uint32_t t, uint32_t *blck, uint32_t *bytes);

#endif
