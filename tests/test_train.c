/* The trainer end to end: JSONL parsing, prompt format and batches, determinism, checkpoint
 * and resume, overfitting a tiny set, the .ulm it writes, and `ulm train` itself. */
#include <math.h>
#include "test_util.h"
#include "args.h"
#include "cli.h"
#include "json.h"
#include "tagged_spans.h"
#include "train/train_data.h"
#include "train/train_loop.h"
#include "train/train_model.h"

static void test_jsonl_parse(void **state) {
    char *in, *out, msg[128];
    const char *ok = "{\"id\": 3, \"input\": \"a \\\"b\\\"\\n\\u00e9\\ud83d\\ude00\", \"meta\": {\"x\": [1, 2.5e3, null, true]}, "
                     "\"output\": \"\xc3\xa9t\xc3\xa9\"}";
    assert_int_equal(train_parse_jsonl_line(ok, strlen(ok), &in, &out, msg, sizeof msg), 0);
    assert_string_equal(in, "a \"b\"\n\xc3\xa9\xf0\x9f\x98\x80");
    assert_string_equal(out, "\xc3\xa9t\xc3\xa9");
    free(in);
    free(out);
    static const char *bad[] = {
        "", "[]", "{\"input\": \"x\"}", "{\"input\": \"x\", \"output\": 3}", "{\"input\": \"x\", \"output\": \"y\"} z",
        "{\"input\": \"x\\q\", \"output\": \"y\"}", "{\"input\": \"\xff\", \"output\": \"y\"}",
        "{\"input\": \"\xc0\xaf\", \"output\": \"y\"}", "{\"input\": \"\\ud800\", \"output\": \"y\"}",
        "{\"input\": \"a\x01\", \"output\": \"y\"}", "{\"input\" \"x\", \"output\": \"y\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(train_parse_jsonl_line(bad[i], strlen(bad[i]), &in, &out, msg, sizeof msg), -1);
    /* every truncation and random byte flips: an answer, never a crash (ASan checks reads) */
    size_t n = strlen(ok);
    for (size_t k = 0; k < n; k++) {
        char *t = malloc(k ? k : 1);
        memcpy(t, ok, k);
        assert_int_equal(train_parse_jsonl_line(t, k, &in, &out, msg, sizeof msg), -1);
        free(t);
    }
    uint64_t r = 99;
    for (int it = 0; it < 2000; it++) {
        char *t = malloc(n);
        memcpy(t, ok, n);
        for (int f = 0; f < 3; f++) {
            r = r * 6364136223846793005ull + 1;
            t[(r >> 33) % n] = (char)(r >> 20);
        }
        if (train_parse_jsonl_line(t, n, &in, &out, msg, sizeof msg) == 0) { free(in); free(out); }
        free(t);
    }
}

static void test_input_prefix_from_instruction(void **state) {
    char p[16], msg[160];
    assert_int_equal(train_input_prefix("<|in|>{input}<|out|>", p, sizeof p, msg, sizeof msg), 0);
    assert_string_equal(p, "");
    assert_int_equal(train_input_prefix("<|in|> {input}<|out|>", p, sizeof p, msg, sizeof msg), 0);
    assert_string_equal(p, " ");
    assert_int_equal(train_input_prefix("<|in|>Text: {input}<|out|>", p, sizeof p, msg, sizeof msg), 0);
    assert_string_equal(p, "Text: ");
    /* not the trainer's format: refused with a message, never silently trained differently */
    const char *bad[] = {"{input}<|out|>", "<|in|>{input}", "Q: {input}\nA:", "<|in|>{input}<|out|> ",
                         "<|in|><|end|>{input}<|out|>", "<|in|>a{b}{input}<|out|>", "<|in|>",
                         "<|in|>a much longer prefix than fits{input}<|out|>"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        msg[0] = 0;
        assert_int_equal(train_input_prefix(bad[i], p, sizeof p, msg, sizeof msg), -1);
        assert_true(strlen(msg) > 10);
    }
}

static void test_prompt_format_and_batch(void **state) {
    train_tok tok;
    train_tok_bytes(&tok);
    int32_t ids[32];
    int np;
    int n = train_format_example(&tok, "ab", 2, "xyz", 3, ids, 32, &np);
    int32_t want[] = {256, 'a', 'b', 257, 'x', 'y', 'z', 258};
    assert_int_equal(n, 8);
    assert_int_equal(np, 4);
    assert_memory_equal(ids, want, sizeof want);
    assert_int_equal(train_format_prompt(&tok, "ab", 2, ids, 32), 4);
    assert_int_equal(train_format_example(&tok, "ab", 2, "xyz", 3, ids, 7, &np), -1); /* does not fit */
    /* an input prefix (a task instruction "<|in|> {input}<|out|>") goes before the input */
    tok.input_prefix = " ";
    int32_t want_sp[] = {256, ' ', 'a', 'b', 257, 'x', 'y', 'z', 258};
    assert_int_equal(train_format_example(&tok, "ab", 2, "xyz", 3, ids, 32, &np), 9);
    assert_int_equal(np, 5);
    assert_memory_equal(ids, want_sp, sizeof want_sp);
    tok.input_prefix = NULL;

    train_set s = {0};
    assert_int_equal(train_set_add(&s, want, 8, 4), 0);
    assert_int_equal(train_set_add(&s, want, 5, 4), 0);
    train_batch b = {0};
    assert_int_equal(train_make_batch_range(&s, 0, 2, &b), 0);
    assert_int_equal(b.n, 13);
    assert_int_equal(b.n_seg, 2);
    /* loss on predicting x y z <|end|>: positions 3..6 of the first example */
    int32_t tgt[13] = {-1, -1, -1, 'x', 'y', 'z', 258, -1, -1, -1, -1, 'x', -1};
    assert_memory_equal(b.targets, tgt, sizeof tgt);
    /* the prompt loss (--prompt-loss) predicts the rest of the prompt: a b <|out|> */
    int32_t ptgt[13] = {'a', 'b', 257, -1, -1, -1, -1, -1, 'a', 'b', 257, -1, -1};
    assert_memory_equal(b.ptargets, ptgt, sizeof ptgt);
    assert_int_equal(b.pos[8], 0);
    assert_int_equal(b.pos[12], 4);
    train_batch_free(&b);
    train_set_free(&s);
}

static void test_batches_are_epoch_permutations(void **state) {
    train_set s = {0};
    for (int i = 0; i < 37; i++) {
        int32_t id = i;
        assert_int_equal(train_set_add(&s, &id, 1, 0), 0);
    }
    train_batch b = {0};
    for (int epoch = 0; epoch < 3; epoch++) {
        int seen[37] = {0};
        for (int i = 0; i < 37; i++) { /* batch 1: step = index into the stream */
            assert_int_equal(train_make_batch(&s, 5, epoch * 37 + i, 1, &b), 0);
            seen[b.tokens[0]]++;
        }
        for (int i = 0; i < 37; i++) assert_int_equal(seen[i], 1);
    }
    int32_t a[8], c[8];
    train_make_batch(&s, 5, 3, 8, &b);
    memcpy(a, b.tokens, sizeof a);
    train_make_batch(&s, 6, 3, 8, &b);
    memcpy(c, b.tokens, sizeof c);
    assert_true(memcmp(a, c, sizeof a) != 0); /* the seed matters */
    train_batch_free(&b);
    train_set_free(&s);
}

/* A small copy task: output = input reversed. */
static void make_set(train_set *s, const train_tok *tok, int n, uint64_t seed) {
    for (int i = 0; i < n; i++) {
        char in[8], out[8];
        int len = 3 + (int)(seed % 3);
        for (int j = 0; j < len; j++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            in[j] = (char)('a' + (seed >> 59));
        }
        for (int j = 0; j < len; j++) out[j] = in[len - 1 - j];
        int32_t ids[32];
        int np, k = train_format_example(tok, in, (size_t)len, out, (size_t)len, ids, 32, &np);
        assert_true(k > 0);
        assert_int_equal(train_set_add(s, ids, k, np), 0);
    }
}

static train_model *tiny_model(const char *arch, uint64_t seed) {
    train_config c;
    train_config_default(&c, train_arch_find(arch));
    c.dim = 32; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 8; c.ffn_dim = 64;
    c.vocab_size = 259; c.max_ctx = 32;
    train_model *m;
    assert_int_equal(train_model_new(&m, &c, seed, NULL), ULM_OK);
    return m;
}

static void run(train_model *m, const train_set *s, const train_tok *tok, int steps, int threads, const char *ckpt,
                int stop_after, train_run_result *r) {
    train_run_opts o = {0};
    train_opt_default(&o.opt);
    o.opt.warmup = 5;
    o.opt.total_steps = steps;
    o.train = s;
    o.tok = tok;
    o.steps = steps;
    o.batch = 8;
    o.seed = 3;
    o.threads = threads;
    o.checkpoint = ckpt;
    o.stop_after = stop_after;
    ulm_error err;
    assert_int_equal(train_run(m, 0, &o, r, &err), ULM_OK);
}

static void test_same_seed_same_weights(void **state) {
    train_tok tok;
    train_tok_bytes(&tok);
    train_set s = {0};
    make_set(&s, &tok, 40, 1);
    train_model *a = tiny_model("llama", 9), *b = tiny_model("llama", 9), *c = tiny_model("llama", 10);
    assert_memory_equal(a->w, b->w, a->n_params * sizeof(float));
    assert_true(memcmp(a->w, c->w, a->n_params * sizeof(float)) != 0);
    train_run_result r;
    run(a, &s, &tok, 10, 2, NULL, 0, &r);
    run(b, &s, &tok, 10, 1, NULL, 0, &r); /* the thread count does not change a bit either */
    assert_memory_equal(a->w, b->w, a->n_params * sizeof(float));
    train_model_free(a);
    train_model_free(b);
    train_model_free(c);
    train_set_free(&s);
}

static void test_checkpoint_resume_matches(void **state) {
    train_tok tok;
    train_tok_bytes(&tok);
    train_set s = {0};
    make_set(&s, &tok, 40, 2);
    char ckpt[256];
    test_tmp_path(ckpt, sizeof ckpt, "ckpt.ulm");
    train_model *a = tiny_model("gemma3", 4), *b = tiny_model("gemma3", 4);
    train_run_result r;
    run(a, &s, &tok, 12, 2, NULL, 0, &r);
    run(b, &s, &tok, 12, 2, ckpt, 5, &r); /* stops after step 5 with a checkpoint */
    assert_int_equal(r.steps_done, 5);
    train_model_free(b);
    train_state st;
    ulm_error err;
    assert_int_equal(train_load_checkpoint(&b, &st, ckpt, &err), ULM_OK);
    assert_int_equal(st.step, 5);
    assert_int_equal(st.seed, 3);
    train_run_opts o = {0};
    train_opt_default(&o.opt);
    o.opt.warmup = 5;
    o.opt.total_steps = 12;
    o.train = &s; o.tok = &tok; o.steps = 12; o.batch = 8; o.seed = st.seed; o.threads = 2;
    assert_int_equal(train_run(b, st.step, &o, &r, &err), ULM_OK);
    assert_memory_equal(a->w, b->w, a->n_params * sizeof(float));
    assert_memory_equal(a->m, b->m, a->n_params * sizeof(float));
    /* a stop file that exists stops the run at the end of its first step, with a checkpoint
     * that resumes to the same model */
    train_model_free(b);
    b = tiny_model("gemma3", 4);
    char stop[256];
    test_tmp_path(stop, sizeof stop, "stop");
    FILE *sf = fopen(stop, "w");
    fclose(sf);
    o.checkpoint = ckpt;
    o.stop_file = stop;
    assert_int_equal(train_run(b, 0, &o, &r, &err), ULM_OK);
    assert_int_equal(r.steps_done, 1);
    train_model_free(b);
    unlink(stop);
    assert_int_equal(train_load_checkpoint(&b, &st, ckpt, &err), ULM_OK);
    assert_int_equal(st.step, 1);
    o.stop_file = NULL;
    o.checkpoint = NULL;
    assert_int_equal(train_run(b, st.step, &o, &r, &err), ULM_OK);
    assert_memory_equal(a->w, b->w, a->n_params * sizeof(float));
    /* a model file is not a checkpoint */
    char plain[256];
    test_tmp_path(plain, sizeof plain, "plain.ulm");
    assert_int_equal(train_write_ulm(a, &tok, TRAIN_OUT_F32, plain, &err), ULM_OK);
    train_model *c = NULL;
    assert_int_equal(train_load_checkpoint(&c, &st, plain, &err), ULM_ERR_FORMAT);
    unlink(ckpt);
    unlink(plain);
    train_model_free(a);
    train_model_free(b);
    train_set_free(&s);
}

static void overfit_tiny_set(train_precision prec) {
    train_tok tok;
    train_tok_bytes(&tok);
    train_set s = {0};
    make_set(&s, &tok, 8, 5);
    train_model *m = tiny_model("llama", 1);
    train_run_opts o = {0};
    train_opt_default(&o.opt);
    o.opt.lr = 1e-2f; o.opt.min_lr = 1e-3f; o.opt.warmup = 10; o.opt.total_steps = 150; o.opt.weight_decay = 0;
    o.train = &s; o.tok = &tok; o.steps = 150; o.batch = 8; o.seed = 1; o.threads = 2;
    o.precision = prec;
    train_run_result r;
    ulm_error err;
    train_ws *ws = train_ws_new(NULL);
    double before;
    assert_int_equal(train_eval_loss(m, ws, &s, 8, &before, &err), ULM_OK);
    assert_int_equal(train_run(m, 0, &o, &r, &err), ULM_OK);
    double after;
    assert_int_equal(train_eval_loss(m, ws, &s, 8, &after, &err), ULM_OK);
    print_message("tiny set (%s): loss %.3f -> %.4f\n", prec == TRAIN_PREC_BF16 ? "bf16" : "f32", before, after);
    assert_true(before > 4.0);
    assert_true(after < 0.05);
    train_ws_free(ws);
    train_model_free(m);
    train_set_free(&s);
}

static void test_overfits_tiny_set(void **state) { overfit_tiny_set(TRAIN_PREC_F32); }

/* Mixed precision learns the same tiny set, and its sums do not depend on the thread count
 * either; without AMX-BF16 or AVX512-BF16, asking for it is an error naming the problem. */
static void test_bf16_training(void **state) {
    train_tok tok;
    train_tok_bytes(&tok);
    train_set s = {0};
    make_set(&s, &tok, 40, 1);
    train_model *a = tiny_model("llama", 9), *b = tiny_model("llama", 9);
    train_run_opts o = {0};
    train_opt_default(&o.opt);
    o.opt.warmup = 5; o.opt.total_steps = 10;
    o.train = &s; o.tok = &tok; o.steps = 10; o.batch = 8; o.seed = 3; o.threads = 2;
    o.precision = TRAIN_PREC_BF16;
    train_run_result r;
    ulm_error err;
    ulm_status st = train_run(a, 0, &o, &r, &err);
    if (st == ULM_ERR_UNSUPPORTED) {
        assert_non_null(strstr(err.msg, "AVX512-BF16"));
        train_model_free(a); train_model_free(b); train_set_free(&s);
        print_message("skipped: this CPU has neither AMX-BF16 nor AVX512-BF16\n");
        skip();
    }
    assert_int_equal(st, ULM_OK);
    o.threads = 1;
    assert_int_equal(train_run(b, 0, &o, &r, &err), ULM_OK);
    assert_memory_equal(a->w, b->w, a->n_params * sizeof(float));
    /* and the products did change: f32 training gives other weights */
    train_model *c = tiny_model("llama", 9);
    o.precision = TRAIN_PREC_F32;
    assert_int_equal(train_run(c, 0, &o, &r, &err), ULM_OK);
    assert_true(memcmp(a->w, c->w, a->n_params * sizeof(float)) != 0);
    train_model_free(a); train_model_free(b); train_model_free(c);
    train_set_free(&s);
    overfit_tiny_set(TRAIN_PREC_BF16);
}

/* A diverged run (a NaN or infinite weight) is not quantized: an error naming the tensor
 * (float-to-int rounding of NaN is undefined); f32 files keep the values as they are. */
static void test_write_ulm_nonfinite(void **state) {
    train_tok tok;
    train_tok_bytes(&tok);
    train_model *m = tiny_model("llama", 2);
    const train_tensor *t = NULL;
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->t[i].name, "blk.1.ffn_down")) t = &m->t[i];
    assert_non_null(t);
    char path[256];
    test_tmp_path(path, sizeof path, "nan.ulm");
    ulm_error err;
    const float bad[] = {NAN, INFINITY};
    for (int b = 0; b < 2; b++) {
        m->w[t->off + (size_t)t->cols + 3] = bad[b]; /* row 1 */
        for (int type = TRAIN_OUT_Q8; type <= TRAIN_OUT_Q4_PLAIN; type++) {
            assert_int_equal(train_write_ulm(m, &tok, (train_out_type)type, path, &err), ULM_ERR_ARG);
            assert_non_null(strstr(err.msg, "blk.1.ffn_down row 1"));
        }
        assert_int_equal(train_write_ulm(m, &tok, TRAIN_OUT_F32, path, &err), ULM_OK);
    }
    unlink(path);
    train_model_free(m);
}

