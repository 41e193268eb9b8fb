/* gen-haiku: data for the haiku formatter task (tasks/haiku/task.json).
 *
 *   gen-haiku [--split train|valid|golden|golden_oov] [--n N] [--seed S]
 *             [--lexicon tasks/haiku/lexicon.tsv] [-o FILE]
 *
 * Writes JSONL, one {"input": "...", "output": "..."} per line, deterministic for a given
 * split, count, seed and lexicon. An input is a line of lowercase lexicon words. When its
 * syllables (from the lexicon) total 17 and a word boundary falls after syllable 5 and after
 * syllable 12, the output is the same words on three lines; otherwise it is the refusal
 * HAIKU_REFUSAL. Every input, positive or negative, is drawn the same way (random lexicon
 * words up to a syllable total), so only the syllable structure tells the classes apart.
 *
 * Splits:
 *   golden      GOLDEN_N cases from GOLDEN_SEED, no duplicates, lexicon "train" words only;
 *               exact class quotas (13 haiku, 4 no-split, 3 wrong-total in every 20).
 *   golden_oov  GOLDEN_OOV_N cases, each with >= 2 lexicon words marked "oov" (words that
 *               never appear in train or valid), reported separately, no gate.
 *   train/valid random classes (65% haiku); seeded by --seed (valid uses a derived seed);
 *               every input that is also a golden input is skipped, so the sets are disjoint
 *               by construction. --seed does not change the golden splits.
 * Run from the repository root (the default lexicon path is relative). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../gen_util.h"

#define HAIKU_REFUSAL "NOT_A_HAIKU"
#define HK_GOLDEN_SEED 0x4841494B55ull /* "HAIKU" */
#define HK_GOLDEN_N 400
#define HK_GOLDEN_OOV_N 100
#define HK_VALID_SALT 0x56414C4944ull
#define HK_MAX_SYL 8     /* longest word the lexicon may hold */
#define HK_MAX_WORDS 32  /* 22 syllables at most, one word each */

typedef struct {
    char word[32];
    int syl;
    int oov; /* 1: held out of train/valid */
} hk_word;

typedef struct {
    hk_word *w;
    int n;
    int *sorted; /* [n] indices sorted by word, for lookup */
    /* per pool (0: train words, 1: oov words): word indices grouped by syllable count */
    int *by_syl[2][HK_MAX_SYL + 1];
    int n_by_syl[2][HK_MAX_SYL + 1];
} hk_lexicon;

typedef enum { HK_TRAIN, HK_VALID, HK_GOLDEN, HK_GOLDEN_OOV } hk_split;
typedef enum { HK_POS, HK_NEG_SPLIT, HK_NEG_TOTAL } hk_class;

static const hk_lexicon *hk_sort_lx; /* qsort has no user pointer in C11 */
static int hk_cmp_word(const void *a, const void *b) {
    return strcmp(hk_sort_lx->w[*(const int *)a].word, hk_sort_lx->w[*(const int *)b].word);
}

static void hk_lexicon_free(hk_lexicon *lx) {
    free(lx->w);
    free(lx->sorted);
    for (int p = 0; p < 2; p++)
        for (int k = 0; k <= HK_MAX_SYL; k++) free(lx->by_syl[p][k]);
    memset(lx, 0, sizeof *lx);
}

/* Parses "word<TAB>syllables<TAB>train|oov<TAB>rank" lines ('#' lines are comments).
 * Returns 0, or -1 with a message naming the line in err. */
