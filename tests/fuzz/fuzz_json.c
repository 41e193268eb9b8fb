/* The JSON parser (task specs, golden sets, tokenizer.json, safetensors headers, config.json):
 * any bytes parse or give an error; every string of a parsed document survives json_escape and
 * a second parse unchanged, and json_escape measures like snprintf. */
#include "fuzz.h"
#include "json.h"

static void fz_json_check_string(const char *s, size_t len) {
    size_t need = json_escape(NULL, 0, s, len);
    char *q = malloc(need + 1);
    FUZZ_CHECK(q != NULL);
    FUZZ_CHECK(json_escape(q, need + 1, s, len) == need && strlen(q) == need);
    json_doc *d = NULL;
    ulm_error err;
    FUZZ_CHECK(json_parse(q, need, &d, &err) == ULM_OK);
    size_t len2;
    const char *s2 = json_str(json_root(d), &len2);
    FUZZ_CHECK(s2 && len2 == len && memcmp(s, s2, len) == 0);
    json_free(d);
    free(q);
}

static void fz_json_walk(const json_value *v, int depth) {
    FUZZ_CHECK(depth <= JSON_MAX_DEPTH + 1);
    size_t len;
    const char *s;
    int64_t i;
    switch (json_typeof(v)) {
    case JSON_STRING:
        s = json_str(v, &len);
        FUZZ_CHECK(s != NULL);
        if (depth < 3) fz_json_check_string(s, len);
        break;
    case JSON_NUMBER:
        json_int(v, &i);
        break;
    case JSON_ARRAY:
        for (size_t k = 0; k < json_len(v); k++) fz_json_walk(json_at(v, k), depth + 1);
        break;
    case JSON_OBJECT:
        for (size_t k = 0; k < json_len(v); k++) {
            s = json_obj_key(v, k, &len);
            FUZZ_CHECK(s != NULL);
            /* the first member with a key is the one json_getn finds */
            const json_value *f = json_getn(v, s, len);
            FUZZ_CHECK(f != NULL);
            fz_json_walk(json_obj_val(v, k), depth + 1);
        }
        break;
    default:
        break;
    }
}

int fuzz_json(const uint8_t *data, size_t size) {
    json_doc *d = NULL;
    ulm_error err;
    if (json_parse((const char *)data, size, &d, &err) != ULM_OK) return 0;
    fz_json_walk(json_root(d), 0);
    json_free(d);
    return 0;
}
FUZZ_ENTRY(fuzz_json)
