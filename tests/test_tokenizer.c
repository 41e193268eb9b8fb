/* Tokenizer: SentencePiece and byte-level BPE encoding on small hand-made vocabularies, the
 * llama2.c importer on stories260K's tok512.bin, decoding, special tokens, hostile input. */
#include "test_util.h"
#include "tok_import.h"
#include "tokenizer.h"
#include "ulm_file.h"

/* Writes w to a temp .ulm, opens it and loads its tokenizer. */
static tokenizer *load_from_writer(ulmw *w, const char *name, ulmf **fo) {
    char path[256];
    test_tmp_path(path, sizeof path, name);
    ulm_error err;
    assert_int_equal(ulmw_write(w, path, &err), ULM_OK);
    ulmw_free(w);
    ulmf *f;
    assert_int_equal(ulmf_open(path, 0, &f, &err), ULM_OK);
    unlink(path);
    tokenizer *t = NULL;
    ulm_status st = tok_load(f, &t, &err);
    if (st) print_message("tok_load: %s\n", err.msg);
    assert_int_equal(st, ULM_OK);
    *fo = f;
    return t;
}

static int encode(const tokenizer *t, const char *s, int flags, int32_t *ids, int cap) {
    int n;
    ulm_error err;
    ulm_status st = tok_encode(t, s, strlen(s), flags, ids, cap, &n, &err);
    if (st) print_message("tok_encode: %s\n", err.msg);
    assert_int_equal(st, ULM_OK);
    assert_true(n <= cap);
    return n;
}

/* Concatenated decoded pieces. */
static size_t decode(const tokenizer *t, const int32_t *ids, int n, char *out, size_t cap) {
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *p = tok_decode_piece(t, ids[i], &len);
        assert_true(k + len < cap);
        memcpy(out + k, p, len);
        k += len;
    }
    out[k] = 0;
    return k;
}

static tokenizer *load_tok512(ulmf **f) {
    char path[512];
    if (test_shared_path(path, sizeof path, "models/stories260K/tok512.bin")) return NULL;
    ulmw *w = ulmw_new();
    ulm_error err;
    assert_int_equal(tok_import_llama2c(path, w, &err), ULM_OK);
    return load_from_writer(w, "tok512.ulm", f);
}

static void test_llama2c_once_upon(void **state) {
    char path[512];
    SKIP_WITHOUT_SHARED(path, "models/stories260K/tok512.bin");
    ulmf *f;
    tokenizer *t = load_tok512(&f);
    assert_int_equal(tok_n_vocab(t), 512);
    assert_int_equal(tok_bos(t), 1);
    assert_int_equal(tok_eos(t), 2);
    assert_true(tok_is_eog(t, 2));
    assert_int_equal(tok_type(t, 1), TOK_CONTROL);
    assert_int_equal(tok_type(t, 3), TOK_BYTE);
    int32_t ids[64];
    int n = encode(t, "Once upon a time", ULM_TOK_ADD_BOS, ids, 64);
    int32_t want[] = {1, 403, 407, 261, 378};
    assert_int_equal(n, 5);
    assert_memory_equal(ids, want, sizeof want);
    n = encode(t, "Once upon a time", 0, ids, 64);
    assert_int_equal(n, 4);
    assert_int_equal(ids[0], 403);
    char buf[256];
    decode(t, ids, n, buf, sizeof buf);
    assert_string_equal(buf, " Once upon a time"); /* the dummy prefix is the caller's to drop */
    tok_free(t);
    ulmf_close(f);
}

/* Text outside the 512-token vocabulary (newlines, CJK, emoji) must come back byte-exact. */
static void test_llama2c_round_trip(void **state) {
    char path[512];
    SKIP_WITHOUT_SHARED(path, "models/stories260K/tok512.bin");
    ulmf *f;
    tokenizer *t = load_tok512(&f);
    const char *texts[] = {"Lily and Tom went to the park.\nThey saw a big dog!",
                           "  two  spaces\tand tab", "日本語のテキスト 😀 émoji", "x", "{\"a\": [1, 2, 3]}"};
    for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
        int32_t ids[512];
        int n = encode(t, texts[k], 0, ids, 512);
        char buf[1024];
        decode(t, ids, n, buf, sizeof buf);
        assert_true(buf[0] == ' ');
        assert_string_equal(buf + 1, texts[k]);
    }
    /* measuring with cap 0 gives the same count */
    int32_t ids[512];
    int n = encode(t, texts[0], ULM_TOK_ADD_BOS, ids, 512), m;
    ulm_error err;
    assert_int_equal(tok_encode(t, texts[0], strlen(texts[0]), ULM_TOK_ADD_BOS, NULL, 0, &m, &err), ULM_OK);
    assert_int_equal(m, n);
    /* invalid UTF-8 is an error, not tokens */
    assert_int_equal(tok_encode(t, "ab\xff", 3, 0, ids, 512, &m, &err), ULM_ERR_UTF8);
    assert_int_equal(tok_encode(t, "\xc0\x80", 2, 0, ids, 512, &m, &err), ULM_ERR_UTF8);
    assert_int_equal(tok_encode(t, "\xed\xa0\x80", 3, 0, ids, 512, &m, &err), ULM_ERR_UTF8);
    assert_int_equal(tok_encode(t, "", 0, ULM_TOK_ADD_BOS, ids, 512, &m, &err), ULM_OK);
    assert_int_equal(m, 1);
    tok_free(t);
    ulmf_close(f);
}

/* Truncated and bit-flipped llama2.c files are rejected or load; never crash. */
static void test_llama2c_hostile(void **state) {
    char path[512];
    SKIP_WITHOUT_SHARED(path, "models/stories260K/tok512.bin");
    char *buf;
    size_t n;
    ulm_error err;
    assert_int_equal(tok_read_file(path, &buf, &n, &err), ULM_OK);
    uint32_t seed = 1;
    for (size_t cut = 0; cut < n; cut += 1 + cut / 8) {
        ulmw *w = ulmw_new();
        tok_import_llama2c_mem(buf, cut, w, &err);
        ulmw_free(w);
    }
    char *copy = malloc(n);
    for (int trial = 0; trial < 200; trial++) {
        memcpy(copy, buf, n);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 8) % n] ^= (char)(1 << (seed >> 28 & 7));
        }
        ulmw *w = ulmw_new();
        tok_import_llama2c_mem(copy, n, w, &err);
        ulmw_free(w);
    }
    free(copy);
    free(buf);
    ulmw *w = ulmw_new();
    assert_int_equal(tok_import_llama2c("/nonexistent/tok.bin", w, &err), ULM_ERR_IO);
    ulmw_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama2c_once_upon),
        cmocka_unit_test(test_llama2c_round_trip),
        cmocka_unit_test(test_llama2c_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
