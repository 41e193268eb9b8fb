/* GGUF reader. The file is trusted for nothing: each read goes through a cursor that checks
 * the bytes left first, each size is computed with overflow checks, and only then is anything
 * allocated or pointed at. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mapped_file.h"
#include "gguf.h"
#include "ulm_file.h"

#define MAX_NAME 65535 /* keys and tensor names; real ones are < 100 bytes */

struct gguf {
    const uint8_t *base;
    uint64_t size;
    int mapped;
    uint32_t version, alignment;
    uint64_t data_off, data_size;
    int n_kv, n_tensors;
    gguf_kv *kvs;
    gguf_tensor *tens;
    const gguf_kv **kv_sorted;      /* by key, for lookup */
    const gguf_tensor **t_sorted;   /* by name */
    char *names;                    /* NUL-terminated copies of keys and tensor names */
};

static const struct { const char *name; uint32_t blck, bytes; } ggml_types[] = {
    [GGML_F32] = {"F32", 1, 4},        [GGML_F16] = {"F16", 1, 2},
    [GGML_Q4_0] = {"Q4_0", 32, 18},    [GGML_Q4_1] = {"Q4_1", 32, 20},
    [GGML_Q5_0] = {"Q5_0", 32, 22},    [GGML_Q5_1] = {"Q5_1", 32, 24},
    [GGML_Q8_0] = {"Q8_0", 32, 34},    [GGML_Q8_1] = {"Q8_1", 32, 36},
    [GGML_Q2_K] = {"Q2_K", 256, 84},   [GGML_Q3_K] = {"Q3_K", 256, 110},
    [GGML_Q4_K] = {"Q4_K", 256, 144},  [GGML_Q5_K] = {"Q5_K", 256, 176},
    [GGML_Q6_K] = {"Q6_K", 256, 210},  [GGML_Q8_K] = {"Q8_K", 256, 292},
    [GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [GGML_IQ2_XS] = {"IQ2_XS", 256, 74},
    [GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [GGML_IQ1_S] = {"IQ1_S", 256, 50},
    [GGML_IQ4_NL] = {"IQ4_NL", 32, 18},    [GGML_IQ3_S] = {"IQ3_S", 256, 110},
    [GGML_IQ2_S] = {"IQ2_S", 256, 82},     [GGML_IQ4_XS] = {"IQ4_XS", 256, 136},
    [GGML_I8] = {"I8", 1, 1},          [GGML_I16] = {"I16", 1, 2},
    [GGML_I32] = {"I32", 1, 4},        [GGML_I64] = {"I64", 1, 8},
    [GGML_F64] = {"F64", 1, 8},        [GGML_IQ1_M] = {"IQ1_M", 256, 56},
    [GGML_BF16] = {"BF16", 1, 2},      [GGML_TQ1_0] = {"TQ1_0", 256, 54},
    [GGML_TQ2_0] = {"TQ2_0", 256, 66}, [GGML_MXFP4] = {"MXFP4", 32, 17},
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

const char *gguf_ggml_type_name(uint32_t t) { return t < N_GGML_TYPES ? ggml_types[t].name : NULL; }

int gguf_ggml_block(uint32_t t, uint32_t *blck, uint32_t *bytes) {
    if (t >= N_GGML_TYPES || !ggml_types[t].name) return -1;
    *blck = ggml_types[t].blck;
    *bytes = ggml_types[t].bytes;
    return 0;
}

const char *gguf_type_name(gguf_type t) {
    static const char *n[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < GGUF_TYPE_COUNT ? n[t] : "?";
}

static size_t scalar_size(gguf_type t) {
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

/* ---- bounds-checked cursor ---- */
typedef struct { const uint8_t *b; uint64_t pos, end; } cursor;
static int need(const cursor *c, uint64_t n) { return n <= c->end - c->pos; }
static int rd_u32(cursor *c, uint32_t *v) {
    if (!need(c, 4)) return -1;
    memcpy(v, c->b + c->pos, 4);
    c->pos += 4;
    return 0;
}
static int rd_u64(cursor *c, uint64_t *v) {
    if (!need(c, 8)) return -1;
    memcpy(v, c->b + c->pos, 8);
    c->pos += 8;
    return 0;
}
static int rd_str(cursor *c, gguf_str *s) {
    if (rd_u64(c, &s->len) || !need(c, s->len)) return -1;
    s->s = (const char *)c->b + c->pos;
    c->pos += s->len;
    return 0;
}

/* A key or name for an error message: at most 64 bytes, control bytes shown as '?'. */
static const char *printable(const gguf_str *s, char buf[72]) {
    size_t n = s->len < 64 ? (size_t)s->len : 64, i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s->s[i];
        buf[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (s->len > 64) memcpy(buf + i, "...", 3), i += 3;
    buf[i] = 0;
    return buf;
}

static int valid_name(const gguf_str *s) { return s->len > 0 && s->len <= MAX_NAME && !memchr(s->s, 0, s->len); }

static uint64_t rd_scalar_u(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    memcpy(&v, p, n); /* little-endian host */
    return v;
}

/* Decodes one scalar of type t at p into kv->v. */
static void set_scalar(gguf_kv *kv, gguf_type t, const uint8_t *p) {
    uint64_t raw = rd_scalar_u(p, scalar_size(t));
    switch (t) {
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64: kv->v.u = raw; break;
    case GGUF_BOOL: kv->v.u = raw != 0; break;
    case GGUF_I8: kv->v.i = (int8_t)raw; break;
    case GGUF_I16: kv->v.i = (int16_t)raw; break;
    case GGUF_I32: kv->v.i = (int32_t)raw; break;
    case GGUF_I64: kv->v.i = (int64_t)raw; break;
    case GGUF_F32: { float f; uint32_t r = (uint32_t)raw; memcpy(&f, &r, 4); kv->v.f = f; break; }
    case GGUF_F64: { double d; memcpy(&d, &raw, 8); kv->v.f = d; break; }
    default: break;
    }
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp((*(const gguf_kv *const *)a)->key, (*(const gguf_kv *const *)b)->key);
}
static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(const gguf_tensor *const *)a)->name, (*(const gguf_tensor *const *)b)->name);
}
static int cmp_tensor_off(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

#define FAIL(code, ...) do { st = ulm_set_error(err, code, __VA_ARGS__); goto done; } while (0)
#define BAD(...) FAIL(ULM_ERR_FORMAT, __VA_ARGS__)
#define NOMEM() FAIL(ULM_ERR_NOMEM, "out of memory reading GGUF")

static ulm_status parse(gguf *g, ulm_error *err) {
    ulm_status st = ULM_OK;
    char pb[72];
    gguf_str *key_strs = NULL, *name_strs = NULL; /* in the file, copied at the end */
    cursor c = {g->base, 0, g->size};
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    if (rd_u32(&c, &magic)) BAD("truncated GGUF: %llu bytes", (unsigned long long)g->size);
    if (memcmp(&magic, "GGUF", 4) != 0) BAD("not a GGUF file (bad magic)");
    if (rd_u32(&c, &g->version)) BAD("truncated GGUF header");
    if (g->version == 1) FAIL(ULM_ERR_UNSUPPORTED, "GGUF version 1 is not supported (convert it to v3)");
    if ((g->version & 0xffff) == 0 && g->version >> 16)
        FAIL(ULM_ERR_UNSUPPORTED, "big-endian GGUF is not supported");
    if (g->version != 2 && g->version != 3) FAIL(ULM_ERR_UNSUPPORTED, "GGUF version %u is not supported (2 and 3 are)", g->version);
    if (rd_u64(&c, &n_tensors) || rd_u64(&c, &n_kv)) BAD("truncated GGUF header");
    /* every entry takes at least 13 bytes, so larger counts cannot be honest */
    if (n_kv > (g->size - c.pos) / 13 || n_kv > INT32_MAX) BAD("GGUF metadata count %llu exceeds the file", (unsigned long long)n_kv);
    if (n_tensors > (g->size - c.pos) / 24 || n_tensors > INT32_MAX) BAD("GGUF tensor count %llu exceeds the file", (unsigned long long)n_tensors);

    g->kvs = calloc(n_kv ? n_kv : 1, sizeof *g->kvs);
    g->kv_sorted = calloc(n_kv ? n_kv : 1, sizeof *g->kv_sorted);
    g->tens = calloc(n_tensors ? n_tensors : 1, sizeof *g->tens);
    g->t_sorted = calloc(n_tensors ? n_tensors : 1, sizeof *g->t_sorted);
    key_strs = calloc(n_kv ? n_kv : 1, sizeof *key_strs);
    name_strs = calloc(n_tensors ? n_tensors : 1, sizeof *name_strs);
    if (!g->kvs || !g->kv_sorted || !g->tens || !g->t_sorted || !key_strs || !name_strs) NOMEM();

    /* metadata */
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < n_kv; i++) {
        gguf_kv *kv = &g->kvs[i];
        gguf_str *k = &key_strs[i];
        uint32_t type;
        if (rd_str(&c, k)) BAD("GGUF metadata entry %llu: key out of bounds", (unsigned long long)i);
        if (!valid_name(k)) BAD("GGUF metadata entry %llu: bad key '%s'", (unsigned long long)i, printable(k, pb));
        if (rd_u32(&c, &type)) BAD("GGUF metadata '%s' truncated", printable(k, pb));
        kv->type = (gguf_type)type;
        g->n_kv = (int)i + 1; /* entries up to here own their allocations */
        if (type >= GGUF_TYPE_COUNT) BAD("GGUF metadata '%s' has unknown type %u", printable(k, pb), type);
        if (type == GGUF_STR) {
            if (rd_str(&c, &kv->str)) BAD("GGUF metadata string '%s' out of bounds", printable(k, pb));
        } else if (type == GGUF_ARR) {
            uint32_t et;
            if (rd_u32(&c, &et) || rd_u64(&c, &kv->count)) BAD("GGUF metadata array '%s' truncated", printable(k, pb));
            if (et == GGUF_ARR) FAIL(ULM_ERR_UNSUPPORTED, "GGUF metadata '%s' is a nested array (not supported)", printable(k, pb));
            if (et >= GGUF_TYPE_COUNT) BAD("GGUF metadata array '%s' has unknown element type %u", printable(k, pb), et);
            kv->arr_type = (gguf_type)et;
            if (et == GGUF_STR) {
                if (kv->count > (c.end - c.pos) / 8) BAD("GGUF metadata array '%s': %llu strings exceed the file", printable(k, pb), (unsigned long long)kv->count);
                gguf_str *strs = malloc((kv->count ? kv->count : 1) * sizeof *strs);
                if (!strs) NOMEM();
                kv->arr_strs = strs;
                for (uint64_t j = 0; j < kv->count; j++)
                    if (rd_str(&c, &strs[j])) BAD("GGUF metadata array '%s': string %llu out of bounds", printable(k, pb), (unsigned long long)j);
            } else {
                size_t es = scalar_size(kv->arr_type);
                if (kv->count > (c.end - c.pos) / es) BAD("GGUF metadata array '%s': %llu elements exceed the file", printable(k, pb), (unsigned long long)kv->count);
                kv->arr_data = c.b + c.pos;
                c.pos += kv->count * es;
            }
        } else {
            size_t es = scalar_size(kv->type);
            if (!need(&c, es)) BAD("GGUF metadata '%s' truncated", printable(k, pb));
            set_scalar(kv, kv->type, c.b + c.pos);
            c.pos += es;
        }
        if (k->len == 17 && memcmp(k->s, "general.alignment", 17) == 0) {
            if (kv->type != GGUF_U32) BAD("GGUF general.alignment must be u32, not %s", gguf_type_name(kv->type));
            if (kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)) || kv->v.u > (1u << 20)) BAD("GGUF general.alignment %llu is not a power of two", (unsigned long long)kv->v.u);
            g->alignment = (uint32_t)kv->v.u;
        }
    }

    /* tensor infos */
    for (uint64_t i = 0; i < n_tensors; i++) {
        gguf_tensor *t = &g->tens[i];
        gguf_str *nm = &name_strs[i];
        if (rd_str(&c, nm)) BAD("GGUF tensor %llu: name out of bounds", (unsigned long long)i);
        if (!valid_name(nm)) BAD("GGUF tensor %llu: bad name '%s'", (unsigned long long)i, printable(nm, pb));
        if (rd_u32(&c, &t->n_dims)) BAD("GGUF tensor '%s' truncated", printable(nm, pb));
        if (t->n_dims > GGUF_MAX_DIMS) BAD("GGUF tensor '%s' has %u dimensions (at most %d)", printable(nm, pb), t->n_dims, GGUF_MAX_DIMS);
        for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            if (rd_u64(&c, &t->ne[d])) BAD("GGUF tensor '%s' truncated", printable(nm, pb));
            if (t->ne[d] > (uint64_t)INT64_MAX) BAD("GGUF tensor '%s' has a negative dimension", printable(nm, pb));
        }
        if (rd_u32(&c, &t->type) || rd_u64(&c, &t->offset)) BAD("GGUF tensor '%s' truncated", printable(nm, pb));
        uint32_t blck, bytes;
        if (gguf_ggml_block(t->type, &blck, &bytes))
            FAIL(ULM_ERR_UNSUPPORTED, "GGUF tensor '%s' has ggml type %u, unknown to this reader", printable(nm, pb), t->type);
        if (t->ne[0] % blck)
            BAD("GGUF tensor '%s': row of %llu is not a multiple of the %s block (%u)", printable(nm, pb), (unsigned long long)t->ne[0], ggml_types[t->type].name, blck);
        /* n_elements and size, each step checked against overflow */
        if (t->ne[0] / blck > UINT64_MAX / bytes) BAD("GGUF tensor '%s' is too large", printable(nm, pb));
        uint64_t n = 1, size = t->ne[0] / blck * bytes;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) {
            if (t->ne[d] && n > UINT64_MAX / t->ne[d]) BAD("GGUF tensor '%s' is too large", printable(nm, pb));
            n *= t->ne[d];
            if (d > 0) {
                if (t->ne[d] && size > UINT64_MAX / t->ne[d]) BAD("GGUF tensor '%s' is too large", printable(nm, pb));
                size *= t->ne[d];
            }
        }
        if (n > (uint64_t)INT64_MAX) BAD("GGUF tensor '%s' is too large", printable(nm, pb));
        t->n_elements = n;
        t->size = size;
        if (t->offset % g->alignment) BAD("GGUF tensor '%s': offset %llu is not a multiple of the alignment %u", printable(nm, pb), (unsigned long long)t->offset, g->alignment);
    }

    /* data section: starts at the next alignment boundary */
    uint64_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    g->data_off = c.pos + pad;
    if (g->data_off > g->size) {
        if (n_tensors) BAD("truncated GGUF: data section missing");
        g->data_off = g->size;
    }
    g->data_size = g->size - g->data_off;
    for (uint64_t i = 0; i < n_tensors; i++) {
        gguf_tensor *t = &g->tens[i];
        if (t->offset > g->data_size || t->size > g->data_size - t->offset)
            BAD("GGUF tensor '%s' (%llu bytes at %llu) runs past the end of the file (data section %llu bytes)", printable(&name_strs[i], pb),
                (unsigned long long)t->size, (unsigned long long)t->offset, (unsigned long long)g->data_size);
        t->data = g->base + g->data_off + t->offset;
        g->t_sorted[i] = t;
    }
    g->n_tensors = (int)n_tensors;
    qsort(g->t_sorted, n_tensors, sizeof *g->t_sorted, cmp_tensor_off);
    for (uint64_t i = 1; i < n_tensors; i++) {
        const gguf_tensor *a = g->t_sorted[i - 1], *b = g->t_sorted[i];
        if (a->offset + a->size > b->offset) BAD("GGUF tensors overlap in the data section (at offset %llu)", (unsigned long long)b->offset);
    }

    /* NUL-terminated copies of keys and names, then the lookup tables */
    uint64_t total = 0;
    for (uint64_t i = 0; i < n_kv; i++) total += key_strs[i].len + 1;
    for (uint64_t i = 0; i < n_tensors; i++) total += name_strs[i].len + 1;
    g->names = malloc(total ? total : 1);
    if (!g->names) NOMEM();
    char *p = g->names;
    for (uint64_t i = 0; i < n_kv; i++) {
        memcpy(p, key_strs[i].s, key_strs[i].len);
        p[key_strs[i].len] = 0;
        g->kvs[i].key = p;
        g->kv_sorted[i] = &g->kvs[i];
        p += key_strs[i].len + 1;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        memcpy(p, name_strs[i].s, name_strs[i].len);
        p[name_strs[i].len] = 0;
        g->tens[i].name = p;
        g->t_sorted[i] = &g->tens[i];
        p += name_strs[i].len + 1;
    }
    qsort(g->kv_sorted, n_kv, sizeof *g->kv_sorted, cmp_kv);
    for (uint64_t i = 1; i < n_kv; i++)
        if (strcmp(g->kv_sorted[i - 1]->key, g->kv_sorted[i]->key) == 0) BAD("GGUF metadata key '%.64s' appears twice", g->kv_sorted[i]->key);
    qsort(g->t_sorted, n_tensors, sizeof *g->t_sorted, cmp_tensor_name);
    for (uint64_t i = 1; i < n_tensors; i++)
        if (strcmp(g->t_sorted[i - 1]->name, g->t_sorted[i]->name) == 0) BAD("GGUF tensor '%.64s' appears twice", g->t_sorted[i]->name);
