/* The "distinct_strings" decode rule: no JSON string value may repeat an earlier one.
 *
 * An extractor that files one span under two keys ("Acme" as an organization and a place)
 * makes an error no byte automaton can rule out without remembering every span it emitted.
 * So the task runtime follows the output with this scanner instead: when a value string
 * closes and equals an earlier value, it rewinds to the token that opened that string and
 * bans that token there, and the model picks again from that point (task.c).
 *
 * The scanner reads canonical JSON as the constraint emits it, one byte at a time. Its state
 * is a small plain struct, so the runtime snapshots it per token and restores it on a rewind;
 * the spans of the completed values live in a separate list that a restored state simply
 * truncates (n_vals). Values compare as their escaped bytes, which is exact for output in the
 * constraint's canonical escaping. */
#ifndef ULM_DISTINCT_STRINGS_H
#define ULM_DISTINCT_STRINGS_H
#include <stddef.h>
#include <stdint.h>

#define DSTR_MAX_DEPTH 64

typedef struct dstr_span {
    size_t start, end; /* the string's bytes between its quotes: output[start, end) */
} dstr_span;

typedef struct dstr_scan {
    uint64_t arrays;  /* bit d: the container at depth d (1-based) is an array */
    int depth;        /* open containers; past DSTR_MAX_DEPTH the scanner stops checking */
    int expect_key;   /* in an object, the next string is a key */
    int in_str, esc, str_is_key;
    size_t str_quote; /* output offset of the open string's opening quote */
    int n_vals;       /* completed value strings: the first n_vals entries of the span list */
    int off;          /* 1: stopped checking (too deep, or the list could not grow) */
} dstr_scan;

typedef struct dstr_list {
    dstr_span *v;
    int cap;
} dstr_list;

void dstr_init(dstr_scan *s);
/* Feeds out[from, to). Returns 1 when a value string closed there that equals an earlier
 * value (s->str_quote is then its opening quote, and the scan stops at that byte), else 0. */
int dstr_feed(dstr_scan *s, dstr_list *l, const char *out, size_t from, size_t to);
void dstr_list_free(dstr_list *l);

#endif
