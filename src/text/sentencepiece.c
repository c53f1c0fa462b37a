// SentencePiece BPE encoding, see sentencepiece.h.
#include "text/sentencepiece.h"

#include <stdlib.h>  // free
#include <string.h>  // memcpy, memcmp

#include "core/alloc.h"
#include "core/error.h"
#include "core/utf8.h"
#include "text/merge_heap.h"

// ----------------------------------------------------------------------------
// protobuf: just enough of the wire format to walk ModelProto

typedef struct {
    const unsigned char *p, *end;
} Pb;

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int pb_varint(Pb *b, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return -1;
        unsigned char c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

// Reads one field: number, wire type, and (for length-delimited) the payload
// or (for varint / fixed) the value.
typedef struct {
    uint32_t number, wire;
    uint64_t value;
    Pb payload;
} PbField;

static int pb_next(Pb *b, PbField *f) {
    uint64_t key;
    if (pb_varint(b, &key) != 0) return -1;
    f->number = (uint32_t)(key >> 3);
    f->wire = key & 7;
    switch (f->wire) {
    case 0: return pb_varint(b, &f->value);
    case 1:
        if (b->end - b->p < 8) return -1;
        memcpy(&f->value, b->p, 8);
        b->p += 8;
        return 0;
    case 5: {
        if (b->end - b->p < 4) return -1;
        uint32_t v;
        memcpy(&v, b->p, 4);
        f->value = v;
        b->p += 4;
        return 0;
    }
    case 2: {
        uint64_t n;
        if (pb_varint(b, &n) != 0 || n > (uint64_t)(b->end - b->p)) return -1;
        f->payload.p = b->p;
        f->payload.end = b->p + n;
        b->p += n;
        return 0;
    }
    default: return -1;
    }
}

#define BAD(name, what) vlm_fail(VLM_ERR_INPUT, name, NULL, "not a SentencePiece model: %s", what)

static int parse_piece(SpModel *m, Pb b, SpPiece *out, size_t *arena_used, const char *name) {
    out->score = 0;
    out->type = SP_NORMAL;
    out->piece = NULL;
    out->len = 0;
    PbField f;
    while (b.p < b.end) {
        if (pb_next(&b, &f) != 0) return BAD(name, "malformed piece");
        if (f.number == 1 && f.wire == 2) {
            size_t n = (size_t)(f.payload.end - f.payload.p);
            out->piece = m->arena + *arena_used;
            memcpy(out->piece, f.payload.p, n);
            out->piece[n] = '\0';
            out->len = (uint32_t)n;
            *arena_used += n + 1;
        } else if (f.number == 2 && f.wire == 5) {
            uint32_t bits = (uint32_t)f.value;
            memcpy(&out->score, &bits, 4);
        } else if (f.number == 3 && f.wire == 0) {
            if (f.value < 1 || f.value > 6) return BAD(name, "unknown piece type");
            out->type = (SpPieceType)f.value;
        }
    }
    if (!out->piece) return BAD(name, "piece without text");
    return VLM_OK;
}

static int parse_trainer_spec(SpModel *m, Pb b, const char *name) {
    PbField f;
    while (b.p < b.end) {
        if (pb_next(&b, &f) != 0) return BAD(name, "malformed trainer_spec");
        if (f.wire != 0) continue;
        int32_t v = (int32_t)f.value;
        switch (f.number) {
        case 3:
            if (f.value != 2)
                return vlm_fail(VLM_ERR_INPUT, name, NULL, "SentencePiece model type %d is not supported (BPE only)", v);
            break;
        case 35: m->byte_fallback = f.value != 0; break;
        case 40: m->unk_id = v; break;
        case 41: m->bos_id = v; break;
        case 42: m->eos_id = v; break;
        case 43: m->pad_id = v; break;
        default: break;
        }
    }
    return VLM_OK;
}

static int parse_normalizer_spec(SpModel *m, Pb b, const char *name) {
    PbField f;
    while (b.p < b.end) {
        if (pb_next(&b, &f) != 0) return BAD(name, "malformed normalizer_spec");
        if (f.number == 2 && f.wire == 2 && f.payload.end > f.payload.p)
            return vlm_fail(VLM_ERR_INPUT, name, NULL, "SentencePiece normalization rules (precompiled_charsmap) are not supported");
        if (f.wire != 0) continue;
        if (f.number == 3) m->add_dummy_prefix = f.value != 0;
        if (f.number == 4) m->remove_extra_whitespaces = f.value != 0;
        if (f.number == 5) m->escape_whitespaces = f.value != 0;
    }
    return VLM_OK;
}

static int index_pieces(SpModel *m, const char *name) {
    if (strmap_init(&m->normal, (size_t)m->n_pieces) != VLM_OK || strmap_init(&m->reserved, 512) != VLM_OK)
        return VLM_ERR_FAIL;
    for (int i = 0; i < 256; i++) m->byte_ids[i] = -1;
    for (int i = 0; i < m->n_pieces; i++) {
        const SpPiece *p = &m->pieces[i];
        int normal = p->type == SP_NORMAL || p->type == SP_USER_DEFINED || p->type == SP_UNUSED;
        StrMap *map = normal ? &m->normal : &m->reserved;
        if (strmap_get(map, p->piece, p->len) >= 0) return vlm_fail(VLM_ERR_INPUT, name, p->piece, "piece appears twice");
        if (strmap_put(map, p->piece, p->len, i) != VLM_OK) return VLM_ERR_FAIL;
        if (p->type == SP_USER_DEFINED) m->has_user_defined = true;
        if (p->type == SP_BYTE) {
            // exactly "<0xHH>": sscanf's %X would also take a sign ("<0x-E>", found by the fuzzer)
            int hi = p->len == 6 ? hex_digit(p->piece[3]) : -1, lo = p->len == 6 ? hex_digit(p->piece[4]) : -1;
            if (hi < 0 || lo < 0 || memcmp(p->piece, "<0x", 3) != 0 || p->piece[5] != '>')
                return vlm_fail(VLM_ERR_INPUT, name, p->piece, "malformed byte piece");
            m->byte_ids[hi * 16 + lo] = i;
        }
    }
    if (m->unk_id < 0 || m->unk_id >= m->n_pieces || m->pieces[m->unk_id].type != SP_UNKNOWN)
        return vlm_fail(VLM_ERR_INPUT, name, NULL, "unk_id %d is not an UNKNOWN piece", m->unk_id);
    return VLM_OK;
}

int sp_load(SpModel *m, const unsigned char *data, size_t size, const char *name) {
    memset(m, 0, sizeof *m);
    m->unk_id = 0, m->bos_id = 1, m->eos_id = 2, m->pad_id = -1;  // proto defaults
    m->add_dummy_prefix = m->remove_extra_whitespaces = m->escape_whitespaces = true;
    // first pass: count pieces (the arena needs at most size bytes for their text)
    Pb b = {data, data + size};
    PbField f;
    int n = 0;
    while (b.p < b.end) {
        if (pb_next(&b, &f) != 0) return BAD(name, "malformed protobuf");
        if (f.number == 1 && f.wire == 2) n++;
    }
    if (n == 0) return BAD(name, "no pieces");
    m->pieces = vlm_calloc((size_t)n, sizeof *m->pieces);
    m->arena = vlm_malloc(size + (size_t)n);
    if (!m->pieces || !m->arena) { sp_free(m); return VLM_ERR_FAIL; }
    b = (Pb){data, data + size};
    size_t used = 0;
    int rc = VLM_OK;
    while (rc == VLM_OK && b.p < b.end) {
        pb_next(&b, &f);
        if (f.number == 1 && f.wire == 2) rc = parse_piece(m, f.payload, &m->pieces[m->n_pieces++], &used, name);
        else if (f.number == 2 && f.wire == 2) rc = parse_trainer_spec(m, f.payload, name);
        else if (f.number == 3 && f.wire == 2) rc = parse_normalizer_spec(m, f.payload, name);
    }
    if (rc == VLM_OK) rc = index_pieces(m, name);
    if (rc == VLM_OK && m->has_user_defined)
        rc = vlm_fail(VLM_ERR_INPUT, name, NULL, "SentencePiece user-defined symbols are not supported yet");
    if (rc != VLM_OK) sp_free(m);
    return rc;
}

void sp_free(SpModel *m) {
    free(m->pieces);
    free(m->arena);
    strmap_free(&m->normal);
    strmap_free(&m->reserved);
    memset(m, 0, sizeof *m);
}

int sp_piece_to_id(const SpModel *m, const char *piece, size_t len) {
    int id = strmap_get(&m->reserved, piece, len);
    return id >= 0 ? id : strmap_get(&m->normal, piece, len);
}

// ----------------------------------------------------------------------------
// normalisation: identity rules + the whitespace options

static const char SPACE_MARK[] = "\xe2\x96\x81";  // U+2581

// Builds the normalised text and, for each of its bytes, the source byte it
// came from (the dummy prefix maps to the first byte of the text). Both
// buffers are sized once: a byte becomes at most 3 (a space mark).
static int normalize(const SpModel *m, const char *text, size_t len, bool dummy_prefix, StrBuf *out, IdBuf *source) {
    size_t start = 0, end = len;
    if (m->remove_extra_whitespaces) {
        while (start < end && text[start] == ' ') start++;
        while (end > start && text[end - 1] == ' ') end--;
    }
    if (start == end) return VLM_OK;
    size_t cap = 3 * (end - start) + 4;
    out->data = vlm_malloc(cap);
    source->data = vlm_malloc(cap * sizeof *source->data);
    if (!out->data || !source->data) return VLM_ERR_FAIL;
    out->cap = source->cap = cap;
    char *w = out->data;
    int32_t *src = source->data;
    const char *space = m->escape_whitespaces ? SPACE_MARK : " ";
    size_t space_len = m->escape_whitespaces ? 3 : 1;
    if (m->add_dummy_prefix && dummy_prefix) {
        for (size_t k = 0; k < space_len; k++) { *w++ = space[k]; *src++ = (int32_t)start; }
    }
    for (size_t i = start; i < end; i++) {
        if (text[i] == ' ') {
            if (m->remove_extra_whitespaces && i > start && text[i - 1] == ' ') continue;
            for (size_t k = 0; k < space_len; k++) { *w++ = space[k]; *src++ = (int32_t)i; }
        } else {
            *w++ = text[i];
            *src++ = (int32_t)i;
        }
    }
    out->len = (size_t)(w - out->data);
    source->len = (size_t)(src - source->data);
    *w = '\0';
    return VLM_OK;
}

// ----------------------------------------------------------------------------
// BPE: bpe_model.cc's agenda of candidate merges

typedef struct { int prev, next; uint32_t start, len; } Symbol;

// A candidate: pos = left symbol, a = right symbol, b = merged byte length.
// bpe_model.cc's order is higher score first, then leftmost: priority = -score.
static int maybe_add_merge(const SpModel *m, const char *s, const Symbol *sym, int left, int right, MergeHeap *h) {
    if (left < 0 || right < 0) return VLM_OK;
    uint32_t len = sym[left].len + sym[right].len;
    int id = strmap_get(&m->normal, s + sym[left].start, len);
    if (id < 0) return VLM_OK;
    // UNUSED pieces would need bpe_model's resegmentation; models with them are rare
    return merge_heap_push(h, (MergeCandidate){-m->pieces[id].score, left, right, (int32_t)len});
}

// The source span of normalised bytes [a, b): from the source of a to just
// past the source of b - 1 (a whitespace mark is 3 bytes for 1 source byte).
static int push_span(SpanBuf *spans, const IdBuf *source, uint32_t a, uint32_t b, size_t base) {
    if (!spans) return VLM_OK;
    return spans_push(spans, base + (size_t)source->data[a], base + (size_t)source->data[b - 1] + 1);
}

static int emit(const SpModel *m, const char *s, const Symbol *sym, IdBuf *out, SpanBuf *spans, const IdBuf *source,
                size_t base) {
    int id = strmap_get(&m->normal, s + sym->start, sym->len);
    if (id >= 0 && m->pieces[id].type != SP_UNUSED) {
        if (ids_push(out, id) != VLM_OK) return VLM_ERR_FAIL;
        return push_span(spans, source, sym->start, sym->start + sym->len, base);
    }
    if (!m->byte_fallback) {
        if (ids_push(out, m->unk_id) != VLM_OK) return VLM_ERR_FAIL;
        return push_span(spans, source, sym->start, sym->start + sym->len, base);
    }
    for (uint32_t k = 0; k < sym->len; k++) {
        int b = m->byte_ids[(unsigned char)s[sym->start + k]];
        if (ids_push(out, b >= 0 ? b : m->unk_id) != VLM_OK) return VLM_ERR_FAIL;
        if (push_span(spans, source, sym->start + k, sym->start + k + 1, base) != VLM_OK) return VLM_ERR_FAIL;
    }
    return VLM_OK;
}

int sp_encode(const SpModel *m, const char *text, size_t len, bool dummy_prefix, IdBuf *out, SpanBuf *spans, size_t base) {
    StrBuf norm = {0};
    IdBuf source = {0};
    int rc = normalize(m, text, len, dummy_prefix, &norm, &source);
    if (rc != VLM_OK || norm.len == 0) {
        str_free(&norm);
        ids_free(&source);
        return rc;
    }
    const char *s = norm.data;
    Symbol *sym = vlm_malloc(norm.len * sizeof *sym);
    MergeHeap heap = {0};
    if (!sym) { str_free(&norm); ids_free(&source); return VLM_ERR_FAIL; }
    int n = 0;
    for (uint32_t at = 0; at < norm.len; n++) {
        uint32_t cl = (uint32_t)utf8_char_len((unsigned char)s[at]);
        if (cl > norm.len - at) cl = (uint32_t)(norm.len - at);
        sym[n] = (Symbol){n - 1, -1, at, cl};
        if (n > 0) sym[n - 1].next = n;
        at += cl;
    }
    for (int i = 1; i < n && rc == VLM_OK; i++) rc = maybe_add_merge(m, s, sym, i - 1, i, &heap);
    while (rc == VLM_OK && heap.len) {
        MergeCandidate top = merge_heap_pop(&heap);
        Symbol *l = &sym[top.pos], *r = &sym[top.a];
        // stale: one side was merged away since this candidate was queued
        if (l->len == 0 || r->len == 0 || l->len + r->len != (uint32_t)top.b || l->next != top.a) continue;
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = top.pos;
        r->len = 0;
        rc = maybe_add_merge(m, s, sym, l->prev, top.pos, &heap);
        if (rc == VLM_OK) rc = maybe_add_merge(m, s, sym, top.pos, l->next, &heap);
    }
    for (int i = 0; rc == VLM_OK && i >= 0 && n > 0; i = sym[i].next) rc = emit(m, s, &sym[i], out, spans, &source, base);
    merge_heap_free(&heap);
    free(sym);
    str_free(&norm);
    ids_free(&source);
    return rc;
}

// ----------------------------------------------------------------------------
// decoding

int sp_decode_piece(const SpModel *m, int id, bool first, StrBuf *out) {
    if (id < 0 || id >= m->n_pieces) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "token id %d is outside the vocabulary", id);
    const SpPiece *p = &m->pieces[id];
    switch (p->type) {
    case SP_CONTROL: return VLM_OK;
    case SP_UNKNOWN: return str_append(out, " \xe2\x81\x87 ", 5);  // sentencepiece's unk_surface " ⁇ "
    case SP_BYTE: {
        char byte = (char)strtol(p->piece + 3, NULL, 16);
        return str_append(out, &byte, 1);
    }
    default: break;
    }
    const char *s = p->piece;
    size_t n = p->len;
    int rc = VLM_OK;
    for (size_t i = 0; i < n && rc == VLM_OK;) {
        if (m->escape_whitespaces && n - i >= 3 && memcmp(s + i, SPACE_MARK, 3) == 0) {
            // the dummy prefix of the first piece is not part of the text
            if (!(first && i == 0 && m->add_dummy_prefix)) rc = str_append(out, " ", 1);
            i += 3;
        } else {
            rc = str_append(out, s + i, 1);
            i++;
        }
    }
    return rc;
}
