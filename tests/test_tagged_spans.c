/* Tagged spans (engine/tagged_spans.c): model text -> JSON answer, JSON answer -> model text,
 * their round trip, and every malformed text or answer refused with an error. */
#include "json.h"
#include "tagged_spans.h"
#include "test_util.h"

static json_doc *form_doc(const char *text, tagged_form *f) {
    json_doc *d;
    ulm_error err;
    assert_int_equal(json_parse(text, strlen(text), &d, &err), ULM_OK);
    assert_int_equal(tagged_form_parse(json_root(d), f, &err), ULM_OK);
    return d;
}

#define FORM "{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"people\",\"o\":\"organizations\",\"l\":\"places\",\"d\":\"dates\"}}"

static void test_to_json(void **state) {
    (void)state;
    tagged_form f;
    json_doc *d = form_doc(FORM, &f);
    assert_int_equal(f.n_tags, 4);
    assert_int_equal(f.max_items, 32);
    static const struct { const char *text, *json; } cases[] = {
        {"", "{\"people\":[],\"organizations\":[],\"places\":[],\"dates\":[]}"},
        {"Ada Lovelace\x1fpAcme\x1foParis\x1fl1843\x1f" "d",
         "{\"people\":[\"Ada Lovelace\"],\"organizations\":[\"Acme\"],\"places\":[\"Paris\"],\"dates\":[\"1843\"]}"},
        /* lists keep the order of appearance; a repeat under one key is dropped, not across keys */
        {"Paris\x1flBo\x1fpParis\x1flParis\x1foAnn\x1fp",
         "{\"people\":[\"Bo\",\"Ann\"],\"organizations\":[\"Paris\"],\"places\":[\"Paris\"],\"dates\":[]}"},
        /* quotes, backslashes and non-ASCII are escaped as JSON needs */
        {"Bo \"the\" C\\o\x1fpS\xc3\xa3o\x1fl",
         "{\"people\":[\"Bo \\\"the\\\" C\\\\o\"],\"organizations\":[],\"places\":[\"S\xc3\xa3o\"],\"dates\":[]}"},
    };
    ulm_error err;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *j;
        size_t jl;
        assert_int_equal(tagged_to_json(&f, cases[i].text, strlen(cases[i].text), &j, &jl, &err), ULM_OK);
        assert_string_equal(j, cases[i].json);
        assert_int_equal(jl, strlen(cases[i].json));
        free(j);
    }
    static const char *const bad[] = {"Ann", "Ann\x1f", "Ann\x1fx", "\x1fp", "Ann\x1fpBo", "Ann\x1fp\x1fp", "Ann\x1fpp"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *j = (char *)1;
        assert_int_equal(tagged_to_json(&f, bad[i], strlen(bad[i]), &j, NULL, &err), ULM_ERR_FORMAT);
        assert_null(j);
    }
    /* more items than any form allows */
    char many[TAGGED_MAX_ITEMS * 3 + 10];
    size_t n = 0;
    for (int i = 0; i <= TAGGED_MAX_ITEMS; i++) many[n++] = 'a', many[n++] = 0x1f, many[n++] = 'p';
    char *j;
    assert_int_equal(tagged_to_json(&f, many, n, &j, NULL, &err), ULM_ERR_FORMAT);
    json_free(d);
}

