/* Task specs and golden sets (errors with file and line, truncations), and an end-to-end
 * task on stories260K: convert, pack, run (choice list and JSON schema), escalation, eval. */
#include <math.h>
#include "cli.h"
#include "json.h"
#include "model.h"
#include "sha256.h"
#include "task.h"
#include "test_util.h"
#include "ulm_file.h"

static const char good_spec[] =
    "{\n"
    "  \"name\": \"mood\",\n"
    "  \"instruction\": \"{input} The little girl felt\",\n"
    "  \"sampling\": {\"temperature\": 0.4, \"top_k\": 20, \"top_p\": 0.9, \"min_p\": 0.05,\n"
    "               \"repeat_penalty\": 1.1, \"seed\": 7},\n"
    "  \"max_tokens\": 6,\n"
    "  \"stop\": [\"\\n\"],\n"
    "  \"constraint\": {\"type\": \"choice\", \"choices\": [\"happy\", \"sad\", \"scared\"], \"leading_space\": true},\n"
    "  \"validator\": {\"refusals\": [\"I cannot\"]},\n"
    "  \"min_confidence\": 0.0001,\n"
    "  \"context_budget\": 64,\n"
    "  \"privacy\": \"public\"\n"
    "}\n";

static void test_spec_parse(void **state) {
    task_spec s;
    ulm_error err;
    assert_int_equal(task_spec_parse(good_spec, strlen(good_spec), "t.json", &s, &err), ULM_OK);
    assert_string_equal(s.name, "mood");
    assert_int_equal(s.max_tokens, 6);
    assert_int_equal(s.context_budget, 64);
    assert_true(s.sampling.temperature == 0.4f);
    assert_int_equal(s.sampling.top_k, 20);
    assert_int_equal((int)s.sampling.seed, 7);
    assert_int_equal(s.n_stop, 1);
    assert_non_null(s.constraint);
    assert_string_equal(s.privacy, "public");
    char *p = task_prompt(&s, "Lily ran.", 9);
    assert_string_equal(p, "Lily ran. The little girl felt");
    free(p);
    task_spec_free(&s);
}

static void test_spec_errors(void **state) {
    static const struct { const char *text, *want; } cases[] = {
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\n\"max_tokens\":5,\n\"temprature\":1}", "t.json:3: unknown key"},
        {"{\"name\":\"x\",\n\"instruction\":\"no slot\",\"max_tokens\":5}", "t.json:2:"},
        {"{\"name\":\"x\",\"instruction\":\"{input}{input}\",\"max_tokens\":5}", "exactly one {input}"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\n\n\"max_tokens\":0}", "t.json:3:"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\n\"constraint\":{\"type\":\"regex\",\"pattern\":\"(\"}}",
         "t.json:2:"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\n\"validator\":{\"pattern\":\"[\"}}", "t.json:2:"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\"sampling\":{\"top_p\":2}}", "top_p"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\"privacy\":\"secret\"}", "privacy"},
        {"{\"name\":\"x\",\n\"instruction\":\"{input}\",\n\"max_tokens\":5,,}", "t.json: line 3"},
        {"[1,2]", "JSON object"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\"constraint\":{\"type\":\"json_schema\","
         "\"schema\":{\"type\":\"string\"},\"distinct_strings\":1}}", "distinct_strings"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\"constraint\":{\"type\":\"regex\","
         "\"pattern\":\"a\",\"distinct_strings\":true}}", "distinct_strings"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\"constraint\":{\"type\":\"any_of\",\"of\":["
         "{\"type\":\"json_schema\",\"schema\":{\"type\":\"string\"},\"distinct_strings\":true}]}}", "distinct_strings"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\n\"beam\":0}", "t.json:2: \"beam\" must be"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\"beam\":9}", "\"beam\" must be an integer 1..8"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\"beam\":\"4\"}", "\"beam\" must be"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\"beam\":4,\"sampling\":{\"temperature\":0.5}}",
         "needs sampling temperature 0"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\"beam\":2,\"sampling\":{\"repeat_penalty\":1.1}}",
         "repeat_penalty 1"},
        {"{\"name\":\"x\",\"instruction\":\"{input}\",\"max_tokens\":5,\"beam\":2,\"constraint\":{\"type\":\"json_schema\","
         "\"schema\":{\"type\":\"string\"},\"distinct_strings\":true}}", "does not combine with distinct_strings"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        task_spec s;
        ulm_error err;
        ulm_status st = task_spec_parse(cases[i].text, strlen(cases[i].text), "t.json", &s, &err);
        assert_int_equal(st, ULM_ERR_SPEC);
        if (!strstr(err.msg, cases[i].want)) print_message("case %zu: '%s' lacks '%s'\n", i, err.msg, cases[i].want);
        assert_non_null(strstr(err.msg, cases[i].want));
    }
    /* every truncation of a valid spec is an error, never a crash */
    for (size_t n = 0; n + 2 < strlen(good_spec); n++) {
        task_spec s;
        ulm_error err;
        assert_int_equal(task_spec_parse(good_spec, n, "t.json", &s, &err), ULM_ERR_SPEC);
    }
}

