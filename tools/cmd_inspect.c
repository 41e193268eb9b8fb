/* ulm inspect FILE: metadata and tensors of a .ulm. ulm verify FILE: check its SHA-256. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "gguf.h"
#include "ulm_file.h"

static void print_kv(const ulmf_kv *kv) {
    printf("  %-40.*s ", (int)kv->key_len, kv->key);
    switch (kv->type) {
    case ULMF_U32: case ULMF_U64: printf("%llu\n", (unsigned long long)kv->v.u); break;
    case ULMF_I32: printf("%lld\n", (long long)kv->v.i); break;
    case ULMF_BOOL: printf("%s\n", kv->v.u ? "true" : "false"); break;
    case ULMF_F32: case ULMF_F64: printf("%g\n", kv->v.f); break;
    case ULMF_STR: {
        int n = kv->count > 60 ? 60 : (int)kv->count;
        putchar('"');
        for (int i = 0; i < n; i++) {
            unsigned char c = ((const unsigned char *)kv->data)[i];
            if (c == '\n') fputs("\\n", stdout);
            else if (c < 0x20) printf("\\x%02x", c);
            else putchar(c);
        }
        printf("\"%s\n", kv->count > 60 ? "... (" : "");
        if (kv->count > 60) printf("    %llu bytes)\n", (unsigned long long)kv->count);
        break;
    }
    case ULMF_ARR: printf("[%llu x %s]\n", (unsigned long long)kv->count,
                          kv->elem == ULMF_F32 ? "f32" : kv->elem == ULMF_I32 ? "i32" : kv->elem == ULMF_U32 ? "u32" : kv->elem == ULMF_BOOL ? "u8" : "u64/f64"); break;
    case ULMF_STRARR: printf("[%llu strings]\n", (unsigned long long)kv->count); break;
    }
}

static void print_gguf_kv(const gguf_kv *kv) {
    printf("  %-40s ", kv->key);
    switch (kv->type) {
    case GGUF_STR: printf("\"%.*s\"%s\n", kv->str.len > 60 ? 60 : (int)kv->str.len, kv->str.s, kv->str.len > 60 ? "..." : ""); break;
    case GGUF_ARR: printf("[%llu x %s]\n", (unsigned long long)kv->count, gguf_type_name(kv->arr_type)); break;
    case GGUF_F32: case GGUF_F64: printf("%g\n", kv->v.f); break;
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64: printf("%lld\n", (long long)kv->v.i); break;
    case GGUF_BOOL: printf("%s\n", kv->v.u ? "true" : "false"); break;
    default: printf("%llu\n", (unsigned long long)kv->v.u); break;
    }
}

static int inspect_gguf(const char *path) {
    gguf *g;
    ulm_error err;
    if (gguf_open(path, &g, &err)) { fprintf(stderr, "ulm inspect: %s\n", err.msg); return 1; }
    printf("%s: GGUF version %u, alignment %u, %d metadata entries, %d tensors\n", path, gguf_version(g),
           gguf_alignment(g), gguf_n_kv(g), gguf_n_tensors(g));
    printf("metadata:\n");
    for (int i = 0; i < gguf_n_kv(g); i++) print_gguf_kv(gguf_kv_at(g, i));
    printf("tensors:\n");
    for (int i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        char shape[96];
        int o = 0;
        for (int d = (int)t->n_dims - 1; d >= 0; d--) /* outermost first, like .ulm */
            o += snprintf(shape + o, sizeof shape - (size_t)o, d == (int)t->n_dims - 1 ? "%llu" : ", %llu", (unsigned long long)t->ne[d]);
        printf("  %-32s %-6s [%s] %llu bytes @ %llu\n", t->name, gguf_ggml_type_name(t->type), shape,
               (unsigned long long)t->size, (unsigned long long)t->offset);
    }
    gguf_close(g);
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: ulm inspect FILE.ulm|FILE.gguf\n"); return 2; }
    FILE *fp = fopen(argv[1], "rb");
    char magic[4] = {0};
    if (fp) { if (fread(magic, 1, 4, fp) != 4) magic[0] = 0; fclose(fp); }
    if (!memcmp(magic, "GGUF", 4)) return inspect_gguf(argv[1]);
    ulmf *f;
    ulm_error err;
    if (ulmf_open(argv[1], 0, &f, &err)) { fprintf(stderr, "ulm inspect: %s\n", err.msg); return 1; }
    printf("%s: .ulm version %u, %llu bytes, %d metadata entries, %d tensors\n", argv[1], ulmf_version(f),
           (unsigned long long)ulmf_file_size(f), ulmf_n_meta(f), ulmf_n_tensors(f));
    printf("metadata:\n");
    for (int i = 0; i < ulmf_n_meta(f); i++) print_kv(ulmf_meta_at(f, i));
    printf("tensors:\n");
    for (int i = 0; i < ulmf_n_tensors(f); i++) {
        const ulmf_tensor *t = ulmf_tensor_at(f, i);
        char shape[96];
        int o = 0;
        for (uint32_t d = 0; d < t->ndim; d++) o += snprintf(shape + o, sizeof shape - (size_t)o, d ? ", %llu" : "%llu", (unsigned long long)t->shape[d]);
        printf("  %-32.*s %-5s [%s] %llu bytes @ %llu\n", (int)t->name_len, t->name, ulm_dtype_name(t->dtype), shape,
               (unsigned long long)t->size, (unsigned long long)((const char *)t->data - (const char *)ulmf_base(f)));
    }
    ulmf_close(f);
    return 0;
}

int cmd_verify(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: ulm verify FILE.ulm\n"); return 2; }
    ulmf *f;
    ulm_error err;
    if (ulmf_open(argv[1], 0, &f, &err)) { fprintf(stderr, "ulm verify: %s\n", err.msg); return 1; }
    char hex[65];
    ulm_status st = ulmf_verify_hash(f, hex, &err);
    ulmf_close(f);
    if (st) { fprintf(stderr, "ulm verify: %s: %s\n", argv[1], err.msg); return 1; }
    printf("%s: OK sha256 %s\n", argv[1], hex);
    return 0;
}