static int hk_lexicon_load(const char *path, hk_lexicon *lx, char *err, size_t errcap) {
    memset(lx, 0, sizeof *lx);
    size_t len;
    char *text = gen_read_file(path, &len);
    if (!text) { snprintf(err, errcap, "%s: cannot read: %s", path, strerror(errno)); return -1; }
    int cap = 0, line_no = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        if (line[0] == '#' || line[0] == 0) continue;
        char word[64], split[16];
        int syl, rank, used = 0;
        if (sscanf(line, "%63[a-z]\t%d\t%15[a-z]\t%d%n", word, &syl, split, &rank, &used) != 4 ||
            line[used] != 0 || strlen(word) >= sizeof lx->w[0].word || syl < 1 || syl > HK_MAX_SYL ||
            (strcmp(split, "train") && strcmp(split, "oov"))) {
            snprintf(err, errcap, "%s:%d: expected word<TAB>syllables<TAB>train|oov<TAB>rank", path, line_no);
            goto fail;
        }
        if (lx->n == cap) {
            cap = cap ? 2 * cap : 4096;
            hk_word *nw = realloc(lx->w, (size_t)cap * sizeof *nw);
            if (!nw) { snprintf(err, errcap, "out of memory"); goto fail; }
            lx->w = nw;
        }
        hk_word *w = &lx->w[lx->n++];
        strcpy(w->word, word);
        w->syl = syl;
        w->oov = split[0] == 'o';
    }
    free(text);
    text = NULL;
    if (lx->n == 0) { snprintf(err, errcap, "%s: no words", path); goto fail; }
    lx->sorted = malloc((size_t)lx->n * sizeof *lx->sorted);
    if (!lx->sorted) { snprintf(err, errcap, "out of memory"); goto fail; }
    for (int i = 0; i < lx->n; i++) lx->sorted[i] = i;
    hk_sort_lx = lx;
    qsort(lx->sorted, (size_t)lx->n, sizeof *lx->sorted, hk_cmp_word);
    for (int i = 1; i < lx->n; i++)
        if (!strcmp(lx->w[lx->sorted[i]].word, lx->w[lx->sorted[i - 1]].word)) {
            snprintf(err, errcap, "%s: duplicate word '%s'", path, lx->w[lx->sorted[i]].word);
            goto fail;
        }
    for (int i = 0; i < lx->n; i++) {
        int p = lx->w[i].oov, k = lx->w[i].syl;
        if (!lx->by_syl[p][k] && !(lx->by_syl[p][k] = malloc((size_t)lx->n * sizeof(int)))) {
            snprintf(err, errcap, "out of memory");
            goto fail;
        }
        lx->by_syl[p][k][lx->n_by_syl[p][k]++] = i;
    }
    if (!lx->n_by_syl[0][1] || !lx->n_by_syl[0][2]) {
        snprintf(err, errcap, "%s: needs training words of 1 and 2 syllables", path);
        goto fail;
    }
    return 0;
fail:
    free(text);
    hk_lexicon_free(lx);
    return -1;
}

