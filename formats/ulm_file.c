/* .ulm reader and writer. Layout: formats/ULM_FORMAT.md.
 * The reader trusts nothing: every count, offset and size is checked against the mapping
 * (with overflow-safe arithmetic) before it is used. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mapped_file.h"
#include "sha256.h"
#include "ulm_file.h"

static const uint8_t ULMF_MAGIC[8] = {0x89, 'U', 'L', 'M', '\r', '\n', 0x1a, '\n'};
#define HASH_OFF 96
#define MAX_META (1u << 20)
#define MAX_TENSORS (1u << 20)

struct ulmf {
    const uint8_t *base;
    uint64_t size;
    int mapped;
    uint32_t version;
    int n_meta, n_tensors;
    ulmf_kv *meta;
    ulmf_tensor *tensors;
    const ulmf_tensor **sorted; /* by name, for lookup */
};

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint64_t pad8(uint64_t x) { return (x + 7) & ~(uint64_t)7; }

size_t ulmf_type_size(ulmf_type t) {
    switch (t) {
    case ULMF_U32: case ULMF_I32: case ULMF_F32: case ULMF_BOOL: return 4;
    case ULMF_U64: case ULMF_F64: return 8;
    default: return 0;
    }
}

size_t ulmf_elem_size(ulmf_type elem) { return elem == ULMF_BOOL ? 1 : ulmf_type_size(elem); } /* bool arrays are bytes */

/* A cursor over [pos, end) of the buffer: every read checks remaining length first. */
typedef struct { const uint8_t *b; uint64_t pos, end; } cursor;
static int cur_need(cursor *c, uint64_t n) { return n <= c->end - c->pos; }

