/* ulm tokenize FILE [-p TEXT | -f TEXTFILE] [--pieces] [--no-bos] [--parse-special] [--count]
 * FILE: a .ulm, or a tokenizer source (tokenizer.json, tokenizer.model, .gguf, llama2.c .bin),
 * imported on the fly. Text comes from -p, -f or stdin, verbatim. Prints the ids as
 * "[1, 2, 3]" like llama.cpp's llama-tokenize --ids, or one "id -> 'piece'" line per token. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "args.h"
#include "cli.h"
#include "tok_import.h"
#include "tokenizer.h"
#include "ulm_file.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* Opens a .ulm, or imports any other tokenizer file into a temporary .ulm and opens that. */
static ulm_status open_tokenizer(const char *path, ulmf **f, tokenizer **t, ulm_error *err) {
    ulm_status st;
    if (ends_with(path, ".ulm")) {
        if ((st = ulmf_open(path, 0, f, err))) return st;
    } else {
        ulmw *w = ulmw_new();
        if (!w) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
        if ((st = tok_import_path(path, w, err))) { ulmw_free(w); return st; }
        char tmp[256];
        const char *td = getenv("TMPDIR");
        snprintf(tmp, sizeof tmp, "%s/ulm-tokenize-%d.ulm", td ? td : "/tmp", (int)getpid());
        st = ulmw_write(w, tmp, err);
        ulmw_free(w);
        if (st) return st;
        st = ulmf_open(tmp, 0, f, err);
        unlink(tmp);
        if (st) return st;
    }
    if ((st = tok_load(*f, t, err))) { ulmf_close(*f); *f = NULL; }
    return st;
}

static char *read_stream(FILE *fp, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, fp);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            char *nb = realloc(b, 2 * cap + 1);
            if (!nb) { free(b); return NULL; }
            b = nb, cap *= 2;
        }
    }
    if (b) b[n] = 0, *len = n;
    return b;
}

static void print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stdout);
        else if (c == '\t') fputs("\\t", stdout);
        else if (c == '\r') fputs("\\r", stdout);
        else if (c == '\'' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL, *text_file = NULL;
    int pieces = 0, flags = ULM_TOK_ADD_BOS, count = 0, timing = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) { if (!(prompt = arg_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) { if (!(text_file = arg_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--pieces")) pieces = 1;
        else if (!strcmp(a, "--no-bos")) flags &= ~ULM_TOK_ADD_BOS;
        else if (!strcmp(a, "--parse-special")) flags |= ULM_TOK_PARSE_SPECIAL;
        else if (!strcmp(a, "--count")) count = 1;
        else if (!strcmp(a, "--time")) timing = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fprintf(stderr, "usage: ulm tokenize FILE [-p TEXT | -f TEXTFILE] [--pieces] [--no-bos] [--parse-special]\n"
                            "                    [--count] [--time]\n"
                            "  FILE: .ulm, tokenizer.json, tokenizer.model, .gguf or llama2.c tokenizer .bin;\n"
                            "  text from -p, -f or stdin (verbatim). --count prints only the number of tokens,\n"
                            "  --time adds the encode time and speed (wall and CPU) on stderr.\n");
            return 0;
        } else if (a[0] == '-' && a[1]) { fprintf(stderr, "ulm tokenize: unknown option %s\n", a); return 2; }
        else if (!path) path = a;
        else { fprintf(stderr, "ulm tokenize: unexpected argument %s\n", a); return 2; }
    }
    if (!path) { fprintf(stderr, "ulm tokenize: missing FILE (ulm tokenize -h)\n"); return 2; }
    ulm_error err;
    ulmf *f;
    tokenizer *t;
    if (open_tokenizer(path, &f, &t, &err)) { fprintf(stderr, "ulm tokenize: %s\n", err.msg); return 1; }
    char *text;
    size_t len;
    if (prompt) text = strdup(prompt), len = strlen(prompt);
    else if (text_file) text = read_file(text_file, &len);
    else text = read_stream(stdin, &len);
    if (!text) { tok_free(t); ulmf_close(f); fprintf(stderr, "ulm tokenize: cannot read the text\n"); return 1; }
    int n = 0, rc = 0;
    int32_t *ids = NULL;
    struct timespec t0, t1, c0, c1; /* wall and CPU time (the CPU time is steadier on a busy machine) */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    /* one pass: a token covers at least one byte, plus BOS and the spm dummy prefix */
    int cap = len + 2 < (size_t)INT32_MAX ? (int)len + 2 : INT32_MAX;
    ulm_status st = (ids = malloc((size_t)cap * sizeof *ids)) ? ULM_OK : ulm_set_error(&err, ULM_ERR_NOMEM, "out of memory");
    if (!st) st = tok_encode(t, text, len, flags, ids, cap, &n, &err);
    if (!st && n > cap) st = ulm_set_error(&err, ULM_ERR_INTERNAL, "more tokens than bytes");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    if (st) {
        fprintf(stderr, "ulm tokenize: %s\n", err.msg);
        rc = 1;
    } else if (count) {
        printf("%d\n", n);
    } else if (pieces) {
        for (int i = 0; i < n; i++) {
            size_t pl;
            const char *p = tok_decode_piece(t, ids[i], &pl);
            printf("%6d -> '", ids[i]);
            print_escaped(p, pl);
            printf("'\n");
        }
    } else {
        putchar('[');
        for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
        printf("]\n");
    }
    if (timing && !st) {
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
        double c = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) * 1e-9;
        fprintf(stderr, "%d tokens, %zu bytes, %.3f s per encode, %.2f MB/s; cpu %.3f s, %.2f MB/s\n", n, len, s,
                len / s / 1e6, c, len / c / 1e6);
    }
    free(ids), free(text);
    tok_free(t);
    ulmf_close(f);
    return rc;
}
