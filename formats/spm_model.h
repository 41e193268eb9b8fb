/* SentencePiece model (tokenizer.model): a hand-written reader of the protobuf fields a
 * tokenizer needs. Hostile input gives ULM_ERR_FORMAT, never an out-of-bounds read.
 *
 * ModelProto: 1 pieces (repeated SentencePiece: 1 piece str, 2 score f32, 3 type enum),
 *             2 trainer_spec (3 model_type, 35 byte_fallback, 40 unk_id, 41 bos_id, 42 eos_id,
 *               43 pad_id), 3 normalizer_spec (1 name, 3 add_dummy_prefix,
 *               4 remove_extra_whitespaces, 5 escape_whitespaces). Other fields are skipped. */
#ifndef ULM_SPM_MODEL_H
#define ULM_SPM_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "ulm.h"

typedef struct spm_piece {
    const char *text; /* points into the parsed buffer */
    uint32_t len;
    float score;
    int type;         /* 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte */
} spm_piece;

enum { SPM_UNIGRAM = 1, SPM_BPE = 2, SPM_WORD = 3, SPM_CHAR = 4 };

typedef struct spm_model {
    spm_piece *pieces;
    int n_pieces;
    int model_type;   /* SPM_* (default unigram, as in sentencepiece_model.proto) */
    int byte_fallback;
    int unk_id, bos_id, eos_id, pad_id; /* -1: none */
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
} spm_model;

/* Parses buf[0..size) (which must outlive the model: pieces point into it). */
ulm_status spm_model_parse(const void *buf, size_t size, spm_model *out, ulm_error *err);
void spm_model_free(spm_model *m);

#endif
