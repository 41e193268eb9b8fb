/* Byte-level BPE trainer: the GPT-2 pre-tokenizer split, learned merges, an exact round trip
 * through a reference encoder written here (lowest-rank pair first, as GPT-2 encodes), and
 * the tokenizer keys written into a .ulm. */
#include "test_util.h"
#include "train/bpe_train.h"
#include "tokenizer.h"
#include "ulm_file.h"

/* Splits s and compares the pieces with the NULL-terminated list want. */
static void check_split(const char *s, const char *const *want) {
    size_t len = strlen(s), pos = 0;
    int i = 0;
    while (pos < len) {
        size_t k = bpe_pretok_next(s, len, pos);
        assert_true(k > 0 && k <= len - pos);
        if (!want[i]) fail_msg("'%s': extra piece '%.*s'", s, (int)k, s + pos);
        if (strlen(want[i]) != k || memcmp(want[i], s + pos, k))
            fail_msg("'%s': piece %d is '%.*s', want '%s'", s, i, (int)k, s + pos, want[i]);
        pos += k;
        i++;
    }
    if (want[i]) fail_msg("'%s': missing piece '%s'", s, want[i]);
}

static void test_pretok_gpt2_rules(void **state) {
    check_split("Hello world", (const char *[]){"Hello", " world", NULL});
    check_split("it's 'S they'll", (const char *[]){"it", "'s", " '", "S", " they", "'ll", NULL});
    check_split("a  b", (const char *[]){"a", " ", " b", NULL});
    check_split("x\n\ny", (const char *[]){"x", "\n", "\n", "y", NULL});
    check_split("a \tb", (const char *[]){"a", " ", "\t", "b", NULL});
    check_split("end.  ", (const char *[]){"end", ".", "  ", NULL});
    check_split("on 2021-03-03, ok", (const char *[]){"on", " 2021", "-", "03", "-", "03", ",", " ok", NULL});
    check_split("O'Brien's", (const char *[]){"O", "'", "Brien", "'s", NULL});
    check_split("S\xc3\xa3o Paulo", (const char *[]){"S\xc3\xa3o", " Paulo", NULL});
    check_split("Hi!!! ok", (const char *[]){"Hi", "!!!", " ok", NULL});
    check_split("{\"people\":[\"Ann\"]}", (const char *[]){"{\"", "people", "\":[\"", "Ann", "\"]}", NULL});
    check_split("abc123def", (const char *[]){"abc", "123", "def", NULL});
    check_split(" ", (const char *[]){" ", NULL});
    check_split("a\xa0" "b", (const char *[]){"a", "\xa0", "b", NULL}); /* invalid byte: other */
    check_split("x \xc2\xa0y", (const char *[]){"x", " ", "\xc2\xa0", "y", NULL}); /* NBSP is \s */
}

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void test_pretok_covers_random_bytes(void **state) {
    static const char alphabet[] = " \n\t'sa1.\xc3\xa9\xe2\x80\x94\xff";
    char buf[64];
    for (int it = 0; it < 20000; it++) {
        size_t len = 1 + rnd(sizeof buf - 1);
        for (size_t i = 0; i < len; i++) buf[i] = alphabet[rnd(sizeof alphabet - 1)];
        size_t pos = 0;
        while (pos < len) {
            size_t k = bpe_pretok_next(buf, len, pos);
            assert_true(k > 0 && k <= len - pos);
            pos += k;
        }
        assert_int_equal(pos, len);
    }
}

static void test_byte_map(void **state) {
    assert_int_equal(bpe_byte_to_cp('A'), 'A');
    assert_int_equal(bpe_byte_to_cp(' '), 0x120);  /* "Ġ" */
    assert_int_equal(bpe_byte_to_cp('\n'), 0x10a); /* "Ċ" */
    assert_int_equal(bpe_byte_to_cp(0), 0x100);
    int seen[400] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t cp = bpe_byte_to_cp((uint8_t)b);
        assert_true(cp < 400);
        assert_int_equal(seen[cp]++, 0);
    }
}

/* ---- reference encoder and decoder ---- */