done:
    free(key_strs);
    free(name_strs);
    return st;
}

void gguf_close(gguf *g) {
    if (!g) return;
    if (g->kvs)
        for (int i = 0; i < g->n_kv; i++) free((void *)g->kvs[i].arr_strs);
    free(g->kvs);
    free(g->kv_sorted);
    free(g->tens);
    free(g->t_sorted);
    free(g->names);
    if (g->mapped) unmap_file(g->base, g->size);
    free(g);
}

static ulm_status open_common(gguf *g, gguf **out, ulm_error *err) {
    ulm_status st = parse(g, err);
    if (st) { gguf_close(g); return st; }
    *out = g;
    return ULM_OK;
}

ulm_status gguf_open_mem(const void *buf, size_t size, gguf **out, ulm_error *err) {
    *out = NULL;
    if (!buf && size) return ulm_set_error(err, ULM_ERR_ARG, "gguf_open_mem: NULL buffer");
    gguf *g = calloc(1, sizeof *g);
    if (!g) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    g->base = buf;
    g->size = size;
    return open_common(g, out, err);
}

ulm_status gguf_open(const char *path, gguf **out, ulm_error *err) {
    *out = NULL;
    const void *p;
    uint64_t size;
    ulm_status st = map_file(path, 24, "GGUF", &p, &size, err);
    if (st) return st;
    gguf *g = calloc(1, sizeof *g);
    if (!g) { unmap_file(p, size); return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); }
    g->base = p;
    g->size = size;
    g->mapped = 1;
    st = open_common(g, out, err);
    if (st) error_prefix_path(err, path);
    return st;
}

