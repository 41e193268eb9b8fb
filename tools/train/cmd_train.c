/* ulm train: train a llama / gemma3 / qwen3 model from scratch or from a .ulm on JSONL
 * {"input", "output"} pairs (loss on the output), and write an engine-loadable .ulm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "args.h"
#include "bpe_train.h"
#include "task.h"
#include "train_data.h"
#include "train_loop.h"

/* What the trainer takes from a task spec (--task): the input prefix of its instruction, and
 * the tagged-spans form when its constraint is one (answers are then trained in that form). */
typedef struct task_view {
    char prefix[64];
    int tagged;
    tagged_form form;
    char keys[TAGGED_MAX_TAGS][64]; /* the form's keys, kept after the spec is freed */
} task_view;

/* Reads a spec into v. Prints a one-line error and returns -1 when the spec or its
 * instruction does not fit. */
static int task_view_load(const char *cmd, const char *path, task_view *v) {
    memset(v, 0, sizeof *v);
    size_t len;
    char *text = read_file(path, &len);
    if (!text) return -1; /* read_file said why */
    task_spec ts;
    ulm_error err;
    char msg[160];
    int rc = 0;
    if (task_spec_parse(text, len, path, &ts, &err)) {
        fprintf(stderr, "%s: %s\n", cmd, err.msg);
        rc = -1;
    } else {
        if (train_input_prefix(ts.instruction, v->prefix, sizeof v->prefix, msg, sizeof msg)) {
            fprintf(stderr, "%s: %s: %s\n", cmd, path, msg);
            rc = -1;
        } else if (ts.has_tagged) {
            v->tagged = 1;
            v->form = ts.tagged;
            for (int k = 0; k < v->form.n_tags && !rc; k++) {
                if (v->form.key_len[k] >= sizeof v->keys[k]) {
                    fprintf(stderr, "%s: %s: tagged_spans key over %zu bytes\n", cmd, path, sizeof v->keys[k] - 1);
                    rc = -1;
                    break;
                }
                memcpy(v->keys[k], v->form.key[k], v->form.key_len[k]);
                v->form.key[k] = v->keys[k];
            }
        }
        task_spec_free(&ts);
    }
    free(text);
    return rc;
}

static void usage(void) {
    fprintf(stderr,
            "usage: ulm train --data TRAIN.jsonl --out MODEL.ulm [options]\n"
            "       ulm train bpe --vocab N --out TOK.ulm [--task SPEC.json] DATA.jsonl...\n"
            "                                            (the task BPE tokenizer)\n"
            "  data     --val VAL.jsonl  --val-examples N (256)  --eval-every N (100)\n"
            "  model    --arch llama|gemma3|qwen3 (llama)  --dim N  --layers N  --heads N  --kv-heads N\n"
            "           --head-dim N  --ffn N  --ctx N (256)  --tied 0|1  (vocab comes from the tokenizer)\n"
            "           --init FILE.ulm     continue from a model (any dtype, read as f32)\n"
            "  prompt   --task SPEC.json  format prompts as the task's instruction does\n"
            "           (\"<|in|>PREFIX{input}<|out|>\"; default \"<|in|>{input}<|out|>\")\n"
            "  tokens   --tokenizer FILE.ulm  the vocabulary stored in a .ulm (default: --init's or\n"
            "           --resume's when they carry one, else bytes: 256 byte ids + 3 specials)\n"
            "  optim    --steps N (1000)  --batch N examples (32)  --lr X (3e-3)  --min-lr X (lr/10)\n"
            "           --warmup N (100)  --wd X (0.1)  --clip X (1.0)  --seed N (1)  --threads N (2)\n"
            "           --prompt-loss X (0): also train on the prompt's tokens, each weighted X\n"
            "                      against an output token (a language-model loss on the input)\n"
            "           --precision auto|f32|bf16 (auto): bf16 matmul operands, f32 sums and weights,\n"
            "           on AMX or AVX512-BF16; auto = bf16 where the CPU has either, else f32\n"
            "  output   --type f32|q8|q4 (f32)  --checkpoint FILE  --checkpoint-every N  --resume FILE\n"
            "           --plain  q8/q4 matrices in the plain block layout (default: 16 rows\n"
            "                      interleaved where the rows allow, the layout decode reads fastest)\n"
            "           --stop-after N  stop at step N of the --steps schedule (checkpoint, write)\n"
            "           --stop-file F   stop so at the first step that ends with file F present\n"
            "           --log-every N (10)\n"
            "           --average-from N  write the mean of the weights after each step past step N\n"
            "                      (tail averaging; 0 = off, the last step's weights)\n"
            "           --out-last FILE   with --average-from: also write the last step's weights\n"
            "Prompt format: [BOS] <|in|> input <|out|> output <|end|> (<|end|> else the EOS); the loss\n"
            "is on output and the end token (and, with --prompt-loss, on the prompt's tokens too).\n");
}

