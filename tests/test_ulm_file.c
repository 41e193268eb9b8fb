/* .ulm reader/writer: round trip, every truncation, random byte flips, SHA-256 checks. */
#include "test_util.h"
#include "sha256.h"
#include "ulm_file.h"

static void write_small(const char *path) {
    ulmw *w = ulmw_new();
    assert_non_null(w);
    float a[2 * 32];
    for (int i = 0; i < 64; i++) a[i] = (float)i * 0.25f - 3.0f;
    block_q8 q[2];
    ulm_quantize_row(ULM_DT_Q8, a, q, 64);
    const char *toks[] = {"<unk>", "\xe2\x96\x81hello", "", "world"};
    int32_t merges[4] = {1, 3, 3, 1};
    assert_int_equal(ulmw_set_str(w, "general.architecture", "llama", 5), 0);
    assert_int_equal(ulmw_set_u32(w, "model.dim", 64), 0);
    assert_int_equal(ulmw_set_f32(w, "model.norm_eps", 1e-5f), 0);
    assert_int_equal(ulmw_set_i32(w, "tokenizer.bos_id", -1), 0);
    assert_int_equal(ulmw_set_bool(w, "tokenizer.add_bos", 1), 0);
    assert_int_equal(ulmw_set_strarr(w, "tokenizer.tokens", toks, NULL, 4), 0);
    assert_int_equal(ulmw_set_arr(w, "tokenizer.merges", ULMF_I32, merges, 4), 0);
    uint64_t s1[2] = {2, 32}, s2[1] = {64};
    assert_int_equal(ulmw_add_tensor(w, "blk.0.w", ULM_DT_F32, 2, s1, a, 0), 0);
    assert_int_equal(ulmw_add_tensor(w, "q", ULM_DT_Q8, 1, s2, q, 0), 0);
    ulm_error err;
    assert_int_equal(ulmw_write(w, path, &err), ULM_OK);
    ulmw_free(w);
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, fp), *n);
    fclose(fp);
    return b;
}

static void test_round_trip(void **state) {
    char path[256];
    test_tmp_path(path, sizeof path, "rt.ulm");
    write_small(path);
    ulmf *f;
    ulm_error err;
    assert_int_equal(ulmf_open(path, 1, &f, &err), ULM_OK);
    uint32_t dim;
    float eps;
    int32_t bos;
    int add;
    assert_int_equal(ulmf_get_u32(f, "model.dim", &dim), 0);
    assert_int_equal(dim, 64);
    assert_int_equal(ulmf_get_f32(f, "model.norm_eps", &eps), 0);
    assert_true(eps == 1e-5f);
    assert_int_equal(ulmf_get_i32(f, "tokenizer.bos_id", &bos), 0);
    assert_int_equal(bos, -1);
    assert_int_equal(ulmf_get_bool(f, "tokenizer.add_bos", &add), 0);
    assert_int_equal(add, 1);
    char arch[16];
    assert_int_equal(ulmf_get_cstr(f, "general.architecture", arch, sizeof arch), 0);
    assert_string_equal(arch, "llama");
    const uint32_t *offs;
    const char *blob;
    uint64_t n;
    assert_int_equal(ulmf_get_strarr(f, "tokenizer.tokens", &offs, &blob, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(offs[2] - offs[1], 8);
    assert_memory_equal(blob + offs[1], "\xe2\x96\x81hello", 8);
    assert_int_equal(offs[3] - offs[2], 0);
    const void *arr;
    assert_int_equal(ulmf_get_arr(f, "tokenizer.merges", ULMF_I32, &arr, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(((const int32_t *)arr)[1], 3);
    assert_int_equal(ulmf_get_u32(f, "missing", &dim), -1);
    const ulmf_tensor *t = ulmf_find_tensor(f, "blk.0.w");
    assert_non_null(t);
    assert_int_equal(t->dtype, ULM_DT_F32);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 32);
    assert_int_equal((uintptr_t)t->data % ULMF_ALIGN, 0);
    assert_true(((const float *)t->data)[5] == 5 * 0.25f - 3.0f);
    t = ulmf_find_tensor(f, "q");
    assert_non_null(t);
    assert_int_equal(t->size, 2 * sizeof(block_q8));
    assert_null(ulmf_find_tensor(f, "nope"));
    ulmf_close(f);
    remove(path);
}

static void test_sha256_vectors(void **state) {
    uint8_t h[32];
    char hex[65];
    sha256("abc", 3, h);
    sha256_hex(h, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256("", 0, h);
    sha256_hex(h, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256(m, strlen(m), h);
    sha256_hex(h, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* Every prefix of a valid file must be rejected cleanly (no crash, no out-of-bounds read:
 * each prefix is copied into an exactly-sized heap buffer so ASan sees any overrun). */
static void test_every_truncation(void **state) {
    char path[256];
    test_tmp_path(path, sizeof path, "tr.ulm");
    write_small(path);
    size_t n;
    uint8_t *b = read_all(path, &n);
    for (size_t len = 0; len < n; len++) {
        uint8_t *cp = malloc(len ? len : 1);
        memcpy(cp, b, len);
        ulmf *f = NULL;
        ulm_error err = {0};
        ulm_status st = ulmf_open_mem(cp, len, 0, &f, &err);
        assert_int_not_equal(st, ULM_OK);
        assert_null(f);
        assert_true(strlen(err.msg) > 0);
        free(cp);
    }
    free(b);
    remove(path);
}

/* Random byte flips: without the hash check the parser must never crash; with it, every
 * changed file must be rejected. */
static void test_random_flips(void **state) {
    char path[256];
    test_tmp_path(path, sizeof path, "fl.ulm");
    write_small(path);
    size_t n;
    uint8_t *b = read_all(path, &n);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int rejected_by_parser = 0;
    for (int it = 0; it < 4000; it++) {
        uint8_t *cp = malloc(n);
        memcpy(cp, b, n);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            size_t pos = (it % 2) ? (rng >> 8) % 256 % n : (rng >> 8) % n; /* bias to header+tables */
            cp[pos] ^= (uint8_t)(1 + (rng & 0xfe));
        }
        ulmf *f = NULL;
        ulm_error err;
        if (ulmf_open_mem(cp, n, 0, &f, &err) == ULM_OK) {
            /* touch every tensor and metadata value the parser accepted */
            volatile uint8_t sink = 0;
            for (int i = 0; i < ulmf_n_tensors(f); i++) {
                const ulmf_tensor *t = ulmf_tensor_at(f, i);
                if (t->size) sink ^= ((const uint8_t *)t->data)[t->size - 1];
            }
            for (int i = 0; i < ulmf_n_meta(f); i++) {
                const ulmf_kv *kv = ulmf_meta_at(f, i);
                if (kv->type == ULMF_STRARR && kv->count) sink ^= ((const uint8_t *)kv->data)[kv->offs[kv->count - 1]];
            }
            (void)sink;
            ulmf_close(f);
        } else {
            rejected_by_parser++;
        }
        if (memcmp(cp, b, n) != 0) {
            assert_int_not_equal(ulmf_open_mem(cp, n, 1, &f, &err), ULM_OK);
        }
        free(cp);
    }
    assert_true(rejected_by_parser > 100);
    free(b);
    remove(path);
}

static void test_missing_file(void **state) {
    ulmf *f;
    ulm_error err;
    assert_int_equal(ulmf_open("/nonexistent/x.ulm", 0, &f, &err), ULM_ERR_IO);
    assert_non_null(strstr(err.msg, "/nonexistent/x.ulm"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_random_flips),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