static int cmp_tensor(const void *a, const void *b) {
    const ulmf_tensor *x = *(const ulmf_tensor *const *)a, *y = *(const ulmf_tensor *const *)b;
    uint32_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

#define FAIL(...) do { st = ulm_set_error(err, ULM_ERR_FORMAT, __VA_ARGS__); goto fail; } while (0)

static ulm_status parse(ulmf *f, int verify_hash, ulm_error *err) {
    ulm_status st;
    const uint8_t *b = f->base;
    if (f->size < ULMF_HEADER_SIZE) FAIL("truncated .ulm: %llu bytes, header needs %d", (unsigned long long)f->size, ULMF_HEADER_SIZE);
    if (memcmp(b, ULMF_MAGIC, 8) != 0) FAIL("not a .ulm file (bad magic)");
    f->version = rd32(b + 8);
    uint32_t min_reader = rd32(b + 12);
    if (min_reader > ULMF_VERSION)
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, ".ulm format version %u needs a reader of version %u; this is %d",
                             f->version, min_reader, ULMF_VERSION);
    uint64_t fsize = rd64(b + 16), moff = rd64(b + 24), msize = rd64(b + 32), toff = rd64(b + 40),
             tsize = rd64(b + 48), doff = rd64(b + 56), dsize = rd64(b + 64);
    uint32_t nmeta = rd32(b + 72), nten = rd32(b + 76), align = rd32(b + 80);
    if (fsize != f->size) FAIL("truncated or padded .ulm: header says %llu bytes, file has %llu", (unsigned long long)fsize, (unsigned long long)f->size);
    if (align != ULMF_ALIGN) FAIL("unsupported tensor alignment %u", align);
    if (moff != ULMF_HEADER_SIZE || msize > fsize - moff) FAIL("metadata section out of bounds");
    if (toff != moff + msize || tsize > fsize - toff) FAIL("tensor table out of bounds");
    if (doff < toff + tsize || doff % ULMF_ALIGN || doff > fsize || dsize != fsize - doff) FAIL("data section out of bounds");
    if (nmeta > MAX_META || nten > MAX_TENSORS) FAIL("too many entries (%u metadata, %u tensors)", nmeta, nten);
    if (verify_hash) {
        char hex[65];
        ulm_status hs = ulmf_verify_hash(f, hex, err);
        if (hs) return hs;
    }

    f->meta = calloc(nmeta ? nmeta : 1, sizeof *f->meta);
    f->tensors = calloc(nten ? nten : 1, sizeof *f->tensors);
    f->sorted = calloc(nten ? nten : 1, sizeof *f->sorted);
    if (!f->meta || !f->tensors || !f->sorted) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory reading .ulm tables");

    cursor c = {b, moff, moff + msize};
    for (uint32_t i = 0; i < nmeta; i++) {
        ulmf_kv *kv = &f->meta[i];
        if (!cur_need(&c, 8)) FAIL("metadata entry %u truncated", i);
        kv->key_len = rd32(b + c.pos);
        kv->type = (ulmf_type)rd32(b + c.pos + 4);
        c.pos += 8;
        if (kv->key_len == 0 || kv->key_len > 256 || !cur_need(&c, pad8(kv->key_len))) FAIL("metadata key %u has a bad length", i);
        kv->key = (const char *)b + c.pos;
        c.pos += pad8(kv->key_len);
        switch (kv->type) {
        case ULMF_U32: case ULMF_I32: case ULMF_F32: case ULMF_BOOL: case ULMF_U64: case ULMF_F64: {
            if (!cur_need(&c, 8)) FAIL("metadata '%.*s' truncated", (int)kv->key_len, kv->key);
            uint64_t raw = rd64(b + c.pos);
            c.pos += 8;
            if (kv->type == ULMF_U32 || kv->type == ULMF_BOOL) kv->v.u = (uint32_t)raw;
            else if (kv->type == ULMF_I32) kv->v.i = (int32_t)(uint32_t)raw;
            else if (kv->type == ULMF_U64) kv->v.u = raw;
            else if (kv->type == ULMF_F32) { float x; uint32_t r = (uint32_t)raw; memcpy(&x, &r, 4); kv->v.f = x; }
            else { double x; memcpy(&x, &raw, 8); kv->v.f = x; }
            break;
        }
        case ULMF_STR: {
            if (!cur_need(&c, 8)) FAIL("metadata '%.*s' truncated", (int)kv->key_len, kv->key);
            kv->count = rd64(b + c.pos);
            c.pos += 8;
            if (kv->count > c.end - c.pos || !cur_need(&c, pad8(kv->count))) FAIL("metadata string '%.*s' out of bounds", (int)kv->key_len, kv->key);
            kv->data = b + c.pos;
            c.pos += pad8(kv->count);
            break;
        }
        case ULMF_ARR: {
            if (!cur_need(&c, 16)) FAIL("metadata '%.*s' truncated", (int)kv->key_len, kv->key);
            kv->elem = (ulmf_type)rd32(b + c.pos);
            kv->count = rd64(b + c.pos + 8);
            c.pos += 16;
            size_t es = ulmf_elem_size(kv->elem);
            if (!es) FAIL("metadata array '%.*s' has element type %u", (int)kv->key_len, kv->key, kv->elem);
            if (kv->count > (c.end - c.pos) / es || !cur_need(&c, pad8(kv->count * es))) FAIL("metadata array '%.*s' out of bounds", (int)kv->key_len, kv->key);
            kv->data = b + c.pos;
            c.pos += pad8(kv->count * es);
            break;
        }
        case ULMF_STRARR: {
            if (!cur_need(&c, 16)) FAIL("metadata '%.*s' truncated", (int)kv->key_len, kv->key);
            kv->count = rd64(b + c.pos);
            uint64_t blob = rd64(b + c.pos + 8);
            c.pos += 16;
            if (kv->count >= (c.end - c.pos) / 4 || !cur_need(&c, pad8((kv->count + 1) * 4))) FAIL("string table '%.*s' out of bounds", (int)kv->key_len, kv->key);
            kv->offs = (const uint32_t *)(b + c.pos);
            c.pos += pad8((kv->count + 1) * 4);
            if (blob > c.end - c.pos || !cur_need(&c, pad8(blob))) FAIL("string table '%.*s' blob out of bounds", (int)kv->key_len, kv->key);
            kv->data = b + c.pos;
            c.pos += pad8(blob);
            if (kv->offs[0] != 0 || kv->offs[kv->count] != blob) FAIL("string table '%.*s' has bad offsets", (int)kv->key_len, kv->key);
            for (uint64_t j = 0; j < kv->count; j++)
                if (kv->offs[j + 1] < kv->offs[j]) FAIL("string table '%.*s' has decreasing offsets", (int)kv->key_len, kv->key);
            break;
        }
        default: FAIL("metadata '%.*s' has unknown type %u", (int)kv->key_len, kv->key, kv->type);
        }
    }
    if (c.pos != c.end) FAIL("metadata section has %llu trailing bytes", (unsigned long long)(c.end - c.pos));
    f->n_meta = (int)nmeta;

    c = (cursor){b, toff, toff + tsize};
    for (uint32_t i = 0; i < nten; i++) {
        ulmf_tensor *t = &f->tensors[i];
        if (!cur_need(&c, 64)) FAIL("tensor entry %u truncated", i);
        const uint8_t *p = b + c.pos;
        t->name_len = rd32(p);
        t->dtype = (ulm_dtype)rd32(p + 4);
        t->ndim = rd32(p + 8);
        for (int d = 0; d < ULMF_MAX_DIMS; d++) t->shape[d] = rd64(p + 16 + 8 * d);
        uint64_t off = rd64(p + 48);
        t->size = rd64(p + 56);
        c.pos += 64;
        if (t->name_len == 0 || t->name_len > 256 || !cur_need(&c, pad8(t->name_len))) FAIL("tensor %u has a bad name length", i);
        t->name = (const char *)b + c.pos;
        c.pos += pad8(t->name_len);
        int nl = (int)t->name_len;
        if ((unsigned)t->dtype >= ULM_DT_COUNT) FAIL("tensor '%.*s' has unknown dtype %u", nl, t->name, (unsigned)t->dtype);
        if (t->ndim < 1 || t->ndim > ULMF_MAX_DIMS) FAIL("tensor '%.*s' has %u dimensions", nl, t->name, t->ndim);
        uint64_t rows = 1;
        for (uint32_t d = 0; d + 1 < t->ndim; d++) {
            if (t->shape[d] == 0 || rows > UINT64_MAX / t->shape[d]) FAIL("tensor '%.*s' has a bad shape", nl, t->name);
            rows *= t->shape[d];
        }
        uint64_t cols = t->shape[t->ndim - 1];
        for (uint32_t d = t->ndim; d < ULMF_MAX_DIMS; d++)
            if (t->shape[d] != 0) FAIL("tensor '%.*s' has a bad shape", nl, t->name);
        if (cols == 0 || cols > (1ull << 40)) FAIL("tensor '%.*s' has a bad shape", nl, t->name);
        uint64_t rb = ulm_dtype_row_bytes(t->dtype, cols);
        if (rb == 0) FAIL("tensor '%.*s': %llu columns do not fit dtype %s", nl, t->name, (unsigned long long)cols, ulm_dtype_name(t->dtype));
        if (rows > UINT64_MAX / rb || rows * rb != t->size) FAIL("tensor '%.*s' size %llu does not match its shape", nl, t->name, (unsigned long long)t->size);
        if (rows % (uint64_t)ulm_dtype_row_group(t->dtype)) FAIL("tensor '%.*s': %llu rows are not a multiple of %d, as dtype %s needs", nl, t->name, (unsigned long long)rows, ulm_dtype_row_group(t->dtype), ulm_dtype_name(t->dtype));
        if (off % ULMF_ALIGN || off > dsize || t->size > dsize - off) FAIL("tensor '%.*s' data out of bounds", nl, t->name);
        t->data = b + doff + off;
        f->sorted[i] = t;
    }
    if (c.pos != c.end) FAIL("tensor table has %llu trailing bytes", (unsigned long long)(c.end - c.pos));
    f->n_tensors = (int)nten;
    qsort(f->sorted, nten, sizeof *f->sorted, cmp_tensor);
    for (uint32_t i = 1; i < nten; i++)
        if (cmp_tensor(&f->sorted[i - 1], &f->sorted[i]) == 0) FAIL("duplicate tensor '%.*s'", (int)f->sorted[i]->name_len, f->sorted[i]->name);
    return ULM_OK;
fail:
    return st;
}

