/* Architectures as data: what differs between families is a row here, not a code path. */
#include <string.h>
#include "model.h"

static const arch_desc archs[] = {
    /* name      interleaved gelu qkv_bias qk_norm post_norms embed_sqrt */
    {"llama",    1,          0,   0,       0,      0,         0},
    {"qwen2",    0,          0,   1,       0,      0,         0},
    {"qwen3",    0,          0,   0,       1,      0,         0},
    {"gemma3",   0,          1,   0,       1,      1,         1},
};

const arch_desc *arch_find(const char *name) {
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
        if (strcmp(archs[i].name, name) == 0) return &archs[i];
    return NULL;
}
