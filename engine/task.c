/* Task specs, golden sets, and running a task: prompt, constrained sampling, validation,
 * confidence and routing. */
#include "task.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "distinct_strings.h"
#include "json.h"
#include "model.h"
#include "sampler.h"
#include "tagged_spans.h"
#include "tokenizer.h"
#include "ulm_file.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Line of the first `"key":` in text (1-based), or 0. The DOM keeps no positions, and a
 * spec's keys are few and mostly unique, so this is how semantic errors get their line. */
static int key_line(const char *text, size_t len, const char *key) {
    size_t kl = strlen(key);
    int line = 1;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') line++;
        if (text[i] == '"' && i + kl + 1 < len && !memcmp(text + i + 1, key, kl) && text[i + kl + 1] == '"') {
            size_t j = i + kl + 2;
            while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r' || text[j] == '\n')) j++;
            if (j < len && text[j] == ':') return line;
        }
    }
    return 0;
}

typedef struct spec_ctx { const char *text; size_t len; const char *where; ulm_error *err; } spec_ctx;

static ulm_status spec_err(const spec_ctx *c, const char *key, const char *msg) {
    int line = key ? key_line(c->text, c->len, key) : 0;
    if (line) return ulm_set_error(c->err, ULM_ERR_SPEC, "%s:%d: %s", c->where, line, msg);
    return ulm_set_error(c->err, ULM_ERR_SPEC, "%s: %s", c->where, msg);
}

static int num_in(const json_value *o, const char *key, double lo, double hi, double *out) {
    const json_value *v = json_get(o, key);
    if (!v) return 0;
    if (!json_is_num(v)) return -1;
    double x = json_num(v);
    if (!(x >= lo && x <= hi)) return -1;
    *out = x;
    return 1;
}

static int one_of(const char *s, const char *const *list) {
    for (; *list; list++)
        if (!strcmp(s, *list)) return 1;
    return 0;
}

void task_spec_free(task_spec *s) {
    if (!s) return;
    json_free(s->doc);
    free(s->stop);
    free(s->stop_len);
    memset(s, 0, sizeof *s);
}

/* NULL if a spec may decode with a beam of n, else the rule n breaks. */
static const char *beam_rule(const task_spec *s, int64_t n) {
    int distinct = 0;
    if (s->constraint) json_get_bool(s->constraint, "distinct_strings", &distinct);
    if (n < 1 || n > TASK_MAX_BEAM) return "\"beam\" must be an integer 1..8";
    if (n > 1 && (s->sampling.temperature != 0 || s->sampling.repeat_penalty != 1))
        return "\"beam\" above 1 needs sampling temperature 0 and repeat_penalty 1";
    if (n > 1 && distinct) return "\"beam\" above 1 does not combine with distinct_strings";
    return NULL;
}

