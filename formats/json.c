/* JSON parser: one pass over the input, no recursion.
 *
 * Values being built wait on a temporary stack; when a container closes, its children (for an
 * object: key, value, key, value, ...) are moved as one contiguous run into the arena, so a
 * container is a (pointer, count) pair and element access is O(1). Unescaped strings go into
 * one buffer sized from the input up front: an escape never expands (\uXXXX gives at most 3
 * bytes, a 12-byte surrogate pair 4) and every string spends at least 2 quote bytes, which
 * pays for its NUL, so all strings fit in len + 1 bytes and their pointers never move. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"
#include "ulm_file.h"

#define JSON_STR_(x) #x
#define JSON_STR(x) JSON_STR_(x)
#define INDEX_MIN 16           /* objects this large get a hash index */
#define BLOCK_VALUES (1u << 15) /* arena block, in values */

struct json_value {
    uint8_t type;   /* json_type */
    uint8_t is_int; /* numbers: b.i holds the exact value */
    uint32_t len;   /* string bytes, array elements, object members */
    union { double num; const char *str; json_value *kids; } a;
    union { int64_t i; uint32_t *index; int boolean; } b; /* object index: cap slots of member+1 */
};

typedef struct block { struct block *next; size_t used, cap; _Alignas(16) unsigned char mem[]; } block;

struct json_doc {
    json_value root;
    block *blocks;
    char *strings;
};

typedef struct {
    const unsigned char *s;
    size_t len, pos;
    json_doc *doc;
    char *sout;                /* next free byte in doc->strings */
    json_value *stack;         /* values waiting for their container to close */
    size_t sn, scap;
    char *numbuf;              /* NUL-terminated copy of a long number for strtod */
    size_t numcap;
    ulm_error *err;
    ulm_status st;
} parser;

/* ---- arena ---- */
static void *arena_alloc(json_doc *d, size_t bytes) {
    bytes = (bytes + 15) & ~(size_t)15;
    block *b = d->blocks;
    if (!b || b->cap - b->used < bytes) {
        size_t cap = BLOCK_VALUES * sizeof(json_value);
        if (cap < bytes) cap = bytes;
        block *nb = malloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->used = 0;
        nb->cap = cap;
        /* keep the partly used block first when the new one is a one-off big run */
        if (b && bytes > BLOCK_VALUES * sizeof(json_value) / 2) {
            nb->next = b->next;
            b->next = nb;
            nb->used = bytes;
            return nb->mem;
        }
        nb->next = b;
        d->blocks = b = nb;
    }
    void *p = b->mem + b->used;
    b->used += bytes;
    return p;
}

/* ---- errors ---- */
static ulm_status fail_at(parser *p, size_t at, ulm_status code, const char *what) {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        if (p->s[i] == '\n') line++, col = 1;
        else col++;
    }
    p->st = ulm_set_error(p->err, code, "line %zu, column %zu: %s", line, col, what);
    return p->st;
}
static ulm_status fail(parser *p, const char *what) { return fail_at(p, p->pos, ULM_ERR_FORMAT, what); }

static int push(parser *p, const json_value *v) {
    if (p->sn == p->scap) {
        size_t cap = p->scap ? p->scap * 2 : 256;
        json_value *ns = realloc(p->stack, cap * sizeof *ns);
        if (!ns) return -1;
        p->stack = ns;
        p->scap = cap;
    }
    p->stack[p->sn++] = *v;
    return 0;
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
        p->pos++;
    }
}