/* The .ulm: engine keys, tensor names and dtypes; reloads to the same forward pass. */
static void test_write_ulm(void **state) {
    train_tok tok;
    train_tok_bytes(&tok);
    const char *archs[] = {"llama", "gemma3"};
    for (int ai = 0; ai < 2; ai++) {
        train_model *m = tiny_model(archs[ai], 2);
        char path[256];
        test_tmp_path(path, sizeof path, "w.ulm");
        ulm_error err;
        float *il_w[3] = {NULL, NULL, NULL};
        for (int type = 0; type <= TRAIN_OUT_Q4_PLAIN; type++) {
            assert_int_equal(train_write_ulm(m, &tok, (train_out_type)type, path, &err), ULM_OK);
            ulmf *f;
            assert_int_equal(ulmf_open(path, 1, &f, &err), ULM_OK);
            char arch[16];
            uint32_t u;
            assert_int_equal(ulmf_get_cstr(f, "general.architecture", arch, sizeof arch), 0);
            assert_string_equal(arch, archs[ai]);
            assert_int_equal(ulmf_get_u32(f, "model.n_kv_heads", &u), 0);
            assert_int_equal(u, 2);
            assert_int_equal(ulmf_get_u32(f, "model.vocab_size", &u), 0);
            assert_int_equal(u, 259);
            const uint32_t *offs;
            const char *blob;
            uint64_t n;
            assert_int_equal(ulmf_get_strarr(f, "tokenizer.tokens", &offs, &blob, &n), 0);
            assert_int_equal(n, 259);
            assert_memory_equal(blob + offs[257], "<|out|>", 7);
            const ulmf_tensor *t = ulmf_find_tensor(f, "blk.1.ffn_down");
            assert_non_null(t);
            assert_int_equal(t->shape[0], 32);
            assert_int_equal(t->shape[1], 64);
            /* 32 rows: interleaved unless _PLAIN; the embedding's 259 rows cannot be, and stays q8 */
            static const ulm_dtype want[] = {ULM_DT_F32, ULM_DT_Q8_R16, ULM_DT_Q4_R16, ULM_DT_Q8, ULM_DT_Q4};
            assert_int_equal(t->dtype, want[type]);
            t = ulmf_find_tensor(f, "token_embd");
            assert_non_null(t);
            assert_int_equal(t->dtype, type == 0 ? ULM_DT_F32 : ULM_DT_Q8);
            t = ulmf_find_tensor(f, "blk.0.attn_norm");
            assert_non_null(t);
            assert_int_equal(t->dtype, ULM_DT_F32);
            assert_int_equal(t->ndim, 1);
            int gemma = ai == 1;
            assert_true((ulmf_find_tensor(f, "output") == NULL) == gemma); /* gemma3: tied */
            assert_true((ulmf_find_tensor(f, "blk.0.post_ffw_norm") != NULL) == gemma);
            assert_true((ulmf_find_tensor(f, "blk.0.attn_k_norm") != NULL) == gemma);
            ulmf_close(f);
            /* reload: f32 is exact, quantized is close */
            train_model *m2;
            assert_int_equal(train_model_load(&m2, path, &err), ULM_OK);
            assert_int_equal(m2->n_params, m->n_params);
            double maxd = 0;
            for (size_t i = 0; i < m->n_params; i++) maxd = fmax(maxd, fabs(m->w[i] - m2->w[i]));
            if (type == 0) assert_true(maxd == 0);
            else assert_true(maxd < (type == TRAIN_OUT_Q8 || type == TRAIN_OUT_Q8_PLAIN ? 2e-3 : 2e-2));
            /* the interleaved file holds the plain one's values */
            if (type == TRAIN_OUT_Q8 || type == TRAIN_OUT_Q4) {
                free(il_w[type]);
                il_w[type] = malloc(m->n_params * sizeof(float));
                memcpy(il_w[type], m2->w, m->n_params * sizeof(float));
            } else if (type >= TRAIN_OUT_Q8_PLAIN) {
                assert_memory_equal(m2->w, il_w[type - 2], m->n_params * sizeof(float));
            }
            train_model_free(m2);
        }
        unlink(path);
        free(il_w[1]), free(il_w[2]);
        train_model_free(m);
    }
    ulm_error err;
    train_model *m;
    assert_int_equal(train_model_load(&m, "/nonexistent/x.ulm", &err), ULM_ERR_IO);
}