ulm_status task_spec_parse(const char *text, size_t len, const char *where, task_spec *s, ulm_error *err) {
    memset(s, 0, sizeof *s);
    spec_ctx c = {text, len, where, err};
    ulm_error perr;
    if (json_parse(text, len, &s->doc, &perr))
        return ulm_set_error(err, ULM_ERR_SPEC, "%s: %s", where, perr.msg); /* "line L, column C: ..." */
    const json_value *r = json_root(s->doc);
    ulm_status st = ULM_OK;
    char msg[300];
    if (!json_is_obj(r)) { st = spec_err(&c, NULL, "a task spec is a JSON object"); goto fail; }
    static const char *const known[] = {"name", "instruction", "chat_template", "sampling", "max_tokens", "beam", "stop",
                                        "constraint", "validator", "min_confidence", "min_mean_confidence",
                                        "context_budget", "privacy", "description", NULL};
    for (size_t i = 0; i < json_len(r); i++) {
        const char *k = json_obj_key(r, i, NULL);
        if (!one_of(k, known)) {
            snprintf(msg, sizeof msg, "unknown key \"%.60s\"", k);
            st = spec_err(&c, k, msg);
            goto fail;
        }
    }
    if (json_get_str(r, "name", &s->name, NULL) || !*s->name) { st = spec_err(&c, "name", "\"name\" must be a non-empty string"); goto fail; }
    if (json_get_str(r, "instruction", &s->instruction, NULL)) { st = spec_err(&c, "instruction", "\"instruction\" must be a string"); goto fail; }
    const char *slot = strstr(s->instruction, "{input}");
    if (!slot || strstr(slot + 1, "{input}")) { st = spec_err(&c, "instruction", "\"instruction\" needs exactly one {input} slot"); goto fail; }
    if (json_get(r, "chat_template") && json_get_bool(r, "chat_template", &s->chat)) { st = spec_err(&c, "chat_template", "\"chat_template\" must be true or false"); goto fail; }
    int64_t n;
    if (json_get_int(r, "max_tokens", &n) || n < 1 || n > 65536) { st = spec_err(&c, "max_tokens", "\"max_tokens\" must be an integer 1..65536"); goto fail; }
    s->max_tokens = (int)n;
    s->context_budget = 0;
    if (json_get(r, "context_budget")) {
        if (json_get_int(r, "context_budget", &n) || n < 1 || n > (1 << 24)) { st = spec_err(&c, "context_budget", "\"context_budget\" must be a positive integer"); goto fail; }
        s->context_budget = (int)n;
    }
    ulm_sampling_default(&s->sampling);
    const json_value *sp = json_get(r, "sampling");
    if (sp) {
        static const char *const sk[] = {"temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n", "seed", NULL};
        if (!json_is_obj(sp)) { st = spec_err(&c, "sampling", "\"sampling\" must be an object"); goto fail; }
        for (size_t i = 0; i < json_len(sp); i++)
            if (!one_of(json_obj_key(sp, i, NULL), sk)) {
                snprintf(msg, sizeof msg, "unknown sampling key \"%.60s\"", json_obj_key(sp, i, NULL));
                st = spec_err(&c, json_obj_key(sp, i, NULL), msg);
                goto fail;
            }
        double x;
        const char *bad = NULL;
        if (num_in(sp, "temperature", 0, 100, &x) < 0) bad = "temperature";
        else if (json_get(sp, "temperature")) s->sampling.temperature = (float)x;
        if (!bad && num_in(sp, "top_k", 0, 1 << 24, &x) < 0) bad = "top_k";
        else if (json_get(sp, "top_k")) s->sampling.top_k = (int)x;
        if (!bad && num_in(sp, "top_p", 1e-6, 1, &x) < 0) bad = "top_p";
        else if (json_get(sp, "top_p")) s->sampling.top_p = (float)x;
        if (!bad && num_in(sp, "min_p", 0, 0.999, &x) < 0) bad = "min_p";
        else if (json_get(sp, "min_p")) s->sampling.min_p = (float)x;
        if (!bad && num_in(sp, "repeat_penalty", 1e-3, 100, &x) < 0) bad = "repeat_penalty";
        else if (json_get(sp, "repeat_penalty")) s->sampling.repeat_penalty = (float)x;
        if (!bad && num_in(sp, "repeat_last_n", 0, 1 << 20, &x) < 0) bad = "repeat_last_n";
        else if (json_get(sp, "repeat_last_n")) s->sampling.repeat_last_n = (int)x;
        if (!bad && num_in(sp, "seed", 0, 9007199254740992.0, &x) < 0) bad = "seed";
        else if (json_get(sp, "seed")) s->sampling.seed = (uint64_t)x;
        if (bad) {
            snprintf(msg, sizeof msg, "sampling \"%s\" is not a number in range", bad);
            st = spec_err(&c, bad, msg);
            goto fail;
        }
    }
    const json_value *stop = json_get(r, "stop");
    if (stop) {
        if (!json_is_arr(stop)) { st = spec_err(&c, "stop", "\"stop\" must be an array of strings"); goto fail; }
        s->n_stop = (int)json_len(stop);
        s->stop = calloc((size_t)s->n_stop + 1, sizeof *s->stop);
        s->stop_len = calloc((size_t)s->n_stop + 1, sizeof *s->stop_len);
        if (!s->stop || !s->stop_len) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto fail; }
        for (int i = 0; i < s->n_stop; i++) {
            s->stop[i] = json_str(json_at(stop, (size_t)i), &s->stop_len[i]);
            if (!s->stop[i] || !s->stop_len[i]) { st = spec_err(&c, "stop", "\"stop\" must hold non-empty strings"); goto fail; }
        }
    }
    s->constraint = json_get(r, "constraint");
    if (s->constraint) {
        ulm_error cerr;
        if (cons_check_spec(s->constraint, &cerr)) {
            st = spec_err(&c, "constraint", cerr.msg);
            goto fail;
        }
        if (json_str_eq(json_get(s->constraint, "type"), "tagged_spans")) {
            if (tagged_form_parse(s->constraint, &s->tagged, &cerr)) {
                st = spec_err(&c, "constraint", cerr.msg);
                goto fail;
            }
            s->has_tagged = 1;
        }
    }
    s->beam = 1;
    if (json_get(r, "beam")) {
        const char *why = json_get_int(r, "beam", &n) ? "\"beam\" must be an integer 1..8" : beam_rule(s, n);
        if (why) { st = spec_err(&c, "beam", why); goto fail; }
        s->beam = (int)n;
    }
    s->validator = json_get(r, "validator");
    if (s->validator) {
        static const char *const vk[] = {"json", "pattern", "refusals", NULL};
        if (!json_is_obj(s->validator)) { st = spec_err(&c, "validator", "\"validator\" must be an object"); goto fail; }
        for (size_t i = 0; i < json_len(s->validator); i++)
            if (!one_of(json_obj_key(s->validator, i, NULL), vk)) { st = spec_err(&c, "validator", "validator keys are json, pattern, refusals"); goto fail; }
        const json_value *pat = json_get(s->validator, "pattern"), *ref = json_get(s->validator, "refusals");
        if (pat) {
            json_doc *d;
            char buf[64];
            size_t pl;
            const char *p = json_str(pat, &pl);
            if (!p) { st = spec_err(&c, "pattern", "validator \"pattern\" must be a string"); goto fail; }
            /* checked by compiling it as a regex constraint */
            size_t need = json_escape(NULL, 0, p, pl);
            char *spec = malloc(need + 40);
            if (!spec) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto fail; }
            int k = snprintf(spec, need + 40, "{\"type\":\"regex\",\"pattern\":");
            json_escape(spec + k, need + 1, p, pl);
            strcat(spec, "}");
            ulm_status ps = json_parse(spec, strlen(spec), &d, &perr);
            free(spec);
            if (!ps) {
                ps = cons_check_spec(json_root(d), &perr);
                json_free(d);
            }
            (void)buf;
            if (ps) { st = spec_err(&c, "pattern", perr.msg); goto fail; }
        }
        if (ref) {
            int okr = json_is_arr(ref);
            for (size_t i = 0; okr && i < json_len(ref); i++) okr = json_is_str(json_at(ref, i));
            if (!okr) { st = spec_err(&c, "refusals", "validator \"refusals\" must be an array of strings"); goto fail; }
        }
        const json_value *js = json_get(s->validator, "json");
        if (js && !json_is_bool(js)) { st = spec_err(&c, "json", "validator \"json\" must be true or false"); goto fail; }
    }
    double x;
    if (num_in(r, "min_confidence", 0, 1, &x) < 0) { st = spec_err(&c, "min_confidence", "\"min_confidence\" must be 0..1"); goto fail; }
    s->min_conf = json_get(r, "min_confidence") ? (float)x : 0;
    if (num_in(r, "min_mean_confidence", 0, 1, &x) < 0) { st = spec_err(&c, "min_mean_confidence", "\"min_mean_confidence\" must be 0..1"); goto fail; }
    s->min_mean_conf = json_get(r, "min_mean_confidence") ? (float)x : 0;
    s->privacy = "internal";
    if (json_get(r, "privacy")) {
        static const char *const pv[] = {"public", "internal", "confidential", "restricted", NULL};
        if (json_get_str(r, "privacy", &s->privacy, NULL) || !one_of(s->privacy, pv)) { st = spec_err(&c, "privacy", "\"privacy\" must be public, internal, confidential or restricted"); goto fail; }
    }
    return ULM_OK;
fail:
    task_spec_free(s);
    return st;
}

char *task_prompt(const task_spec *s, const char *input, size_t len) {
    const char *slot = strstr(s->instruction, "{input}");
    size_t a = (size_t)(slot - s->instruction), b = strlen(slot + 7);
    char *p = malloc(a + len + b + 1);
    if (!p) return NULL;
    memcpy(p, s->instruction, a);
    memcpy(p + a, input, len);
    memcpy(p + a + len, slot + 7, b + 1);
    return p;
}

/* ---- golden sets ---- */

/* Canonical text of a JSON value (object member order kept). */
static int canon_value(const json_value *v, char **out, size_t *len);

static void cb_value(json_buf *b, const json_value *v, int depth) {
    char num[64];
    int64_t iv;
    size_t l;
    if (depth > JSON_MAX_DEPTH) { b->oom = 1; return; }
    switch (json_typeof(v)) {
    case JSON_NULL: json_buf_put(b, "null", 4); break;
    case JSON_BOOL: { int x = 0; json_bool(v, &x); json_buf_put(b, x ? "true" : "false", x ? 4 : 5); break; }
    case JSON_NUMBER:
        if (json_int(v, &iv) == 0) snprintf(num, sizeof num, "%lld", (long long)iv);
        else snprintf(num, sizeof num, "%.17g", json_num(v));
        json_buf_put(b, num, strlen(num));
        break;
    case JSON_STRING: { const char *s = json_str(v, &l); json_buf_str(b, s, l); break; }
    case JSON_ARRAY:
        json_buf_put(b, "[", 1);
        for (size_t i = 0; i < json_len(v); i++) {
            if (i) json_buf_put(b, ",", 1);
            cb_value(b, json_at(v, i), depth + 1);
        }
        json_buf_put(b, "]", 1);
        break;
    case JSON_OBJECT:
        json_buf_put(b, "{", 1);
        for (size_t i = 0; i < json_len(v); i++) {
            if (i) json_buf_put(b, ",", 1);
            const char *k = json_obj_key(v, i, &l);
            json_buf_str(b, k, l);
            json_buf_put(b, ":", 1);
            cb_value(b, json_obj_val(v, i), depth + 1);
        }
        json_buf_put(b, "}", 1);
        break;
    default: b->oom = 1;
    }
}
static int canon_value(const json_value *v, char **out, size_t *len) {
    json_buf b = {0};
    cb_value(&b, v, 0);
    if (b.oom || !b.p) { free(b.p); return -1; }
    *out = b.p;
    *len = b.n;
    return 0;
}

