/* The regular-expression subset of constraints, parsed straight into NFA fragments.
 * Grammar: alt := cat ('|' cat)* ; cat := rep* ; rep := atom ('*' | '+' | '?' | '{m,n}')* ;
 * atom := '(' ['?:'] alt ')' | '[' class ']' | '.' | '\' escape | UTF-8 character. */
#include <stdio.h>
#include <string.h>
#include "constraint_nfa.h"

#define RE_MAX_DEPTH 200

typedef struct re_parser {
    nfa_b *b;
    const uint8_t *p;
    size_t n, i;
    int depth;
} re_parser;

static frag re_alt(re_parser *r);

static int peek(const re_parser *r) { return r->i < r->n ? r->p[r->i] : -1; }

/* Length of the valid UTF-8 sequence at p[0..n), 0 if invalid. */
static int utf8_len(const uint8_t *p, size_t n) {
    uint8_t c = p[0];
    if (c < 0x80) return 1;
    int l = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!l || (size_t)l > n) return 0;
    for (int k = 1; k < l; k++)
        if ((p[k] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && p[1] < 0xA0) return 0;
    if (c == 0xED && p[1] > 0x9F) return 0;
    if (c == 0xF0 && p[1] < 0x90) return 0;
    if (c == 0xF4 && p[1] > 0x8F) return 0;
    return l;
}

static void set_range(uint8_t *s, int lo, int hi) {
    for (int c = lo; c <= hi; c++) bs_set(s, c);
}

/* \d \w \s into set; returns 1 if e named such a class (negated: *neg = 1). */
static int class_escape(int e, uint8_t *set, int *neg) {
    *neg = e == 'D' || e == 'W' || e == 'S';
    switch (e) {
    case 'd': case 'D': set_range(set, '0', '9'); return 1;
    case 'w': case 'W':
        set_range(set, 'a', 'z');
        set_range(set, 'A', 'Z');
        set_range(set, '0', '9');
        bs_set(set, '_');
        return 1;
    case 's': case 'S':
        bs_set(set, ' '); bs_set(set, '\t'); bs_set(set, '\n'); bs_set(set, '\r'); bs_set(set, '\f'); bs_set(set, '\v');
        return 1;
    }
    return 0;
}

