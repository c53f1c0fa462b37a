// tokenizer.json BPE models, see hf_bpe.h.
#include "text/hf_bpe.h"

#include <stdio.h>   // snprintf
#include <stdlib.h>  // free
#include <string.h>  // strcmp, memcpy

#include "core/alloc.h"
#include "core/error.h"
#include "core/utf8.h"
#include "text/regex_split.h"
#include "text/merge_heap.h"

static const char SPACE_MARK[] = "\xe2\x96\x81";  // U+2581

// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest
// are moved to U+0100 and up, in byte order.
static void build_byte_chars(HfBpeModel *m) {
    unsigned moved = 0;
    for (int i = 0; i < 512; i++) m->char_byte[i] = -1;
    for (unsigned b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
        m->byte_char[b] = (uint16_t)(printable ? b : 256 + moved++);
        m->char_byte[m->byte_char[b]] = (int16_t)b;
    }
}

static size_t utf8_encode(unsigned cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xc0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    out[0] = (char)(0xe0 | cp >> 12); out[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); out[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

// ----------------------------------------------------------------------------
// merges: (left id, right id) -> (rank, merged id)

static size_t merge_slot(const HfBpeModel *m, uint64_t key) {
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (m->merge_cap - 1);
    while (m->merge_keys[i] && m->merge_keys[i] != key) i = (i + 1) & (m->merge_cap - 1);
    return i;
}

static uint64_t merge_key(int32_t l, int32_t r) { return ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1; }

static int load_merges(HfBpeModel *m, const json_t *merges, const char *name) {
    size_t n = json_array_size(merges);
    m->merge_cap = 64;
    while (m->merge_cap < 2 * n + 2) m->merge_cap <<= 1;
    m->merge_keys = vlm_calloc(m->merge_cap, sizeof *m->merge_keys);
    m->merge_rank = vlm_calloc(m->merge_cap, sizeof *m->merge_rank);
    m->merge_new = vlm_calloc(m->merge_cap, sizeof *m->merge_new);
    if (!m->merge_keys || !m->merge_rank || !m->merge_new) return VLM_ERR_FAIL;
    char joined[1024];
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(merges, i);
        const char *a = NULL, *b = NULL;
        char both[1024];
        if (json_is_array(e) && json_array_size(e) == 2) {  // ["a", "b"] (tokenizers >= 0.20)
            a = json_string_value(json_array_get(e, 0));
            b = json_string_value(json_array_get(e, 1));
        } else if (json_is_string(e) && strlen(json_string_value(e)) < sizeof both) {  // "a b"
            snprintf(both, sizeof both, "%s", json_string_value(e));
            char *space = strchr(both + 1, ' ');
            if (space) { *space = '\0'; a = both; b = space + 1; }
        }
        if (!a || !b || strlen(a) + strlen(b) >= sizeof joined)
            return vlm_fail(VLM_ERR_INPUT, name, "model.merges", "entry %zu is not a pair of tokens", i);
        size_t la = strlen(a), lb = strlen(b);  // la + lb < sizeof joined, checked above
        memcpy(joined, a, la);
        memcpy(joined + la, b, lb + 1);
        int32_t l = strmap_get(&m->vocab, a, strlen(a)), r = strmap_get(&m->vocab, b, strlen(b));
        int32_t merged = strmap_get(&m->vocab, joined, strlen(joined));
        if (l < 0 || r < 0 || merged < 0)
            return vlm_fail(VLM_ERR_INPUT, name, "model.merges", "entry %zu (\"%s\" \"%s\") uses tokens not in the vocab", i, a, b);
        size_t slot = merge_slot(m, merge_key(l, r));
        if (m->merge_keys[slot]) continue;  // a repeated merge keeps its first (lowest) rank
        m->merge_keys[slot] = merge_key(l, r);
        m->merge_rank[slot] = (int32_t)i;
        m->merge_new[slot] = merged;
    }
    return VLM_OK;
}

// ----------------------------------------------------------------------------
// loading

static int load_vocab(HfBpeModel *m, const json_t *vocab, const char *name) {
    size_t n = json_object_size(vocab), bytes = 0;
    const char *key;
    json_t *v;
    int32_t max_id = -1;
    json_object_foreach((json_t *)vocab, key, v) {
        bytes += strlen(key) + 1;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 10000000)
            return vlm_fail(VLM_ERR_INPUT, name, key, "vocab id must be a non-negative integer");
        if (json_integer_value(v) > max_id) max_id = (int32_t)json_integer_value(v);
    }
    m->n_vocab = max_id + 1;
    m->arena = vlm_malloc(bytes + 1);
    m->tokens = vlm_calloc((size_t)m->n_vocab + 1, sizeof *m->tokens);
    m->token_lens = vlm_calloc((size_t)m->n_vocab + 1, sizeof *m->token_lens);
    if (!m->arena || !m->tokens || !m->token_lens || strmap_init(&m->vocab, n) != VLM_OK) return VLM_ERR_FAIL;
    size_t at = 0;
    json_object_foreach((json_t *)vocab, key, v) {
        size_t len = strlen(key);
        int32_t id = (int32_t)json_integer_value(v);
        if (m->tokens[id]) return vlm_fail(VLM_ERR_INPUT, name, key, "vocab id %d used twice", id);
        memcpy(m->arena + at, key, len + 1);
        m->tokens[id] = m->arena + at;
        m->token_lens[id] = (uint32_t)len;
        if (strmap_put(&m->vocab, m->arena + at, len, id) != VLM_OK) return VLM_ERR_FAIL;
        at += len + 1;
    }
    for (int b = 0; b < 256; b++) {
        char piece[8];
        snprintf(piece, sizeof piece, "<0x%02X>", b);
        m->byte_ids[b] = strmap_get(&m->vocab, piece, 6);
    }
    return VLM_OK;
}