/* ulm train bpe --vocab N --out TOK.ulm DATA.jsonl...: learns the task BPE (bpe_train.h) on the
 * inputs and outputs of the JSONL files (each a separate text) and writes a tensor-free .ulm
 * that holds only the tokenizer.* keys, for `ulm train --tokenizer TOK.ulm`. */
static int train_bpe_cmd(int argc, char **argv) {
    const char *out = NULL;
    int vocab = 2048;
    task_view tv = {0};
    char **texts = NULL;
    size_t n = 0, cap = 0;
    int rc = 1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc) { out = argv[++i]; continue; }
        if (!strcmp(argv[i], "--vocab") && i + 1 < argc) { vocab = atoi(argv[++i]); continue; }
        if (!strcmp(argv[i], "--task") && i + 1 < argc) {
            if (task_view_load("ulm train bpe", argv[++i], &tv)) goto done;
            continue;
        }
        if (argv[i][0] == '-') { fprintf(stderr, "ulm train bpe: unknown option %s\n", argv[i]); goto done; }
        FILE *f = fopen(argv[i], "rb");
        if (!f) { fprintf(stderr, "ulm train bpe: cannot open %s\n", argv[i]); goto done; }
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        int lineno = 0;
        while ((len = getline(&line, &lcap, f)) >= 0) {
            lineno++;
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
            if (!len) continue;
            char *in, *o, msg[128];
            if (train_parse_jsonl_line(line, (size_t)len, &in, &o, msg, sizeof msg)) {
                fprintf(stderr, "ulm train bpe: %s:%d: %s\n", argv[i], lineno, msg);
                free(line);
                fclose(f);
                goto done;
            }
            if (n + 2 > cap) {
                cap = cap ? cap * 2 : 4096;
                char **nt = realloc(texts, cap * sizeof *nt);
                if (!nt) { free(in); free(o); free(line); fclose(f); goto done; }
                texts = nt;
            }
            if (tv.tagged) { /* the tokenizer learns the text the model will write */
                char *t = train_tagged_output(&tv.form, in, o, msg, sizeof msg);
                free(o);
                if (!t) {
                    fprintf(stderr, "ulm train bpe: %s:%d: %s\n", argv[i], lineno, msg);
                    free(in); free(line); fclose(f); goto done;
                }
                o = t;
            }
            if (tv.prefix[0]) {
                char *pin = train_prefixed_input(tv.prefix, in, strlen(in));
                if (!pin) { free(in); free(o); free(line); fclose(f); goto done; }
                free(in);
                in = pin;
            }
            texts[n++] = in;
            texts[n++] = o;
        }
        free(line);
        fclose(f);
    }
    if (!out || !n) { fprintf(stderr, "usage: ulm train bpe --vocab N --out TOK.ulm DATA.jsonl...\n"); goto done; }
    ulm_error err;
    ulmw *w = ulmw_new();
    if (!w) goto done;
    if (bpe_train((const char *const *)texts, n, vocab, w, &err) || ulmw_write(w, out, &err))
        fprintf(stderr, "ulm train bpe: %s\n", err.msg);
    else {
        fprintf(stderr, "wrote %s (byte-level BPE, %d tokens, %zu texts)\n", out, vocab, n);
        rc = 0;
    }
    ulmw_free(w);
done:
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    return rc;
}

int cmd_train(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "bpe")) return train_bpe_cmd(argc, argv);
    const char *out_last = NULL;
    const char *data = NULL, *val = NULL, *out = NULL, *init = NULL, *resume = NULL, *ckpt = NULL, *tokf = NULL;
    const char *arch = "llama", *type = "f32", *task = NULL;
    int plain = 0;
    task_view tv = {0};
    train_config cfg;
    train_config_default(&cfg, train_arch_find("llama"));
    int tied = -1;
    train_run_opts o = {0};
    train_opt_default(&o.opt);
    float min_lr = -1;
    o.steps = 1000;
    o.batch = 32;
    o.seed = 1;
    o.threads = 2;
    o.precision = TRAIN_PREC_AUTO;
    o.log_every = 10;
    o.eval_every = 100;
    o.val_examples = 256;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        if (!strcmp(a, "--plain")) { plain = 1; continue; }
        if (!v) { fprintf(stderr, "ulm train: %s needs a value\n", a); return 2; }
        i++;
        int bad = 0;
