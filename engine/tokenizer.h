/* Tokenizer: SentencePiece-style BPE (scores, byte fallback) and byte-level BPE (GPT-2 style
 * merges with per-family pre-tokenizer rules). The vocabulary lives in the .ulm file and is
 * used in place; load builds only lookup tables.
 *
 * .ulm keys (written by every importer, read by tok_load):
 *   tokenizer.model        str   "spm" | "bpe"
 *   tokenizer.pre          str   pre-tokenizer for bpe: "gpt2", "llama3", "qwen2", "smollm"; spm: "default"
 *   tokenizer.tokens       strarray  token texts (spm: with U+2581 for space; bpe: GPT-2 byte-mapped)
 *   tokenizer.scores       f32 array (spm; optional for bpe); -inf: never the result of a merge
 *   tokenizer.types        u8 array (stored as a bool-element array: 1 byte each; an i32 array
 *                          is accepted too): 1 normal, 2 unknown, 3 control, 4 user-defined,
 *                          5 unused, 6 byte. User-defined tokens are always matched in the text
 *                          before the model runs; control tokens only with ULM_TOK_PARSE_SPECIAL.
 *   tokenizer.merges       i32 array, pairs (left id, right id) in rank order (bpe)
 *   tokenizer.bos_id / eos_id / unk_id / pad_id / eot_id   i32 (absent = none)
 *   tokenizer.add_bos      bool
 *   tokenizer.add_space_prefix  bool (spm dummy prefix)
 *   tokenizer.ignore_merges     bool (bpe: a word that is one token is not merged: Llama 3)
 *   tokenizer.remove_extra_spaces bool (spm: strip and squeeze spaces, SentencePiece's option)
 *   tokenizer.normalizer   str  "none" | "nfc" (Qwen: text is NFC-normalized first)
 *   tokenizer.byte_fallback     bool (spm: unknown characters become <0xXX> tokens; default true)
 *   tokenizer.chat_template str  "gemma3" | "chatml" | "llama3" | "none" (built-in templates)
 */
#ifndef ULM_TOKENIZER_H
#define ULM_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include "ulm.h"

struct ulmf;

enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_USER = 4, TOK_UNUSED = 5, TOK_BYTE = 6 };
typedef enum { TOK_SPM = 1, TOK_BPE = 2 } tok_kind;

typedef struct tokenizer tokenizer;

ulm_status tok_load(const struct ulmf *f, tokenizer **out, ulm_error *err);
void tok_free(tokenizer *t);

int tok_n_vocab(const tokenizer *t);
int tok_bos(const tokenizer *t);   /* -1 if none */
int tok_eos(const tokenizer *t);   /* -1 if none */
int tok_is_eog(const tokenizer *t, int id); /* end of generation: eos, eot, ... */
int tok_add_bos(const tokenizer *t);        /* the model wants BOS first */
const char *tok_chat_template(const tokenizer *t); /* "gemma3" | "chatml" | "llama3" | "none" */

/* Encodes UTF-8 text (flags: ULM_TOK_ADD_BOS, ULM_TOK_PARSE_SPECIAL). Writes up to cap ids,
 * sets *n_out to the number needed. Invalid UTF-8: ULM_ERR_UTF8. */
ulm_status tok_encode(const tokenizer *t, const char *text, size_t len, int flags, int32_t *out, int cap,
                      int *n_out, ulm_error *err);
/* Bytes the token stands for (byte tokens: their byte; spm: U+2581 turned into space;
 * bpe: GPT-2 byte mapping undone; control and user-defined tokens: their text as stored).
 * The spm dummy-prefix space of the first token is left for the caller to drop.
 * Returns a pointer into t's storage, valid while t lives. */
const char *tok_decode_piece(const tokenizer *t, int id, size_t *len);
/* The token's text as stored in the vocabulary. */
const char *tok_piece(const tokenizer *t, int id, size_t *len);
int tok_type(const tokenizer *t, int id);
tok_kind tok_get_kind(const tokenizer *t);
int tok_add_space_prefix(const tokenizer *t);

#endif