static const char *type_of(const json_t *j) { return json_string_value(json_object_get(j, "type")); }

static int load_normalizer(HfBpeModel *m, const json_t *n, const char *name) {
    if (!n || json_is_null(n)) return VLM_OK;
    // transformers' LLaMA conversion: Sequence[Prepend("▁"), Replace(" ", "▁")]
    const json_t *list = json_object_get(n, "normalizers");
    const json_t *p = json_array_get(list, 0), *r = json_array_get(list, 1);
    if (type_of(n) && strcmp(type_of(n), "Sequence") == 0 && json_array_size(list) == 2 && type_of(p) &&
        strcmp(type_of(p), "Prepend") == 0 && json_string_value(json_object_get(p, "prepend")) &&
        strcmp(json_string_value(json_object_get(p, "prepend")), SPACE_MARK) == 0 && type_of(r) &&
        strcmp(type_of(r), "Replace") == 0 &&
        json_string_value(json_object_get(json_object_get(r, "pattern"), "String")) &&
        strcmp(json_string_value(json_object_get(json_object_get(r, "pattern"), "String")), " ") == 0) {
        m->space = HF_SPACE_PREPEND;
        return VLM_OK;
    }
    return vlm_fail(VLM_ERR_INPUT, name, "normalizer", "normalizer %s is not supported (LLaMA's Prepend + Replace is)",
                    type_of(n) ? type_of(n) : "?");
}

static int compile_split(HfBpeModel *m, const json_t *split, const char *name) {
    const char *pattern = json_string_value(json_object_get(json_object_get(split, "pattern"), "Regex"));
    const char *behavior = json_string_value(json_object_get(split, "behavior"));
    if (!pattern || !behavior || strcmp(behavior, "Isolated") != 0 || json_is_true(json_object_get(split, "invert")))
        return vlm_fail(VLM_ERR_INPUT, name, "pre_tokenizer", "only Split with a Regex pattern and behavior Isolated is supported");
    return regex_compile(pattern, name, "pre_tokenizer", &m->split_regex);
}

