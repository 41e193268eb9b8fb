/* A .ulm file as the engine meets it: ulm_model_load (header, metadata, tensors, tokenizer,
 * bound weights), then a context, a tokenized prompt, a forward pass over it and a few
 * greedy tokens; and, when the file carries a task spec, task_load and one task_run.
 * Seeds: tiny random models of each weight type, and a tiny task (make fuzz writes them). */
#include "fuzz.h"
#include "task.h"
#include "ulm.h"

static int fz_count_text(const char *text, size_t len, void *user) {
    *(size_t *)user += len;
    return 0;
}

static void fz_run_model(const char *path) {
    ulm_model *m = NULL;
    ulm_error err;
    if (ulm_model_load(path, &m, &err) != ULM_OK) return;
    ulm_model_info info;
    ulm_model_get_info(m, &info);
    FUZZ_CHECK(info.n_vocab > 0 && info.dim > 0 && info.n_layers > 0);
    ulm_ctx_params p = {.n_ctx = 12, .n_threads = 1};
    ulm_ctx *c = NULL;
    if (ulm_ctx_new(m, &p, &c, &err) == ULM_OK) {
        int32_t ids[16];
        int n = 0;
        if (ulm_tokenize(m, "Hi, a b", 7, ULM_TOK_ADD_BOS, ids, 16, &n, &err) == ULM_OK && n > 0 && n <= 8) {
            for (int i = 0; i < n; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < info.n_vocab);
            float *logits = malloc((size_t)info.n_vocab * sizeof(float));
            if (logits) ulm_ctx_eval(c, ids, n, logits, 0, &err);
            free(logits);
        }
        ulm_ctx_reset(c);
        ulm_sampling s;
        ulm_sampling_default(&s);
        size_t out = 0;
        ulm_generate(c, "ab", &s, 3, fz_count_text, &out, NULL, &err);
        ulm_ctx_free(c);
    }
    ulm_model_free(m);
}

static void fz_run_task(const char *path) {
    task *t = NULL;
    ulm_error err;
    if (task_load(path, 1, &t, &err) != ULM_OK) return;
    task_result r;
    memset(&r, 0, sizeof r);
    if (task_run(t, "one two three", 13, NULL, NULL, &r, &err) == ULM_OK) {
        FUZZ_CHECK(r.output != NULL && r.output[r.len] == 0);
        task_result_free(&r);
    }
    task_free(t);
}

int fuzz_ulm_model(const uint8_t *data, size_t size) {
    char path[256];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    fz_run_model(path);
    fz_run_task(path);
    fuzz_file_done(fd, path);
    return 0;
}
FUZZ_ENTRY(fuzz_ulm_model)