static void test_golden_parse(void **state) {
    const char *g = "{\"input\":\"a\",\"output\":\"x\"}\n\n{\"input\":\"b\",\"output\":{\"k\": [1, \"v\"]}}\n";
    golden_item *items;
    int n;
    ulm_error err;
    assert_int_equal(golden_parse(g, strlen(g), "g.jsonl", &items, &n, &err), ULM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(items[0].expected, "x");
    assert_string_equal(items[1].input, "b");
    assert_string_equal(items[1].expected, "{\"k\":[1,\"v\"]}");
    golden_free(items, n);
    static const struct { const char *text, *want; } bad[] = {
        {"{\"input\":\"a\",\"output\":\"x\"}\n{\"input\":1,\"output\":\"x\"}\n", "g.jsonl:2: \"input\""},
        {"{\"input\":\"a\",\"output\":\"x\"}\n\n\n{\"input\":\"a\"}\n", "g.jsonl:4: \"output\" is missing"},
        {"{\"input\":\"a\",\"output\":\"x\"}\n{\"input\":\"a\",\n", "g.jsonl:2: line 1"},
        {"[]\n", "g.jsonl:1: each line"},
        {"\n\n", "no golden items"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(golden_parse(bad[i].text, strlen(bad[i].text), "g.jsonl", &items, &n, &err), ULM_ERR_SPEC);
        if (!strstr(err.msg, bad[i].want)) print_message("'%s' lacks '%s'\n", err.msg, bad[i].want);
        assert_non_null(strstr(err.msg, bad[i].want));
    }
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int call(int (*fn)(int, char **), int argc, const char **argv) { return fn(argc, (char **)argv); }

static void test_end_to_end_stories260k(void **state) {
    char bin[512], tok[512];
    SKIP_WITHOUT_SHARED(bin, "models/stories260K/stories260K.bin");
    SKIP_WITHOUT_SHARED(tok, "models/stories260K/tok512.bin");
    char model[256], spec[256], golden[256], task_path[256], jspec[256], jgolden[256], jtask[256];
    test_tmp_path(model, sizeof model, "s260k.ulm");
    test_tmp_path(spec, sizeof spec, "choice.json");
    test_tmp_path(golden, sizeof golden, "choice.jsonl");
    test_tmp_path(task_path, sizeof task_path, "choice.ulm");
    test_tmp_path(jspec, sizeof jspec, "json.json");
    test_tmp_path(jgolden, sizeof jgolden, "json.jsonl");
    test_tmp_path(jtask, sizeof jtask, "json.ulm");
    const char *conv[] = {"convert", bin, "--tokenizer", tok, "-o", model};
    assert_int_equal(call(cmd_convert, 6, conv), 0);
    write_text(spec, good_spec);
    write_text(golden, "{\"input\":\"Lily saw a big dog.\",\"output\":\"happy\"}\n"
                       "{\"input\":\"Tom lost his toy.\",\"output\":\"sad\"}\n"
                       "{\"input\":\"It was dark and loud.\",\"output\":\"scared\"}\n");
    const char *pack[] = {"task", "pack", spec, model, "-o", task_path, "--golden", golden};
    assert_int_equal(call(cmd_task, 8, pack), 0);
    /* the task file is one verified .ulm carrying the spec and the golden set */
    ulmf *f;
    ulm_error err;
    assert_int_equal(ulmf_open(task_path, 1, &f, &err), ULM_OK);
    const char *s;
    size_t sl;
    assert_int_equal(ulmf_get_str(f, "task.spec", &s, &sl), 0);
    assert_int_equal(sl, strlen(good_spec));
    assert_int_equal(ulmf_get_str(f, "task.golden", &s, &sl), 0);
    ulmf_close(f);

    task *t;
    assert_int_equal(task_load(task_path, 1, &t, &err), ULM_OK);
    task_result r;
    const char *inputs[] = {"Lily saw a big dog.", "Tom lost his toy.", "The sun was warm and the birds sang."};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(task_run(t, inputs[i], strlen(inputs[i]), NULL, NULL, &r, &err), ULM_OK);
        assert_true(!strcmp(r.output, "happy") || !strcmp(r.output, "sad") || !strcmp(r.output, "scared"));
        assert_true(r.valid);
        assert_true(r.n_tokens >= 1 && r.n_tokens <= 6);
        assert_true(r.conf_min > 0 && r.conf_min <= r.conf_mean && r.conf_mean <= 1);
        assert_true(r.total_ms >= r.ttft_ms);
        task_result_free(&r);
    }
    /* over the context budget (64 tokens): escalated, not an error */
    char longin[2048] = "";
    for (int i = 0; i < 60; i++) strcat(longin, "The dog ran far away. ");
    assert_int_equal(task_run(t, longin, strlen(longin), NULL, NULL, &r, &err), ULM_OK);
    assert_int_equal(r.route, ROUTE_ESCALATE);
    assert_string_equal(r.reason, "input_over_budget");
    task_result_free(&r);
    /* invalid UTF-8 is an error value */
    assert_int_equal(task_run(t, "\xff\xfe", 2, NULL, NULL, &r, &err), ULM_ERR_UTF8);
    task_free(t);

    /* a small JSON-schema task whose strings must come from the input */
    write_text(jspec, "{\"name\":\"who\",\"instruction\":\"{input} Answer:\",\"max_tokens\":40,\n"
                      "\"constraint\":{\"type\":\"json_schema\",\"strings_from_input\":true,\"schema\":{\"type\":\"object\","
                      "\"properties\":{\"name\":{\"type\":\"string\"},\"happy\":{\"type\":\"boolean\"}},"
                      "\"required\":[\"name\",\"happy\"]}},\"validator\":{\"json\":true}}\n");
    write_text(jgolden, "{\"input\":\"Lily went to the park.\",\"output\":{\"name\":\"Lily\",\"happy\":true}}\n"
                        "{\"input\":\"Tom was sad.\",\"output\":{\"name\":\"Tom\",\"happy\":false}}\n");
    const char *jpack[] = {"task", "pack", jspec, model, "-o", jtask};
    assert_int_equal(call(cmd_task, 6, jpack), 0);
    assert_int_equal(task_load(jtask, 1, &t, &err), ULM_OK);
    assert_int_equal(task_run(t, "Lily went to the park.", 22, NULL, NULL, &r, &err), ULM_OK);
    json_doc *d;
    assert_int_equal(json_parse(r.output, r.len, &d, &err), ULM_OK);
    const char *name;
    size_t nl;
    assert_int_equal(json_get_str(json_root(d), "name", &name, &nl), 0);
    assert_true(nl == 0 || memmem("Lily went to the park.", 22, name, nl) != NULL);
    int hb;
    assert_int_equal(json_get_bool(json_root(d), "happy", &hb), 0);
    json_free(d);
    assert_true(r.valid);
    task_result_free(&r);
    task_free(t);

    /* ulm eval: gates */
    const char *ev[] = {"eval", task_path, "--json", "--min-accuracy", "0"};
    assert_int_equal(call(cmd_eval, 5, ev), 0);
    const char *ev2[] = {"eval", jtask, jgolden, "--baseline", jtask, "--max-drop", "0"};
    assert_int_equal(call(cmd_eval, 7, ev2), 0); /* greedy: identical to itself */
    const char *ev3[] = {"eval", jtask, jgolden, "--min-accuracy", "1"};
    int rc3 = call(cmd_eval, 5, ev3);
    assert_true(rc3 == 0 || rc3 == 1);
    const char *ev4[] = {"eval", jtask}; /* no embedded golden set and none given */
    assert_int_equal(call(cmd_eval, 2, ev4), 1);
    unlink(model);
    unlink(spec);
    unlink(golden);
    unlink(task_path);
    unlink(jspec);
    unlink(jgolden);
    unlink(jtask);
}

/* 1 if a JSON text has a string value twice (the values of every array and object member). */
static int has_repeat(const char *text, size_t len) {
    json_doc *d;
    ulm_error err;
    assert_int_equal(json_parse(text, len, &d, &err), ULM_OK);
    const char *seen[64];
    size_t seen_len[64];
    int n = 0, rep = 0;
    const json_value *o = json_root(d);
    for (size_t k = 0; k < json_len(o); k++) {
        const json_value *a = json_obj_val(o, k);
        for (size_t i = 0; i < json_len(a); i++) {
            size_t l;
            const char *v = json_str(json_at(a, i), &l);
            assert_non_null(v);
            for (int j = 0; j < n; j++) rep |= seen_len[j] == l && !memcmp(seen[j], v, l);
            if (n < 64) seen[n] = v, seen_len[n++] = l;
        }
    }
    json_free(d);
    return rep;
}

typedef struct { char buf[4096]; size_t len; } stream_buf;
static int collect(const char *text, size_t len, void *user) {
    stream_buf *b = user;
    assert_true(b->len + len < sizeof b->buf);
    memcpy(b->buf + b->len, text, len);
    b->len += len;
    return 0;
}

/* The entity task in its JSON form (the shipped task writes tagged spans instead). */
static const char entities_json_spec[] =
    "{\"name\": \"entities-json\", \"instruction\": \"<|in|>{input}<|out|>\", \"max_tokens\": 176, \"stop\": [\"\\n\"],"
    " \"constraint\": {\"type\": \"json_schema\", \"strings_from_input\": \"words_in_order\", \"distinct_strings\": true,"
    " \"schema\": {\"type\": \"object\", \"properties\": {"
    "\"people\": {\"type\": \"array\", \"maxItems\": 8, \"items\": {\"type\": \"string\", \"minLength\": 1}},"
    "\"organizations\": {\"type\": \"array\", \"maxItems\": 8, \"items\": {\"type\": \"string\", \"minLength\": 1}},"
    "\"places\": {\"type\": \"array\", \"maxItems\": 8, \"items\": {\"type\": \"string\", \"minLength\": 1}},"
    "\"dates\": {\"type\": \"array\", \"maxItems\": 8, \"items\": {\"type\": \"string\", \"minLength\": 1}}},"
    " \"required\": [\"people\", \"organizations\", \"places\", \"dates\"]}},"
    " \"validator\": {\"json\": true}}";

/* Writes dst with src's first weight set only (its own tensors, no "member<k>." ones) and
 * model.members set to `members`, or absent when it is negative. */
static void write_first_set(const char *src, const char *dst, long members) {
    ulmf *f;
    ulm_error err;
    assert_int_equal(ulmf_open(src, 0, &f, &err), ULM_OK);
    ulmw *w = ulmw_new();
    for (int i = 0; i < ulmf_n_meta(f); i++) {
        const ulmf_kv *kv = ulmf_meta_at(f, i);
        if (kv->key_len == 13 && !memcmp(kv->key, "model.members", 13)) continue;
        assert_int_equal(ulmw_copy_kv(w, kv), 0);
    }
    for (int i = 0; i < ulmf_n_tensors(f); i++) {
        const ulmf_tensor *x = ulmf_tensor_at(f, i);
        if (x->name_len > 6 && !memcmp(x->name, "member", 6)) continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)x->name_len, x->name);
        assert_int_equal(ulmw_add_tensor(w, name, x->dtype, x->ndim, x->shape, x->data, 0), 0);
    }
    if (members >= 0) assert_int_equal(ulmw_set_u32(w, "model.members", (uint32_t)members), 0);
    assert_int_equal(ulmw_write(w, dst, &err), ULM_OK);
    ulmw_free(w);
    ulmf_close(f);
}

