/* The trainer and the engine agree: a model trained a few steps and written as .ulm gives,
 * through ulm_model_load + ulm_ctx_eval, the logits the trainer's forward pass computes. */
#include <math.h>
#include "test_util.h"
#include "ulm.h"
#include "task.h"
#include "tokenizer.h"
#include "ulm_file.h"
#include "train/bpe_train.h"
#include "train/train_data.h"
#include "train/train_loop.h"
#include "train/train_model.h"

static void check_arch(const char *arch, int window, int pattern, int tied) {
    train_tok tok;
    train_tok_bytes(&tok);
    train_config c;
    train_config_default(&c, train_arch_find(arch));
    c.dim = 64; c.n_layers = 3; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 16; c.ffn_dim = 96;
    c.vocab_size = tok.n_vocab; c.max_ctx = 64; c.tied = tied;
    c.sliding_window = window; c.sliding_pattern = pattern; c.rope_theta_local = 1000.0f;
    train_model *m;
    assert_int_equal(train_model_new(&m, &c, 11, NULL), ULM_OK);
    /* a few steps so norms and weights move away from their initial values */
    train_set s = {0};
    int32_t ids[64];
    for (int i = 0; i < 16; i++) {
        char in[32], out[32];
        snprintf(in, sizeof in, "item %d of the set", i * 7);
        snprintf(out, sizeof out, "%d", i * 7 + 1);
        int np, n = train_format_example(&tok, in, strlen(in), out, strlen(out), ids, 64, &np);
        assert_int_equal(train_set_add(&s, ids, n, np), 0);
    }
    train_run_opts o = {0};
    train_opt_default(&o.opt);
    o.opt.warmup = 2; o.opt.total_steps = 8;
    o.train = &s; o.tok = &tok; o.steps = 8; o.batch = 8; o.seed = 1; o.threads = 2;
    train_run_result r;
    ulm_error err;
    assert_int_equal(train_run(m, 0, &o, &r, &err), ULM_OK);

    /* the trainer's logits at every position of one sequence */
    const char *text = "<the engine and the trainer must agree on every logit here>";
    int n = train_format_prompt(&tok, text, strlen(text), ids, 64);
    assert_true(n > window);
    train_batch b = {0};
    assert_int_equal(train_batch_reserve(&b, n, 1), 0);
    b.n = n; b.n_seg = 1; b.seg_start[0] = 0; b.seg_len[0] = n;
    for (int i = 0; i < n; i++) { b.tokens[i] = ids[i]; b.pos[i] = i; b.targets[i] = 0; }
    float *lt = malloc(sizeof(float) * n * c.vocab_size), *le = malloc(sizeof(float) * n * c.vocab_size);
    train_ws *ws = train_ws_new(NULL);
    double loss;
    int nt;
    assert_int_equal(train_forward(m, ws, &b, 0, &loss, &nt, lt, &err), ULM_OK);
    assert_int_equal(nt, n);

    char path[256];
    test_tmp_path(path, sizeof path, "engine.ulm");
    assert_int_equal(train_write_ulm(m, &tok, TRAIN_OUT_F32, path, &err), ULM_OK);
    ulm_model *em;
    if (ulm_model_load(path, &em, &err) != ULM_OK) fail_msg("engine load: %s", err.msg);
    ulm_ctx *ctx;
    ulm_ctx_params cp = {.n_ctx = 64, .n_threads = 1, .kv_f32 = 1};
    assert_int_equal(ulm_ctx_new(em, &cp, &ctx, &err), ULM_OK);
    if (ulm_ctx_eval(ctx, ids, n, le, 1, &err) != ULM_OK) fail_msg("engine eval: %s", err.msg);
    double maxd = 0, maxl = 0;
    for (int i = 0; i < n * c.vocab_size; i++) {
        maxd = fmax(maxd, fabs(lt[i] - le[i]));
        maxl = fmax(maxl, fabs(lt[i]));
    }
    print_message("%s: max |logit| %.3f, max |trainer - engine| %.2e\n", arch, maxl, maxd);
    assert_true(maxl > 0.1);
    assert_true(maxd <= 1e-4 * fmax(1.0, maxl));
    ulm_ctx_free(ctx);
    ulm_model_free(em);
    /* q8 and q4 files load and stay close */
    for (int type = TRAIN_OUT_Q8; type <= TRAIN_OUT_Q4_PLAIN; type++) {
        assert_int_equal(train_write_ulm(m, &tok, (train_out_type)type, path, &err), ULM_OK);
        if (ulm_model_load(path, &em, &err) != ULM_OK) fail_msg("engine load q: %s", err.msg);
        assert_int_equal(ulm_ctx_new(em, &cp, &ctx, &err), ULM_OK);
        assert_int_equal(ulm_ctx_eval(ctx, ids, n, le, 1, &err), ULM_OK);
        double qd = 0;
        for (int i = 0; i < n * c.vocab_size; i++) qd = fmax(qd, fabs(lt[i] - le[i]));
        print_message("%s %s: max |f32 - quantized| %.3f\n", arch, (const char *[]){"", "q8", "q4", "q8 plain", "q4 plain"}[type], qd);
        assert_true(qd < 0.25 * maxl);
        ulm_ctx_free(ctx);
        ulm_model_free(em);
    }
    unlink(path);
    free(lt);
    free(le);
    train_ws_free(ws);
    train_batch_free(&b);
    train_set_free(&s);
    train_model_free(m);
}