/* A task whose constraint is tagged_spans trains on its answers written as tagged spans; an
 * answer the form cannot write stops the load with the line named. */
static void test_tagged_answers(void **state) {
    (void)state;
    char data[256];
    test_tmp_path(data, sizeof data, "tagged.jsonl");
    FILE *f = fopen(data, "w");
    fprintf(f, "{\"input\": \"Bo met Ann in Oslo.\", \"output\": \"{\\\"people\\\":[\\\"Bo\\\",\\\"Ann\\\"],\\\"places\\\":[\\\"Oslo\\\"]}\"}\n");
    fclose(f);
    json_doc *d;
    ulm_error err;
    const char *spec = "{\"type\":\"tagged_spans\",\"tags\":{\"p\":\"people\",\"l\":\"places\"}}";
    assert_int_equal(json_parse(spec, strlen(spec), &d, &err), ULM_OK);
    tagged_form form;
    assert_int_equal(tagged_form_parse(json_root(d), &form, &err), ULM_OK);
    train_tok tok;
    train_tok_bytes(&tok);
    tok.tagged = &form;
    train_set s = {0};
    assert_int_equal(train_set_load(&s, data, &tok, 64, &err), ULM_OK);
    assert_int_equal(s.n, 1);
    const char *in = "Bo met Ann in Oslo.", *want = "Bo\x1fpAnn\x1fpOslo\x1fl";
    int32_t ids[64];
    int np, n = train_format_example(&tok, in, strlen(in), want, strlen(want), ids, 64, &np);
    assert_int_equal(s.ex[0].len, n);
    assert_int_equal(s.ex[0].n_prompt, np);
    assert_memory_equal(s.ex[0].ids, ids, (size_t)n * sizeof *ids);
    train_set_free(&s);
    f = fopen(data, "a");
    fprintf(f, "{\"input\": \"Bo met Ann.\", \"output\": \"{\\\"people\\\":[\\\"Cy\\\"]}\"}\n");
    fclose(f);
    assert_int_equal(train_set_load(&s, data, &tok, 64, &err), ULM_ERR_FORMAT);
    assert_non_null(strstr(err.msg, ":2: "));
    train_set_free(&s);
    json_free(d);
    unlink(data);
}

