/* The haiku generator (tasks/haiku/gen.c) and its committed data: lexicon sanity (and a
 * cross-check against the CMU dictionary when festlex-cmu is installed), same seed -> same
 * bytes, committed golden files equal to the generator's output, train/golden disjointness,
 * and every golden answer checked against the lexicon (lines really 5/7/5, refusals really
 * not haiku). Runs from the repository root, like the rest of the suite. */
#define GEN_NO_MAIN
#include "../tasks/haiku/gen.c"
#include "test_taskgen.h"

/* ---- haiku ---- */

static hk_lexicon lx;

static int hk_setup(void **state) {
    char err[512];
    if (hk_lexicon_load("tasks/haiku/lexicon.tsv", &lx, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}
static int hk_teardown(void **state) { hk_lexicon_free(&lx); return 0; }

static int syl_of(const char *w) { return hk_syllables(&lx, w, strlen(w)); }

static void test_lexicon_sanity(void **state) {
    assert_true(lx.n >= 2500 && lx.n <= 6000);
    int oov = 0, hist[HK_MAX_SYL + 1] = {0};
    for (int i = 0; i < lx.n; i++) {
        for (const char *c = lx.w[i].word; *c; c++) assert_true(*c >= 'a' && *c <= 'z');
        oov += lx.w[i].oov;
        hist[lx.w[i].syl]++;
    }
    assert_true(oov >= 50 && oov * 10 < lx.n);
    for (int k = 1; k <= 4; k++) assert_true(hist[k] >= 100);
    /* hand-checked counts, including the classic poem's words */
    static const struct { const char *w; int syl; } known[] = {
        {"an", 1}, {"old", 1}, {"silent", 2}, {"pond", 1}, {"a", 1}, {"frog", 1}, {"jumps", 1},
        {"into", 2}, {"the", 1}, {"splash", 1}, {"silence", 2}, {"again", 2}, {"company", 3},
        {"government", 3}, {"autumn", 2}, {"cherry", 2}, {"blossom", 2}, {"moon", 1}, {"river", 2}};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        if (syl_of(known[i].w) != known[i].syl)
            fail_msg("'%s': lexicon says %d syllables, want %d", known[i].w, syl_of(known[i].w), known[i].syl);
    }
    /* left out on purpose: counted differently by different speakers */
    assert_int_equal(syl_of("fire"), -1);
    assert_int_equal(syl_of("hour"), -1);
    assert_int_equal(syl_of("ponds"), -1); /* not a word of this lexicon: lookup is exact */
    assert_int_equal(syl_of("pon"), -1);
}

/* Cross-checks every lexicon word against the CMU dictionary it came from, when installed. */
static void test_lexicon_matches_cmu(void **state) {
    const char *path = "/usr/share/festival/dicts/cmu/cmudict-0.4.out";
    size_t len;
    char *t = gen_read_file(path, &len);
    if (!t) { print_message("skipped: %s not installed (festlex-cmu)\n", path); skip(); }
    int *seen = calloc((size_t)lx.n, sizeof *seen), checked = 0;
    for (char *line = t, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (line[0] != '(' || line[1] != '"') continue;
        char *q = strchr(line + 2, '"');
        if (!q) continue;
        int s = hk_syllables(&lx, line + 2, (size_t)(q - line - 2));
        if (s < 0) continue;
        int n = 0; /* syllables are "((phones) stress)": count ") D)" */
        for (char *c = q; (c = strchr(c, ')')); c++)
            if (c[1] == ' ' && c[2] >= '0' && c[2] <= '9' && c[3] == ')') n++;
        if (n != s) fail_msg("'%.*s': CMU has %d syllables, lexicon %d", (int)(q - line - 2), line + 2, n, s);
        int idx = lx.sorted[0]; /* mark found: look the word up again for its index */
        for (int lo = 0, hi = lx.n - 1; lo <= hi;) {
            int mid = (lo + hi) / 2, c = strncmp(lx.w[lx.sorted[mid]].word, line + 2, (size_t)(q - line - 2));
            if (c == 0) c = lx.w[lx.sorted[mid]].word[q - line - 2] ? 1 : 0;
            if (c == 0) { idx = lx.sorted[mid]; break; }
            if (c < 0) lo = mid + 1; else hi = mid - 1;
        }
        if (!seen[idx]++) checked++;
    }
    assert_int_equal(checked, lx.n); /* every lexicon word is in CMU */
    free(seen);
    free(t);
}

/* 5/7/5 check of an output against its input, by the lexicon. */
static void check_haiku_case(const char *in, const char *out, int *n_pos, int *n_split, int *n_total) {
    int total = 0, c5 = 0, c12 = 0;
    char words[64][32];
    int nw = 0;
    for (const char *p = in; *p;) {
        const char *e = strchr(p, ' ');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        assert_true(k > 0 && k < 32 && nw < 64);
        memcpy(words[nw], p, k);
        words[nw][k] = 0;
        int s = syl_of(words[nw]);
        if (s < 0) fail_msg("'%s': word '%s' not in the lexicon", in, words[nw]);
        nw++;
        total += s;
        if (total == 5) c5 = 1;
        if (total == 12) c12 = 1;
        p += k;
        if (*p) p++;
    }
    int is_haiku = total == 17 && c5 && c12;
    if (!is_haiku) {
        assert_string_equal(out, HAIKU_REFUSAL);
        if (total == 17) (*n_split)++; else (*n_total)++;
        return;
    }
    (*n_pos)++;
    /* same words, same order, two of the spaces turned into line breaks, lines 5/7/5 */
    int line = 0, line_syl[3] = {0, 0, 0}, wi = 0;
    for (const char *p = out; *p;) {
        size_t k = strcspn(p, " \n");
        assert_true(wi < nw && strlen(words[wi]) == k && !strncmp(p, words[wi], k));
        line_syl[line] += syl_of(words[wi]);
        wi++;
        p += k;
        if (*p == '\n') { line++; assert_true(line < 3); }
        if (*p) p++;
    }
    assert_int_equal(wi, nw);
    assert_int_equal(line, 2);
    if (line_syl[0] != 5 || line_syl[1] != 7 || line_syl[2] != 5)
        fail_msg("'%s': lines have %d/%d/%d syllables", out, line_syl[0], line_syl[1], line_syl[2]);
}

static void test_haiku_deterministic(void **state) {
    char *a, *b, *c;
    size_t na, nb, nc;
    CAPTURE(a, na, hk_generate(&lx, HK_TRAIN, 3000, 7, MEM));
    CAPTURE(b, nb, hk_generate(&lx, HK_TRAIN, 3000, 7, MEM));
    CAPTURE(c, nc, hk_generate(&lx, HK_TRAIN, 3000, 8, MEM));
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    assert_true(nc != na || memcmp(a, c, na) != 0);
    free(a), free(b), free(c);
}

static void test_haiku_golden_committed(void **state) {
    static const struct { hk_split split; const char *path; int n; } files[] = {
        {HK_GOLDEN, "tasks/haiku/golden.jsonl", HK_GOLDEN_N},
        {HK_GOLDEN_OOV, "tasks/haiku/golden_oov.jsonl", HK_GOLDEN_OOV_N}};
    for (int f = 0; f < 2; f++) {
        char *gen;
        size_t ngen, nfile;
        CAPTURE(gen, ngen, hk_generate(&lx, files[f].split, 0, 12345, MEM));
        char *file = read_text(files[f].path, &nfile);
        if (ngen != nfile || memcmp(gen, file, ngen))
            fail_msg("%s differs from the generator's output: regenerate it with gen-haiku", files[f].path);
        pairs_t ps = parse_jsonl(file);
        assert_int_equal(ps.n, files[f].n);
        int pos = 0, split = 0, total = 0;
        for (int i = 0; i < ps.n; i++) check_haiku_case(ps.v[i].in, ps.v[i].out, &pos, &split, &total);
        if (f == 0) {
            assert_true(ps.n >= 300);
            int neg = split + total; /* refusals 30-40%, both kinds of negative present */
            assert_true(neg * 100 >= ps.n * 30 && neg * 100 <= ps.n * 40);
            assert_true(split >= ps.n / 10 && total >= ps.n / 10);
        }
        for (int i = 0; i < ps.n; i++) { /* golden_oov: >= 2 held-out words each; golden: none */
            int k = 0;
            char *w = strdup(ps.v[i].in);
            for (char *t = strtok(w, " "); t; t = strtok(NULL, " ")) {
                int lo = 0, hi = lx.n - 1;
                while (lo <= hi) {
                    int mid = (lo + hi) / 2, c = strcmp(lx.w[lx.sorted[mid]].word, t);
                    if (c == 0) { k += lx.w[lx.sorted[mid]].oov; break; }
                    if (c < 0) lo = mid + 1; else hi = mid - 1;
                }
            }
            free(w);
            if (f == 0) assert_int_equal(k, 0);
            else assert_true(k >= 2);
        }
        pairs_free(&ps);
        free(gen);
        free(file);
    }
}

static void test_haiku_train_disjoint_from_golden(void **state) {
    gen_set golden = {0};
    const char *paths[] = {"tasks/haiku/golden.jsonl", "tasks/haiku/golden_oov.jsonl"};
    for (int f = 0; f < 2; f++) {
        char *t = read_text(paths[f], NULL);
        pairs_t ps = parse_jsonl(t);
        for (int i = 0; i < ps.n; i++) assert_int_equal(gen_set_add(&golden, gen_hash(ps.v[i].in, strlen(ps.v[i].in))), 1);
        pairs_free(&ps);
        free(t);
    }
    /* every word of train/valid is a "train" lexicon word; no input is a golden input */
    static const hk_split splits[] = {HK_TRAIN, HK_VALID};
    for (int s = 0; s < 2; s++) {
        char *t;
        size_t n;
        CAPTURE(t, n, hk_generate(&lx, splits[s], 20000, 1, MEM));
        pairs_t ps = parse_jsonl(t);
        assert_int_equal(ps.n, 20000);
        int pos = 0, split = 0, total = 0;
        for (int i = 0; i < ps.n; i++) {
            assert_false(gen_set_has(&golden, gen_hash(ps.v[i].in, strlen(ps.v[i].in))));
            check_haiku_case(ps.v[i].in, ps.v[i].out, &pos, &split, &total);
            char *w = strdup(ps.v[i].in);
            for (char *tok = strtok(w, " "); tok; tok = strtok(NULL, " "))
                for (int lo = 0, hi = lx.n - 1; lo <= hi;) {
                    int mid = (lo + hi) / 2, c = strcmp(lx.w[lx.sorted[mid]].word, tok);
                    if (c == 0) { assert_int_equal(lx.w[lx.sorted[mid]].oov, 0); break; }
                    if (c < 0) lo = mid + 1; else hi = mid - 1;
                }
            free(w);
        }
        assert_true(pos > 12000 && pos < 14000); /* 65% haiku */
        assert_true(split > 3000 && total > 3000);
        pairs_free(&ps);
        free(t);
    }
    gen_set_free(&golden);
}

static void test_haiku_bad_lexicon(void **state) {
    char path[256], err[512];
    test_tmp_path(path, sizeof path, "lex.tsv");
    static const char *const bad[] = {
        "word\t2\ttrain\n",              /* missing rank */
        "Word\t1\ttrain\t1\n",           /* not lowercase */
        "pond\t0\ttrain\t1\n",           /* zero syllables */
        "pond\t1\tsometimes\t1\n",       /* unknown split */
        "pond\t1\ttrain\t1\npond\t1\ttrain\t2\n", /* duplicate */
        "# only a comment\n",
        "pond\t1\ttrain\t1\n",           /* no two-syllable training word */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        hk_lexicon l2;
        err[0] = 0;
        assert_int_equal(hk_lexicon_load(path, &l2, err, sizeof err), -1);
        assert_true(err[0] != 0);
    }
    unlink(path);
    hk_lexicon l3;
    assert_int_equal(hk_lexicon_load("/nonexistent/lexicon.tsv", &l3, err, sizeof err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lexicon_sanity),
        cmocka_unit_test(test_lexicon_matches_cmu),
        cmocka_unit_test(test_haiku_deterministic),
        cmocka_unit_test(test_haiku_golden_committed),
        cmocka_unit_test(test_haiku_train_disjoint_from_golden),
        cmocka_unit_test(test_haiku_bad_lexicon),
    };
    return cmocka_run_group_tests(tests, hk_setup, hk_teardown);
}
