/* safetensors reader: the header is parsed with formats/json.c, then every tensor entry is
 * checked against the data buffer before a pointer into the mapping is handed out. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mapped_file.h"
#include "safetensors.h"
#include "ulm_file.h"

struct sft_file {
    const uint8_t *base;
    uint64_t size;
    int mapped;
    json_doc *header;
    const json_value *meta;
    int n;
    sft_tensor *tens;
    const sft_tensor **sorted; /* by name */
};

static const struct { const char *name; size_t size; } dtypes[] = {
    [SFT_F32] = {"F32", 4},   [SFT_F16] = {"F16", 2},   [SFT_BF16] = {"BF16", 2},
    [SFT_F64] = {"F64", 8},   [SFT_I64] = {"I64", 8},   [SFT_I32] = {"I32", 4},
    [SFT_I16] = {"I16", 2},   [SFT_I8] = {"I8", 1},     [SFT_U64] = {"U64", 8},
    [SFT_U32] = {"U32", 4},   [SFT_U16] = {"U16", 2},   [SFT_U8] = {"U8", 1},
    [SFT_BOOL] = {"BOOL", 1}, [SFT_F8_E4M3] = {"F8_E4M3", 1}, [SFT_F8_E5M2] = {"F8_E5M2", 1},
    [SFT_UNKNOWN] = {"unknown", 0},
};

const char *sft_dtype_name(sft_dtype dt) { return (unsigned)dt <= SFT_UNKNOWN ? dtypes[dt].name : "?"; }
size_t sft_dtype_size(sft_dtype dt) { return (unsigned)dt <= SFT_UNKNOWN ? dtypes[dt].size : 0; }
int sft_dtype_supported(sft_dtype dt) { return dt == SFT_F32 || dt == SFT_F16 || dt == SFT_BF16; }

static sft_dtype dtype_from(const char *s) {
    for (int i = 0; i < SFT_UNKNOWN; i++)
        if (strcmp(s, dtypes[i].name) == 0) return (sft_dtype)i;
    return SFT_UNKNOWN;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const sft_tensor *const *)a)->name, (*(const sft_tensor *const *)b)->name);
}
static int cmp_begin(const void *a, const void *b) {
    const sft_tensor *x = *(const sft_tensor *const *)a, *y = *(const sft_tensor *const *)b;
    return (x->data > y->data) - (x->data < y->data);
}

#define BAD(...) do { st = ulm_set_error(err, ULM_ERR_FORMAT, __VA_ARGS__); goto done; } while (0)