ulm_status ulmf_verify_hash(const ulmf *f, char hex_out[65], ulm_error *err) {
    static const uint8_t zero[32];
    uint8_t h[32];
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, f->base, HASH_OFF);
    sha256_update(&c, zero, 32);
    sha256_update(&c, f->base + HASH_OFF + 32, f->size - HASH_OFF - 32);
    sha256_final(&c, h);
    if (hex_out) sha256_hex(h, hex_out);
    if (memcmp(h, f->base + HASH_OFF, 32) != 0) {
        char want[65];
        sha256_hex(f->base + HASH_OFF, want);
        return ulm_set_error(err, ULM_ERR_CHECKSUM, "SHA-256 mismatch: file says %.16s..., contents hash to %.16s...", want, hex_out ? hex_out : "");
    }
    return ULM_OK;
}

static ulm_status open_common(ulmf *f, int verify_hash, ulmf **out, ulm_error *err) {
    ulm_status st = parse(f, verify_hash, err);
    if (st) { ulmf_close(f); return st; }
    *out = f;
    return ULM_OK;
}

ulm_status ulmf_open_mem(const void *buf, size_t size, int verify_hash, ulmf **out, ulm_error *err) {
    *out = NULL;
    ulmf *f = calloc(1, sizeof *f);
    if (!f) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    f->base = buf;
    f->size = size;
    return open_common(f, verify_hash, out, err);
}

