/* Built-in chat templates: each is the text its model's Jinja template produces for plain
 * text messages (tools, images and reasoning blocks are out of scope). */
#include "chat_template.h"
#include <string.h>
#include "ulm_file.h"

typedef struct out { char *buf; size_t cap, len; } out;

static void put(out *o, const char *s, size_t n) {
    if (o->len < o->cap) {
        size_t k = o->cap - 1 - o->len < n ? o->cap - 1 - o->len : n;
        memcpy(o->buf + o->len, s, k);
        o->buf[o->len + k] = 0;
    }
    o->len += n;
}
static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

/* Jinja's |trim: white space off both ends. */
static void put_trimmed(out *o, const char *s) {
    size_t n = strlen(s);
    while (n && strchr(" \t\n\r\f\v", s[n - 1])) n--;
    while (n && strchr(" \t\n\r\f\v", *s)) s++, n--;
    put(o, s, n);
}

int chat_template_known(const char *name) {
    return name && (!strcmp(name, "gemma3") || !strcmp(name, "chatml") || !strcmp(name, "llama3"));
}

ulm_status chat_template_apply(const char *name, const chat_msg *msgs, int n, int add_gen, char *buf, size_t cap,
                               size_t *len, ulm_error *err) {
    out o = {buf, cap, 0};
    if (cap) buf[0] = 0;
    *len = 0;
    if (!chat_template_known(name))
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "chat template '%s' is not built in", name ? name : "(none)");
    for (int i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r || !msgs[i].content || (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")))
            return ulm_set_error(err, ULM_ERR_ARG, "chat message %d: role must be system, user or assistant", i);
        if (!strcmp(r, "system") && i != 0)
            return ulm_set_error(err, ULM_ERR_ARG, "chat message %d: the system message must come first", i);
    }
    if (!strcmp(name, "gemma3")) {
        int first = 0;
        const char *system = NULL;
        if (n && !strcmp(msgs[0].role, "system")) system = msgs[0].content, first = 1;
        for (int i = first; i < n; i++) {
            int user = !strcmp(msgs[i].role, "user");
            puts_(&o, "<start_of_turn>");
            puts_(&o, user ? "user\n" : "model\n");
            if (i == first && system) { /* Gemma has no system turn */
                puts_(&o, system);
                puts_(&o, "\n\n");
            }
            put_trimmed(&o, msgs[i].content);
            puts_(&o, "<end_of_turn>\n");
        }
        if (add_gen) puts_(&o, "<start_of_turn>model\n");
    } else if (!strcmp(name, "chatml")) {
        for (int i = 0; i < n; i++) {
            puts_(&o, "<|im_start|>");
            puts_(&o, msgs[i].role);
            puts_(&o, "\n");
            puts_(&o, msgs[i].content);
            puts_(&o, "<|im_end|>\n");
        }
        if (add_gen) puts_(&o, "<|im_start|>assistant\n");
    } else { /* llama3 */
        for (int i = 0; i < n; i++) {
            puts_(&o, "<|start_header_id|>");
            puts_(&o, msgs[i].role);
            puts_(&o, "<|end_header_id|>\n\n");
            put_trimmed(&o, msgs[i].content);
            puts_(&o, "<|eot_id|>");
        }
        if (add_gen) puts_(&o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    }
    *len = o.len;
    return ULM_OK;
}