/* a value that is not a number is an error, not a silent 0 */
#define INT(flag, dst) else if (!strcmp(a, flag)) bad = arg_int(flag, v, 0, 1 << 30, &dst)
#define FLT(flag, dst) else if (!strcmp(a, flag)) bad = arg_float(flag, v, 0, 1e9f, &dst)
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--val")) val = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--init")) init = v;
        else if (!strcmp(a, "--resume")) resume = v;
        else if (!strcmp(a, "--checkpoint")) ckpt = v;
        else if (!strcmp(a, "--tokenizer")) tokf = v;
        else if (!strcmp(a, "--task")) task = v;
        else if (!strcmp(a, "--stop-file")) o.stop_file = v;
        else if (!strcmp(a, "--out-last")) out_last = v;
        else if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--type")) type = v;
        else if (!strcmp(a, "--seed")) bad = arg_u64(a, v, &o.seed);
        else if (!strcmp(a, "--precision")) {
            if (!strcmp(v, "f32")) o.precision = TRAIN_PREC_F32;
            else if (!strcmp(v, "bf16")) o.precision = TRAIN_PREC_BF16;
            else if (!strcmp(v, "auto")) o.precision = TRAIN_PREC_AUTO;
            else { fprintf(stderr, "ulm train: --precision must be auto, f32 or bf16\n"); return 2; }
        }
        INT("--dim", cfg.dim); INT("--layers", cfg.n_layers); INT("--heads", cfg.n_heads);
        INT("--kv-heads", cfg.n_kv_heads); INT("--head-dim", cfg.head_dim); INT("--ffn", cfg.ffn_dim);
        INT("--ctx", cfg.max_ctx); INT("--tied", tied); INT("--steps", o.steps); INT("--batch", o.batch);
        INT("--warmup", o.opt.warmup); INT("--threads", o.threads); INT("--log-every", o.log_every);
        INT("--eval-every", o.eval_every); INT("--val-examples", o.val_examples);
        INT("--checkpoint-every", o.checkpoint_every); INT("--stop-after", o.stop_after);
        INT("--average-from", o.average_from);
        FLT("--prompt-loss", o.prompt_loss);
        FLT("--lr", o.opt.lr); FLT("--min-lr", min_lr); FLT("--wd", o.opt.weight_decay); FLT("--clip", o.opt.clip);
        else { fprintf(stderr, "ulm train: unknown option %s (ulm train --help)\n", a); return 2; }
        if (bad) return 2; /* arg_* said why */