/* distinct_strings on the shipped entity model decoded in the JSON form, over golden inputs
 * until three answers without the rule have filed one span under two keys (one under
 * ULM_SKIP_EVALS, the emulated and sanitizer runs). The model was trained on tagged spans, so
 * in this form it repeats often, which is what exercises the rule: with it no answer repeats,
 * every answer is still valid, the answers that had no repeat are unchanged, and the streamed
 * text is the answer. */
static void test_distinct_strings_entities(void **state) {
    (void)state;
    ulm_model *m;
    ulm_error err;
    assert_int_equal(ulm_model_load("tasks/entities/entities.ulm", &m, &err), ULM_OK);
    char spec_on[sizeof entities_json_spec], spec_off[sizeof entities_json_spec];
    size_t sl = sizeof entities_json_spec - 1;
    memcpy(spec_on, entities_json_spec, sl + 1);
    char *at = strstr(spec_on, "\"distinct_strings\": true");
    assert_non_null(at);
    memcpy(spec_off, spec_on, sl + 1);
    memcpy(spec_off + (at - spec_on), "\"distinct_strings\":false", 24); /* same length */
    task *on, *off, *twin;
    assert_int_equal(task_new(m, spec_on, sl, "on", 1, &on, &err), ULM_OK);
    assert_int_equal(task_new(m, spec_off, sl, "off", 1, &off, &err), ULM_OK);
    /* one weight set twice as two members: the mean of equal log-probabilities is that set
     * alone, so every answer must be the same, through the rewinds and the second pass (a
     * member whose cache missed one would answer otherwise) */
    char one_path[256], twin_path[256], spec_path[256];
    test_tmp_path(one_path, sizeof one_path, "one.ulm");
    test_tmp_path(twin_path, sizeof twin_path, "twin.ulm");
    test_tmp_path(spec_path, sizeof spec_path, "twin.json");
    write_text(spec_path, spec_on);
    write_first_set("tasks/entities/entities.ulm", one_path, -1);
    const char *pack[] = {"task", "pack", spec_path, one_path, "-o", twin_path, "--member", one_path};
    assert_int_equal(call(cmd_task, 8, pack), 0);
    ulm_model *m1, *mt;
    task *one;
    assert_int_equal(ulm_model_load(one_path, &m1, &err), ULM_OK);
    assert_int_equal(m1->n_members, 1);
    assert_int_equal(ulm_model_load(twin_path, &mt, &err), ULM_OK);
    assert_int_equal(mt->n_members, 2);
    assert_int_equal(task_new(m1, spec_on, sl, "one", 1, &one, &err), ULM_OK);
    assert_int_equal(task_new(mt, spec_on, sl, "twin", 1, &twin, &err), ULM_OK);
    FILE *fp;
    fp = fopen("tasks/entities/golden.jsonl", "rb");
    assert_non_null(fp);
    char line[8192];
    int n = 0, repeats_off = 0, changed = 0, gave_up = 0, want = getenv("ULM_SKIP_EVALS") ? 1 : 3;
    while (repeats_off < want && fgets(line, sizeof line, fp)) {
        json_doc *d;
        assert_int_equal(json_parse(line, strlen(line), &d, &err), ULM_OK);
        size_t il;
        const char *in = json_str(json_get(json_root(d), "input"), &il);
        assert_non_null(in);
        task_result a, b;
        stream_buf sb = {.len = 0};
        assert_int_equal(task_run(off, in, il, NULL, NULL, &a, &err), ULM_OK);
        assert_int_equal(task_run(on, in, il, collect, &sb, &b, &err), ULM_OK);
        assert_true(a.valid && b.valid);
        task_result c, e;
        assert_int_equal(task_run(one, in, il, NULL, NULL, &e, &err), ULM_OK);
        assert_int_equal(task_run(twin, in, il, NULL, NULL, &c, &err), ULM_OK);
        assert_string_equal(c.output, e.output);
        assert_true(fabsf(c.conf_min - e.conf_min) < 1e-4f && fabsf(c.conf_mean - e.conf_mean) < 1e-4f);
        task_result_free(&c);
        task_result_free(&e);
        assert_int_equal(sb.len, b.len);
        assert_memory_equal(sb.buf, b.output, b.len);
        if (has_repeat(a.output, a.len)) {
            /* the rule gives up on an answer when its bans leave no token (engine/task.c) */
            if (!has_repeat(b.output, b.len)) repeats_off++, changed += strcmp(a.output, b.output) != 0;
            else gave_up++;
        } else {
            assert_string_equal(a.output, b.output);
        }
        task_result_free(&a);
        task_result_free(&b);
        json_free(d);
        n++;
    }
    fclose(fp);
    print_message("%d golden inputs: %d answers repeat a value without the rule and not with it; %d still do\n", n,
                  repeats_off, gave_up);
    assert_int_equal(repeats_off, want);
    assert_int_equal(changed, repeats_off);
    task_free(on);
    task_free(off);
    task_free(twin);
    task_free(one);
    ulm_model_free(mt);
    ulm_model_free(m1);
    ulm_model_free(m);
    unlink(one_path);
    unlink(twin_path);
    unlink(spec_path);
}