void golden_free(golden_item *items, int n) {
    for (int i = 0; i < n; i++) {
        free(items[i].input);
        free(items[i].expected);
    }
    free(items);
}

ulm_status golden_parse(const char *text, size_t len, const char *where, golden_item **items_out, int *n_out,
                        ulm_error *err) {
    *items_out = NULL;
    *n_out = 0;
    golden_item *items = NULL;
    int n = 0, cap = 0, line = 0;
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        line++;
        size_t a = i, z = e;
        while (a < z && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r')) a++;
        while (z > a && (text[z - 1] == ' ' || text[z - 1] == '\t' || text[z - 1] == '\r')) z--;
        i = e + 1;
        if (a == z) continue; /* blank lines are fine */
        json_doc *d;
        ulm_error perr;
        if (json_parse(text + a, z - a, &d, &perr)) {
            golden_free(items, n);
            return ulm_set_error(err, ULM_ERR_SPEC, "%s:%d: %s", where, line, perr.msg);
        }
        const json_value *r = json_root(d), *in = json_get(r, "input"), *out = json_get(r, "output");
        const char *msg = !json_is_obj(r) ? "each line must be a JSON object"
                          : !json_is_str(in) ? "\"input\" must be a string"
                          : !out ? "\"output\" is missing" : NULL;
        if (msg) {
            json_free(d);
            golden_free(items, n);
            return ulm_set_error(err, ULM_ERR_SPEC, "%s:%d: %s", where, line, msg);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            golden_item *ni = realloc(items, (size_t)cap * sizeof *ni);
            if (!ni) { json_free(d); golden_free(items, n); return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); }
            items = ni;
        }
        golden_item *g = &items[n];
        size_t il;
        const char *is = json_str(in, &il);
        g->input = malloc(il + 1);
        int bad = !g->input;
        if (!bad) {
            memcpy(g->input, is, il + 1);
            g->input_len = il;
        }
        if (!bad && json_is_str(out)) {
            const char *os = json_str(out, &g->expected_len);
            g->expected = malloc(g->expected_len + 1);
            bad = !g->expected;
            if (!bad) memcpy(g->expected, os, g->expected_len + 1);
        } else if (!bad) {
            bad = canon_value(out, &g->expected, &g->expected_len);
        }
        json_free(d);
        if (bad) { free(g->input); golden_free(items, n); return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); }
        n++;
    }
    if (!n) return ulm_set_error(err, ULM_ERR_SPEC, "%s: no golden items", where);
    *items_out = items;
    *n_out = n;
    return ULM_OK;
}

/* ---- the runtime ---- */

struct task {
    ulm_model *owned; /* task_load's model */
    const ulm_model *m;
    ulm_ctx *ctx;
    task_spec spec;
    char *spec_text;
    cons_vocab *vocab;
    constraint *fixed; /* a constraint that does not depend on the input, compiled once */
    constraint *validator_re;
    const char **pieces;
    uint32_t *lens;
    int n_vocab;
    float *logits, *raw;
    /* members: more weight sets of the file, each with its own context; the logits the
     * decoder sees are then the mean of all sets' log-probabilities */
    int n_members;
    ulm_model *member[MODEL_MAX_MEMBERS];
    ulm_ctx *member_ctx[MODEL_MAX_MEMBERS];
    float *member_logits;
    int32_t *toks;
    int cap_toks;
    /* beam search (spec "beam" > 1): a sequence state per hypothesis and member */
    kv_state *beam_kv[TASK_MAX_BEAM][MODEL_MAX_MEMBERS];
    float *beam_logits, *beam_tmp; /* [beam][model rows] */
};

/* Weight set k's context (0: the model's own). */
static ulm_ctx *member_ctx(const task *t, int k) { return k ? t->member_ctx[k] : t->ctx; }

/* slots NULL: the logits after feeding toks[0..n-1] to the task's own sequence ([rows]);
 * slots: one token toks[i] for each of n beam hypotheses, hypothesis i in sequence state
 * slots[i], in one batched pass per weight set ([n][rows]). With members, the mean of the
 * members' logits. That is the mean of their log-probabilities up to one constant per step
 * (each member's log-sum-exp), which the softmax drops: a product of experts, where tokens
 * all of them find likely win. */
static ulm_status task_eval(task *t, const int *slots, const int32_t *toks, int n, float *logits, ulm_error *err) {
    const size_t R = (size_t)t->m->cfg.vocab_size;
    int rows = slots ? n : 1;
    float *tmp = slots ? t->beam_tmp : t->member_logits;
    for (int k = 0; k < t->n_members; k++) {
        float *dst = k ? tmp : logits;
        ulm_status st;
        if (slots) {
            kv_state *seqs[TASK_MAX_BEAM];
            for (int i = 0; i < n; i++) seqs[i] = t->beam_kv[slots[i]][k];
            st = kv_state_eval(member_ctx(t, k), seqs, toks, n, dst, err);
        } else {
            st = ulm_ctx_eval(member_ctx(t, k), toks, n, dst, 0, err);
        }
        if (st) return st;
        for (int r = 0; k && r < rows; r++)
            for (int i = 0; i < t->n_vocab; i++) logits[r * R + i] += tmp[r * R + i];
    }
    for (int r = 0; t->n_members > 1 && r < rows; r++)
        for (int i = 0; i < t->n_vocab; i++) logits[r * R + i] /= (float)t->n_members;
    return ULM_OK;
}

static int task_rewind(task *t, int pos) {
    int r = ulm_ctx_rewind(t->ctx, pos);
    for (int k = 1; k < t->n_members && !r; k++) r = ulm_ctx_rewind(t->member_ctx[k], pos);
    return r;
}

static void task_reset(task *t) {
    ulm_ctx_reset(t->ctx);
    for (int k = 1; k < t->n_members; k++) ulm_ctx_reset(t->member_ctx[k]);
}

const task_spec *task_get_spec(const task *t) { return &t->spec; }

const char *task_golden(const task *t, size_t *len) {
    const char *s;
    if (!t->m->file || ulmf_get_str(t->m->file, "task.golden", &s, len)) return NULL;
    return s;
}

