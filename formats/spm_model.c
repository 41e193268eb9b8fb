/* SentencePiece protobuf reader: just enough of the protobuf wire format (varints,
 * length-delimited fields, fixed 32/64-bit) to read the pieces and the specs. */
#include "spm_model.h"
#include <stdlib.h>
#include <string.h>
#include "ulm_file.h"

typedef struct pb { const uint8_t *p, *end; } pb;

static int pb_varint(pb *b, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return -1;
        uint8_t c = *b->p++;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) { *v = x; return 0; }
    }
    return -1;
}

/* Next field: its number, wire type, and either a varint / fixed value or a sub-buffer. */
typedef struct pb_field { uint32_t num; int wire; uint64_t v; pb sub; } pb_field;

static int pb_next(pb *b, pb_field *f) {
    uint64_t key;
    if (pb_varint(b, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX) return -1;
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    switch (f->wire) {
    case 0: return pb_varint(b, &f->v);
    case 1:
        if (b->end - b->p < 8) return -1;
        memcpy(&f->v, b->p, 8), b->p += 8;
        return 0;
    case 5: {
        if (b->end - b->p < 4) return -1;
        uint32_t x;
        memcpy(&x, b->p, 4), b->p += 4;
        f->v = x;
        return 0;
    }
    case 2: {
        uint64_t len;
        if (pb_varint(b, &len) || len > (uint64_t)(b->end - b->p)) return -1;
        f->sub.p = b->p, f->sub.end = b->p + len;
        b->p += len;
        return 0;
    }
    default: return -1; /* groups (3, 4) and unknown wire types */
    }
}

static int parse_piece(pb b, spm_piece *pc) {
    pc->text = "", pc->len = 0, pc->score = 0, pc->type = 1;
    pb_field f;
    while (b.p < b.end) {
        if (pb_next(&b, &f)) return -1;
        if (f.num == 1 && f.wire == 2) {
            if (f.sub.end - f.sub.p > UINT32_MAX / 2) return -1;
            pc->text = (const char *)f.sub.p, pc->len = (uint32_t)(f.sub.end - f.sub.p);
        } else if (f.num == 2 && f.wire == 5) {
            uint32_t x = (uint32_t)f.v;
            memcpy(&pc->score, &x, 4);
        } else if (f.num == 3 && f.wire == 0) {
            pc->type = f.v >= 1 && f.v <= 6 ? (int)f.v : 1;
        }
    }
    return 0;
}

static int as_id(uint64_t v) { return (int32_t)(uint32_t)v < -1 ? -1 : (int32_t)(uint32_t)v; }

ulm_status spm_model_parse(const void *buf, size_t size, spm_model *m, ulm_error *err) {
    memset(m, 0, sizeof *m);
    m->model_type = SPM_UNIGRAM;
    m->unk_id = 0, m->bos_id = 1, m->eos_id = 2, m->pad_id = -1;
    m->add_dummy_prefix = 1, m->remove_extra_whitespaces = 1, m->escape_whitespaces = 1;
    pb b = {buf, (const uint8_t *)buf + size};
    /* count pieces first: one allocation */
    size_t n = 0;
    pb_field f;
    for (pb c = b; c.p < c.end;) {
        if (pb_next(&c, &f)) return ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer.model: malformed protobuf");
        if (f.num == 1 && f.wire == 2) n++;
    }
    if (n == 0 || n > (1u << 24)) return ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer.model: %zu pieces", n);
    m->pieces = malloc(n * sizeof *m->pieces);
    if (!m->pieces) return ulm_set_error(err, ULM_ERR_NOMEM, "tokenizer.model: out of memory");
    while (b.p < b.end) {
        pb_next(&b, &f); /* cannot fail: the counting pass read the same bytes */
        if (f.num == 1 && f.wire == 2) {
            if (parse_piece(f.sub, &m->pieces[m->n_pieces++])) goto bad;
        } else if (f.num == 2 && f.wire == 2) { /* trainer_spec */
            pb s = f.sub;
            pb_field g;
            while (s.p < s.end) {
                if (pb_next(&s, &g)) goto bad;
                if (g.wire != 0) continue;
                if (g.num == 3) m->model_type = (int)g.v;
                else if (g.num == 35) m->byte_fallback = g.v != 0;
                else if (g.num == 40) m->unk_id = as_id(g.v);
                else if (g.num == 41) m->bos_id = as_id(g.v);
                else if (g.num == 42) m->eos_id = as_id(g.v);
                else if (g.num == 43) m->pad_id = as_id(g.v);
            }
        } else if (f.num == 3 && f.wire == 2) { /* normalizer_spec */
            pb s = f.sub;
            pb_field g;
            while (s.p < s.end) {
                if (pb_next(&s, &g)) goto bad;
                if (g.wire != 0) continue;
                if (g.num == 3) m->add_dummy_prefix = g.v != 0;
                else if (g.num == 4) m->remove_extra_whitespaces = g.v != 0;
                else if (g.num == 5) m->escape_whitespaces = g.v != 0;
            }
        }
    }
    int *ids[] = {&m->unk_id, &m->bos_id, &m->eos_id, &m->pad_id};
    for (int i = 0; i < 4; i++)
        if (*ids[i] >= m->n_pieces) *ids[i] = -1;
    return ULM_OK;
bad:
    spm_model_free(m);
    return ulm_set_error(err, ULM_ERR_FORMAT, "tokenizer.model: malformed protobuf");
}

void spm_model_free(spm_model *m) {
    free(m->pieces);
    m->pieces = NULL;
    m->n_pieces = 0;
}
