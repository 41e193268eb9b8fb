/* ulm inspect FILE: metadata and tensors of a .ulm. ulm verify FILE: check its SHA-256. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
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

int cmd_inspect(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: ulm inspect FILE.ulm\n"); return 2; }
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
