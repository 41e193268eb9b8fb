/* safetensors reader: synthetic files written here, every truncation, random flips, hostile
 * headers, a sharded Hugging Face folder, config.json lookups. */
#include <sys/stat.h>
#include "test_util.h"
#include "safetensors.h"

/* Builds a file from a header JSON text (padded with spaces to a multiple of 8, like the
 * reference writer) and `dsize` data bytes where byte i is (uint8_t)(i * 7 + 1). */
static uint8_t *make_file(const char *header, size_t dsize, size_t *size) {
    size_t h = strlen(header), hp = (h + 7) / 8 * 8;
    *size = 8 + hp + dsize;
    uint8_t *b = malloc(*size);
    uint64_t hl = hp;
    memcpy(b, &hl, 8);
    memcpy(b + 8, header, h);
    memset(b + 8 + h, ' ', hp - h);
    for (size_t i = 0; i < dsize; i++) b[8 + hp + i] = (uint8_t)(i * 7 + 1);
    return b;
}

static const char good_header[] =
    "{\"__metadata__\": {\"format\": \"pt\"},"
    " \"model.embed_tokens.weight\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]},"
    " \"model.norm.weight\": {\"dtype\": \"F16\", \"shape\": [4], \"data_offsets\": [24, 32]},"
    " \"lm_head.weight\": {\"dtype\": \"BF16\", \"shape\": [2, 2], \"data_offsets\": [32, 40]},"
    " \"pos\": {\"dtype\": \"I64\", \"shape\": [3], \"data_offsets\": [40, 64]},"
    " \"scale\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [64, 68]},"
    " \"empty\": {\"dtype\": \"F32\", \"shape\": [0, 4], \"data_offsets\": [68, 68]},"
    " \"exotic\": {\"dtype\": \"F8_E8M0\", \"shape\": [4], \"data_offsets\": [68, 72]}}";

static void check_good(const sft_file *f, const uint8_t *data) {
    assert_int_equal(sft_n_tensors(f), 7);
    const sft_tensor *t = sft_find(f, "model.embed_tokens.weight");
    assert_non_null(t);
    assert_ptr_equal(t, sft_tensor_at(f, 0)); /* header order */
    assert_int_equal(t->dtype, SFT_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->n_elements, 6);
    assert_int_equal(t->size, 24);
    assert_ptr_equal(t->data, data);
    t = sft_find(f, "model.norm.weight");
    assert_int_equal(t->dtype, SFT_F16);
    assert_ptr_equal(t->data, data + 24);
    assert_true(sft_dtype_supported(t->dtype));
    t = sft_find(f, "lm_head.weight");
    assert_int_equal(t->dtype, SFT_BF16);
    t = sft_find(f, "pos");
    assert_int_equal(t->dtype, SFT_I64);
    assert_false(sft_dtype_supported(t->dtype));
    assert_string_equal(sft_dtype_name(t->dtype), "I64");
    t = sft_find(f, "scale");
    assert_int_equal(t->n_dims, 0);
    assert_int_equal(t->n_elements, 1);
    t = sft_find(f, "empty");
    assert_int_equal(t->n_elements, 0);
    assert_int_equal(t->size, 0);
    t = sft_find(f, "exotic");
    assert_int_equal(t->dtype, SFT_UNKNOWN);
    assert_string_equal(t->dtype_name, "F8_E8M0");
    assert_false(sft_dtype_supported(t->dtype));
    assert_null(sft_find(f, "__metadata__"));
    assert_null(sft_find(f, "nope"));
    assert_true(json_str_eq(json_get(sft_metadata(f), "format"), "pt"));
}

static void write_file(const char *path, const void *b, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    fclose(fp);
}

static void test_good_file(void **state) {
    size_t n;
    uint8_t *b = make_file(good_header, 72, &n);
    sft_file *f;
    ulm_error err;
    ulm_status st = sft_open_mem(b, n, &f, &err);
    if (st) print_message("%s\n", err.msg);
    assert_int_equal(st, ULM_OK);
    check_good(f, b + n - 72);
    sft_close(f);
    char path[256];
    test_tmp_path(path, sizeof path, "g.safetensors");
    write_file(path, b, n);
    assert_int_equal(sft_open(path, &f, &err), ULM_OK);
    const sft_tensor *t = sft_find(f, "pos");
    assert_int_equal(((const uint8_t *)t->data)[0], (uint8_t)(40 * 7 + 1));
    sft_close(f);
    remove(path);
    free(b);
    assert_int_equal(sft_open("/nonexistent/m.safetensors", &f, &err), ULM_ERR_IO);
}