ulm_status ulmf_open(const char *path, int verify_hash, ulmf **out, ulm_error *err) {
    *out = NULL;
    const void *p;
    uint64_t size;
    ulm_status st = map_file(path, ULMF_HEADER_SIZE, ".ulm", &p, &size, err);
    if (st) return st;
    ulmf *f = calloc(1, sizeof *f);
    if (!f) { unmap_file(p, size); return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); }
    f->base = p;
    f->size = size;
    f->mapped = 1;
    st = open_common(f, verify_hash, out, err);
    if (st) error_prefix_path(err, path);
    return st;
}

void ulmf_close(ulmf *f) {
    if (!f) return;
    if (f->mapped) unmap_file(f->base, f->size);
    free(f->meta);
    free(f->tensors);
    free(f->sorted);
    free(f);
}

uint64_t ulmf_file_size(const ulmf *f) { return f->size; }
uint32_t ulmf_version(const ulmf *f) { return f->version; }
const void *ulmf_base(const ulmf *f) { return f->base; }
int ulmf_n_meta(const ulmf *f) { return f->n_meta; }
const ulmf_kv *ulmf_meta_at(const ulmf *f, int i) { return i >= 0 && i < f->n_meta ? &f->meta[i] : NULL; }
int ulmf_n_tensors(const ulmf *f) { return f->n_tensors; }
const ulmf_tensor *ulmf_tensor_at(const ulmf *f, int i) { return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL; }

const ulmf_kv *ulmf_find(const ulmf *f, const char *key) {
    size_t n = strlen(key);
    for (int i = 0; i < f->n_meta; i++)
        if (f->meta[i].key_len == n && memcmp(f->meta[i].key, key, n) == 0) return &f->meta[i];
    return NULL;
}

const ulmf_tensor *ulmf_find_tensor(const ulmf *f, const char *name) {
    ulmf_tensor key = {.name = name, .name_len = (uint32_t)strlen(name)};
    const ulmf_tensor *kp = &key;
    const ulmf_tensor **r = bsearch(&kp, f->sorted, (size_t)f->n_tensors, sizeof *f->sorted, cmp_tensor);
    return r ? *r : NULL;
}