static ulm_status parse(sft_file *f, ulm_error *err) {
    ulm_status st = ULM_OK;
    uint64_t hlen;
    if (f->size < 8) return ulm_set_error(err, ULM_ERR_FORMAT, "truncated safetensors file (%llu bytes)", (unsigned long long)f->size);
    memcpy(&hlen, f->base, 8);
    if (hlen > f->size - 8) return ulm_set_error(err, ULM_ERR_FORMAT, "safetensors header length %llu exceeds the file", (unsigned long long)hlen);
    if (hlen > SFT_MAX_HEADER) return ulm_set_error(err, ULM_ERR_FORMAT, "safetensors header of %llu bytes is too large", (unsigned long long)hlen);
    if (hlen < 2 || f->base[8] != '{') return ulm_set_error(err, ULM_ERR_FORMAT, "safetensors header is not a JSON object");
    ulm_error jerr;
    st = json_parse((const char *)f->base + 8, (size_t)hlen, &f->header, &jerr);
    if (st) return ulm_set_error(err, st, "safetensors header: %s", jerr.msg);
    const json_value *root = json_root(f->header);
    const uint8_t *data = f->base + 8 + hlen;
    uint64_t dsize = f->size - 8 - hlen;
    size_t members = json_len(root);
    f->tens = calloc(members ? members : 1, sizeof *f->tens);
    f->sorted = calloc(members ? members : 1, sizeof *f->sorted);
    if (!f->tens || !f->sorted) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory reading safetensors");
    for (size_t m = 0; m < members; m++) {
        size_t klen;
        const char *name = json_obj_key(root, m, &klen);
        const json_value *v = json_obj_val(root, m);
        if (strcmp(name, "__metadata__") == 0) {
            if (!json_is_obj(v)) BAD("safetensors __metadata__ is not an object");
            for (size_t i = 0; i < json_len(v); i++)
                if (!json_is_str(json_obj_val(v, i))) BAD("safetensors __metadata__ values must be strings");
            f->meta = v;
            continue;
        }
        if (klen == 0 || strlen(name) != klen) BAD("safetensors tensor name %zu is empty or contains NUL", m);
        if (!json_is_obj(v)) BAD("safetensors tensor '%.64s': entry is not an object", name);
        sft_tensor *t = &f->tens[f->n];
        t->name = name;
        const char *dt;
        if (json_get_str(v, "dtype", &dt, NULL)) BAD("safetensors tensor '%.64s': no dtype", name);
        t->dtype = dtype_from(dt);
        t->dtype_name = dt;
        const json_value *shape = json_get(v, "shape"), *offs = json_get(v, "data_offsets");
        if (!json_is_arr(shape)) BAD("safetensors tensor '%.64s': no shape", name);
        if (json_len(shape) > SFT_MAX_DIMS) BAD("safetensors tensor '%.64s' has %zu dimensions (at most %d)", name, json_len(shape), SFT_MAX_DIMS);
        t->n_dims = (uint32_t)json_len(shape);
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            int64_t x;
            if (json_int(json_at(shape, d), &x) || x < 0) BAD("safetensors tensor '%.64s': shape must be non-negative integers", name);
            t->shape[d] = (uint64_t)x;
            if (x && n > UINT64_MAX / (uint64_t)x) BAD("safetensors tensor '%.64s' is too large", name);
            n *= (uint64_t)x;
        }
        t->n_elements = n;
        int64_t b, e;
        if (!json_is_arr(offs) || json_len(offs) != 2 || json_int(json_at(offs, 0), &b) || json_int(json_at(offs, 1), &e))
            BAD("safetensors tensor '%.64s': data_offsets must be [begin, end]", name);
        if (b < 0 || e < b || (uint64_t)e > dsize)
            BAD("safetensors tensor '%.64s': bad data_offsets [%lld, %lld] (data is %llu bytes)", name, (long long)b, (long long)e, (unsigned long long)dsize);
        t->size = (uint64_t)(e - b);
        size_t es = sft_dtype_size(t->dtype);
        if (es && n > UINT64_MAX / es) BAD("safetensors tensor '%.64s' is too large", name);
        if (es && n * es != t->size)
            BAD("safetensors tensor '%.64s': %llu bytes, but %s of %llu elements needs %llu", name, (unsigned long long)t->size, dt,
                (unsigned long long)n, (unsigned long long)(n * es));
        t->data = data + b;
        f->sorted[f->n] = t;
        f->n++;
    }
    qsort(f->sorted, (size_t)f->n, sizeof *f->sorted, cmp_begin);
    for (int i = 1; i < f->n; i++) {
        const sft_tensor *a = f->sorted[i - 1], *b = f->sorted[i];
        if ((const uint8_t *)a->data + a->size > (const uint8_t *)b->data)
            BAD("safetensors tensors '%.64s' and '%.64s' overlap", a->name, b->name);
    }
    qsort(f->sorted, (size_t)f->n, sizeof *f->sorted, cmp_name);
    /* json keeps duplicate keys as members: a repeated tensor name is an error here */
    for (int i = 1; i < f->n; i++)
        if (strcmp(f->sorted[i - 1]->name, f->sorted[i]->name) == 0) BAD("safetensors tensor '%.64s' appears twice", f->sorted[i]->name);
