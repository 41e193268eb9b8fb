/* Output constraints enforced while decoding: token masks from byte-level automata.
 *
 * A constraint is compiled to a byte NFA (regex, choice list, JSON Schema subset, or one of the
 * input-dependent shapes), run as a lazily built DFA, and checked against a vocabulary given as
 * token byte strings. Per decoding step it yields the set of allowed token ids (a bitset of
 * n_vocab bits) and then advances on the token chosen.
 *
 * Why it stays cheap with a 262k vocabulary:
 *   - the vocabulary is precomputed once into a byte trie in preorder; the mask of a DFA state
 *     is one linear walk of that trie, skipping every subtree whose prefix the DFA rejects;
 *   - the mask of each DFA state is cached (bounded memory), so a state seen again costs O(1);
 *   - DFA transitions use byte classes, so a state's table is small.
 *
 * Never partial output: every NFA state carries the least number of bytes needed to reach
 * acceptance using bytes that exist as single-byte tokens. A token is allowed only if the
 * state it leads to can still finish within the tokens left, so a run that starts feasible
 * always ends accepting; one that cannot start is ULM_ERR_CONSTRAINT at cons_begin.
 * End-of-generation tokens are allowed exactly when the automaton accepts.
 *
 * Constraint spec (JSON, as in a task spec's "constraint"):
 *   {"type": "choice", "choices": ["positive", "negative"]}
 *   {"type": "regex", "pattern": "[A-Z][a-z]+( [a-z]+)*\\."}
 *   {"type": "json_schema", "schema": {...}, "strings_from_input": false}
 *   {"type": "lines", "breaks": 2}      input words in order, exactly 2 of the separators "\n"
 *   {"type": "any_of", "of": [spec, ...]}   the union of the members' texts (nesting up to 8;
 *                                        each member keeps its own strings_from_input)
 *   {"type": "tagged_spans", "tags": {"p": "people", "l": "places"}, "max_items": 32}
 *                                        the input's word spans in order of appearance, each
 *                                        followed by 0x1F and a tag (tagged_spans.h); a task
 *                                        with it answers with the JSON object the tags name.
 *                                        Only as the whole constraint, not inside any_of.
 *   a json_schema constraint may add "distinct_strings": true: no string value repeats an
 *   earlier one. No automaton enforces that; the task runtime does, by rewinding (see
 *   distinct_strings.h). The constraint itself ignores it.
 *   any of them may add "leading_space": true (one optional space first, for SentencePiece
 *   vocabularies whose words start with a space; cons_strip_leading drops it from the text).
 *
 * JSON Schema subset (canonical, whitespace-free output): type object (properties emitted in
 * declared order, the ones in "required" mandatory, others optional), array (items, minItems,
 * maxItems), string (minLength, maxLength in code points, enum, const, pattern as a full
 * match of the subset regex over the unescaped characters, no '"', '\\' or control
 * characters from a pattern), integer (up to 15 digits), number (15-digit integer part and
 * fraction, 2-digit exponent), boolean, null; enum/const of any JSON values;
 * anyOf/oneOf; "type" as a list. Strings escape only with \" \\ \/ \b \f \n \r \t.
 * With strings_from_input, every free string value is a verbatim substring of the input
 * (code-point boundaries; characters needing escapes appear escaped; minLength >= 1 excludes
 * the empty string). "strings_from_input": "words" narrows that to spans from a word start to
 * a word end (word characters: ASCII letters, digits, anything non-ASCII), so a string is
 * never part of a word: what an extractor copies. "words_in_order" also makes the items of
 * an array of strings follow each other in the input: each starts after the previous one
 * ends (no repeats, no overlaps, in order of appearance), minItems/maxItems kept.
 *
 * Regex subset (full match): literals (UTF-8), escapes \d \w \s \D \W \S \n \t \r and escaped
 * punctuation, classes [a-z0-9_] and [^...] (ASCII ranges; single non-ASCII characters in
 * non-negated classes), '.', '*', '+', '?', {m}, {m,}, {m,n}, '|', groups (...) and (?:...),
 * and ^ / $ at the ends (ignored: the match is always whole). */
#ifndef ULM_CONSTRAINT_H
#define ULM_CONSTRAINT_H
#include <stddef.h>
#include <stdint.h>
#include "ulm.h"

struct json_value;