/* The shipped entity task writes tagged spans and answers with their JSON object: what it
 * streams is that answer, once, and the answer has the four keys in order. */
static void test_tagged_entities_stream(void **state) {
    (void)state;
    task *t;
    ulm_error err;
    assert_int_equal(task_load("tasks/entities/entities.ulm", 1, &t, &err), ULM_OK);
    assert_true(task_get_spec(t)->has_tagged);
    FILE *fp = fopen("tasks/entities/golden.jsonl", "rb");
    assert_non_null(fp);
    char line[8192];
    for (int k = 0; k < 5 && fgets(line, sizeof line, fp); k++) {
        json_doc *d;
        assert_int_equal(json_parse(line, strlen(line), &d, &err), ULM_OK);
        size_t il;
        const char *in = json_str(json_get(json_root(d), "input"), &il);
        task_result r;
        stream_buf sb = {.len = 0};
        assert_int_equal(task_run(t, in, il, collect, &sb, &r, &err), ULM_OK);
        assert_true(r.valid);
        assert_int_equal(sb.len, r.len);
        assert_memory_equal(sb.buf, r.output, r.len);
        json_doc *a;
        assert_int_equal(json_parse(r.output, r.len, &a, &err), ULM_OK);
        static const char *const keys[] = {"people", "organizations", "places", "dates"};
        assert_int_equal(json_len(json_root(a)), 4);
        for (size_t i = 0; i < 4; i++) assert_string_equal(json_obj_key(json_root(a), i, NULL), keys[i]);
        json_free(a);
        task_result_free(&r);
        json_free(d);
    }
    fclose(fp);
    task_free(t);
}

/* ---- weight sets ("members") of one task file ---- */

static const char free_spec[] = "{\"name\": \"free\", \"instruction\": \"{input}\", \"max_tokens\": 6}";

static void mkmodel(const char *path, const char *seed) {
    const char *argv[] = {"mkmodel", "--preset", "tiny", "--seed", seed, "-o", path};
    assert_int_equal(call(cmd_mkmodel, 7, argv), 0);
}

/* Members are compared key by key, arrays byte by byte: a bool array (tokenizer.types) is
 * one byte an element, so two weight types with one tokenizer pack (the comparison once read
 * four bytes an element, past the array, and refused them), and one type changed is refused. */