void task_free(task *t) {
    if (!t) return;
    cons_free(t->fixed);
    cons_free(t->validator_re);
    cons_vocab_free(t->vocab);
    free((void *)t->pieces);
    free(t->lens);
    free(t->logits);
    free(t->raw);
    free(t->toks);
    free(t->member_logits);
    for (int b = 0; b < TASK_MAX_BEAM; b++)
        for (int k = 0; k < MODEL_MAX_MEMBERS; k++) kv_state_free(t->beam_kv[b][k]);
    free(t->beam_logits);
    free(t->beam_tmp);
    for (int k = 1; k < t->n_members; k++) {
        if (t->member_ctx[k]) ulm_ctx_free(t->member_ctx[k]);
        ulm_model_free(t->member[k]);
    }
    if (t->ctx) ulm_ctx_free(t->ctx);
    task_spec_free(&t->spec);
    free(t->spec_text);
    if (t->owned) ulm_model_free(t->owned);
    free(t);
}

/* A sequence state per hypothesis and weight set for a beam of n (none for greedy). */
static ulm_status beam_states(task *t, int n, ulm_error *err) {
    for (int b = 0; b < TASK_MAX_BEAM; b++)
        for (int k = 0; k < MODEL_MAX_MEMBERS; k++) {
            kv_state_free(t->beam_kv[b][k]);
            t->beam_kv[b][k] = NULL;
        }
    free(t->beam_logits);
    free(t->beam_tmp);
    t->beam_logits = t->beam_tmp = NULL;
    if (n > 1) {
        size_t rows = (size_t)n * t->m->cfg.vocab_size;
        t->beam_logits = malloc(rows * sizeof *t->beam_logits);
        t->beam_tmp = t->n_members > 1 ? malloc(rows * sizeof *t->beam_tmp) : NULL;
        if (!t->beam_logits || (t->n_members > 1 && !t->beam_tmp)) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    }
    for (int b = 0; b < (n > 1 ? n : 0); b++)
        for (int k = 0; k < t->n_members; k++) {
            ulm_status st = kv_state_new(member_ctx(t, k), &t->beam_kv[b][k], err);
            if (st) return st;
        }
    return ULM_OK;
}

ulm_status task_set_beam(task *t, int beam, ulm_error *err) {
    const char *why = beam_rule(&t->spec, beam);
    if (why) return ulm_set_error(err, ULM_ERR_ARG, "%s", why);
    ulm_status st = beam_states(t, beam, err);
    if (st) {
        beam_states(t, 1, NULL);
        t->spec.beam = 1;
        return st;
    }
    t->spec.beam = beam;
    return ULM_OK;
}

ulm_status task_cons_vocab(const tokenizer *tk, const char ***pieces_out, uint32_t **lens_out, cons_vocab **out,
                           ulm_error *err) {
    int V = tok_n_vocab(tk), ne = 0;
    const char **pieces = malloc((size_t)V * sizeof *pieces);
    uint32_t *lens = malloc((size_t)V * sizeof *lens);
    int32_t *eog = malloc((size_t)V * sizeof *eog);
    ulm_status st = ULM_OK;
    if (!pieces || !lens || !eog) st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    for (int i = 0; !st && i < V; i++) {
        size_t l = 0;
        int ty = tok_type(tk, i);
        const char *p = (ty == TOK_CONTROL || ty == TOK_UNUSED || ty == TOK_UNKNOWN) ? "" : tok_decode_piece(tk, i, &l);
        pieces[i] = p ? p : "";
        lens[i] = p ? (uint32_t)l : 0;
        if (tok_is_eog(tk, i)) eog[ne++] = i;
    }
    if (!st) st = cons_vocab_new(V, pieces, lens, eog, ne, out, err);
    free(eog);
    if (st) {
        free((void *)pieces);
        free(lens);
        return st;
    }
    *pieces_out = pieces;
    *lens_out = lens;
    return ULM_OK;
}

ulm_status task_new(const ulm_model *m, const char *spec, size_t spec_len, const char *where, int n_threads,
                    task **out, ulm_error *err) {
    *out = NULL;
    task *t = calloc(1, sizeof *t);
    if (!t) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    t->m = m;
    ulm_status st;
    t->spec_text = malloc(spec_len + 1);
    if (!t->spec_text) { free(t); return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); }
    memcpy(t->spec_text, spec, spec_len);
    t->spec_text[spec_len] = 0;
    if ((st = task_spec_parse(t->spec_text, spec_len, where, &t->spec, err))) goto fail;
    ulm_ctx_params cp = {.n_ctx = 0, .n_threads = n_threads};
    if ((st = ulm_ctx_new(m, &cp, &t->ctx, err))) goto fail;
    t->n_members = m->n_members > 1 ? m->n_members : 1;
    for (int k = 1; k < t->n_members; k++) {
        if ((st = model_member(m, k, &t->member[k], err)) || (st = ulm_ctx_new(t->member[k], &cp, &t->member_ctx[k], err))) {
            t->n_members = k + 1; /* task_free frees what exists */
            goto fail;
        }
    }
    if ((st = beam_states(t, t->spec.beam, err))) goto fail;
    if (t->n_members > 1 && !(t->member_logits = malloc((size_t)m->cfg.vocab_size * sizeof *t->member_logits))) {
        st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    t->n_vocab = tok_n_vocab(m->tok);
    /* the forward pass writes a logit per model row, which may be more than the tokens */
    t->logits = malloc((size_t)m->cfg.vocab_size * sizeof *t->logits);
    t->raw = malloc((size_t)m->cfg.vocab_size * sizeof *t->raw);
    if (!t->logits || !t->raw) {
        st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = task_cons_vocab(m->tok, &t->pieces, &t->lens, &t->vocab, err))) goto fail;
    if (t->spec.constraint && !cons_spec_needs_input(t->spec.constraint) &&
        (st = cons_compile_spec(t->vocab, t->spec.constraint, NULL, 0, &t->fixed, err)))
        goto fail;
    const char *pat;
    size_t pl;
    if (t->spec.validator && json_get_str(t->spec.validator, "pattern", &pat, &pl) == 0 &&
        (st = cons_compile_regex(t->vocab, pat, pl, NULL, &t->validator_re, err)))
        goto fail;
    *out = t;
    return ULM_OK;
fail:
    task_free(t);
    return st;
}

ulm_status task_load(const char *path, int n_threads, task **out, ulm_error *err) {
    *out = NULL;
    ulm_model *m;
    ulm_status st = ulm_model_load(path, &m, err);
    if (st) return st;
    const char *spec;
    size_t len;
    if (ulmf_get_str(m->file, "task.spec", &spec, &len)) {
        ulm_model_free(m);
        return ulm_set_error(err, ULM_ERR_SPEC, "%s: not a task file (no task.spec; make one with ulm task pack)", path);
    }
    char where[300];
    snprintf(where, sizeof where, "%s[task.spec]", path);
    st = task_new(m, spec, len, where, n_threads, out, err);
    if (st) {
        ulm_model_free(m);
        return st;
    }
    (*out)->owned = m;
    return ULM_OK;
}

void task_result_free(task_result *r) {
    free(r->output);
    memset(r, 0, sizeof *r);
}

/* Appends n bytes to a growing NUL-terminated buffer; -1 when out of memory. */
static int append(char **buf, size_t *len, size_t *cap, const char *p, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        while (nc < *len + n + 1) nc *= 2;
        char *q = realloc(*buf, nc);
        if (!q) return -1;
        *buf = q;
        *cap = nc;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    (*buf)[*len] = 0;
    return 0;
}

