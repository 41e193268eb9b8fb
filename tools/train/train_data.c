/* Byte tokenizer, prompt format, a small JSONL reader, and batch assembly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tagged_spans.h"
#include "tokenizer.h"
#include "train_data.h"

/* ---- byte tokenizer ---- */
static int bytes_encode(const train_tok *t, const char *s, size_t len, int32_t *out, int cap) {
    if (len > (size_t)1 << 30) return -1;
    for (size_t i = 0; i < len && (int)i < cap; i++) out[i] = (unsigned char)s[i];
    return (int)len;
}

/* GPT-2 byte-to-unicode map: printable bytes stand for themselves, the rest move to U+0100.. */
static int gpt2_byte_char(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return b;
    int n = 0;
    for (int c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) n++;
    return 256 + n;
}

static int bytes_write_meta(const train_tok *t, ulmw *w) {
    enum { NB = 256, NS = 3 };
    static const char *specials[NS] = {"<|in|>", "<|out|>", "<|end|>"};
    char buf[NB][4];
    const char *strs[NB + NS];
    uint32_t lens[NB + NS];
    uint8_t types[NB + NS];
    for (int b = 0; b < NB; b++) {
        int cp = gpt2_byte_char(b);
        if (cp < 0x80) { buf[b][0] = (char)cp; lens[b] = 1; }
        else { buf[b][0] = (char)(0xC0 | (cp >> 6)); buf[b][1] = (char)(0x80 | (cp & 0x3F)); lens[b] = 2; }
        strs[b] = buf[b];
        types[b] = 1; /* normal: the GPT-2 mapped byte */
    }
    for (int i = 0; i < NS; i++) {
        strs[NB + i] = specials[i];
        lens[NB + i] = (uint32_t)strlen(specials[i]);
        types[NB + i] = 3; /* control */
    }
    int r = 0;
    r |= ulmw_set_str(w, "tokenizer.model", "bpe", 3);
    r |= ulmw_set_str(w, "tokenizer.pre", "gpt2", 4);
    r |= ulmw_set_strarr(w, "tokenizer.tokens", strs, lens, NB + NS);
    r |= ulmw_set_arr(w, "tokenizer.types", ULMF_BOOL, types, NB + NS);
    static const int32_t no_merges[1] = {0};
    r |= ulmw_set_arr(w, "tokenizer.merges", ULMF_I32, no_merges, 0);
    r |= ulmw_set_i32(w, "tokenizer.bos_id", t->bos);
    r |= ulmw_set_i32(w, "tokenizer.eos_id", t->eos);
    r |= ulmw_set_bool(w, "tokenizer.add_bos", 0);
    r |= ulmw_set_str(w, "tokenizer.chat_template", "none", 4);
    return r;
}

void train_tok_bytes(train_tok *t) {
    memset(t, 0, sizeof *t);
    t->n_vocab = 259;
    t->bos = 256;
    t->sep = 257;
    t->eos = 258;
    t->prefix = -1;
    t->encode = bytes_encode;
    t->write_meta = bytes_write_meta;
}

/* ---- the engine's tokenizer over a .ulm vocabulary ---- */
typedef struct {
    ulmf *f;
    tokenizer *tk;
} ulm_tok_impl;

static int ulm_tok_encode(const train_tok *t, const char *s, size_t len, int32_t *out, int cap) {
    const ulm_tok_impl *u = t->impl;
    int n;
    if (tok_encode(u->tk, s, len, 0, out, cap, &n, NULL) != ULM_OK) return -1;
    return n;
}

static int ulm_tok_write_meta(const train_tok *t, ulmw *w) {
    const ulm_tok_impl *u = t->impl;
    for (int i = 0; i < ulmf_n_meta(u->f); i++) {
        const ulmf_kv *kv = ulmf_meta_at(u->f, i);
        if (kv->key_len > 10 && !memcmp(kv->key, "tokenizer.", 10) && ulmw_copy_kv(w, kv)) return -1;
    }
    return 0;
}