/* ---- strings ---- */
static int hex4(const unsigned char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        uint32_t d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) *o++ = (char)cp;
    else if (cp < 0x800) { *o++ = (char)(0xC0 | cp >> 6); *o++ = (char)(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12); *o++ = (char)(0x80 | (cp >> 6 & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18); *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F)); *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Length of the valid UTF-8 sequence starting at s[0] (a byte >= 0x80), 0 if invalid:
 * no overlongs, no encoded surrogates, nothing above U+10FFFF (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (avail < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}

/* Parses the string at p->pos (an opening quote) into v. */
static ulm_status parse_string(parser *p, json_value *v) {
    const unsigned char *s = p->s;
    size_t i = p->pos + 1, n = p->len;
    char *start = p->sout, *o = start;
    for (;;) {
        /* plain ASCII run */
        size_t j = i;
        while (j < n && s[j] >= 0x20 && s[j] < 0x80 && s[j] != '"' && s[j] != '\\') j++;
        memcpy(o, s + i, j - i);
        o += j - i;
        i = j;
        if (i >= n) return fail_at(p, p->pos, ULM_ERR_FORMAT, "unterminated string");
        unsigned char c = s[i];
        if (c == '"') break;
        if (c == '\\') {
            if (i + 1 >= n) return fail_at(p, p->pos, ULM_ERR_FORMAT, "unterminated string");
            unsigned char e = s[i + 1];
            switch (e) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                uint32_t cp;
                if (n - i < 6 || hex4(s + i + 2, &cp)) return fail_at(p, i, ULM_ERR_FORMAT, "bad \\u escape (needs 4 hex digits)");
                if (cp >= 0xDC00 && cp <= 0xDFFF) return fail_at(p, i, ULM_ERR_UTF8, "lone low surrogate in \\u escape");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (n - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u' || hex4(s + i + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return fail_at(p, i, ULM_ERR_UTF8, "high surrogate in \\u escape not followed by a low surrogate");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
                o = put_utf8(o, cp);
                i += 6;
                continue;
            }
            default: return fail_at(p, i, ULM_ERR_FORMAT, "bad escape in string");
            }
            i += 2;
            continue;
        }
        if (c < 0x20) return fail_at(p, i, ULM_ERR_FORMAT, "control character in string (must be escaped)");
        size_t k = utf8_seq(s + i, n - i);
        if (!k) return fail_at(p, i, ULM_ERR_UTF8, "invalid UTF-8 in string");
        memcpy(o, s + i, k);
        o += k;
        i += k;
    }
    *o++ = 0;
    v->type = JSON_STRING;
    v->len = (uint32_t)(o - start - 1);
    v->a.str = start;
    p->sout = o;
    p->pos = i + 1;
    return ULM_OK;
}

/* ---- numbers ---- */
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static ulm_status parse_number(parser *p, json_value *v) {
    const unsigned char *s = p->s;
    size_t st = p->pos, i = st, n = p->len;
    int neg = 0;
    if (s[i] == '-') neg = 1, i++;
    if (i < n && s[i] == '0') i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9') while (i < n && is_digit(s[i])) i++;
    else return fail_at(p, st, ULM_ERR_FORMAT, "bad number");
    size_t int_end = i;
    int integral = 1;
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i])) return fail_at(p, st, ULM_ERR_FORMAT, "bad number (digits must follow '.')");
        while (i < n && is_digit(s[i])) i++;
        integral = 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || !is_digit(s[i])) return fail_at(p, st, ULM_ERR_FORMAT, "bad number (digits must follow the exponent)");
        while (i < n && is_digit(s[i])) i++;
        integral = 0;
    }
    size_t ndig = int_end - st - (size_t)neg;
    v->type = JSON_NUMBER;
    if (integral && ndig <= 18) { /* fast path: exact, and int64 -> double rounds like strtod */
        uint64_t u = 0;
        for (size_t k = st + (size_t)neg; k < int_end; k++) u = u * 10 + (uint64_t)(s[k] - '0');
        v->is_int = 1;
        v->b.i = neg ? -(int64_t)u : (int64_t)u;
        v->a.num = (neg && u == 0) ? -0.0 : (double)v->b.i;
        p->pos = i;
        return ULM_OK;
    }
    size_t len = i - st;
    if (len + 1 > p->numcap) {
        size_t cap = len + 1 < 64 ? 64 : len + 1;
        char *nb = realloc(p->numbuf, cap);
        if (!nb) return p->st = ulm_set_error(p->err, ULM_ERR_NOMEM, "out of memory parsing a number");
        p->numbuf = nb;
        p->numcap = cap;
    }
    memcpy(p->numbuf, s + st, len);
    p->numbuf[len] = 0;
    errno = 0;
    double d = strtod(p->numbuf, NULL);
    if (isinf(d)) return fail_at(p, st, ULM_ERR_FORMAT, "number out of range");
    v->a.num = d;
    v->is_int = 0;
    if (integral && ndig == 19) { /* may still fit int64 exactly */
        uint64_t u = 0;
        for (size_t k = st + (size_t)neg; k < int_end; k++) u = u * 10 + (uint64_t)(s[k] - '0'); /* < 10^19 < 2^64 */
        if (!neg && u <= (uint64_t)INT64_MAX) v->is_int = 1, v->b.i = (int64_t)u;
        else if (neg && u <= (uint64_t)INT64_MAX + 1) v->is_int = 1, v->b.i = (int64_t)(0 - u);
    }
    if (!v->is_int && d == floor(d) && fabs(d) <= 9007199254740992.0) v->is_int = 1, v->b.i = (int64_t)d;
    p->pos = i;
    return ULM_OK;
}

