/* Input-dependent constraint shapes: "the input's words with exactly N line breaks" and
 * "a verbatim substring of the input" (a suffix automaton over code points). */
#include <stdlib.h>
#include <string.h>
#include "constraint_nfa.h"

#define MAX_BREAKS 256
#define MAX_SUBSTR_INPUT (1 << 20)

static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Tracks j = 0..n_breaks (line breaks used so far) of the word chain; between words a ' '
 * stays on the track and a '\n' moves to the next one; only the last track accepts. */
frag lines_build(nfa_b *b, const char *input, size_t len, int n_breaks) {
    if (n_breaks < 0 || n_breaks > MAX_BREAKS) {
        nb_fail(b, ULM_ERR_SPEC, "lines constraint: breaks must be 0..%d", MAX_BREAKS);
        return nb_empty(b);
    }
    const uint8_t *p = (const uint8_t *)input;
    size_t nw = 0;
    for (size_t i = 0; i < len;) {
        while (i < len && is_space(p[i])) i++;
        if (i < len) nw++;
        while (i < len && !is_space(p[i])) i++;
    }
    int32_t lo = b->n, s = nb_state(b), e = nb_state(b);
    if (nw == 0) {
        if (n_breaks == 0) nb_eps(b, s, e); /* nothing to repeat: only the empty output */
        return (frag){s, e, lo, b->n};
    }
    int32_t prev_end[MAX_BREAKS + 1];
    for (int j = 0; j <= n_breaks; j++) prev_end[j] = -1;
    size_t w = 0;
    for (size_t i = 0; i < len && !b->failed;) {
        while (i < len && is_space(p[i])) i++;
        if (i >= len) break;
        size_t ws = i;
        while (i < len && !is_space(p[i])) i++;
        int32_t cur_end[MAX_BREAKS + 1];
        for (int j = 0; j <= n_breaks; j++) {
            frag f = nb_lit(b, p + ws, i - ws);
            cur_end[j] = f.e;
            if (w == 0) {
                if (j == 0) nb_eps(b, s, f.s);
            } else {
                nb_range(b, prev_end[j], ' ', ' ', f.s);
                if (j > 0) nb_range(b, prev_end[j - 1], '\n', '\n', f.s);
            }
        }
        memcpy(prev_end, cur_end, sizeof(int32_t) * (size_t)(n_breaks + 1));
        w++;
    }
    if (!b->failed) nb_eps(b, prev_end[n_breaks], e);
    return (frag){s, e, lo, b->n};
}

/* ---- suffix automaton over code points ---- */
typedef struct sam_tr { uint32_t cp; int32_t to, next; } sam_tr;
typedef struct sam {
    int32_t *len, *link, *head;
    int32_t n;
    sam_tr *tr;
    int32_t ntr, captr;
} sam;

static int32_t sam_get(const sam *a, int32_t s, uint32_t cp) {
    for (int32_t k = a->head[s]; k >= 0; k = a->tr[k].next)
        if (a->tr[k].cp == cp) return k;
    return -1;
}

static int sam_add_tr(sam *a, int32_t s, uint32_t cp, int32_t to) {
    if (a->ntr == a->captr) {
        int32_t nc = a->captr ? a->captr * 2 : 64;
        sam_tr *t = realloc(a->tr, (size_t)nc * sizeof *t);
        if (!t) return -1;
        a->tr = t;
        a->captr = nc;
    }
    a->tr[a->ntr] = (sam_tr){cp, to, a->head[s]};
    a->head[s] = a->ntr++;
    return 0;
}