static int find_piece(const tokenizer *tk, const char *text) {
    size_t n = strlen(text), len;
    for (int id = 0; id < tok_n_vocab(tk); id++) {
        const char *p = tok_piece(tk, id, &len);
        if (p && len == n && !memcmp(p, text, n)) return id;
    }
    return -1;
}

ulm_status train_tok_from_ulm(train_tok *t, const char *path, ulm_error *err) {
    memset(t, 0, sizeof *t);
    ulm_tok_impl *u = calloc(1, sizeof *u);
    if (!u) return ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    ulm_status st = ulmf_open(path, 0, &u->f, err);
    if (!st) st = tok_load(u->f, &u->tk, err);
    if (st) {
        if (u->f) ulmf_close(u->f);
        free(u);
        return st;
    }
    t->impl = u;
    t->n_vocab = tok_n_vocab(u->tk);
    t->bos = find_piece(u->tk, "<|in|>");
    if (t->bos < 0) t->bos = tok_bos(u->tk);
    t->sep = find_piece(u->tk, "<|out|>");
    t->eos = find_piece(u->tk, "<|end|>");
    if (t->eos < 0) t->eos = tok_eos(u->tk);
    /* the BOS the engine prepends (ULM_TOK_ADD_BOS), unless <|in|> already is that BOS */
    t->prefix = tok_add_bos(u->tk) && tok_bos(u->tk) >= 0 && tok_bos(u->tk) != t->bos ? tok_bos(u->tk) : -1;
    t->encode = ulm_tok_encode;
    t->write_meta = ulm_tok_write_meta;
    if (t->bos < 0 || t->sep < 0 || t->eos < 0) {
        train_tok_free(t);
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED,
                             "%s: the tokenizer needs <|in|> (or a BOS), <|out|> and <|end|> (or an EOS) tokens", path);
    }
    return ULM_OK;
}

void train_tok_free(train_tok *t) {
    ulm_tok_impl *u = t->impl;
    if (u) {
        tok_free(u->tk);
        ulmf_close(u->f);
        free(u);
    }
    t->impl = NULL;
}

/* ---- prompt format ---- */
char *train_prefixed_input(const char *prefix, const char *input, size_t in_len) {
    size_t pl = strlen(prefix);
    char *s = malloc(pl + in_len + 1);
    if (!s) return NULL;
    memcpy(s, prefix, pl);
    memcpy(s + pl, input, in_len);
    s[pl + in_len] = 0;
    return s;
}

int train_format_prompt(const train_tok *t, const char *input, size_t in_len, int32_t *out, int cap) {
    int k = 0;
    if (cap < 3) return -1;
    if (t->prefix >= 0) out[k++] = t->prefix;
    out[k++] = t->bos;
    int n;
    if (t->input_prefix && t->input_prefix[0]) {
        char *s = train_prefixed_input(t->input_prefix, input, in_len);
        if (!s) return -1;
        n = t->encode(t, s, strlen(t->input_prefix) + in_len, out + k, cap - k - 1);
        free(s);
    } else {
        n = t->encode(t, input, in_len, out + k, cap - k - 1);
    }
    if (n < 0 || n > cap - k - 1) return -1;
    out[k + n] = t->sep;
    return k + n + 1;
}

int train_input_prefix(const char *instruction, char *prefix, size_t cap, char *msg, size_t msg_cap) {
    static const char in[] = "<|in|>", tail[] = "{input}<|out|>";
    size_t n = strlen(instruction), a = sizeof in - 1, b = sizeof tail - 1;
    if (n < a + b || memcmp(instruction, in, a) || memcmp(instruction + n - b, tail, b)) {
        snprintf(msg, msg_cap, "the instruction is not \"<|in|>PREFIX{input}<|out|>\", the trainer's prompt format");
        return -1;
    }
    size_t pl = n - a - b;
    const char *p = instruction + a;
    if (pl >= cap || memchr(p, '{', pl) || memchr(p, '}', pl) || memmem(p, pl, "<|", 2)) {
        snprintf(msg, msg_cap, "the instruction's text before {input} must be short plain text");
        return -1;
    }
    memcpy(prefix, p, pl);
    prefix[pl] = 0;
    return 0;
}