/* ---- containers ---- */
static uint32_t hash_key(const char *k, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

static uint32_t index_cap(uint32_t members) {
    uint32_t cap = 32;
    while (cap < members * 2u) cap *= 2; /* members < 2^31: inputs are < 4 GiB */
    return cap;
}

static int key_eq(const json_value *k, const char *key, size_t n) {
    return k->len == n && memcmp(k->a.str, key, n) == 0;
}

static int build_index(json_doc *d, json_value *obj) {
    uint32_t cap = index_cap(obj->len);
    uint32_t *idx = arena_alloc(d, (size_t)cap * sizeof *idx);
    if (!idx) return -1;
    memset(idx, 0, (size_t)cap * sizeof *idx);
    for (uint32_t m = 0; m < obj->len; m++) {
        const json_value *k = &obj->a.kids[2 * m];
        uint32_t h = hash_key(k->a.str, k->len) & (cap - 1);
        for (;;) {
            if (!idx[h]) { idx[h] = m + 1; break; }
            if (key_eq(&obj->a.kids[2 * (idx[h] - 1)], k->a.str, k->len)) break; /* duplicate: first wins */
            h = (h + 1) & (cap - 1);
        }
    }
    obj->b.index = idx;
    return 0;
}

/* Moves the children above `start` on the stack into the arena as container v. */
static ulm_status close_container(parser *p, json_type type, size_t start, json_value *v) {
    size_t count = p->sn - start;
    memset(v, 0, sizeof *v);
    v->type = (uint8_t)type;
    v->len = (uint32_t)(type == JSON_OBJECT ? count / 2 : count);
    if (count) {
        v->a.kids = arena_alloc(p->doc, count * sizeof(json_value));
        if (!v->a.kids) return p->st = ulm_set_error(p->err, ULM_ERR_NOMEM, "out of memory building JSON document");
        memcpy(v->a.kids, p->stack + start, count * sizeof(json_value));
    }
    p->sn = start;
    if (type == JSON_OBJECT && v->len >= INDEX_MIN && build_index(p->doc, v))
        return p->st = ulm_set_error(p->err, ULM_ERR_NOMEM, "out of memory building JSON document");
    return ULM_OK;
}

/* After '{' or ',' inside an object: a key string, then ':'. */
static ulm_status parse_key(parser *p) {
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of input in object (expected a string key)");
    if (p->s[p->pos] != '"') return fail(p, "expected a string key in object");
    json_value k;
    if (parse_string(p, &k)) return p->st;
    if (push(p, &k)) return p->st = ulm_set_error(p->err, ULM_ERR_NOMEM, "out of memory parsing JSON");
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of input in object (expected ':')");
    if (p->s[p->pos] != ':') return fail(p, "expected ':' after object key");
    p->pos++;
    return ULM_OK;
}

static ulm_status parse_doc(parser *p) {
    struct { json_type type; size_t start, at; } frames[JSON_MAX_DEPTH];
    int depth = 0;
    json_value v;
    for (;;) {
        /* a value is expected at p->pos */
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, depth ? "unexpected end of input (expected a value)" : "empty input (expected a value)");
        unsigned char c = p->s[p->pos];
        memset(&v, 0, sizeof v);
        if (c == '{' || c == '[') {
            if (depth >= JSON_MAX_DEPTH) return fail(p, "nesting deeper than " JSON_STR(JSON_MAX_DEPTH) " levels");
            json_type t = c == '{' ? JSON_OBJECT : JSON_ARRAY;
            frames[depth].type = t;
            frames[depth].start = p->sn;
            frames[depth].at = p->pos;
            depth++;
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == (c == '{' ? '}' : ']')) {
                p->pos++;
                depth--;
                if (close_container(p, t, frames[depth].start, &v)) return p->st;
            } else {
                if (t == JSON_OBJECT && parse_key(p)) return p->st;
                continue;
            }
        } else if (c == '"') {
            if (parse_string(p, &v)) return p->st;
        } else if (c == '-' || is_digit(c)) {
            if (parse_number(p, &v)) return p->st;
        } else if (c == 't' && p->len - p->pos >= 4 && memcmp(p->s + p->pos, "true", 4) == 0) {
            v.type = JSON_BOOL, v.b.boolean = 1, p->pos += 4;
        } else if (c == 'f' && p->len - p->pos >= 5 && memcmp(p->s + p->pos, "false", 5) == 0) {
            v.type = JSON_BOOL, v.b.boolean = 0, p->pos += 5;
        } else if (c == 'n' && p->len - p->pos >= 4 && memcmp(p->s + p->pos, "null", 4) == 0) {
            v.type = JSON_NULL, p->pos += 4;
        } else if (depth && (c == ']' || c == '}')) {
            return fail(p, "expected a value (trailing comma?)");
        } else {
            return fail(p, "unexpected character (expected a value)");
        }
        /* v is complete: hand it to its container, closing containers as they end */
        for (;;) {
            if (depth == 0) {
                p->doc->root = v;
                skip_ws(p);
                if (p->pos != p->len) return fail(p, "unexpected data after the JSON value");
                return ULM_OK;
            }
            if (push(p, &v)) return p->st = ulm_set_error(p->err, ULM_ERR_NOMEM, "out of memory parsing JSON");
            skip_ws(p);
            json_type t = frames[depth - 1].type;
            if (p->pos >= p->len)
                return fail_at(p, frames[depth - 1].at, ULM_ERR_FORMAT, t == JSON_OBJECT ? "unterminated object" : "unterminated array");
            c = p->s[p->pos];
            if (c == ',') {
                p->pos++;
                if (t == JSON_OBJECT && parse_key(p)) return p->st;
                break;
            }
            if (c != (t == JSON_OBJECT ? '}' : ']'))
                return fail(p, t == JSON_OBJECT ? "expected ',' or '}' in object" : "expected ',' or ']' in array");
            p->pos++;
            depth--;
            if (close_container(p, t, frames[depth].start, &v)) return p->st;
        }
    }
}

