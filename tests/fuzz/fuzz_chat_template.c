/* Built-in chat templates: the first byte picks the template (gemma3, chatml, llama3, or an
 * unknown name), then messages separated by NUL, each led by a byte that picks its role.
 * Properties: the length reported does not depend on the buffer, and a small buffer gets
 * the full rendering's prefix, NUL-terminated (snprintf's contract). */
#include "chat_template.h"
#include "fuzz.h"

int fuzz_chat_template(const uint8_t *data, size_t size) {
    static const char *names[] = {"gemma3", "chatml", "llama3", "jinja"};
    static const char *roles[] = {"system", "user", "assistant", "tool"};
    if (size < 1) return 0;
    const char *name = names[data[0] & 3];
    int gen = data[0] >> 7;
    chat_msg msgs[16];
    char *copy = malloc(size);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = 0;
    int n = 0;
    for (char *p = copy; p < copy + size - 1 && n < 16;) {
        size_t l = strlen(p);
        if (l) {
            msgs[n].role = roles[(uint8_t)p[0] & 3];
            msgs[n].content = p + 1;
            n++;
        }
        p += l + 1;
    }
    ulm_error err;
    size_t full = 0, small = 0;
    ulm_status st = chat_template_apply(name, msgs, n, gen, NULL, 0, &full, &err);
    if (st == ULM_OK) {
        char *buf = malloc(full + 1), tiny[7];
        FUZZ_CHECK(buf != NULL);
        size_t len = 0;
        FUZZ_CHECK(chat_template_apply(name, msgs, n, gen, buf, full + 1, &len, &err) == ULM_OK && len == full);
        FUZZ_CHECK(strlen(buf) == full);
        FUZZ_CHECK(chat_template_apply(name, msgs, n, gen, tiny, sizeof tiny, &small, &err) == ULM_OK && small == full);
        size_t k = full < sizeof tiny - 1 ? full : sizeof tiny - 1;
        FUZZ_CHECK(memcmp(tiny, buf, k) == 0 && tiny[k] == 0);
        free(buf);
    }
    free(copy);
    return 0;
}
FUZZ_ENTRY(fuzz_chat_template)