static char *chat_wrap(const char *tmpl, const char *msg) {
    const char *pre = "", *post = "";
    if (!strcmp(tmpl, "gemma3")) { pre = "<start_of_turn>user\n"; post = "<end_of_turn>\n<start_of_turn>model\n"; }
    else if (!strcmp(tmpl, "chatml")) { pre = "<|im_start|>user\n"; post = "<|im_end|>\n<|im_start|>assistant\n"; }
    else if (!strcmp(tmpl, "llama3")) {
        pre = "<|start_header_id|>user<|end_header_id|>\n\n";
        post = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";
    }
    size_t a = strlen(pre), b = strlen(msg), c = strlen(post);
    char *s = malloc(a + b + c + 1);
    if (!s) return NULL;
    memcpy(s, pre, a);
    memcpy(s + a, msg, b);
    memcpy(s + a + b, post, c + 1);
    return s;
}

static int utf8_valid(const char *s, size_t n) {
    const uint8_t *p = (const uint8_t *)s;
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        int l = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!l || i + (size_t)l > n) return 0;
        for (int k = 1; k < l; k++)
            if ((p[i + k] & 0xC0) != 0x80) return 0;
        if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] > 0x9F) || (c == 0xF0 && p[i + 1] < 0x90) ||
            (c == 0xF4 && p[i + 1] > 0x8F))
            return 0;
        i += (size_t)l;
    }
    return 1;
}

ulm_status task_encode_prompt(const task_spec *s, const tokenizer *tk, const char *input, size_t len, int32_t *out,
                              int cap, int *n_out, ulm_error *err) {
    char *prompt = task_prompt(s, input, len), *full = prompt;
    if (!prompt) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    if (s->chat && strcmp(tok_chat_template(tk), "none")) {
        full = chat_wrap(tok_chat_template(tk), prompt);
        free(prompt);
        if (!full) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    }
    ulm_status st = tok_encode(tk, full, strlen(full), ULM_TOK_ADD_BOS | ULM_TOK_PARSE_SPECIAL, out, cap, n_out, err);
    free(full);
    return st;
}

static void escalate(task_result *r, const char *reason) {
    if (r->route == ROUTE_LOCAL) {
        r->route = ROUTE_ESCALATE;
        r->reason = reason;
    }
}

/* ---- decoding: one pass, and the distinct_strings repair ---- */

#define MAX_REWINDS 16
/* The decoding state before output token i, for a rewind. */
typedef struct {
    dstr_scan scan;
    cons_run run;
    size_t len;
    double conf_sum;
    float conf_min;
} decode_snap;
/* A token banned at output position pos (only while the output before pos stays the same). */
typedef struct {
    int pos;
    int32_t id;
} token_ban;

/* One decoding pass from the prompt's logits in t->logits, the context at the prompt's end. */
typedef struct decoder {
    task *t;
    constraint *c;     /* NULL: unconstrained */
    sampler smp;
    int n_prompt;
    int distinct;      /* distinct_strings on: rewind on a repeated value */
    int ban_content;   /* which token a rewind bans: 0 the one that opened the value, 1 its first content token */
    decode_snap *snaps;/* [max_tokens + 1] */
    token_ban *bans;   /* [max_tokens + MAX_REWINDS] */
    int n_bans, rewinds;
    dstr_list vals;
    ulm_text_fn on_text; /* NULL: do not stream */
    void *user;
    size_t flushed;    /* output bytes streamed */
    int quit;          /* on_text asked to stop */
    double t0, ttft_ms;
    /* the answer */
    char *out;
    size_t len, cap;
    int n_tokens;
    double conf_sum;
    float conf_min;
    cons_run run;
    int unsat;         /* the constraint left no token */
} decoder;

/* Masks the tokens banned at output position pos; 1 if no token is left. */
static int apply_bans(const token_ban *b, int n, int pos, float *logits, int n_vocab) {
    for (int i = 0; i < n; i++)
        if (b[i].pos == pos) logits[b[i].id] = -INFINITY;
    for (int i = 0; i < n_vocab; i++)
        if (logits[i] != -INFINITY) return 0;
    return 1;
}

/* The output token whose bytes hold output offset at. */
static int token_at(const decoder *d, size_t at) {
    int j = d->n_tokens - 1;
    while (j > 0 && d->snaps[j].len > at) j--;
    return j;
}

static ulm_status decode(decoder *d, const cons_run *run0, ulm_error *err) {
    task *t = d->t;
    const task_spec *s = &t->spec;
    constraint *c = d->c;
    ulm_status st = ULM_OK;
    int n = d->n_prompt;
    dstr_scan scan;
    dstr_init(&scan);
    if (c) d->run = *run0;
    d->conf_min = 1;
    if (append(&d->out, &d->len, &d->cap, "", 0)) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    while (d->n_tokens < s->max_tokens) {
        if (c && cons_final(&d->run)) break;
        if (d->distinct) d->snaps[d->n_tokens] = (decode_snap){scan, d->run, d->len, d->conf_sum, d->conf_min};
        /* the model's own probabilities, before penalties and the mask */
        float mx = -INFINITY;
        for (int i = 0; i < t->n_vocab; i++) mx = t->logits[i] > mx ? t->logits[i] : mx;
        double sum = 0;
        for (int i = 0; i < t->n_vocab; i++) sum += exp((double)(t->logits[i] - mx));
        memcpy(t->raw, t->logits, (size_t)t->n_vocab * sizeof *t->raw);
        if (c) {
            const uint64_t *mask = cons_allowed(&d->run, err);
            if (!mask) {
                if (err && err->code == ULM_ERR_NOMEM) return ULM_ERR_NOMEM;
                d->unsat = 1;
                return ULM_OK;
            }
            cons_apply_mask(mask, t->logits, t->n_vocab);
            if (d->distinct && apply_bans(d->bans, d->n_bans, d->n_tokens, t->logits, t->n_vocab)) {
                /* the bans left nothing: give the rule up for this answer, keep the constraint */
                d->distinct = 0;
                memcpy(t->logits, t->raw, (size_t)t->n_vocab * sizeof *t->raw);
                cons_apply_mask(mask, t->logits, t->n_vocab);
            }
        }
        int next = sampler_sample(&d->smp, t->logits, NULL, t->toks, n, NULL);
        if (d->n_tokens == 0 && !d->ttft_ms) d->ttft_ms = now_ms() - d->t0;
        if (next < 0) { d->unsat = 1; return ULM_OK; }
        float p = (float)(exp((double)(t->raw[next] - mx)) / sum);
        d->conf_sum += p;
        if (p < d->conf_min) d->conf_min = p;
        d->n_tokens++;
        if (c && (st = cons_advance(&d->run, next, err))) return st;
        if (tok_is_eog(t->m->tok, next)) break;
        size_t before = d->len;
        if (append(&d->out, &d->len, &d->cap, t->pieces[next], t->lens[next])) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
        t->toks[n++] = next;
        if (d->distinct && dstr_feed(&scan, &d->vals, d->out, before, d->len)) {
            /* a repeated value: rewind to the token that opened it (or to its first content
             * token) and ban that token there */
            int j = token_at(d, scan.str_quote + (d->ban_content ? 1 : 0));
            if (d->rewinds < MAX_REWINDS && task_rewind(t, d->n_prompt + j - 1) == 0) {
                d->rewinds++;
                d->on_text = NULL; /* what follows may differ between repairs: streamed at the end */
                while (d->n_bans > 0 && d->bans[d->n_bans - 1].pos > j) d->n_bans--; /* for a prefix now gone */
                d->bans[d->n_bans++] = (token_ban){j, t->toks[d->n_prompt + j]};
                scan = d->snaps[j].scan;
                d->run = d->snaps[j].run;
                d->len = d->snaps[j].len;
                d->out[d->len] = 0;
                d->conf_sum = d->snaps[j].conf_sum;
                d->conf_min = d->snaps[j].conf_min;
                d->n_tokens = j;
                n = d->n_prompt + j;
                if ((st = task_eval(t, NULL, &t->toks[n - 1], 1, t->logits, err))) return st;
                continue;
            }
            d->distinct = 0; /* out of rewinds, or the cache cannot rewind: keep the answer as it is */
        }
        int stopped = 0;
        if (!c)
            for (int k = 0; k < s->n_stop && !stopped; k++) {
                size_t from = before >= s->stop_len[k] ? before - s->stop_len[k] + 1 : 0;
                char *hit = memmem(d->out + from, d->len - from, s->stop[k], s->stop_len[k]);
                if (hit) {
                    d->len = (size_t)(hit - d->out);
                    d->out[d->len] = 0;
                    stopped = 1;
                }
            }
        /* with distinct_strings, an open value (from the token that opened it) is held back,
         * since a rewind may take it away */
        size_t ready = d->len;
        if (d->distinct && scan.in_str && !scan.str_is_key) ready = d->snaps[token_at(d, scan.str_quote)].len;
        if (d->on_text && ready > d->flushed) {
            d->quit = d->on_text(d->out + d->flushed, ready - d->flushed, d->user);
            d->flushed = ready;
            if (d->quit) break;
        }
        if (stopped) break;
        if (d->n_tokens >= s->max_tokens) break;
        if ((st = task_eval(t, NULL, &t->toks[n - 1], 1, t->logits, err))) return st;
    }
    return ULM_OK;
}