/* Syllables of word[0..n), or -1 when it is not in the lexicon (used by the tests). */
__attribute__((unused)) static int hk_syllables(const hk_lexicon *lx, const char *word, size_t n) {
    int lo = 0, hi = lx->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const char *w = lx->w[lx->sorted[mid]].word;
        int c = strncmp(w, word, n);
        if (c == 0) c = w[n] ? 1 : 0;
        if (c == 0) return lx->w[lx->sorted[mid]].syl;
        if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

/* Picks a word of at most rem syllables, uniform over the pool's words that fit. */
static int hk_pick(const hk_lexicon *lx, int pool, int rem, gen_rng *r) {
    int total = 0;
    for (int k = 1; k <= rem && k <= HK_MAX_SYL; k++) total += lx->n_by_syl[pool][k];
    if (total == 0) return -1;
    int x = (int)gen_rng_below(r, (uint32_t)total);
    for (int k = 1;; k++) {
        if (x < lx->n_by_syl[pool][k]) return lx->by_syl[pool][k][x];
        x -= lx->n_by_syl[pool][k];
    }
}

/* Random words up to exactly `target` syllables. With oov_share > 0 each word comes from the
 * oov pool with that percentage (falling back to train words when none fits). */
static int hk_fill(const hk_lexicon *lx, int target, int oov_share, gen_rng *r, int *idx) {
    int n = 0;
    for (int rem = target; rem > 0;) {
        int w = -1;
        if (oov_share && gen_rng_chance(r, (uint32_t)oov_share, 100)) w = hk_pick(lx, 1, rem, r);
        if (w < 0) w = hk_pick(lx, 0, rem, r);
        idx[n++] = w;
        rem -= lx->w[w].syl;
    }
    return n;
}

/* The class of a word sequence, and where its lines end (cut1, cut2 = word counts). */
static hk_class hk_classify(const hk_lexicon *lx, const int *idx, int n, int *cut1, int *cut2) {
    int s = 0;
    *cut1 = *cut2 = -1;
    for (int i = 0; i < n; i++) {
        s += lx->w[idx[i]].syl;
        if (s == 5) *cut1 = i + 1;
        if (s == 12) *cut2 = i + 1;
    }
    if (s != 17) return HK_NEG_TOTAL;
    return *cut1 > 0 && *cut2 > 0 ? HK_POS : HK_NEG_SPLIT;
}

/* Draws one input of the wanted class. Wrong totals lie 1-5 syllables from 17, mostly close. */
static int hk_draw(const hk_lexicon *lx, hk_class want, int oov_share, gen_rng *r, int *idx) {
    static const int dist[] = {1, 1, 1, 2, 2, 3, 4, 5};
    for (;;) {
        int target = 17;
        if (want == HK_NEG_TOTAL) {
            int d = dist[gen_rng_below(r, 8)];
            target = gen_rng_chance(r, 1, 2) ? 17 + d : 17 - d;
        }
        int n = hk_fill(lx, target, oov_share, r, idx), c1, c2;
        if (hk_classify(lx, idx, n, &c1, &c2) != want) continue;
        if (oov_share) {
            int k = 0;
            for (int i = 0; i < n; i++) k += lx->w[idx[i]].oov;
            if (k < 2) continue;
        }
        return n;
    }
}

static void hk_input_text(const hk_lexicon *lx, const int *idx, int n, gen_str *s) {
    gen_str_clear(s);
    for (int i = 0; i < n; i++) {
        if (i) gen_str_add(s, " ", 1);
        gen_str_cat(s, lx->w[idx[i]].word);
    }
}

static void hk_output_text(const hk_lexicon *lx, const int *idx, int n, gen_str *s) {
    int c1, c2;
    gen_str_clear(s);
    if (hk_classify(lx, idx, n, &c1, &c2) != HK_POS) { gen_str_cat(s, HAIKU_REFUSAL); return; }
    for (int i = 0; i < n; i++) {
        if (i) gen_str_add(s, i == c1 || i == c2 ? "\n" : " ", 1);
        gen_str_cat(s, lx->w[idx[i]].word);
    }
}

static int hk_emit(FILE *out, const gen_str *in, const gen_str *outp, gen_str *line) {
    gen_str_clear(line);
    gen_str_cat(line, "{\"input\": ");
    gen_str_json(line, in->p, in->n);
    gen_str_cat(line, ", \"output\": ");
    gen_str_json(line, outp->p, outp->n);
    gen_str_cat(line, "}\n");
    if (line->oom) return -1;
    return fwrite(line->p, 1, line->n, out) == line->n ? 0 : -1;
}

/* The golden inputs' hashes (both golden splits), built by replaying their generation. */
static int hk_golden_run(const hk_lexicon *lx, hk_split split, gen_set *seen, FILE *out);

/* Writes n examples of `split` to out. Returns 0, or -1 on a write or memory error. */
static int hk_generate(const hk_lexicon *lx, hk_split split, long n, uint64_t seed, FILE *out) {
    if (split == HK_GOLDEN || split == HK_GOLDEN_OOV) {
        gen_set seen = {0};
        int rc = hk_golden_run(lx, split, &seen, out);
        gen_set_free(&seen);
        return rc;
    }
    gen_set golden = {0};
    if (hk_golden_run(lx, HK_GOLDEN, &golden, NULL) || hk_golden_run(lx, HK_GOLDEN_OOV, &golden, NULL)) {
        gen_set_free(&golden);
        return -1;
    }
    gen_rng r;
    gen_rng_seed(&r, split == HK_VALID ? seed ^ HK_VALID_SALT : seed);
    gen_str in = {0}, outp = {0}, line = {0};
    int rc = 0, idx[HK_MAX_WORDS];
    for (long i = 0; i < n && rc == 0;) {
        uint32_t u = gen_rng_below(&r, 100);
        hk_class c = u < 65 ? HK_POS : u < 83 ? HK_NEG_SPLIT : HK_NEG_TOTAL;
        int k = hk_draw(lx, c, 0, &r, idx);
        hk_input_text(lx, idx, k, &in);
        if (in.oom) { rc = -1; break; }
        if (gen_set_has(&golden, gen_hash(in.p, in.n))) continue; /* disjoint from golden */
        hk_output_text(lx, idx, k, &outp);
        rc = hk_emit(out, &in, &outp, &line);
        i++;
    }
    gen_set_free(&golden);
    gen_str_free(&in);
    gen_str_free(&outp);
    gen_str_free(&line);
    return rc;
}

static int hk_golden_run(const hk_lexicon *lx, hk_split split, gen_set *seen, FILE *out) {
    int oov = split == HK_GOLDEN_OOV;
    long n = oov ? HK_GOLDEN_OOV_N : HK_GOLDEN_N;
    gen_rng r;
    gen_rng_seed(&r, HK_GOLDEN_SEED + (uint64_t)oov);
    gen_str in = {0}, outp = {0}, line = {0};
    int rc = 0, idx[HK_MAX_WORDS];
    for (long i = 0; i < n && rc == 0;) {
        int slot = (int)(i % 20);
        hk_class c = slot < 13 ? HK_POS : slot < 17 ? HK_NEG_SPLIT : HK_NEG_TOTAL;
        int k = hk_draw(lx, c, oov ? 35 : 0, &r, idx);
        hk_input_text(lx, idx, k, &in);
        if (in.oom) { rc = -1; break; }
        int added = gen_set_add(seen, gen_hash(in.p, in.n));
        if (added < 0) { rc = -1; break; }
        if (!added) continue; /* no duplicate golden inputs */
        if (out) {
            hk_output_text(lx, idx, k, &outp);
            rc = hk_emit(out, &in, &outp, &line);
        }
        i++;
    }
    gen_str_free(&in);
    gen_str_free(&outp);
    gen_str_free(&line);
    return rc;
}

#ifndef GEN_NO_MAIN
static int usage(void) {
    fprintf(stderr, "usage: gen-haiku [--split train|valid|golden|golden_oov] [--n N] [--seed S]\n"
                    "                 [--lexicon PATH] [-o FILE]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *lex_path = "tasks/haiku/lexicon.tsv", *out_path = NULL, *split_name = "train";
    long n = -1;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return usage();
        const char *v = argv[++i];
        char *end;
        if (!strcmp(a, "--split")) split_name = v;
        else if (!strcmp(a, "--lexicon")) lex_path = v;
        else if (!strcmp(a, "-o")) out_path = v;
        else if (!strcmp(a, "--n")) { n = strtol(v, &end, 10); if (*end || n < 0) return usage(); }
        else if (!strcmp(a, "--seed")) { seed = strtoull(v, &end, 10); if (*end) return usage(); }
        else return usage();
    }
    hk_split split;
    if (!strcmp(split_name, "train")) split = HK_TRAIN;
    else if (!strcmp(split_name, "valid")) split = HK_VALID;
    else if (!strcmp(split_name, "golden")) split = HK_GOLDEN;
    else if (!strcmp(split_name, "golden_oov")) split = HK_GOLDEN_OOV;
    else return usage();
    if (n < 0) n = split == HK_VALID ? 2000 : 100000;
    char err[512];
    hk_lexicon lx;
    if (hk_lexicon_load(lex_path, &lx, err, sizeof err)) { fprintf(stderr, "gen-haiku: %s\n", err); return 1; }
    FILE *out = out_path ? fopen(out_path, "wb") : stdout;
    if (!out) { fprintf(stderr, "gen-haiku: %s: %s\n", out_path, strerror(errno)); hk_lexicon_free(&lx); return 1; }
    int rc = hk_generate(&lx, split, n, seed, out);
    if (out != stdout) rc |= fclose(out);
    else rc |= fflush(out);
    hk_lexicon_free(&lx);
    if (rc) { fprintf(stderr, "gen-haiku: write failed\n"); return 1; }
    return 0;
}
#endif
