/* Tasks: a model plus everything that makes it do one job — instruction template, sampling,
 * output constraint, validator, confidence threshold, golden set — in one .ulm file.
 *
 * Task spec (tasks/<name>/task.json; stored in the task .ulm under the key "task.spec"):
 *   {
 *     "name": "sentiment",                        required
 *     "instruction": "Review: {input}\nLabel:",    required, exactly one {input} slot
 *     "chat_template": false,                     wrap in the model's chat template
 *     "sampling": {"temperature": 0, "top_k": 0, "top_p": 1, "min_p": 0,
 *                  "repeat_penalty": 1, "repeat_last_n": 64, "seed": 0},
 *     "max_tokens": 16,                           required, 1..65536
 *     "beam": 4,                                  beam search over this many hypotheses
 *                                                 (1..8; default 1, greedy): the answer is
 *                                                 the finished one of highest summed
 *                                                 log-probability; needs temperature 0 and
 *                                                 repeat_penalty 1, not with distinct_strings
 *     "stop": ["\n"],                             unconstrained output ends before these
 *     "constraint": {...},                        see constraint.h; with "tagged_spans" the
 *                                                 model writes tagged spans and the task
 *                                                 answers (and streams) their JSON object
 *     "validator": {"json": true, "pattern": "...", "refusals": ["I cannot"]},
 *     "min_confidence": 0.2,                      escalate when the least chosen-token
 *     "min_mean_confidence": 0.5,                 probability (or the mean) is below
 *     "context_budget": 512,                      escalate when the prompt is longer (tokens)
 *     "privacy": "internal"                       public | internal | confidential | restricted
 *   }
 * Unknown keys are errors (typos must not silently change behaviour). Errors name the file
 * and line. Golden sets (key "task.golden") are JSONL: {"input": "...", "output": ...} per
 * line, where output is a string or any JSON value (compared canonically).
 *
 * Confidence is the model's own probability of each chosen token (softmax of the raw logits
 * at temperature 1, before the constraint mask), so a constraint that forces the model off its
 * preferred tokens shows as low confidence. */
#ifndef ULM_TASK_H
#define ULM_TASK_H
#include <stddef.h>
#include "constraint.h"
#include "tagged_spans.h"
#include "ulm.h"

struct json_doc;
struct json_value;

#define TASK_MAX_BEAM 8

typedef struct task_spec {
    struct json_doc *doc;
    const char *name, *instruction, *privacy;
    int chat;
    ulm_sampling sampling;
    int max_tokens, context_budget;
    int beam;                            /* hypotheses kept; 1: greedy */
    const char **stop;
    size_t *stop_len;
    int n_stop;
    const struct json_value *constraint; /* NULL: none */
    const struct json_value *validator;  /* NULL: none */
    tagged_form tagged;                  /* the constraint's form when it is tagged_spans */
    int has_tagged;                      /* 1: the model writes tagged spans, the task answers JSON */
    float min_conf, min_mean_conf;
} task_spec;

/* Parses and validates a spec; `where` names it in errors ("tasks/x/task.json"). */
ulm_status task_spec_parse(const char *text, size_t len, const char *where, task_spec *out, ulm_error *err);
void task_spec_free(task_spec *s);
/* The prompt for input: the instruction with {input} replaced (malloc'd). */
char *task_prompt(const task_spec *s, const char *input, size_t len);
struct tokenizer;
/* The prompt's token ids, as task_run feeds them: the tokenizer's BOS when it asks for one,
 * then the prompt (wrapped in the model's chat template when the spec asks), with special
 * tokens written in the instruction parsed ("<|in|>{input}<|out|>" gives the task BPE's
 * <|in|> and <|out|> ids: the trainer's prompt format, tools/train/train_data.h). Writes up to
 * cap ids and sets *n_out to the number needed. An input is expected not to spell special
 * tokens itself (it would be parsed as them). */
ulm_status task_encode_prompt(const task_spec *s, const struct tokenizer *tk, const char *input, size_t len,
                              int32_t *out, int cap, int *n_out, ulm_error *err);

/* A golden set: JSONL lines of {"input": str, "output": str | value}. */
typedef struct golden_item { char *input, *expected; size_t input_len, expected_len; } golden_item;
ulm_status golden_parse(const char *text, size_t len, const char *where, golden_item **items, int *n, ulm_error *err);
void golden_free(golden_item *items, int n);

/* The constraint vocabulary a task decodes with: each token's bytes (control, unused and
 * unknown tokens have none) and its end-of-generation ids. *pieces and *lens (malloc'd; the
 * pieces point into tk, which must outlive them) are what it was built from. */
struct tokenizer;
ulm_status task_cons_vocab(const struct tokenizer *tk, const char ***pieces, uint32_t **lens, cons_vocab **out,
                           ulm_error *err);

/* ---- running ---- */
typedef struct task task;

typedef enum { ROUTE_LOCAL = 0, ROUTE_ESCALATE = 1 } task_route;

typedef struct task_result {
    char *output; /* NUL-terminated, malloc'd (task_result_free) */
    size_t len;
    task_route route;
    const char *reason;     /* NULL when local: "low_confidence", "input_over_budget",
                               "constraint_unsatisfiable", "validator_failed", "refusal" */
    int valid;              /* output satisfies the constraint and the validator */
    float conf_min, conf_mean;
    int n_prompt, n_tokens;
    double ttft_ms, total_ms;
} task_result;
void task_result_free(task_result *r);

/* Loads a task .ulm (a model with "task.spec"). n_threads 0 = all cores. */
ulm_status task_load(const char *path, int n_threads, task **out, ulm_error *err);
/* A task from a model already loaded and a spec (the model must outlive the task). */
ulm_status task_new(const ulm_model *m, const char *spec, size_t spec_len, const char *where, int n_threads,
                    task **out, ulm_error *err);
void task_free(task *t);
/* Overrides the spec's "beam" (1 = greedy), with the spec's rules; ULM_ERR_ARG naming the
 * rule when it breaks one. */
ulm_status task_set_beam(task *t, int beam, ulm_error *err);
const task_spec *task_get_spec(const task *t);
/* The embedded golden set text, or NULL. */
const char *task_golden(const task *t, size_t *len);

/* Runs the task on one input. Errors are for broken inputs or the engine (invalid UTF-8,
 * out of memory); everything the application should route is a result with route escalate.
 * on_text, if set, streams output pieces as they are accepted. */
ulm_status task_run(task *t, const char *input, size_t len, ulm_text_fn on_text, void *user, task_result *res,
                    ulm_error *err);

#endif
