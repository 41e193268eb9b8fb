/* ulm bench MODEL.ulm [-t N] [-p 128,512] [-n 128] [--reps R] [--ttft-prompt N] [-b BATCH]
 *                     [-c CTX] [--kv-type f16|f32] [--duration S] [--interval S] [--json] [-o FILE]
 * Speed of this board on a model, the way llama-bench measures it, so the figures compare:
 *   ppN   prefill: N prompt tokens (pseudo-random ids, BOS first) in one ulm_ctx_eval from an
 *         empty context, logits of the last position; tok/s = N / time
 *   tgN   decode: N single-token evals from an empty context (random ids, as llama-bench's tg;
 *         no sampling), logits each step; tok/s = N / time
 *   ttft  time to first token inside the process: model load (mmap) + context + prefill of a
 *         --ttft-prompt token prompt + greedy pick of the first token, all from scratch per rep
 *   peak RSS (getrusage) after prefill and decode, before the TTFT runs map the file again
 * Each figure is the median over --reps timed runs (after one untimed warm-up), with min and max.
 * --duration S then decodes for S seconds without pause and reports tok/s per --interval (the
 * context is reset every -n tokens so each interval does the same work): a board that throttles
 * under sustained load shows a floor well below the first intervals. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include "args.h"
#include "cli.h"
#include "json.h"
#include "ulm.h"
#include "ulm_file.h"

static const char *usage =
    "usage: ulm bench MODEL.ulm [-t THREADS] [-p 128,512] [-n 128] [--reps R] [--ttft-prompt 32]\n"
    "                 [-b BATCH] [-c CTX] [--kv-type f16|f32] [--duration SECONDS] [--interval SECONDS]\n"
    "                 [--json] [-o FILE]\n"
    "  prefill tok/s per prompt length (-p), decode tok/s (-n tokens), time to first token\n"
    "  (load + prefill of --ttft-prompt tokens), peak RSS; medians of --reps runs with min-max.\n"
    "  --duration S: sustained decode for S seconds, tok/s per --interval (default S/10, >= 0.5 s)\n"
    "  and its floor, to show thermal throttling.\n";

#define MAX_PROMPTS 16
#define MAX_REPS 1000
#define MAX_INTERVALS 100000

typedef struct {
    double med, min, max;
} stat3;

typedef struct {
    const char *model, *out_path;
    int n_prompts, prompts[MAX_PROMPTS];
    int n_gen, reps, ttft_prompt, json;
    ulm_ctx_params cp;
    float duration, interval;
} bench_opts;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static stat3 summarize(double *v, int n) {
    stat3 s = {0, 0, 0};
    if (n <= 0) return s;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    s.min = v[0];
    s.max = v[n - 1];
    s.med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return s;
}

/* "128,512" -> prompts; each in [1, 1<<20]. */
static int parse_prompt_list(const char *s, bench_opts *o) {
    o->n_prompts = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < 1 || v > (1 << 20) || (*end && *end != ',') || o->n_prompts == MAX_PROMPTS) {
            fprintf(stderr, "ulm bench: -p expects up to %d comma-separated prompt lengths in [1, %d], got '%s'\n",
                    MAX_PROMPTS, 1 << 20, s);
            return -1;
        }
        o->prompts[o->n_prompts++] = (int)v;
        if (!*end) return 0;
        p = end + 1;
    }
}