int ulmf_get_u32(const ulmf *f, const char *key, uint32_t *out) {
    const ulmf_kv *kv = ulmf_find(f, key);
    if (!kv) return -1;
    if (kv->type == ULMF_U32 || kv->type == ULMF_BOOL || (kv->type == ULMF_U64 && kv->v.u <= UINT32_MAX)) { *out = (uint32_t)kv->v.u; return 0; }
    if (kv->type == ULMF_I32 && kv->v.i >= 0) { *out = (uint32_t)kv->v.i; return 0; }
    return -1;
}
int ulmf_get_i32(const ulmf *f, const char *key, int32_t *out) {
    const ulmf_kv *kv = ulmf_find(f, key);
    if (!kv) return -1;
    if (kv->type == ULMF_I32) { *out = (int32_t)kv->v.i; return 0; }
    if ((kv->type == ULMF_U32 || kv->type == ULMF_U64) && kv->v.u <= INT32_MAX) { *out = (int32_t)kv->v.u; return 0; }
    return -1;
}
int ulmf_get_f32(const ulmf *f, const char *key, float *out) {
    const ulmf_kv *kv = ulmf_find(f, key);
    if (!kv) return -1;
    if (kv->type == ULMF_F32 || kv->type == ULMF_F64) { *out = (float)kv->v.f; return 0; }
    if (kv->type == ULMF_U32 || kv->type == ULMF_U64) { *out = (float)kv->v.u; return 0; }
    if (kv->type == ULMF_I32) { *out = (float)kv->v.i; return 0; }
    return -1;
}
int ulmf_get_bool(const ulmf *f, const char *key, int *out) {
    const ulmf_kv *kv = ulmf_find(f, key);
    if (!kv || (kv->type != ULMF_BOOL && kv->type != ULMF_U32 && kv->type != ULMF_I32)) return -1;
    *out = kv->v.u != 0;
    return 0;
}
int ulmf_get_str(const ulmf *f, const char *key, const char **s, size_t *len) {
    const ulmf_kv *kv = ulmf_find(f, key);
    if (!kv || kv->type != ULMF_STR) return -1;
    *s = kv->data;
    *len = (size_t)kv->count;
    return 0;
}
int ulmf_get_cstr(const ulmf *f, const char *key, char *buf, size_t cap) {
    const char *s;
    size_t n;
    if (ulmf_get_str(f, key, &s, &n) || cap == 0) return -1;
    if (n >= cap) n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = 0;
    return 0;
}
int ulmf_get_arr(const ulmf *f, const char *key, ulmf_type elem, const void **data, uint64_t *count) {
    const ulmf_kv *kv = ulmf_find(f, key);
    if (!kv || kv->type != ULMF_ARR || kv->elem != elem) return -1;
    *data = kv->data;
    *count = kv->count;
    return 0;
}
int ulmf_get_strarr(const ulmf *f, const char *key, const uint32_t **offs, const char **blob, uint64_t *count) {
    const ulmf_kv *kv = ulmf_find(f, key);
    if (!kv || kv->type != ULMF_STRARR) return -1;
    *offs = kv->offs;
    *blob = kv->data;
    *count = kv->count;
    return 0;
}

/* ---------------- writer ---------------- */

typedef struct {
    char *key;
    ulmf_type type, elem;
    uint64_t scalar;  /* raw bits, little-endian in the low bytes */
    uint8_t *payload; /* STR bytes / ARR elements / STRARR offsets then blob */
    uint64_t count, blob;
} wkv;

typedef struct {
    char *name;
    ulm_dtype dt;
    uint32_t ndim;
    uint64_t shape[ULMF_MAX_DIMS];
    uint64_t size, offset;
    const void *data;
    int own;
} wtensor;

struct ulmw {
    wkv *kv;
    int nkv, capkv;
    wtensor *t;
    int nt, capt;
};

