/* ulm task pack SPEC MODEL.ulm -o TASK.ulm [--golden GOLDEN.jsonl] [--member MODEL2.ulm]...
 * ulm task check SPEC [GOLDEN.jsonl]
 * ulm task run TASK.ulm ["INPUT"] [--json] [--stream] [-t THREADS] [--beam N]
 *   With no INPUT, reads JSONL from stdin ({"input": "..."} or a JSON string per line) and
 *   writes one JSON result per line. `ulm run TASK.ulm ...` lands here via task_cli_run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "args.h"
#include "cli.h"
#include "json.h"
#include "model.h"
#include "task.h"
#include "ulm_file.h"

static const char *usage =
    "usage: ulm task pack SPEC.json MODEL.ulm -o TASK.ulm [--golden GOLDEN.jsonl] [--member MODEL2.ulm]...\n"
    "       ulm task check SPEC.json [GOLDEN.jsonl]\n"
    "       ulm task run TASK.ulm [INPUT] [--json] [--stream] [-t THREADS] [--beam N]\n"
    "  --member: another weight set of the same config and tokenizer (another seed, or the\n"
    "  last step's weights beside the averaged ones); the task decodes from the mean of\n"
    "  all sets' log-probabilities\n"
    "  run with no INPUT reads JSONL inputs on stdin and writes JSONL results\n";

static int kv_equal(const ulmf_kv *a, const ulmf_kv *b) {
    if (a->type != b->type || a->count != b->count || a->elem != b->elem) return 0;
    switch (a->type) {
    case ULMF_STR: return !memcmp(a->data, b->data, a->count);
    case ULMF_ARR: return !memcmp(a->data, b->data, a->count * ulmf_elem_size(a->elem));
    case ULMF_STRARR:
        return !memcmp(a->offs, b->offs, (a->count + 1) * sizeof *a->offs) && !memcmp(a->data, b->data, a->offs[a->count]);
    default: return a->v.u == b->v.u;
    }
}

/* The keys that must agree between weight sets that share one decoder: the config and the
 * tokenizer (model.members is the file's own). */
static int shared_key(const ulmf_kv *kv) {
    size_t n = kv->key_len;
    if (n == 13 && !memcmp(kv->key, "model.members", 13)) return 0;
    return (n >= 6 && !memcmp(kv->key, "model.", 6)) || (n >= 10 && !memcmp(kv->key, "tokenizer.", 10)) ||
           (n == 20 && !memcmp(kv->key, "general.architecture", 20));
}

/* "" when a and b agree on every shared key, else the first key that differs */
static const char *first_mismatch(const ulmf *a, const ulmf *b, char *buf, size_t cap) {
    for (int pass = 0; pass < 2; pass++) {
        const ulmf *x = pass ? b : a, *y = pass ? a : b;
        for (int i = 0; i < ulmf_n_meta(x); i++) {
            const ulmf_kv *kv = ulmf_meta_at(x, i);
            if (!shared_key(kv)) continue;
            snprintf(buf, cap, "%.*s", (int)kv->key_len, kv->key);
            const ulmf_kv *o = ulmf_find(y, buf);
            if (!o || !kv_equal(kv, o)) return buf;
        }
    }
    return "";
}

static int copy_tensors(ulmw *w, const ulmf *f, const char *prefix) {
    for (int i = 0; i < ulmf_n_tensors(f); i++) {
        const ulmf_tensor *t = ulmf_tensor_at(f, i);
        char name[512];
        int n = snprintf(name, sizeof name, "%s%.*s", prefix, (int)t->name_len, t->name);
        if (n < 0 || (size_t)n >= sizeof name) return -1;
        if (ulmw_add_tensor(w, name, t->dtype, t->ndim, t->shape, t->data, 0)) return -1;
    }
    return 0;
}

