/* Tagged spans: parsing the form, and model text <-> JSON answer (tagged_spans.h). */
#include "tagged_spans.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"
#include "ulm_file.h"

ulm_status tagged_form_parse(const json_value *spec, tagged_form *f, ulm_error *err) {
    memset(f, 0, sizeof *f);
    static const char *const known[] = {"type", "tags", "max_items", "space_before_spans", "leading_space"};
    for (size_t i = 0; i < json_len(spec); i++) {
        const char *k = json_obj_key(spec, i, NULL);
        size_t j = 0;
        while (j < sizeof known / sizeof *known && strcmp(k, known[j])) j++;
        if (j == sizeof known / sizeof *known)
            return ulm_set_error(err, ULM_ERR_SPEC, "constraint: tagged_spans has an unknown key \"%.40s\"", k);
    }
    const json_value *tags = json_get(spec, "tags");
    size_t n = json_len(tags);
    if (!json_is_obj(tags) || n < 1 || n > TAGGED_MAX_TAGS)
        return ulm_set_error(err, ULM_ERR_SPEC, "constraint: tagged_spans needs \"tags\", an object of 1..%d tags",
                             TAGGED_MAX_TAGS);
    for (size_t i = 0; i < n; i++) {
        size_t tl, kl;
        const char *t = json_obj_key(tags, i, &tl);
        const char *k = json_str(json_obj_val(tags, i), &kl);
        if (tl != 1 || t[0] < 0x21 || t[0] > 0x7E)
            return ulm_set_error(err, ULM_ERR_SPEC, "constraint: tagged_spans tag %zu must be one printable ASCII character", i);
        if (!k || !kl) return ulm_set_error(err, ULM_ERR_SPEC, "constraint: tagged_spans tag '%c' needs a key (a non-empty string)", t[0]);
        for (int j = 0; j < f->n_tags; j++) {
            if (f->tag[j] == t[0]) return ulm_set_error(err, ULM_ERR_SPEC, "constraint: tagged_spans tag '%c' repeats", t[0]);
            if (f->key_len[j] == kl && !memcmp(f->key[j], k, kl))
                return ulm_set_error(err, ULM_ERR_SPEC, "constraint: tagged_spans key \"%.40s\" repeats", k);
        }
        f->tag[f->n_tags] = t[0];
        f->key[f->n_tags] = k;
        f->key_len[f->n_tags++] = kl;
    }
    f->max_items = 32;
    const json_value *mi = json_get(spec, "max_items");
    int64_t v;
    if (mi) {
        if (json_int(mi, &v) || v < 1 || v > TAGGED_MAX_ITEMS)
            return ulm_set_error(err, ULM_ERR_SPEC, "constraint: tagged_spans \"max_items\" must be 1..%d", TAGGED_MAX_ITEMS);
        f->max_items = (int)v;
    }
    const json_value *sp = json_get(spec, "space_before_spans");
    if (sp) {
        if (json_bool(sp, &f->space)) return ulm_set_error(err, ULM_ERR_SPEC, "constraint: tagged_spans \"space_before_spans\" must be true or false");
    }
    return ULM_OK;
}

static int tag_index(const tagged_form *f, char c) {
    for (int i = 0; i < f->n_tags; i++)
        if (f->tag[i] == c) return i;
    return -1;
}

typedef struct item { size_t start, end; int tag; } item;

/* Splits model text into items; -1 (with a message) when it is not in the form. */
static int split_items(const tagged_form *f, const char *text, size_t len, item *it, int cap, int *n, ulm_error *err) {
    *n = 0;
    for (size_t i = 0; i < len;) {
        const char *sep = memchr(text + i, TAGGED_SEP, len - i);
        if (!sep) return ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: item %d has no separator", *n), -1;
        size_t s = (size_t)(sep - text);
        if (f->space) {
            if (text[i] != ' ') return ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: item %d does not start with a space", *n), -1;
            i++;
        }
        if (s == i) return ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: item %d is empty", *n), -1;
        if (s + 1 >= len) return ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: item %d has no tag", *n), -1;
        int t = tag_index(f, text[s + 1]);
        if (t < 0) return ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: item %d has an unknown tag", *n), -1;
        if (*n >= cap) return ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: more than %d items", cap), -1;
        it[(*n)++] = (item){i, s, t};
        i = s + 2;
    }
    return 0;
}

/* The answer object: each key's strings in item order, repeats dropped. */
static ulm_status write_json(const tagged_form *f, const char *text, const item *it, int n, char **out, size_t *out_len,
                             ulm_error *err) {
    json_buf b = {0};
    json_buf_put(&b, "{", 1);
    for (int k = 0; k < f->n_tags; k++) {
        if (k) json_buf_put(&b, ",", 1);
        json_buf_str(&b, f->key[k], f->key_len[k]);
        json_buf_put(&b, ":[", 2);
        int first = 1;
        for (int i = 0; i < n; i++) {
            if (it[i].tag != k) continue;
            size_t l = it[i].end - it[i].start;
            int seen = 0;
            for (int j = 0; j < i && !seen; j++)
                seen = it[j].tag == k && it[j].end - it[j].start == l && !memcmp(text + it[j].start, text + it[i].start, l);
            if (seen) continue;
            if (!first) json_buf_put(&b, ",", 1);
            json_buf_str(&b, text + it[i].start, l);
            first = 0;
        }
        json_buf_put(&b, "]", 1);
    }
    json_buf_put(&b, "}", 1);
    if (b.oom) {
        free(b.p);
        return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    }
    *out = b.p;
    if (out_len) *out_len = b.n;
    return ULM_OK;
}

