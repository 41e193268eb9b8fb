/* Built-in chat templates (no Jinja): Gemma 3 (<start_of_turn>), ChatML (Qwen, SmolLM2) and
 * Llama 3 (header ids). The template is chosen by name from tokenizer.chat_template.
 *
 * The rendered text holds the control tokens as text, so it is tokenized with
 * ULM_TOK_PARSE_SPECIAL, and with ULM_TOK_ADD_BOS: BOS is left to the tokenizer, never
 * written as text. A system message is optional; Gemma 3 has no system turn and puts it at
 * the start of the first user turn, as its Jinja template does. */
#ifndef ULM_CHAT_TEMPLATE_H
#define ULM_CHAT_TEMPLATE_H
#include <stddef.h>
#include "ulm.h"

typedef struct chat_msg {
    const char *role;    /* "system", "user", "assistant" */
    const char *content; /* UTF-8 */
} chat_msg;

/* 1 if name is a built-in template ("gemma3", "chatml", "llama3"). */
int chat_template_known(const char *name);

/* Renders msgs into buf (NUL-terminated, truncated to cap like snprintf); *len is the full
 * length. add_generation_prompt appends the assistant turn's opening. Errors: ULM_ERR_UNSUPPORTED
 * (unknown template), ULM_ERR_ARG (unknown role, system message not first). */
ulm_status chat_template_apply(const char *name, const chat_msg *msgs, int n_msgs, int add_generation_prompt,
                               char *buf, size_t cap, size_t *len, ulm_error *err);

#endif