done:
    return st;
}

void sft_close(sft_file *f) {
    if (!f) return;
    json_free(f->header);
    free(f->tens);
    free(f->sorted);
    if (f->mapped) unmap_file(f->base, f->size);
    free(f);
}

static ulm_status open_common(sft_file *f, sft_file **out, ulm_error *err) {
    ulm_status st = parse(f, err);
    if (st) { sft_close(f); return st; }
    *out = f;
    return ULM_OK;
}

ulm_status sft_open_mem(const void *buf, size_t size, sft_file **out, ulm_error *err) {
    *out = NULL;
    if (!buf && size) return ulm_set_error(err, ULM_ERR_ARG, "sft_open_mem: NULL buffer");
    sft_file *f = calloc(1, sizeof *f);
    if (!f) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    f->base = buf;
    f->size = size;
    return open_common(f, out, err);
}

ulm_status sft_open(const char *path, sft_file **out, ulm_error *err) {
    *out = NULL;
    const void *p;
    uint64_t size;
    ulm_status st = map_file(path, 8, "safetensors", &p, &size, err);
    if (st) return st;
    sft_file *f = calloc(1, sizeof *f);
    if (!f) { unmap_file(p, size); return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); }
    f->base = p;
    f->size = size;
    f->mapped = 1;
    st = open_common(f, out, err);
    if (st) error_prefix_path(err, path);
    return st;
}

int sft_n_tensors(const sft_file *f) { return f->n; }
const sft_tensor *sft_tensor_at(const sft_file *f, int i) { return i >= 0 && i < f->n ? &f->tens[i] : NULL; }
const json_value *sft_metadata(const sft_file *f) { return f->meta; }

static const sft_tensor *find_sorted(const sft_tensor *const *sorted, int n, const char *name) {
    sft_tensor probe = {.name = name};
    const sft_tensor *pp = &probe;
    const sft_tensor *const *r = bsearch(&pp, sorted, (size_t)n, sizeof *sorted, cmp_name);
    return r ? *r : NULL;
}
const sft_tensor *sft_find(const sft_file *f, const char *name) { return find_sorted(f->sorted, f->n, name); }

/* ---- a folder of shards ---- */
struct sft_model {
    int n_shards, n;
    sft_file **shards;
    const sft_tensor **all;    /* shard by shard */
    const sft_tensor **sorted; /* by name */
};

void sft_model_close(sft_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_shards; i++) sft_close(m->shards[i]);
    free(m->shards);
    free(m->all);
    free(m->sorted);
    free(m);
}

static int shard_name_ok(const char *s, size_t len) {
    return len > 0 && len < 256 && strlen(s) == len && !strchr(s, '/') && s[0] != '.';
}