static int load_one_pre_tokenizer(HfBpeModel *m, const json_t *p, const char *name) {
    const char *type = type_of(p);
    if (type && strcmp(type, "Split") == 0) return compile_split(m, p, name);
    if (type && strcmp(type, "ByteLevel") == 0) {
        if (json_is_true(json_object_get(p, "add_prefix_space")) || json_is_true(json_object_get(p, "use_regex")))
            return vlm_fail(VLM_ERR_INPUT, name, "pre_tokenizer", "ByteLevel with add_prefix_space or use_regex is not supported");
        m->byte_level = true;
        return VLM_OK;
    }
    if (type && strcmp(type, "Metaspace") == 0) {
        const char *scheme = json_string_value(json_object_get(p, "prepend_scheme"));
        const char *repl = json_string_value(json_object_get(p, "replacement"));
        if (!repl || strcmp(repl, SPACE_MARK) != 0 || json_is_true(json_object_get(p, "split")) || !scheme ||
            (strcmp(scheme, "first") != 0 && strcmp(scheme, "always") != 0))
            return vlm_fail(VLM_ERR_INPUT, name, "pre_tokenizer", "Metaspace is supported with replacement U+2581, split false, "
                                                                  "prepend_scheme first or always");
        m->space = strcmp(scheme, "first") == 0 ? HF_SPACE_META_FIRST : HF_SPACE_META_ALWAYS;
        return VLM_OK;
    }
    return vlm_fail(VLM_ERR_INPUT, name, "pre_tokenizer", "pre-tokenizer %s is not supported", type ? type : "?");
}

static int load_pre_tokenizer(HfBpeModel *m, const json_t *p, const char *name) {
    if (!p || json_is_null(p)) return VLM_OK;
    if (type_of(p) && strcmp(type_of(p), "Sequence") == 0) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(p, "pretokenizers"), i, e) {
            int rc = load_one_pre_tokenizer(m, e, name);
            if (rc != VLM_OK) return rc;
        }
        return VLM_OK;
    }
    return load_one_pre_tokenizer(m, p, name);
}

int hf_bpe_load(HfBpeModel *m, const json_t *root, const char *name) {
    memset(m, 0, sizeof *m);
    m->unk_id = -1;
    build_byte_chars(m);
    const json_t *model = json_object_get(root, "model");
    if (!json_is_object(model) || !type_of(model) || strcmp(type_of(model), "BPE") != 0)
        return vlm_fail(VLM_ERR_INPUT, name, "model", "only BPE models are supported (got %s)", type_of(model) ? type_of(model) : "none");
    if (json_object_get(model, "dropout") && !json_is_null(json_object_get(model, "dropout")))
        return vlm_fail(VLM_ERR_INPUT, name, "model", "BPE dropout is not supported (training-time randomness)");
    const json_t *prefix = json_object_get(model, "continuing_subword_prefix"), *suffix = json_object_get(model, "end_of_word_suffix");
    if ((prefix && !json_is_null(prefix)) || (suffix && !json_is_null(suffix)))
        return vlm_fail(VLM_ERR_INPUT, name, "model", "continuing_subword_prefix / end_of_word_suffix are not supported");
    int rc = load_vocab(m, json_object_get(model, "vocab"), name);
    if (rc == VLM_OK) rc = load_merges(m, json_object_get(model, "merges"), name);
    if (rc == VLM_OK) rc = load_normalizer(m, json_object_get(root, "normalizer"), name);
    if (rc == VLM_OK) rc = load_pre_tokenizer(m, json_object_get(root, "pre_tokenizer"), name);
    if (rc == VLM_OK) {
        m->byte_fallback = json_is_true(json_object_get(model, "byte_fallback"));
        m->fuse_unk = json_is_true(json_object_get(model, "fuse_unk"));
        m->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
        const char *unk = json_string_value(json_object_get(model, "unk_token"));
        if (unk) m->unk_id = strmap_get(&m->vocab, unk, strlen(unk));
    }
    if (rc != VLM_OK) hf_bpe_free(m);
    return rc;
}

void hf_bpe_free(HfBpeModel *m) {
    strmap_free(&m->vocab);
    free(m->tokens);
    free(m->token_lens);
    free(m->arena);
    free(m->merge_keys);
    free(m->merge_rank);
    free(m->merge_new);
    regex_free(m->split_regex);
    memset(m, 0, sizeof *m);
}

// ----------------------------------------------------------------------------
// encoding: a word is a string in the model's spelling plus, per byte, the
// source byte it came from

typedef struct { int32_t id; int prev, next; uint32_t src_start, src_end; } Sym;
// A candidate: priority = merge rank, pos = left symbol, a = the merged id.
static int push_pair(const HfBpeModel *m, const Sym *syms, int pos, MergeHeap *h) {
    if (pos < 0 || syms[pos].next < 0) return VLM_OK;
    size_t slot = merge_slot(m, merge_key(syms[pos].id, syms[syms[pos].next].id));
    if (!m->merge_keys[slot]) return VLM_OK;
    return merge_heap_push(h, (MergeCandidate){(float)m->merge_rank[slot], pos, m->merge_new[slot], 0});
}

