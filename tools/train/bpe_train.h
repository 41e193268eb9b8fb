/* A small byte-level BPE tokenizer trainer for task micro-models (GPT-2 style).
 *
 * Text is first cut into pieces by the GPT-2 pre-tokenizer rule ("gpt2" in engine/tokenizer.h):
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * i.e. English contractions; a run of letters, of digits, or of other symbols, each with at
 * most one leading space; runs of whitespace, leaving the last one to the next piece when a
 * non-space follows. Character classes (see bpe_char_class): exact for ASCII and Latin-1;
 * above U+00FF, whitespace and the punctuation/symbol blocks listed in bpe_train.c are what
 * Unicode says, and everything else counts as a letter (the task data is ASCII and Latin
 * letters only). Bytes that are not valid UTF-8 count as "other", one byte each.
 *
 * Merges are learned on the pieces (never across them): start from the 256 bytes, repeatedly
 * merge the most frequent adjacent pair (ties: smallest left id, then smallest right id),
 * until the vocabulary (bytes + merges + special tokens) reaches vocab_size or no pair occurs
 * twice. A merge whose text already is a token reuses it, so the merged token of (l, r) is
 * always the token whose text is text(l) + text(r).
 *
 * Vocabulary layout: ids 0-255 are the bytes (id = byte value), then merged tokens in the
 * order learned, then the special tokens (CONTROL). Token texts use the GPT-2 byte-to-unicode
 * mapping (space is "Ġ", newline "Ċ"). */
#ifndef ULM_BPE_TRAIN_H
#define ULM_BPE_TRAIN_H
#include <stddef.h>
#include <stdint.h>
#include "ulm.h"
#include "ulm_file.h"

/* The default special tokens, in this order after the learned tokens. */
#define BPE_BOS "<|bos|>"
#define BPE_EOS "<|eos|>"
#define BPE_PAD "<|pad|>"
#define BPE_IN "<|in|>"   /* task input follows */
#define BPE_OUT "<|out|>" /* task output follows */

typedef struct bpe_model {
    int n_vocab;
    char **tokens;      /* [n_vocab] byte-mapped texts, NUL-terminated */
    uint8_t *types;     /* [n_vocab] TOK_NORMAL or TOK_CONTROL */
    int32_t *merges;    /* [n_merges][2] (left id, right id) in rank order */
    int32_t *merge_out; /* [n_merges] id of the merged token */
    int n_merges;
    int first_special;  /* id of the first special token; specials run to n_vocab */
    int bos_id, eos_id, pad_id; /* -1 when not among the specials */
} bpe_model;

/* Character class for the pre-tokenizer. */
enum { BPE_LETTER, BPE_NUMBER, BPE_SPACE, BPE_OTHER };
int bpe_char_class(uint32_t cp);

/* Length in bytes of the pre-tokenizer piece starting at s[pos] (pos < len). */
size_t bpe_pretok_next(const char *s, size_t len, size_t pos);

/* GPT-2 byte-to-unicode: the code point that stands for byte b in token texts. */
uint32_t bpe_byte_to_cp(uint8_t b);

/* Learns a tokenizer from n texts (lens may be NULL for NUL-terminated texts). specials
 * (n_specials of them, NULL = the five defaults above) come last; bos/eos/pad ids are set
 * when BPE_BOS/BPE_EOS/BPE_PAD are among them. vocab_size counts everything. */
ulm_status bpe_learn(const char *const *texts, const size_t *lens, size_t n, int vocab_size,
                     const char *const *specials, int n_specials, bpe_model *out, ulm_error *err);
void bpe_model_free(bpe_model *m);

/* Writes the tokenizer.* keys of engine/tokenizer.h: model "bpe", pre "gpt2", tokens, types,
 * merges, bos/eos/pad ids, add_bos true, chat_template "none". */
ulm_status bpe_write(const bpe_model *m, ulmw *w, ulm_error *err);

/* bpe_learn with the default specials, then bpe_write. */
ulm_status bpe_train(const char *const *texts, size_t n, int vocab_size, ulmw *w, ulm_error *err);

#endif
