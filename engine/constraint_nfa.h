/* Internal: the byte NFA builder the constraint front ends (regex, choices, JSON Schema,
 * input shapes) share. Thompson fragments; a fragment's states are the contiguous id range
 * [lo, hi) allocated while it was built, which is what makes cloning (for {m,n}) cheap. */
#ifndef ULM_CONSTRAINT_NFA_H
#define ULM_CONSTRAINT_NFA_H
#include <stddef.h>
#include <stdint.h>
#include "constraint.h"

typedef struct nfa_edge {
    int32_t to, next; /* next: the following edge of the same state, -1 ends */
    uint8_t lo, hi;   /* byte range, when !eps */
    uint8_t eps;
} nfa_edge;

typedef struct nfa_b {
    int32_t n, cap;       /* states */
    int32_t *head;        /* [cap] first edge of each state, -1 none */
    nfa_edge *e;
    int32_t ne, cape;
    size_t max_states;
    uint8_t excl[32];     /* bytes removed from every range added (JSON string mode) */
    int use_excl;
    int failed;           /* ULM_ERR_* of the first failure, 0 = fine */
    char why[200];
} nfa_b;

typedef struct frag { int32_t s, e, lo, hi; } frag;

void nb_init(nfa_b *b, size_t max_states);
void nb_free(nfa_b *b);
void nb_fail(nfa_b *b, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int32_t nb_state(nfa_b *b);
void nb_eps(nfa_b *b, int32_t from, int32_t to);
void nb_range(nfa_b *b, int32_t from, int lo, int hi, int32_t to); /* honours excl */

frag nb_empty(nfa_b *b);
frag nb_lit(nfa_b *b, const void *s, size_t n);
frag nb_byteset(nfa_b *b, const uint8_t set[32]); /* one byte from the set */
frag nb_cat(nfa_b *b, frag x, frag y);
frag nb_alt(nfa_b *b, frag x, frag y);
frag nb_opt(nfa_b *b, frag x);
frag nb_star(nfa_b *b, frag x);
frag nb_plus(nfa_b *b, frag x);
frag nb_clone(nfa_b *b, frag x);
/* x{m,n}; n < 0: unbounded. x must be the last fragment built. */
frag nb_repeat(nfa_b *b, frag x, int m, int n);
/* Any one valid UTF-8 character; ascii_excl: ASCII bytes left out (NULL: none). */
frag nb_utf8_char(nfa_b *b, const uint8_t *ascii_excl);
/* A set of literal strings as one deterministic trie. */
frag nb_lits(nfa_b *b, const char *const *s, const size_t *n, int count);
/* One character inside a JSON string: unescaped (not '"', '\\', control) or a short escape. */
frag nb_json_char(nfa_b *b);

static inline void bs_set(uint8_t *s, int c) { s[c >> 3] |= (uint8_t)(1u << (c & 7)); }
static inline int bs_has(const uint8_t *s, int c) { return (s[c >> 3] >> (c & 7)) & 1; }

/* Regex into the builder (regex.c). */
frag re_build(nfa_b *b, const char *re, size_t len);
/* JSON Schema into the builder (json_schema.c); strings_from_input: 0 no, 1 any substring,
 * 2 word spans. */
frag schema_build(nfa_b *b, const struct json_value *schema, const char *input, size_t input_len,
                  int strings_from_input);
/* Input shapes (constraint_input.c). */
frag lines_build(nfa_b *b, const char *input, size_t len, int n_breaks);
/* JSON string body: a substring of the input; nonempty leaves out the empty one. */
frag substr_build(nfa_b *b, const char *input, size_t len, int nonempty);
/* JSON string body: a span of the input from a word start to a word end. */
frag words_substr_build(nfa_b *b, const char *input, size_t len);
/* A JSON array of such spans, each after the previous one in the input (constraint_input.c). */
frag words_in_order_array_build(nfa_b *b, const char *input, size_t len, int min_items, int max_items);
/* Tagged spans (tagged_spans.h): SPAN 0x1F TAG items, spans in order of appearance. */
#define TAGGED_SEP_BYTE 0x1F
frag tagged_spans_build(nfa_b *b, const char *input, size_t len, const char *tags, int n_tags, int max_items, int space);

/* Finishes: the automaton for fragment f (constraint.c). Frees nothing of b. */
ulm_status cons_from_nfa(const cons_vocab *v, nfa_b *b, frag f, const cons_opts *o, constraint **out,
                         ulm_error *err);

#endif