/* ---- beam search ----
 * Keeps the spec's "beam" most likely partial answers (summed log-probabilities, each step's
 * renormalized over the tokens the constraint allows there); each step extends
 * every live one by its most likely allowed tokens and keeps the best. The answer is the
 * finished one of highest score: once the best finished score is above every live one, no
 * longer answer can beat it (log-probabilities only add up below zero). Greedy decoding picks
 * a name's tag or its end one token at a time; the search lets a slightly less likely token
 * win when what it leads to is much more likely. */
typedef struct {
    int32_t *toks;   /* [max_tokens] output tokens, the end-of-generation one included */
    int n, slot;     /* slot: the sequence state (t->beam_kv[slot]) holding its K/V */
    double score;
    double conf_sum;
    float conf_min;
    cons_run run;
    int done;
} beam_hyp;

typedef struct {
    int parent;
    int32_t id;
    double score;
    float p;
} beam_cand;

/* Inserts x into top[0..*n), kept sorted best first and at most cap long. */
static void beam_insert(beam_cand *top, int *n, int cap, beam_cand x) {
    if (*n == cap && top[cap - 1].score >= x.score) return;
    int i = *n < cap ? (*n)++ : cap - 1;
    while (i > 0 && top[i - 1].score < x.score) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = x;
}

/* The answer's text: its tokens' pieces up to the end of generation, cut at a stop string
 * (unconstrained). 1 if a stop string was found. */
static int beam_text(const task *t, const beam_hyp *h, int constrained, char **out, size_t *len, size_t *cap) {
    *len = 0;
    if (append(out, len, cap, "", 0)) return -1;
    for (int i = 0; i < h->n; i++) {
        if (tok_is_eog(t->m->tok, h->toks[i])) break;
        if (append(out, len, cap, t->pieces[h->toks[i]], t->lens[h->toks[i]])) return -1;
    }
    if (constrained) return 0;
    for (int k = 0; k < t->spec.n_stop; k++) {
        char *hit = memmem(*out, *len, t->spec.stop[k], t->spec.stop_len[k]);
        if (hit) {
            *len = (size_t)(hit - *out);
            (*out)[*len] = 0;
            return 1;
        }
    }
    return 0;
}

/* Beam search from the prompt's logits in t->logits, the contexts at the prompt's end; the
 * answer goes to d as decode() leaves it. */