static int task_pack(int argc, char **argv) {
    const char *spec_path = NULL, *model_path = NULL, *out = NULL, *golden_path = NULL, *v;
    const char *member_path[MODEL_MAX_MEMBERS];
    int n_new = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--member")) {
            if (!(v = arg_value(argc, argv, &i))) return 2;
            if (n_new + 1 >= MODEL_MAX_MEMBERS) {
                fprintf(stderr, "ulm task pack: at most %d weight sets in one file\n", MODEL_MAX_MEMBERS);
                return 2;
            }
            member_path[n_new++] = v;
        } else if (!strcmp(argv[i], "-o")) {
            if (!(v = arg_value(argc, argv, &i))) return 2;
            out = v;
        } else if (!strcmp(argv[i], "--golden")) {
            if (!(v = arg_value(argc, argv, &i))) return 2;
            golden_path = v;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "ulm task pack: unknown option %s\n%s", argv[i], usage);
            return 2;
        } else if (!spec_path) spec_path = argv[i];
        else if (!model_path) model_path = argv[i];
        else { fprintf(stderr, "ulm task pack: unexpected argument '%s'\n", argv[i]); return 2; }
    }
    if (!spec_path || !model_path || !out) { fputs(usage, stderr); return 2; }
    size_t sl, gl = 0;
    char *spec = read_file(spec_path, &sl), *golden = NULL;
    if (!spec) return 1;
    ulm_error err;
    task_spec ts;
    if (task_spec_parse(spec, sl, spec_path, &ts, &err)) {
        fprintf(stderr, "ulm task pack: %s\n", err.msg);
        free(spec);
        return 1;
    }
    task_spec_free(&ts);
    if (golden_path) {
        golden_item *items;
        int n;
        if (!(golden = read_file(golden_path, &gl))) { free(spec); return 1; }
        if (golden_parse(golden, gl, golden_path, &items, &n, &err)) {
            fprintf(stderr, "ulm task pack: %s\n", err.msg);
            free(spec);
            free(golden);
            return 1;
        }
        golden_free(items, n);
    }
    ulmf *f;
    if (ulmf_open(model_path, 1, &f, &err)) {
        fprintf(stderr, "ulm task pack: %s\n", err.msg);
        free(spec);
        free(golden);
        return 1;
    }
    /* the members: each a plain model whose config and tokenizer are the model's own */
    ulmf *mf[MODEL_MAX_MEMBERS] = {0};
    uint32_t n_had = 1;
    ulmf_get_u32(f, "model.members", &n_had); /* re-packing a task file keeps its members */
    int rc = 0;
    if (n_had < 1 || n_had + (uint32_t)n_new > MODEL_MAX_MEMBERS) {
        fprintf(stderr, "ulm task pack: %s: %u weight sets plus %d more is outside [1, %d]\n", model_path, n_had, n_new, MODEL_MAX_MEMBERS);
        rc = 1;
    }
    for (int k = 0; k < n_new && !rc; k++) {
        char key[128];
        uint32_t m = 1;
        const char *bad_key;
        if (ulmf_open(member_path[k], 1, &mf[k], &err)) {
            fprintf(stderr, "ulm task pack: %s\n", err.msg);
            rc = 1;
        } else if (ulmf_get_u32(mf[k], "model.members", &m) == 0 && m != 1) {
            fprintf(stderr, "ulm task pack: %s already holds %u weight sets; give a plain model\n", member_path[k], m);
            rc = 1;
        } else if (*(bad_key = first_mismatch(f, mf[k], key, sizeof key))) {
            fprintf(stderr, "ulm task pack: %s does not match %s in '%s' (members share the config and tokenizer)\n", member_path[k], model_path, bad_key);
            rc = 1;
        }
    }
    ulmw *w = rc ? NULL : ulmw_new();
    int bad = !rc && !w;
    for (int i = 0; w && i < ulmf_n_meta(f) && !bad; i++) {
        const ulmf_kv *kv = ulmf_meta_at(f, i);
        if (kv->key_len >= 5 && !memcmp(kv->key, "task.", 5)) continue; /* re-packing replaces them */
        bad = ulmw_copy_kv(w, kv) != 0;
    }
    if (w && !bad) bad = copy_tensors(w, f, "") != 0;
    for (int k = 0; w && k < n_new && !bad; k++) {
        char prefix[24];
        snprintf(prefix, sizeof prefix, "member%u.", n_had + (uint32_t)k);
        bad = copy_tensors(w, mf[k], prefix) != 0;
    }
    if (w && !bad && n_had + (uint32_t)n_new > 1) bad = ulmw_set_u32(w, "model.members", n_had + (uint32_t)n_new) != 0;
    if (w && !bad) bad = ulmw_set_str(w, "task.spec", spec, sl) != 0;
    if (w && !bad && golden) bad = ulmw_set_str(w, "task.golden", golden, gl) != 0;
    task *check = NULL;
    if (rc) {
    } else if (bad) {
        fprintf(stderr, "ulm task pack: out of memory (or a tensor name over 511 bytes)\n");
        rc = 1;
    } else if (ulmw_write(w, out, &err)) {
        fprintf(stderr, "ulm task pack: %s\n", err.msg);
        rc = 1;
    } else if (task_load(out, 1, &check, &err)) {
        /* every weight set is bound as the runtime binds it, so a bad member fails here */
        fprintf(stderr, "ulm task pack: %s: %s\n", out, err.msg);
        remove(out);
        rc = 1;
    } else {
        fprintf(stderr, "wrote %s (task \"%s\"%s", out, spec_path, golden ? " with golden set" : "");
        if (n_had + (uint32_t)n_new > 1) fprintf(stderr, ", %u weight sets", n_had + (uint32_t)n_new);
        fprintf(stderr, ")\n");
    }
    task_free(check);
    ulmw_free(w);
    for (int k = 0; k < n_new; k++) ulmf_close(mf[k]);
    ulmf_close(f);
    free(spec);
    free(golden);
    return rc;
}