static void test_every_truncation(void **state) {
    size_t n;
    uint8_t *b = make_file(good_header, 72, &n);
    for (size_t len = 0; len < n; len++) {
        uint8_t *cp = malloc(len ? len : 1);
        memcpy(cp, b, len);
        sft_file *f = (sft_file *)1;
        ulm_error err = {0};
        assert_int_not_equal(sft_open_mem(cp, len, &f, &err), ULM_OK);
        assert_null(f);
        assert_true(strlen(err.msg) > 0);
        assert_null(strchr(err.msg, '\n'));
        free(cp);
    }
    free(b);
}

static void test_random_flips(void **state) {
    size_t n;
    uint8_t *b = make_file(good_header, 72, &n);
    uint64_t rng = 0x853c49e6748fea9bull;
    int rejected = 0;
    for (int it = 0; it < 6000; it++) {
        uint8_t *cp = malloc(n);
        memcpy(cp, b, n);
        for (int k = 0; k <= it % 3; k++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            size_t pos = (it % 5 == 0) ? (rng >> 8) % 8 : 8 + (rng >> 8) % (n - 8 - 72); /* length, header */
            if (it % 4 == 1) cp[pos] = (uint8_t)"0123456789,[]{}\"-"[(rng >> 40) % 17];
            else cp[pos] ^= (uint8_t)(1 + (rng & 0xfe));
        }
        sft_file *f = NULL;
        ulm_error err;
        if (sft_open_mem(cp, n, &f, &err) == ULM_OK) {
            volatile uint8_t sink = 0;
            for (int i = 0; i < sft_n_tensors(f); i++) {
                const sft_tensor *t = sft_tensor_at(f, i);
                assert_ptr_equal(sft_find(f, t->name), t);
                if (t->size) sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[t->size - 1];
            }
            (void)sink;
            sft_close(f);
        } else {
            rejected++;
        }
        free(cp);
    }
    assert_true(rejected > 1000);
    free(b);
}

static ulm_status open_header(const char *header, size_t dsize, ulm_error *err) {
    size_t n;
    uint8_t *b = make_file(header, dsize, &n);
    sft_file *f = NULL;
    ulm_status st = sft_open_mem(b, n, &f, err);
    if (getenv("SFT_TEST_VERBOSE")) print_message("%s\n", st ? err->msg : "ok");
    sft_close(f);
    free(b);
    return st;
}

