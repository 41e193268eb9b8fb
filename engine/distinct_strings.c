/* Scanner for the "distinct_strings" decode rule (see distinct_strings.h). */
#include "distinct_strings.h"
#include <stdlib.h>
#include <string.h>

void dstr_init(dstr_scan *s) { memset(s, 0, sizeof *s); }

void dstr_list_free(dstr_list *l) {
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int in_array(const dstr_scan *s) { return s->depth > 0 && (s->arrays >> (s->depth - 1) & 1); }

/* A value string closed at out[end] (its closing quote): 1 if it repeats an earlier value. */
static int close_value(dstr_scan *s, dstr_list *l, const char *out, size_t end) {
    size_t start = s->str_quote + 1, len = end - start;
    for (int i = 0; i < s->n_vals; i++)
        if (l->v[i].end - l->v[i].start == len && !memcmp(out + l->v[i].start, out + start, len)) return 1;
    if (s->n_vals >= l->cap) {
        int nc = l->cap ? l->cap * 2 : 16;
        dstr_span *nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv) { s->off = 1; return 0; } /* out of memory: stop checking, never fail the answer */
        l->v = nv;
        l->cap = nc;
    }
    l->v[s->n_vals++] = (dstr_span){start, end};
    return 0;
}

int dstr_feed(dstr_scan *s, dstr_list *l, const char *out, size_t from, size_t to) {
    for (size_t i = from; i < to && !s->off; i++) {
        char c = out[i];
        if (s->in_str) {
            if (s->esc) s->esc = 0;
            else if (c == '\\') s->esc = 1;
            else if (c == '"') {
                s->in_str = 0;
                if (!s->str_is_key && close_value(s, l, out, i)) return 1;
            }
            continue;
        }
        switch (c) {
        case '"':
            s->in_str = 1;
            s->str_quote = i;
            s->str_is_key = !in_array(s) && s->depth > 0 && s->expect_key;
            break;
        case '{':
        case '[':
            if (s->depth >= DSTR_MAX_DEPTH) { s->off = 1; break; }
            s->depth++;
            if (c == '[') s->arrays |= 1ull << (s->depth - 1);
            else s->arrays &= ~(1ull << (s->depth - 1));
            s->expect_key = c == '{';
            break;
        case '}':
        case ']':
            if (s->depth > 0) s->depth--;
            s->expect_key = 0;
            break;
        case ',': s->expect_key = !in_array(s) && s->depth > 0; break;
        case ':': s->expect_key = 0; break;
        default: break;
        }
    }
    return 0;
}
