/* GGUF reader: a synthetic file from a small writer below, the real stories260K.gguf, every
 * truncation, random flips, and hand-made hostile headers. */
#include "test_util.h"
#include "gguf.h"

/* ---- a minimal GGUF writer (test-only): appends little-endian fields to a buffer ---- */
typedef struct { uint8_t *b; size_t n, cap; } wbuf;
static void put(wbuf *w, const void *p, size_t n) {
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
        assert_non_null(w->b);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void put_u32(wbuf *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(wbuf *w, uint64_t v) { put(w, &v, 8); }
static void put_str(wbuf *w, const char *s) { put_u64(w, strlen(s)); put(w, s, strlen(s)); }
static void put_key(wbuf *w, const char *k, gguf_type t) { put_str(w, k); put_u32(w, t); }
static void pad_to(wbuf *w, size_t align) { while (w->n % align) { uint8_t z = 0; put(w, &z, 1); } }

typedef struct { const char *name; uint32_t n_dims; uint64_t ne[4]; uint32_t type; uint64_t size; } tdesc;

static const tdesc tensors[] = {
    {"token_embd.weight", 2, {4, 3}, GGML_F32, 4 * 3 * 4},
    {"blk.0.attn_q.weight", 2, {64, 2}, GGML_Q8_0, 2 * 2 * 34},
    {"blk.0.ffn_up.weight", 1, {32}, GGML_Q4_0, 18},
    {"output_norm.weight", 1, {8}, GGML_F16, 16},
    {"blk.0.ffn_down.weight", 2, {256, 1}, GGML_Q4_K, 144},
    {"blk.0.bf", 3, {2, 2, 2}, GGML_BF16, 16},
    {"blk.0.q6", 1, {512}, GGML_Q6_K, 2 * 210},
};
#define N_T (sizeof tensors / sizeof tensors[0])

/* Writes a v3 GGUF with every metadata type, alignment 64, and the tensors above; tensor t's
 * bytes are all (t + 1). */
static uint8_t *make_gguf(size_t *size) {
    wbuf w = {0};
    put(&w, "GGUF", 4);
    put_u32(&w, 3);
    put_u64(&w, N_T);
    put_u64(&w, 20);
    put_key(&w, "general.architecture", GGUF_STR); put_str(&w, "llama");
    put_key(&w, "general.alignment", GGUF_U32); put_u32(&w, 64);
    uint8_t u8 = 200; int8_t i8 = -5; uint16_t u16 = 60000; int16_t i16 = -30000;
    put_key(&w, "t.u8", GGUF_U8); put(&w, &u8, 1);
    put_key(&w, "t.i8", GGUF_I8); put(&w, &i8, 1);
    put_key(&w, "t.u16", GGUF_U16); put(&w, &u16, 2);
    put_key(&w, "t.i16", GGUF_I16); put(&w, &i16, 2);
    put_key(&w, "llama.block_count", GGUF_U32); put_u32(&w, 5);
    put_key(&w, "t.i32", GGUF_I32); put_u32(&w, (uint32_t)-7);
    float eps = 1e-5f;
    put_key(&w, "llama.attention.layer_norm_rms_epsilon", GGUF_F32); put(&w, &eps, 4);
    uint8_t tr = 1;
    put_key(&w, "tokenizer.ggml.add_bos_token", GGUF_BOOL); put(&w, &tr, 1);
    put_key(&w, "t.u64", GGUF_U64); put_u64(&w, 1ull << 40);
    put_key(&w, "t.i64", GGUF_I64); put_u64(&w, (uint64_t)-3);
    double f64 = 0.125;
    put_key(&w, "t.f64", GGUF_F64); put(&w, &f64, 8);
    put_key(&w, "tokenizer.ggml.tokens", GGUF_ARR); put_u32(&w, GGUF_STR); put_u64(&w, 4);
    put_str(&w, "<unk>"); put_str(&w, "\xe2\x96\x81hi"); put_str(&w, ""); put_str(&w, "x");
    put_key(&w, "tokenizer.ggml.scores", GGUF_ARR); put_u32(&w, GGUF_F32); put_u64(&w, 3);
    float sc[3] = {0.0f, -1.5f, 2.25f};
    put(&w, sc, sizeof sc);
    put_key(&w, "tokenizer.ggml.token_type", GGUF_ARR); put_u32(&w, GGUF_I32); put_u64(&w, 2);
    put_u32(&w, 2); put_u32(&w, (uint32_t)-1);
    put_key(&w, "t.empty", GGUF_ARR); put_u32(&w, GGUF_U8); put_u64(&w, 0);
    put_key(&w, "t.bools", GGUF_ARR); put_u32(&w, GGUF_BOOL); put_u64(&w, 2);
    uint8_t bb[2] = {0, 1};
    put(&w, bb, 2);
    put_key(&w, "t.emptystrs", GGUF_ARR); put_u32(&w, GGUF_STR); put_u64(&w, 0);
    put_key(&w, "t.str", GGUF_STR); put_str(&w, "");
    uint64_t off = 0;
    for (size_t t = 0; t < N_T; t++) {
        put_str(&w, tensors[t].name);
        put_u32(&w, tensors[t].n_dims);
        for (uint32_t d = 0; d < tensors[t].n_dims; d++) put_u64(&w, tensors[t].ne[d]);
        put_u32(&w, tensors[t].type);
        put_u64(&w, off);
        off += (tensors[t].size + 63) / 64 * 64;
    }
    pad_to(&w, 64);
    for (size_t t = 0; t < N_T; t++) {
        for (uint64_t k = 0; k < tensors[t].size; k++) { uint8_t v = (uint8_t)(t + 1); put(&w, &v, 1); }
        if (t + 1 < N_T) pad_to(&w, 64);
    }
    *size = w.n;
    return w.b;
}

static void check_synthetic(const gguf *g) {
    assert_int_equal(gguf_version(g), 3);
    assert_int_equal(gguf_alignment(g), 64);
    assert_int_equal(gguf_n_kv(g), 20);
    char arch[16];
    assert_int_equal(gguf_get_cstr(g, "general.architecture", arch, sizeof arch), 0);
    assert_string_equal(arch, "llama");
    uint32_t u;
    int32_t i;
    uint64_t u64;
    float f;
    int b;
    assert_int_equal(gguf_get_u32(g, "llama.block_count", &u), 0);
    assert_int_equal(u, 5);
    assert_int_equal(gguf_get_i32(g, "llama.block_count", &i), 0); /* integer kinds convert */
    assert_int_equal(i, 5);
    assert_int_equal(gguf_get_u32(g, "t.u8", &u), 0);
    assert_int_equal(u, 200);
    assert_int_equal(gguf_get_i32(g, "t.i8", &i), 0);
    assert_int_equal(i, -5);
    assert_int_equal(gguf_get_u32(g, "t.i8", &u), -1); /* negative into unsigned: refused */
    assert_int_equal(gguf_get_u32(g, "t.u16", &u), 0);
    assert_int_equal(u, 60000);
    assert_int_equal(gguf_get_i32(g, "t.i16", &i), 0);
    assert_int_equal(i, -30000);
    assert_int_equal(gguf_get_i32(g, "t.i32", &i), 0);
    assert_int_equal(i, -7);
    assert_int_equal(gguf_get_u32(g, "t.u64", &u), -1); /* does not fit */
    assert_int_equal(gguf_get_u64(g, "t.u64", &u64), 0);
    assert_true(u64 == 1ull << 40);
    assert_int_equal(gguf_get_i32(g, "t.i64", &i), 0);
    assert_int_equal(i, -3);
    assert_int_equal(gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f), 0);
    assert_true(f == 1e-5f);
    assert_int_equal(gguf_get_f32(g, "t.f64", &f), 0);
    assert_true(f == 0.125f);
    assert_int_equal(gguf_get_f32(g, "t.u8", &f), -1);
    assert_int_equal(gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(gguf_get_bool(g, "t.u8", &b), -1);
    assert_int_equal(gguf_get_u32(g, "missing", &u), -1);
    const char *s;
    uint64_t n;
    assert_int_equal(gguf_get_str(g, "t.str", &s, &n), 0);
    assert_int_equal(n, 0);

    gguf_type et;
    assert_int_equal(gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n), 0);
    assert_int_equal(et, GGUF_STR);
    assert_int_equal(n, 4);
    const gguf_kv *tok = gguf_find_arr(g, "tokenizer.ggml.tokens", GGUF_STR);
    assert_non_null(tok);
    assert_int_equal(gguf_arr_str(tok, 1, &s, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(s, "\xe2\x96\x81hi", 5);
    assert_int_equal(gguf_arr_str(tok, 2, &s, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(gguf_arr_str(tok, 4, &s, &n), -1);
    double d;
    assert_int_equal(gguf_arr_num(tok, 0, &d), -1);
    assert_null(gguf_find_arr(g, "tokenizer.ggml.tokens", GGUF_F32));
    const gguf_kv *sc = gguf_find_arr(g, "tokenizer.ggml.scores", GGUF_F32);
    assert_non_null(sc);
    assert_int_equal(gguf_arr_num(sc, 2, &d), 0);
    assert_true(d == 2.25);
    assert_int_equal(gguf_arr_num(sc, 3, &d), -1);
    int64_t v;
    assert_int_equal(gguf_arr_i64(sc, 0, &v), -1); /* floats are not integers */
    const gguf_kv *tt = gguf_find_arr(g, "tokenizer.ggml.token_type", GGUF_I32);
    assert_int_equal(gguf_arr_i64(tt, 1, &v), 0);
    assert_int_equal(v, -1);
    assert_int_equal(gguf_arr_num(gguf_find(g, "t.bools"), 1, &d), 0);
    assert_true(d == 1.0);
    assert_int_equal(gguf_get_arr(g, "t.empty", &et, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(gguf_get_arr(g, "t.emptystrs", &et, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(gguf_get_arr(g, "t.str", &et, &n), -1);
    assert_string_equal(gguf_kv_at(g, 0)->key, "general.architecture"); /* file order */

    assert_int_equal(gguf_n_tensors(g), N_T);
    uint64_t dsize;
    const uint8_t *data = gguf_data(g, &dsize);
    for (size_t t = 0; t < N_T; t++) {
        const gguf_tensor *gt = gguf_find_tensor(g, tensors[t].name);
        assert_non_null(gt);
        assert_ptr_equal(gt, gguf_tensor_at(g, (int)t));
        assert_string_equal(gt->name, tensors[t].name);
        assert_int_equal(gt->type, tensors[t].type);
        assert_int_equal(gt->n_dims, tensors[t].n_dims);
        uint64_t nel = 1;
        for (uint32_t k = 0; k < tensors[t].n_dims; k++) {
            assert_int_equal(gt->ne[k], tensors[t].ne[k]);
            nel *= tensors[t].ne[k];
        }
        for (uint32_t k = tensors[t].n_dims; k < GGUF_MAX_DIMS; k++) assert_int_equal(gt->ne[k], 1);
        assert_int_equal(gt->n_elements, nel);
        assert_int_equal(gt->size, tensors[t].size);
        assert_ptr_equal(gt->data, data + gt->offset);
        assert_true(gt->offset + gt->size <= dsize);
        const uint8_t *p = gt->data;
        assert_int_equal(p[0], t + 1);
        assert_int_equal(p[gt->size - 1], t + 1);
    }
    assert_null(gguf_find_tensor(g, "nope"));
    assert_null(gguf_tensor_at(g, (int)N_T));
}

static void test_synthetic(void **state) {
    size_t n;
    uint8_t *b = make_gguf(&n);
    gguf *g;
    ulm_error err;
    ulm_status st = gguf_open_mem(b, n, &g, &err);
    if (st) print_message("%s\n", err.msg);
    assert_int_equal(st, ULM_OK);
    check_synthetic(g);
    gguf_close(g);
    /* and through a file (mmap) */
    char path[256];
    test_tmp_path(path, sizeof path, "s.gguf");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    fclose(fp);
    assert_int_equal(gguf_open(path, &g, &err), ULM_OK);
    check_synthetic(g);
    gguf_close(g);
    remove(path);
    free(b);
    assert_int_equal(gguf_open("/nonexistent/m.gguf", &g, &err), ULM_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/m.gguf"));
}

static void test_type_table(void **state) {
    uint32_t blck, bytes;
    assert_int_equal(gguf_ggml_block(GGML_Q8_0, &blck, &bytes), 0);
    assert_int_equal(blck, 32);
    assert_int_equal(bytes, 34);
    assert_int_equal(gguf_ggml_block(GGML_Q6_K, &blck, &bytes), 0);
    assert_int_equal(blck * 1000 + bytes, 256210);
    assert_int_equal(gguf_ggml_block(GGML_BF16, &blck, &bytes), 0);
    assert_int_equal(blck * 1000 + bytes, 1002);
    assert_int_equal(gguf_ggml_block(4, &blck, &bytes), -1); /* removed Q4_2 */
    assert_int_equal(gguf_ggml_block(1000, &blck, &bytes), -1);
    assert_string_equal(gguf_ggml_type_name(GGML_Q4_K), "Q4_K");
    assert_null(gguf_ggml_type_name(5));
    assert_string_equal(gguf_type_name(GGUF_STR), "string");
}

static void test_every_truncation(void **state) {
    size_t n;
    uint8_t *b = make_gguf(&n);
    for (size_t len = 0; len < n; len++) {
        uint8_t *cp = malloc(len ? len : 1);
        memcpy(cp, b, len);
        gguf *g = (gguf *)1;
        ulm_error err = {0};
        assert_int_not_equal(gguf_open_mem(cp, len, &g, &err), ULM_OK);
        assert_null(g);
        assert_true(strlen(err.msg) > 0);
        assert_null(strchr(err.msg, '\n'));
        free(cp);
    }
    free(b);
}

static void touch_all(const gguf *g, uint64_t *acc) {
    for (int i = 0; i < gguf_n_kv(g); i++) {
        const gguf_kv *kv = gguf_kv_at(g, i);
        *acc += strlen(kv->key);
        if (kv->type == GGUF_STR && kv->str.len) *acc += (uint8_t)kv->str.s[kv->str.len - 1];
        if (kv->type == GGUF_ARR) {
            for (uint64_t j = 0; j < kv->count; j++) {
                const char *s;
                uint64_t len;
                double d;
                if (gguf_arr_str(kv, j, &s, &len) == 0 && len) *acc += (uint8_t)s[len - 1];
                else if (gguf_arr_num(kv, j, &d) == 0) *acc += d > 0;
            }
        }
        assert_ptr_equal(gguf_find(g, kv->key), kv);
    }
    for (int i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (t->size) *acc += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->size - 1];
        assert_ptr_equal(gguf_find_tensor(g, t->name), t);
    }
}

static void test_random_flips(void **state) {
    size_t n;
    uint8_t *b = make_gguf(&n);
    uint64_t rng = 0x9e3779b97f4a7c15ull, acc = 0;
    size_t header = n - 1200; /* metadata + tensor infos; the data section is the last ~1.2 KB */
    int rejected = 0;
    for (int it = 0; it < 5000; it++) {
        uint8_t *cp = malloc(n);
        memcpy(cp, b, n);
        for (int k = 0; k <= it % 4; k++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            size_t pos = (it % 3) ? (rng >> 8) % header : (rng >> 8) % n;
            cp[pos] ^= (uint8_t)(1 + (rng & 0xfe));
        }
        gguf *g = NULL;
        ulm_error err;
        if (gguf_open_mem(cp, n, &g, &err) == ULM_OK) {
            touch_all(g, &acc);
            gguf_close(g);
        } else {
            assert_null(g);
            rejected++;
        }
        free(cp);
    }
    assert_true(rejected > 500);
    free(b);
}

static ulm_status open_buf(wbuf *w, ulm_error *err) {
    uint8_t *cp = malloc(w->n);
    memcpy(cp, w->b, w->n);
    gguf *g = NULL;
    ulm_status st = gguf_open_mem(cp, w->n, &g, err);
    if (getenv("GGUF_TEST_VERBOSE")) print_message("%s\n", st ? err->msg : "ok");
    gguf_close(g);
    free(cp);
    free(w->b);
    memset(w, 0, sizeof *w);
    return st;
}

static void header(wbuf *w, uint32_t version, uint64_t nt, uint64_t nkv) {
    put(w, "GGUF", 4);
    put_u32(w, version);
    put_u64(w, nt);
    put_u64(w, nkv);
}

/* One tensor info plus its (zero) data, alignment 32. */
static void one_tensor(wbuf *w, const char *name, uint32_t type, uint64_t ne0, uint64_t ne1, uint64_t off, size_t data) {
    put_str(w, name);
    put_u32(w, 2);
    put_u64(w, ne0);
    put_u64(w, ne1);
    put_u32(w, type);
    put_u64(w, off);
}
static void data_bytes(wbuf *w, size_t n) {
    pad_to(w, 32);
    for (size_t i = 0; i < n; i++) { uint8_t z = 0; put(w, &z, 1); }
}

static void test_hostile(void **state) {
    wbuf w = {0};
    ulm_error err;
    /* a valid minimal file first, so the cases below fail for their one reason */
    header(&w, 3, 1, 0);
    one_tensor(&w, "a", GGML_F32, 4, 2, 0, 0);
    data_bytes(&w, 32);
    assert_int_equal(open_buf(&w, &err), ULM_OK);

    header(&w, 1, 0, 0);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_UNSUPPORTED);
    header(&w, 4, 0, 0);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_UNSUPPORTED);
    header(&w, 3u << 24, 0, 0); /* a big-endian v3 file read little-endian */
    assert_int_equal(open_buf(&w, &err), ULM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "big-endian"));
    put(&w, "GGML", 4); put_u32(&w, 3); put_u64(&w, 0); put_u64(&w, 0);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    /* counts far beyond the file */
    header(&w, 3, 0, UINT64_MAX);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 1ull << 40, 0);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    /* string length beyond the file, and one that wraps the cursor */
    header(&w, 3, 0, 1);
    put_u64(&w, 1ull << 62); put(&w, "abcdefgh", 8);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 0, 1);
    put_u64(&w, UINT64_MAX); put(&w, "abcdefgh", 8);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    /* array counts: numeric elements and strings beyond the file */
    header(&w, 3, 0, 1);
    put_key(&w, "x", GGUF_ARR); put_u32(&w, GGUF_U64); put_u64(&w, (1ull << 61) + 1); put_u64(&w, 0);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 0, 1);
    put_key(&w, "x", GGUF_ARR); put_u32(&w, GGUF_STR); put_u64(&w, 1ull << 60); put_str(&w, "a");
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    /* nested array, unknown value type, unknown element type */
    header(&w, 3, 0, 1);
    put_key(&w, "x", GGUF_ARR); put_u32(&w, GGUF_ARR); put_u64(&w, 1); put_u32(&w, GGUF_U8); put_u64(&w, 0);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "nested"));
    header(&w, 3, 0, 1);
    put_key(&w, "x", 13); put_u32(&w, 0);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 0, 1);
    put_key(&w, "x", GGUF_ARR); put_u32(&w, 99); put_u64(&w, 0);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    /* duplicate key, empty key, key with NUL, alignment not a power of two / wrong type */
    header(&w, 3, 0, 2);
    put_key(&w, "k", GGUF_U8); put(&w, "a", 1);
    put_key(&w, "k", GGUF_U8); put(&w, "b", 1);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "twice"));
    header(&w, 3, 0, 1);
    put_u64(&w, 0); put_u32(&w, GGUF_U8); put(&w, "a", 1);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 0, 1);
    put_u64(&w, 3); put(&w, "a\0b", 3); put_u32(&w, GGUF_U8); put(&w, "a", 1);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 0, 1);
    put_key(&w, "general.alignment", GGUF_U32); put_u32(&w, 48);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 0, 1);
    put_key(&w, "general.alignment", GGUF_U64); put_u64(&w, 32);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    /* tensors: too many dims, unknown type, row not a block multiple, misaligned offset,
     * past the end, overflowing shape, overlap, duplicate name */
    header(&w, 3, 1, 0);
    put_str(&w, "a"); put_u32(&w, 5); for (int d = 0; d < 5; d++) put_u64(&w, 1);
    put_u32(&w, GGML_F32); put_u64(&w, 0); data_bytes(&w, 32);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 1, 0);
    one_tensor(&w, "a", 5, 4, 2, 0, 0); data_bytes(&w, 32);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_UNSUPPORTED);
    header(&w, 3, 1, 0);
    one_tensor(&w, "a", GGML_Q8_0, 16, 1, 0, 0); data_bytes(&w, 64);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 1, 0);
    one_tensor(&w, "a", GGML_F32, 4, 2, 8, 0); data_bytes(&w, 64);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 1, 0);
    one_tensor(&w, "a", GGML_F32, 4, 2, 0, 0); data_bytes(&w, 31);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 1, 0);
    one_tensor(&w, "a", GGML_F32, 1ull << 40, 1ull << 40, 0, 0); data_bytes(&w, 32);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 1, 0);
    one_tensor(&w, "a", GGML_F64, 1ull << 62, 1, 0, 0); data_bytes(&w, 32);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 1, 0);
    one_tensor(&w, "a", GGML_F32, 4, UINT64_MAX, 0, 0); data_bytes(&w, 32);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    header(&w, 3, 2, 0);
    one_tensor(&w, "a", GGML_F32, 16, 1, 0, 0);
    one_tensor(&w, "b", GGML_F32, 16, 1, 32, 0); data_bytes(&w, 128);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "overlap"));
    header(&w, 3, 2, 0);
    one_tensor(&w, "a", GGML_F32, 8, 1, 0, 0);
    one_tensor(&w, "a", GGML_F32, 8, 1, 32, 0); data_bytes(&w, 64);
    assert_int_equal(open_buf(&w, &err), ULM_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "twice"));
    /* the same two tensors without overlap are fine (offsets out of order too) */
    header(&w, 3, 2, 0);
    one_tensor(&w, "a", GGML_F32, 8, 1, 32, 0);
    one_tensor(&w, "b", GGML_F32, 8, 1, 0, 0); data_bytes(&w, 64);
    assert_int_equal(open_buf(&w, &err), ULM_OK);
}