void json_free(json_doc *d) {
    if (!d) return;
    for (block *b = d->blocks; b;) {
        block *n = b->next;
        free(b);
        b = n;
    }
    free(d->strings);
    free(d);
}

ulm_status json_parse(const char *buf, size_t len, json_doc **out, ulm_error *err) {
    *out = NULL;
    if (!buf && len) return ulm_set_error(err, ULM_ERR_ARG, "json_parse: NULL buffer");
    if (len >= UINT32_MAX) return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "JSON input of %zu bytes is too large (limit 4 GiB)", len);
    json_doc *d = calloc(1, sizeof *d);
    if (!d) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory parsing JSON");
    d->strings = malloc(len + 1);
    if (!d->strings) { free(d); return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory parsing JSON"); }
    parser p = {(const unsigned char *)buf, len, 0, d, d->strings, NULL, 0, 0, NULL, 0, err, ULM_OK};
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) p.pos = 3;
    ulm_status st = parse_doc(&p);
    free(p.stack);
    free(p.numbuf);
    if (st) { json_free(d); return st; }
    *out = d;
    return ULM_OK;
}

ulm_status json_parse_file(const char *path, json_doc **out, ulm_error *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return ulm_set_error(err, ULM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            size_t nc = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, nc);
            if (!nb) { free(buf); fclose(fp); return ulm_set_error(err, ULM_ERR_NOMEM, "%s: out of memory", path); }
            buf = nb;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) { free(buf); return ulm_set_error(err, ULM_ERR_IO, "%s: read error", path); }
    ulm_status st = json_parse(buf, n, out, err);
    free(buf);
    if (st && err) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        ulm_set_error(err, st, "%s: %s", path, msg);
    }
    return st;
}

/* ---- accessors ---- */
const json_value *json_root(const json_doc *d) { return d ? &d->root : NULL; }
json_type json_typeof(const json_value *v) { return v ? (json_type)v->type : JSON_NONE; }

