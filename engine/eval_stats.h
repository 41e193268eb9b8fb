/* Golden-set statistics: exact match, per-field precision/recall/F1 for JSON outputs,
 * validity and escalation rates, latency percentiles, tokens per second.
 *
 * Field P/R/F1 (micro-averaged over the set): an expected JSON object or array is flattened into
 * (path, canonical scalar) pairs — object members extend the path with ".key", array
 * elements keep their parent's path, so a list is compared as a multiset. True positives are
 * the multiset intersection with the output's pairs; an output that is not JSON contributes
 * no pairs. Items whose expected text is not a JSON object/array take no part in field scores.
 * Exact match compares the output with the expected text after trimming surrounding
 * whitespace; when both parse as JSON of the same type, their flattened pair multisets are
 * compared instead (member order and array order do not matter).
 * Percentiles interpolate linearly between order statistics (p50 of {1,2,3,4} is 2.5). */
#ifndef ULM_EVAL_STATS_H
#define ULM_EVAL_STATS_H
#include <stddef.h>

typedef struct eval_item {
    const char *expected, *output;
    size_t expected_len, output_len;
    int valid, escalated, n_tokens;
    double ttft_ms, total_ms;
} eval_item;

typedef struct eval_report {
    int n, n_exact, n_valid, n_escalated, n_json;
    double accuracy, validity, escalation;
    long tp, fp, fn;
    double precision, recall, f1; /* over items with a JSON expected value; 0 when none */
    double ttft_p50, ttft_p95, total_p50, total_p95;
    double tokens_per_s; /* generated tokens / total time */
} eval_report;

/* 1 if output matches expected as described above. */
int eval_exact(const char *expected, size_t elen, const char *output, size_t olen);
/* Adds the field counts of one item to *tp, *fp, *fn; returns 0 if expected is not JSON. */
int eval_fields(const char *expected, size_t elen, const char *output, size_t olen, long *tp, long *fp, long *fn);
/* q in [0, 1]; sorts v in place. 0 for n == 0. */
double eval_percentile(double *v, int n, double q);
/* Returns 0, or -1 when out of memory. */
int eval_compute(const eval_item *items, int n, eval_report *r);

#endif