/* ---- vocabulary, precomputed once per tokenizer ---- */
typedef struct cons_vocab cons_vocab;

/* pieces[i] / lens[i]: the bytes token i stands for (empty: never allowed, unless it ends
 * generation). eog_ids: tokens that end generation. */
ulm_status cons_vocab_new(int n_vocab, const char *const *pieces, const uint32_t *lens,
                          const int32_t *eog_ids, int n_eog, cons_vocab **out, ulm_error *err);
void cons_vocab_free(cons_vocab *v);
int cons_vocab_size(const cons_vocab *v);
size_t cons_vocab_trie_nodes(const cons_vocab *v);

/* ---- compiled constraints ---- */
typedef struct constraint constraint;

typedef struct cons_opts {
    int leading_space;      /* accept one optional ' ' before the output */
    int strings_from_input; /* JSON Schema: free strings are substrings of the input (2: word spans, 3: in order) */
    size_t max_states;      /* NFA state limit; 0 = default (4M) */
    size_t mask_cache_bytes;/* bound on cached masks; 0 = default (256 MiB) */
} cons_opts;

ulm_status cons_compile_regex(const cons_vocab *v, const char *re, size_t len, const cons_opts *o,
                              constraint **out, ulm_error *err);
ulm_status cons_compile_choices(const cons_vocab *v, const char *const *choices, const size_t *lens,
                                int n, const cons_opts *o, constraint **out, ulm_error *err);
/* input is needed only with o->strings_from_input. */
ulm_status cons_compile_schema(const cons_vocab *v, const struct json_value *schema, const char *input,
                               size_t input_len, const cons_opts *o, constraint **out, ulm_error *err);
/* The input's whitespace-separated words, in order, joined by ' ' or '\n', exactly n_breaks '\n'. */
ulm_status cons_compile_lines(const cons_vocab *v, const char *input, size_t input_len, int n_breaks,
                              const cons_opts *o, constraint **out, ulm_error *err);
/* From a constraint spec object (see above). A spec error is ULM_ERR_SPEC. */
ulm_status cons_compile_spec(const cons_vocab *v, const struct json_value *spec, const char *input,
                             size_t input_len, constraint **out, ulm_error *err);
/* Checks a spec object without a vocabulary or an input (for task validation). */
ulm_status cons_check_spec(const struct json_value *spec, ulm_error *err);
/* 1 if the spec's automaton depends on the input (must be compiled per input). */
int cons_spec_needs_input(const struct json_value *spec);
void cons_free(constraint *c);

/* Whole-text check (no vocabulary needed beyond the compile): 1 if text is accepted. */
int cons_matches(constraint *c, const char *text, size_t len);
/* With leading_space, the text minus that space; else text itself. */
const char *cons_strip_leading(const constraint *c, const char *text, size_t *len);

/* ---- one decoding run ---- */
typedef struct cons_run {
    constraint *c;
    int state;     /* DFA state */
    int remaining; /* tokens still allowed */
    int n_tokens;
} cons_run;

/* ULM_ERR_CONSTRAINT when no output within max_tokens can satisfy the constraint. */
ulm_status cons_begin(constraint *c, int max_tokens, cons_run *r, ulm_error *err);
/* Allowed ids for the next token: n_vocab bits, word i>>6 bit i&63. Valid until the next call
 * on this constraint. NULL with err set if the automaton grew past its limits, or if no token
 * is allowed (remaining 0). */
const uint64_t *cons_allowed(cons_run *r, ulm_error *err);
/* Advances on token id; ULM_ERR_CONSTRAINT if it was not allowed. */
ulm_status cons_advance(cons_run *r, int32_t id, ulm_error *err);
int cons_accepting(const cons_run *r);
/* Accepting and no further byte possible: generation is complete without an EOS. */
int cons_final(cons_run *r);
int cons_is_eog(const constraint *c, int32_t id);

static inline int cons_bit(const uint64_t *mask, int32_t id) { return (int)((mask[id >> 6] >> (id & 63)) & 1); }
/* logits[i] = -INFINITY where the mask forbids i. */
void cons_apply_mask(const uint64_t *mask, float *logits, int n);

/* Statistics for benches and tests. */
typedef struct cons_stats { int n_nfa, n_dfa, n_classes, n_masks_cached; uint64_t n_walks, n_walk_nodes; } cons_stats;
void cons_get_stats(const constraint *c, cons_stats *s);

#endif