const char *json_type_name(json_type t) {
    static const char *names[] = {"absent", "null", "bool", "number", "string", "array", "object"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

size_t json_len(const json_value *v) {
    if (!v || (v->type != JSON_STRING && v->type != JSON_ARRAY && v->type != JSON_OBJECT)) return 0;
    return v->len;
}

const json_value *json_at(const json_value *arr, size_t i) {
    if (!arr || arr->type != JSON_ARRAY || i >= arr->len) return NULL;
    return &arr->a.kids[i];
}

const json_value *json_getn(const json_value *obj, const char *key, size_t n) {
    if (!obj || obj->type != JSON_OBJECT || !key) return NULL;
    const json_value *kids = obj->a.kids;
    if (obj->len >= INDEX_MIN) {
        uint32_t cap = index_cap(obj->len), h = hash_key(key, n) & (cap - 1);
        const uint32_t *idx = obj->b.index;
        for (; idx[h]; h = (h + 1) & (cap - 1))
            if (key_eq(&kids[2 * (idx[h] - 1)], key, n)) return &kids[2 * (idx[h] - 1) + 1];
        return NULL;
    }
    for (uint32_t m = 0; m < obj->len; m++)
        if (key_eq(&kids[2 * m], key, n)) return &kids[2 * m + 1];
    return NULL;
}

const json_value *json_get(const json_value *obj, const char *key) {
    return key ? json_getn(obj, key, strlen(key)) : NULL;
}

const char *json_obj_key(const json_value *obj, size_t i, size_t *len) {
    if (!obj || obj->type != JSON_OBJECT || i >= obj->len) return NULL;
    if (len) *len = obj->a.kids[2 * i].len;
    return obj->a.kids[2 * i].a.str;
}

const json_value *json_obj_val(const json_value *obj, size_t i) {
    if (!obj || obj->type != JSON_OBJECT || i >= obj->len) return NULL;
    return &obj->a.kids[2 * i + 1];
}

const char *json_str(const json_value *v, size_t *len) {
    if (!v || v->type != JSON_STRING) return NULL;
    if (len) *len = v->len;
    return v->a.str;
}

int json_str_eq(const json_value *v, const char *s) {
    return v && v->type == JSON_STRING && s && key_eq(v, s, strlen(s));
}

double json_num(const json_value *v) { return v && v->type == JSON_NUMBER ? v->a.num : NAN; }

int json_int(const json_value *v, int64_t *out) {
    if (!v || v->type != JSON_NUMBER || !v->is_int) return -1;
    *out = v->b.i;
    return 0;
}

int json_bool(const json_value *v, int *out) {
    if (!v || v->type != JSON_BOOL) return -1;
    *out = v->b.boolean;
    return 0;
}

int json_get_int(const json_value *obj, const char *key, int64_t *out) { return json_int(json_get(obj, key), out); }
int json_get_bool(const json_value *obj, const char *key, int *out) { return json_bool(json_get(obj, key), out); }
int json_get_num(const json_value *obj, const char *key, double *out) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type != JSON_NUMBER) return -1;
    *out = v->a.num;
    return 0;
}
int json_get_str(const json_value *obj, const char *key, const char **s, size_t *len) {
    const char *r = json_str(json_get(obj, key), len);
    if (!r) return -1;
    *s = r;
    return 0;
}

/* ---- writer ---- */
/* The escape for byte c, or NULL when it passes through unchanged. */
static const char *escape_of(unsigned char c, char tmp[8]) {
    switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\b': return "\\b";
    case '\f': return "\\f";
    default:
        if (c < 0x20) { snprintf(tmp, 8, "\\u%04x", c); return tmp; }
        return NULL;
    }
}

size_t json_escape(char *buf, size_t cap, const char *s, size_t len) {
    size_t n = 0;
    char tmp[8];
#define PUT(ch) do { if (n + 1 < cap) buf[n] = (ch); n++; } while (0)
    PUT('"');
    for (size_t i = 0; i < len; i++) {
        const char *e = escape_of((unsigned char)s[i], tmp);
        if (!e) PUT(s[i]);
        else for (; *e; e++) PUT(*e);
    }
    PUT('"');
#undef PUT
    if (cap) buf[n < cap ? n : cap - 1] = 0;
    return n;
}

int json_write_str(FILE *fp, const char *s, size_t len) {
    char tmp[8];
    if (fputc('"', fp) == EOF) return -1;
    size_t run = 0; /* bytes pending that need no escape */
    for (size_t i = 0; i < len; i++) {
        const char *e = escape_of((unsigned char)s[i], tmp);
        if (!e) { run++; continue; }
        if (run && fwrite(s + i - run, 1, run, fp) != run) return -1;
        run = 0;
        if (fputs(e, fp) == EOF) return -1;
    }
    if (run && fwrite(s + len - run, 1, run, fp) != run) return -1;
    return fputc('"', fp) == EOF ? -1 : 0;
}

/* Room for n more bytes and the NUL; 0 on success. */
static int jb_reserve(json_buf *b, size_t n) {
    if (b->oom) return -1;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 128;
        while (nc < b->n + n + 1) nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) { b->oom = 1; return -1; }
        b->p = q;
        b->cap = nc;
    }
    return 0;
}

void json_buf_put(json_buf *b, const char *s, size_t len) {
    if (jb_reserve(b, len)) return;
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = 0;
}

void json_buf_str(json_buf *b, const char *s, size_t len) {
    size_t need = json_escape(NULL, 0, s, len);
    if (jb_reserve(b, need)) return;
    json_escape(b->p + b->n, need + 1, s, len);
    b->n += need;
}
