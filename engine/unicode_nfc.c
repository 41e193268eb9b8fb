/* Unicode NFC (canonical decomposition, canonical ordering, canonical composition; UAX #15)
 * over the tables of engine/unicode_tab.c. Used by tokenizers whose normalizer is NFC (Qwen).
 *
 * Most text is already NFC: unicode_nfc_prefix answers that in one pass (ASCII costs a byte
 * compare), and only the part from the last safe starter before the first doubtful character
 * is decomposed and recomposed. Everything is linear in the text: a run of combining marks is
 * reordered by insertion sort when short and by a stable counting sort on the class when long,
 * and each character tries to compose with one starter only. */
#include <stdlib.h>
#include <string.h>
#include "unicode.h"

enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21, TCOUNT = 28,
       NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

/* UTF-8 decode of valid text (the caller validated it); returns the byte length. */
static int utf8_next(const uint8_t *s, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint32_t v = c & (0x7F >> len);
    for (int k = 1; k < len; k++) v = v << 6 | (s[k] & 0x3F);
    *cp = v;
    return len;
}

static int utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 63)), o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 63)), o[2] = (char)(0x80 | (cp >> 6 & 63));
    o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

size_t unicode_nfc_prefix(const char *str, size_t n) {
    const uint8_t *s = (const uint8_t *)str;
    size_t safe = 0, i = 0;
    int last_ccc = 0;
    while (i < n) {
        if (s[i] < 0x80) { /* ASCII: a starter that composes with nothing */
            last_ccc = 0;
            safe = i++;
            continue;
        }
        uint32_t cp;
        int len = utf8_next(s + i, &cp);
        int ccc = unicode_ccc(cp);
        if ((unicode_flags(cp) & (UF_NFC_NO | UF_NFC_MAYBE)) || (ccc && last_ccc > ccc)) return safe;
        if (ccc == 0) safe = i;
        last_ccc = ccc;
        i += (size_t)len;
    }
    return n;
}

static const unicode_decomp_entry *find_decomp(uint32_t cp) {
    int lo = 0, hi = unicode_n_decomp - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (unicode_decomp[mid].cp == cp) return &unicode_decomp[mid];
        if (unicode_decomp[mid].cp < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

/* Composite of (a, b), or 0. */
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a - LBASE < LCOUNT && b - VBASE < VCOUNT) return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a - SBASE < SCOUNT && (a - SBASE) % TCOUNT == 0 && b - TBASE - 1 < TCOUNT - 1) return a + (b - TBASE);
    int lo = 0, hi = unicode_n_comp - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const unicode_comp_entry *e = &unicode_comp[mid];
        if (e->first == a && e->second == b) return e->composite;
        if (e->first < a || (e->first == a && e->second < b)) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

/* Stable sort of cps[0..n) by combining class (all classes nonzero); tmp holds n. */
static void sort_marks(uint32_t *cps, size_t n, uint32_t *tmp) {
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint32_t c = cps[i];
            int k = unicode_ccc(c);
            size_t j = i;
            for (; j > 0 && unicode_ccc(cps[j - 1]) > k; j--) cps[j] = cps[j - 1];
            cps[j] = c;
        }
        return;
    }
    size_t count[257] = {0};
    for (size_t i = 0; i < n; i++) count[unicode_ccc(cps[i]) + 1]++;
    for (int c = 1; c < 257; c++) count[c] += count[c - 1];
    for (size_t i = 0; i < n; i++) tmp[count[unicode_ccc(cps[i])]++] = cps[i];
    memcpy(cps, tmp, n * sizeof *cps);
}

static int reserve(char **out, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = need + need / 2 + 64;
    char *nb = realloc(*out, c);
    if (!nb) return -1;
    *out = nb, *cap = c;
    return 0;
}

/* NFC of one segment s[0, n) (valid UTF-8 that no character outside it interacts with) into o;
 * cps holds 8 * n code points. Returns the bytes written (at most 16 * n). */
static size_t nfc_segment(const uint8_t *s, size_t n, uint32_t *cps, char *o) {
    uint32_t *tmp = cps + 4 * n;
    /* 1. full canonical decomposition: at most 4 code points per input code point */
    size_t nc = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += (size_t)utf8_next(s + i, &cp);
        const unicode_decomp_entry *d;
        if (cp - SBASE < SCOUNT) {
            uint32_t si = cp - SBASE;
            cps[nc++] = LBASE + si / NCOUNT;
            cps[nc++] = VBASE + si % NCOUNT / TCOUNT;
            if (si % TCOUNT) cps[nc++] = TBASE + si % TCOUNT;
        } else if (cp >= 0xC0 && (d = find_decomp(cp))) {
            memcpy(cps + nc, unicode_decomp_pool + d->off, d->len * sizeof *cps);
            nc += d->len;
        } else {
            cps[nc++] = cp;
        }
    }
    /* 2. canonical ordering: each run of non-starters sorted by class, stably */
    for (size_t i = 0; i < nc;) {
        if (unicode_ccc(cps[i]) == 0) { i++; continue; }
        size_t j = i;
        while (j < nc && unicode_ccc(cps[j]) != 0) j++;
        if (j - i > 1) sort_marks(cps + i, j - i, tmp);
        i = j;
    }
    /* 3. canonical composition: a character joins the last starter unless a character between
     * them has class 0 or a class >= its own (the kept ones are in class order, so the last
     * kept one decides) */
    size_t k = 0;
    long starter = -1;
    for (size_t i = 0; i < nc; i++) {
        uint32_t c = cps[i];
        int ccc = unicode_ccc(c);
        if (starter >= 0) {
            int last = (size_t)starter == k - 1 ? -1 : unicode_ccc(cps[k - 1]);
            if (last == -1 || (last != 0 && last < ccc)) {
                uint32_t comp = compose(cps[starter], c);
                if (comp) { cps[starter] = comp; continue; }
            }
        }
        if (ccc == 0) starter = (long)k;
        cps[k++] = c;
    }
    char *w = o;
    for (size_t i = 0; i < k; i++) w += utf8_put(cps[i], w);
    return (size_t)(w - o);
}

/* Text that passes the quick check is copied; the rest is cut into segments that start at the
 * quick check's safe starter and end before the next ASCII character (ASCII never decomposes,
 * never composes with what precedes it, and has class 0), each normalized on its own. */
int unicode_nfc(const char *str, size_t n, char **out, size_t *cap, size_t *out_len) {
    const uint8_t *s = (const uint8_t *)str;
    uint32_t *cps = NULL;
    size_t cap_cps = 0, o = 0, pos = 0;
    int rc = -1;
    if (reserve(out, cap, n + 1)) return -1;
    while (pos < n) {
        size_t p = pos + unicode_nfc_prefix(str + pos, n - pos);
        if (reserve(out, cap, o + (p - pos) + 1)) goto done;
        memcpy(*out + o, str + pos, p - pos);
        o += p - pos;
        if (p == n) break;
        size_t e = p + 1; /* the characters between the safe starter and the doubtful one are marks */
        while (e < n && s[e] >= 0x80) e++;
        size_t len = e - p;
        if (8 * len > cap_cps) {
            free(cps);
            cap_cps = 8 * len;
            if (!(cps = malloc(cap_cps * sizeof *cps))) goto done;
        }
        if (reserve(out, cap, o + 16 * len + 1)) goto done;
        o += nfc_segment(s + p, len, cps, *out + o);
        pos = e;
    }
    *out_len = o;
    rc = 0;
done:
    free(cps);
    return rc;
}