static void test_members_compare_bool_arrays(void **state) {
    (void)state;
    char pa[256], pb[256], pc[256], pspec[256], pab[256];
    test_tmp_path(pa, sizeof pa, "mt-q4.ulm");
    test_tmp_path(pb, sizeof pb, "mt-q8.ulm");
    test_tmp_path(pc, sizeof pc, "mt-types.ulm");
    test_tmp_path(pspec, sizeof pspec, "mt-spec.json");
    test_tmp_path(pab, sizeof pab, "mt-ab.ulm");
    const char *ma[] = {"mkmodel", "--preset", "tiny", "--seed", "1", "--type", "q4", "-o", pa};
    const char *mb[] = {"mkmodel", "--preset", "tiny", "--seed", "2", "--type", "q8", "-o", pb};
    assert_int_equal(call(cmd_mkmodel, 9, ma), 0);
    assert_int_equal(call(cmd_mkmodel, 9, mb), 0);
    write_text(pspec, free_spec);
    const char *pack[] = {"task", "pack", pspec, pa, "-o", pab, "--member", pb};
    assert_int_equal(call(cmd_task, 8, pack), 0);
    /* pb with one token's type changed (normal -> user-defined) */
    size_t len = 0;
    char *buf = test_read_file(pb, &len);
    assert_non_null(buf);
    ulmf *f;
    ulm_error err;
    assert_int_equal(ulmf_open_mem(buf, len, 0, &f, &err), ULM_OK);
    const void *types;
    uint64_t n;
    assert_int_equal(ulmf_get_arr(f, "tokenizer.types", ULMF_BOOL, &types, &n), 0);
    size_t off = (size_t)((const char *)types - buf) + 300;
    ulmf_close(f);
    assert_int_equal(buf[off], 1);
    buf[off] = 4;
    /* and the file's SHA-256 (bytes 96-127, formats/ULM_FORMAT.md), so only the type differs */
    uint8_t h[32], *hash = (uint8_t *)buf + 96;
    assert_true(len > 128);
    for (int i = 0; i < 32; i++) hash[i] = 0;
    sha256(buf, len, h);
    for (int i = 0; i < 32; i++) hash[i] = h[i];
    FILE *fp = fopen(pc, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    fclose(fp);
    free(buf);
    const char *bad[] = {"task", "pack", pspec, pa, "-o", pab, "--member", pc};
    assert_int_equal(call(cmd_task, 8, bad), 1);
    unlink(pa), unlink(pb), unlink(pc), unlink(pspec), unlink(pab);
}

/* Two tiny random models of seeds sa and sb at pa and pb, and the task file pab of spec
 * holding both weight sets; all three loaded. */
static void tiny_pair(const char *spec, const char *sa, const char *sb, const char *pa, const char *pb, const char *pspec,
                      const char *pab, ulm_model **a, ulm_model **b, ulm_model **ab) {
    ulm_error err;
    mkmodel(pa, sa);
    mkmodel(pb, sb);
    write_text(pspec, spec);
    const char *pack[] = {"task", "pack", pspec, pa, "-o", pab, "--member", pb};
    assert_int_equal(call(cmd_task, 8, pack), 0);
    assert_int_equal(ulm_model_load(pa, a, &err), ULM_OK);
    assert_int_equal(ulm_model_load(pb, b, &err), ULM_OK);
    assert_int_equal(ulm_model_load(pab, ab, &err), ULM_OK);
}

static void tiny_pair_free(ulm_model *a, ulm_model *b, const char *pa, const char *pb, const char *pspec, const char *pab) {
    ulm_model_free(a);
    ulm_model_free(b);
    unlink(pa);
    unlink(pb);
    unlink(pspec);
    unlink(pab);
}

static void log_softmax_ref(float *x, int n) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++) sum += exp(x[i] - mx);
    for (int i = 0; i < n; i++) x[i] -= (float)(mx + log(sum));
}

/* Greedy decoding from the mean of two models' log-probabilities, written out plainly: the
 * reference for a task file holding both. Returns the text; *conf_mean as task_run counts it. */
static char *ensemble_ref(const ulm_model *a, const ulm_model *b, const task_spec *s, const char *in, float *conf_mean) {
    ulm_error err;
    int32_t toks[256];
    int n;
    assert_int_equal(task_encode_prompt(s, a->tok, in, strlen(in), toks, 200, &n, &err), ULM_OK);
    ulm_ctx *ca, *cb;
    ulm_ctx_params cp = {.n_ctx = 0, .n_threads = 1};
    assert_int_equal(ulm_ctx_new(a, &cp, &ca, &err), ULM_OK);
    assert_int_equal(ulm_ctx_new(b, &cp, &cb, &err), ULM_OK);
    int V = tok_n_vocab(a->tok), R = a->cfg.vocab_size;
    float *la = malloc((size_t)R * sizeof *la), *lb = malloc((size_t)R * sizeof *lb);
    char *out = calloc(1, 256);
    size_t len = 0;
    double conf = 0;
    int k = 0, feed = n, from = 0;
    for (; k < s->max_tokens; k++) {
        assert_int_equal(ulm_ctx_eval(ca, toks + from, feed, la, 0, &err), ULM_OK);
        assert_int_equal(ulm_ctx_eval(cb, toks + from, feed, lb, 0, &err), ULM_OK);
        log_softmax_ref(la, V);
        log_softmax_ref(lb, V);
        int best = 0;
        for (int i = 0; i < V; i++) {
            la[i] = 0.5f * (la[i] + lb[i]);
            if (la[i] > la[best]) best = i;
        }
        double z = 0; /* the mean of two log-softmaxes is not normalized: task_run renormalizes */
        for (int i = 0; i < V; i++) z += exp(la[i] - la[best]);
        conf += 1 / z;
        if (tok_is_eog(a->tok, best)) { k++; break; }
        int ty = tok_type(a->tok, best);
        size_t pl = 0;
        const char *p = (ty == TOK_CONTROL || ty == TOK_UNUSED || ty == TOK_UNKNOWN) ? "" : tok_decode_piece(a->tok, best, &pl);
        assert_true(len + pl < 256);
        memcpy(out + len, p, pl);
        len += pl;
        from = n++;
        toks[from] = best;
        feed = 1;
    }
    *conf_mean = (float)(conf / k);
    /* an unconstrained answer is trimmed of surrounding whitespace */
    size_t a0 = strspn(out, " \n\t\r");
    while (len > a0 && strchr(" \n\t\r", out[len - 1])) len--;
    memmove(out, out + a0, len - a0);
    out[len - a0] = 0;
    free(la);
    free(lb);
    ulm_ctx_free(ca);
    ulm_ctx_free(cb);
    return out;
}