static void test_hostile(void **state) {
    ulm_error err;
#define T(name, body) "{\"" name "\": {" body "}}"
    assert_int_equal(open_header(T("a", "\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]"), 8, &err), ULM_OK);
    static const char *bad[] = {
        T("a", "\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 12]"),       /* past the end */
        T("a", "\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]"),        /* shape/size mismatch */
        T("a", "\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 8]"),        /* dtype/size mismatch */
        T("a", "\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]"),        /* begin > end */
        T("a", "\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [-8, 0]"),
        T("a", "\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0.5, 8]"),
        T("a", "\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0]"),
        T("a", "\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8, 9]"),
        T("a", "\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 18446744073709551615]"),
        T("a", "\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]"),
        T("a", "\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 8]"),
        T("a", "\"dtype\": \"F32\", \"shape\": \"2\", \"data_offsets\": [0, 8]"),
        T("a", "\"dtype\": \"F32\", \"shape\": [1099511627776, 1099511627776, 1099511627776], \"data_offsets\": [0, 8]"),
        T("a", "\"dtype\": \"F32\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 0]"), /* n*4 wraps to 0 */
        T("a", "\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,2], \"data_offsets\": [0, 8]"),
        T("a", "\"dtype\": 3, \"shape\": [2], \"data_offsets\": [0, 8]"),
        T("a", "\"shape\": [2], \"data_offsets\": [0, 8]"),
        T("a\\u0000b", "\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]"),
        T("", "\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]"),
        "{\"a\": [1, 2]}",
        "{\"__metadata__\": {\"k\": 1}}",
        "{\"__metadata__\": [\"k\"]}",
        "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
        " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", /* overlap */
        "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
        " \"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 8]}}", /* duplicate */
        "[1]", "{\"a\": ", "{} trailing", "\"str\"",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ulm_status st = open_header(bad[k], 8, &err);
        if (st == ULM_OK) print_message("accepted hostile header #%zu: %s\n", k, bad[k]);
        assert_int_not_equal(st, ULM_OK);
        assert_true(strlen(err.msg) > 0);
    }
    /* adjacent tensors and out-of-order offsets are fine */
    assert_int_equal(open_header("{\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
                                 " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 8, &err), ULM_OK);
    /* header length field: beyond the file, huge, zero */
    uint8_t raw[16] = {0};
    uint64_t hl = 9;
    memcpy(raw, &hl, 8);
    memcpy(raw + 8, "{}      ", 8);
    sft_file *f;
    assert_int_equal(sft_open_mem(raw, 16, &f, &err), ULM_ERR_FORMAT);
    hl = UINT64_MAX;
    memcpy(raw, &hl, 8);
    assert_int_equal(sft_open_mem(raw, 16, &f, &err), ULM_ERR_FORMAT);
    hl = 0;
    memcpy(raw, &hl, 8);
    assert_int_equal(sft_open_mem(raw, 16, &f, &err), ULM_ERR_FORMAT);
    hl = 8; /* "{}" and spaces: an empty but valid file */
    memcpy(raw, &hl, 8);
    assert_int_equal(sft_open_mem(raw, 16, &f, &err), ULM_OK);
    assert_int_equal(sft_n_tensors(f), 0);
    sft_close(f);
}

/* ---- folders ---- */
static void write_in(const char *dir, const char *name, const void *b, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    write_file(p, b, n);
}
static void write_text(const char *dir, const char *name, const char *text) { write_in(dir, name, text, strlen(text)); }
static void write_shard(const char *dir, const char *name, const char *header, size_t dsize) {
    size_t n;
    uint8_t *b = make_file(header, dsize, &n);
    write_in(dir, name, b, n);
    free(b);
}
static void rm_in(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    remove(p);
}

static void test_sharded_folder(void **state) {
    char dir[256];
    test_tmp_path(dir, sizeof dir, "hf");
    mkdir(dir, 0700);
    const char *s1 = "{\"model.embed_tokens.weight\": {\"dtype\": \"BF16\", \"shape\": [4, 2], \"data_offsets\": [0, 16]},"
                     " \"model.layers.0.mlp.up_proj.weight\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [16, 24]}}";
    const char *s2 = "{\"model.norm.weight\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]}}";
    write_shard(dir, "model-00001-of-00002.safetensors", s1, 24);
    write_shard(dir, "model-00002-of-00002.safetensors", s2, 4);
    const char *index_ok =
        "{\"metadata\": {\"total_size\": 28}, \"weight_map\": {"
        "\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\","
        "\"model.norm.weight\": \"model-00002-of-00002.safetensors\","
        "\"model.layers.0.mlp.up_proj.weight\": \"model-00001-of-00002.safetensors\"}}";
    write_text(dir, "model.safetensors.index.json", index_ok);
    sft_model *m;
    ulm_error err;
    ulm_status st = sft_model_open(dir, &m, &err);
    if (st) print_message("%s\n", err.msg);
    assert_int_equal(st, ULM_OK);
    assert_int_equal(sft_model_n_shards(m), 2);
    assert_int_equal(sft_model_n_tensors(m), 3);
    const sft_tensor *t = sft_model_find(m, "model.norm.weight");
    assert_non_null(t);
    assert_int_equal(t->shard, 1);
    assert_int_equal(t->dtype, SFT_F16);
    assert_int_equal(((const uint8_t *)t->data)[3], 3 * 7 + 1);
    t = sft_model_find(m, "model.embed_tokens.weight");
    assert_int_equal(t->shard, 0);
    assert_int_equal(t->shape[0], 4);
    assert_string_equal(sft_model_tensor_at(m, 2)->name, "model.norm.weight");
    assert_null(sft_model_find(m, "missing"));
    sft_model_close(m);

    /* hostile or inconsistent indexes */
    static const char *bad_index[] = {
        "{\"weight_map\": {\"model.norm.weight\": \"../model-00002-of-00002.safetensors\"}}",
        "{\"weight_map\": {\"model.norm.weight\": \"/etc/passwd\"}}",
        "{\"weight_map\": {\"model.norm.weight\": \"model-00001-of-00002.safetensors\"}}", /* wrong shard */
        "{\"weight_map\": {\"nonexistent\": \"model-00001-of-00002.safetensors\"}}",
        "{\"weight_map\": {\"model.norm.weight\": 2}}",
        "{\"weight_map\": {}}",
        "{\"weight_map\": {\"model.norm.weight\": \"missing.safetensors\"}}",
        "{\"weight_map\": ",
    };
    for (size_t k = 0; k < sizeof bad_index / sizeof bad_index[0]; k++) {
        write_text(dir, "model.safetensors.index.json", bad_index[k]);
        m = (sft_model *)1;
        st = sft_model_open(dir, &m, &err);
        if (getenv("SFT_TEST_VERBOSE")) print_message("%s\n", st ? err.msg : "ok");
        if (st == ULM_OK) print_message("accepted bad index #%zu\n", k);
        assert_int_not_equal(st, ULM_OK);
        assert_null(m);
    }
    /* the same tensor in two shards */
    write_shard(dir, "model-00002-of-00002.safetensors",
                "{\"model.norm.weight\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]},"
                " \"model.embed_tokens.weight\": {\"dtype\": \"F16\", \"shape\": [0], \"data_offsets\": [4, 4]}}", 4);
    write_text(dir, "model.safetensors.index.json", index_ok);
    assert_int_equal(sft_model_open(dir, &m, &err), ULM_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "two shards"));

    /* a single-file folder */
    rm_in(dir, "model.safetensors.index.json");
    rm_in(dir, "model-00001-of-00002.safetensors");
    rm_in(dir, "model-00002-of-00002.safetensors");
    assert_int_equal(sft_model_open(dir, &m, &err), ULM_ERR_IO);
    write_shard(dir, "model.safetensors", s2, 4);
    assert_int_equal(sft_model_open(dir, &m, &err), ULM_OK);
    assert_int_equal(sft_model_n_tensors(m), 1);
    assert_int_equal(sft_model_n_shards(m), 1);
    sft_model_close(m);
    rm_in(dir, "model.safetensors");
    rmdir(dir);
}

static void test_config(void **state) {
    const char *cfg =
        "{\"architectures\": [\"Gemma3ForConditionalGeneration\"], \"model_type\": \"gemma3\","
        " \"vocab_size\": 262208, \"text_config\": {\"hidden_size\": 2560, \"rms_norm_eps\": 1e-06,"
        " \"rope_theta\": 1000000.0, \"sliding_window\": 1024, \"tie_word_embeddings\": true,"
        " \"vocab_size\": 1, \"hidden_activation\": \"gelu_pytorch_tanh\"}}";
    json_doc *d;
    ulm_error err;
    assert_int_equal(json_parse(cfg, strlen(cfg), &d, &err), ULM_OK);
    const json_value *c = json_root(d);
    int64_t i;
    double x;
    int b;
    const char *s;
    size_t n;
    assert_int_equal(hf_config_int(c, "hidden_size", &i), 0);
    assert_int_equal(i, 2560);
    assert_int_equal(hf_config_int(c, "vocab_size", &i), 0); /* top level wins */
    assert_int_equal(i, 262208);
    assert_int_equal(hf_config_num(c, "rms_norm_eps", &x), 0);
    assert_true(x == 1e-6);
    assert_int_equal(hf_config_int(c, "rope_theta", &i), 0); /* 1000000.0 is integral */
    assert_int_equal(i, 1000000);
    assert_int_equal(hf_config_int(c, "rms_norm_eps", &i), -1);
    assert_int_equal(hf_config_bool(c, "tie_word_embeddings", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(hf_config_str(c, "hidden_activation", &s, &n), 0);
    assert_string_equal(s, "gelu_pytorch_tanh");
    assert_int_equal(hf_config_str(c, "model_type", &s, NULL), 0);
    assert_string_equal(s, "gemma3");
    assert_int_equal(hf_config_int(c, "num_hidden_layers", &i), -1);
    assert_int_equal(hf_config_int(NULL, "x", &i), -1);
    json_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_random_flips),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_sharded_folder),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