static ulm_status decode_beam(decoder *d, const cons_run *run0, ulm_error *err) {
    task *t = d->t;
    const task_spec *s = &t->spec;
    const int B = s->beam, M = t->n_members, V = t->n_vocab;
    constraint *c = d->c;
    ulm_status st = ULM_OK;
    beam_hyp live[TASK_MAX_BEAM], next[TASK_MAX_BEAM], fin[TASK_MAX_BEAM];
    beam_cand cand[TASK_MAX_BEAM * TASK_MAX_BEAM];
    int n_live = 1, n_fin = 0;
    int32_t *pool = malloc((size_t)3 * B * s->max_tokens * sizeof *pool);
    char *txt = NULL;
    size_t tl = 0, tcap = 0;
    if (!pool) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    for (int b = 0; b < B; b++) {
        live[b].toks = pool + (size_t)b * s->max_tokens;
        next[b].toks = pool + (size_t)(B + b) * s->max_tokens;
        fin[b].toks = pool + (size_t)(2 * B + b) * s->max_tokens;
    }
    live[0].n = live[0].slot = 0;
    live[0].score = live[0].conf_sum = 0;
    live[0].conf_min = 1;
    live[0].done = 0;
    if (c) live[0].run = *run0;
    /* the prompt's K/V becomes slot 0's */
    for (int k = 0; k < M; k++) kv_state_swap(member_ctx(t, k), t->beam_kv[0][k]);
    const size_t R = (size_t)t->m->cfg.vocab_size;
    for (int step = 0; n_live > 0; step++) {
        /* each live hypothesis's next-token logits: the prompt's at first, then its last
         * token fed to every weight set, all hypotheses in one batched pass per set */
        const float *rows = t->logits;
        if (step > 0) {
            int32_t last[TASK_MAX_BEAM];
            int slots[TASK_MAX_BEAM];
            for (int i = 0; i < n_live; i++) last[i] = live[i].toks[live[i].n - 1], slots[i] = live[i].slot;
            if ((st = task_eval(t, slots, last, n_live, t->beam_logits, err))) goto done;
            rows = t->beam_logits;
        }
        int n_cand = 0;
        for (int i = 0; i < n_live; i++) {
            beam_hyp *h = &live[i];
            const float *lg = rows + (size_t)i * R;
            float mx = -INFINITY;
            for (int v = 0; v < V; v++) mx = lg[v] > mx ? lg[v] : mx;
            double sum = 0;
            for (int v = 0; v < V; v++) sum += exp((double)(lg[v] - mx));
            double lz = log(sum);
            const uint64_t *mask = NULL;
            if (c) {
                cons_run r = h->run;
                if (!(mask = cons_allowed(&r, err))) {
                    if (err && err->code == ULM_ERR_NOMEM) { st = ULM_ERR_NOMEM; goto done; }
                    continue; /* nothing allowed: this hypothesis ends here, unfinished */
                }
            }
            /* the score renormalizes over the allowed tokens (the distribution greedy decoding
             * picks from); confidence stays the model's own probability */
            double lza = lz;
            if (mask) {
                double za = 0;
                for (int v = 0; v < V; v++)
                    if (cons_bit(mask, v)) za += exp((double)(lg[v] - mx));
                lza = log(za);
            }
            /* its B best allowed tokens */
            beam_cand top[TASK_MAX_BEAM];
            int nt = 0;
            for (int v = 0; v < V; v++) {
                if ((mask && !cons_bit(mask, v)) || lg[v] == -INFINITY) continue;
                double d = (double)(lg[v] - mx);
                beam_insert(top, &nt, B, (beam_cand){i, v, h->score + d - lza, (float)exp(d - lz)});
            }
            for (int j = 0; j < nt; j++) cand[n_cand++] = top[j];
        }
        /* the best candidates overall (stable: ties keep the earlier hypothesis and token) */
        beam_cand best[TASK_MAX_BEAM];
        int nb = 0;
        for (int j = 0; j < n_cand; j++) beam_insert(best, &nb, B, cand[j]);
        int n_next = 0;
        for (int j = 0; j < nb; j++) {
            const beam_hyp *p = &live[best[j].parent];
            beam_hyp *h = &next[n_next];
            memcpy(h->toks, p->toks, (size_t)p->n * sizeof *h->toks);
            h->toks[p->n] = best[j].id;
            h->n = p->n + 1;
            h->score = best[j].score;
            h->conf_sum = p->conf_sum + best[j].p;
            h->conf_min = best[j].p < p->conf_min ? best[j].p : p->conf_min;
            h->run = p->run;
            h->slot = p->slot;
            if (c && (st = cons_advance(&h->run, best[j].id, err))) goto done;
            h->done = tok_is_eog(t->m->tok, best[j].id) || h->n >= s->max_tokens || (c && cons_final(&h->run));
            if (!h->done && !c) {
                int hit = beam_text(t, h, 0, &txt, &tl, &tcap);
                if (hit < 0) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
                h->done = hit;
            }
            if (!h->done) {
                n_next++;
                continue;
            }
            /* finished: keep the B best */
            if (n_fin == B && fin[B - 1].score >= h->score) continue;
            int at = n_fin < B ? n_fin++ : B - 1;
            int32_t *keep = fin[at].toks;
            while (at > 0 && fin[at - 1].score < h->score) {
                fin[at] = fin[at - 1];
                at--;
            }
            fin[at] = *h;
            fin[at].toks = keep; /* the array that fell off the end (or was free) takes the copy */
            memcpy(keep, h->toks, (size_t)h->n * sizeof *keep);
        }
        /* sequence states: a hypothesis's first child keeps its slot, the others take a slot
         * no child claims, with a copy of the parent's K/V */
        int claimed[TASK_MAX_BEAM] = {0}, first[TASK_MAX_BEAM];
        for (int j = 0; j < n_next; j++) {
            first[j] = !claimed[next[j].slot];
            claimed[next[j].slot] = 1;
        }
        for (int j = 0; j < n_next; j++) {
            if (first[j]) continue;
            int free_slot = 0;
            while (claimed[free_slot]) free_slot++;
            claimed[free_slot] = 1;
            for (int k = 0; k < M; k++) kv_state_copy(t->beam_kv[free_slot][k], t->beam_kv[next[j].slot][k]);
            next[j].slot = free_slot;
        }
        /* next becomes live (the token arrays swap with it) */
        for (int j = 0; j < B; j++) {
            beam_hyp tmp = live[j];
            live[j] = next[j];
            next[j] = tmp;
        }
        n_live = n_next;
        if (n_fin && n_live && fin[0].score >= live[0].score) break;
        /* the tokens every live hypothesis and the best finished one share are the answer's
         * whatever happens next: the first of them is the first token, and they stream */
        const beam_hyp *ref = n_live ? &live[0] : &fin[0];
        int nc = ref->n;
        for (int j = 0; j < n_live + (n_fin > 0); j++) {
            const beam_hyp *h = j < n_live ? &live[j] : &fin[0];
            int q = 0;
            while (q < nc && q < h->n && h->toks[q] == ref->toks[q]) q++;
            nc = q;
        }
        if (nc > 0 && !d->ttft_ms) d->ttft_ms = now_ms() - d->t0;
        if (nc > 0 && d->on_text && n_live) { /* (at the end, task_run streams the rest) */
            beam_hyp part = *ref;
            part.n = nc;
            if (beam_text(t, &part, c != NULL, &txt, &tl, &tcap) < 0) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
            if (tl > d->flushed) {
                d->quit = d->on_text(txt + d->flushed, tl - d->flushed, d->user);
                d->flushed = tl;
                if (d->quit) break; /* the caller asked to stop: the best hypothesis so far answers */
            }
        }
    }
    if (!n_fin && !d->quit) {
        d->unsat = 1;
        goto done;
    }
    {
        const beam_hyp *w = d->quit && n_live ? &live[0] : &fin[0];
        free(d->out);
        d->out = NULL;
        d->cap = 0;
        if (beam_text(t, w, c != NULL, &d->out, &d->len, &d->cap) < 0) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
        d->n_tokens = w->n;
        d->conf_sum = w->conf_sum;
        d->conf_min = w->conf_min;
        d->run = w->run;
        if (!d->ttft_ms) d->ttft_ms = now_ms() - d->t0;
    }
done:
    free(pool);
    free(txt);
    return st;
}

static void decoder_free(decoder *d) {
    sampler_free(&d->smp);
    dstr_list_free(&d->vals);
    free(d->out);
    d->out = NULL;
}

