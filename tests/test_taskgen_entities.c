/* The entity generator (tasks/entities/gen.c) and its data files: held-out lists disjoint
 * from training ones, same seed -> same bytes, the committed golden file equal to the
 * generator's output, golden entity strings absent from training data, every answer's
 * strings verbatim in its input and in order, dates on the real calendar, and malformed data
 * files refused. Runs from the repository root. */
#include <sys/stat.h>
#define GEN_NO_MAIN
#include "../tasks/entities/gen.c"
#include "test_taskgen.h"

/* ---- entities ---- */

static en_data ed;

static int en_setup(void **state) {
    char err[512];
    if (en_data_load("tasks/entities/data", &ed, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}
static int en_teardown(void **state) { en_data_free(&ed); return 0; }

/* Parses {"people":[...],"organizations":[...],"places":[...],"dates":[...]} (this exact
 * order, compact) into vals[field][i]; returns -1 when the shape is wrong. */
static int parse_entities(const char *s, char *vals[EN_N_FIELDS][EN_MAX_ENT], int n[EN_N_FIELDS]) {
    if (*s++ != '{') return -1;
    for (int k = 0; k < EN_N_FIELDS; k++) {
        char key[32];
        snprintf(key, sizeof key, "%s\"%s\":[", k ? "," : "", en_fields[k]);
        if (strncmp(s, key, strlen(key))) return -1;
        s += strlen(key);
        n[k] = 0;
        while (*s != ']') {
            if (n[k] && *s++ != ',') return -1;
            if (n[k] == EN_MAX_ENT) return -1;
            char *v = json_str(&s);
            if (!v) return -1;
            vals[k][n[k]++] = v;
        }
        s++;
    }
    return strcmp(s, "}") ? -1 : 0;
}

/* Checks an entity answer against its input; counts cases by shape. */
static void check_entity_case(const char *in, const char *out, int *n_empty, int *n_two) {
    char *vals[EN_N_FIELDS][EN_MAX_ENT];
    int n[EN_N_FIELDS], total = 0;
    if (parse_entities(out, vals, n)) fail_msg("malformed answer: %s", out);
    for (int k = 0; k < EN_N_FIELDS; k++) {
        const char *from = in;
        for (int i = 0; i < n[k]; i++) {
            const char *at = strstr(from, vals[k][i]);
            if (!at) fail_msg("'%s' (%s) is not in the input after its predecessors: %s", vals[k][i], en_fields[k], in);
            from = at + strlen(vals[k][i]);
            for (int j = 0; j < i; j++) assert_true(strcmp(vals[k][i], vals[k][j]) != 0);
        }
        for (int i = 0; i < n[k]; i++) free(vals[k][i]);
        total += n[k];
    }
    if (total == 0) (*n_empty)++;
    if (strstr(in, ". ")) (*n_two)++;
}

static void test_entities_lists_disjoint(void **state) {
    for (int k = 0; k < EN_N_LISTS; k++)
        for (int i = 0; i < ed.list[k][1].n; i++)
            for (int j = 0; j < ed.list[k][0].n; j++)
                if (!strcmp(ed.list[k][1].s[i], ed.list[k][0].s[j]))
                    fail_msg("%s: '%s' is both training and golden", en_files[k], ed.list[k][1].s[i]);
    /* no place is also a name or an organization root, in either split */
    static const int others[] = {EN_FIRST, EN_LAST, EN_ORG};
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < ed.list[EN_PLACE][g].n; i++)
            for (int o = 0; o < 3; o++)
                for (int h = 0; h < 2; h++)
                    for (int j = 0; j < ed.list[others[o]][h].n; j++)
                        if (!strcmp(ed.list[EN_PLACE][g].s[i], ed.list[others[o]][h].s[j]))
                            fail_msg("'%s' is a place and a %s entry", ed.list[EN_PLACE][g].s[i], en_files[others[o]]);
    assert_true(ed.list[EN_TEMPLATE][1].n >= 20 && ed.list[EN_FIRST][1].n >= 30 && ed.list[EN_PLACE][1].n >= 30);
    /* the dev templates are a third set: neither training nor golden */
    const en_list *dev = &ed.list[EN_TEMPLATE][2];
    assert_true(dev->n >= 20);
    for (int i = 0; i < dev->n; i++)
        for (int g = 0; g < 2; g++)
            for (int j = 0; j < ed.list[EN_TEMPLATE][g].n; j++)
                if (!strcmp(dev->s[i], ed.list[EN_TEMPLATE][g].s[j])) fail_msg("dev template '%s' is also %s", dev->s[i], g ? "golden" : "training");
}

/* The dev split: 400 cases of the dev templates with golden names, deterministic and equal to
 * the committed dev.jsonl, every answer verbatim and in order, no input shared with golden. */
static void test_entities_dev_split(void **state) {
    char *a, *b;
    size_t na, nb;
    CAPTURE(a, na, en_generate(&ed, EN_DEV, 0, 1, MEM));
    CAPTURE(b, nb, en_generate(&ed, EN_DEV, 0, 7, MEM)); /* the seed is fixed, like golden's */
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    size_t nfile;
    char *file = read_text("tasks/entities/dev.jsonl", &nfile);
    if (nfile != na || memcmp(a, file, na))
        fail_msg("tasks/entities/dev.jsonl differs from the generator's output: regenerate it with gen-entities --split dev");
    free(file);
    pairs_t ps = parse_jsonl(a);
    assert_int_equal(ps.n, EN_GOLDEN_N);
    char *gold = read_text("tasks/entities/golden.jsonl", NULL);
    pairs_t gs = parse_jsonl(gold);
    gen_set golden_in = {0};
    for (int i = 0; i < gs.n; i++) gen_set_add(&golden_in, gen_hash(gs.v[i].in, strlen(gs.v[i].in)));
    int empty = 0, two = 0;
    for (int i = 0; i < ps.n; i++) {
        check_entity_case(ps.v[i].in, ps.v[i].out, &empty, &two);
        assert_false(gen_set_has(&golden_in, gen_hash(ps.v[i].in, strlen(ps.v[i].in))));
    }
    assert_true(two > ps.n / 4);
    gen_set_free(&golden_in);
    pairs_free(&gs);
    pairs_free(&ps);
    free(gold);
    free(a), free(b);
}

static void test_entities_deterministic(void **state) {
    char *a, *b, *c;
    size_t na, nb, nc;
    CAPTURE(a, na, en_generate(&ed, EN_TRAIN, 2000, 3, MEM));
    CAPTURE(b, nb, en_generate(&ed, EN_TRAIN, 2000, 3, MEM));
    CAPTURE(c, nc, en_generate(&ed, EN_TRAIN, 2000, 4, MEM));
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    assert_true(nc != na || memcmp(a, c, na) != 0);
    free(a), free(b), free(c);
}

static void test_entities_golden_committed(void **state) {
    char *gen;
    size_t ngen, nfile;
    CAPTURE(gen, ngen, en_generate(&ed, EN_GOLDEN, 0, 99, MEM));
    char *file = read_text("tasks/entities/golden.jsonl", &nfile);
    if (ngen != nfile || memcmp(gen, file, ngen))
        fail_msg("tasks/entities/golden.jsonl differs from the generator's output: regenerate it with gen-entities");
    pairs_t ps = parse_jsonl(file);
    assert_int_equal(ps.n, EN_GOLDEN_N);
    assert_true(ps.n >= 300);
    int empty = 0, two = 0;
    for (int i = 0; i < ps.n; i++) check_entity_case(ps.v[i].in, ps.v[i].out, &empty, &two);
    assert_true(empty > 0 && empty < ps.n / 10);
    assert_true(two > ps.n / 4);
    pairs_free(&ps);
    free(gen);
    free(file);
}

/* Checks every case of training JSONL text (check_entity_case) and records its inputs and
 * non-date entity strings; returns the number of cases. */
static int add_train_cases(const char *text, gen_set *inputs, gen_set *vals, int *empty, int *two) {
    pairs_t ps = parse_jsonl(text);
    int n = ps.n;
    for (int i = 0; i < ps.n; i++) {
        check_entity_case(ps.v[i].in, ps.v[i].out, empty, two);
        gen_set_add(inputs, gen_hash(ps.v[i].in, strlen(ps.v[i].in)));
        char *v[EN_N_FIELDS][EN_MAX_ENT];
        int nv[EN_N_FIELDS];
        assert_int_equal(parse_entities(ps.v[i].out, v, nv), 0);
        for (int k = 0; k < EN_N_FIELDS; k++)
            for (int j = 0; j < nv[k]; j++) {
                if (k != EN_DATES) gen_set_add(vals, gen_hash(v[k][j], strlen(v[k][j])));
                free(v[k][j]);
            }
    }
    pairs_free(&ps);
    return n;
}

/* No golden input is a recorded training input and no golden person, place or organization
 * string a recorded training entity (acronyms are random letters and may repeat by chance).
 * Returns the number of golden strings checked. */
static int check_golden_unseen(const gen_set *inputs, const gen_set *vals) {
    char *file = read_text("tasks/entities/golden.jsonl", NULL);
    pairs_t ps = parse_jsonl(file);
    int n_vals = 0;
    for (int i = 0; i < ps.n; i++) {
        assert_false(gen_set_has(inputs, gen_hash(ps.v[i].in, strlen(ps.v[i].in))));
        char *v[EN_N_FIELDS][EN_MAX_ENT];
        int nv[EN_N_FIELDS];
        assert_int_equal(parse_entities(ps.v[i].out, v, nv), 0);
        for (int k = 0; k < EN_N_FIELDS; k++)
            for (int j = 0; j < nv[k]; j++) {
                int acronym = k == EN_ORGS && strlen(v[k][j]) <= 4;
                if (k != EN_DATES && !acronym && gen_set_has(vals, gen_hash(v[k][j], strlen(v[k][j]))))
                    fail_msg("golden %s '%s' also appears in training data", en_fields[k], v[k][j]);
                n_vals += k != EN_DATES;
                free(v[k][j]);
            }
    }
    pairs_free(&ps);
    free(file);
    return n_vals;
}

/* Training JSONL text of n cases: every answer well formed and verbatim, and no golden input
 * or golden entity string in it. */
static void check_train_text(const char *text, int n, int *empty, int *two) {
    gen_set train_vals = {0}, train_inputs = {0};
    assert_int_equal(add_train_cases(text, &train_inputs, &train_vals, empty, two), n);
    assert_true(check_golden_unseen(&train_inputs, &train_vals) > 300);
    gen_set_free(&train_vals);
    gen_set_free(&train_inputs);
}

/* Golden entity strings never occur as entities in training data, and golden inputs are
 * never training inputs: also with --novel 50 (invented names, which must never be
 * held-out ones), the data the shipped model is trained on. */
static void test_entities_train_disjoint_from_golden(void **state) {
    gen_set train_vals = {0}, train_inputs = {0};
    static const en_split splits[] = {EN_TRAIN, EN_VALID, EN_TRAIN};
    for (int s = 0; s < 3; s++) {
        char *t;
        size_t n;
        en_novel_pct = s == 2 ? 50 : 0;
        CAPTURE(t, n, en_generate(&ed, splits[s], 10000, 1, MEM));
        en_novel_pct = 0;
        if (s == 2) { /* the invented words are there, and change the data */
            char *plain;
            size_t np;
            CAPTURE(plain, np, en_generate(&ed, EN_TRAIN, 10000, 1, MEM));
            assert_true(np != n || memcmp(plain, t, n) != 0);
            free(plain);
        }
        int empty = 0, two = 0;
        assert_int_equal(add_train_cases(t, &train_inputs, &train_vals, &empty, &two), 10000);
        free(t);
    }
    assert_true(check_golden_unseen(&train_inputs, &train_vals) > 300);
    gen_set_free(&train_vals);
    gen_set_free(&train_inputs);
}

/* The sentence grammar (--grammar): every expansion is a well-formed template that is not a
 * held-out one, it gives many more sentence shapes than the template list, it changes the
 * training data, and golden inputs and entity strings stay out of that data (checked above
 * for the plain data, here for --novel 50 --shapes 30 --grammar 85, the shipped recipe). */
static void test_entities_grammar(void **state) {
    gen_rng r;
    gen_rng_seed(&r, 11);
    gen_str raw = {0};
    gen_set shapes = {0};
    char t[240];
    int n_ok = 0;
    for (int i = 0; i < 20000; i++) {
        if (en_grammar_template(&ed, &r, &raw, t, sizeof t)) continue; /* too long: drawn again */
        n_ok++;
        assert_true(en_template_ok(t));
        assert_true((t[0] >= 'A' && t[0] <= 'Z') || t[0] == '{');
        assert_int_equal(t[strlen(t) - 1], '.');
        assert_null(strstr(t, "  "));
        assert_null(strstr(t, " ,"));
        assert_null(strstr(t, " ."));
        assert_null(strstr(t, ",."));
        for (int g = 1; g <= 2; g++) {
            const en_list *gl = &ed.list[EN_TEMPLATE][g];
            for (int j = 0; j < gl->n; j++)
                if (!strcmp(gl->s[j], t)) fail_msg("the grammar made the held-out template '%s'", t);
        }
        gen_set_add(&shapes, gen_hash(t, strlen(t)));
    }
    assert_true(n_ok > 19000);
    assert_true(shapes.n > 15000); /* far more shapes than the 89 listed templates */
    gen_set_free(&shapes);
    gen_str_free(&raw);

    char *plain, *gram;
    size_t np, ng;
    en_novel_pct = 50;
    CAPTURE(plain, np, en_generate(&ed, EN_TRAIN, 5000, 1, MEM));
    en_grammar_pct = 85;
    en_shape_pct = 30;
    CAPTURE(gram, ng, en_generate(&ed, EN_TRAIN, 5000, 1, MEM));
    en_shape_pct = 0;
    en_grammar_pct = 0;
    en_novel_pct = 0;
    assert_true(np != ng || memcmp(plain, gram, np) != 0);
    int empty = 0, two = 0;
    check_train_text(gram, 5000, &empty, &two);
    assert_true(empty > 0 && two > 5000 / 4);
    free(plain);
    free(gram);
}

/* grammar_fillers.txt (--grammar-file): the grammar plus {w}, invented lowercase words that
 * are never entities; its expansions are well formed, never a held-out template, and the
 * filled examples keep every answer a verbatim span of the input. */
static void test_entities_grammar_fillers(void **state) {
    char err[512];
    en_data d;
    en_grammar_file = "grammar_fillers.txt";
    int rc = en_data_load("tasks/entities/data", &d, err, sizeof err);
    en_grammar_file = "grammar.txt";
    if (rc) fail_msg("%s", err);
    gen_rng r;
    gen_rng_seed(&r, 12);
    gen_str raw = {0}, in = {0};
    char t[240];
    int with_w = 0;
    for (int i = 0; i < 5000; i++) {
        if (en_grammar_template(&d, &r, &raw, t, sizeof t)) continue;
        assert_true(en_template_ok(t));
        const en_list *gl = &d.list[EN_TEMPLATE][1];
        for (int j = 0; j < gl->n; j++)
            if (!strcmp(gl->s[j], t)) fail_msg("the grammar made the held-out template '%s'", t);
        with_w += strstr(t, "{w}") != NULL;
        en_found f;
        memset(f.n, 0, sizeof f.n);
        gen_str_clear(&in);
        if (en_fill(&d, 0, t, &r, &in, &f)) continue;
        assert_null(strchr(in.p, '{'));
        for (int k = 0; k < EN_N_FIELDS; k++)
            for (int j = 0; j < f.n[k]; j++) assert_non_null(strstr(in.p, f.val[k][j]));
    }
    assert_true(with_w > 500);
    en_data_free(&d);
    en_grammar_file = "../no/such.txt"; /* a path, not a name in the data directory: refused */
    assert_int_equal(en_data_load("tasks/entities/data", &d, err, sizeof err) == 0, 0);
    en_grammar_file = "grammar.txt";
    gen_str_free(&raw);
    gen_str_free(&in);
}

/* --shapes: invented words take real-name shapes, each kind its own, and stay valid UTF-8
 * words of letters (the tokenizer and the input constraint see them as the golden names). */
static void test_entities_shapes(void **state) {
    gen_rng r;
    gen_rng_seed(&r, 3);
    en_shape_pct = 100;
    int accent = 0, hyphen = 0, oprefix = 0, two_words = 0, particle = 0, the_place = 0;
    for (int i = 0; i < 4000; i++) {
        int kind = (int[]){EN_FIRST, EN_LAST, EN_PLACE, EN_ORG}[i % 4];
        const char *w = en_novel_word(&ed, kind, &r);
        size_t n = strlen(w);
        /* a last name may start with a lowercase particle ("van der X", "al-X"); its last word,
         * like every other name, starts with a capital */
        const char *tail = kind == EN_LAST ? strrchr(w, ' ') : NULL;
        if (kind == EN_LAST && !tail && strchr(w, '-')) tail = strchr(w, '-');
        tail = tail ? tail + 1 : w;
        if (kind == EN_PLACE && !strncmp(w, "the ", 4)) tail = w + 4, the_place++; /* "the X Islands" */
        assert_true(n >= 3 && n < 96 && tail[0] >= 'A' && tail[0] <= 'Z');
        for (const char *q = w; q < tail; q++) assert_true((*q >= 'a' && *q <= 'z') || *q == ' ' || *q == '-' || q == w);
        particle += tail != w;
        for (size_t j = 0; j < n; j++) {
            unsigned char c = (unsigned char)w[j];
            if (c >= 0x80) { /* a two-byte UTF-8 letter */
                assert_true(c == 0xc3 || c == 0xc5);
                assert_true(j + 1 < n && ((unsigned char)w[j + 1] & 0xc0) == 0x80);
                j++;
                accent += kind != EN_ORG;
                if (kind == EN_ORG) fail_msg("organization root '%s' got a shape", w);
            }
        }
        hyphen += kind == EN_FIRST && strchr(w, '-') != NULL;
        oprefix += kind == EN_LAST && (!strncmp(w, "O'", 2) || !strncmp(w, "Mc", 2));
        two_words += kind == EN_PLACE && strchr(w, ' ') != NULL;
        if (kind != EN_PLACE && kind != EN_LAST) assert_null(strchr(w, ' '));
        const en_list *g = &ed.list[kind][1];
        for (int j = 0; j < g->n; j++) assert_true(strcmp(g->s[j], w) != 0);
    }
    en_shape_pct = 0;
    assert_true(accent > 400 && hyphen > 200 && oprefix > 200 && two_words > 200 && particle > 100);
    assert_true(the_place > 20);
}

/* Decodes one 2-byte UTF-8 letter at s (lead byte 0xC3-0xC5); returns its code point. */
static uint32_t letter_cp(const char *s) {
    unsigned char a = (unsigned char)s[0], b = (unsigned char)s[1];
    assert_true(a >= 0xc3 && a <= 0xc5 && (b & 0xc0) == 0x80);
    return (uint32_t)(a & 0x1f) << 6 | (b & 0x3f);
}

/* Uppercase letters of Latin-1 and Latin Extended-A (the pairs alternate, in two phases). */
static int cp_upper(uint32_t cp) {
    if (cp < 0x100) return cp >= 0xc0 && cp <= 0xde && cp != 0xd7;
    if (cp < 0x138) return cp % 2 == 0;
    if (cp < 0x149) return cp % 2 == 1;
    if (cp < 0x178) return cp % 2 == 0;
    return cp == 0x178 || cp % 2 == 1;
}

/* --letters: accented invented words take letters of the wider Latin alphabets, capitals at
 * the start of a name and small letters inside it ("Łojo", "Wiśnar"), each a 2-byte UTF-8
 * letter; so the data holds the letters the held-out names use. */
static void test_entities_letters(void **state) {
    gen_rng r;
    gen_rng_seed(&r, 5);
    en_shape_pct = en_letters_pct = 100;
    gen_set cps = {0};
    int initial = 0, inner = 0, saw_L = 0, saw_l = 0, saw_s = 0;
    for (int i = 0; i < 6000; i++) {
        int kind = (int[]){EN_FIRST, EN_LAST, EN_PLACE}[i % 3];
        const char *w = en_novel_word(&ed, kind, &r);
        for (size_t j = 0; w[j]; j++) {
            if ((unsigned char)w[j] < 0x80) continue;
            uint32_t cp = letter_cp(w + j);
            int start = j == 0 || w[j - 1] == ' ' || w[j - 1] == '-' || w[j - 1] == '\'';
            /* a capital only where a word of the name starts (a hyphenated first name's
             * second part and "al-X" keep their case) */
            if (cp_upper(cp)) assert_true(start), initial++;
            else inner++;
            saw_L |= cp == 0x141, saw_l |= cp == 0x142, saw_s |= cp == 0x15b;
            gen_set_add(&cps, gen_hash(w + j, 2));
            j++;
        }
    }
    en_shape_pct = en_letters_pct = 0;
    assert_true(saw_L && saw_l && saw_s);
    assert_true(cps.n > 100); /* most of the ~150 letters of the table, both cases */
    assert_true(initial > 150 && inner > 300);
    gen_set_free(&cps);
}

/* --orgs: organizations take forms only training has, the root alone or with a suffix from
 * the second list; the golden split stays the committed file whatever the train-only
 * options, and the data stays valid (every string in its input, in order). */
static void test_entities_orgs(void **state) {
    gen_rng r;
    gen_rng_seed(&r, 6);
    en_novel_pct = 50, en_orgs_pct = 100;
    int alone = 0, more = 0;
    for (int i = 0; i < 2000; i++) {
        char v[96];
        en_entity(&ed, 0, 'O', &r, v, sizeof v);
        const char *sp = strrchr(v, ' ');
        int listed = 0;
        for (size_t k = 0; sp && k < sizeof en_org_suffix_more / sizeof *en_org_suffix_more; k++)
            listed |= !strcmp(sp + 1, en_org_suffix_more[k]);
        for (size_t k = 0; sp && k < sizeof en_org_suffix / sizeof *en_org_suffix; k++)
            if (!strcmp(sp + 1, en_org_suffix[k])) fail_msg("'%s' has a golden suffix", v);
        alone += !listed, more += listed;
    }
    assert_true(alone > 600 && more > 1000);
    en_shape_pct = 30, en_letters_pct = 70, en_compound_pct = 50, en_grammar_pct = 85;
    char *t, *gold;
    size_t n, ng, nfile;
    CAPTURE(t, n, en_generate(&ed, EN_TRAIN, 3000, 1, MEM));
    CAPTURE(gold, ng, en_generate(&ed, EN_GOLDEN, 0, 1, MEM));
    en_novel_pct = en_orgs_pct = en_shape_pct = en_letters_pct = en_compound_pct = en_grammar_pct = 0;
    int empty = 0, two = 0;
    check_train_text(t, 3000, &empty, &two);
    assert_non_null(strstr(t, " Corp"));
    char *file = read_text("tasks/entities/golden.jsonl", &nfile);
    assert_true(ng == nfile && !memcmp(gold, file, ng));
    free(file), free(gold), free(t);
}

/* --of: organizations with "of" (a place, or a field after a head, sometimes after a root).
 * --the-org: a "the" before an institution's name, in the input only;
 * no organization starts with "the ", and no "the" doubles a determiner. The golden split is
 * the committed file with both set. */
static void test_entities_of_and_the(void **state) {
    gen_rng r;
    gen_rng_seed(&r, 8);
    en_novel_pct = 50, en_of_pct = 100;
    int place = 0, field = 0;
    for (int i = 0; i < 2000; i++) {
        char v[96];
        en_entity(&ed, 0, 'O', &r, v, sizeof v);
        const char *of = strstr(v, " of ");
        if (!of) fail_msg("'%s' has no \"of\"", v);
        int is_field = 0;
        for (size_t k = 0; k < sizeof en_of_field / sizeof *en_of_field; k++) is_field |= !strcmp(of + 4, en_of_field[k]);
        place += !is_field, field += is_field;
    }
    assert_true(place > 800 && field > 800);
    assert_true(en_the_org("Bank of Kelm") && en_the_org("Halcyon Foundation") && !en_the_org("Halcyon Motors") &&
                !en_the_org("Halcyon"));
    en_of_pct = 20, en_the_org_pct = 100, en_orgs_pct = 30;
    en_shape_pct = 30, en_letters_pct = 70, en_compound_pct = 50, en_grammar_pct = 85;
    char *t, *gold;
    size_t n, ng, nfile;
    CAPTURE(t, n, en_generate(&ed, EN_TRAIN, 3000, 1, MEM));
    CAPTURE(gold, ng, en_generate(&ed, EN_GOLDEN, 0, 1, MEM));
    en_novel_pct = en_of_pct = en_the_org_pct = en_orgs_pct = en_shape_pct = en_letters_pct = en_compound_pct =
        en_grammar_pct = 0;
    int empty = 0, two = 0;
    check_train_text(t, 3000, &empty, &two);
    assert_null(strstr(t, "the the ")), assert_null(strstr(t, "The the "));
    /* every institution name that is not after a determiner has its "the" */
    int with_the = 0;
    pairs_t ps = parse_jsonl(t);
    for (int c = 0; c < ps.n; c++) {
        const char *in = ps.v[c].in;
        char *vals[EN_N_FIELDS][EN_MAX_ENT];
        int nv[EN_N_FIELDS];
        assert_int_equal(parse_entities(ps.v[c].out, vals, nv), 0);
        for (int k = 0; k < EN_N_FIELDS; k++)
            for (int i = 0; i < nv[k]; i++) {
                const char *v = vals[k][i], *at = strstr(in, v);
                if (k == EN_ORGS && (!strncmp(v, "the ", 4) || !strncmp(v, "The ", 4))) fail_msg("organization '%s'", v);
                if (k == EN_ORGS && en_the_org(v) && at && at - in >= 4 &&
                    (!strncmp(at - 4, "the ", 4) || !strncmp(at - 4, "The ", 4)))
                    with_the++;
                free(vals[k][i]);
            }
    }
    pairs_free(&ps);
    assert_true(with_the > 300);
    char *file = read_text("tasks/entities/golden.jsonl", &nfile);
    assert_true(ng == nfile && !memcmp(gold, file, ng));
    free(file), free(gold), free(t);
}

/* --compound: invented organization roots become compounds of two English parts, one
 * capitalized word of ASCII letters that is no held-out entry of any kind (a compound can
 * spell a golden last name); the data keeps golden strings out and never opens a sentence
 * with a lowercase entity ("the X Islands"). */
static void test_entities_compound_roots(void **state) {
    gen_rng r;
    gen_rng_seed(&r, 4);
    en_compound_pct = 100;
    gen_set roots = {0};
    for (int i = 0; i < 3000; i++) {
        const char *w = en_novel_word(&ed, EN_ORG, &r);
        assert_true(w[0] >= 'A' && w[0] <= 'Z');
        for (const char *q = w + 1; *q; q++) assert_true(*q >= 'a' && *q <= 'z');
        for (int k = EN_FIRST; k <= EN_PLACE; k++)
            for (int j = 0; j < ed.list[k][1].n; j++)
                if (!strcmp(ed.list[k][1].s[j], w)) fail_msg("compound root '%s' is a held-out entry", w);
        gen_set_add(&roots, gen_hash(w, strlen(w)));
    }
    assert_true(roots.n > 1500); /* thousands of compounds, not a list to memorize */
    gen_set_free(&roots);
    en_novel_pct = 50, en_shape_pct = 30, en_grammar_pct = 85;
    char *t;
    size_t n;
    CAPTURE(t, n, en_generate(&ed, EN_TRAIN, 5000, 1, MEM));
    en_novel_pct = en_shape_pct = en_grammar_pct = en_compound_pct = 0;
    int empty = 0, two = 0;
    check_train_text(t, 5000, &empty, &two);
    for (const char *q = t; (q = strstr(q, "{\"input\": \"")); q++) {
        char c = q[11];
        if (c >= 'a' && c <= 'z') fail_msg("an input opens with a lowercase letter: %.60s", q);
    }
    free(t);
}

/* Training data with one shape option at pct (and --novel 50 --grammar 85): every answer
 * verbatim, no golden string (check_train_text). */
static void check_train_with(int *option, int pct) {
    *option = pct, en_novel_pct = 50, en_grammar_pct = 85;
    char *t;
    size_t n;
    CAPTURE(t, n, en_generate(&ed, EN_TRAIN, 5000, 1, MEM));
    *option = en_novel_pct = en_grammar_pct = 0;
    int empty = 0, pairs = 0;
    check_train_text(t, 5000, &empty, &pairs);
    free(t);
}

/* --place-shapes: an invented place is an English compound (one capitalized ASCII word, the
 * organization roots' shape) or two capitalized words (a person's shape), both kinds often,
 * never a held-out entry; the data keeps every answer verbatim and golden strings out. */
static void test_entities_place_shapes(void **state) {
    gen_rng r;
    gen_rng_seed(&r, 5);
    en_place_shape_pct = 100;
    int one = 0, two = 0;
    gen_set seen = {0};
    for (int i = 0; i < 3000; i++) {
        const char *w = en_novel_word(&ed, EN_PLACE, &r);
        int words = 1;
        assert_true(w[0] >= 'A' && w[0] <= 'Z');
        for (const char *q = w + 1; *q; q++) {
            if (*q == ' ') {
                words++;
                assert_true(q[1] >= 'A' && q[1] <= 'Z');
                q++;
                continue;
            }
            assert_true(*q >= 'a' && *q <= 'z');
        }
        assert_true(words <= 2);
        if (words == 1) one++;
        else two++;
        for (int k = EN_FIRST; k <= EN_PLACE; k++)
            for (int j = 0; j < ed.list[k][1].n; j++)
                if (!strcmp(ed.list[k][1].s[j], w)) fail_msg("invented place '%s' is a held-out entry", w);
        gen_set_add(&seen, gen_hash(w, strlen(w)));
    }
    assert_true(one > 1200 && two > 1200);
    assert_true(seen.n > 2000);
    gen_set_free(&seen);
    check_train_with(&en_place_shape_pct, 30);
}

/* --last-shapes: an invented last name is, that often, an English compound (one capitalized
 * ASCII word with no capital inside), never a held-out entry; off, no invented last name is one
 * of those compounds' exact spellings more than by chance; the data keeps answers verbatim. */
static void test_entities_last_shapes(void **state) {
    gen_rng r;
    gen_rng_seed(&r, 6);
    en_last_shape_pct = 40;
    int compound = 0;
    gen_set seen = {0};
    for (int i = 0; i < 3000; i++) {
        const char *w = en_novel_word(&ed, EN_LAST, &r);
        assert_true(w[0] >= 'A' && w[0] <= 'Z');
        int plain = 1;
        for (const char *q = w + 1; *q; q++) plain &= *q >= 'a' && *q <= 'z';
        /* a compound ends in one of en_compound's tails; syllable words rarely do */
        if (plain && strlen(w) >= 6 &&
            (strstr(w, "wood") || strstr(w, "combe") || strstr(w, "field") || strstr(w, "brook") ||
             strstr(w, "stone") || strstr(w, "gate") || strstr(w, "ford") || strstr(w, "worth")))
            compound++;
        for (int k = EN_FIRST; k <= EN_PLACE; k++)
            for (int j = 0; j < ed.list[k][1].n; j++)
                if (!strcmp(ed.list[k][1].s[j], w)) fail_msg("invented last name '%s' is a held-out entry", w);
        gen_set_add(&seen, gen_hash(w, strlen(w)));
    }
    /* 8 of en_compound's 54 tails counted: about 40% x 8/54 x 3000 = 178 expected */
    assert_in_range(compound, 100, 300);
    assert_true(seen.n > 2000);
    gen_set_free(&seen);
    en_last_shape_pct = 0;
    gen_rng_seed(&r, 6);
    int off = 0;
    for (int i = 0; i < 3000; i++) {
        const char *w = en_novel_word(&ed, EN_LAST, &r);
        if (strstr(w, "wood") || strstr(w, "combe") || strstr(w, "brook") || strstr(w, "worth")) off++;
    }
    assert_true(off < 10);
    check_train_with(&en_last_shape_pct, 30);
}

/* The grammar's weekdays: a weekday alone ("On Friday", "Friday, X ...") appears in training
 * inputs and is never an entity nor the start of one; only a full date may hold it
 * ("Friday, March 3, 2021"). */
/* {R}: an organization as its bare root, one word from the training roots (or an invented
 * one), filed under organizations; the grammar's bare-root block then puts one-word
 * organizations after the prepositions places take ("employees at X"), beside places. */
static void test_entities_bare_root(void **state) {
    gen_rng r;
    gen_rng_seed(&r, 8);
    assert_true(en_template_ok("Staff at {R} met {P}.") && !en_template_ok("{Q} met {P}."));
    en_novel_pct = 50, en_compound_pct = 50;
    int listed = 0;
    for (int i = 0; i < 1000; i++) {
        char v[96];
        en_entity(&ed, 0, 'R', &r, v, sizeof v);
        if (strchr(v, ' ')) fail_msg("'%s' is more than a root", v);
        const en_list *l = &ed.list[EN_ORG][0];
        for (int k = 0; k < l->n; k++) listed += !strcmp(l->s[k], v);
        const en_list *g = &ed.list[EN_ORG][1];
        for (int k = 0; k < g->n; k++)
            if (!strcmp(g->s[k], v)) fail_msg("'%s' is a held-out root", v);
    }
    assert_true(listed > 300 && listed < 700);
    en_grammar_pct = 100;
    char *t;
    size_t n;
    CAPTURE(t, n, en_generate(&ed, EN_TRAIN, 3000, 1, MEM));
    en_novel_pct = en_compound_pct = en_grammar_pct = 0;
    int empty = 0, two = 0, org_after_at = 0;
    check_train_text(t, 3000, &empty, &two);
    pairs_t ps = parse_jsonl(t);
    for (int c = 0; c < ps.n; c++) {
        char *vals[EN_N_FIELDS][EN_MAX_ENT];
        int nv[EN_N_FIELDS];
        assert_int_equal(parse_entities(ps.v[c].out, vals, nv), 0);
        for (int k = 0; k < EN_N_FIELDS; k++)
            for (int i = 0; i < nv[k]; i++) {
                char q[128];
                snprintf(q, sizeof q, " at %s ", vals[k][i]);
                org_after_at += k == EN_ORGS && !strchr(vals[k][i], ' ') && strstr(ps.v[c].in, q);
                free(vals[k][i]);
            }
    }
    pairs_free(&ps);
    assert_true(org_after_at > 50); /* 75 with the block, 23 without */
    free(t);
}

static void test_entities_weekdays(void **state) {
    static const char *const wd[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
    en_novel_pct = 50, en_grammar_pct = 85;
    char *t;
    size_t n;
    CAPTURE(t, n, en_generate(&ed, EN_TRAIN, 5000, 1, MEM));
    en_novel_pct = en_grammar_pct = 0;
    int bare = 0;
    for (char *line = t; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        const char *o = strstr(line, "\"output\": ");
        assert_non_null(o);
        for (size_t k = 0; k < 7; k++) {
            char q[32];
            snprintf(q, sizeof q, "\\\"%s", wd[k]); /* an answer string that opens with it */
            const char *at = strstr(o, q);
            if (at) { /* only a date opens with one: "Friday, March 3, 2021" */
                const char *after = at + 2 + strlen(wd[k]);
                int month = 0;
                for (int m = 0; m < 12 && !strncmp(after, ", ", 2); m++)
                    month |= !strncmp(after + 2, en_months[m], strlen(en_months[m]));
                if (!month) fail_msg("a weekday opens an entity that is no date: %s", line);
            }
            const char *in = strstr(line, wd[k]);
            if (in && in < o && strncmp(in + strlen(wd[k]), ", ", 2)) bare++;
        }
        line = nl ? nl + 1 : NULL;
    }
    assert_true(bare > 50);
    free(t);
}

static void test_entities_dates(void **state) {
    assert_int_equal(en_weekday(2024, 1, 1), 1);   /* Monday */
    assert_int_equal(en_weekday(2000, 2, 29), 2);  /* Tuesday */
    assert_int_equal(en_weekday(1969, 7, 20), 0);  /* Sunday */
    assert_int_equal(en_days_in(2000, 2), 29);
    assert_int_equal(en_days_in(1900, 2), 28);
    assert_string_equal(en_ordinal(11), "th");
    assert_string_equal(en_ordinal(22), "nd");
    assert_string_equal(en_ordinal(31), "st");
    gen_rng r;
    gen_rng_seed(&r, 5);
    int seen_dash = 0, seen_weekday = 0, seen_slash = 0;
    for (int i = 0; i < 2000; i++) {
        char buf[96];
        en_date(&r, 'D', buf, sizeof buf);
        seen_dash += strchr(buf, '-') != NULL;
        seen_slash += strchr(buf, '/') != NULL;
        seen_weekday += strstr(buf, "day, ") != NULL;
        int y, m, d;
        if (sscanf(buf, "%d-%d-%d", &y, &m, &d) == 3) {
            assert_true(y >= 1950 && y <= 2035 && m >= 1 && m <= 12 && d >= 1 && d <= en_days_in(y, m));
        }
    }
    assert_true(seen_dash > 100 && seen_slash > 100 && seen_weekday > 100);
}

static void test_entities_bad_data(void **state) {
    char dir[256], path[300], err[512];
    test_tmp_path(dir, sizeof dir, "entdata");
    assert_int_equal(mkdir(dir, 0700), 0);
    for (int k = 0; k < EN_N_LISTS; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, en_files[k]);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fputs(k == EN_TEMPLATE ? "{P} met {Q}.\n## golden\n{P} left.\n" : "A\n## golden\nB\n", f);
        fclose(f);
    }
    en_data d;
    assert_int_equal(en_data_load(dir, &d, err, sizeof err), -1); /* unknown slot {Q} */
    assert_non_null(strstr(err, "templates.txt:1"));
    snprintf(path, sizeof path, "%s/%s", dir, en_files[EN_TEMPLATE]);
    FILE *f = fopen(path, "wb");
    fputs("{P} met {P}.\n", f); /* no golden section */
    fclose(f);
    assert_int_equal(en_data_load(dir, &d, err, sizeof err), -1);
    f = fopen(path, "wb");
    fputs("{P} met {L}.\n## golden\n{P} left {O} on {D}.\n", f);
    fclose(f);
    assert_int_equal(en_data_load(dir, &d, err, sizeof err), -1); /* no grammar.txt */
    assert_non_null(strstr(err, "grammar.txt"));
    f = fopen(path, "wb");
    fputs("{P} met {L}.\n## dev\n{P} left.\n## golden\n{P} left {O} on {D}.\n", f); /* dev before golden */
    fclose(f);
    assert_int_equal(en_data_load(dir, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "templates.txt:2"));
    snprintf(path, sizeof path, "%s/%s", dir, en_files[EN_PLACE]);
    f = fopen(path, "wb");
    fputs("A\n## golden\nB\n## dev\nC\n", f); /* dev is for templates only */
    fclose(f);
    assert_int_equal(en_data_load(dir, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "places.txt:4"));
    f = fopen(path, "wb");
    fputs("A\n## golden\nB\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s", dir, en_files[EN_TEMPLATE]);
    f = fopen(path, "wb");
    fputs("{P} met {L}.\n## golden\n{P} left {O} on {D}.\n", f);
    fclose(f);
    static const char *const bad_grammar[] = {
        "<sentence> = {P} <verb> {L} .\n",         /* <verb> undefined */
        "<sentence> = {P} left {Q} .\n",           /* unknown slot */
        "sentence = {P} left .\n",                 /* not a <name> */
        "<sentence> = {P} left | | {P} stayed .\n", /* empty alternative (use ~) */
        "<clause> = {P} left\n",                   /* no <sentence> */
        "<sentence> = {P} said \"hi\" .\n",        /* quote */
    };
    snprintf(path, sizeof path, "%s/grammar.txt", dir);
    for (size_t i = 0; i < sizeof bad_grammar / sizeof *bad_grammar; i++) {
        f = fopen(path, "wb");
        fputs(bad_grammar[i], f);
        fclose(f);
        err[0] = 0;
        if (en_data_load(dir, &d, err, sizeof err) != -1) fail_msg("accepted grammar %s", bad_grammar[i]);
        assert_non_null(strstr(err, "grammar.txt"));
    }
    f = fopen(path, "wb");
    fputs("# ok\n<sentence> = <who> left . | {P} stayed in {L} .\n<who> = {P} | ~\n<who> = Dr. {P}\n", f);
    fclose(f);
    assert_int_equal(en_data_load(dir, &d, err, sizeof err), 0);
    assert_int_equal(d.n_rule, 2);
    assert_int_equal(en_rule_find(&d, "<who>", 5)->alt.n, 3);
    gen_rng r;
    gen_rng_seed(&r, 1);
    gen_str raw = {0};
    char t[240];
    int seen[3] = {0, 0, 0};
    for (int i = 0; i < 200; i++) {
        assert_int_equal(en_grammar_template(&d, &r, &raw, t, sizeof t), 0);
        if (!strcmp(t, "{P} left.")) seen[0]++;
        else if (!strcmp(t, "Left.")) seen[1]++;
        else if (!strcmp(t, "Dr. {P} left.")) seen[2]++;
        else if (strcmp(t, "{P} stayed in {L}.")) fail_msg("unexpected expansion '%s'", t);
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    gen_str_free(&raw);
    en_data_free(&d);
    unlink(path);
    for (int k = 0; k < EN_N_LISTS; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, en_files[k]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entities_lists_disjoint),
        cmocka_unit_test(test_entities_deterministic),
        cmocka_unit_test(test_entities_golden_committed),
        cmocka_unit_test(test_entities_train_disjoint_from_golden),
        cmocka_unit_test(test_entities_grammar),
        cmocka_unit_test(test_entities_dev_split),
        cmocka_unit_test(test_entities_shapes),
        cmocka_unit_test(test_entities_compound_roots),
        cmocka_unit_test(test_entities_place_shapes),
        cmocka_unit_test(test_entities_last_shapes),
        cmocka_unit_test(test_entities_weekdays),
        cmocka_unit_test(test_entities_bare_root),
        cmocka_unit_test(test_entities_letters),
        cmocka_unit_test(test_entities_orgs),
        cmocka_unit_test(test_entities_of_and_the),
        cmocka_unit_test(test_entities_grammar_fillers),
        cmocka_unit_test(test_entities_dates),
        cmocka_unit_test(test_entities_bad_data),
    };
    return cmocka_run_group_tests(tests, en_setup, en_teardown);
}
