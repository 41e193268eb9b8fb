/* Pre-tokenizers of byte-level BPE (engine/tokenizer_pre.c). */
#ifndef ULM_TOKENIZER_PRE_H
#define ULM_TOKENIZER_PRE_H
#include <stddef.h>
#include <stdint.h>
#include "tokenizer_impl.h"

/* End (exclusive) of the piece that starts at code point i of cp[0..n) (flags fl from
 * unicode_flags). *seg is scratch kept across the calls for one text; start it at 0. */
size_t tok_pre_next(int pre, const uint32_t *cp, const uint8_t *fl, size_t i, size_t n, size_t *seg);

#endif