static void test_from_json(void **state) {
    (void)state;
    tagged_form f;
    json_doc *d = form_doc(FORM, &f);
    ulm_error err;
    static const struct { const char *in, *json, *text; } cases[] = {
        {"Ada Lovelace met Acme in Paris in 1843.",
         "{\"people\":[\"Ada Lovelace\"],\"organizations\":[\"Acme\"],\"places\":[\"Paris\"],\"dates\":[\"1843\"]}",
         "Ada Lovelace\x1fpAcme\x1foParis\x1fl1843\x1f" "d"},
        /* items ordered by where they start, across keys; missing keys are empty lists */
        {"In Oslo, Bo Li and Ann met.", "{\"people\":[\"Bo Li\",\"Ann\"],\"places\":[\"Oslo\"]}",
         "Oslo\x1flBo Li\x1fpAnn\x1fp"},
        /* a name inside a longer word is not a word span: the next occurrence is */
        {"Annabel saw Ann.", "{\"people\":[\"Ann\"]}", "Ann\x1fp"},
        {"Ann \"Bo\" Li said no.", "{\"people\":[\"Ann \\\"Bo\\\" Li\"]}", "Ann \"Bo\" Li\x1fp"},
        /* a string an earlier key holds is passed over: the place is the second "Sko" */
        {"Sko-bri Li went to Sko.", "{\"people\":[\"Sko-bri Li\"],\"places\":[\"Sko\"]}",
         "Sko-bri Li\x1fpSko\x1fl"},
        {"Nothing here.", "{\"people\":[],\"organizations\":[],\"places\":[],\"dates\":[]}", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *t;
        size_t tl;
        assert_int_equal(tagged_from_json(&f, cases[i].in, strlen(cases[i].in), cases[i].json, strlen(cases[i].json), &t,
                                          &tl, &err), ULM_OK);
        assert_string_equal(t, cases[i].text);
        assert_int_equal(tl, strlen(cases[i].text));
        free(t);
    }
    static const struct { const char *in, *json; } bad[] = {
        {"Ann met Bo.", "{\"people\":[\"Cy\"]}"},                      /* not in the input */
        {"Ann met Bo.", "{\"people\":[\"An\"]}"},                      /* not a word span */
        {"Ann met Bo.", "{\"people\":[\"Bo\",\"Ann\"]}"},              /* list out of order */
        {"Ann met Bo.", "{\"people\":[\"Ann met\"],\"places\":[\"met Bo\"]}"}, /* overlap */
        {"Sko-bri Li met Bo.", "{\"people\":[\"Sko-bri Li\"],\"places\":[\"Sko\"]}"}, /* no free "Sko" */
        {"Ann met Bo.", "{\"people\":[\"Ann\"],\"pets\":[]}"},         /* a key no tag names */
        {"Ann met Bo.", "{\"people\":\"Ann\"}"},
        {"Ann met Bo.", "{\"people\":[1]}"},
        {"Ann met Bo.", "[\"Ann\"]"},
        {"Ann met Bo.", "{\"people\":[\"Ann\""},
        {"Ann met Bo.", "{\"people\":[\"\"]}"},
        {"Ann\tmet Bo.", "{\"people\":[\"Ann\\tmet\"]}"},              /* control characters never copied */
        {"Ann met Bo.", "{\"people\":[\"Bo.\"]}"},                     /* ends outside a word */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *t = (char *)1;
        if (tagged_from_json(&f, bad[i].in, strlen(bad[i].in), bad[i].json, strlen(bad[i].json), &t, NULL, &err) !=
            ULM_ERR_FORMAT)
            fail_msg("accepted: %s", bad[i].json);
        assert_null(t);
    }
    json_free(d);
    /* max_items bounds the answer */
    d = form_doc("{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"people\"},\"max_items\":2}", &f);
    char *t;
    assert_int_equal(tagged_from_json(&f, "A B C", 5, "{\"people\":[\"A\",\"B\",\"C\"]}", 24, &t, NULL, &err),
                     ULM_ERR_FORMAT);
    json_free(d);
}

/* "space_before_spans": the model text puts one space before each span; reading it back drops
 * that space, and text without it is malformed. */
static void test_space_before_spans(void **state) {
    (void)state;
    tagged_form f;
    json_doc *d = form_doc("{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"people\",\"l\":\"places\"},\"space_before_spans\":true}", &f);
    assert_int_equal(f.space, 1);
    ulm_error err;
    const char *in = "Ada Lovelace left (for Paris) in 1843.";
    const char *json = "{\"people\":[\"Ada Lovelace\"],\"places\":[\"Paris\"]}";
    char *t, *j;
    size_t tl, jl;
    assert_int_equal(tagged_from_json(&f, in, strlen(in), json, strlen(json), &t, &tl, &err), ULM_OK);
    assert_string_equal(t, " Ada Lovelace\x1fp Paris\x1fl");
    assert_int_equal(tagged_to_json(&f, t, tl, &j, &jl, &err), ULM_OK);
    assert_string_equal(j, "{\"people\":[\"Ada Lovelace\"],\"places\":[\"Paris\"]}");
    free(t);
    free(j);
    assert_int_equal(tagged_to_json(&f, "", 0, &j, &jl, &err), ULM_OK); /* no items */
    free(j);
    static const char *const bad[] = {"Ada\x1fp", " Ada\x1fpParis\x1fl", " \x1fp", " Ada\x1fp \x1fl", " "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        j = (char *)1;
        if (tagged_to_json(&f, bad[i], strlen(bad[i]), &j, NULL, &err) != ULM_ERR_FORMAT) fail_msg("accepted bad %zu", i);
        assert_null(j);
    }
    json_free(d);
    /* off by default, and a value that is not a boolean is a spec error */
    d = form_doc(FORM, &f);
    assert_int_equal(f.space, 0);
    json_free(d);
    json_doc *bd;
    assert_int_equal(json_parse("{\"tags\":{\"p\":\"a\"},\"space_before_spans\":\"yes\"}", 45, &bd, &err), ULM_OK);
    assert_int_equal(tagged_form_parse(json_root(bd), &f, &err), ULM_ERR_SPEC);
    json_free(bd);
}

/* Every golden answer of the shipped entity task is written and read back unchanged. */
static void test_round_trip_golden(void **state) {
    (void)state;
    char *text = test_read_file("tasks/entities/golden.jsonl", NULL);
    if (!text) fail_msg("cannot read tasks/entities/golden.jsonl");
    tagged_form f;
    json_doc *fd = form_doc(FORM, &f);
    int n = 0;
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl) break;
        json_doc *d;
        ulm_error err;
        assert_int_equal(json_parse(line, (size_t)(nl - line), &d, &err), ULM_OK);
        size_t il, ol;
        const char *in = json_str(json_get(json_root(d), "input"), &il);
        const char *out = json_str(json_get(json_root(d), "output"), &ol);
        char *t, *j;
        size_t tl, jl;
        assert_int_equal(tagged_from_json(&f, in, il, out, ol, &t, &tl, &err), ULM_OK);
        assert_int_equal(tagged_to_json(&f, t, tl, &j, &jl, &err), ULM_OK);
        assert_int_equal(jl, ol);
        assert_memory_equal(j, out, ol);
        free(t);
        free(j);
        json_free(d);
        n++;
    }
    assert_true(n >= 300);
    json_free(fd);
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_json),
        cmocka_unit_test(test_from_json),
        cmocka_unit_test(test_space_before_spans),
        cmocka_unit_test(test_round_trip_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
