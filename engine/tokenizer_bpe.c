/* Byte-level BPE encoding (GPT-2 style: SmolLM2, Qwen2/3, Llama 3). */
#include "tokenizer_impl.h"

ulm_status tok_encode_bpe(const tokenizer *t, tok_work *w, const char *s, size_t n, tok_out *o) {
    return ULM_ERR_UNSUPPORTED;
}