ulm_status tagged_to_json(const tagged_form *f, const char *text, size_t len, char **out, size_t *out_len,
                          ulm_error *err) {
    *out = NULL;
    item it[TAGGED_MAX_ITEMS];
    int n;
    if (split_items(f, text, len, it, TAGGED_MAX_ITEMS, &n, err)) return ULM_ERR_FORMAT;
    return write_json(f, text, it, n, out, out_len, err);
}

/* Word bytes, as the constraint's word spans see them: ASCII letters and digits, and every
 * byte of a non-ASCII character. */
static int word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* The first occurrence of s in input at or after `from` that is a word span: -1 if none. */
static long find_word_span(const char *input, size_t in_len, size_t from, const char *s, size_t n) {
    if (!n || !word_byte((unsigned char)s[0]) || !word_byte((unsigned char)s[n - 1])) return -1;
    for (size_t i = from; i + n <= in_len; i++) {
        const char *p = memchr(input + i, s[0], in_len - n + 1 - i);
        if (!p) return -1;
        i = (size_t)(p - input);
        if (memcmp(p, s, n)) continue;
        if (i > 0 && word_byte((unsigned char)input[i - 1])) continue;
        if (i + n < in_len && word_byte((unsigned char)input[i + n])) continue;
        return (long)i;
    }
    return -1;
}

static int overlaps_any(const item *it, int n, size_t start, size_t end) {
    for (int i = 0; i < n; i++)
        if (start < it[i].end && it[i].start < end) return 1;
    return 0;
}

static int by_start(const void *a, const void *b) {
    const item *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

ulm_status tagged_from_json(const tagged_form *f, const char *input, size_t in_len, const char *json, size_t len,
                            char **out, size_t *out_len, ulm_error *err) {
    *out = NULL;
    json_doc *d;
    if (json_parse(json, len, &d, NULL)) return ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: the answer is not JSON");
    const json_value *root = json_root(d);
    ulm_status st = ULM_OK;
    item it[TAGGED_MAX_ITEMS];
    int n = 0;
    if (!json_is_obj(root)) {
        st = ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: the answer is not an object");
        goto done;
    }
    for (size_t i = 0; i < json_len(root); i++) {
        size_t kl;
        const char *k = json_obj_key(root, i, &kl);
        int found = 0;
        for (int t = 0; t < f->n_tags && !found; t++) found = f->key_len[t] == kl && !memcmp(f->key[t], k, kl);
        if (!found) {
            st = ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: the answer has a key no tag names (\"%.40s\")", k);
            goto done;
        }
    }
    for (int t = 0; t < f->n_tags; t++) {
        const json_value *list = json_getn(root, f->key[t], f->key_len[t]);
        if (!list) continue;
        if (!json_is_arr(list)) {
            st = ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: \"%.40s\" is not a list", f->key[t]);
            goto done;
        }
        size_t from = 0;
        for (size_t i = 0; i < json_len(list); i++) {
            size_t sl;
            const char *s = json_str(json_at(list, i), &sl);
            if (!s) {
                st = ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: \"%.40s\" holds a non-string", f->key[t]);
                goto done;
            }
            for (size_t j = 0; j < sl; j++)
                if ((unsigned char)s[j] < 0x20) {
                    st = ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: a string holds a control character");
                    goto done;
                }
            /* the first occurrence that no string of an earlier key holds: in "Sko-bri Smith
             * moved to Sko", the place "Sko" is the second one */
            long at = find_word_span(input, in_len, from, s, sl);
            int held = 0;
            while (at >= 0 && overlaps_any(it, n, (size_t)at, (size_t)at + sl))
                held = 1, at = find_word_span(input, in_len, (size_t)at + 1, s, sl);
            if (at < 0 && held) {
                st = ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: \"%.60s\" overlaps another string wherever it is in the input", s);
                goto done;
            }
            if (at < 0) {
                st = ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: \"%.60s\" is not a word span of the input after the previous one", s);
                goto done;
            }
            if (n >= f->max_items) {
                st = ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: more than %d items", f->max_items);
                goto done;
            }
            it[n++] = (item){(size_t)at, (size_t)at + sl, t};
            from = (size_t)at + sl;
        }
    }
    qsort(it, (size_t)n, sizeof *it, by_start);
    for (int i = 1; i < n; i++)
        if (it[i].start < it[i - 1].end) {
            st = ulm_set_error(err, ULM_ERR_FORMAT, "tagged spans: two strings overlap in the input");
            goto done;
        }
    json_buf b = {0};
    for (int i = 0; i < n; i++) {
        char sep[2] = {TAGGED_SEP, f->tag[it[i].tag]};
        if (f->space) json_buf_put(&b, " ", 1);
        json_buf_put(&b, input + it[i].start, it[i].end - it[i].start);
        json_buf_put(&b, sep, 2);
    }
    if (!b.p) json_buf_put(&b, "", 0);
    if (b.oom) {
        free(b.p);
        st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
        goto done;
    }
    *out = b.p;
    if (out_len) *out_len = b.n;
done:
    json_free(d);
    return st;
}