int train_format_example(const train_tok *t, const char *input, size_t in_len, const char *output,
                         size_t out_len, int32_t *out, int cap, int *n_prompt) {
    int np = train_format_prompt(t, input, in_len, out, cap);
    if (np < 0) return -1;
    int n = t->encode(t, output, out_len, out + np, cap - np - 1);
    if (n < 0 || n > cap - np - 1) return -1;
    out[np + n] = t->eos;
    *n_prompt = np;
    return np + n + 1;
}

/* ---- JSONL ---- */
typedef struct { const char *p, *end; } jcur;

static void jws(jcur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n')) c->p++;
}

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int read_hex4(jcur *c, unsigned *v) {
    if (c->end - c->p < 4) return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval((unsigned char)c->p[i]);
        if (h < 0) return -1;
        *v = *v << 4 | (unsigned)h;
    }
    c->p += 4;
    return 0;
}

/* Parses a JSON string at c->p (at the opening quote). out (may be NULL) gets a malloc'ed
 * UTF-8 copy. Raw control characters and invalid UTF-8 are errors. */
static int jstring(jcur *c, char **out) {
    if (c->p >= c->end || *c->p != '"') return -1;
    c->p++;
    size_t cap = 16, n = 0;
    char *s = out ? malloc(cap) : NULL;
    if (out && !s) return -1;
    for (;;) {
        if (c->p >= c->end) goto fail;
        unsigned char ch = (unsigned char)*c->p++;
        unsigned cp;
        if (ch == '"') break;
        if (ch < 0x20) goto fail;
        if (ch == '\\') {
            if (c->p >= c->end) goto fail;
            char e = *c->p++;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (read_hex4(c, &cp)) goto fail;
                if (cp >= 0xD800 && cp < 0xDC00) { /* surrogate pair */
                    unsigned lo;
                    if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u') goto fail;
                    c->p += 2;
                    if (read_hex4(c, &lo) || lo < 0xDC00 || lo > 0xDFFF) goto fail;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp < 0xE000) goto fail;
                break;
            default: goto fail;
            }
        } else if (ch < 0x80) {
            cp = ch;
        } else { /* validate a UTF-8 sequence */
            int extra = ch >= 0xF0 ? 3 : ch >= 0xE0 ? 2 : ch >= 0xC0 ? 1 : -1;
            if (extra < 0 || ch > 0xF4 || ch == 0xC0 || ch == 0xC1 || c->end - c->p < extra) goto fail;
            cp = ch & (0x3F >> extra);
            for (int i = 0; i < extra; i++) {
                unsigned char cc = (unsigned char)c->p[i];
                if ((cc & 0xC0) != 0x80) goto fail;
                cp = cp << 6 | (cc & 0x3F);
            }
            c->p += extra;
            if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
                cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
                goto fail;
        }
        if (!s) continue;
        char enc[4];
        int k;
        if (cp < 0x80) { enc[0] = (char)cp; k = 1; }
        else if (cp < 0x800) { enc[0] = (char)(0xC0 | cp >> 6); enc[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
        else if (cp < 0x10000) {
            enc[0] = (char)(0xE0 | cp >> 12); enc[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            enc[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
        } else {
            enc[0] = (char)(0xF0 | cp >> 18); enc[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            enc[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); enc[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
        }
        if (n + k + 1 > cap) {
            cap *= 2;
            char *ns = realloc(s, cap);
            if (!ns) goto fail;
            s = ns;
        }
        memcpy(s + n, enc, (size_t)k);
        n += (size_t)k;
    }
    if (s) { s[n] = 0; *out = s; }
    return 0;
fail:
    free(s);
    return -1;
}

/* Skips any JSON value (for fields other than input/output), with a depth limit. */
static int jskip(jcur *c, int depth) {
    if (depth > 64) return -1;
    jws(c);
    if (c->p >= c->end) return -1;
    char ch = *c->p;
    if (ch == '"') return jstring(c, NULL);
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        c->p++;
        jws(c);
        if (c->p < c->end && *c->p == close) { c->p++; return 0; }
        for (;;) {
            if (ch == '{') {
                jws(c);
                if (jstring(c, NULL)) return -1;
                jws(c);
                if (c->p >= c->end || *c->p++ != ':') return -1;
            }
            if (jskip(c, depth + 1)) return -1;
            jws(c);
            if (c->p >= c->end) return -1;
            if (*c->p == ',') { c->p++; continue; }
            if (*c->p == close) { c->p++; return 0; }
            return -1;
        }
    }
    const char *start = c->p; /* number, true, false, null */
    while (c->p < c->end && (strchr("+-.eE", *c->p) || (*c->p >= '0' && *c->p <= '9') || (*c->p >= 'a' && *c->p <= 'z')))
        c->p++;
    return c->p > start ? 0 : -1;
}

int train_parse_jsonl_line(const char *line, size_t len, char **input, char **output, char *msg, size_t msg_cap) {
    jcur c = {line, line + len};
    *input = *output = NULL;
    jws(&c);
    if (c.p >= c.end || *c.p++ != '{') { snprintf(msg, msg_cap, "expected a JSON object"); goto fail; }
    jws(&c);
    if (c.p < c.end && *c.p == '}') c.p++;
    else
        for (;;) {
            jws(&c);
            char *key = NULL;
            if (jstring(&c, &key)) { snprintf(msg, msg_cap, "bad key"); goto fail; }
            jws(&c);
            if (c.p >= c.end || *c.p++ != ':') { free(key); snprintf(msg, msg_cap, "expected ':'"); goto fail; }
            jws(&c);
            char **dst = !strcmp(key, "input") ? input : !strcmp(key, "output") ? output : NULL;
            free(key);
            if (dst) {
                free(*dst);
                *dst = NULL;
                if (jstring(&c, dst)) { snprintf(msg, msg_cap, "\"input\"/\"output\" must be valid strings"); goto fail; }
            } else if (jskip(&c, 0)) {
                snprintf(msg, msg_cap, "malformed value");
                goto fail;
            }
            jws(&c);
            if (c.p < c.end && *c.p == ',') { c.p++; continue; }
            if (c.p < c.end && *c.p == '}') { c.p++; break; }
            snprintf(msg, msg_cap, "expected ',' or '}'");
            goto fail;
        }
    jws(&c);
    if (c.p != c.end) { snprintf(msg, msg_cap, "trailing characters after the object"); goto fail; }
    if (!*input || !*output) { snprintf(msg, msg_cap, "missing \"input\" or \"output\""); goto fail; }
    return 0;
fail:
    free(*input);
    free(*output);
    *input = *output = NULL;
    return -1;
}

int train_set_add(train_set *s, const int32_t *ids, int len, int n_prompt) {
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 256;
        train_example *ne = realloc(s->ex, (size_t)nc * sizeof *ne);
        if (!ne) return -1;
        s->ex = ne;
        s->cap = nc;
    }
    int32_t *copy = malloc((size_t)len * sizeof *copy);
    if (!copy) return -1;
    memcpy(copy, ids, (size_t)len * sizeof *copy);
    s->ex[s->n++] = (train_example){copy, len, n_prompt};
    s->n_tokens += (size_t)len;
    return 0;
}

void train_set_free(train_set *s) {
    for (int i = 0; i < s->n; i++) free(s->ex[i].ids);
    free(s->ex);
    memset(s, 0, sizeof *s);
}

char *train_tagged_output(const tagged_form *f, const char *input, const char *output, char *msg, size_t msg_cap) {
    char *t;
    ulm_error e;
    if (tagged_from_json(f, input, strlen(input), output, strlen(output), &t, NULL, &e)) {
        snprintf(msg, msg_cap, "%s", e.msg);
        return NULL;
    }
    return t;
}

ulm_status train_set_load(train_set *s, const char *path, const train_tok *tok, int max_len, ulm_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return ulm_set_error(err, ULM_ERR_IO, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int lineno = 0, cap_ids = max_len + 1;
    int32_t *ids = malloc((size_t)cap_ids * sizeof *ids);
    ulm_status st = ids ? ULM_OK : ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    while (!st && (len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        size_t n = (size_t)len;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
        if (!n) continue;
        char *in, *out, msg[128];
        if (train_parse_jsonl_line(line, n, &in, &out, msg, sizeof msg)) {
            st = ulm_set_error(err, ULM_ERR_FORMAT, "%s:%d: %s", path, lineno, msg);
            break;
        }
        if (tok->tagged) {
            char *t = train_tagged_output(tok->tagged, in, out, msg, sizeof msg);
            free(out);
            if (!t) {
                free(in);
                st = ulm_set_error(err, ULM_ERR_FORMAT, "%s:%d: %s", path, lineno, msg);
                break;
            }
            out = t;
        }
        int np, k = train_format_example(tok, in, strlen(in), out, strlen(out), ids, cap_ids, &np);
        free(in);
        free(out);
        if (k < 0 || k > max_len) { s->n_skipped++; continue; }
        if (train_set_add(s, ids, k, np)) st = ulm_set_error(err, ULM_ERR_NOMEM, "out of memory");
    }
    free(line);
    free(ids);
    fclose(f);
    return st;
}

/* ---- batches ---- */
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Element i of the permutation for (seed, epoch) of n items, without materializing it:
 * a balanced 4-round Feistel network over 2^(2h) >= n values (a bijection), cycle-walking
 * until the value falls back into [0, n). */
static int perm_at(uint64_t seed, int epoch, int n, int i) {
    int h = 1;
    while ((1u << (2 * h)) < (unsigned)n) h++;
    uint32_t mask = (1u << h) - 1;
    uint64_t key = mix64(seed ^ mix64((uint64_t)epoch + 1));
    uint32_t x = (uint32_t)i;
    do {
        uint32_t l = x >> h, r = x & mask;
        for (int round = 0; round < 4; round++) {
            uint32_t f = (uint32_t)mix64(key + (uint64_t)round * 0x100000001b3ull + r) & mask;
            uint32_t nl = r;
            r = l ^ f;
            l = nl;
        }
        x = l << h | r;
    } while ((int)x >= n);
    return (int)x;
}

static int add_example(const train_example *e, train_batch *b) {
    if (train_batch_reserve(b, b->n + e->len, b->n_seg + 1)) return -1;
    int s = b->n_seg++, o = b->n;
    b->seg_start[s] = o;
    b->seg_len[s] = e->len;
    for (int t = 0; t < e->len; t++) {
        b->tokens[o + t] = e->ids[t];
        b->pos[o + t] = t;
        /* position t predicts ids[t+1]; the loss covers output tokens and <|end|> */
        b->targets[o + t] = (t + 1 < e->len && t + 1 >= e->n_prompt) ? e->ids[t + 1] : -1;
        b->ptargets[o + t] = t + 1 < e->n_prompt ? e->ids[t + 1] : -1; /* the prompt loss, if on */
    }
    b->n += e->len;
    return 0;
}

int train_make_batch(const train_set *s, uint64_t seed, int step, int batch_size, train_batch *b) {
    b->n = b->n_seg = 0;
    if (s->n == 0) return -1;
    for (int k = 0; k < batch_size; k++) {
        uint64_t idx = (uint64_t)step * batch_size + k;
        int epoch = (int)(idx / s->n), i = (int)(idx % s->n);
        if (add_example(&s->ex[perm_at(seed, epoch, s->n, i)], b)) return -1;
    }
    return 0;
}

int train_make_batch_range(const train_set *s, int first, int count, train_batch *b) {
    b->n = b->n_seg = 0;
    for (int i = first; i < first + count && i < s->n; i++)
        if (add_example(&s->ex[i], b)) return -1;
    return 0;
}
