/* ulm eval TASK.ulm [GOLDEN.jsonl] [--json] [--baseline OTHER.ulm] [--max-drop D]
 *          [--min-accuracy X] [-n LIMIT] [-t THREADS] [--beam N]
 * Runs the task on every golden item (the embedded task.golden when no file is given) and
 * reports exact-match accuracy, per-field P/R/F1 for JSON outputs, validity and escalation
 * rates, TTFT and total latency p50/p95, and tokens/s. Gates exit 1: accuracy below
 * --min-accuracy, or more than --max-drop below the --baseline task's accuracy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "args.h"
#include "cli.h"
#include "eval_stats.h"
#include "task.h"

static const char *usage =
    "usage: ulm eval TASK.ulm [GOLDEN.jsonl] [--json] [--baseline OTHER.ulm] [--max-drop D]\n"
    "                [--min-accuracy X] [-n LIMIT] [-t THREADS] [--beam N]\n"
    "  --beam N: decode with a beam of N hypotheses (1 = greedy) instead of the spec's \"beam\"\n";

/* Evaluates one task file; fills *rep. Returns 0, or 1 with a message printed. */
static int eval_one(const char *path, const char *golden_path, int limit, int threads, int beam, int progress,
                    eval_report *rep) {
    task *t;
    ulm_error err;
    if (task_load(path, threads, &t, &err)) {
        fprintf(stderr, "ulm eval: %s\n", err.msg);
        return 1;
    }
    if (beam && task_set_beam(t, beam, &err)) {
        fprintf(stderr, "ulm eval: %s: --beam %d: %s\n", path, beam, err.msg);
        task_free(t);
        return 1;
    }
    char *text = NULL;
    const char *gt;
    size_t gl;
    char where[300];
    if (golden_path) {
        if (!(text = read_file(golden_path, &gl))) { task_free(t); return 1; }
        gt = text;
        snprintf(where, sizeof where, "%s", golden_path);
    } else if (!(gt = task_golden(t, &gl))) {
        fprintf(stderr, "ulm eval: %s has no embedded golden set; give GOLDEN.jsonl\n", path);
        task_free(t);
        return 1;
    } else {
        snprintf(where, sizeof where, "%s[task.golden]", path);
    }
    golden_item *g;
    int n, n_all;
    if (golden_parse(gt, gl, where, &g, &n_all, &err)) {
        fprintf(stderr, "ulm eval: %s\n", err.msg);
        free(text);
        task_free(t);
        return 1;
    }
    n = n_all;
    if (limit > 0 && limit < n) n = limit;
    eval_item *items = calloc((size_t)n, sizeof *items);
    task_result *res = calloc((size_t)n, sizeof *res);
    int rc = 0;
    if (!items || !res) { fprintf(stderr, "ulm eval: out of memory\n"); rc = 1; goto out; }
    for (int i = 0; i < n; i++) {
        if (task_run(t, g[i].input, g[i].input_len, NULL, NULL, &res[i], &err)) {
            /* a broken input is an invalid, escalated item, not the end of the eval */
            memset(&res[i], 0, sizeof res[i]);
            res[i].route = ROUTE_ESCALATE;
        }
        items[i] = (eval_item){g[i].expected, res[i].output, g[i].expected_len, res[i].len, res[i].valid,
                               res[i].route == ROUTE_ESCALATE, res[i].n_tokens, res[i].ttft_ms, res[i].total_ms};
        if (progress) {
            int w = 30, k = (i + 1) * w / n;
            fprintf(stderr, "\r%s [", path);
            for (int j = 0; j < w; j++) fputc(j < k ? '#' : '.', stderr);
            fprintf(stderr, "] %d/%d", i + 1, n);
            if (i + 1 == n) fputc('\n', stderr);
        }
    }
    if (eval_compute(items, n, rep)) { fprintf(stderr, "ulm eval: out of memory\n"); rc = 1; }
out:
    if (res)
        for (int i = 0; i < n; i++) task_result_free(&res[i]);
    free(res);
    free(items);
    golden_free(g, n_all); /* all parsed items, also past -n */
    free(text);
    task_free(t);
    return rc;
}