ulmw *ulmw_new(void) { return calloc(1, sizeof(ulmw)); }

void ulmw_free(ulmw *w) {
    if (!w) return;
    for (int i = 0; i < w->nkv; i++) { free(w->kv[i].key); free(w->kv[i].payload); }
    for (int i = 0; i < w->nt; i++) { free(w->t[i].name); if (w->t[i].own) free((void *)w->t[i].data); }
    free(w->kv);
    free(w->t);
    free(w);
}

static wkv *slot(ulmw *w, const char *key) {
    for (int i = 0; i < w->nkv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].payload);
            w->kv[i].payload = NULL;
            return &w->kv[i];
        }
    if (w->nkv == w->capkv) {
        int nc = w->capkv ? 2 * w->capkv : 32;
        wkv *n = realloc(w->kv, (size_t)nc * sizeof *n);
        if (!n) return NULL;
        w->kv = n;
        w->capkv = nc;
    }
    wkv *k = &w->kv[w->nkv];
    memset(k, 0, sizeof *k);
    if (!(k->key = strdup(key))) return NULL;
    w->nkv++;
    return k;
}

static int set_scalar(ulmw *w, const char *key, ulmf_type t, uint64_t raw) {
    wkv *k = slot(w, key);
    if (!k) return -1;
    k->type = t;
    k->scalar = raw;
    return 0;
}
int ulmw_set_u32(ulmw *w, const char *key, uint32_t v) { return set_scalar(w, key, ULMF_U32, v); }
int ulmw_set_i32(ulmw *w, const char *key, int32_t v) { return set_scalar(w, key, ULMF_I32, (uint32_t)v); }
int ulmw_set_bool(ulmw *w, const char *key, int v) { return set_scalar(w, key, ULMF_BOOL, v ? 1 : 0); }
int ulmw_set_u64(ulmw *w, const char *key, uint64_t v) { return set_scalar(w, key, ULMF_U64, v); }
int ulmw_set_f32(ulmw *w, const char *key, float v) {
    uint32_t r;
    memcpy(&r, &v, 4);
    return set_scalar(w, key, ULMF_F32, r);
}

int ulmw_set_str(ulmw *w, const char *key, const char *s, size_t len) {
    wkv *k = slot(w, key);
    if (!k) return -1;
    k->type = ULMF_STR;
    k->count = len;
    k->payload = malloc(len ? len : 1);
    if (!k->payload) return -1;
    memcpy(k->payload, s, len);
    return 0;
}

int ulmw_set_arr(ulmw *w, const char *key, ulmf_type elem, const void *data, uint64_t count) {
    size_t es = ulmf_elem_size(elem);
    if (!es) return -1;
    wkv *k = slot(w, key);
    if (!k) return -1;
    k->type = ULMF_ARR;
    k->elem = elem;
    k->count = count;
    k->payload = malloc(count ? count * es : 1);
    if (!k->payload) return -1;
    memcpy(k->payload, data, count * es);
    return 0;
}

int ulmw_set_strarr(ulmw *w, const char *key, const char *const *strs, const uint32_t *lens, uint64_t count) {
    uint64_t blob = 0;
    for (uint64_t i = 0; i < count; i++) blob += lens ? lens[i] : strlen(strs[i]);
    if (blob > UINT32_MAX) return -1;
    wkv *k = slot(w, key);
    if (!k) return -1;
    k->type = ULMF_STRARR;
    k->count = count;
    k->blob = blob;
    k->payload = malloc((count + 1) * 4 + blob);
    if (!k->payload) return -1;
    uint32_t off = 0;
    uint8_t *bl = k->payload + (count + 1) * 4;
    for (uint64_t i = 0; i < count; i++) {
        uint32_t n = lens ? lens[i] : (uint32_t)strlen(strs[i]);
        memcpy(k->payload + i * 4, &off, 4);
        memcpy(bl + off, strs[i], n);
        off += n;
    }
    memcpy(k->payload + count * 4, &off, 4);
    return 0;
}