/* Decodes one UTF-8 character; 0 if invalid. */
static int utf8_dec(const uint8_t *p, size_t n, uint32_t *cp) {
    uint8_t c = p[0];
    if (c < 0x80) { *cp = c; return 1; }
    int l = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!l || (size_t)l > n) return 0;
    uint32_t v = c & (0x7F >> l);
    for (int k = 1; k < l; k++) {
        if ((p[k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (p[k] & 0x3F);
    }
    if ((l == 3 && v < 0x800) || (l == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return l;
}

/* The bytes of cp inside a JSON string (escaped as the canonical writer does); 0 if the
 * character needs a \u escape, which the constraint does not produce. */
static int json_bytes(uint32_t cp, uint8_t *o) {
    switch (cp) {
    case '"': o[0] = '\\'; o[1] = '"'; return 2;
    case '\\': o[0] = '\\'; o[1] = '\\'; return 2;
    case '\n': o[0] = '\\'; o[1] = 'n'; return 2;
    case '\t': o[0] = '\\'; o[1] = 't'; return 2;
    case '\r': o[0] = '\\'; o[1] = 'r'; return 2;
    case '\b': o[0] = '\\'; o[1] = 'b'; return 2;
    case '\f': o[0] = '\\'; o[1] = 'f'; return 2;
    }
    if (cp < 0x20) return 0;
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | (cp >> 6)); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (cp >> 12)); o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (cp >> 18)); o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* from --cp--> to, as the bytes of cp inside a JSON string (a chain of new states between);
 * no edge for a character that would need a \u escape. */
static void json_char_edge(nfa_b *b, int32_t from, uint32_t cp, int32_t to) {
    uint8_t o[4];
    int n = json_bytes(cp, o);
    if (!n) return;
    for (int j = 0; j < n - 1; j++) {
        int32_t nx = nb_state(b);
        nb_range(b, from, o[j], o[j], nx);
        from = nx;
    }
    nb_range(b, from, o[n - 1], o[n - 1], to);
}

/* Word characters for word spans: ASCII letters and digits, and every non-ASCII character
 * (the letters of names such as Chloé or Łukasz). */
static int is_word_cp(uint32_t cp) {
    return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || (cp >= '0' && cp <= '9') || cp >= 0x80;
}

/* A span of the input that starts where a word starts and ends where a word ends (so never
 * part of a word, never empty). The NFA has one state per character boundary of the input:
 * reading advances one character, the start has an epsilon edge to every word start, and
 * every word end has one to the accepting state: linear size, unlike listing the spans. */
frag words_substr_build(nfa_b *b, const char *input, size_t len) {
    if (len > MAX_SUBSTR_INPUT) {
        nb_fail(b, ULM_ERR_CONTEXT, "input over %d bytes for a substring constraint", MAX_SUBSTR_INPUT);
        return nb_empty(b);
    }
    const uint8_t *p = (const uint8_t *)input;
    int32_t lo = b->n, s = nb_state(b), e = nb_state(b);
    int32_t prev = nb_state(b); /* boundary before the first character */
    int prev_word = 0;
    for (size_t i = 0; i < len && !b->failed;) {
        uint32_t cp;
        int l = utf8_dec(p + i, len - i, &cp);
        if (!l) { nb_fail(b, ULM_ERR_UTF8, "input is not valid UTF-8 (byte %zu)", i); break; }
        i += (size_t)l;
        int word = is_word_cp(cp);
        if (word && !prev_word) nb_eps(b, s, prev);      /* a word starts here */
        if (!word && prev_word) nb_eps(b, prev, e);      /* a word ended here */
        int32_t next = nb_state(b);
        json_char_edge(b, prev, cp, next);
        prev = next;
        prev_word = word;
    }
    if (prev_word && !b->failed) nb_eps(b, prev, e); /* the input ends in a word */
    return (frag){s, e, lo, b->n};
}

/* The input's characters, decoded once, and per character boundary 1 where a word starts and
 * 2 where one ends (malloc'd; *nch characters, *words words). -1 after nb_fail when the input
 * is too long, not UTF-8, or memory runs out. */
static int word_bounds(nfa_b *b, const char *input, size_t len, uint32_t **cps_out, uint8_t **flags_out, int *nch_out,
                       int *words_out) {
    if (len > MAX_SUBSTR_INPUT) {
        nb_fail(b, ULM_ERR_CONTEXT, "input over %d bytes for a substring constraint", MAX_SUBSTR_INPUT);
        return -1;
    }
    const uint8_t *p = (const uint8_t *)input;
    int nch = 0, words = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int l = utf8_dec(p + i, len - i, &cp);
        if (!l) {
            nb_fail(b, ULM_ERR_UTF8, "input is not valid UTF-8 (byte %zu)", i);
            return -1;
        }
        i += (size_t)l, nch++;
    }
    uint8_t *flags = calloc((size_t)nch + 1, 1);
    uint32_t *cps = malloc(((size_t)nch + 1) * sizeof *cps);
    if (!flags || !cps) {
        free(flags), free(cps);
        nb_fail(b, ULM_ERR_NOMEM, "out of memory building a substring constraint");
        return -1;
    }
    int prev_word = 0, ci = 0;
    for (size_t i = 0; i < len; ci++) {
        uint32_t cp;
        i += (size_t)utf8_dec(p + i, len - i, &cp);
        cps[ci] = cp;
        int word = is_word_cp(cp);
        if (word && !prev_word) flags[ci] |= 1, words++;
        if (!word && prev_word) flags[ci] |= 2;
        prev_word = word;
    }
    if (prev_word) flags[nch] |= 2;
    *cps_out = cps, *flags_out = flags, *nch_out = nch, *words_out = words;
    return 0;
}

/* A JSON array of word spans in order of appearance: each item starts after the previous one
 * ends, so no item repeats or overlaps another; min_items..max_items items (max < 0: no
 * limit). Output bytes: ["span","span"], no spaces, as array_frag writes arrays.
 * One copy of the states per item number c (only as many as the input has words):
 *   k[c][i]   skipping: the item starts at a word start at boundary >= i (eps k -> k+1);
 *   in[c][i]  inside the item's span at character boundary i (reads the input's bytes);
 *   q[c][i]   after the closing quote of an item that ended at word end i: ']' ends the
 *             array, ',"' enters k[c+1][i], so the next item starts after this one.
 * Linear in the input for a fixed max_items. */
frag words_in_order_array_build(nfa_b *b, const char *input, size_t len, int min_items, int max_items) {
    uint32_t *cps;
    uint8_t *flags;
    int nch, words;
    if (word_bounds(b, input, len, &cps, &flags, &nch, &words)) return nb_empty(b);
    int copies = max_items < 0 || max_items > words ? words : max_items;
    int32_t lo = b->n, s = nb_state(b), e = nb_state(b), open = nb_state(b);
    nb_range(b, s, '[', '[', open);
    if (min_items == 0) nb_range(b, open, ']', ']', e);
    int32_t base = b->n, per = 3 * (nch + 1); /* copy c: k at base + c*per, in at +nch+1, q at +2(nch+1) */
    for (int64_t t = 0; t < (int64_t)copies * per && !b->failed; t++) nb_state(b);
#define K(c, i) (base + (c) * per + (i))
#define IN(c, i) (base + (c) * per + (nch + 1) + (i))
#define Q(c, i) (base + (c) * per + 2 * (nch + 1) + (i))
    if (copies > 0 && !b->failed) nb_range(b, open, '"', '"', K(0, 0));
    for (int c = 0; c < copies && !b->failed; c++) {
        for (int i = 0; i < nch; i++) nb_eps(b, K(c, i), K(c, i + 1));
        for (int i = 0; i <= nch; i++) {
            if (flags[i] & 1) nb_eps(b, K(c, i), IN(c, i));
            if (flags[i] & 2) {
                nb_range(b, IN(c, i), '"', '"', Q(c, i));
                if (c + 1 >= min_items) nb_range(b, Q(c, i), ']', ']', e);
                if (c + 1 < copies) {
                    int32_t comma = nb_state(b);
                    nb_range(b, Q(c, i), ',', ',', comma);
                    nb_range(b, comma, '"', '"', K(c + 1, i));
                }
            }
        }
        for (int i = 0; i < nch && !b->failed; i++) json_char_edge(b, IN(c, i), cps[i], IN(c, i + 1));
    }
#undef K
#undef IN
#undef Q
    free(flags), free(cps);
    return (frag){s, e, lo, b->n};
}

/* from --cp--> to as the character's own UTF-8 bytes; no edge for a control character (a
 * tagged span never holds one, so never the separator or a line break). */
static void raw_char_edge(nfa_b *b, int32_t from, uint32_t cp, int32_t to) {
    if (cp < 0x20 || cp == 0x7F) return;
    uint8_t o[4];
    int n = cp < 0x80 ? (o[0] = (uint8_t)cp, 1) : json_bytes(cp, o);
    for (int j = 0; j < n - 1; j++) {
        int32_t nx = nb_state(b);
        nb_range(b, from, o[j], o[j], nx);
        from = nx;
    }
    nb_range(b, from, o[n - 1], o[n - 1], to);
}

/* Tagged spans (tagged_spans.h): items SPAN US TAG in order of appearance, as the array above
 * but with raw bytes and a tag after each span. States per item number c:
 *   k[c][i]   skipping: the span starts at a word start at boundary >= i (with space, after
 *             one ' ' that the model writes before it);
 *   in[c][i]  inside the span at character boundary i;
 *   t[c][i]   after the separator of a span that ended at word end i: a tag byte ends the
 *             item in a[c][i], which accepts and goes on to k[c+1][i].
 * The empty text (no items) accepts. */
frag tagged_spans_build(nfa_b *b, const char *input, size_t len, const char *tags, int n_tags, int max_items, int space) {
    uint32_t *cps;
    uint8_t *flags;
    int nch, words;
    if (word_bounds(b, input, len, &cps, &flags, &nch, &words)) return nb_empty(b);
    int copies = max_items > words ? words : max_items;
    int32_t lo = b->n, s = nb_state(b), e = nb_state(b);
    nb_eps(b, s, e);
    int32_t base = b->n, per = 4 * (nch + 1); /* copy c: k, in, t, a at base + c*per + {0,1,2,3}(nch+1) */
    for (int64_t t = 0; t < (int64_t)copies * per && !b->failed; t++) nb_state(b);
#define K(c, i) (base + (c) * per + (i))
#define IN(c, i) (base + (c) * per + (nch + 1) + (i))
#define T(c, i) (base + (c) * per + 2 * (nch + 1) + (i))
#define A(c, i) (base + (c) * per + 3 * (nch + 1) + (i))
    if (copies > 0 && !b->failed) nb_eps(b, s, K(0, 0));
    for (int c = 0; c < copies && !b->failed; c++) {
        for (int i = 0; i < nch; i++) nb_eps(b, K(c, i), K(c, i + 1));
        for (int i = 0; i <= nch; i++) {
            if ((flags[i] & 1) && space) nb_range(b, K(c, i), ' ', ' ', IN(c, i));
            else if (flags[i] & 1) nb_eps(b, K(c, i), IN(c, i));
            if (flags[i] & 2) {
                nb_range(b, IN(c, i), TAGGED_SEP_BYTE, TAGGED_SEP_BYTE, T(c, i));
                for (int t = 0; t < n_tags; t++) nb_range(b, T(c, i), (uint8_t)tags[t], (uint8_t)tags[t], A(c, i));
                nb_eps(b, A(c, i), e);
                if (c + 1 < copies) nb_eps(b, A(c, i), K(c + 1, i));
            }
        }
        for (int i = 0; i < nch && !b->failed; i++) raw_char_edge(b, IN(c, i), cps[i], IN(c, i + 1));
    }
#undef K
#undef IN
#undef T
#undef A
    free(flags), free(cps);
    return (frag){s, e, lo, b->n};
}

frag substr_build(nfa_b *b, const char *input, size_t len, int nonempty) {
    if (len > MAX_SUBSTR_INPUT) {
        nb_fail(b, ULM_ERR_CONTEXT, "input over %d bytes for a substring constraint", MAX_SUBSTR_INPUT);
        return nb_empty(b);
    }
    const uint8_t *p = (const uint8_t *)input;
    size_t cap = 2 * len + 2;
    sam a = {0};
    a.len = malloc(cap * sizeof *a.len);
    a.link = malloc(cap * sizeof *a.link);
    a.head = malloc(cap * sizeof *a.head);
    if (!a.len || !a.link || !a.head) {
        nb_fail(b, ULM_ERR_NOMEM, "out of memory building a substring constraint");
        goto out;
    }
    a.n = 1;
    a.len[0] = 0;
    a.link[0] = -1;
    a.head[0] = -1;
    int32_t last = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int l = utf8_dec(p + i, len - i, &cp);
        if (!l) { nb_fail(b, ULM_ERR_UTF8, "input is not valid UTF-8 (byte %zu)", i); goto out; }
        i += (size_t)l;
        int32_t cur = a.n++;
        a.len[cur] = a.len[last] + 1;
        a.head[cur] = -1;
        int32_t q = last;
        while (q >= 0 && sam_get(&a, q, cp) < 0) {
            if (sam_add_tr(&a, q, cp, cur)) goto oom;
            q = a.link[q];
        }
        if (q < 0) {
            a.link[cur] = 0;
        } else {
            int32_t r = a.tr[sam_get(&a, q, cp)].to;
            if (a.len[q] + 1 == a.len[r]) {
                a.link[cur] = r;
            } else {
                int32_t cl = a.n++;
                a.len[cl] = a.len[q] + 1;
                a.link[cl] = a.link[r];
                a.head[cl] = -1;
                for (int32_t k = a.head[r]; k >= 0; k = a.tr[k].next)
                    if (sam_add_tr(&a, cl, a.tr[k].cp, a.tr[k].to)) goto oom;
                int32_t k;
                while (q >= 0 && (k = sam_get(&a, q, cp)) >= 0 && a.tr[k].to == r) {
                    a.tr[k].to = cl;
                    q = a.link[q];
                }
                a.link[r] = cl;
                a.link[cur] = cl;
            }
        }
        last = cur;
    }
    {
        /* every SAM state is the end of some substring: all accept (the root is the empty one) */
        int32_t lo = b->n, base = b->n;
        for (int32_t s = 0; s < a.n; s++) nb_state(b);
        int32_t e = nb_state(b);
        for (int32_t s = 0; s < a.n && !b->failed; s++) {
            if (s > 0 || !nonempty) nb_eps(b, base + s, e);
            for (int32_t k = a.head[s]; k >= 0; k = a.tr[k].next) json_char_edge(b, base + s, a.tr[k].cp, base + a.tr[k].to);
        }
        free(a.len); free(a.link); free(a.head); free(a.tr);
        return (frag){base, e, lo, b->n};
    }
oom:
    nb_fail(b, ULM_ERR_NOMEM, "out of memory building a substring constraint");
out:
    free(a.len); free(a.link); free(a.head); free(a.tr);
    return nb_empty(b);
}
