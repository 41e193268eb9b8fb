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

int unicode_nfc(const char *str, size_t n, char **out, size_t *cap, size_t *out_len) {
    size_t p = unicode_nfc_prefix(str, n);
    size_t rest = n - p;
    /* worst cases: 4 code points per input code point (one per byte at most); 4 bytes each */
    uint32_t *cps = rest ? malloc(2 * 4 * rest * sizeof *cps) : NULL;
    if (rest && !cps) return -1;
    size_t need = p + 4 * 4 * rest + 1;
    if (need > *cap) {
        char *nb = realloc(*out, need);
        if (!nb) { free(cps); return -1; }
        *out = nb, *cap = need;
    }
    memcpy(*out, str, p);
    if (!rest) { *out_len = p; return 0; }
    uint32_t *tmp = cps + 4 * rest;

    /* 1. full canonical decomposition */
    const uint8_t *s = (const uint8_t *)str;
    size_t nc = 0;
    for (size_t i = p; i < n;) {
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
    size_t o = 0;
    long starter = -1;
    for (size_t i = 0; i < nc; i++) {
        uint32_t c = cps[i];
        int ccc = unicode_ccc(c);
        if (starter >= 0) {
            int last = (size_t)starter == o - 1 ? -1 : unicode_ccc(cps[o - 1]);
            if (last == -1 || (last != 0 && last < ccc)) {
                uint32_t comp = compose(cps[starter], c);
                if (comp) { cps[starter] = comp; continue; }
            }
        }
        if (ccc == 0) starter = (long)o;
        cps[o++] = c;
    }
    char *w = *out + p;
    for (size_t i = 0; i < o; i++) w += utf8_put(cps[i], w);
    *out_len = (size_t)(w - *out);
    free(cps);
    return 0;
}