static void test_llama_matches_engine(void **state) { check_arch("llama", 0, 0, 0); }
static void test_llama_tied_matches_engine(void **state) { check_arch("llama", 0, 0, 1); }
static void test_gemma3_matches_engine(void **state) { check_arch("gemma3", 8, 3, 1); }
static void test_qwen3_matches_engine(void **state) { check_arch("qwen3", 0, 0, 0); }

/* The byte vocabulary written into a .ulm reads back through the engine's tokenizer with the
 * same ids, so swapping the trainer's tokenizer for the engine's changes nothing. */
static void test_engine_tokenizer_swap(void **state) {
    train_tok bytes, et;
    train_tok_bytes(&bytes);
    train_model *m;
    train_config c;
    train_config_default(&c, train_arch_find("llama"));
    c.dim = 32; c.n_layers = 1; c.n_heads = 2; c.n_kv_heads = 1; c.head_dim = 16; c.ffn_dim = 64; c.max_ctx = 32;
    assert_int_equal(train_model_new(&m, &c, 1, NULL), ULM_OK);
    char path[256];
    test_tmp_path(path, sizeof path, "tok.ulm");
    ulm_error err;
    assert_int_equal(train_write_ulm(m, &bytes, TRAIN_OUT_F32, path, &err), ULM_OK);
    if (train_tok_from_ulm(&et, path, &err) != ULM_OK) fail_msg("%s", err.msg);
    assert_int_equal(et.n_vocab, 259);
    assert_int_equal(et.bos, 256);
    assert_int_equal(et.sep, 257);
    assert_int_equal(et.eos, 258);
    const char *text = "Hello, w\xc3\xb6rld!  new\nline \xe2\x80\x94 <|out|> 123";
    int32_t a[128], b[128];
    int na = train_format_prompt(&bytes, text, strlen(text), a, 128);
    int nb = train_format_prompt(&et, text, strlen(text), b, 128);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, sizeof(int32_t) * na);
    /* a model written with the engine-backed tokenizer carries the same vocabulary */
    char path2[256];
    test_tmp_path(path2, sizeof path2, "tok2.ulm");
    assert_int_equal(train_write_ulm(m, &et, TRAIN_OUT_F32, path2, &err), ULM_OK);
    ulmf *f;
    assert_int_equal(ulmf_open(path2, 1, &f, &err), ULM_OK);
    const uint32_t *offs;
    const char *blob;
    uint64_t n;
    assert_int_equal(ulmf_get_strarr(f, "tokenizer.tokens", &offs, &blob, &n), 0);
    assert_int_equal(n, 259);
    ulmf_close(f);
    train_tok_free(&et);
    /* a file without a tokenizer is refused with a message */
    assert_int_not_equal(train_tok_from_ulm(&et, "/nonexistent.ulm", &err), ULM_OK);
    unlink(path);
    unlink(path2);
    train_model_free(m);
}

/* The prompt the trainer trains on and the prompt the task runtime feeds (task_encode_prompt
 * with the shipped task.json) are the same ids, for every golden input of both tasks, with a
 * task BPE (<|bos|> <|in|> input <|out|>); the trained answer ends with the EOS the runtime
 * stops at. */