int ulmw_copy_kv(ulmw *w, const ulmf_kv *kv) {
    char key[260];
    memcpy(key, kv->key, kv->key_len);
    key[kv->key_len] = 0;
    switch (kv->type) {
    case ULMF_U32: case ULMF_BOOL: case ULMF_I32: return set_scalar(w, key, kv->type, (uint32_t)kv->v.u);
    case ULMF_U64: return set_scalar(w, key, kv->type, kv->v.u);
    case ULMF_F32: return ulmw_set_f32(w, key, (float)kv->v.f);
    case ULMF_F64: { uint64_t r; memcpy(&r, &kv->v.f, 8); return set_scalar(w, key, kv->type, r); }
    case ULMF_STR: return ulmw_set_str(w, key, kv->data, (size_t)kv->count);
    case ULMF_ARR: return ulmw_set_arr(w, key, kv->elem, kv->data, kv->count);
    case ULMF_STRARR: {
        wkv *k = slot(w, key);
        if (!k) return -1;
        uint64_t blob = kv->offs[kv->count];
        k->type = ULMF_STRARR;
        k->count = kv->count;
        k->blob = blob;
        if (!(k->payload = malloc((kv->count + 1) * 4 + blob))) return -1;
        memcpy(k->payload, kv->offs, (kv->count + 1) * 4);
        memcpy(k->payload + (kv->count + 1) * 4, kv->data, blob);
        return 0;
    }
    }
    return -1;
}

int ulmw_add_tensor(ulmw *w, const char *name, ulm_dtype dt, uint32_t ndim, const uint64_t *shape,
                    const void *data, int own) {
    if (ndim < 1 || ndim > ULMF_MAX_DIMS) return -1;
    if (w->nt == w->capt) {
        int nc = w->capt ? 2 * w->capt : 64;
        wtensor *n = realloc(w->t, (size_t)nc * sizeof *n);
        if (!n) return -1;
        w->t = n;
        w->capt = nc;
    }
    wtensor *t = &w->t[w->nt];
    memset(t, 0, sizeof *t);
    uint64_t rows = 1;
    for (uint32_t d = 0; d < ndim; d++) t->shape[d] = shape[d];
    for (uint32_t d = 0; d + 1 < ndim; d++) rows *= shape[d];
    size_t rb = ulm_dtype_row_bytes(dt, shape[ndim - 1]);
    if (!rb) return -1;
    if (!(t->name = strdup(name))) return -1;
    t->dt = dt;
    t->ndim = ndim;
    t->size = rows * rb;
    t->data = data;
    t->own = own;
    w->nt++;
    return 0;
}

static uint64_t kv_size(const wkv *k) {
    uint64_t n = 8 + pad8(strlen(k->key));
    switch (k->type) {
    case ULMF_STR: return n + 8 + pad8(k->count);
    case ULMF_ARR: return n + 16 + pad8(k->count * ulmf_elem_size(k->elem));
    case ULMF_STRARR: return n + 16 + pad8((k->count + 1) * 4) + pad8(k->blob);
    default: return n + 8;
    }
}

/* Writes through a hash: every byte after the header goes into the SHA-256 too. */
typedef struct { FILE *fp; sha256_ctx h; int bad; } wout;
static void put(wout *o, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, o->fp) != n) o->bad = 1;
    sha256_update(&o->h, p, n);
}
static void put_pad(wout *o, uint64_t n) {
    static const uint8_t z[64];
    while (n) { size_t k = n > 64 ? 64 : (size_t)n; put(o, z, k); n -= k; }
}
static void put32(wout *o, uint32_t v) { put(o, &v, 4); }
static void put64(wout *o, uint64_t v) { put(o, &v, 8); }