/* ---- accessors ---- */
uint32_t gguf_version(const gguf *g) { return g->version; }
uint32_t gguf_alignment(const gguf *g) { return g->alignment; }
const void *gguf_data(const gguf *g, uint64_t *size) {
    if (size) *size = g->data_size;
    return g->base + g->data_off;
}
int gguf_n_kv(const gguf *g) { return g->n_kv; }
const gguf_kv *gguf_kv_at(const gguf *g, int i) { return i >= 0 && i < g->n_kv ? &g->kvs[i] : NULL; }
int gguf_n_tensors(const gguf *g) { return g->n_tensors; }
const gguf_tensor *gguf_tensor_at(const gguf *g, int i) { return i >= 0 && i < g->n_tensors ? &g->tens[i] : NULL; }

const gguf_kv *gguf_find(const gguf *g, const char *key) {
    gguf_kv probe = {.key = key};
    const gguf_kv *pp = &probe;
    const gguf_kv **r = bsearch(&pp, g->kv_sorted, (size_t)g->n_kv, sizeof *g->kv_sorted, cmp_kv);
    return r ? *r : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf *g, const char *name) {
    gguf_tensor probe = {.name = name};
    const gguf_tensor *pp = &probe;
    const gguf_tensor **r = bsearch(&pp, g->t_sorted, (size_t)g->n_tensors, sizeof *g->t_sorted, cmp_tensor_name);
    return r ? *r : NULL;
}