static int cp_to_byte[400];

static void init_inverse(void) {
    for (int i = 0; i < 400; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_to_byte[bpe_byte_to_cp((uint8_t)b)] = b;
}

/* Bytes of token `id` appended to out (token texts are byte-mapped UTF-8, 1-2 bytes a char). */
static size_t decode_token(const bpe_model *m, int id, char *out) {
    const unsigned char *s = (const unsigned char *)m->tokens[id];
    size_t n = 0;
    while (*s) {
        uint32_t cp;
        if (*s < 0x80) cp = *s++;
        else { cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f); s += 2; }
        assert_true(cp < 400 && cp_to_byte[cp] >= 0);
        out[n++] = (char)cp_to_byte[cp];
    }
    return n;
}

static int merge_rank(const bpe_model *m, int32_t a, int32_t b) {
    for (int r = 0; r < m->n_merges; r++)
        if (m->merges[2 * r] == a && m->merges[2 * r + 1] == b) return r;
    return -1;
}

/* Encodes text: pre-tokenize, then per piece merge the lowest-ranked pair (every occurrence,
 * left to right) until none applies. Returns the number of ids. */
static int encode(const bpe_model *m, const char *text, size_t len, int32_t *ids, int cap) {
    int n = 0;
    for (size_t pos = 0; pos < len;) {
        size_t k = bpe_pretok_next(text, len, pos);
        int32_t sym[512];
        int ns = (int)k;
        assert_true(ns <= 512);
        for (int i = 0; i < ns; i++) sym[i] = (unsigned char)text[pos + i];
        for (;;) {
            int best = -1;
            for (int i = 1; i < ns; i++) {
                int r = merge_rank(m, sym[i - 1], sym[i]);
                if (r >= 0 && (best < 0 || r < best)) best = r;
            }
            if (best < 0) break;
            int32_t a = m->merges[2 * best], b = m->merges[2 * best + 1], o = 0;
            for (int i = 0; i < ns; i++) {
                if (i + 1 < ns && sym[i] == a && sym[i + 1] == b) { sym[o++] = m->merge_out[best]; i++; }
                else sym[o++] = sym[i];
            }
            ns = o;
        }
        assert_true(n + ns <= cap);
        memcpy(ids + n, sym, (size_t)ns * sizeof *sym);
        n += ns;
        pos += k;
    }
    return n;
}

static void check_round_trip(const bpe_model *m, const char *text, int *n_tokens) {
    size_t len = strlen(text);
    int32_t ids[4096];
    char back[8192];
    int n = encode(m, text, len, ids, 4096);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        assert_true(ids[i] >= 0 && ids[i] < m->first_special);
        o += decode_token(m, ids[i], back + o);
    }
    if (o != len || memcmp(back, text, len)) fail_msg("round trip failed for '%s'", text);
    if (n_tokens) *n_tokens += n;
}

/* A small corpus shaped like the task data. */
static const char *const corpus[] = {
    "an old silent pond a frog jumps into the pond splash silence again",
    "an old silent pond\na frog jumps into the pond\nsplash silence again",
    "the light of the moon falls on the quiet river and the river sings",
    "NOT_A_HAIKU",
    "Maria Gutierrez was born in Shanghai on 2002-05-18.",
    "{\"people\":[\"Maria Gutierrez\"],\"organizations\":[],\"places\":[\"Shanghai\"],\"dates\":[\"2002-05-18\"]}",
    "Brenda James flew from Amsterdam to Lake Victoria on 5/30/2032.",
    "{\"people\":[\"Brenda James\"],\"organizations\":[],\"places\":[\"Amsterdam\",\"Lake Victoria\"],\"dates\":[\"5/30/2032\"]}",
    "Sable Foods reported record profits in July 1985.",
    "{\"people\":[],\"organizations\":[\"Sable Foods\"],\"places\":[],\"dates\":[\"July 1985\"]}",
    "O'Brien's caf\xc3\xa9 in S\xc3\xa3o Paulo opened on Thursday, August 23, 1990.",
};
#define N_CORPUS (sizeof corpus / sizeof *corpus)

