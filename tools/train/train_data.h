/* Training data: the tokenizer seam, the SFT prompt format, JSONL examples and batches. */
#ifndef ULM_TRAIN_DATA_H
#define ULM_TRAIN_DATA_H
#include <stddef.h>
#include <stdint.h>
#include "train_model.h"
#include "ulm.h"
#include "ulm_file.h"

/* The tokenizer the trainer sees. Swapping in the real one (engine tok_encode over a .ulm
 * vocabulary, or the BPE trained by tools/train/bpe_train) means filling this struct. */
typedef struct train_tok {
    int n_vocab;
    int bos, sep, eos; /* "<|in|>", "<|out|>", "<|end|>" in the byte vocabulary */
    int prefix;        /* the tokenizer's BOS when it asks for one (tokenizer.add_bos), else -1 */
    const char *input_prefix; /* text before every input (the task's instruction), NULL: none */
    const struct tagged_form *tagged; /* answers are trained as tagged spans (engine/tagged_spans.h), NULL: as given */
    /* Encodes plain text (no specials); returns the number of ids (writes at most cap), -1 on error. */
    int (*encode)(const struct train_tok *t, const char *s, size_t len, int32_t *out, int cap);
    /* Adds the tokenizer.* keys so the engine can load the vocabulary from the .ulm. */
    int (*write_meta)(const struct train_tok *t, ulmw *w);
    void *impl;
} train_tok;

/* Byte-level fallback: ids 0..255 are bytes, then <|in|> 256, <|out|> 257, <|end|> 258; no BOS. */
void train_tok_bytes(train_tok *t);
/* The engine's tokenizer over the vocabulary stored in any .ulm (the BPE trained for the
 * tasks, or a family tokenizer); its tokenizer.* keys are copied into the models written.
 * Specials: <|in|> (else the BOS), <|out|> (required), <|end|> (else the EOS). */
ulm_status train_tok_from_ulm(train_tok *t, const char *path, ulm_error *err);
void train_tok_free(train_tok *t); /* no-op for the byte tokenizer */

/* The SFT prompt format, shared with the task runtime:
 *     [BOS] <|in|> input_prefix input <|out|> output <|end|>
 * BOS only when the tokenizer asks for one (add_bos); <|end|> is the EOS when the vocabulary
 * has no <|end|>. With the task BPE (tools/train/bpe_train.h) this is exactly what the task
 * runtime encodes for "instruction": "<|in|>{input}<|out|>", or "<|in|> {input}<|out|>" with
 * input_prefix " " (train_input_prefix reads it from a spec) (task_encode_prompt in
 * engine/task.h: BOS, the instruction's specials parsed, the input as plain text), so a task
 * model sees the same ids in training and at inference (tests/test_train_engine.c).
 * The prompt a model sees at inference is everything up to and including <|out|>; the loss
 * is on predicting each output token and <|end|>. Returns the number of ids written to out
 * (at most cap), or -1 if they do not fit. */
int train_format_prompt(const train_tok *t, const char *input, size_t in_len, int32_t *out, int cap);
/* The input prefix a task's instruction asks for: the text between "<|in|>" and "{input}" of
 * an instruction "<|in|>PREFIX{input}<|out|>" (PREFIX plain text, at most cap-1 bytes). Any
 * other instruction is not the trainer's format: -1 with a message. */
int train_input_prefix(const char *instruction, char *prefix, size_t cap, char *msg, size_t msg_cap);
/* prefix followed by input[0..in_len), NUL-terminated (malloc'd; NULL when out of memory):
 * the input as the task's prompt holds it. */
char *train_prefixed_input(const char *prefix, const char *input, size_t in_len);
/* The full example; *n_prompt receives the prompt length. */
int train_format_example(const train_tok *t, const char *input, size_t in_len, const char *output,
                         size_t out_len, int32_t *out, int cap, int *n_prompt);

/* One tokenized example: ids[0..len), loss on ids[n_prompt..len). */
typedef struct train_example {
    int32_t *ids;
    int len, n_prompt;
} train_example;

typedef struct train_set {
    train_example *ex;
    int n, cap;
    size_t n_tokens;
    int n_skipped; /* longer than the context */
} train_set;

/* Parses one JSON object line holding string fields "input" and "output" (other fields are
 * ignored). Returns 0 and malloc'ed NUL-terminated copies, or -1 with a message. */
int train_parse_jsonl_line(const char *line, size_t len, char **input, char **output, char *msg, size_t msg_cap);
/* A JSON answer as the tagged-spans text that stands for it (malloc'd), or NULL with a
 * message (out of memory, or an answer the form cannot write). */
struct tagged_form;
char *train_tagged_output(const struct tagged_form *f, const char *input, const char *output, char *msg, size_t msg_cap);
/* Reads a JSONL file (answers rewritten as tok->tagged asks); examples longer than max_len tokens are counted in n_skipped. */
ulm_status train_set_load(train_set *s, const char *path, const train_tok *tok, int max_len, ulm_error *err);
int train_set_add(train_set *s, const int32_t *ids, int len, int n_prompt);
void train_set_free(train_set *s);

/* The examples of step `step`: batch_size examples from a per-epoch permutation of the set
 * seeded by (seed, epoch), so a batch is a pure function of (seed, step) and resuming needs
 * no data cursor. Fills b with those examples laid end to end. */
int train_make_batch(const train_set *s, uint64_t seed, int step, int batch_size, train_batch *b);
/* Examples [first, first + count) in order (validation). */
int train_make_batch_range(const train_set *s, int first, int count, train_batch *b);
#endif
