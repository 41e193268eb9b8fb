/* Constraint engine core: NFA builder, vocabulary trie, lazy DFA, cached token masks. */
#include "constraint.h"
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "constraint_nfa.h"
#include "ulm_file.h"

#define DIST_INF INT32_MAX
#define T_UNKNOWN (-2)
#define T_DEAD (-1)
#define DEFAULT_MAX_STATES (4u << 20)
#define DEFAULT_CACHE_BYTES ((size_t)256 << 20)
#define MAX_DFA_STATES (1 << 21)

/* ================= NFA builder ================= */

void nb_init(nfa_b *b, size_t max_states) {
    memset(b, 0, sizeof *b);
    b->max_states = max_states ? max_states : DEFAULT_MAX_STATES;
}

void nb_free(nfa_b *b) {
    free(b->head);
    free(b->e);
    memset(b, 0, sizeof *b);
}

void nb_fail(nfa_b *b, int code, const char *fmt, ...) {
    if (b->failed) return;
    b->failed = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->why, sizeof b->why, fmt, ap);
    va_end(ap);
}

int32_t nb_state(nfa_b *b) {
    if (b->failed) return 0;
    if ((size_t)b->n >= b->max_states) {
        nb_fail(b, ULM_ERR_CONSTRAINT, "constraint automaton too large (over %zu states)", b->max_states);
        return 0;
    }
    if (b->n == b->cap) {
        int32_t nc = b->cap ? b->cap * 2 : 256;
        int32_t *h = realloc(b->head, (size_t)nc * sizeof *h);
        if (!h) { nb_fail(b, ULM_ERR_NOMEM, "out of memory building a constraint"); return 0; }
        b->head = h;
        b->cap = nc;
    }
    b->head[b->n] = -1;
    return b->n++;
}

static void nb_edge(nfa_b *b, int32_t from, int32_t to, int lo, int hi, int eps) {
    if (b->failed) return;
    if (b->ne == b->cape) {
        int32_t nc = b->cape ? b->cape * 2 : 512;
        nfa_edge *e = realloc(b->e, (size_t)nc * sizeof *e);
        if (!e) { nb_fail(b, ULM_ERR_NOMEM, "out of memory building a constraint"); return; }
        b->e = e;
        b->cape = nc;
    }
    nfa_edge *x = &b->e[b->ne];
    x->to = to;
    x->lo = (uint8_t)lo;
    x->hi = (uint8_t)hi;
    x->eps = (uint8_t)eps;
    x->next = b->head[from];
    b->head[from] = b->ne++;
}

void nb_eps(nfa_b *b, int32_t from, int32_t to) { nb_edge(b, from, to, 0, 0, 1); }

void nb_range(nfa_b *b, int32_t from, int lo, int hi, int32_t to) {
    if (!b->use_excl) { nb_edge(b, from, to, lo, hi, 0); return; }
    int c = lo;
    while (c <= hi) { /* split around excluded bytes */
        while (c <= hi && bs_has(b->excl, c)) c++;
        if (c > hi) break;
        int s = c;
        while (c <= hi && !bs_has(b->excl, c)) c++;
        nb_edge(b, from, to, s, c - 1, 0);
    }
}

static frag mkfrag(int32_t s, int32_t e, int32_t lo, int32_t hi) {
    frag f = {s, e, lo, hi};
    return f;
}
static int32_t mn(int32_t a, int32_t b) { return a < b ? a : b; }

frag nb_empty(nfa_b *b) {
    int32_t s = nb_state(b);
    return mkfrag(s, s, s, b->n);
}

frag nb_lit(nfa_b *b, const void *p, size_t n) {
    const uint8_t *s = p;
    int32_t lo = b->n, cur = nb_state(b);
    int32_t first = cur;
    for (size_t i = 0; i < n && !b->failed; i++) {
        int32_t nx = nb_state(b);
        nb_range(b, cur, s[i], s[i], nx);
        cur = nx;
    }
    return mkfrag(first, cur, lo, b->n);
}

frag nb_byteset(nfa_b *b, const uint8_t set[32]) {
    int32_t lo = b->n, s = nb_state(b), e = nb_state(b);
    int c = 0;
    while (c < 256) {
        while (c < 256 && !bs_has(set, c)) c++;
        if (c >= 256) break;
        int st = c;
        while (c < 256 && bs_has(set, c)) c++;
        nb_range(b, s, st, c - 1, e);
    }
    return mkfrag(s, e, lo, b->n);
}

frag nb_cat(nfa_b *b, frag x, frag y) {
    nb_eps(b, x.e, y.s);
    return mkfrag(x.s, y.e, mn(x.lo, y.lo), b->n);
}

frag nb_alt(nfa_b *b, frag x, frag y) {
    int32_t s = nb_state(b), e = nb_state(b);
    nb_eps(b, s, x.s);
    nb_eps(b, s, y.s);
    nb_eps(b, x.e, e);
    nb_eps(b, y.e, e);
    return mkfrag(s, e, mn(x.lo, y.lo), b->n);
}

frag nb_opt(nfa_b *b, frag x) {
    int32_t s = nb_state(b), e = nb_state(b);
    nb_eps(b, s, x.s);
    nb_eps(b, s, e);
    nb_eps(b, x.e, e);
    return mkfrag(s, e, x.lo, b->n);
}

frag nb_star(nfa_b *b, frag x) {
    int32_t s = nb_state(b), e = nb_state(b);
    nb_eps(b, s, x.s);
    nb_eps(b, s, e);
    nb_eps(b, x.e, x.s);
    nb_eps(b, x.e, e);
    return mkfrag(s, e, x.lo, b->n);
}