ulm_status ulmw_write(ulmw *w, const char *path, ulm_error *err) {
    uint64_t msize = 0, tsize = 0, dsize = 0;
    for (int i = 0; i < w->nkv; i++) msize += kv_size(&w->kv[i]);
    for (int i = 0; i < w->nt; i++) {
        tsize += 64 + pad8(strlen(w->t[i].name));
        w->t[i].offset = dsize;
        dsize += (w->t[i].size + ULMF_ALIGN - 1) / ULMF_ALIGN * ULMF_ALIGN;
    }
    uint64_t moff = ULMF_HEADER_SIZE, toff = moff + msize;
    uint64_t doff = (toff + tsize + ULMF_ALIGN - 1) / ULMF_ALIGN * ULMF_ALIGN;
    uint64_t fsize = doff + dsize;

    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    wout o;
    memset(&o, 0, sizeof o);
    o.fp = fopen(tmp, "wb");
    if (!o.fp) return ulm_set_error(err, ULM_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    sha256_init(&o.h);

    uint8_t hdr[ULMF_HEADER_SIZE] = {0};
    memcpy(hdr, ULMF_MAGIC, 8);
    uint32_t v32 = ULMF_VERSION;
    memcpy(hdr + 8, &v32, 4);
    memcpy(hdr + 12, &v32, 4);
    uint64_t fields[7] = {fsize, moff, msize, toff, tsize, doff, dsize};
    memcpy(hdr + 16, fields, sizeof fields);
    uint32_t counts[4] = {(uint32_t)w->nkv, (uint32_t)w->nt, ULMF_ALIGN, 0};
    memcpy(hdr + 72, counts, sizeof counts);
    put(&o, hdr, sizeof hdr); /* hash field is zero while hashing */

    for (int i = 0; i < w->nkv; i++) {
        const wkv *k = &w->kv[i];
        uint32_t kl = (uint32_t)strlen(k->key);
        put32(&o, kl);
        put32(&o, k->type);
        put(&o, k->key, kl);
        put_pad(&o, pad8(kl) - kl);
        switch (k->type) {
        case ULMF_STR: put64(&o, k->count); put(&o, k->payload, k->count); put_pad(&o, pad8(k->count) - k->count); break;
        case ULMF_ARR: {
            uint64_t n = k->count * ulmf_elem_size(k->elem);
            put32(&o, k->elem); put32(&o, 0); put64(&o, k->count);
            put(&o, k->payload, n); put_pad(&o, pad8(n) - n);
            break;
        }
        case ULMF_STRARR: {
            uint64_t on = (k->count + 1) * 4;
            put64(&o, k->count); put64(&o, k->blob);
            put(&o, k->payload, on); put_pad(&o, pad8(on) - on);
            put(&o, k->payload + on, k->blob); put_pad(&o, pad8(k->blob) - k->blob);
            break;
        }
        default: put64(&o, k->scalar); break;
        }
    }
    for (int i = 0; i < w->nt; i++) {
        const wtensor *t = &w->t[i];
        uint32_t nl = (uint32_t)strlen(t->name);
        put32(&o, nl); put32(&o, t->dt); put32(&o, t->ndim); put32(&o, 0);
        for (int d = 0; d < ULMF_MAX_DIMS; d++) put64(&o, t->shape[d]);
        put64(&o, t->offset); put64(&o, t->size);
        put(&o, t->name, nl);
        put_pad(&o, pad8(nl) - nl);
    }
    put_pad(&o, doff - (toff + tsize));
    for (int i = 0; i < w->nt; i++) {
        const wtensor *t = &w->t[i];
        put(&o, t->data, t->size);
        put_pad(&o, (t->size + ULMF_ALIGN - 1) / ULMF_ALIGN * ULMF_ALIGN - t->size);
    }
    uint8_t digest[32];
    sha256_final(&o.h, digest);
    if (fseek(o.fp, HASH_OFF, SEEK_SET) != 0 || fwrite(digest, 1, 32, o.fp) != 32) o.bad = 1;
    if (fclose(o.fp) != 0) o.bad = 1;
    if (o.bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        return ulm_set_error(err, ULM_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    return ULM_OK;
}
