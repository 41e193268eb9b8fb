/* The five real tokenizers of ../shared/tokenizers against ids from independent
 * implementations (tests/fixtures/tokenizers/regen.sh): every line of corpus.jsonl must give
 * exactly the expected ids, and decoding must give the text back. Skips without ../shared. */
#include "json.h"
#include "test_util.h"
#include "tok_import.h"
#include "tokenizer.h"
#include "ulm_file.h"
#include "unicode.h"

#define FIX "tests/fixtures/tokenizers/"

typedef struct corpus {
    json_doc **docs;
    int n;
} corpus;

static corpus load_corpus(void) {
    corpus c = {0, 0};
    FILE *fp = fopen(FIX "corpus.jsonl", "rb");
    assert_non_null(fp);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) > 0) {
        c.docs = realloc(c.docs, (size_t)(c.n + 1) * sizeof *c.docs);
        ulm_error err;
        assert_int_equal(json_parse(line, (size_t)len, &c.docs[c.n], &err), ULM_OK);
        assert_true(json_is_str(json_root(c.docs[c.n])));
        c.n++;
    }
    free(line);
    fclose(fp);
    assert_true(c.n >= 2000);
    return c;
}

static void free_corpus(corpus *c) {
    for (int i = 0; i < c->n; i++) json_free(c->docs[i]);
    free(c->docs);
}

/* Imports a tokenizer source file from ../shared into a temp .ulm and loads it. */
static tokenizer *import_and_load(const char *path, ulmf **fo) {
    ulmw *w = ulmw_new();
    ulm_error err;
    ulm_status st = tok_import_path(path, w, &err);
    if (st) print_message("import %s: %s\n", path, err.msg);
    assert_int_equal(st, ULM_OK);
    char tmp[256];
    test_tmp_path(tmp, sizeof tmp, "fix.ulm");
    assert_int_equal(ulmw_write(w, tmp, &err), ULM_OK);
    ulmw_free(w);
    assert_int_equal(ulmf_open(tmp, 0, fo, &err), ULM_OK);
    unlink(tmp);
    tokenizer *t;
    st = tok_load(*fo, &t, &err);
    if (st) print_message("tok_load: %s\n", err.msg);
    assert_int_equal(st, ULM_OK);
    return t;
}

/* path: the tokenizer source; decode_prefix: what decoding adds before the text (the spm
 * dummy-prefix space). skip_u2581: lines holding a literal U+2581 may differ (counted, not
 * failed): a GGUF of Gemma 3 stores its whitespace-run tokens with spaces, as llama.cpp's
 * converter does, and then tokenizes such lines as llama.cpp does, not as HF does. */