frag nb_plus(nfa_b *b, frag x) {
    int32_t s = nb_state(b), e = nb_state(b);
    nb_eps(b, s, x.s);
    nb_eps(b, x.e, x.s);
    nb_eps(b, x.e, e);
    return mkfrag(s, e, x.lo, b->n);
}

frag nb_clone(nfa_b *b, frag x) {
    int32_t off = b->n - x.lo;
    for (int32_t i = x.lo; i < x.hi && !b->failed; i++) nb_state(b);
    if (b->failed) return x;
    for (int32_t i = x.lo; i < x.hi && !b->failed; i++)
        for (int32_t k = b->head[i]; k >= 0; k = b->e[k].next) {
            nfa_edge ed = b->e[k]; /* copy: nb_edge may move the array */
            int32_t to = (ed.to >= x.lo && ed.to < x.hi) ? ed.to + off : ed.to;
            nb_edge(b, i + off, to, ed.lo, ed.hi, ed.eps);
        }
    return mkfrag(x.s + off, x.e + off, x.lo + off, x.hi + off);
}

frag nb_repeat(nfa_b *b, frag x, int m, int n) {
    if (m < 0 || (n >= 0 && n < m)) { nb_fail(b, ULM_ERR_SPEC, "bad repetition {%d,%d}", m, n); return x; }
    if (m > 100000 || n > 100000) { nb_fail(b, ULM_ERR_CONSTRAINT, "repetition count over 100000"); return x; }
    int32_t lo = x.lo;
    int copies = n < 0 ? m + 1 : n;
    if (copies == 0) {
        frag e = nb_empty(b);
        return mkfrag(e.s, e.e, lo, b->n);
    }
    frag *c = malloc((size_t)copies * sizeof *c);
    if (!c) { nb_fail(b, ULM_ERR_NOMEM, "out of memory building a constraint"); return x; }
    c[0] = x;
    /* every copy before any connection, so clones carry no outside edges */
    for (int i = 1; i < copies && !b->failed; i++) c[i] = nb_clone(b, x);
    if (b->failed) { free(c); return x; }
    int32_t s = nb_state(b), e = nb_state(b), cur = s;
    for (int i = 0; i < m; i++) { nb_eps(b, cur, c[i].s); cur = c[i].e; }
    if (n < 0) {
        frag st = nb_star(b, c[m]);
        nb_eps(b, cur, st.s);
        cur = st.e;
        nb_eps(b, cur, e);
    } else {
        /* optional copies nested, so after k characters only copy k is live */
        nb_eps(b, cur, e);
        for (int i = m; i < n; i++) {
            nb_eps(b, cur, c[i].s);
            cur = c[i].e;
            nb_eps(b, cur, e);
        }
    }
    free(c);
    return mkfrag(s, e, lo, b->n);
}

frag nb_utf8_char(nfa_b *b, const uint8_t *ascii_excl) {
    int32_t lo = b->n, s = nb_state(b), e = nb_state(b);
    uint8_t set[32] = {0};
    for (int c = 0; c < 128; c++)
        if (!ascii_excl || !bs_has(ascii_excl, c)) bs_set(set, c);
    int c = 0;
    while (c < 128) {
        while (c < 128 && !bs_has(set, c)) c++;
        if (c >= 128) break;
        int st = c;
        while (c < 128 && bs_has(set, c)) c++;
        nb_range(b, s, st, c - 1, e);
    }
    int32_t t1 = nb_state(b); /* one continuation byte left */
    nb_range(b, t1, 0x80, 0xBF, e);
    nb_range(b, s, 0xC2, 0xDF, t1);
    int32_t t2 = nb_state(b); /* two left */
    nb_range(b, t2, 0x80, 0xBF, t1);
    int32_t a = nb_state(b), d = nb_state(b);
    nb_range(b, s, 0xE0, 0xE0, a);
    nb_range(b, a, 0xA0, 0xBF, t1);
    nb_range(b, s, 0xE1, 0xEC, t2);
    nb_range(b, s, 0xED, 0xED, d);
    nb_range(b, d, 0x80, 0x9F, t1);
    nb_range(b, s, 0xEE, 0xEF, t2);
    int32_t t3 = nb_state(b), f0 = nb_state(b), f4 = nb_state(b);
    nb_range(b, t3, 0x80, 0xBF, t2);
    nb_range(b, s, 0xF0, 0xF0, f0);
    nb_range(b, f0, 0x90, 0xBF, t2);
    nb_range(b, s, 0xF1, 0xF3, t3);
    nb_range(b, s, 0xF4, 0xF4, f4);
    nb_range(b, f4, 0x80, 0x8F, t2);
    return mkfrag(s, e, lo, b->n);
}

frag nb_lits(nfa_b *b, const char *const *s, const size_t *n, int count) {
    int32_t lo = b->n, root = nb_state(b), end = nb_state(b);
    for (int i = 0; i < count && !b->failed; i++) {
        int32_t cur = root;
        for (size_t k = 0; k < n[i] && !b->failed; k++) {
            uint8_t c = (uint8_t)s[i][k];
            int32_t nx = -1;
            for (int32_t j = b->head[cur]; j >= 0; j = b->e[j].next)
                if (!b->e[j].eps && b->e[j].lo == c && b->e[j].hi == c) { nx = b->e[j].to; break; }
            if (nx < 0) {
                nx = nb_state(b);
                nb_range(b, cur, c, c, nx);
            }
            cur = nx;
        }
        int have = 0;
        for (int32_t j = b->failed ? -1 : b->head[cur]; j >= 0; j = b->e[j].next)
            if (b->e[j].eps && b->e[j].to == end) have = 1;
        if (!have) nb_eps(b, cur, end);
    }
    return mkfrag(root, end, lo, b->n);
}