/* A task file with a second weight set decodes from the mean of both sets' log-probabilities:
 * its answers are those of the plain reference above (and differ from either model's alone on
 * some input, or the test could not tell); packing checks that members match. */
static void test_members_mean_of_log_probs(void **state) {
    (void)state;
    char pa[256], pb[256], pspec[256], pab[256], pbad[256], pcfg[256];
    test_tmp_path(pa, sizeof pa, "member-a.ulm");
    test_tmp_path(pb, sizeof pb, "member-b.ulm");
    test_tmp_path(pspec, sizeof pspec, "member-spec.json");
    test_tmp_path(pab, sizeof pab, "member-ab.ulm");
    test_tmp_path(pbad, sizeof pbad, "member-bad.ulm");
    test_tmp_path(pcfg, sizeof pcfg, "member-cfg.ulm");
    ulm_error err;
    ulm_model *a, *b, *ab;
    tiny_pair(free_spec, "1", "2", pa, pb, pspec, pab, &a, &b, &ab);
    assert_int_equal(ab->n_members, 2);
    assert_true(ab->n_params == a->n_params); /* the model's own set, not both */
    task *t, *ta;
    assert_int_equal(task_new(ab, free_spec, strlen(free_spec), "ab", 1, &t, &err), ULM_OK);
    assert_int_equal(task_new(a, free_spec, strlen(free_spec), "a", 1, &ta, &err), ULM_OK);
    const char *inputs[] = {"the cat sat", "a b c d e f", "hello world", "zz top", "one two three four"};
    int differs = 0;
    for (int i = 0; i < 5; i++) {
        float conf;
        char *ref = ensemble_ref(a, b, task_get_spec(t), inputs[i], &conf);
        task_result r, ra;
        assert_int_equal(task_run(t, inputs[i], strlen(inputs[i]), NULL, NULL, &r, &err), ULM_OK);
        assert_int_equal(task_run(ta, inputs[i], strlen(inputs[i]), NULL, NULL, &ra, &err), ULM_OK);
        assert_string_equal(r.output, ref);
        assert_true(fabsf(r.conf_mean - conf) < 1e-4f);
        differs += strcmp(r.output, ra.output) != 0;
        task_result_free(&r);
        task_result_free(&ra);
        free(ref);
    }
    assert_true(differs > 0);
    task_free(t);
    task_free(ta);
    ulm_model_free(ab);

    /* a member of another config, or one that holds sets itself, is refused at pack time, and
     * no file is left */
    write_first_set("tasks/entities/entities.ulm", pcfg, -1);
    const char *conv[] = {"task", "pack", pspec, pa, "-o", pbad, "--member", pcfg};
    assert_int_equal(call(cmd_task, 8, conv), 1);
    assert_int_equal(access(pbad, F_OK), -1);
    const char *nested[] = {"task", "pack", pspec, pa, "-o", pbad, "--member", pab};
    assert_int_equal(call(cmd_task, 8, nested), 1);
    assert_int_equal(access(pbad, F_OK), -1);
    /* a file claiming a second set it lacks, or a count out of range, fails to load */
    static const long counts[] = {2, 0, MODEL_MAX_MEMBERS + 1};
    for (int c = 0; c < 3; c++) {
        write_first_set(pa, pcfg, counts[c]);
        ulm_model *m;
        if (c == 0) {
            assert_int_equal(ulm_model_load(pcfg, &m, &err), ULM_OK);
            assert_int_equal(task_new(m, free_spec, strlen(free_spec), "m", 1, &t, &err), ULM_ERR_FORMAT);
            assert_non_null(strstr(err.msg, "'member1.token_embd' is missing"));
            ulm_model_free(m);
        } else {
            assert_int_equal(ulm_model_load(pcfg, &m, &err), ULM_ERR_FORMAT);
            assert_non_null(strstr(err.msg, "model.members"));
        }
    }
    tiny_pair_free(a, b, pa, pb, pspec, pab);
    unlink(pcfg);
}

/* A model with more rows than tokenizer tokens (padded vocabularies, as converted family
 * models have): the forward pass writes a logit per row, and a task must have room for them
 * (under ASan a smaller buffer is an overflow); the extra rows are never chosen. */