ulm_status task_run(task *t, const char *input, size_t len, ulm_text_fn on_text, void *user, task_result *res,
                    ulm_error *err) {
    memset(res, 0, sizeof *res);
    double t0 = now_ms();
    const task_spec *s = &t->spec;
    const ulm_model *m = t->m;
    size_t cap = 0;
    if (!utf8_valid(input, len)) return ulm_set_error(err, ULM_ERR_UTF8, "input is not valid UTF-8");
    if (memchr(input, 0, len)) return ulm_set_error(err, ULM_ERR_ARG, "input contains a NUL byte");
    if (append(&res->output, &res->len, &cap, "", 0)) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    ulm_status st;
    int n_prompt = 0;
    constraint *dyn = NULL;
    decode_snap *snaps = NULL;
    token_ban *bans = NULL;
    float *first = NULL; /* the prompt's logits, for a second pass */
    decoder dec[2];
    memset(dec, 0, sizeof dec);
    if ((st = task_encode_prompt(s, m->tok, input, len, NULL, 0, &n_prompt, err))) goto done;
    res->n_prompt = n_prompt;
    int n_ctx = ulm_ctx_size(t->ctx);
    /* over-long input escalates rather than failing */
    if ((s->context_budget && n_prompt > s->context_budget) || n_prompt + s->max_tokens > n_ctx || n_prompt == 0) {
        escalate(res, "input_over_budget");
        goto done;
    }
    if (n_prompt + s->max_tokens > t->cap_toks) {
        int32_t *nt = realloc(t->toks, (size_t)(n_prompt + s->max_tokens) * sizeof *nt);
        if (!nt) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
        t->toks = nt;
        t->cap_toks = n_prompt + s->max_tokens;
    }
    if ((st = task_encode_prompt(s, m->tok, input, len, t->toks, t->cap_toks, &n_prompt, err))) goto done;
    constraint *c = t->fixed;
    if (s->constraint && !c) {
        st = cons_compile_spec(t->vocab, s->constraint, input, len, &dyn, err);
        if (st == ULM_ERR_CONSTRAINT) {
            st = ULM_OK;
            escalate(res, "constraint_unsatisfiable");
            goto done;
        }
        if (st) goto done;
        c = dyn;
    }
    cons_run run;
    if (c && cons_begin(c, s->max_tokens, &run, err)) {
        escalate(res, "constraint_unsatisfiable");
        goto done;
    }
    /* distinct_strings: a repeated value is repaired by a rewind that bans the token that
     * opened it (the model then goes on without it); when that happened, a second pass bans
     * the value's first token instead (the model picks another span there), and the answer
     * whose least likely token is the more likely wins */
    int distinct = 0;
    if (c && s->constraint) json_get_bool(s->constraint, "distinct_strings", &distinct);
    if (distinct) {
        snaps = malloc((size_t)(s->max_tokens + 1) * sizeof *snaps);
        bans = malloc((size_t)(s->max_tokens + MAX_REWINDS) * sizeof *bans);
        first = malloc((size_t)t->n_vocab * sizeof *first);
        if (!snaps || !bans || !first) { st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory"); goto done; }
    }
    for (int k = 0; k < 2; k++)
        dec[k] = (decoder){.t = t, .c = c, .n_prompt = n_prompt, .distinct = distinct, .ban_content = k,
                           .snaps = snaps, .bans = bans, .t0 = t0};
    if ((st = sampler_init(&dec[0].smp, &s->sampling, t->n_vocab, err))) goto done;
    dec[0].on_text = s->has_tagged ? NULL : on_text; /* tagged spans: the JSON answer, at the end */
    dec[0].user = user;
    task_reset(t);
    if ((st = task_eval(t, NULL, t->toks, n_prompt, t->logits, err))) goto done;
    if (distinct) memcpy(first, t->logits, (size_t)t->n_vocab * sizeof *first);
    if (s->beam > 1) {
        if ((st = decode_beam(&dec[0], &run, err))) goto done;
    } else if ((st = decode(&dec[0], &run, err))) goto done;
    decoder *win = &dec[0];
    if (dec[0].rewinds && !dec[0].unsat && task_rewind(t, n_prompt) == 0) {
        memcpy(t->logits, first, (size_t)t->n_vocab * sizeof *first);
        /* a sampler of its own, seeded as the first pass's was */
        if ((st = sampler_init(&dec[1].smp, &s->sampling, t->n_vocab, err))) goto done;
        if ((st = decode(&dec[1], &run, err))) goto done;
        if (!dec[1].unsat && dec[1].conf_min > dec[0].conf_min) win = &dec[1];
    }
    /* both passes agree up to where the first one stopped streaming */
    if (on_text && !s->has_tagged && !dec[0].quit && win->len > dec[0].flushed)
        on_text(win->out + dec[0].flushed, win->len - dec[0].flushed, user);
    free(res->output);
    res->output = win->out;
    res->len = win->len;
    win->out = NULL;
    res->n_tokens = win->n_tokens;
    res->ttft_ms = dec[0].ttft_ms;
    double conf_sum = win->conf_sum;
    float conf_min = win->conf_min;
    run = win->run;
    if (win->unsat) {
        escalate(res, "constraint_unsatisfiable");
        goto done;
    }
    res->conf_min = res->n_tokens ? conf_min : 0;
    res->conf_mean = res->n_tokens ? (float)(conf_sum / res->n_tokens) : 0;
    res->valid = 1;
    if (c) {
        res->valid = cons_accepting(&run) && cons_matches(c, res->output, res->len);
        size_t l = res->len;
        const char *o = cons_strip_leading(c, res->output, &l);
        memmove(res->output, o, l);
        res->len = l;
        res->output[l] = 0;
        if (!res->valid) escalate(res, "constraint_unsatisfiable");
        if (s->has_tagged) { /* the model's items -> the JSON answer */
            char *j;
            size_t jl;
            ulm_error terr;
            if (tagged_to_json(&s->tagged, res->output, res->len, &j, &jl, &terr) == ULM_OK) {
                free(res->output);
                res->output = j;
                res->len = jl;
                if (on_text && res->valid) on_text(j, jl, user);
            } else if (res->valid) { /* the constraint rules this out; should it happen, no answer */
                res->valid = 0;
                escalate(res, "validator_failed");
            }
        }
    } else { /* unconstrained: surrounding whitespace is not part of the answer */
        size_t a = 0, z = res->len;
        while (a < z && (res->output[a] == ' ' || res->output[a] == '\n' || res->output[a] == '\t' || res->output[a] == '\r')) a++;
        while (z > a && (res->output[z - 1] == ' ' || res->output[z - 1] == '\n' || res->output[z - 1] == '\t' || res->output[z - 1] == '\r')) z--;
        memmove(res->output, res->output + a, z - a);
        res->len = z - a;
        res->output[res->len] = 0;
    }
    if (s->validator) {
        const json_value *ref = json_get(s->validator, "refusals");
        for (size_t i = 0; i < json_len(ref); i++) {
            size_t rl;
            const char *rs = json_str(json_at(ref, i), &rl);
            if (rl && memmem(res->output, res->len, rs, rl)) /* a well-formed answer that routes on */
                escalate(res, "refusal");
        }
        int want_json = 0;
        json_get_bool(s->validator, "json", &want_json);
        json_doc *d;
        if (want_json) {
            if (json_parse(res->output, res->len, &d, NULL)) {
                res->valid = 0;
                escalate(res, "validator_failed");
            } else {
                json_free(d);
            }
        }
        if (t->validator_re && !cons_matches(t->validator_re, res->output, res->len)) {
            res->valid = 0;
            escalate(res, "validator_failed");
        }
    }
    if (res->n_tokens && (res->conf_min < s->min_conf || res->conf_mean < s->min_mean_conf)) escalate(res, "low_confidence");
done:
    if (!res->ttft_ms) res->ttft_ms = now_ms() - t0;
    res->total_ms = now_ms() - t0;
    cons_free(dyn);
    free(snaps);
    free(bans);
    free(first);
    decoder_free(&dec[0]);
    decoder_free(&dec[1]);
    if (st) task_result_free(res);
    return st;
}