static int is_unsigned(gguf_type t) { return t == GGUF_U8 || t == GGUF_U16 || t == GGUF_U32 || t == GGUF_U64 || t == GGUF_BOOL; }
static int is_signed(gguf_type t) { return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64; }

/* An integer value as (negative?, magnitude-compatible) pieces: returns -1 if kv is not an integer. */
static int int_value(const gguf_kv *kv, int *neg, uint64_t *u, int64_t *i) {
    if (!kv || kv->type == GGUF_BOOL) return -1;
    if (is_unsigned(kv->type)) { *neg = 0; *u = kv->v.u; *i = 0; return 0; }
    if (is_signed(kv->type)) { *neg = kv->v.i < 0; *i = kv->v.i; *u = (uint64_t)kv->v.i; return 0; }
    return -1;
}

int gguf_get_u32(const gguf *g, const char *key, uint32_t *out) {
    int neg; uint64_t u; int64_t i;
    if (int_value(gguf_find(g, key), &neg, &u, &i) || neg || u > UINT32_MAX) return -1;
    *out = (uint32_t)u;
    return 0;
}
int gguf_get_u64(const gguf *g, const char *key, uint64_t *out) {
    int neg; uint64_t u; int64_t i;
    if (int_value(gguf_find(g, key), &neg, &u, &i) || neg) return -1;
    *out = u;
    return 0;
}
int gguf_get_i32(const gguf *g, const char *key, int32_t *out) {
    int neg; uint64_t u; int64_t i;
    if (int_value(gguf_find(g, key), &neg, &u, &i)) return -1;
    if (neg) { if (i < INT32_MIN) return -1; *out = (int32_t)i; }
    else { if (u > INT32_MAX) return -1; *out = (int32_t)u; }
    return 0;
}
int gguf_get_f32(const gguf *g, const char *key, float *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || (kv->type != GGUF_F32 && kv->type != GGUF_F64)) return -1;
    *out = (float)kv->v.f;
    return 0;
}
int gguf_get_bool(const gguf *g, const char *key, int *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || kv->type != GGUF_BOOL) return -1;
    *out = (int)kv->v.u;
    return 0;
}
int gguf_get_str(const gguf *g, const char *key, const char **s, uint64_t *len) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || kv->type != GGUF_STR) return -1;
    *s = kv->str.s;
    if (len) *len = kv->str.len;
    return 0;
}
int gguf_get_cstr(const gguf *g, const char *key, char *buf, size_t cap) {
    const char *s;
    uint64_t n;
    if (gguf_get_str(g, key, &s, &n) || cap == 0) return -1;
    if (n > cap - 1) n = cap - 1;
    memcpy(buf, s, (size_t)n);
    buf[n] = 0;
    return 0;
}
int gguf_get_arr(const gguf *g, const char *key, gguf_type *elem, uint64_t *count) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || kv->type != GGUF_ARR) return -1;
    if (elem) *elem = kv->arr_type;
    if (count) *count = kv->count;
    return 0;
}
const gguf_kv *gguf_find_arr(const gguf *g, const char *key, gguf_type elem) {
    const gguf_kv *kv = gguf_find(g, key);
    return kv && kv->type == GGUF_ARR && kv->arr_type == elem ? kv : NULL;
}

