/* ulm run -m MODEL.ulm -p PROMPT [-n N] [--temp T] [--seed S] [--top-k K] [--top-p P] [--min-p P]
 *        [--repeat-penalty R] [-t THREADS] [-c CTX] [--kv-type f16|f32] [--stats]
 * Streams generated text (the prompt echoed first, as llama.cpp does). Greedy at --temp 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "args.h"
#include "cli.h"
#include "ulm.h"
#include "ulm_file.h"

static const char *usage =
    "usage: ulm run TASK.ulm [INPUT] [--json] [--stream] [-t THREADS]   (a task file)\n"
    "       ulm run -m MODEL.ulm -p PROMPT [-n N] [--temp T] [--seed S] [--top-k K] [--top-p P]\n"
    "               [--min-p P] [--repeat-penalty R] [-t THREADS] [-c CTX] [--kv-type f16|f32] [--stats]\n";

static int print_text(const char *s, size_t n, void *u) {
    (void)u;
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    return 0;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* 1 if the .ulm at path carries a task spec, 0 if not, -1 (printed) if it is not a valid .ulm. */
static int is_task_file(const char *path) {
    ulmf *f;
    ulm_error err;
    if (ulmf_open(path, 0, &f, &err) != ULM_OK) {
        fprintf(stderr, "ulm run: %s\n", err.msg);
        return -1;
    }
    int yes = ulmf_find(f, "task.spec") != NULL;
    ulmf_close(f);
    return yes;
}

int cmd_run(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *v;
    /* `ulm run TASK.ulm INPUT`: a task file runs through the task runtime */
    if (argc >= 2 && argv[1][0] != '-') {
        int task = is_task_file(argv[1]);
        if (task < 0) return 1;
        if (task) return task_cli_run(argc - 1, argv + 1);
        model = argv[1]; /* `ulm run MODEL.ulm -p ...` */
        argv++;
        argc--;
    }
    int n_predict = 128, stats = 0;
    ulm_sampling s;
    ulm_sampling_default(&s);
    s.temperature = 0.8f; /* llama.cpp's default; --temp 0 is greedy */
    s.top_k = 40;
    s.top_p = 0.95f;
    s.min_p = 0.05f;
    ulm_ctx_params cp = {.n_ctx = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); return 0; }
        if (!strcmp(a, "--stats")) { stats = 1; continue; }
        if (a[0] != '-') { fprintf(stderr, "ulm run: unexpected argument '%s'\n%s", a, usage); return 2; }
        if (!(v = arg_value(argc, argv, &i))) return 2;
        int bad = 0;
        uint64_t seed;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = v;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) bad = arg_int(a, v, 0, 1 << 24, &n_predict);
        else if (!strcmp(a, "--temp")) bad = arg_float(a, v, 0, 100, &s.temperature);
        else if (!strcmp(a, "--top-k")) bad = arg_int(a, v, 0, 1 << 24, &s.top_k);
        else if (!strcmp(a, "--top-p")) bad = arg_float(a, v, 1e-6f, 1, &s.top_p);
        else if (!strcmp(a, "--min-p")) bad = arg_float(a, v, 0, 0.999f, &s.min_p);
        else if (!strcmp(a, "--repeat-penalty")) bad = arg_float(a, v, 1e-3f, 100, &s.repeat_penalty);
        else if (!strcmp(a, "--seed") || !strcmp(a, "-s")) { bad = arg_u64(a, v, &seed); s.seed = seed; }
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = arg_int(a, v, 1, 256, &cp.n_threads);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) bad = arg_int(a, v, 1, 1 << 24, &cp.n_ctx);
        else if (!strcmp(a, "--kv-type")) {
            if (strcmp(v, "f16") && strcmp(v, "f32")) { fprintf(stderr, "ulm run: --kv-type is f16 or f32\n"); return 2; }
            cp.kv_f32 = !strcmp(v, "f32");
        }
        else { fprintf(stderr, "ulm run: unknown option %s\n%s", a, usage); return 2; }
        if (bad) return 2;
    }
    if (!model) { fputs(usage, stderr); return 2; }
    if (!prompt) prompt = "";
    ulm_error err = {0};
    ulm_model *m = NULL;
    ulm_ctx *c = NULL;
    double t0 = now_ms();
    if (ulm_model_load(model, &m, &err) || ulm_ctx_new(m, &cp, &c, &err)) {
        fprintf(stderr, "ulm run: %s\n", err.msg);
        ulm_model_free(m);
        return 1;
    }
    double load_ms = now_ms() - t0;
    ulm_gen_stats gs;
    ulm_status st = ulm_generate(c, prompt, &s, n_predict, print_text, NULL, &gs, &err);
    printf("\n");
    if (st) fprintf(stderr, "ulm run: %s\n", err.msg);
    if (stats && !st) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        ulm_model_info mi;
        ulm_model_get_info(m, &mi);
        double kv = ulm_kv_cache_bytes(m, ulm_ctx_size(c), cp.kv_f32, cp.n_batch) / 1048576.0;
        double rss = ru.ru_maxrss / 1024.0, budget = mi.file_size / 1048576.0 + kv + 32;
        fprintf(stderr, "load: %.1f ms | prefill: %d tok, %.1f tok/s | decode: %d tok, %.1f tok/s | ttft %.1f ms | kernels %s\n",
                load_ms, gs.n_prompt, gs.prefill_ms > 0 ? gs.n_prompt * 1e3 / gs.prefill_ms : 0, gs.n_gen,
                gs.decode_ms > 0 && gs.n_gen > 1 ? (gs.n_gen - 1) * 1e3 / gs.decode_ms : 0, gs.ttft_ms, ulm_isa_name());
        fprintf(stderr, "memory: peak RSS %.1f MiB | file %.1f MiB + KV cache %.1f MiB (%s, %d tokens) + 32 MiB = %.1f MiB: %s\n",
                rss, mi.file_size / 1048576.0, kv, cp.kv_f32 ? "f32" : "f16", ulm_ctx_size(c), budget,
                rss <= budget ? "within" : "OVER");
    }
    ulm_ctx_free(c);
    ulm_model_free(m);
    return st ? 1 : 0;
}