/* The byte a single-character escape stands for, -1 if e is not one. */
static int char_escape(int e) {
    switch (e) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    case '0': return 0;
    }
    if (e >= 0x20 && e < 0x7F && !((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')))
        return e; /* escaped punctuation stands for itself */
    return -1;
}

static frag re_class(re_parser *r) {
    nfa_b *b = r->b;
    uint8_t set[32] = {0};
    const char *lits[64];
    size_t llen[64];
    int nl = 0, neg = 0, first = 1;
    if (peek(r) == '^') { neg = 1; r->i++; }
    for (;;) {
        int c = peek(r);
        if (c < 0) { nb_fail(b, ULM_ERR_SPEC, "regex: unterminated [ class"); return nb_empty(b); }
        if (c == ']' && !first) { r->i++; break; }
        first = 0;
        int lo;
        if (c == '\\') {
            r->i++;
            int e = peek(r);
            if (e < 0) { nb_fail(b, ULM_ERR_SPEC, "regex: trailing backslash"); return nb_empty(b); }
            r->i++;
            int eneg;
            uint8_t tmp[32] = {0};
            if (class_escape(e, tmp, &eneg)) {
                if (eneg) { nb_fail(b, ULM_ERR_UNSUPPORTED, "regex: \\%c inside a class is not supported", e); return nb_empty(b); }
                for (int k = 0; k < 32; k++) set[k] |= tmp[k];
                continue;
            }
            lo = char_escape(e);
            if (lo < 0) { nb_fail(b, ULM_ERR_SPEC, "regex: unknown escape \\%c", e); return nb_empty(b); }
        } else if (c >= 0x80) {
            int l = utf8_len(r->p + r->i, r->n - r->i);
            if (!l) { nb_fail(b, ULM_ERR_UTF8, "regex: invalid UTF-8"); return nb_empty(b); }
            if (r->i + (size_t)l < r->n && r->p[r->i + (size_t)l] == '-' && r->i + (size_t)l + 1 < r->n &&
                r->p[r->i + (size_t)l + 1] != ']') {
                nb_fail(b, ULM_ERR_UNSUPPORTED, "regex: ranges of non-ASCII characters are not supported");
                return nb_empty(b);
            }
            if (nl == 64) { nb_fail(b, ULM_ERR_UNSUPPORTED, "regex: over 64 non-ASCII characters in a class"); return nb_empty(b); }
            lits[nl] = (const char *)r->p + r->i;
            llen[nl++] = (size_t)l;
            r->i += (size_t)l;
            continue;
        } else {
            lo = c;
            r->i++;
        }
        int hi = lo;
        if (peek(r) == '-' && r->i + 1 < r->n && r->p[r->i + 1] != ']') {
            r->i++;
            int c2 = peek(r);
            r->i++;
            if (c2 == '\\') {
                if (r->i >= r->n) { nb_fail(b, ULM_ERR_SPEC, "regex: trailing backslash"); return nb_empty(b); }
                c2 = char_escape(r->p[r->i++]);
            }
            if (c2 < 0 || c2 >= 0x80) { nb_fail(b, ULM_ERR_UNSUPPORTED, "regex: class ranges must be ASCII"); return nb_empty(b); }
            hi = c2;
            if (hi < lo) { nb_fail(b, ULM_ERR_SPEC, "regex: reversed range in a class"); return nb_empty(b); }
        }
        set_range(set, lo, hi);
    }
    if (neg) {
        if (nl) { nb_fail(b, ULM_ERR_UNSUPPORTED, "regex: non-ASCII characters in a negated class are not supported"); return nb_empty(b); }
        return nb_utf8_char(b, set);
    }
    int any_ascii = 0;
    for (int k = 0; k < 32; k++) any_ascii |= set[k];
    if (!nl) return nb_byteset(b, set);
    frag f = nb_lits(b, lits, llen, nl);
    if (any_ascii) f = nb_alt(b, f, nb_byteset(b, set));
    return f;
}

static frag re_atom(re_parser *r) {
    nfa_b *b = r->b;
    int c = peek(r);
    if (c == '(') {
        r->i++;
        if (r->i + 1 < r->n && r->p[r->i] == '?' && r->p[r->i + 1] == ':') r->i += 2;
        else if (peek(r) == '?') { nb_fail(b, ULM_ERR_UNSUPPORTED, "regex: (? groups other than (?: are not supported"); return nb_empty(b); }
        if (++r->depth > RE_MAX_DEPTH) { nb_fail(b, ULM_ERR_CONSTRAINT, "regex: groups nested over %d deep", RE_MAX_DEPTH); return nb_empty(b); }
        frag f = re_alt(r);
        r->depth--;
        if (peek(r) != ')') { nb_fail(b, ULM_ERR_SPEC, "regex: missing )"); return f; }
        r->i++;
        return f;
    }
    if (c == '[') {
        r->i++;
        return re_class(r);
    }
    if (c == '.') {
        r->i++;
        uint8_t ex[32] = {0};
        bs_set(ex, '\n');
        return nb_utf8_char(b, ex);
    }
    if (c == '*' || c == '+' || c == '?' || c == '{') {
        nb_fail(b, ULM_ERR_SPEC, "regex: '%c' at offset %zu has nothing to repeat", c, r->i);
        return nb_empty(b);
    }
    if (c == '\\') {
        r->i++;
        int e = peek(r);
        if (e < 0) { nb_fail(b, ULM_ERR_SPEC, "regex: trailing backslash"); return nb_empty(b); }
        r->i++;
        uint8_t set[32] = {0};
        int neg;
        if (class_escape(e, set, &neg)) return neg ? nb_utf8_char(b, set) : nb_byteset(b, set);
        int ch = char_escape(e);
        if (ch < 0) { nb_fail(b, ULM_ERR_SPEC, "regex: unknown escape \\%c", e); return nb_empty(b); }
        uint8_t one = (uint8_t)ch;
        return nb_lit(b, &one, 1);
    }
    int l = utf8_len(r->p + r->i, r->n - r->i);
    if (!l) { nb_fail(b, ULM_ERR_UTF8, "regex: invalid UTF-8 at offset %zu", r->i); r->i = r->n; return nb_empty(b); }
    frag f = nb_lit(b, r->p + r->i, (size_t)l);
    r->i += (size_t)l;
    return f;
}

static int read_int(re_parser *r, int *out) {
    int have = 0;
    long v = 0;
    while (peek(r) >= '0' && peek(r) <= '9') {
        v = v * 10 + (peek(r) - '0');
        if (v > 1000000) v = 1000000;
        r->i++;
        have = 1;
    }
    *out = (int)v;
    return have;
}

static frag re_rep(re_parser *r) {
    frag f = re_atom(r);
    for (;;) {
        int c = peek(r);
        if (r->b->failed) return f;
        if (c == '*') { r->i++; f = nb_star(r->b, f); }
        else if (c == '+') { r->i++; f = nb_plus(r->b, f); }
        else if (c == '?') { r->i++; f = nb_opt(r->b, f); }
        else if (c == '{') {
            r->i++;
            int m, n;
            if (!read_int(r, &m)) { nb_fail(r->b, ULM_ERR_SPEC, "regex: bad {m,n}"); return f; }
            n = m;
            if (peek(r) == ',') {
                r->i++;
                if (!read_int(r, &n)) n = -1;
            }
            if (peek(r) != '}') { nb_fail(r->b, ULM_ERR_SPEC, "regex: bad {m,n}"); return f; }
            r->i++;
            f = nb_repeat(r->b, f, m, n);
        } else return f;
    }
}

static frag re_cat(re_parser *r) {
    frag f;
    int have = 0;
    while (r->i < r->n && !r->b->failed) {
        int c = peek(r);
        if (c == '|' || c == ')') break;
        if (c == '$' && r->i + 1 == r->n && r->depth == 0) { r->i++; break; } /* trailing anchor */
        frag g = re_rep(r);
        f = have ? nb_cat(r->b, f, g) : g;
        have = 1;
    }
    return have ? f : nb_empty(r->b);
}

static frag re_alt(re_parser *r) {
    frag f = re_cat(r);
    while (peek(r) == '|' && !r->b->failed) {
        r->i++;
        frag g = re_cat(r);
        f = nb_alt(r->b, f, g);
    }
    return f;
}

frag re_build(nfa_b *b, const char *re, size_t len) {
    re_parser r = {b, (const uint8_t *)re, len, 0, 0};
    if (len && re[0] == '^') r.i = 1; /* the match is whole anyway */
    frag f = re_alt(&r);
    if (!b->failed && r.i < r.n) nb_fail(b, ULM_ERR_SPEC, "regex: unbalanced ) at offset %zu", r.i);
    return f;
}