frag nb_json_char(nfa_b *b) {
    uint8_t ex[32] = {0};
    for (int c = 0; c < 0x20; c++) bs_set(ex, c);
    bs_set(ex, '"');
    bs_set(ex, '\\');
    frag u = nb_utf8_char(b, ex);
    int32_t x = nb_state(b), y = nb_state(b);
    static const char esc[] = "\"\\/bfnrt";
    int32_t bs = nb_state(b);
    nb_range(b, x, '\\', '\\', bs);
    for (const char *p = esc; *p; p++) nb_range(b, bs, (uint8_t)*p, (uint8_t)*p, y);
    return nb_alt(b, u, mkfrag(x, y, x, b->n));
}

/* ================= vocabulary ================= */

struct cons_vocab {
    int n_vocab, n_words;
    char *blob;        /* all pieces */
    uint64_t *off;     /* [n_vocab+1] */
    uint64_t *eog;     /* mask of end-of-generation ids */
    int has_eog;
    /* trie in preorder: node i has byte, depth (1 = child of the root), skip = index after
     * its subtree, tok = first token ending here (more via tok_next) */
    int32_t n_nodes, max_depth;
    uint8_t *nbyte;
    uint16_t *ndepth;
    int32_t *nskip, *ntok, *tok_next;
    uint8_t single[32]; /* bytes that exist as a one-byte token */
};

static int piece_cmp(const cons_vocab *v, int32_t a, int32_t b) {
    size_t la = v->off[a + 1] - v->off[a], lb = v->off[b + 1] - v->off[b];
    int r = memcmp(v->blob + v->off[a], v->blob + v->off[b], la < lb ? la : lb);
    if (r) return r;
    return la < lb ? -1 : la > lb ? 1 : (a < b ? -1 : a > b);
}

static void sort_ids(const cons_vocab *v, int32_t *a, int32_t *tmp, int n) {
    if (n < 2) return;
    int h = n / 2;
    sort_ids(v, a, tmp, h);
    sort_ids(v, a + h, tmp, n - h);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = piece_cmp(v, a[i], a[j]) <= 0 ? a[i++] : a[j++];
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, (size_t)n * sizeof *a);
}

void cons_vocab_free(cons_vocab *v) {
    if (!v) return;
    free(v->blob);
    free(v->off);
    free(v->eog);
    free(v->nbyte);
    free(v->ndepth);
    free(v->nskip);
    free(v->ntok);
    free(v->tok_next);
    free(v);
}

int cons_vocab_size(const cons_vocab *v) { return v->n_vocab; }
size_t cons_vocab_trie_nodes(const cons_vocab *v) { return (size_t)v->n_nodes; }

ulm_status cons_vocab_new(int n_vocab, const char *const *pieces, const uint32_t *lens,
                          const int32_t *eog_ids, int n_eog, cons_vocab **out, ulm_error *err) {
    *out = NULL;
    if (n_vocab <= 0 || !pieces || !lens) return ulm_set_error(err, ULM_ERR_ARG, "constraint vocabulary: no tokens");
    cons_vocab *v = calloc(1, sizeof *v);
    if (!v) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    v->n_vocab = n_vocab;
    v->n_words = (n_vocab + 63) / 64;
    v->off = malloc(((size_t)n_vocab + 1) * sizeof *v->off);
    v->eog = calloc((size_t)v->n_words, sizeof *v->eog);
    v->tok_next = malloc((size_t)n_vocab * sizeof *v->tok_next);
    uint64_t total = 0;
    if (v->off && v->eog && v->tok_next) {
        for (int i = 0; i < n_vocab; i++) {
            v->off[i] = total;
            total += lens[i] <= 65535 ? lens[i] : 0; /* longer tokens are never allowed */
        }
        v->off[n_vocab] = total;
    }
    v->blob = malloc(total + 1);
    int32_t *ids = malloc((size_t)n_vocab * sizeof *ids), *tmp = malloc((size_t)n_vocab * sizeof *tmp);
    v->nbyte = malloc(total + 1);
    v->ndepth = malloc((total + 1) * sizeof *v->ndepth);
    v->nskip = malloc((total + 1) * sizeof *v->nskip);
    v->ntok = malloc((total + 1) * sizeof *v->ntok);
    if (!v->off || !v->eog || !v->tok_next || !v->blob || !ids || !tmp || !v->nbyte || !v->ndepth || !v->nskip ||
        !v->ntok) {
        free(ids);
        free(tmp);
        cons_vocab_free(v);
        return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory for a %d-token constraint vocabulary", n_vocab);
    }
    for (int i = 0; i < n_eog; i++)
        if (eog_ids[i] >= 0 && eog_ids[i] < n_vocab) {
            v->eog[eog_ids[i] >> 6] |= 1ull << (eog_ids[i] & 63);
            v->has_eog = 1;
        }
    int n = 0;
    for (int i = 0; i < n_vocab; i++) {
        size_t l = v->off[i + 1] - v->off[i];
        if (l) memcpy(v->blob + v->off[i], pieces[i], l);
        v->tok_next[i] = -1;
        if (l && !cons_bit(v->eog, i)) ids[n++] = i;
        if (l == 1 && !cons_bit(v->eog, i)) bs_set(v->single, (uint8_t)pieces[i][0]);
    }
    sort_ids(v, ids, tmp, n);
    /* trie in preorder from the sorted pieces: shared prefixes share nodes */
    int32_t *path = tmp; /* reuse: depth <= 65535 < n is not guaranteed, so size by total */
    int32_t *pathbuf = malloc((total + 1) * sizeof *pathbuf);
    if (!pathbuf) {
        free(ids);
        free(tmp);
        cons_vocab_free(v);
        return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    }
    path = pathbuf;
    int32_t sd = 0, nn = 0, prev = -1;
    for (int k = 0; k < n; k++) {
        int32_t id = ids[k];
        const uint8_t *p = (const uint8_t *)v->blob + v->off[id];
        int32_t len = (int32_t)(v->off[id + 1] - v->off[id]);
        int32_t lcp = 0;
        if (prev >= 0) {
            const uint8_t *q = (const uint8_t *)v->blob + v->off[prev];
            int32_t lq = (int32_t)(v->off[prev + 1] - v->off[prev]);
            while (lcp < len && lcp < lq && p[lcp] == q[lcp]) lcp++;
        }
        while (sd > lcp) v->nskip[path[--sd]] = nn;
        for (int32_t d = sd; d < len; d++) {
            v->nbyte[nn] = p[d];
            v->ndepth[nn] = (uint16_t)(d + 1);
            v->ntok[nn] = -1;
            path[sd++] = nn++;
        }
        int32_t node = path[len - 1];
        v->tok_next[id] = v->ntok[node];
        v->ntok[node] = id;
        if (len > v->max_depth) v->max_depth = len;
        prev = id;
    }
    while (sd > 0) v->nskip[path[--sd]] = nn;
    v->n_nodes = nn;
    free(pathbuf);
    free(ids);
    free(tmp);
    *out = v;
    return ULM_OK;
}

