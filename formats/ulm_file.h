/* The .ulm file: reader (mmap, zero-copy, every field bounds-checked) and writer.
 * The byte layout is specified in formats/ULM_FORMAT.md. */
#ifndef ULM_FILE_H
#define ULM_FILE_H
#include <stddef.h>
#include <stdint.h>
#include "ulm.h"
#include "quant.h"

#define ULMF_VERSION 1
#define ULMF_ALIGN 64
#define ULMF_HEADER_SIZE 128
#define ULMF_MAX_DIMS 4

typedef enum {
    ULMF_U32 = 1, ULMF_I32 = 2, ULMF_F32 = 3, ULMF_BOOL = 4, ULMF_U64 = 5, ULMF_F64 = 6,
    ULMF_STR = 7,    /* UTF-8 bytes, not NUL-terminated in the file */
    ULMF_ARR = 8,    /* packed numeric elements of one scalar type */
    ULMF_STRARR = 9  /* offsets[count+1] into one blob: zero-copy string tables */
} ulmf_type;

typedef struct ulmf_kv {
    const char *key;
    uint32_t key_len;
    ulmf_type type;
    union { uint64_t u; int64_t i; double f; } v; /* scalars */
    const void *data;   /* STR bytes, ARR elements, STRARR blob */
    uint64_t count;     /* STR length, ARR/STRARR element count */
    ulmf_type elem;     /* ARR element type */
    const uint32_t *offs; /* STRARR: count+1 offsets into data */
} ulmf_kv;

typedef struct ulmf_tensor {
    const char *name;
    uint32_t name_len;
    ulm_dtype dtype;
    uint32_t ndim;
    uint64_t shape[ULMF_MAX_DIMS]; /* outermost first: a matrix is [rows, cols] */
    uint64_t size;                 /* bytes */
    const void *data;              /* inside the mapping, ULMF_ALIGN-aligned */
} ulmf_tensor;

typedef struct ulmf ulmf;

/* Maps and validates a file. verify_hash also checks the SHA-256 (reads every byte). */
ulm_status ulmf_open(const char *path, int verify_hash, ulmf **out, ulm_error *err);
/* Validates a buffer in memory (not copied; must outlive the reader). */
ulm_status ulmf_open_mem(const void *buf, size_t size, int verify_hash, ulmf **out, ulm_error *err);
void ulmf_close(ulmf *f);
ulm_status ulmf_verify_hash(const ulmf *f, char hex_out[65], ulm_error *err);

uint64_t ulmf_file_size(const ulmf *f);
uint32_t ulmf_version(const ulmf *f);
const void *ulmf_base(const ulmf *f);
int ulmf_n_meta(const ulmf *f);
const ulmf_kv *ulmf_meta_at(const ulmf *f, int i);
const ulmf_kv *ulmf_find(const ulmf *f, const char *key);
int ulmf_n_tensors(const ulmf *f);
const ulmf_tensor *ulmf_tensor_at(const ulmf *f, int i);
const ulmf_tensor *ulmf_find_tensor(const ulmf *f, const char *name);

/* Typed getters: return 0 and set *out when key exists with a compatible type, else -1. */
int ulmf_get_u32(const ulmf *f, const char *key, uint32_t *out);
int ulmf_get_i32(const ulmf *f, const char *key, int32_t *out);
int ulmf_get_f32(const ulmf *f, const char *key, float *out);
int ulmf_get_bool(const ulmf *f, const char *key, int *out);
int ulmf_get_str(const ulmf *f, const char *key, const char **s, size_t *len);
int ulmf_get_arr(const ulmf *f, const char *key, ulmf_type elem, const void **data, uint64_t *count);
int ulmf_get_strarr(const ulmf *f, const char *key, const uint32_t **offs, const char **blob, uint64_t *count);
/* Copies a STR value into buf as a C string (truncating); returns 0 if found. */
int ulmf_get_cstr(const ulmf *f, const char *key, char *buf, size_t cap);

/* ---- writer: collects metadata and tensors, then writes the file once ---- */
typedef struct ulmw ulmw;
ulmw *ulmw_new(void);
void ulmw_free(ulmw *w);
/* Setting a key twice replaces the value. Values are copied. Returns 0 or -1 (no memory). */
int ulmw_set_u32(ulmw *w, const char *key, uint32_t v);
int ulmw_set_i32(ulmw *w, const char *key, int32_t v);
int ulmw_set_f32(ulmw *w, const char *key, float v);
int ulmw_set_bool(ulmw *w, const char *key, int v);
int ulmw_set_u64(ulmw *w, const char *key, uint64_t v);
int ulmw_set_str(ulmw *w, const char *key, const char *s, size_t len);
int ulmw_set_arr(ulmw *w, const char *key, ulmf_type elem, const void *data, uint64_t count);
int ulmw_set_strarr(ulmw *w, const char *key, const char *const *strs, const uint32_t *lens, uint64_t count);
/* Copies metadata entry kv (from a reader) into the writer. */
int ulmw_copy_kv(ulmw *w, const ulmf_kv *kv);
/* Adds a tensor. data is NOT copied unless own != 0; it must stay valid until ulmw_write. */
int ulmw_add_tensor(ulmw *w, const char *name, ulm_dtype dt, uint32_t ndim, const uint64_t *shape,
                    const void *data, int own);
/* Writes path atomically (path.tmp, then rename). */
ulm_status ulmw_write(ulmw *w, const char *path, ulm_error *err);

size_t ulmf_type_size(ulmf_type t); /* bytes of one scalar value, 0 for STR kinds */
size_t ulmf_elem_size(ulmf_type elem); /* bytes of one ARR element: a scalar's, but BOOL is 1 */

/* Sets err (if not NULL) to code and a printf-formatted message; returns code. */
ulm_status ulm_set_error(ulm_error *err, ulm_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