#undef INT
#undef FLT
    }
    if (!data || !out) { usage(); return 2; }
    if (o.average_from < 0 || (o.average_from > 0 && o.average_from >= o.steps)) {
        fprintf(stderr, "ulm train: --average-from must be 0 or a step before --steps (%d)\n", o.steps);
        return 2;
    }
    if (out_last && !o.average_from) { fprintf(stderr, "ulm train: --out-last needs --average-from\n"); return 2; }
    if (task && task_view_load("ulm train", task, &tv)) return 2;
    train_out_type ot = !strcmp(type, "f32") ? TRAIN_OUT_F32 : !strcmp(type, "q8") ? TRAIN_OUT_Q8
                        : !strcmp(type, "q4") ? TRAIN_OUT_Q4 : (train_out_type)-1;
    if ((int)ot < 0) { fprintf(stderr, "ulm train: --type must be f32, q8 or q4\n"); return 2; }
    if (plain && ot != TRAIN_OUT_F32) ot = ot == TRAIN_OUT_Q8 ? TRAIN_OUT_Q8_PLAIN : TRAIN_OUT_Q4_PLAIN;
    o.opt.min_lr = min_lr >= 0 ? min_lr : o.opt.lr / 10;
    o.opt.total_steps = o.steps;
    o.checkpoint = ckpt;
    o.log = stderr;

    train_tok tok;
    ulm_error err;
    /* the tokenizer: named, else the one inside the model we start from, else bytes */
    const char *tsrc = tokf ? tokf : resume ? resume : init;
    ulmf *probe = NULL;
    int has_tok = tsrc && ulmf_open(tsrc, 0, &probe, &err) == ULM_OK && ulmf_find(probe, "tokenizer.tokens");
    if (probe) ulmf_close(probe);
    if (tokf && !has_tok) { fprintf(stderr, "ulm train: %s holds no tokenizer\n", tokf); return 1; }
    if (has_tok) {
        if (train_tok_from_ulm(&tok, tsrc, &err)) { fprintf(stderr, "ulm train: %s\n", err.msg); return 1; }
    } else {
        train_tok_bytes(&tok);
    }
    tok.input_prefix = tv.prefix;
    tok.tagged = tv.tagged ? &tv.form : NULL;
    train_model *m = NULL;
    int start = 0;
    ulm_status st;
    if (resume) {
        train_state ts;
        st = train_load_checkpoint(&m, &ts, resume, &err);
        start = ts.step;
        o.seed = ts.seed;
        if (!st) fprintf(stderr, "resuming %s at step %d\n", resume, start);
        /* the mean must cover every step past average_from, so the option cannot change on resume */
        int want = o.average_from > 0 && start > o.average_from ? start - o.average_from : 0;
        if (!st && m->avg_n != want) {
            fprintf(stderr, "ulm train: %s holds the mean of %d steps, --average-from %d needs %d\n", resume,
                    m->avg_n, o.average_from, want);
            train_model_free(m);
            train_tok_free(&tok);
            return 2;
        }
    } else if (init) {
        st = train_model_load(&m, init, &err);
    } else {
        cfg.arch = train_arch_find(arch);
        if (!cfg.arch) { fprintf(stderr, "ulm train: unknown --arch %s\n", arch); return 2; }
        cfg.tied = tied >= 0 ? tied : cfg.arch->tied_default;
        cfg.vocab_size = tok.n_vocab;
        st = train_model_new(&m, &cfg, o.seed, &err);
    }
    if (st) { fprintf(stderr, "ulm train: %s\n", err.msg); train_tok_free(&tok); return 1; }
    if (m->cfg.vocab_size != tok.n_vocab) {
        fprintf(stderr, "ulm train: the model's vocabulary (%d) is not the tokenizer's (%d)\n", m->cfg.vocab_size,
                tok.n_vocab);
        train_model_free(m);
        train_tok_free(&tok);
        return 1;
    }
    train_set tr = {0}, va = {0};
    st = train_set_load(&tr, data, &tok, m->cfg.max_ctx, &err);
    if (!st && val) st = train_set_load(&va, val, &tok, m->cfg.max_ctx, &err);
    if (!st) {
        fprintf(stderr, "model: %s dim %d layers %d heads %d/%d head_dim %d ffn %d vocab %d ctx %d: %.2fM parameters\n",
                m->cfg.arch->name, m->cfg.dim, m->cfg.n_layers, m->cfg.n_heads, m->cfg.n_kv_heads, m->cfg.head_dim,
                m->cfg.ffn_dim, m->cfg.vocab_size, m->cfg.max_ctx, m->n_params / 1e6);
        fprintf(stderr, "data: %d examples, %zu tokens (%d longer than the context skipped)%s\n", tr.n, tr.n_tokens,
                tr.n_skipped, val ? "" : "; no --val");
        o.train = &tr;
        o.val = val ? &va : NULL;
        o.tok = &tok;
        train_run_result r;
        st = train_run(m, start, &o, &r, &err);
        if (!st) {
            fprintf(stderr, "trained %d steps, %ld tokens, %.0f tokens/s\n", r.steps_done - start, r.tokens,
                    r.tokens_per_s);
            if (out_last) {
                st = train_write_ulm(m, &tok, ot, out_last, &err);
                if (!st) fprintf(stderr, "wrote %s (%s, the last step's weights)\n", out_last, type);
            }
            train_average_swap(m); /* the mean, where there is one */
            if (!st) st = train_write_ulm(m, &tok, ot, out, &err);
            if (!st)
                fprintf(stderr, "wrote %s (%s%s)\n", out, type, m->avg_n ? ", the averaged weights" : "");
        }
    }
    if (st) fprintf(stderr, "ulm train: %s\n", err.msg);
    train_set_free(&tr);
    train_set_free(&va);
    train_model_free(m);
    train_tok_free(&tok);
    return st ? 1 : 0;
}
