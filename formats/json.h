/* JSON (RFC 8259) parser into a read-only DOM, and a tiny string writer.
 *
 * Written for hostile input: every byte is bounds-checked, nesting is limited to
 * JSON_MAX_DEPTH without recursion, strings must be valid UTF-8 (lone surrogates in \u escapes
 * are errors), and an error is a one-line "line L, column C: what" message (column in bytes).
 *
 *   json_doc *d; ulm_error e;
 *   if (json_parse_file("config.json", &d, &e)) { ... e.msg ... }
 *   int64_t dim;
 *   if (json_get_int(json_root(d), "hidden_size", &dim) == 0) ...
 *   const json_value *vocab = json_get(json_get(json_root(d), "model"), "vocab");
 *   for (size_t i = 0; i < json_len(vocab); i++) {
 *       size_t klen; const char *k = json_obj_key(vocab, i, &klen);
 *       int64_t id; json_int(json_obj_val(vocab, i), &id);
 *   }
 *   json_free(d);
 *
 * All values live in the document (nothing points into the input buffer, which may be freed
 * right after json_parse). Every accessor accepts NULL and answers "absent", so lookups chain.
 * Strings are unescaped UTF-8, NUL-terminated for convenience, and carry their length (a
 * "\u0000" escape is kept as a NUL byte inside the string). Objects keep member order; a
 * duplicate key is kept as a member, and lookup finds its first occurrence. Lookup in
 * objects of 16 or more members goes through a hash index built at parse time.
 * Numbers are kept as a double, and as an exact int64 when the value is integral (a literal
 * without fraction or exponent that fits int64, or any literal whose double is an integer of
 * magnitude <= 2^53). Numbers beyond the double range are errors. Number conversion uses
 * strtod, so the process must keep the "C" numeric locale (ulm never calls setlocale).
 * A leading UTF-8 byte-order mark is skipped. Inputs must be smaller than 4 GiB. */
#ifndef ULM_JSON_H
#define ULM_JSON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "ulm.h"

#define JSON_MAX_DEPTH 256

typedef enum {
    JSON_NONE = 0, /* absent: the NULL value pointer */
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type;

typedef struct json_doc json_doc;
typedef struct json_value json_value;

/* Parses buf[0..len). Errors: ULM_ERR_FORMAT (syntax, depth, range), ULM_ERR_UTF8 (invalid
 * UTF-8 or lone surrogate in a string), ULM_ERR_NOMEM. On error *out is NULL. */
ulm_status json_parse(const char *buf, size_t len, json_doc **out, ulm_error *err);
/* Reads and parses a file; error messages start with the path. Missing file: ULM_ERR_IO. */
ulm_status json_parse_file(const char *path, json_doc **out, ulm_error *err);
void json_free(json_doc *d);
const json_value *json_root(const json_doc *d);

json_type json_typeof(const json_value *v);
const char *json_type_name(json_type t);
static inline int json_is_null(const json_value *v) { return json_typeof(v) == JSON_NULL; }
static inline int json_is_bool(const json_value *v) { return json_typeof(v) == JSON_BOOL; }
static inline int json_is_num(const json_value *v) { return json_typeof(v) == JSON_NUMBER; }
static inline int json_is_str(const json_value *v) { return json_typeof(v) == JSON_STRING; }
static inline int json_is_arr(const json_value *v) { return json_typeof(v) == JSON_ARRAY; }
static inline int json_is_obj(const json_value *v) { return json_typeof(v) == JSON_OBJECT; }

/* Elements of an array, members of an object, bytes of a string; 0 for anything else. */
size_t json_len(const json_value *v);
/* Element i of an array; NULL if v is not an array or i is out of range. */
const json_value *json_at(const json_value *arr, size_t i);
/* Member named key (first occurrence); NULL if absent or obj is not an object. */
const json_value *json_get(const json_value *obj, const char *key);
const json_value *json_getn(const json_value *obj, const char *key, size_t key_len);
/* Member i of an object, in document order: its key (NUL-terminated, length in *len) and value. */
const char *json_obj_key(const json_value *obj, size_t i, size_t *len);
const json_value *json_obj_val(const json_value *obj, size_t i);

/* String bytes (NUL-terminated) and length; NULL if v is not a string. len may be NULL. */
const char *json_str(const json_value *v, size_t *len);
/* 1 if v is the string s (exact bytes), else 0. */
int json_str_eq(const json_value *v, const char *s);
/* The number as a double; NAN if v is not a number. */
double json_num(const json_value *v);
/* Return 0 and set *out when v has the type (json_int: an integral number), else -1. */
int json_int(const json_value *v, int64_t *out);
int json_bool(const json_value *v, int *out);

/* Shorthands for config files: json_get then the typed accessor. json_get_num also accepts
 * integers; json_get_str's len may be NULL. */
int json_get_int(const json_value *obj, const char *key, int64_t *out);
int json_get_num(const json_value *obj, const char *key, double *out);
int json_get_bool(const json_value *obj, const char *key, int *out);
int json_get_str(const json_value *obj, const char *key, const char **s, size_t *len);

/* ---- writer ---- */
/* Writes s[0..len) as a quoted JSON string into buf (NUL-terminated when cap > 0, truncated
 * to fit); returns the length the full result needs, excluding the NUL (like snprintf).
 * '"', '\\' and control bytes are escaped; other bytes, UTF-8 included, pass through. */
size_t json_escape(char *buf, size_t cap, const char *s, size_t len);
/* Same, to a stream. Returns 0, or -1 on a write error. */
int json_write_str(FILE *fp, const char *s, size_t len);

/* A growable NUL-terminated text for writing JSON; zero-initialize it, free p. On allocation
 * failure oom is set and appends stop. */
typedef struct json_buf { char *p; size_t n, cap; int oom; } json_buf;
void json_buf_put(json_buf *b, const char *s, size_t len);
/* s[0..len) as a quoted JSON string, escaped as json_escape does. */
void json_buf_str(json_buf *b, const char *s, size_t len);

#endif