/* --average-from: m->avg is the mean of the weights after each step past the start, the
 * training itself is unchanged, and a checkpoint carries the mean so a resumed run ends with
 * the same bits. */
static void test_tail_average(void **state) {
    train_tok tok;
    train_tok_bytes(&tok);
    train_set s = {0};
    make_set(&s, &tok, 40, 5);
    enum { STEPS = 9, FROM = 5 };
    train_run_opts o = {0};
    train_opt_default(&o.opt);
    o.opt.warmup = 3;
    o.opt.total_steps = STEPS;
    o.train = &s; o.tok = &tok; o.steps = STEPS; o.batch = 8; o.seed = 7; o.threads = 2;
    train_run_result r;
    ulm_error err;
    /* reference: one step at a time, summing the weights in double */
    train_model *ref = tiny_model("llama", 6);
    double *sum = calloc(ref->n_params, sizeof *sum);
    assert_non_null(sum);
    for (int k = 0; k < STEPS; k++) {
        o.stop_after = k + 1;
        assert_int_equal(train_run(ref, k, &o, &r, &err), ULM_OK);
        if (k >= FROM)
            for (size_t i = 0; i < ref->n_params; i++) sum[i] += ref->w[i];
    }
    assert_null(ref->avg);
    train_model *a = tiny_model("llama", 6);
    o.stop_after = 0;
    o.average_from = FROM;
    assert_int_equal(train_run(a, 0, &o, &r, &err), ULM_OK);
    assert_memory_equal(a->w, ref->w, a->n_params * sizeof(float));
    assert_int_equal(a->avg_n, STEPS - FROM);
    double worst = 0, moved = 0;
    for (size_t i = 0; i < a->n_params; i++) {
        double want = sum[i] / (STEPS - FROM);
        worst = fmax(worst, fabs(a->avg[i] - want));
        moved = fmax(moved, fabs(a->w[i] - want));
    }
    assert_true(worst < 1e-6);
    assert_true(moved > 1e-4); /* the mean is not the last weights */
    /* stop past the start with a checkpoint, resume: the same mean, bit for bit */
    char ckpt[256];
    test_tmp_path(ckpt, sizeof ckpt, "avg-ckpt.ulm");
    train_model *b = tiny_model("llama", 6);
    o.checkpoint = ckpt;
    o.stop_after = FROM + 2;
    assert_int_equal(train_run(b, 0, &o, &r, &err), ULM_OK);
    train_model_free(b);
    train_state ts;
    assert_int_equal(train_load_checkpoint(&b, &ts, ckpt, &err), ULM_OK);
    assert_int_equal(b->avg_n, 2);
    o.stop_after = 0;
    o.checkpoint = NULL;
    assert_int_equal(train_run(b, ts.step, &o, &r, &err), ULM_OK);
    assert_memory_equal(b->w, a->w, a->n_params * sizeof(float));
    assert_memory_equal(b->avg, a->avg, a->n_params * sizeof(float));
    /* a checkpoint whose mean claims more steps than it has run is refused */
    b->avg_n = ts.step + 1;
    train_state bad = {ts.step, ts.seed};
    assert_int_equal(train_save_checkpoint(b, &tok, &bad, ckpt, &err), ULM_OK);
    train_model *c = NULL;
    assert_int_equal(train_load_checkpoint(&c, &ts, ckpt, &err), ULM_ERR_FORMAT);
    assert_null(c);
    assert_non_null(strstr(err.msg, "train.avg_n"));
    /* the swap exchanges the two and a second one puts them back */
    float w0 = a->w[0], m0 = a->avg[0];
    train_average_swap(a);
    assert_true(a->w[0] == m0 && a->avg[0] == w0);
    train_average_swap(a);
    assert_true(a->w[0] == w0);
    unlink(ckpt);
    free(sum);
    train_model_free(ref);
    train_model_free(a);
    train_model_free(b);
    train_set_free(&s);
}

