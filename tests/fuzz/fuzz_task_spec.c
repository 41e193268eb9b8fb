/* Task specs and golden sets: input = a task spec (JSON), NUL, an input text. The spec is
 * parsed and validated (task_spec_parse), its prompt built, and a task made from it on a tiny
 * random model runs the input (constraint compiled per input, sampling, beam, validator,
 * tagged spans). The whole input is also parsed as a golden set (JSONL). */
#include "fuzz.h"
#include "task.h"

int fuzz_task_spec(const uint8_t *data, size_t size) {
    ulm_error err;
    golden_item *items = NULL;
    int n = 0;
    if (golden_parse((const char *)data, size, "fuzz", &items, &n, &err) == ULM_OK) {
        for (int i = 0; i < n; i++) FUZZ_CHECK(items[i].input && items[i].expected);
        golden_free(items, n);
    }
    const uint8_t *z = memchr(data, 0, size);
    size_t spec_len = z ? (size_t)(z - data) : size;
    const char *input = z ? (const char *)z + 1 : "";
    size_t input_len = z ? size - spec_len - 1 : 0;
    task_spec s;
    if (task_spec_parse((const char *)data, spec_len, "fuzz", &s, &err) != ULM_OK) return 0;
    char *prompt = task_prompt(&s, input, input_len);
    FUZZ_CHECK(prompt != NULL);
    free(prompt);
    task_spec_free(&s);
    task *t = NULL;
    if (task_new(fuzz_tiny_model(), (const char *)data, spec_len, "fuzz", 1, &t, &err) != ULM_OK) return 0;
    task_result r;
    memset(&r, 0, sizeof r);
    ulm_status st = task_run(t, input, input_len, NULL, NULL, &r, &err);
    if (!fuzz_utf8_valid((const uint8_t *)input, input_len)) FUZZ_CHECK(st != ULM_OK);
    if (st == ULM_OK) {
        FUZZ_CHECK(r.output != NULL && r.output[r.len] == 0);
        task_result_free(&r);
    }
    task_free(t);
    return 0;
}
FUZZ_ENTRY(fuzz_task_spec)