/* ================= compiled constraint: lazy DFA ================= */

struct constraint {
    const cons_vocab *v;
    int leading_space;
    /* NFA, compressed rows */
    int32_t nn, start, accept;
    int32_t *boff, *beoff; /* byte edges of state s: [boff[s], boff[s+1]) */
    uint8_t *blo, *bhi;
    int32_t *bto;
    int32_t *eoff, *eto; /* epsilon edges */
    int32_t *dist;       /* bytes to acceptance, single-byte-token alphabet */
    uint8_t bclass[256], crep[256];
    int ncls;
    /* DFA */
    int32_t nd, capd, d0;
    int64_t *dset;  /* [capd] offset into pool */
    int32_t *dn, *ddist, *dworst;
    uint8_t *dacc;
    int8_t *dfinal; /* -1 unknown */
    uint64_t **dmask;
    int32_t *trans; /* [capd * ncls] */
    int32_t *pool;
    size_t npool, cappool;
    int32_t *hash;
    size_t hcap;
    /* scratch */
    uint32_t *mark;
    uint32_t gen;
    int32_t *list, *stk;
    int32_t *dstack; /* [max_depth + 1] */
    uint64_t *scratch;
    size_t cache_bytes, cache_limit;
    int n_cached;
    uint64_t n_walks, n_walk_nodes;
    int failed;
    char why[200];
};

