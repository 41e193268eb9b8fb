/* ulm convert INPUT -o OUT.ulm [--type f32|f16|bf16|q8|q4|q8r16|q4r16] [--plain] [--tokenizer FILE]
 * INPUT: a llama2.c checkpoint (.bin, with --tokenizer tokenizer.bin), a .gguf, or a Hugging
 * Face folder (safetensors + config.json + tokenizer files). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "args.h"
#include "cli.h"
#include "convert.h"

static const char *usage =
    "usage: ulm convert INPUT -o OUT.ulm [--type f32|f16|bf16|q8|q4|q8r16|q4r16] [--plain] [--tokenizer FILE]\n"
    "  INPUT: a GGUF file (llama, qwen2, qwen3, gemma3), a Hugging Face folder (config.json,\n"
    "         *.safetensors, tokenizer.json or tokenizer.model), or a llama2.c checkpoint (.bin;\n"
    "         needs --tokenizer tokenizer.bin). --tokenizer replaces the input's own tokenizer.\n"
    "  --type: matrices to f32|f16|bf16|q8|q4 (1-D tensors stay f32); default: as stored\n"
    "  q8/q4 matrices are stored with 16 rows interleaved (q8r16/q4r16: the same values, the\n"
    "  layout the decode kernels read fastest) when their rows allow; --plain keeps the GGUF\n"
    "  Q8_0/Q4_0 block layout\n";

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *tokp = NULL, *type = NULL;
    int plain = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) { if (!(out = arg_value(argc, argv, &i))) return 2; }
        else if (!strcmp(argv[i], "--type")) { if (!(type = arg_value(argc, argv, &i))) return 2; }
        else if (!strcmp(argv[i], "--plain")) plain = 1;
        else if (!strcmp(argv[i], "--tokenizer")) { if (!(tokp = arg_value(argc, argv, &i))) return 2; }
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { fputs(usage, stdout); return 0; }
        else if (argv[i][0] == '-') { fprintf(stderr, "ulm convert: unknown option %s\n%s", argv[i], usage); return 2; }
        else if (!in) in = argv[i];
        else { fprintf(stderr, "ulm convert: unexpected argument %s\n", argv[i]); return 2; }
    }
    if (!in || !out) { fputs(usage, stderr); return 2; }
    converter cv = {.w = ulmw_new(), .target = -1, .plain = plain};
    if (type) {
        cv.target = ulm_dtype_from_name(type);
        if (cv.target < 0 || !ulm_dtype_is_weight((ulm_dtype)cv.target)) {
            fprintf(stderr, "ulm convert: unknown --type '%s' (f32, f16, bf16, q8, q4, q8r16, q4r16)\n", type);
            ulmw_free(cv.w);
            return 2;
        }
    }
    ulm_error err = {0};
    void *keep = NULL;
    ulm_status st;
    struct stat sb;
    char magic[4] = {0};
    if (stat(in, &sb) != 0) { fprintf(stderr, "ulm convert: cannot open %s\n", in); ulmw_free(cv.w); return 1; }
    if (!S_ISDIR(sb.st_mode)) {
        FILE *fp = fopen(in, "rb");
        if (!fp) { fprintf(stderr, "ulm convert: cannot open %s\n", in); ulmw_free(cv.w); return 1; }
        if (fread(magic, 1, 4, fp) != 4) memset(magic, 0, 4);
        fclose(fp);
    }
    if (S_ISDIR(sb.st_mode)) {
        st = convert_hf(&cv, in, tokp, &err);
    } else if (!memcmp(magic, "GGUF", 4)) {
        st = convert_gguf(&cv, in, tokp, &err);
    } else {
        if (!tokp) {
            fprintf(stderr, "ulm convert: %s looks like a llama2.c checkpoint; pass its --tokenizer tokenizer.bin\n", in);
            ulmw_free(cv.w);
            return 2;
        }
        st = convert_llama2c(&cv, in, tokp, &keep, &err);
    }
    if (!st) st = ulmw_write(cv.w, out, &err);
    ulmw_free(cv.w);
    conv_release(&cv);
    free(keep);
    if (st) { fprintf(stderr, "ulm convert: %s\n", err.msg); return 1; }
    fprintf(stderr, "ulm convert: wrote %s\n", out);
    return 0;
}
