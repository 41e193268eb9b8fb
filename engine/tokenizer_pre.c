/* Pre-tokenizers of byte-level BPE, hand-written from the split regexes of each family (no
 * regex engine). Each function returns where the piece starting at code point i ends; the
 * text is [0, n) code points with their Unicode flags (engine/unicode.h). "\s" is the
 * White_Space property, as in the regex engine of Hugging Face tokenizers.
 *
 * gpt2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * llama3 (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *        ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * qwen2  the llama3 pattern with \p{N} (one digit a piece)
 * smollm every \p{N} on its own, then gpt2 on what lies between
 */
#include "tokenizer_pre.h"
#include "unicode.h"

#define IS_L(k) (fl[k] & UF_L)
#define IS_N(k) (fl[k] & UF_N)
#define IS_S(k) (fl[k] & UF_S)
#define IS_NL(k) (cp[k] == '\r' || cp[k] == '\n')

static uint32_t lower_ascii(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's 't 're 've 'm 'll 'd at i: returns the length (0 if none). */
static size_t contraction(const uint32_t *cp, size_t i, size_t n, int icase) {
    if (cp[i] != '\'' || i + 1 >= n) return 0;
    uint32_t a = icase ? lower_ascii(cp[i + 1]) : cp[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= n) return 0;
    uint32_t b = icase ? lower_ascii(cp[i + 2]) : cp[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* \s+(?!\S)|\s+ at a white-space code point i: the run, less its last character when a
 * non-space follows it (that character then starts the next piece, e.g. " word"). */
static size_t space_run(const uint8_t *fl, size_t i, size_t n) {
    size_t k = i;
    while (k < n && IS_S(k)) k++;
    if (k < n && k - i > 1) return k - 1;
    return k;
}

static size_t next_gpt2(const uint32_t *cp, const uint8_t *fl, size_t i, size_t n) {
    size_t c = contraction(cp, i, n, 0);
    if (c) return i + c;
    size_t j = i + (cp[i] == ' ' && i + 1 < n);
    if (IS_L(j)) {
        while (j < n && IS_L(j)) j++;
        return j;
    }
    if (IS_N(j)) {
        while (j < n && IS_N(j)) j++;
        return j;
    }
    if (!IS_S(j) && !IS_L(j) && !IS_N(j)) {
        while (j < n && !IS_S(j) && !IS_L(j) && !IS_N(j)) j++;
        return j;
    }
    return space_run(fl, i, n);
}

static size_t next_llama3(const uint32_t *cp, const uint8_t *fl, size_t i, size_t n, size_t max_digits) {
    size_t c = contraction(cp, i, n, 1);
    if (c) return i + c;
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    size_t j = i;
    if (!IS_L(i) && !IS_N(i) && !IS_NL(i) && i + 1 < n && IS_L(i + 1)) j = i + 1;
    if (IS_L(j)) {
        while (j < n && IS_L(j)) j++;
        return j;
    }
    if (IS_N(i)) {
        j = i;
        while (j < n && j - i < max_digits && IS_N(j)) j++;
        return j;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    j = i + (cp[i] == ' ' && i + 1 < n);
    if (!IS_S(j) && !IS_L(j) && !IS_N(j)) {
        while (j < n && !IS_S(j) && !IS_L(j) && !IS_N(j)) j++;
        while (j < n && IS_NL(j)) j++;
        return j;
    }
    /* \s*[\r\n]+ : the white-space run up to and including its last newline */
    size_t k = i, last_nl = n;
    while (k < n && IS_S(k)) {
        if (IS_NL(k)) last_nl = k;
        k++;
    }
    if (last_nl != n) return last_nl + 1;
    return space_run(fl, i, n);
}

size_t tok_pre_next(int pre, const uint32_t *cp, const uint8_t *fl, size_t i, size_t n, size_t *seg) {
    switch (pre) {
    case TOK_PRE_LLAMA3: return next_llama3(cp, fl, i, n, 3);
    case TOK_PRE_QWEN2: return next_llama3(cp, fl, i, n, 1);
    case TOK_PRE_SMOLLM: {
        if (IS_N(i)) return i + 1;
        /* the gpt2 regex sees only the text between digits; *seg remembers where that ends */
        if (*seg <= i) {
            size_t e = i;
            while (e < n && !IS_N(e)) e++;
            *seg = e;
        }
        return next_gpt2(cp, fl, i, *seg);
    }
    default: return next_gpt2(cp, fl, i, n);
    }
}