static void test_task_padded_vocab(void **state) {
    (void)state;
    char pa[256], pp[256];
    test_tmp_path(pa, sizeof pa, "pad-a.ulm");
    test_tmp_path(pp, sizeof pp, "pad-b.ulm");
    mkmodel(pa, "3");
    ulm_error err;
    ulmf *f;
    assert_int_equal(ulmf_open(pa, 0, &f, &err), ULM_OK);
    uint32_t V;
    assert_int_equal(ulmf_get_u32(f, "model.vocab_size", &V), 0);
    const uint32_t pad = 64;
    ulmw *w = ulmw_new();
    for (int i = 0; i < ulmf_n_meta(f); i++) assert_int_equal(ulmw_copy_kv(w, ulmf_meta_at(f, i)), 0);
    assert_int_equal(ulmw_set_u32(w, "model.vocab_size", V + pad), 0);
    void *grown[2] = {0};
    int ng = 0;
    for (int i = 0; i < ulmf_n_tensors(f); i++) {
        const ulmf_tensor *x = ulmf_tensor_at(f, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)x->name_len, x->name);
        if (!strcmp(name, "token_embd") || !strcmp(name, "output")) {
            /* pad rows of zeros (a zero q8 block is a zero scale and zero quants) */
            size_t row = (size_t)(x->size / x->shape[0]);
            uint64_t shape[2] = {x->shape[0] + pad, x->shape[1]};
            assert_true(ng < 2);
            char *g = grown[ng++] = calloc(1, x->size + pad * row);
            memcpy(g, x->data, x->size);
            assert_int_equal(ulmw_add_tensor(w, name, x->dtype, 2, shape, g, 0), 0);
        } else {
            assert_int_equal(ulmw_add_tensor(w, name, x->dtype, x->ndim, x->shape, x->data, 0), 0);
        }
    }
    assert_int_equal(ulmw_write(w, pp, &err), ULM_OK);
    ulmw_free(w);
    ulmf_close(f);
    for (int i = 0; i < ng; i++) free(grown[i]);
    ulm_model *m;
    assert_int_equal(ulm_model_load(pp, &m, &err), ULM_OK);
    assert_int_equal(m->cfg.vocab_size, (int)(V + pad));
    assert_int_equal(tok_n_vocab(m->tok), (int)V);
    task *t;
    assert_int_equal(task_new(m, free_spec, strlen(free_spec), "pad", 1, &t, &err), ULM_OK);
    task_result r;
    assert_int_equal(task_run(t, "the cat sat", 11, NULL, NULL, &r, &err), ULM_OK);
    assert_true(r.n_tokens >= 1 && r.valid);
    task_result_free(&r);
    task_free(t);
    ulm_model_free(m);
    unlink(pa);
    unlink(pp);
}

/* ---- beam search ---- */

/* The model's (or the mean of two models') logits after toks[0..n-1], from a fresh context. */
static void logits_after(const ulm_model *const *m, int n_models, const int32_t *toks, int n, float *out) {
    ulm_error err;
    int R = m[0]->cfg.vocab_size;
    float *l = malloc((size_t)R * sizeof *l);
    for (int j = 0; j < n_models; j++) {
        ulm_ctx *c;
        ulm_ctx_params cp = {.n_ctx = 0, .n_threads = 1};
        assert_int_equal(ulm_ctx_new(m[j], &cp, &c, &err), ULM_OK);
        assert_int_equal(ulm_ctx_eval(c, toks, n, l, 0, &err), ULM_OK);
        for (int i = 0; i < R; i++) out[i] = j ? out[i] + l[i] : l[i];
        ulm_ctx_free(c);
    }
    for (int i = 0; i < R; i++) out[i] /= (float)n_models;
    free(l);
}

typedef struct {
    const ulm_model *const *m;
    int n_models, n_prompt, max_tokens;
    const char *const *choices;
    int n_choices;
    int32_t toks[96];
    char text[64];
    double best;
    char best_text[64];
    int width[16]; /* partial answers at each depth */
} exhaustive;

static const char *piece(const ulm_model *m, int id, size_t *len) {
    int ty = tok_type(m->tok, id);
    *len = 0;
    if (ty == TOK_CONTROL || ty == TOK_UNUSED || ty == TOK_UNKNOWN) return "";
    const char *p = tok_decode_piece(m->tok, id, len);
    return p ? p : "";
}

/* Walks every token sequence that spells one of the choices (the answers a choice constraint
 * allows: a complete choice that another one extends may also end with an end token), scoring
 * each by its log-probabilities renormalized over the tokens allowed at each step. */
static void exhaust(exhaustive *e, int depth, double score) {
    size_t tl = strlen(e->text);
    int complete = 0, extends = 0;
    for (int i = 0; i < e->n_choices; i++) {
        size_t cl = strlen(e->choices[i]);
        if (cl < tl || memcmp(e->choices[i], e->text, tl)) continue;
        complete |= cl == tl;
        extends |= cl > tl;
    }
    if (complete && !extends) { /* nothing can follow: the answer ends here */
        if (score > e->best) e->best = score, strcpy(e->best_text, e->text);
        return;
    }
    if (depth == e->max_tokens) return;
    assert_true(depth < 16);
    e->width[depth]++;
    const ulm_model *m = e->m[0];
    int V = tok_n_vocab(m->tok);
    float *l = malloc((size_t)m->cfg.vocab_size * sizeof *l);
    logits_after(e->m, e->n_models, e->toks, e->n_prompt + depth, l);
    char *ok = calloc((size_t)V, 1);
    double mx = -INFINITY, z = 0;
    for (int v = 0; v < V; v++) {
        size_t pl;
        const char *p = piece(m, v, &pl);
        if (tok_is_eog(m->tok, v)) ok[v] = (char)complete;
        else if (pl && tl + pl < sizeof e->text)
            for (int i = 0; i < e->n_choices && !ok[v]; i++)
                ok[v] = strlen(e->choices[i]) >= tl + pl && !memcmp(e->choices[i], e->text, tl) &&
                        !memcmp(e->choices[i] + tl, p, pl);
        if (ok[v] && l[v] > mx) mx = l[v];
    }
    for (int v = 0; v < V; v++)
        if (ok[v]) z += exp(l[v] - mx);
    for (int v = 0; v < V; v++) {
        if (!ok[v]) continue;
        double s = score + l[v] - mx - log(z);
        if (tok_is_eog(m->tok, v)) {
            if (s > e->best) e->best = s, strcpy(e->best_text, e->text);
            continue;
        }
        size_t pl;
        const char *p = piece(m, v, &pl);
        memcpy(e->text + tl, p, pl);
        e->text[tl + pl] = 0;
        e->toks[e->n_prompt + depth] = v;
        exhaust(e, depth + 1, s);
        e->text[tl] = 0;
    }
    free(ok);
    free(l);
}

/* With room for every partial answer the constraint allows, beam search is exhaustive: its
 * answer is the best of all, found here by walking them all; greedy decoding misses it on
 * some inputs (or the test could not tell the two apart). Also with two weight sets, whose
 * sequence states the search swaps and copies. */