static uint32_t xorshift32(uint32_t *s) {
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* n token ids: BOS (when the model has one) then pseudo-random ids, as llama-bench does. */
static void fill_tokens(int32_t *t, int n, const ulm_model_info *mi, uint32_t *seed) {
    for (int i = 0; i < n; i++) t[i] = (int32_t)(xorshift32(seed) % (uint32_t)mi->n_vocab);
    if (n > 0 && mi->bos_id >= 0) t[0] = mi->bos_id;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Time of one prefill of n tokens from an empty context, in ms. */
static ulm_status time_prefill(ulm_ctx *c, const int32_t *toks, int n, float *logits, double *ms, ulm_error *err) {
    ulm_ctx_reset(c);
    double t0 = now_ms();
    ulm_status st = ulm_ctx_eval(c, toks, n, logits, 0, err);
    *ms = now_ms() - t0;
    return st;
}

/* Time of n single-token decode steps from an empty context, in ms. */
static ulm_status time_decode(ulm_ctx *c, const int32_t *toks, int n, float *logits, double *ms, ulm_error *err) {
    ulm_ctx_reset(c);
    double t0 = now_ms();
    for (int i = 0; i < n; i++) {
        ulm_status st = ulm_ctx_eval(c, &toks[i], 1, logits, 0, err);
        if (st) return st;
    }
    *ms = now_ms() - t0;
    return ULM_OK;
}

/* From nothing to the first token: load, context, prefill, greedy pick. */
static ulm_status time_ttft(const bench_opts *o, const int32_t *toks, double *ms, ulm_error *err) {
    ulm_model *m = NULL;
    ulm_ctx *c = NULL;
    float *logits = NULL;
    double t0 = now_ms();
    ulm_status st = ulm_model_load(o->model, &m, err);
    if (!st) {
        ulm_ctx_params cp = o->cp;
        if (cp.n_ctx < o->ttft_prompt + 1) cp.n_ctx = o->ttft_prompt + 1;
        st = ulm_ctx_new(m, &cp, &c, err);
    }
    if (!st) {
        ulm_model_info mi;
        ulm_model_get_info(m, &mi);
        logits = malloc((size_t)mi.n_vocab * sizeof *logits);
        if (!logits) st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
        else st = ulm_ctx_eval(c, toks, o->ttft_prompt, logits, 0, err);
        if (!st) {
            volatile int first = argmax(logits, mi.n_vocab);
            (void)first;
        }
    }
    *ms = now_ms() - t0;
    free(logits);
    ulm_ctx_free(c);
    ulm_model_free(m);
    return st;
}

typedef struct {
    int n;          /* intervals */
    double *tok_s;  /* [n] */
    double seconds; /* wall time of the whole run */
    long tokens;
} sustained;

/* Decodes without pause for o->duration seconds, counting tokens per interval. */
static ulm_status run_sustained(ulm_ctx *c, const bench_opts *o, const int32_t *toks, float *logits, sustained *s,
                                ulm_error *err) {
    double iv_ms = o->interval * 1e3, end_ms = o->duration * 1e3;
    int cap = (int)(end_ms / iv_ms) + 2;
    s->tok_s = calloc((size_t)cap, sizeof *s->tok_s);
    if (!s->tok_s) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    s->n = 0;
    s->tokens = 0;
    ulm_ctx_reset(c);
    double t0 = now_ms(), iv0 = t0, t = t0;
    long iv_tokens = 0;
    int i = 0;
    while (t - t0 < end_ms) {
        if (ulm_ctx_pos(c) >= o->n_gen) ulm_ctx_reset(c), i = 0;
        ulm_status st = ulm_ctx_eval(c, &toks[i++], 1, logits, 0, err);
        if (st) return st;
        iv_tokens++;
        s->tokens++;
        t = now_ms();
        if (t - iv0 >= iv_ms && s->n < cap) { /* close the interval at the step that crossed it */
            s->tok_s[s->n++] = iv_tokens * 1e3 / (t - iv0);
            iv0 = t;
            iv_tokens = 0;
        }
    }
    /* a closing partial interval counts when it is at least half an interval (or the only one) */
    if (iv_tokens > 0 && s->n < cap && (s->n == 0 || t - iv0 >= 0.5 * iv_ms)) s->tok_s[s->n++] = iv_tokens * 1e3 / (t - iv0);
    s->seconds = (t - t0) / 1e3;
    return ULM_OK;
}

static void print_stat_json(FILE *fp, const char *key, stat3 s) {
    fprintf(fp, "\"%s\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}", key, s.med, s.min, s.max);
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    memset(&o, 0, sizeof o);
    o.n_prompts = 2;
    o.prompts[0] = 128;
    o.prompts[1] = 512;
    o.n_gen = 128;
    o.reps = 5;
    o.ttft_prompt = 32;
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); return 0; }
        if (!strcmp(a, "--json")) { o.json = 1; continue; }
        if (a[0] != '-') {
            if (o.model) { fprintf(stderr, "ulm bench: unexpected argument '%s'\n%s", a, usage); return 2; }
            o.model = a;
            continue;
        }
        if (!(v = arg_value(argc, argv, &i))) return 2;
        int bad = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = arg_int(a, v, 1, 256, &o.cp.n_threads);
        else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) bad = parse_prompt_list(v, &o);
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) bad = arg_int(a, v, 1, 1 << 20, &o.n_gen);
        else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) bad = arg_int(a, v, 1, MAX_REPS, &o.reps);
        else if (!strcmp(a, "--ttft-prompt")) bad = arg_int(a, v, 1, 1 << 20, &o.ttft_prompt);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) bad = arg_int(a, v, 1, 4096, &o.cp.n_batch);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) bad = arg_int(a, v, 1, 1 << 24, &o.cp.n_ctx);
        else if (!strcmp(a, "--duration")) bad = arg_float(a, v, 0.01f, 86400.0f * 7, &o.duration);
        else if (!strcmp(a, "--interval")) bad = arg_float(a, v, 0.001f, 3600.0f, &o.interval);
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o.out_path = v;
        else if (!strcmp(a, "--kv-type")) {
            if (strcmp(v, "f16") && strcmp(v, "f32")) { fprintf(stderr, "ulm bench: --kv-type is f16 or f32\n"); return 2; }
            o.cp.kv_f32 = !strcmp(v, "f32");
        } else { fprintf(stderr, "ulm bench: unknown option %s\n%s", a, usage); return 2; }
        if (bad) return 2;
    }
    if (!o.model) { fprintf(stderr, "ulm bench: no model given\n%s", usage); return 2; }
    if (o.interval > 0 && o.duration <= 0) { fprintf(stderr, "ulm bench: --interval needs --duration\n"); return 2; }
    if (o.duration > 0 && o.interval <= 0) o.interval = o.duration / 10 > 0.5f ? o.duration / 10 : 0.5f;
    if (o.duration > 0 && o.duration / o.interval > MAX_INTERVALS) {
        fprintf(stderr, "ulm bench: --duration / --interval exceeds %d intervals\n", MAX_INTERVALS);
        return 2;
    }
    /* the context holds the longest prompt and the decode run */
    int need = o.n_gen > o.ttft_prompt ? o.n_gen : o.ttft_prompt;
    for (int i = 0; i < o.n_prompts; i++) need = o.prompts[i] > need ? o.prompts[i] : need;
    if (o.cp.n_ctx > 0 && o.cp.n_ctx < need) {
        fprintf(stderr, "ulm bench: -c %d is smaller than the longest run (%d tokens)\n", o.cp.n_ctx, need);
        return 2;
    }
    if (o.cp.n_ctx == 0) o.cp.n_ctx = need;

    FILE *out = stdout;
    if (o.out_path && !(out = fopen(o.out_path, "w"))) {
        fprintf(stderr, "ulm bench: cannot write %s: %s\n", o.out_path, strerror(errno));
        return 1;
    }
    int rc = 1;
    ulm_error err = {0};
    ulm_model *m = NULL;
    ulm_ctx *c = NULL;
    int32_t *toks = NULL;
    float *logits = NULL;
    double *times = NULL;
    stat3 *pp = NULL;
    sustained sus = {0};
    ulm_status st;

    ulm_model_info mi;
    double t0 = now_ms();
    if ((st = ulm_model_load(o.model, &m, &err)) || (st = ulm_ctx_new(m, &o.cp, &c, &err))) goto fail;
    double load_ms = now_ms() - t0;
    ulm_model_get_info(m, &mi);
    if (o.cp.n_ctx > ulm_ctx_size(c)) {
        st = ulm_set_error(&err, ULM_ERR_CONTEXT, "context of %d tokens is smaller than the longest run", ulm_ctx_size(c));
        goto fail;
    }
    toks = malloc((size_t)need * sizeof *toks);
    logits = malloc((size_t)mi.n_vocab * sizeof *logits);
    times = malloc((size_t)o.reps * sizeof *times);
    pp = calloc((size_t)o.n_prompts, sizeof *pp);
    if (!toks || !logits || !times || !pp) { st = ulm_set_error(&err, ULM_ERR_NOMEM, "out of memory"); goto fail; }
    uint32_t seed = 42;
    fill_tokens(toks, need, &mi, &seed);

    /* warm-up: touches every weight page and the scratch buffers once */
    double ms;
    if ((st = time_prefill(c, toks, o.ttft_prompt, logits, &ms, &err))) goto fail;

    for (int p = 0; p < o.n_prompts; p++) {
        for (int r = 0; r < o.reps; r++) {
            if ((st = time_prefill(c, toks, o.prompts[p], logits, &ms, &err))) goto fail;
            times[r] = o.prompts[p] * 1e3 / (ms > 1e-6 ? ms : 1e-6);
        }
        pp[p] = summarize(times, o.reps);
    }
    for (int r = 0; r < o.reps; r++) {
        if ((st = time_decode(c, toks, o.n_gen, logits, &ms, &err))) goto fail;
        times[r] = o.n_gen * 1e3 / (ms > 1e-6 ? ms : 1e-6);
    }
    stat3 tg = summarize(times, o.reps);
    /* peak RSS now, with one model mapped, prefill and decode done: the TTFT runs below map the
     * file a second time, and RSS counts the pages of each mapping */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = ru.ru_maxrss / 1024.0;
    /* the model stays loaded meanwhile, as the file stays in the page cache for a user */
    for (int r = 0; r < o.reps; r++)
        if ((st = time_ttft(&o, toks, &times[r], &err))) goto fail;
    stat3 ttft = summarize(times, o.reps);
    double sus_floor = 0, sus_med = 0, sus_max = 0;
    if (o.duration > 0) {
        if ((st = run_sustained(c, &o, toks, logits, &sus, &err))) goto fail;
        double *sorted = malloc((size_t)(sus.n ? sus.n : 1) * sizeof *sorted);
        if (!sorted) { st = ulm_set_error(&err, ULM_ERR_NOMEM, "out of memory"); goto fail; }
        if (sus.n) memcpy(sorted, sus.tok_s, (size_t)sus.n * sizeof *sorted);
        stat3 s3 = summarize(sorted, sus.n);
        free(sorted);
        sus_floor = s3.min, sus_med = s3.med, sus_max = s3.max;
    }
    int nt = o.cp.n_threads > 0 ? o.cp.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char *kv = o.cp.kv_f32 ? "f32" : "f16";

    if (o.json) {
        fprintf(out, "{\"model\": ");
        json_write_str(out, o.model, strlen(o.model));
        fprintf(out, ", \"arch\": \"%s\", \"n_params\": %llu, \"file_bytes\": %llu, \"n_vocab\": %d,\n", mi.arch,
                (unsigned long long)mi.n_params, (unsigned long long)mi.file_size, mi.n_vocab);
        fprintf(out, " \"threads\": %d, \"isa\": \"%s\", \"kv_type\": \"%s\", \"n_ctx\": %d, \"reps\": %d,\n", nt,
                ulm_isa_name(), kv, ulm_ctx_size(c), o.reps);
        fprintf(out, " \"load_ms\": %.3f,\n \"prefill\": [", load_ms);
        for (int p = 0; p < o.n_prompts; p++) {
            fprintf(out, "%s{\"n_prompt\": %d, ", p ? ", " : "", o.prompts[p]);
            print_stat_json(out, "tok_s", pp[p]);
            fprintf(out, "}");
        }
        fprintf(out, "],\n \"decode\": {\"n_gen\": %d, ", o.n_gen);
        print_stat_json(out, "tok_s", tg);
        fprintf(out, "},\n \"ttft\": {\"n_prompt\": %d, ", o.ttft_prompt);
        print_stat_json(out, "ms", ttft);
        fprintf(out, "},\n \"peak_rss_mib\": %.1f", rss_mib);
        if (o.duration > 0) {
            fprintf(out, ",\n \"sustained\": {\"duration_s\": %.3f, \"interval_s\": %.3f, \"tokens\": %ld, "
                         "\"floor_tok_s\": %.3f, \"median_tok_s\": %.3f, \"max_tok_s\": %.3f, \"tok_s\": [",
                    sus.seconds, o.interval, sus.tokens, sus_floor, sus_med, sus_max);
            for (int i = 0; i < sus.n; i++) fprintf(out, "%s%.3f", i ? ", " : "", sus.tok_s[i]);
            fprintf(out, "]}");
        }
        fprintf(out, "}\n");
    } else {
        fprintf(out, "model   %s: %s, %.1fM params, %.1f MiB\n", o.model, mi.arch, mi.n_params / 1e6,
                mi.file_size / 1048576.0);
        fprintf(out, "setup   threads %d, kernels %s, KV %s, context %d, load %.1f ms, %d reps (median, min-max)\n",
                nt, ulm_isa_name(), kv, ulm_ctx_size(c), load_ms, o.reps);
        fprintf(out, "\n| test        |      median |         min - max       |\n");
        fprintf(out, "|-------------|-------------|-------------------------|\n");
        char name[32];
        for (int p = 0; p < o.n_prompts; p++) {
            snprintf(name, sizeof name, "pp%d", o.prompts[p]);
            fprintf(out, "| %-11s | %7.1f t/s | %9.1f - %-9.1f t/s |\n", name, pp[p].med, pp[p].min, pp[p].max);
        }
        snprintf(name, sizeof name, "tg%d", o.n_gen);
        fprintf(out, "| %-11s | %7.1f t/s | %9.1f - %-9.1f t/s |\n", name, tg.med, tg.min, tg.max);
        snprintf(name, sizeof name, "ttft p%d", o.ttft_prompt);
        fprintf(out, "| %-11s | %8.1f ms | %9.1f - %-9.1f ms  |\n", name, ttft.med, ttft.min, ttft.max);
        fprintf(out, "| %-11s | %6.1f MiB |                         |\n", "peak RSS", rss_mib);
        if (o.duration > 0) {
            fprintf(out, "\nsustained decode, %.1f s, %ld tokens, tok/s per %.2f s interval:\n", sus.seconds, sus.tokens,
                    o.interval);
            for (int i = 0; i < sus.n; i++) fprintf(out, "%s%.1f", i ? (i % 10 ? " " : "\n") : "", sus.tok_s[i]);
            fprintf(out, "\nfloor %.1f, median %.1f, max %.1f tok/s: floor = %.0f%% of max%s\n", sus_floor, sus_med,
                    sus_max, sus_max > 0 ? 100 * sus_floor / sus_max : 0,
                    sus_max > 0 && sus_floor < 0.8 * sus_max ? " (throttling or a busy machine)" : "");
        }
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "ulm bench: %s\n", err.msg[0] ? err.msg : ulm_status_name(st));
done:
    if (out != stdout && fclose(out) != 0 && rc == 0) {
        fprintf(stderr, "ulm bench: cannot write %s\n", o.out_path);
        rc = 1;
    }
    free(sus.tok_s);
    free(pp);
    free(times);
    free(logits);
    free(toks);
    ulm_ctx_free(c);
    ulm_model_free(m);
    return rc;
}
