/* ulm logits MODEL.ulm (--tokens 1,2,3 | -p TEXT) -o FILE [--no-bos] [-t N] [--kv-type f16|f32]
 * Writes f32 logits at every position of the teacher-forced prompt, raw little-endian
 * [positions][vocab] — the layout of the peer kit's bench.mjs --all-positions dump. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "args.h"
#include "cli.h"
#include "ulm.h"

int cmd_logits(int argc, char **argv) {
    const char *model = NULL, *toks = NULL, *text = NULL, *out = NULL;
    int no_bos = 0;
    ulm_ctx_params cp = {.n_ctx = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-bos")) no_bos = 1;
        else if (!strcmp(a, "--tokens")) { if (!(toks = arg_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-p")) { if (!(text = arg_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "-o")) { if (!(out = arg_value(argc, argv, &i))) return 2; }
        else if (!strcmp(a, "--kv-type")) {
            const char *v = arg_value(argc, argv, &i);
            if (!v || (strcmp(v, "f16") && strcmp(v, "f32"))) { fprintf(stderr, "ulm logits: --kv-type is f16 or f32\n"); return 2; }
            cp.kv_f32 = !strcmp(v, "f32");
        }
        else if (!strcmp(a, "-t")) { const char *v = arg_value(argc, argv, &i); if (!v || arg_int(a, v, 1, 256, &cp.n_threads)) return 2; }
        else if (a[0] != '-' && !model) model = a;
        else { fprintf(stderr, "ulm logits: unexpected argument '%s'\n", a); return 2; }
    }
    if (!model || !out || (!toks == !text)) {
        fprintf(stderr, "usage: ulm logits MODEL.ulm (--tokens 1,2,3 | -p TEXT) -o FILE [--no-bos] [-t N] [--kv-type f16|f32]\n");
        return 2;
    }
    ulm_error err = {0};
    ulm_model *m = NULL;
    ulm_ctx *c = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    int n = 0, rc = 1;
    if (ulm_model_load(model, &m, &err)) goto fail;
    ulm_model_info mi;
    ulm_model_get_info(m, &mi);
    if (toks) {
        size_t cap = strlen(toks) / 2 + 2;
        ids = malloc(cap * sizeof *ids);
        for (const char *p = toks; ids && *p;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 0 || v >= mi.n_vocab) { fprintf(stderr, "ulm logits: bad token list at '%s' (ids are 0..%d)\n", p, mi.n_vocab - 1); goto done; }
            ids[n++] = (int32_t)v;
            p = *end == ',' ? end + 1 : end;
            if (*end && *end != ',') { fprintf(stderr, "ulm logits: bad token list at '%s'\n", end); goto done; }
        }
    } else {
        int flags = no_bos ? 0 : ULM_TOK_ADD_BOS;
        if (ulm_tokenize(m, text, strlen(text), flags, NULL, 0, &n, &err)) goto fail;
        ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
        if (ids && ulm_tokenize(m, text, strlen(text), flags, ids, n, &n, &err)) goto fail;
    }
    if (!ids || n == 0) { fprintf(stderr, "ulm logits: no tokens\n"); goto done; }
    cp.n_ctx = n;
    if (ulm_ctx_new(m, &cp, &c, &err)) goto fail;
    logits = malloc((size_t)n * mi.n_vocab * sizeof *logits);
    if (!logits) { fprintf(stderr, "ulm logits: out of memory for %d x %d logits\n", n, mi.n_vocab); goto done; }
    if (ulm_ctx_eval(c, ids, n, logits, 1, &err)) goto fail;
    FILE *fp = fopen(out, "wb");
    if (!fp || fwrite(logits, sizeof *logits, (size_t)n * mi.n_vocab, fp) != (size_t)n * mi.n_vocab) {
        fprintf(stderr, "ulm logits: cannot write %s\n", out);
        if (fp) fclose(fp);
        goto done;
    }
    fclose(fp);
    fprintf(stderr, "ulm logits: wrote [%d, %d] f32 to %s\n", n, mi.n_vocab, out);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "ulm logits: %s\n", err.msg);
done:
    free(ids);
    free(logits);
    ulm_ctx_free(c);
    ulm_model_free(m);
    return rc;
}