static void print_table(const char *name, const eval_report *r) {
    printf("%s: %d items\n", name, r->n);
    printf("  %-22s %8.4f  (%d/%d)\n", "exact-match accuracy", r->accuracy, r->n_exact, r->n);
    if (r->n_json)
        printf("  %-22s P %.4f  R %.4f  F1 %.4f  (%d JSON items)\n", "fields", r->precision, r->recall, r->f1, r->n_json);
    printf("  %-22s %8.4f\n", "validity rate", r->validity);
    printf("  %-22s %8.4f\n", "escalation rate", r->escalation);
    printf("  %-22s p50 %.2f  p95 %.2f\n", "ttft ms", r->ttft_p50, r->ttft_p95);
    printf("  %-22s p50 %.2f  p95 %.2f\n", "total ms", r->total_p50, r->total_p95);
    printf("  %-22s %8.1f\n", "tokens/s", r->tokens_per_s);
}

static void print_json(const eval_report *r) {
    printf("{\"n\":%d,\"accuracy\":%.6f,\"exact\":%d,\"precision\":%.6f,\"recall\":%.6f,\"f1\":%.6f,\"json_items\":%d,"
           "\"validity\":%.6f,\"escalation\":%.6f,\"ttft_ms\":{\"p50\":%.3f,\"p95\":%.3f},"
           "\"total_ms\":{\"p50\":%.3f,\"p95\":%.3f},\"tokens_per_s\":%.3f}",
           r->n, r->accuracy, r->n_exact, r->precision, r->recall, r->f1, r->n_json, r->validity, r->escalation,
           r->ttft_p50, r->ttft_p95, r->total_p50, r->total_p95, r->tokens_per_s);
}

int cmd_eval(int argc, char **argv) {
    const char *path = NULL, *golden = NULL, *baseline = NULL, *v;
    int as_json = 0, limit = 0, threads = 0, beam = 0;
    float max_drop = -1, min_acc = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) { as_json = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); return 0; }
        if (a[0] != '-') {
            if (!path) path = a;
            else if (!golden) golden = a;
            else { fprintf(stderr, "ulm eval: unexpected argument '%s'\n%s", a, usage); return 2; }
            continue;
        }
        if (!(v = arg_value(argc, argv, &i))) return 2;
        int bad = 0;
        if (!strcmp(a, "--baseline")) baseline = v;
        else if (!strcmp(a, "--max-drop")) bad = arg_float(a, v, 0, 1, &max_drop);
        else if (!strcmp(a, "--min-accuracy")) bad = arg_float(a, v, 0, 1, &min_acc);
        else if (!strcmp(a, "-n")) bad = arg_int(a, v, 1, 1 << 30, &limit);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) bad = arg_int(a, v, 1, 256, &threads);
        else if (!strcmp(a, "--beam")) bad = arg_int(a, v, 1, TASK_MAX_BEAM, &beam);
        else { fprintf(stderr, "ulm eval: unknown option %s\n%s", a, usage); return 2; }
        if (bad) return 2;
    }
    if (!path) { fputs(usage, stderr); return 2; }
    if (max_drop >= 0 && !baseline) { fprintf(stderr, "ulm eval: --max-drop needs --baseline\n"); return 2; }
    if (baseline && max_drop < 0) max_drop = 0.02f;
    int progress = !as_json && isatty(2);
    eval_report rep, base;
    if (eval_one(path, golden, limit, threads, beam, progress, &rep)) return 1;
    if (baseline && eval_one(baseline, golden, limit, threads, beam, progress, &base)) return 1;
    int rc = 0;
    char why[256] = "";
    if (min_acc >= 0 && rep.accuracy < min_acc) {
        snprintf(why, sizeof why, "accuracy %.4f is below --min-accuracy %.4f", rep.accuracy, min_acc);
        rc = 1;
    }
    if (baseline && base.accuracy - rep.accuracy > max_drop + 1e-9) {
        snprintf(why, sizeof why, "accuracy %.4f dropped %.4f below the baseline's %.4f (--max-drop %.4f)",
                 rep.accuracy, base.accuracy - rep.accuracy, base.accuracy, max_drop);
        rc = 1;
    }
    if (as_json) {
        printf("{\"task\":");
        print_json(&rep);
        if (baseline) {
            printf(",\"baseline\":");
            print_json(&base);
        }
        printf(",\"pass\":%s}\n", rc ? "false" : "true");
    } else {
        print_table(path, &rep);
        if (baseline) print_table(baseline, &base);
        printf("%s%s\n", rc ? "FAIL: " : "pass", why);
    }
    return rc;
}