ulm_status sft_model_open(const char *dir, sft_model **out, ulm_error *err) {
    *out = NULL;
    ulm_status st = ULM_OK;
    char path[4096];
    json_doc *index = NULL;
    sft_model *m = calloc(1, sizeof *m);
    if (!m) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    const char **names = NULL; /* distinct shard file names, in order of first appearance */
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (access(path, F_OK) == 0) {
        if ((st = json_parse_file(path, &index, err))) goto done;
        const json_value *wm = json_get(json_root(index), "weight_map");
        if (!json_is_obj(wm) || json_len(wm) == 0) { st = ulm_set_error(err, ULM_ERR_FORMAT, "%s: no weight_map", path); goto done; }
        names = calloc(json_len(wm), sizeof *names);
        m->shards = calloc(json_len(wm), sizeof *m->shards);
        if (!names || !m->shards) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
        for (size_t i = 0; i < json_len(wm); i++) {
            size_t len;
            const char *s = json_str(json_obj_val(wm, i), &len);
            if (!s || !shard_name_ok(s, len)) {
                st = ulm_set_error(err, ULM_ERR_FORMAT, "%s: weight_map entry %zu is not a plain shard file name", path, i);
                goto done;
            }
            int k;
            for (k = 0; k < m->n_shards && strcmp(names[k], s) != 0; k++) {}
            if (k == m->n_shards) names[m->n_shards++] = s;
        }
    } else {
        names = calloc(1, sizeof *names);
        m->shards = calloc(1, sizeof *m->shards);
        if (!names || !m->shards) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
        names[0] = "model.safetensors";
        m->n_shards = 1;
    }
    size_t total = 0;
    for (int k = 0; k < m->n_shards; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        if ((st = sft_open(path, &m->shards[k], err))) {
            for (int j = k; j < m->n_shards; j++) m->shards[j] = NULL;
            goto done;
        }
        total += (size_t)m->shards[k]->n;
    }
    m->all = calloc(total ? total : 1, sizeof *m->all);
    m->sorted = calloc(total ? total : 1, sizeof *m->sorted);
    if (!m->all || !m->sorted) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
    for (int k = 0; k < m->n_shards; k++)
        for (int i = 0; i < m->shards[k]->n; i++) {
            m->shards[k]->tens[i].shard = k;
            m->all[m->n] = m->sorted[m->n] = &m->shards[k]->tens[i];
            m->n++;
        }
    qsort(m->sorted, (size_t)m->n, sizeof *m->sorted, cmp_name);
    for (int i = 1; i < m->n; i++)
        if (strcmp(m->sorted[i - 1]->name, m->sorted[i]->name) == 0) {
            st = ulm_set_error(err, ULM_ERR_FORMAT, "%s: tensor '%.64s' appears in two shards", dir, m->sorted[i]->name);
            goto done;
        }
    if (index) { /* every weight_map entry is where the index says */
        const json_value *wm = json_get(json_root(index), "weight_map");
        for (size_t i = 0; i < json_len(wm); i++) {
            const char *tn = json_obj_key(wm, i, NULL), *sn = json_str(json_obj_val(wm, i), NULL);
            const sft_tensor *t = find_sorted(m->sorted, m->n, tn);
            if (!t || strcmp(names[t->shard], sn) != 0) {
                st = ulm_set_error(err, ULM_ERR_FORMAT, "%s: weight_map says tensor '%.64s' is in %.64s, but it is not there", dir, tn, sn);
                goto done;
            }
        }
    }
done:
    free(names); /* pointed into index, freed next */
    json_free(index);
    if (st) { sft_model_close(m); return st; }
    *out = m;
    return ULM_OK;
}

int sft_model_n_tensors(const sft_model *m) { return m->n; }
int sft_model_n_shards(const sft_model *m) { return m->n_shards; }
const sft_tensor *sft_model_tensor_at(const sft_model *m, int i) { return i >= 0 && i < m->n ? m->all[i] : NULL; }
const sft_tensor *sft_model_find(const sft_model *m, const char *name) { return find_sorted(m->sorted, m->n, name); }

/* ---- config.json ---- */
const json_value *hf_config_get(const json_value *cfg, const char *key) {
    const json_value *v = json_get(cfg, key);
    return v ? v : json_get(json_get(cfg, "text_config"), key);
}
int hf_config_int(const json_value *cfg, const char *key, int64_t *out) { return json_int(hf_config_get(cfg, key), out); }
int hf_config_bool(const json_value *cfg, const char *key, int *out) { return json_bool(hf_config_get(cfg, key), out); }
int hf_config_num(const json_value *cfg, const char *key, double *out) {
    const json_value *v = hf_config_get(cfg, key);
    if (!json_is_num(v)) return -1;
    *out = json_num(v);
    return 0;
}
int hf_config_str(const json_value *cfg, const char *key, const char **s, size_t *len) {
    const char *r = json_str(hf_config_get(cfg, key), len);
    if (!r) return -1;
    *s = r;
    return 0;
}