// tokenizers' BPE::merge_word + Word::merge_all for one word.
static int encode_word(const HfBpeModel *m, const char *w, size_t n, const int32_t *src, IdBuf *out, SpanBuf *spans,
                       size_t base) {
    if (m->ignore_merges) {
        int32_t whole = strmap_get(&m->vocab, w, n);
        if (whole >= 0) {
            if (ids_push(out, whole) != VLM_OK) return VLM_ERR_FAIL;
            return spans_push(spans, base + (size_t)src[0], base + (size_t)src[n - 1] + 1);
        }
    }
    Sym *syms = vlm_malloc(n * sizeof *syms);  // at most one symbol per byte
    MergeHeap heap = {0};
    if (!syms) return VLM_ERR_FAIL;
    int count = 0, rc = VLM_OK;
    for (size_t at = 0; at < n;) {
        uint32_t cl = (uint32_t)utf8_char_len((unsigned char)w[at]);
        if (cl > n - at) cl = (uint32_t)(n - at);
        int32_t id = strmap_get(&m->vocab, w + at, cl);
        uint32_t s0 = (uint32_t)src[at], s1 = (uint32_t)src[at + cl - 1] + 1;
        bool bytes_ok = id < 0 && m->byte_fallback;
        for (uint32_t k = 0; bytes_ok && k < cl; k++) bytes_ok = m->byte_ids[(unsigned char)w[at + k]] >= 0;
        if (id >= 0) {
            syms[count] = (Sym){id, count - 1, -1, s0, s1};
            count++;
        } else if (bytes_ok) {
            for (uint32_t k = 0; k < cl; k++, count++) syms[count] = (Sym){m->byte_ids[(unsigned char)w[at + k]], count - 1, -1, s0, s1};
        } else if (m->unk_id >= 0) {
            if (m->fuse_unk && count > 0 && syms[count - 1].id == m->unk_id) {
                syms[count - 1].src_end = s1;
            } else {
                syms[count] = (Sym){m->unk_id, count - 1, -1, s0, s1};
                count++;
            }
        } else {
            rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "a character has no token and the tokenizer has no unk or byte fallback");
            break;
        }
        at += cl;
    }
    for (int i = 0; i < count; i++) syms[i].next = i + 1 < count ? i + 1 : -1;
    for (int i = 0; i + 1 < count && rc == VLM_OK; i++) rc = push_pair(m, syms, i, &heap);
    while (rc == VLM_OK && heap.len) {
        MergeCandidate top = merge_heap_pop(&heap);
        Sym *l = &syms[top.pos];
        if (l->id < 0 || l->next < 0) continue;  // merged away
        Sym *r = &syms[l->next];
        size_t slot = merge_slot(m, merge_key(l->id, r->id));
        if (!m->merge_keys[slot] || m->merge_new[slot] != top.a) continue;  // stale candidate
        l->id = top.a;
        l->src_end = r->src_end;
        int gone = l->next;
        l->next = r->next;
        if (r->next >= 0) syms[r->next].prev = top.pos;
        syms[gone].id = -1;
        rc = push_pair(m, syms, l->prev, &heap);
        if (rc == VLM_OK) rc = push_pair(m, syms, top.pos, &heap);
    }
    for (int i = 0; rc == VLM_OK && count > 0 && i >= 0; i = syms[i].next) {
        rc = ids_push(out, syms[i].id);
        if (rc == VLM_OK) rc = spans_push(spans, base + syms[i].src_start, base + syms[i].src_end);
    }
    merge_heap_free(&heap);
    free(syms);
    return rc;
}