static void test_task_prompt_matches_trainer(void **state) {
    static const char *const tasks[] = {"haiku", "entities"};
    char *golden[2];
    size_t glen[2];
    const char *texts[1600];
    char *own[1600];
    int nt = 0, first[3] = {0};
    for (int k = 0; k < 2; k++) {
        char p[64];
        first[k] = nt;
        snprintf(p, sizeof p, "tasks/%s/golden.jsonl", tasks[k]);
        golden[k] = test_read_file(p, &glen[k]);
        assert_non_null(golden[k]);
        for (char *line = golden[k], *e; *line && nt < 1600; line = e + 1) {
            e = strchr(line, '\n');
            if (!e) break;
            char *in, *out, msg[64];
            assert_int_equal(train_parse_jsonl_line(line, (size_t)(e - line), &in, &out, msg, sizeof msg), 0);
            own[nt] = in;
            texts[nt++] = in;
            free(out);
        }
    }
    first[2] = nt;
    assert_int_equal(nt, 800);
    ulmw *w = ulmw_new();
    ulm_error err;
    assert_int_equal(bpe_train(texts, (size_t)nt, 700, w, &err), ULM_OK);
    char path[256];
    test_tmp_path(path, sizeof path, "taskbpe.ulm");
    assert_int_equal(ulmw_write(w, path, &err), ULM_OK);
    ulmw_free(w);
    train_tok tt;
    if (train_tok_from_ulm(&tt, path, &err)) fail_msg("%s", err.msg);
    ulmf *f;
    tokenizer *tk;
    assert_int_equal(ulmf_open(path, 0, &f, &err), ULM_OK);
    assert_int_equal(tok_load(f, &tk, &err), ULM_OK);
    assert_int_equal(tt.prefix, tok_bos(tk));
    assert_int_equal(tt.eos, tok_eos(tk));
    assert_true(tok_is_eog(tk, tt.eos));
    size_t l;
    const char *piece = tok_piece(tk, tt.bos, &l);
    assert_true(l == strlen(BPE_IN) && !memcmp(piece, BPE_IN, l));
    piece = tok_piece(tk, tt.sep, &l);
    assert_true(l == strlen(BPE_OUT) && !memcmp(piece, BPE_OUT, l));
    for (int k = 0; k < 2; k++) {
        char p[64];
        snprintf(p, sizeof p, "tasks/%s/task.json", tasks[k]);
        size_t sl = 0;
        char *spec = test_read_file(p, &sl);
        assert_non_null(spec);
        task_spec ts;
        if (task_spec_parse(spec, sl, p, &ts, &err)) fail_msg("%s", err.msg);
        char prefix[64], msg[160]; /* what `ulm train --task` reads from the spec */
        if (train_input_prefix(ts.instruction, prefix, sizeof prefix, msg, sizeof msg)) fail_msg("%s: %s", p, msg);
        tt.input_prefix = prefix;
        for (int i = first[k]; i < first[k + 1]; i++) {
            int32_t a[512], b[512];
            int na = train_format_prompt(&tt, texts[i], strlen(texts[i]), a, 512), nb = -1;
            assert_int_equal(task_encode_prompt(&ts, tk, texts[i], strlen(texts[i]), b, 512, &nb, &err), ULM_OK);
            assert_true(na > 3);
            assert_int_equal(na, nb);
            assert_memory_equal(a, b, sizeof(int32_t) * (size_t)na);
            assert_int_equal(a[0], tok_bos(tk));
            assert_int_equal(a[1], tt.bos);
            assert_int_equal(a[na - 1], tt.sep);
            int np, n = train_format_example(&tt, texts[i], strlen(texts[i]), "x", 1, a, 512, &np);
            assert_int_equal(np, na);
            assert_int_equal(a[n - 1], tok_eos(tk));
        }
        task_spec_free(&ts);
        free(spec);
    }
    tok_free(tk);
    ulmf_close(f);
    train_tok_free(&tt);
    for (int k = 0; k < nt; k++) free(own[k]);
    free(golden[0]);
    free(golden[1]);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_matches_engine),
        cmocka_unit_test(test_llama_tied_matches_engine),
        cmocka_unit_test(test_gemma3_matches_engine),
        cmocka_unit_test(test_qwen3_matches_engine),
        cmocka_unit_test(test_engine_tokenizer_swap),
        cmocka_unit_test(test_task_prompt_matches_trainer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
