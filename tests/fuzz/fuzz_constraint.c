/* Output constraints: input = a constraint spec (JSON), NUL, the task input, NUL, choice
 * bytes. The spec is compiled against the entity task's BPE vocabulary and walked, each step
 * taking the allowed token the next choice byte picks. Properties (constraint.h):
 *   - a run that cons_begin accepts never runs out of allowed tokens before it can end;
 *   - an end-of-generation token is allowed only where the automaton accepts;
 *   - every allowed token advances; a run that ends (final, or out of tokens) accepts, and
 *     the text it wrote matches the constraint as a whole (cons_matches). */
#include "fuzz.h"
#include "json.h"
#include "model.h"
#include "task.h"

static cons_vocab *fz_vocab;
static ulm_model *fz_model; /* holds the piece storage */
static const char **fz_pieces;
static uint32_t *fz_lens;

static void fz_load_vocab(void) {
    if (fz_vocab) return;
    ulm_error err;
    const char *bpe = getenv("ULM_FUZZ_BPE_MODEL");
    if (ulm_model_load(bpe ? bpe : "tasks/entities/entities.ulm", &fz_model, &err) != ULM_OK) {
        fprintf(stderr, "fuzz_constraint: %s (run from the repository root)\n", err.msg);
        abort();
    }
    /* as task_new builds it; the model (and so the piece storage) stays loaded */
    FUZZ_CHECK(task_cons_vocab(fz_model->tok, &fz_pieces, &fz_lens, &fz_vocab, &err) == ULM_OK);
}

static const uint8_t *fz_next_part(const uint8_t **p, const uint8_t *end, size_t *len) {
    const uint8_t *s = *p, *z = memchr(s, 0, (size_t)(end - s));
    *len = (size_t)((z ? z : end) - s);
    *p = z ? z + 1 : end;
    return s;
}

static void fz_cons_walk(constraint *c, const uint8_t *choice, size_t n_choice) {
    enum { MAX_TOKENS = 40 };
    cons_run r;
    ulm_error err;
    if (cons_begin(c, MAX_TOKENS, &r, &err) != ULM_OK) return;
    int V = cons_vocab_size(fz_vocab);
    static char text[1 << 16];
    size_t len = 0;
    for (int step = 0;; step++) {
        if (cons_final(&r) || r.remaining == 0) break;
        const uint64_t *mask = cons_allowed(&r, &err);
        if (!mask) {
            /* past the automaton's size limits is the one allowed failure */
            FUZZ_CHECK(strstr(err.msg, "limit") != NULL);
            return;
        }
        int count = 0;
        for (int i = 0; i < V; i++) count += cons_bit(mask, i);
        FUZZ_CHECK(count > 0);
        int k = (step < (int)n_choice ? choice[step] : 0) % count, id = -1;
        for (int i = 0; i < V && id < 0; i++)
            if (cons_bit(mask, i) && k-- == 0) id = i;
        if (cons_is_eog(c, id)) {
            FUZZ_CHECK(cons_accepting(&r));
            break;
        }
        FUZZ_CHECK(cons_advance(&r, id, &err) == ULM_OK);
        FUZZ_CHECK(len + fz_lens[id] <= sizeof text);
        memcpy(text + len, fz_pieces[id], fz_lens[id]);
        len += fz_lens[id];
    }
    FUZZ_CHECK(cons_accepting(&r));
    FUZZ_CHECK(cons_matches(c, text, len) == 1);
}

int fuzz_constraint(const uint8_t *data, size_t size) {
    fz_load_vocab();
    const uint8_t *p = data, *end = data + size;
    size_t spec_len, input_len, n_choice;
    const uint8_t *spec = fz_next_part(&p, end, &spec_len), *input = fz_next_part(&p, end, &input_len);
    const uint8_t *choice = fz_next_part(&p, end, &n_choice);
    json_doc *d = NULL;
    ulm_error err;
    if (json_parse((const char *)spec, spec_len, &d, &err) != ULM_OK) return 0;
    const json_value *s = json_root(d);
    int checked = cons_check_spec(s, &err) == ULM_OK;
    constraint *c = NULL;
    if (cons_compile_spec(fz_vocab, s, (const char *)input, input_len, &c, &err) == ULM_OK) {
        /* what compiles passes the vocabulary-free check a task spec gets */
        FUZZ_CHECK(checked);
        fz_cons_walk(c, choice, n_choice);
        cons_free(c);
    }
    json_free(d);
    return 0;
}
FUZZ_ENTRY(fuzz_constraint)