static void learn(int vocab, bpe_model *m) {
    const char *texts[N_CORPUS * 20];
    for (size_t i = 0; i < N_CORPUS * 20; i++) texts[i] = corpus[i % N_CORPUS];
    ulm_error err;
    assert_int_equal(bpe_learn(texts, NULL, N_CORPUS * 20, vocab, NULL, 0, m, &err), ULM_OK);
}

static void test_learn_and_round_trip(void **state) {
    init_inverse();
    bpe_model m;
    learn(600, &m);
    assert_true(m.n_vocab <= 600);
    assert_true(m.n_merges > 100);
    assert_int_equal(m.first_special + 5, m.n_vocab);
    assert_string_equal(m.tokens[m.bos_id], BPE_BOS);
    assert_string_equal(m.tokens[m.eos_id], BPE_EOS);
    assert_string_equal(m.tokens[m.pad_id], BPE_PAD);
    assert_string_equal(m.tokens[m.first_special + 3], BPE_IN);
    assert_string_equal(m.tokens[m.first_special + 4], BPE_OUT);
    for (int i = 0; i < m.n_vocab; i++) {
        assert_int_equal(m.types[i], i >= m.first_special ? TOK_CONTROL : TOK_NORMAL);
        for (int j = 0; j < i; j++) assert_true(strcmp(m.tokens[i], m.tokens[j]) != 0);
    }
    /* the merged token of (l, r) is the token spelled text(l) + text(r) */
    for (int r = 0; r < m.n_merges; r++) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s%s", m.tokens[m.merges[2 * r]], m.tokens[m.merges[2 * r + 1]]);
        assert_string_equal(m.tokens[m.merge_out[r]], buf);
        assert_true(m.merges[2 * r] < m.first_special && m.merges[2 * r + 1] < m.first_special);
    }
    int n_tok = 0;
    size_t n_bytes = 0;
    for (size_t i = 0; i < N_CORPUS; i++) {
        check_round_trip(&m, corpus[i], &n_tok);
        n_bytes += strlen(corpus[i]);
    }
    /* the corpus is seen 20 times with 600 tokens to learn: it must compress well */
    assert_true((size_t)n_tok * 3 < n_bytes);
    /* a frequent word is one token, space included */
    int32_t ids[8];
    assert_int_equal(encode(&m, " pond", 5, ids, 8), 1);
    /* unseen text, other scripts and bytes that are not UTF-8 still round-trip exactly */
    check_round_trip(&m, "Zo\xc3\xab M\xc3\xbcller met \xe6\x9d\xb1\xe4\xba\xac  crew\t\t on 1999-12-31!\n\n", NULL);
    check_round_trip(&m, "\xff\xfe broken \xc3 utf8 \xe2\x82", NULL);
    char rnd_text[200];
    for (int it = 0; it < 300; it++) {
        size_t len = 1 + rnd(sizeof rnd_text - 1);
        for (size_t i = 0; i < len; i++) rnd_text[i] = (char)(1 + rnd(255));
        rnd_text[len] = 0;
        check_round_trip(&m, rnd_text, NULL);
    }
    bpe_model_free(&m);
}

static void test_deterministic(void **state) {
    bpe_model a, b;
    learn(500, &a);
    learn(500, &b);
    assert_int_equal(a.n_vocab, b.n_vocab);
    assert_int_equal(a.n_merges, b.n_merges);
    assert_memory_equal(a.merges, b.merges, (size_t)a.n_merges * 2 * sizeof(int32_t));
    for (int i = 0; i < a.n_vocab; i++) assert_string_equal(a.tokens[i], b.tokens[i]);
    bpe_model_free(&a);
    bpe_model_free(&b);
}

static void test_stops_when_no_pair_repeats(void **state) {
    const char *texts[] = {"ab"};
    bpe_model m;
    ulm_error err;
    assert_int_equal(bpe_learn(texts, NULL, 1, 4000, NULL, 0, &m, &err), ULM_OK);
    assert_int_equal(m.n_merges, 0); /* "ab" occurs once: nothing to merge */
    assert_int_equal(m.n_vocab, 256 + 5);
    bpe_model_free(&m);
}

