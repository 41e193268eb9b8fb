/* Tokenizer internals shared by engine/tokenizer*.c (not part of the engine's interface). */
#ifndef ULM_TOKENIZER_IMPL_H
#define ULM_TOKENIZER_IMPL_H
#include <stddef.h>
#include <stdint.h>
#include "tokenizer.h"

#define TOK_MAX_EOG 8

typedef struct tok_merge { int32_t left, right, rank, result; } tok_merge; /* rank -1: empty slot */
typedef struct tok_trie { int32_t child, sibling, id; uint8_t byte, pad[3]; } tok_trie;

/* Pre-tokenizers of byte-level BPE (engine/tokenizer_pre.c). */
enum { TOK_PRE_DEFAULT = 0, TOK_PRE_GPT2, TOK_PRE_LLAMA3, TOK_PRE_QWEN2, TOK_PRE_SMOLLM };

struct tokenizer {
    tok_kind kind;
    int pre;
    int n_vocab;
    const uint32_t *offs; /* [n_vocab+1] into blob: the vocabulary, in the mapping */
    const char *blob;
    const float *scores;  /* [n_vocab] or NULL (bpe) */
    uint8_t *types;       /* [n_vocab] TOK_* */
    int32_t *ht;          /* piece hash: token id or -1 */
    uint32_t ht_mask;
    tok_merge *mt;        /* merge hash (bpe) */
    uint32_t mt_mask;
    tok_trie *trie;       /* special tokens; node 0 is the root */
    int n_trie, cap_trie;
    uint8_t trie_first[256]; /* bytes some special token starts with */
    char *dec;            /* decoded bytes of every token */
    uint32_t *dec_offs;   /* [n_vocab+1] */
    uint8_t spm_glue[256];   /* spm: 1 if a piece has U+2581 after a character ending in this byte */
    int byte_tok[256];    /* token of one byte (spm <0xXX>, bpe mapped char), -1 if none */
    int bos, eos, unk, pad, eot;
    int eog[TOK_MAX_EOG], n_eog;
    int add_bos, add_space_prefix, ignore_merges, byte_fallback, remove_extra_spaces, nfc;
    char chat[16];
};

/* Growing output: counts every id, stores the first cap. */
typedef struct tok_out { int32_t *out; int cap, n; } tok_out;
int tok_out_push(tok_out *o, int id);

/* Candidate merge in the heap: lower key first, then leftmost. */
typedef struct tok_cand { float key; int32_t left, right, len, id; } tok_cand;

/* Scratch reused across the spans of one encode call. */
typedef struct tok_work {
    int32_t *sym_start, *sym_len, *sym_prev, *sym_next, *sym_id; /* symbols [cap_sym] */
    int cap_sym;
    tok_cand *heap;
    int n_heap, cap_heap;
    char *buf; /* normalized text / mapped word */
    size_t cap_buf;
    uint32_t *cps, *boff; /* code points of a span and their byte offsets [cap_cp] */
    uint8_t *fls;         /* their unicode flags */
    size_t cap_cp;
    char *nfc;            /* NFC of the current span (normalizer "nfc") */
    size_t cap_nfc;
} tok_work;
void tok_work_free(tok_work *w);
int tok_work_reserve(tok_work *w, size_t n_sym, size_t n_buf);
int tok_work_reserve_cp(tok_work *w, size_t n_cp);
int tok_heap_push(tok_work *w, tok_cand c);
tok_cand tok_heap_pop(tok_work *w);

int tok_find(const tokenizer *t, const char *s, size_t n);
int tok_find_merge(const tokenizer *t, int l, int r, int *result);

ulm_status tok_encode_spm(const tokenizer *t, tok_work *w, const char *s, size_t n, int prefix, tok_out *o);
ulm_status tok_encode_bpe(const tokenizer *t, tok_work *w, const char *s, size_t n, tok_out *o);
ulm_status tok_build_decoded(tokenizer *t, ulm_error *err);

int tok_pre_from_name(const char *name);
/* GPT-2 byte map: byte -> its printable code point as UTF-8; returns the length (1 or 2). */
size_t tok_byte_to_utf8(int byte, char *out);
/* Length of the valid UTF-8 prefix of s (== n when all of s is valid). */
size_t tok_utf8_validate(const char *s, size_t n);
/* Decodes one code point of valid UTF-8; returns its byte length. */
int tok_utf8_next(const char *s, size_t n, uint32_t *cp);

#endif
