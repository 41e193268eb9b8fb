/* Tagged spans: an extractor's answer as the model writes it, one entity at a time in order
 * of appearance, and the JSON object the task answers with.
 *
 * Model text: SPAN US TAG, repeated with nothing between the items, US the byte 0x1F:
 *     "Ada Lovelace\x1fpAnalytical Engines\x1fo"
 * with tags {"p": "people", "o": "organizations", "l": "places"} is the answer
 *     {"people":["Ada Lovelace"],"organizations":["Analytical Engines"],"places":[]}
 * Every key is present, in the order "tags" lists them; each list keeps the order of
 * appearance and drops a string it already holds. No items is the empty text.
 *
 * With "space_before_spans": true every SPAN is written after one space:
 *     " Ada Lovelace\x1fp Analytical Engines\x1fo"
 * The idea: a byte-level BPE splits " Lovelace" inside the input and "Lovelace" (or, glued
 * to the tag before it, "pLovelace") differently, so without the space a model copies a name
 * by spelling it again in other tokens; with it (and an input that starts with a space, as the
 * instruction "<|in|> {input}<|out|>" gives) a span's tokens are the input's own and the tag
 * is a token of its own. Measured on the entity task it scored far lower (tasks/README.md,
 * "A space before each span"), so the shipped task leaves it off.
 *
 * Why not the JSON itself: with one list per key, the model reads the input once per key and
 * must recall which names it has already filed where; in input order each name is copied and
 * classified once, while it is fresh, and the constraint can make every span start after the
 * previous one ended (tasks/README.md measures the two forms side by side).
 *
 * The constraint (constraint.h, "type": "tagged_spans") allows exactly this text: each SPAN a
 * span of the input from a word start to a word end ("words_in_order" spans), never holding a
 * control character (so never US or a line break), each after the previous one; each TAG one
 * of the tags; at most max_items items. */
#ifndef ULM_TAGGED_SPANS_H
#define ULM_TAGGED_SPANS_H
#include <stddef.h>
#include "ulm.h"

struct json_value;

#define TAGGED_SEP 0x1F
#define TAGGED_MAX_TAGS 16
#define TAGGED_MAX_ITEMS 256

typedef struct tagged_form {
    int n_tags;
    char tag[TAGGED_MAX_TAGS];             /* printable ASCII, distinct */
    const char *key[TAGGED_MAX_TAGS];      /* the JSON keys (in the spec document) */
    size_t key_len[TAGGED_MAX_TAGS];
    int max_items;                         /* 1..TAGGED_MAX_ITEMS (default 32) */
    int space;                             /* "space_before_spans": one ' ' before each SPAN */
} tagged_form;

/* From a constraint spec {"type": "tagged_spans", "tags": {"p": "people", ...},
 * "max_items": 32, "space_before_spans": false}; the form points into spec, which must outlive
 * it. ULM_ERR_SPEC names what is wrong (an unknown key included). */
ulm_status tagged_form_parse(const struct json_value *spec, tagged_form *f, ulm_error *err);

/* Model text -> the canonical JSON answer (malloc'd, NUL-terminated). ULM_ERR_FORMAT when
 * text is not a sequence of SPAN US TAG items with known tags and non-empty spans. */
ulm_status tagged_to_json(const tagged_form *f, const char *text, size_t len, char **out, size_t *out_len,
                          ulm_error *err);

/* (input, JSON answer) -> the model text that stands for it, for training on answers given as
 * JSON. Each key's strings are looked up in the input in list order, each at word boundaries
 * after the previous one of its list; the items are then ordered by where they start.
 * ULM_ERR_FORMAT when the answer is not an object of string lists under the form's keys, a
 * string is not in the input (or holds a control character), two spans overlap, or there are
 * more than max_items. */
ulm_status tagged_from_json(const tagged_form *f, const char *input, size_t in_len, const char *json, size_t len,
                            char **out, size_t *out_len, ulm_error *err);

#endif
