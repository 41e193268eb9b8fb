/* Tokenizer importers: each reads one source format and writes the tokenizer.* keys listed in
 * engine/tokenizer.h into a .ulm writer, so a model never needs the original files to run.
 *
 *   llama2.c tokenizer.bin    tok_import_llama2c
 *   SentencePiece .model      tok_import_spm_model     (formats/spm_model.h parses the protobuf)
 *   HF tokenizer.json         tok_import_hf_json       (needs formats/json.h)
 *   GGUF tokenizer.ggml.*     tok_import_gguf          (needs formats/gguf.h)
 */
#ifndef ULM_TOK_IMPORT_H
#define ULM_TOK_IMPORT_H
#include "ulm.h"
#include "ulm_file.h"

/* Reads a whole file (malloc'd, NUL after the end). */
ulm_status tok_read_file(const char *path, char **buf, size_t *size, ulm_error *err);

/* llama2.c tokenizer file: i32 max_token_length, then per token f32 score, i32 len, bytes.
 * Written as tokenizer.model "spm" (U+2581 for space, <s>=1, </s>=2, byte fallback). */
ulm_status tok_import_llama2c(const char *tokenizer_bin_path, ulmw *w, ulm_error *err);
ulm_status tok_import_llama2c_mem(const void *buf, size_t size, ulmw *w, ulm_error *err);

/* Hugging Face tokenizer.json (BPE: byte-level, or byte-fallback with "▁" like Gemma 3).
 * tokenizer_config.json and config.json next to it, when present, give BOS/EOS/PAD, add_bos
 * and the chat template. The _mem form takes tokenizer_config.json's text (or NULL). */
ulm_status tok_import_hf_json(const char *tokenizer_json_path, ulmw *w, ulm_error *err);
ulm_status tok_import_hf_json_mem(const char *json, size_t len, const char *config_json, size_t config_len,
                                  ulmw *w, ulm_error *err);

/* SentencePiece tokenizer.model (BPE models; Unigram is refused as unsupported). */
ulm_status tok_import_spm_model(const char *path, ulmw *w, ulm_error *err);
ulm_status tok_import_spm_model_mem(const void *buf, size_t size, ulmw *w, ulm_error *err);

/* GGUF tokenizer.ggml.* keys (model "llama" -> spm, "gpt2" -> bpe; see tok_import_gguf.c for
 * the defaults of absent keys). The _path form opens the file. */
struct gguf;
ulm_status tok_import_gguf(const struct gguf *g, ulmw *w, ulm_error *err);
ulm_status tok_import_gguf_path(const char *path, ulmw *w, ulm_error *err);

/* Picks the importer from the file name: .json, .model, .gguf, .bin (llama2.c). */
ulm_status tok_import_path(const char *path, ulmw *w, ulm_error *err);

#endif