int gguf_arr_str(const gguf_kv *kv, uint64_t i, const char **s, uint64_t *len) {
    if (!kv || kv->type != GGUF_ARR || kv->arr_type != GGUF_STR || i >= kv->count) return -1;
    *s = kv->arr_strs[i].s;
    if (len) *len = kv->arr_strs[i].len;
    return 0;
}

static int arr_elem(const gguf_kv *kv, uint64_t i, gguf_kv *tmp) {
    if (!kv || kv->type != GGUF_ARR || kv->arr_type == GGUF_STR || i >= kv->count) return -1;
    size_t es = scalar_size(kv->arr_type);
    tmp->type = kv->arr_type;
    set_scalar(tmp, kv->arr_type, (const uint8_t *)kv->arr_data + i * es);
    return 0;
}
int gguf_arr_num(const gguf_kv *kv, uint64_t i, double *out) {
    gguf_kv e;
    if (arr_elem(kv, i, &e)) return -1;
    if (is_unsigned(e.type)) *out = (double)e.v.u;
    else if (is_signed(e.type)) *out = (double)e.v.i;
    else *out = e.v.f;
    return 0;
}
int gguf_arr_i64(const gguf_kv *kv, uint64_t i, int64_t *out) {
    gguf_kv e;
    if (arr_elem(kv, i, &e)) return -1;
    if (is_unsigned(e.type)) {
        if (e.v.u > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)e.v.u;
    } else if (is_signed(e.type)) *out = e.v.i;
    else return -1;
    return 0;
}