static void check_path(const char *path, const char *expected_file, int flags, const char *decode_prefix,
                       int skip_u2581) {
    const char *rel = path;
    ulmf *f;
    tokenizer *t = import_and_load(path, &f);
    corpus c = load_corpus();
    FILE *fp = fopen(expected_file, "rb");
    assert_non_null(fp);
    char *line = NULL;
    size_t cap = 0;
    int32_t *ids = NULL, *want = NULL;
    int cap_ids = 0, bad = 0, bad_rt = 0, total = 0, bad_u2581 = 0, n_nfc = 0;
    int nfc = strstr(expected_file, "qwen") != NULL; /* Qwen normalizes to NFC: decoding gives the NFC text */
    char *norm = NULL;
    size_t cap_norm = 0;
    char *dec = NULL;
    size_t cap_dec = 0;
    /* under an emulator (make test-arm) every 4th line, and all of the non-NFC tail */
    int step = getenv("ULM_TEST_RUNNER") ? 4 : 1;
    for (int i = 0; i < c.n; i++) {
        ssize_t ll = getline(&line, &cap, fp);
        assert_true(ll >= 0);
        if (i % step && i < 2400) continue;
        size_t tl;
        const char *text = json_str(json_root(c.docs[i]), &tl);
        /* expected ids */
        int nw = 0;
        for (char *p = line; *p && *p != '\n';) {
            char *e;
            long v = strtol(p, &e, 10);
            if (e == p) break;
            if (nw >= cap_ids) {
                cap_ids = 2 * nw + 64;
                ids = realloc(ids, (size_t)cap_ids * sizeof *ids);
                want = realloc(want, (size_t)cap_ids * sizeof *want);
            }
            want[nw++] = (int32_t)v;
            p = e;
        }
        int n;
        ulm_error err;
        assert_int_equal(tok_encode(t, text, tl, flags, NULL, 0, &n, &err), ULM_OK);
        if (n > cap_ids) {
            cap_ids = n + 64;
            ids = realloc(ids, (size_t)cap_ids * sizeof *ids);
            want = realloc(want, (size_t)cap_ids * sizeof *want);
        }
        assert_int_equal(tok_encode(t, text, tl, flags, ids, cap_ids, &n, &err), ULM_OK);
        total += n;
        if (n != nw || (n && memcmp(ids, want, (size_t)n * sizeof *ids))) {
            if (skip_u2581 && memmem(text, tl, "\xe2\x96\x81", 3)) {
                bad_u2581++;
                continue;
            }
            if (bad++ < 5) {
                int k = 0;
                while (k < n && k < nw && ids[k] == want[k]) k++;
                print_message("%s line %d: %d ids, want %d; first difference at %d: got %d, want %d\n", rel, i + 1, n,
                              nw, k, k < n ? ids[k] : -1, k < nw ? want[k] : -1);
            }
            continue;
        }
        /* decode(encode(x)) == x (after the family's prefix); SentencePiece decodes a literal
         * U+2581 as a space, so it guarantees this only for text without one */
        if (tok_get_kind(t) == TOK_SPM && memmem(text, tl, "\xe2\x96\x81", 3)) continue;
        size_t k = 0;
        for (int j = 0; j < n; j++) {
            size_t pl;
            const char *p = tok_decode_piece(t, ids[j], &pl);
            if (k + pl + 1 > cap_dec) cap_dec = 2 * (k + pl) + 256, dec = realloc(dec, cap_dec);
            memcpy(dec + k, p, pl);
            k += pl;
        }
        if (nfc) {
            size_t nl;
            assert_int_equal(unicode_nfc(text, tl, &norm, &cap_norm, &nl), 0);
            n_nfc += nl != tl || memcmp(norm, text, tl);
            text = norm, tl = nl;
        }
        size_t pre = tl ? strlen(decode_prefix) : 0;
        if (k != tl + pre || (k && memcmp(dec, decode_prefix, pre)) || (tl && memcmp(dec + pre, text, tl))) {
            if (bad_rt++ < 5) print_message("%s line %d: decode does not give the text back\n", rel, i + 1);
        }
    }
    print_message("%s: %d lines, %d tokens, %d id mismatches, %d round-trip failures\n", rel, c.n, total, bad, bad_rt);
    if (nfc) print_message("%s: %d lines not in NFC, decoded to their NFC\n", rel, n_nfc);
    if (skip_u2581) print_message("%s: %d lines with a literal U+2581 differ from HF (as llama.cpp's do)\n", rel, bad_u2581);
    assert_int_equal(bad, 0);
    assert_int_equal(bad_rt, 0);
    free(line), free(ids), free(want), free(dec), free(norm);
    fclose(fp);
    free_corpus(&c);
    tok_free(t);
    ulmf_close(f);
}

static void check_family(const char *rel, const char *expected_file, int flags, const char *decode_prefix) {
    char path[512];
    if (test_shared_path(path, sizeof path, rel)) {
        print_message("skipped: %s not found (../shared is absent)\n", path);
        skip();
    }
    check_path(path, expected_file, flags, decode_prefix, 0);
}

/* GGUFs written by the peer kit's make_gguf.py --tokenizer (not committed: see
 * tests/fixtures/tokenizers/make_ggufs.sh); run when ULM_TEST_GGUF_DIR names their folder.
 * The GGUF import must give the ids of the tokenizer.json / tokenizer.model import. */
static void check_gguf(const char *name, const char *expected_file, int flags, const char *decode_prefix) {
    const char *dir = getenv("ULM_TEST_GGUF_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s.gguf", dir ? dir : "", name);
    if (!dir || access(path, R_OK)) {
        print_message("skipped: %s.gguf (set ULM_TEST_GGUF_DIR, see tests/fixtures/tokenizers/make_ggufs.sh)\n", name);
        skip();
    }
    check_path(path, expected_file, flags, decode_prefix, !strcmp(name, "gemma3"));
}