static void test_beam_search_exhaustive(void **state) {
    (void)state;
    static const char *const choices[] = {"aa", "ab", "b", "ba", "bab", "c", "ca", "cb"};
    char pa[256], pb[256], pspec[256], pab[256];
    test_tmp_path(pa, sizeof pa, "beam-a.ulm");
    test_tmp_path(pb, sizeof pb, "beam-b.ulm");
    test_tmp_path(pspec, sizeof pspec, "beam-spec.json");
    test_tmp_path(pab, sizeof pab, "beam-ab.ulm");
    char spec[512], greedy_spec[512];
    const char *cons = "\"constraint\": {\"type\": \"choice\", \"choices\": [\"aa\", \"ab\", \"b\", \"ba\", \"bab\", \"c\", \"ca\", \"cb\"]}";
    snprintf(spec, sizeof spec, "{\"name\": \"b\", \"instruction\": \"{input}\", \"max_tokens\": 6, \"beam\": 8, %s}", cons);
    snprintf(greedy_spec, sizeof greedy_spec, "{\"name\": \"g\", \"instruction\": \"{input}\", \"max_tokens\": 6, %s}", cons);
    ulm_error err;
    ulm_model *a, *b, *ab;
    tiny_pair(spec, "4", "5", pa, pb, pspec, pab, &a, &b, &ab);
    const ulm_model *pair[2] = {a, b};
    const char *inputs[] = {"the cat sat", "a b c d e f", "hello world", "zz top", "one two three four",
                            "b a b", "cab", "x y z", "aaaa bbbb", "the end"};
    int beats_greedy = 0;
    for (int n_models = 1; n_models <= 2; n_models++) {
        task *t, *g;
        assert_int_equal(task_new(n_models == 1 ? a : ab, spec, strlen(spec), "beam", 1, &t, &err), ULM_OK);
        assert_int_equal(task_new(n_models == 1 ? a : ab, greedy_spec, strlen(greedy_spec), "greedy", 1, &g, &err), ULM_OK);
        for (int i = 0; i < 10; i++) {
            exhaustive e = {.m = pair, .n_models = n_models, .max_tokens = 6, .choices = choices, .n_choices = 8,
                            .best = -INFINITY};
            assert_int_equal(task_encode_prompt(task_get_spec(t), a->tok, inputs[i], strlen(inputs[i]), e.toks, 64,
                                                &e.n_prompt, &err), ULM_OK);
            exhaust(&e, 0, 0);
            for (int d = 0; d < 16; d++) assert_true(e.width[d] <= 8); /* the beam holds them all */
            task_result r, rg;
            stream_buf sb = {.len = 0};
            assert_int_equal(task_run(t, inputs[i], strlen(inputs[i]), collect, &sb, &r, &err), ULM_OK);
            assert_int_equal(task_run(g, inputs[i], strlen(inputs[i]), NULL, NULL, &rg, &err), ULM_OK);
            assert_true(r.valid);
            assert_string_equal(r.output, e.best_text);
            sb.buf[sb.len] = 0;
            assert_string_equal(sb.buf, r.output); /* what streamed is the answer */
            beats_greedy += strcmp(rg.output, e.best_text) != 0;
            /* the same search set on the greedy task (ulm eval --beam), and back */
            task_result ro, rb;
            assert_int_equal(task_set_beam(g, 8, &err), ULM_OK);
            assert_int_equal(task_run(g, inputs[i], strlen(inputs[i]), NULL, NULL, &ro, &err), ULM_OK);
            assert_string_equal(ro.output, e.best_text);
            assert_int_equal(task_set_beam(g, 1, &err), ULM_OK);
            assert_int_equal(task_run(g, inputs[i], strlen(inputs[i]), NULL, NULL, &rb, &err), ULM_OK);
            assert_string_equal(rb.output, rg.output);
            task_result_free(&r);
            task_result_free(&rg);
            task_result_free(&ro);
            task_result_free(&rb);
        }
        assert_int_equal(task_set_beam(g, 9, &err), ULM_ERR_ARG);
        assert_int_equal(task_set_beam(g, 0, &err), ULM_ERR_ARG);
        task_free(t);
        task_free(g);
    }
    assert_true(beats_greedy > 0);

    /* unconstrained: an answer ends at a stop string, which is not part of it, nor of what
     * streamed */
    const char *free_beam = "{\"name\": \"f\", \"instruction\": \"{input}\", \"max_tokens\": 12, \"beam\": 4, \"stop\": [\"e\"]}";
    task *t;
    assert_int_equal(task_new(ab, free_beam, strlen(free_beam), "free", 1, &t, &err), ULM_OK);
    int stopped = 0;
    for (int i = 0; i < 10; i++) {
        task_result r;
        stream_buf sb = {.len = 0};
        assert_int_equal(task_run(t, inputs[i], strlen(inputs[i]), collect, &sb, &r, &err), ULM_OK);
        sb.buf[sb.len] = 0;
        assert_null(strchr(r.output, 'e'));
        assert_null(strchr(sb.buf, 'e'));
        assert_non_null(strstr(sb.buf, r.output)); /* the answer is what streamed, trimmed */
        assert_true(r.n_tokens >= 1 && r.n_tokens <= 12);
        stopped += r.n_tokens < 12;
        task_result_free(&r);
    }
    assert_true(stopped > 0);
    task_free(t);
    /* a sampling task cannot take a beam */
    assert_int_equal(task_new(a, good_spec, strlen(good_spec), "mood", 1, &t, &err), ULM_OK);
    assert_int_equal(task_set_beam(t, 4, &err), ULM_ERR_ARG);
    assert_non_null(strstr(err.msg, "temperature 0"));
    task_free(t);
    ulm_model_free(ab);
    tiny_pair_free(a, b, pa, pb, pspec, pab);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_parse),
        cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_golden_parse),
        cmocka_unit_test(test_end_to_end_stories260k),
        cmocka_unit_test(test_distinct_strings_entities),
        cmocka_unit_test(test_tagged_entities_stream),
        cmocka_unit_test(test_members_mean_of_log_probs),
        cmocka_unit_test(test_members_compare_bool_arrays),
        cmocka_unit_test(test_task_padded_vocab),
        cmocka_unit_test(test_beam_search_exhaustive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