static uint64_t set_hash(const int32_t *s, int32_t n) {
    uint64_t h = 1469598103934665603ull;
    for (int32_t i = 0; i < n; i++) h = (h ^ (uint32_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static int int_cmp(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void cfail(constraint *c, const char *msg) {
    if (!c->failed) snprintf(c->why, sizeof c->why, "%s", msg);
    c->failed = 1;
}

static int hash_grow(constraint *c) {
    size_t nc = c->hcap ? c->hcap * 2 : 1024;
    int32_t *h = malloc(nc * sizeof *h);
    if (!h) return -1;
    for (size_t i = 0; i < nc; i++) h[i] = -1;
    for (int32_t d = 0; d < c->nd; d++) {
        size_t i = set_hash(c->pool + c->dset[d], c->dn[d]) & (nc - 1);
        while (h[i] >= 0) i = (i + 1) & (nc - 1);
        h[i] = d;
    }
    free(c->hash);
    c->hash = h;
    c->hcap = nc;
    return 0;
}

static int dfa_grow(constraint *c) {
    int32_t nc = c->capd ? c->capd * 2 : 256;
    if (nc > MAX_DFA_STATES) return -1;
    int64_t *ds = realloc(c->dset, (size_t)nc * sizeof *ds);
    if (ds) c->dset = ds;
    int32_t *dn = realloc(c->dn, (size_t)nc * sizeof *dn);
    if (dn) c->dn = dn;
    int32_t *dd = realloc(c->ddist, (size_t)nc * sizeof *dd);
    if (dd) c->ddist = dd;
    int32_t *dw = realloc(c->dworst, (size_t)nc * sizeof *dw);
    if (dw) c->dworst = dw;
    uint8_t *da = realloc(c->dacc, (size_t)nc);
    if (da) c->dacc = da;
    int8_t *df = realloc(c->dfinal, (size_t)nc);
    if (df) c->dfinal = df;
    uint64_t **dm = realloc(c->dmask, (size_t)nc * sizeof *dm);
    if (dm) c->dmask = dm;
    int32_t *tr = realloc(c->trans, (size_t)nc * (size_t)c->ncls * sizeof *tr);
    if (tr) c->trans = tr;
    if (!ds || !dn || !dd || !dw || !da || !df || !dm || !tr) return -1;
    c->capd = nc;
    return 0;
}

/* Adds the epsilon closure of x to c->list (marked with c->gen). */
static void closure_add(constraint *c, int32_t x, int32_t *n) {
    if (c->mark[x] == c->gen) return;
    int32_t sp = 0;
    c->mark[x] = c->gen;
    c->stk[sp++] = x;
    while (sp) {
        int32_t s = c->stk[--sp];
        c->list[(*n)++] = s;
        for (int32_t k = c->eoff[s]; k < c->eoff[s + 1]; k++) {
            int32_t t = c->eto[k];
            if (c->mark[t] != c->gen) {
                c->mark[t] = c->gen;
                c->stk[sp++] = t;
            }
        }
    }
}

static void next_gen(constraint *c) {
    if (++c->gen == 0) {
        memset(c->mark, 0, (size_t)c->nn * sizeof *c->mark);
        c->gen = 1;
    }
}

/* The DFA state for the set in c->list[0..n), created if new; -1 if dead (empty, or no way to
 * accept), -3 on failure. */
static int32_t dfa_intern(constraint *c, int32_t n) {
    if (n == 0) return T_DEAD;
    int32_t best = DIST_INF;
    int acc = 0;
    for (int32_t i = 0; i < n; i++) {
        if (c->dist[c->list[i]] < best) best = c->dist[c->list[i]];
        if (c->list[i] == c->accept) acc = 1;
    }
    if (best == DIST_INF) return T_DEAD;
    qsort(c->list, (size_t)n, sizeof *c->list, int_cmp);
    if ((size_t)(c->nd + 1) * 2 > c->hcap && hash_grow(c)) { cfail(c, "out of memory in the constraint DFA"); return -3; }
    size_t i = set_hash(c->list, n) & (c->hcap - 1);
    for (; c->hash[i] >= 0; i = (i + 1) & (c->hcap - 1)) {
        int32_t d = c->hash[i];
        if (c->dn[d] == n && !memcmp(c->pool + c->dset[d], c->list, (size_t)n * sizeof *c->list)) return d;
    }
    if (c->nd == c->capd && dfa_grow(c)) { cfail(c, "constraint DFA too large"); return -3; }
    if (c->npool + (size_t)n > c->cappool) {
        size_t nc = c->cappool ? c->cappool * 2 : 4096;
        while (nc < c->npool + (size_t)n) nc *= 2;
        if (nc > ((size_t)1 << 28)) { cfail(c, "constraint DFA too large"); return -3; }
        int32_t *p = realloc(c->pool, nc * sizeof *p);
        if (!p) { cfail(c, "out of memory in the constraint DFA"); return -3; }
        c->pool = p;
        c->cappool = nc;
    }
    int32_t d = c->nd++;
    memcpy(c->pool + c->npool, c->list, (size_t)n * sizeof *c->list);
    c->dset[d] = (int64_t)c->npool;
    c->npool += (size_t)n;
    c->dn[d] = n;
    c->ddist[d] = best;
    c->dacc[d] = (uint8_t)acc;
    c->dfinal[d] = -1;
    c->dmask[d] = NULL;
    c->dworst[d] = 0;
    for (int k = 0; k < c->ncls; k++) c->trans[(size_t)d * c->ncls + k] = T_UNKNOWN;
    c->hash[i] = d;
    return d;
}

static int32_t dstep_slow(constraint *c, int32_t d, uint8_t byte) {
    if (c->failed) return T_DEAD;
    next_gen(c);
    int32_t n = 0;
    const int32_t *set = c->pool + c->dset[d];
    int32_t m = c->dn[d];
    for (int32_t i = 0; i < m; i++) {
        int32_t s = set[i];
        for (int32_t k = c->boff[s]; k < c->boff[s + 1]; k++)
            if (byte >= c->blo[k] && byte <= c->bhi[k]) closure_add(c, c->bto[k], &n);
    }
    int32_t t = dfa_intern(c, n);
    if (t == -3) return T_DEAD;
    /* intern may have moved the table: index afresh */
    c->trans[(size_t)d * c->ncls + c->bclass[byte]] = t;
    return t;
}

static inline int32_t dstep(constraint *c, int32_t d, uint8_t byte) {
    int32_t t = c->trans[(size_t)d * c->ncls + c->bclass[byte]];
    return t != T_UNKNOWN ? t : dstep_slow(c, d, byte);
}

void cons_free(constraint *c) {
    if (!c) return;
    for (int32_t d = 0; d < c->nd; d++) free(c->dmask[d]);
    free(c->boff);
    free(c->blo);
    free(c->bhi);
    free(c->bto);
    free(c->eoff);
    free(c->eto);
    free(c->dist);
    free(c->dset);
    free(c->dn);
    free(c->ddist);
    free(c->dworst);
    free(c->dacc);
    free(c->dfinal);
    free(c->dmask);
    free(c->trans);
    free(c->pool);
    free(c->hash);
    free(c->mark);
    free(c->list);
    free(c->stk);
    free(c->dstack);
    free(c->scratch);
    free(c);
}

/* dist[s]: fewest bytes from s to acceptance, using only bytes that are one-token pieces, so
 * that many tokens always suffice. Layered 0-1 BFS over reversed edges. */
static int compute_dist(constraint *c, const uint8_t single[32]) {
    int32_t nn = c->nn;
    int32_t nb = c->boff[nn], ne = c->eoff[nn];
    int32_t *roff = calloc((size_t)nn + 1, sizeof *roff), *rfrom = malloc(((size_t)nb + ne + 1) * sizeof *rfrom);
    uint8_t *rcost = malloc((size_t)nb + ne + 1);
    int32_t *cur = malloc((size_t)nn * sizeof *cur), *nxt = malloc((size_t)nn * sizeof *nxt);
    int ok = roff && rfrom && rcost && cur && nxt;
    if (ok) {
        uint8_t usable[256]; /* a byte range usable iff it holds a single-token byte */
        for (int b = 0; b < 256; b++) usable[b] = (uint8_t)bs_has(single, b);
        for (int32_t s = 0; s < nn; s++) {
            for (int32_t k = c->boff[s]; k < c->boff[s + 1]; k++) roff[c->bto[k] + 1]++;
            for (int32_t k = c->eoff[s]; k < c->eoff[s + 1]; k++) roff[c->eto[k] + 1]++;
        }
        for (int32_t s = 0; s < nn; s++) roff[s + 1] += roff[s];
        int32_t *fill = cur; /* reuse as write cursors */
        memcpy(fill, roff, (size_t)nn * sizeof *fill);
        for (int32_t s = 0; s < nn; s++) {
            for (int32_t k = c->boff[s]; k < c->boff[s + 1]; k++) {
                int u = 0;
                for (int b = c->blo[k]; b <= c->bhi[k] && !u; b++) u = usable[b];
                int32_t p = fill[c->bto[k]]++;
                rfrom[p] = s;
                rcost[p] = u ? 1 : 2; /* 2: not traversable */
            }
            for (int32_t k = c->eoff[s]; k < c->eoff[s + 1]; k++) {
                int32_t p = fill[c->eto[k]]++;
                rfrom[p] = s;
                rcost[p] = 0;
            }
        }
        for (int32_t s = 0; s < nn; s++) c->dist[s] = DIST_INF;
        int32_t nc = 0, d = 0;
        c->dist[c->accept] = 0;
        cur[nc++] = c->accept;
        while (nc) {
            for (int32_t i = 0; i < nc; i++) /* the layer's epsilon closure, backwards */
                for (int32_t k = roff[cur[i]]; k < roff[cur[i] + 1]; k++)
                    if (rcost[k] == 0 && c->dist[rfrom[k]] > d) {
                        c->dist[rfrom[k]] = d;
                        cur[nc++] = rfrom[k];
                    }
            int32_t nx = 0;
            for (int32_t i = 0; i < nc; i++)
                for (int32_t k = roff[cur[i]]; k < roff[cur[i] + 1]; k++)
                    if (rcost[k] == 1 && c->dist[rfrom[k]] > d + 1) {
                        c->dist[rfrom[k]] = d + 1;
                        nxt[nx++] = rfrom[k];
                    }
            int32_t *t = cur;
            cur = nxt;
            nxt = t;
            nc = nx;
            d++;
        }
    }
    free(roff);
    free(rfrom);
    free(rcost);
    free(cur);
    free(nxt);
    return ok ? 0 : -1;
}

ulm_status cons_from_nfa(const cons_vocab *v, nfa_b *b, frag f, const cons_opts *o, constraint **out,
                         ulm_error *err) {
    *out = NULL;
    if (!b->failed && o && o->leading_space) {
        frag sp = nb_opt(b, nb_lit(b, " ", 1));
        f = nb_cat(b, sp, f);
    }
    if (b->failed) return ulm_set_error(err, (ulm_status)b->failed, "%s", b->why);
    constraint *c = calloc(1, sizeof *c);
    if (!c) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    c->v = v;
    c->leading_space = o && o->leading_space;
    c->cache_limit = o && o->mask_cache_bytes ? o->mask_cache_bytes : DEFAULT_CACHE_BYTES;
    int32_t nn = c->nn = b->n;
    c->start = f.s;
    c->accept = f.e;
    int32_t nbe = 0, nee = 0;
    for (int32_t k = 0; k < b->ne; k++) {
        if (b->e[k].eps) nee++;
        else nbe++;
    }
    c->boff = calloc((size_t)nn + 1, sizeof *c->boff);
    c->eoff = calloc((size_t)nn + 1, sizeof *c->eoff);
    c->blo = malloc((size_t)nbe + 1);
    c->bhi = malloc((size_t)nbe + 1);
    c->bto = malloc(((size_t)nbe + 1) * sizeof *c->bto);
    c->eto = malloc(((size_t)nee + 1) * sizeof *c->eto);
    c->dist = malloc((size_t)nn * sizeof *c->dist);
    c->mark = calloc((size_t)nn, sizeof *c->mark);
    c->list = malloc((size_t)nn * sizeof *c->list);
    c->stk = malloc((size_t)nn * sizeof *c->stk);
    c->dstack = malloc(((size_t)v->max_depth + 1) * sizeof *c->dstack);
    c->scratch = malloc((size_t)v->n_words * sizeof *c->scratch);
    if (!c->boff || !c->eoff || !c->blo || !c->bhi || !c->bto || !c->eto || !c->dist || !c->mark || !c->list ||
        !c->stk || !c->dstack || !c->scratch) {
        cons_free(c);
        return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory compiling a constraint");
    }
    for (int32_t s = 0; s < nn; s++)
        for (int32_t k = b->head[s]; k >= 0; k = b->e[k].next) {
            if (b->e[k].eps) c->eoff[s + 1]++;
            else c->boff[s + 1]++;
        }
    for (int32_t s = 0; s < nn; s++) {
        c->boff[s + 1] += c->boff[s];
        c->eoff[s + 1] += c->eoff[s];
    }
    uint8_t bound[257] = {0};
    for (int32_t s = 0; s < nn; s++) {
        int32_t pb = c->boff[s], pe = c->eoff[s];
        for (int32_t k = b->head[s]; k >= 0; k = b->e[k].next) {
            const nfa_edge *e = &b->e[k];
            if (e->eps) {
                c->eto[pe++] = e->to;
            } else {
                c->blo[pb] = e->lo;
                c->bhi[pb] = e->hi;
                c->bto[pb++] = e->to;
                bound[e->lo] = 1;
                bound[e->hi + 1] = 1;
            }
        }
    }
    /* byte classes: bytes no edge boundary separates behave alike everywhere */
    int cls = -1;
    for (int x = 0; x < 256; x++) {
        if (x == 0 || bound[x]) c->crep[++cls] = (uint8_t)x;
        c->bclass[x] = (uint8_t)cls;
    }
    c->ncls = cls + 1;
    if (compute_dist(c, v->single)) {
        cons_free(c);
        return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory compiling a constraint");
    }
    c->gen = 0;
    next_gen(c);
    int32_t n = 0;
    closure_add(c, c->start, &n);
    if (hash_grow(c) || dfa_grow(c)) {
        cons_free(c);
        return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory compiling a constraint");
    }
    c->d0 = dfa_intern(c, n);
    if (c->failed) {
        ulm_set_error(err, ULM_ERR_NOMEM, "%s", c->why);
        cons_free(c);
        return ULM_ERR_NOMEM;
    }
    *out = c;
    return ULM_OK;
}

/* ================= masks ================= */

/* One preorder pass over the vocabulary trie from DFA state d, skipping dead subtrees.
 * budget >= 0: also drop tokens after which acceptance needs more than budget tokens. */
static void walk(constraint *c, int32_t d, int32_t budget, uint64_t *mask, int32_t *worst) {
    const cons_vocab *v = c->v;
    memset(mask, 0, (size_t)v->n_words * sizeof *mask);
    int32_t w = 0;
    c->dstack[0] = d;
    const uint8_t *nbyte = v->nbyte;
    const uint16_t *ndepth = v->ndepth;
    const int32_t *nskip = v->nskip, *ntok = v->ntok;
    int32_t i = 0, nn = v->n_nodes;
    uint64_t visited = 0;
    while (i < nn) {
        visited++;
        int32_t ns = dstep(c, c->dstack[ndepth[i] - 1], nbyte[i]);
        if (ns < 0) {
            i = nskip[i];
            continue;
        }
        c->dstack[ndepth[i]] = ns;
        if (ntok[i] >= 0) {
            int32_t dd = c->ddist[ns];
            if (budget < 0 || dd <= budget) {
                for (int32_t t = ntok[i]; t >= 0; t = v->tok_next[t]) mask[t >> 6] |= 1ull << (t & 63);
                if (dd > w) w = dd;
            }
        }
        i++;
    }
    if (c->dacc[d])
        for (int k = 0; k < v->n_words; k++) mask[k] |= v->eog[k];
    *worst = w;
    c->n_walks++;
    c->n_walk_nodes += visited;
}

static void drop_cache(constraint *c) {
    for (int32_t d = 0; d < c->nd; d++) {
        free(c->dmask[d]);
        c->dmask[d] = NULL;
    }
    c->cache_bytes = 0;
    c->n_cached = 0;
}

static int mask_any(const uint64_t *m, int n) {
    for (int k = 0; k < n; k++)
        if (m[k]) return 1;
    return 0;
}

ulm_status cons_begin(constraint *c, int max_tokens, cons_run *r, ulm_error *err) {
    r->c = c;
    r->state = c->d0;
    r->remaining = max_tokens;
    r->n_tokens = 0;
    if (c->d0 < 0)
        return ulm_set_error(err, ULM_ERR_CONSTRAINT, "the constraint accepts no output this vocabulary can spell");
    if (c->ddist[c->d0] > max_tokens)
        return ulm_set_error(err, ULM_ERR_CONSTRAINT,
                             "the constraint needs at least %d tokens of output; max tokens is %d",
                             (int)c->ddist[c->d0], max_tokens);
    return ULM_OK;
}

const uint64_t *cons_allowed(cons_run *r, ulm_error *err) {
    constraint *c = r->c;
    int32_t d = r->state;
    if (r->remaining <= 0) {
        ulm_set_error(err, ULM_ERR_CONSTRAINT, "no tokens left under the constraint");
        return NULL;
    }
    if (!c->dmask[d]) {
        size_t bytes = (size_t)c->v->n_words * sizeof(uint64_t);
        if (c->cache_bytes + bytes > c->cache_limit) drop_cache(c);
        uint64_t *m = malloc(bytes);
        if (!m) {
            ulm_set_error(err, ULM_ERR_NOMEM, "out of memory for a token mask");
            return NULL;
        }
        int32_t w;
        walk(c, d, -1, m, &w);
        if (c->failed) {
            free(m);
            ulm_set_error(err, ULM_ERR_CONSTRAINT, "%s", c->why);
            return NULL;
        }
        c->dmask[d] = m; /* walk may have grown the DFA arrays: index afresh */
        c->dworst[d] = w;
        c->cache_bytes += bytes;
        c->n_cached++;
    }
    const uint64_t *m = c->dmask[d];
    if (c->dworst[d] > r->remaining - 1) { /* near the budget: filter by what can still finish */
        int32_t w;
        walk(c, d, r->remaining - 1, c->scratch, &w);
        m = c->scratch;
    }
    if (c->failed) {
        ulm_set_error(err, ULM_ERR_CONSTRAINT, "%s", c->why);
        return NULL;
    }
    if (!mask_any(m, c->v->n_words)) {
        ulm_set_error(err, ULM_ERR_CONSTRAINT, "no token can continue the constraint");
        return NULL;
    }
    return m;
}

int cons_is_eog(const constraint *c, int32_t id) {
    return id >= 0 && id < c->v->n_vocab && cons_bit(c->v->eog, id);
}

ulm_status cons_advance(cons_run *r, int32_t id, ulm_error *err) {
    constraint *c = r->c;
    const cons_vocab *v = c->v;
    if (id < 0 || id >= v->n_vocab) return ulm_set_error(err, ULM_ERR_ARG, "token id %d out of range", (int)id);
    if (r->remaining <= 0) return ulm_set_error(err, ULM_ERR_CONSTRAINT, "no tokens left under the constraint");
    if (cons_bit(v->eog, id)) {
        if (!c->dacc[r->state])
            return ulm_set_error(err, ULM_ERR_CONSTRAINT, "end of generation before the constraint is met");
    } else {
        uint64_t l = v->off[id + 1] - v->off[id];
        if (!l) return ulm_set_error(err, ULM_ERR_CONSTRAINT, "token %d has no text", (int)id);
        int32_t d = r->state;
        const uint8_t *p = (const uint8_t *)v->blob + v->off[id];
        for (uint64_t k = 0; k < l && d >= 0; k++) d = dstep(c, d, p[k]);
        if (c->failed) return ulm_set_error(err, ULM_ERR_CONSTRAINT, "%s", c->why);
        if (d < 0) return ulm_set_error(err, ULM_ERR_CONSTRAINT, "token %d breaks the constraint", (int)id);
        if (c->ddist[d] > r->remaining - 1)
            return ulm_set_error(err, ULM_ERR_CONSTRAINT, "token %d leaves no room to finish", (int)id);
        r->state = d;
    }
    r->remaining--;
    r->n_tokens++;
    return ULM_OK;
}

int cons_accepting(const cons_run *r) { return r->c->dacc[r->state]; }

int cons_final(cons_run *r) {
    constraint *c = r->c;
    int32_t d = r->state;
    if (!c->dacc[d]) return 0;
    if (c->dfinal[d] < 0) {
        int live = 0;
        for (int k = 0; k < c->ncls && !live; k++) live = dstep(c, d, c->crep[k]) >= 0;
        c->dfinal[d] = (int8_t)!live;
    }
    return c->dfinal[d];
}

int cons_matches(constraint *c, const char *text, size_t len) {
    int32_t d = c->d0;
    for (size_t i = 0; i < len && d >= 0; i++) d = dstep(c, d, (uint8_t)text[i]);
    return d >= 0 && !c->failed && c->dacc[d];
}

const char *cons_strip_leading(const constraint *c, const char *text, size_t *len) {
    if (c->leading_space && *len && text[0] == ' ') {
        (*len)--;
        return text + 1;
    }
    return text;
}

void cons_apply_mask(const uint64_t *mask, float *logits, int n) {
    /* a word at a time: constrained masks are mostly all-zero or all-one words */
    for (int w = 0; w * 64 < n; w++) {
        uint64_t m = mask[w];
        int i0 = w * 64, i1 = i0 + 64 < n ? i0 + 64 : n;
        if (m == ~0ull) continue;
        if (!m) {
            for (int i = i0; i < i1; i++) logits[i] = -INFINITY;
            continue;
        }
        for (int i = i0; i < i1; i++) /* select, not branch: mixed words are unpredictable */
            logits[i] = ((m >> (i - i0)) & 1) ? logits[i] : -INFINITY;
    }
}

void cons_get_stats(const constraint *c, cons_stats *s) {
    s->n_nfa = c->nn;
    s->n_dfa = c->nd;
    s->n_classes = c->ncls;
    s->n_masks_cached = c->n_cached;
    s->n_walks = c->n_walks;
    s->n_walk_nodes = c->n_walk_nodes;
}

/* ================= front ends that need no parser ================= */

ulm_status cons_compile_choices(const cons_vocab *v, const char *const *choices, const size_t *lens, int n,
                                const cons_opts *o, constraint **out, ulm_error *err) {
    *out = NULL;
    if (n <= 0) return ulm_set_error(err, ULM_ERR_SPEC, "choice constraint: no choices");
    nfa_b b;
    nb_init(&b, o ? o->max_states : 0);
    frag f = nb_lits(&b, choices, lens, n);
    ulm_status st = cons_from_nfa(v, &b, f, o, out, err);
    nb_free(&b);
    return st;
}

ulm_status cons_compile_regex(const cons_vocab *v, const char *re, size_t len, const cons_opts *o,
                              constraint **out, ulm_error *err) {
    *out = NULL;
    nfa_b b;
    nb_init(&b, o ? o->max_states : 0);
    frag f = re_build(&b, re, len);
    ulm_status st = cons_from_nfa(v, &b, f, o, out, err);
    nb_free(&b);
    return st;
}

ulm_status cons_compile_lines(const cons_vocab *v, const char *input, size_t input_len, int n_breaks,
                              const cons_opts *o, constraint **out, ulm_error *err) {
    *out = NULL;
    nfa_b b;
    nb_init(&b, o ? o->max_states : 0);
    frag f = lines_build(&b, input, input_len, n_breaks);
    ulm_status st = cons_from_nfa(v, &b, f, o, out, err);
    nb_free(&b);
    return st;
}