// Spells [text, text+len) in the model's alphabet: U+2581 for spaces (and the
// prepended one), or GPT-2's byte characters; src maps each output byte back.
static int spell(const HfBpeModel *m, const char *text, size_t len, bool prepend, StrBuf *w, IdBuf *src) {
    int rc = VLM_OK;
    if (prepend) {
        rc = str_append(w, SPACE_MARK, 3);
        for (int k = 0; k < 3 && rc == VLM_OK; k++) rc = ids_push(src, 0);
    }
    for (size_t i = 0; i < len && rc == VLM_OK; i++) {
        size_t before = w->len;
        if (m->byte_level) {
            char buf[4];
            rc = str_append(w, buf, utf8_encode(m->byte_char[(unsigned char)text[i]], buf));
        } else if (m->space != HF_SPACE_NONE && text[i] == ' ') {
            rc = str_append(w, SPACE_MARK, 3);
        } else {
            rc = str_append(w, text + i, 1);
        }
        for (size_t k = before; k < w->len && rc == VLM_OK; k++) rc = ids_push(src, (int32_t)i);
    }
    return rc;
}

static int encode_piece(const HfBpeModel *m, const char *text, size_t len, bool prepend, IdBuf *out, SpanBuf *spans,
                        size_t base) {
    StrBuf w = {0};
    IdBuf src = {0};
    int rc = spell(m, text, len, prepend, &w, &src);
    if (rc == VLM_OK && w.len) rc = encode_word(m, w.data, w.len, src.data, out, spans, base);
    str_free(&w);
    ids_free(&src);
    return rc;
}

int hf_bpe_encode(const HfBpeModel *m, const char *text, size_t len, bool at_start, IdBuf *out, SpanBuf *spans,
                  size_t base) {
    if (len == 0) return VLM_OK;
    bool prepend = m->space == HF_SPACE_PREPEND || m->space == HF_SPACE_META_ALWAYS ||
                   (m->space == HF_SPACE_META_FIRST && at_start);
    // Metaspace does not prepend to text that already starts with a space or U+2581
    if (prepend && m->space != HF_SPACE_PREPEND && (text[0] == ' ' || (len >= 3 && memcmp(text, SPACE_MARK, 3) == 0)))
        prepend = false;
    if (!m->split_regex) return encode_piece(m, text, len, prepend, out, spans, base);
    SpanBuf pieces = {0};
    int rc = regex_split(m->split_regex, text, len, true, &pieces);  // Isolated: gaps are pieces too
    for (size_t i = 0; i < pieces.start.len && rc == VLM_OK; i++) {
        size_t s = (size_t)pieces.start.data[i], e = (size_t)pieces.end.data[i];
        rc = encode_piece(m, text + s, e - s, false, out, spans, base + s);
    }
    spans_free(&pieces);
    return rc;
}

bool hf_bpe_is_byte_token(const HfBpeModel *m, int32_t id) {
    unsigned v;
    return m->byte_fallback && id >= 0 && id < m->n_vocab && m->tokens[id] && m->token_lens[id] == 6 &&
           sscanf(m->tokens[id], "<0x%2X>", &v) == 1 && m->byte_ids[v] == id;
}

int hf_bpe_decode_token(const HfBpeModel *m, int32_t id, StrBuf *out) {
    if (id < 0 || id >= m->n_vocab || !m->tokens[id])
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "token id %d is outside the vocabulary", id);
    const char *t = m->tokens[id];
    size_t n = m->token_lens[id];
    int rc = VLM_OK;
    if (m->byte_level) {
        for (size_t i = 0; i < n && rc == VLM_OK;) {
            uint32_t cl = (uint32_t)utf8_char_len((unsigned char)t[i]);
            unsigned cp = (unsigned char)t[i];
            if (cl == 2 && i + 1 < n) cp = (unsigned)(t[i] & 0x1f) << 6 | (t[i + 1] & 0x3f);
            int b = cl <= 2 && cp < 512 ? m->char_byte[cp] : -1;
            char c = (char)b;
            rc = b >= 0 ? str_append(out, &c, 1) : str_append(out, t + i, cl);
            i += cl;
        }
        return rc;
    }
    if (hf_bpe_is_byte_token(m, id)) {
        char c = (char)strtol(t + 3, NULL, 16);
        return str_append(out, &c, 1);
    }
    for (size_t i = 0; i < n && rc == VLM_OK;) {
        if (n - i >= 3 && memcmp(t + i, SPACE_MARK, 3) == 0) { rc = str_append(out, " ", 1); i += 3; }
        else { rc = str_append(out, t + i, 1); i++; }
    }
    return rc;
}