static void test_stories260k(void **state) {
    char path[512];
    SKIP_WITHOUT_SHARED(path, "models/stories260K/stories260K.gguf");
    gguf *g;
    ulm_error err;
    ulm_status st = gguf_open(path, &g, &err);
    if (st) print_message("%s\n", err.msg);
    assert_int_equal(st, ULM_OK);
    assert_int_equal(gguf_n_tensors(g), 48);
    char arch[32];
    assert_int_equal(gguf_get_cstr(g, "general.architecture", arch, sizeof arch), 0);
    assert_string_equal(arch, "llama");
    uint32_t u;
    assert_int_equal(gguf_get_u32(g, "llama.embedding_length", &u), 0);
    assert_int_equal(u, 64);
    assert_int_equal(gguf_get_u32(g, "llama.block_count", &u), 0);
    assert_int_equal(u, 5);
    assert_int_equal(gguf_get_u32(g, "llama.attention.head_count_kv", &u), 0);
    assert_int_equal(u, 4);
    const gguf_kv *tok = gguf_find_arr(g, "tokenizer.ggml.tokens", GGUF_STR);
    assert_non_null(tok);
    assert_int_equal(tok->count, 512);
    const gguf_kv *sc = gguf_find_arr(g, "tokenizer.ggml.scores", GGUF_F32);
    assert_non_null(sc);
    assert_int_equal(sc->count, 512);
    const char *s;
    uint64_t n;
    assert_int_equal(gguf_get_str(g, "tokenizer.ggml.model", &s, &n), 0);
    assert_true(n == 5 && memcmp(s, "llama", 5) == 0);
    const gguf_tensor *t = gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->type, GGML_F32);
    assert_int_equal(t->ne[0], 64);  /* innermost: dim */
    assert_int_equal(t->ne[1], 512); /* vocab */
    assert_int_equal(t->size, 64 * 512 * 4);
    /* the embedding row of token 0 matches the llama2.c checkpoint (7-int header, then it) */
    char bin[512];
    if (test_shared_path(bin, sizeof bin, "models/stories260K/stories260K.bin") == 0) {
        FILE *fp = fopen(bin, "rb");
        float row[64];
        assert_int_equal(fseek(fp, 7 * 4, SEEK_SET), 0);
        assert_int_equal(fread(row, 4, 64, fp), 64);
        fclose(fp);
        assert_memory_equal(row, t->data, sizeof row);
    }
    uint64_t acc = 0;
    touch_all(g, &acc);
    gguf_close(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic),
        cmocka_unit_test(test_type_table),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_random_flips),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_stories260k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