static int task_check(int argc, char **argv) {
    if (argc < 1) { fputs(usage, stderr); return 2; }
    size_t sl;
    char *spec = read_file(argv[0], &sl);
    if (!spec) return 1;
    ulm_error err;
    task_spec ts;
    int rc = 0;
    if (task_spec_parse(spec, sl, argv[0], &ts, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        rc = 1;
    } else {
        task_spec_free(&ts);
    }
    free(spec);
    if (!rc && argc > 1) {
        size_t gl;
        char *g = read_file(argv[1], &gl);
        golden_item *items;
        int n;
        if (!g) return 1;
        if (golden_parse(g, gl, argv[1], &items, &n, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            rc = 1;
        } else {
            golden_free(items, n);
        }
        free(g);
    }
    if (!rc) printf("ok\n");
    return rc;
}

static void print_result_json(FILE *fp, const task_result *r) {
    fputs("{\"output\":", fp);
    json_write_str(fp, r->output ? r->output : "", r->len);
    fprintf(fp, ",\"route\":\"%s\",\"reason\":", r->route == ROUTE_LOCAL ? "local" : "escalate");
    if (r->reason) fprintf(fp, "\"%s\"", r->reason);
    else fputs("null", fp);
    fprintf(fp, ",\"valid\":%s,\"confidence\":{\"min\":%.4f,\"mean\":%.4f},\"tokens\":%d,\"ttft_ms\":%.2f,\"total_ms\":%.2f}\n",
            r->valid ? "true" : "false", r->conf_min, r->conf_mean, r->n_tokens, r->ttft_ms, r->total_ms);
}

static int stream_text(const char *s, size_t n, void *u) {
    fwrite(s, 1, n, (FILE *)u);
    fflush((FILE *)u);
    return 0;
}

int task_cli_run(int argc, char **argv) {
    const char *path = NULL, *input = NULL;
    int as_json = 0, stream = 0, threads = 0, beam = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) as_json = 1;
        else if (!strcmp(argv[i], "--beam")) {
            const char *v = arg_value(argc, argv, &i);
            if (!v || arg_int("--beam", v, 1, TASK_MAX_BEAM, &beam)) return 2;
        }
        else if (!strcmp(argv[i], "--stream")) stream = 1;
        else if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--threads")) {
            const char *v = arg_value(argc, argv, &i);
            if (!v || arg_int("-t", v, 1, 256, &threads)) return 2;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(usage, stdout); return 0; }
        else if (argv[i][0] == '-' && argv[i][1]) { fprintf(stderr, "ulm run: unknown option %s\n%s", argv[i], usage); return 2; }
        else if (!path) path = argv[i];
        else if (!input) input = argv[i];
        else { fprintf(stderr, "ulm run: unexpected argument '%s'\n", argv[i]); return 2; }
    }
    if (!path) { fputs(usage, stderr); return 2; }
    task *t;
    ulm_error err;
    if (task_load(path, threads, &t, &err)) {
        fprintf(stderr, "ulm run: %s\n", err.msg);
        return 1;
    }
    if (beam && task_set_beam(t, beam, &err)) {
        fprintf(stderr, "ulm run: %s: --beam %d: %s\n", path, beam, err.msg);
        task_free(t);
        return 1;
    }
    int rc = 0;
    task_result r;
    if (input) {
        if (task_run(t, input, strlen(input), stream && !as_json ? stream_text : NULL, stdout, &r, &err)) {
            fprintf(stderr, "ulm run: %s\n", err.msg);
            task_free(t);
            return 1;
        }
        if (as_json) print_result_json(stdout, &r);
        else if (stream) putchar('\n');
        else printf("%s\n", r.output);
        fflush(stdout);
        if (!as_json && r.route == ROUTE_ESCALATE) fprintf(stderr, "route: escalate (%s)\n", r.reason);
        task_result_free(&r);
        task_free(t);
        return 0;
    }
    /* batch: JSONL in, JSONL out */
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!n) continue;
        json_doc *d = NULL;
        const char *in = NULL;
        size_t il = 0;
        if (json_parse(line, (size_t)n, &d, &err) == ULM_OK) {
            const json_value *root = json_root(d);
            in = json_is_str(root) ? json_str(root, &il) : json_str(json_get(root, "input"), &il);
        }
        if (!in) {
            fprintf(stdout, "{\"error\":\"stdin:%d: expected {\\\"input\\\": string} or a JSON string\"}\n", lineno);
            rc = 1;
        } else if (task_run(t, in, il, NULL, NULL, &r, &err)) {
            fputs("{\"error\":", stdout);
            json_write_str(stdout, err.msg, strlen(err.msg));
            fputs("}\n", stdout);
            rc = 1;
        } else {
            print_result_json(stdout, &r);
            task_result_free(&r);
        }
        fflush(stdout);
        if (d) json_free(d);
    }
    free(line);
    task_free(t);
    return rc;
}

int cmd_task(int argc, char **argv) {
    if (argc < 2) { fputs(usage, stderr); return 2; }
    if (!strcmp(argv[1], "pack")) return task_pack(argc - 2, argv + 2);
    if (!strcmp(argv[1], "check")) return task_check(argc - 2, argv + 2);
    if (!strcmp(argv[1], "run")) return task_cli_run(argc - 2, argv + 2);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) { fputs(usage, stdout); return 0; }
    fprintf(stderr, "ulm task: unknown subcommand '%s'\n%s", argv[1], usage);
    return 2;
}