static void test_cmd_train(void **state) {
    char data[256], out[256], bad[256];
    test_tmp_path(data, sizeof data, "d.jsonl");
    test_tmp_path(out, sizeof out, "o.ulm");
    test_tmp_path(bad, sizeof bad, "bad.jsonl");
    FILE *f = fopen(data, "w");
    for (int i = 0; i < 20; i++) fprintf(f, "{\"input\": \"abc%d\", \"output\": \"%d cba\"}\n", i, i);
    fclose(f);
    f = fopen(bad, "w");
    fprintf(f, "{\"input\": \"abc\", \"output\": \"x\"}\n{\"input\": \"abc\"\n");
    fclose(f);
    char *args[] = {"train", "--data", data, "--out", out, "--dim", "32", "--layers", "1", "--heads", "2",
                    "--kv-heads", "1", "--head-dim", "16", "--ffn", "64", "--ctx", "32", "--steps", "3",
                    "--batch", "4", "--type", "q8", "--log-every", "0"};
    assert_int_equal(cmd_train(sizeof args / sizeof *args, args), 0);
    assert_int_equal(access(out, R_OK), 0);
    args[2] = bad;
    assert_int_equal(cmd_train(sizeof args / sizeof *args, args), 1); /* line 2 is malformed */
    args[2] = "/nonexistent/d.jsonl";
    assert_int_equal(cmd_train(sizeof args / sizeof *args, args), 1);
    args[2] = data;
    args[24] = "q3";
    assert_int_equal(cmd_train(sizeof args / sizeof *args, args), 2);
    args[24] = "q8";
    args[25] = "--precision", args[26] = "fp8"; /* in place of --log-every 0 */
    assert_int_equal(cmd_train(sizeof args / sizeof *args, args), 2);
    args[26] = "f32";
    assert_int_equal(cmd_train(sizeof args / sizeof *args, args), 0);
    /* --average-from writes the mean to --out and the last weights to --out-last; a start at
     * or past --steps, or --out-last alone, is a usage error */
    char last[256];
    test_tmp_path(last, sizeof last, "last.ulm");
    char *avg_args[sizeof args / sizeof *args + 4];
    int na = (int)(sizeof args / sizeof *args);
    memcpy(avg_args, args, sizeof args);
    avg_args[na] = "--average-from", avg_args[na + 1] = "1", avg_args[na + 2] = "--out-last", avg_args[na + 3] = last;
    assert_int_equal(cmd_train(na + 4, avg_args), 0);
    size_t n_out, n_last;
    char *mo = read_file(out, &n_out), *ml = read_file(last, &n_last);
    assert_non_null(mo);
    assert_non_null(ml);
    assert_true(n_out == n_last && memcmp(mo, ml, n_out) != 0);
    free(mo);
    free(ml);
    avg_args[na + 1] = "3"; /* --steps 3 */
    assert_int_equal(cmd_train(na + 4, avg_args), 2);
    avg_args[na] = "--log-every", avg_args[na + 1] = "0"; /* --out-last alone */
    assert_int_equal(cmd_train(na + 4, avg_args), 2);
    /* a number option that is not a number is refused, not read as 0 */
    avg_args[na] = "--average-from", avg_args[na + 1] = "x";
    assert_int_equal(cmd_train(na + 4, avg_args), 2);
    avg_args[na] = "--lr", avg_args[na + 1] = "fast";
    assert_int_equal(cmd_train(na + 2, avg_args), 2);
    avg_args[na] = "--seed", avg_args[na + 1] = "-3";
    assert_int_equal(cmd_train(na + 2, avg_args), 2);
    unlink(last);
    unlink(data);
    unlink(out);
    unlink(bad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonl_parse),
        cmocka_unit_test(test_input_prefix_from_instruction),
        cmocka_unit_test(test_prompt_format_and_batch),
        cmocka_unit_test(test_batches_are_epoch_permutations),
        cmocka_unit_test(test_same_seed_same_weights),
        cmocka_unit_test(test_checkpoint_resume_matches),
        cmocka_unit_test(test_overfits_tiny_set), cmocka_unit_test(test_bf16_training),
        cmocka_unit_test(test_write_ulm), cmocka_unit_test(test_write_ulm_nonfinite),
        cmocka_unit_test(test_tagged_answers),
        cmocka_unit_test(test_tail_average),
        cmocka_unit_test(test_cmd_train),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