static void test_qwen3(void **state) { check_family("tokenizers/qwen3/tokenizer.json", FIX "expected_qwen3.txt", ULM_TOK_PARSE_SPECIAL, ""); }
static void test_llama3(void **state) { check_family("tokenizers/llama3/tokenizer.json", FIX "expected_llama3.txt", ULM_TOK_PARSE_SPECIAL, ""); }
static void test_smollm2(void **state) { check_family("tokenizers/smollm2/tokenizer.json", FIX "expected_smollm2.txt", ULM_TOK_PARSE_SPECIAL, ""); }
static void test_gemma3(void **state) { check_family("tokenizers/gemma3/tokenizer.json", FIX "expected_gemma3.txt", ULM_TOK_PARSE_SPECIAL, ""); }
static void test_llama2_bin(void **state) {
    check_family("tokenizers/llama2-sentencepiece/tokenizer.bin", FIX "expected_llama2.txt", 0, " ");
}

static void test_llama2_model(void **state) {
    check_family("tokenizers/llama2-sentencepiece/tokenizer.model", FIX "expected_llama2.txt", 0, " ");
}

static void test_gguf_qwen3(void **state) { check_gguf("qwen3", FIX "expected_qwen3.txt", ULM_TOK_PARSE_SPECIAL, ""); }
static void test_gguf_llama3(void **state) { check_gguf("llama3", FIX "expected_llama3.txt", ULM_TOK_PARSE_SPECIAL, ""); }
static void test_gguf_smollm2(void **state) { check_gguf("smollm2", FIX "expected_smollm2.txt", ULM_TOK_PARSE_SPECIAL, ""); }
static void test_gguf_gemma3(void **state) { check_gguf("gemma3", FIX "expected_gemma3.txt", ULM_TOK_PARSE_SPECIAL, ""); }
static void test_gguf_llama2(void **state) { check_gguf("llama2", FIX "expected_llama2.txt", 0, " "); }

/* stories260K.gguf (llama.cpp's converter) against its llama2.c tok512.bin: the same ids on
 * every corpus line, with and without BOS. */
static void test_gguf_stories260k(void **state) {
    char gpath[512], bpath[512];
    SKIP_WITHOUT_SHARED(gpath, "models/stories260K/stories260K.gguf");
    SKIP_WITHOUT_SHARED(bpath, "models/stories260K/tok512.bin");
    ulmf *fg, *fb;
    tokenizer *tg = import_and_load(gpath, &fg), *tb = import_and_load(bpath, &fb);
    assert_int_equal(tok_n_vocab(tg), 512);
    assert_int_equal(tok_bos(tg), tok_bos(tb));
    assert_int_equal(tok_eos(tg), tok_eos(tb));
    assert_int_equal(tok_add_bos(tg), 1);
    corpus c = load_corpus();
    int32_t a[4096], b[4096];
    int total = 0;
    int step = getenv("ULM_TEST_RUNNER") ? 4 : 1; /* every 4th line under an emulator */
    for (int i = 0; i < c.n; i += step) {
        size_t tl;
        const char *text = json_str(json_root(c.docs[i]), &tl);
        for (int flags = 0; flags <= ULM_TOK_ADD_BOS; flags += ULM_TOK_ADD_BOS) {
            int na, nb;
            ulm_error err;
            assert_int_equal(tok_encode(tg, text, tl, flags, a, 4096, &na, &err), ULM_OK);
            assert_int_equal(tok_encode(tb, text, tl, flags, b, 4096, &nb, &err), ULM_OK);
            assert_true(na <= 4096);
            if (na != nb || memcmp(a, b, (size_t)na * sizeof *a)) print_message("line %d differs\n", i + 1);
            assert_int_equal(na, nb);
            assert_memory_equal(a, b, (size_t)na * sizeof *a);
            total += na;
        }
    }
    print_message("stories260K.gguf == tok512.bin on %d lines (%d ids)\n", c.n, total);
    free_corpus(&c);
    tok_free(tg), tok_free(tb);
    ulmf_close(fg), ulmf_close(fb);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen3),  cmocka_unit_test(test_llama3),     cmocka_unit_test(test_smollm2),
        cmocka_unit_test(test_gemma3), cmocka_unit_test(test_llama2_bin),
        cmocka_unit_test(test_llama2_model), cmocka_unit_test(test_gguf_qwen3),
        cmocka_unit_test(test_gguf_llama3),  cmocka_unit_test(test_gguf_smollm2),
        cmocka_unit_test(test_gguf_gemma3),  cmocka_unit_test(test_gguf_llama2),
        cmocka_unit_test(test_gguf_stories260k),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