static void test_bad_arguments(void **state) {
    const char *texts[] = {"hello hello"};
    const char *dup[] = {"<|a|>", "<|a|>"};
    const char *empty[] = {""};
    bpe_model m;
    ulm_error err;
    assert_int_equal(bpe_learn(texts, NULL, 1, 260, NULL, 0, &m, &err), ULM_ERR_ARG);
    assert_int_equal(bpe_learn(texts, NULL, 1, 1000, dup, 2, &m, &err), ULM_ERR_ARG);
    assert_int_equal(bpe_learn(texts, NULL, 1, 1000, empty, 1, &m, &err), ULM_ERR_ARG);
    assert_true(strstr(err.msg, "empty") != NULL);
}

static void test_write_keys(void **state) {
    const char *texts[N_CORPUS];
    for (size_t i = 0; i < N_CORPUS; i++) texts[i] = corpus[i];
    ulmw *w = ulmw_new();
    ulm_error err;
    assert_int_equal(bpe_train(texts, N_CORPUS, 300, w, &err), ULM_OK);
    char path[256];
    test_tmp_path(path, sizeof path, "bpe.ulm");
    assert_int_equal(ulmw_write(w, path, &err), ULM_OK);
    ulmw_free(w);
    ulmf *f;
    assert_int_equal(ulmf_open(path, 1, &f, &err), ULM_OK);
    char s[32];
    assert_int_equal(ulmf_get_cstr(f, "tokenizer.model", s, sizeof s), 0);
    assert_string_equal(s, "bpe");
    assert_int_equal(ulmf_get_cstr(f, "tokenizer.pre", s, sizeof s), 0);
    assert_string_equal(s, "gpt2");
    const uint32_t *offs;
    const char *blob;
    uint64_t n_tok, n_types, n_merges;
    const void *types, *merges;
    assert_int_equal(ulmf_get_strarr(f, "tokenizer.tokens", &offs, &blob, &n_tok), 0);
    assert_true(n_tok <= 300 && n_tok > 261);
    assert_int_equal(ulmf_get_arr(f, "tokenizer.types", ULMF_BOOL, &types, &n_types), 0);
    assert_int_equal(n_types, n_tok);
    assert_int_equal(ulmf_get_arr(f, "tokenizer.merges", ULMF_I32, &merges, &n_merges), 0);
    assert_int_equal(n_merges % 2, 0);
    assert_true(n_merges >= 2 * (n_tok - 261));
    for (uint64_t i = 0; i < n_merges; i++) assert_true(((const int32_t *)merges)[i] < (int32_t)(n_tok - 5));
    int32_t bos, eos, pad;
    int add_bos;
    assert_int_equal(ulmf_get_i32(f, "tokenizer.bos_id", &bos), 0);
    assert_int_equal(ulmf_get_i32(f, "tokenizer.eos_id", &eos), 0);
    assert_int_equal(ulmf_get_i32(f, "tokenizer.pad_id", &pad), 0);
    assert_int_equal(bos, (int32_t)n_tok - 5);
    assert_int_equal(eos, bos + 1);
    assert_int_equal(pad, bos + 2);
    assert_int_equal(((const uint8_t *)types)[bos], TOK_CONTROL);
    assert_int_equal(((const uint8_t *)types)[0], TOK_NORMAL);
    assert_int_equal(offs[bos + 1] - offs[bos], strlen(BPE_BOS));
    assert_memory_equal(blob + offs[bos], BPE_BOS, strlen(BPE_BOS));
    assert_memory_equal(blob + offs[' '], "\xc4\xa0", 2); /* "Ġ" */
    assert_int_equal(ulmf_get_bool(f, "tokenizer.add_bos", &add_bos), 0);
    assert_true(add_bos);
    ulmf_close(f);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pretok_gpt2_rules),
        cmocka_unit_test(test_pretok_covers_random_bytes),
        cmocka_unit_test(test_byte_map),
        cmocka_unit_test(test_learn_and_round_trip),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_stops_when_no_pair_repeats),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_write_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
