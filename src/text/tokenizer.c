// Tokenizer loading and special-token splitting, see tokenizer.h.
#include "text/tokenizer.h"

#include <jansson.h>  // tokenizer_config.json, special_tokens_map.json
#include <stdio.h>    // snprintf
#include <stdlib.h>   // free, strtol
#include <string.h>   // memcmp, strlen

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/str.h"
#include "core/utf8.h"

#define MAX_TOKENIZER_BYTES (64u << 20)

int tokenizer_add_special(Tokenizer *t, const char *text, int32_t id) {
    return tokenizer_add_special_stripping(t, text, id, false, false);
}

int tokenizer_add_special_stripping(Tokenizer *t, const char *text, int32_t id, bool lstrip, bool rstrip) {
    for (int i = 0; i < t->n_specials; i++) {
        if (strcmp(t->specials[i].text, text) == 0) {
            t->specials[i].id = id;
            t->specials[i].lstrip = lstrip;
            t->specials[i].rstrip = rstrip;
            return VLM_OK;
        }
    }
    SpecialToken *s = vlm_realloc(t->specials, (size_t)(t->n_specials + 1) * sizeof *s);
    if (!s) return VLM_ERR_FAIL;
    t->specials = s;
    char *copy = vlm_strdup(text);
    if (!copy) return VLM_ERR_FAIL;
    t->specials[t->n_specials++] = (SpecialToken){copy, strlen(copy), id, lstrip, rstrip};
    t->special_first[(unsigned char)copy[0]] = true;
    if (id >= t->vocab_size) t->vocab_size = id + 1;
    return VLM_OK;
}

// SentencePiece: the HF slow tokenizer adds its <unk>, <s>, </s> as added
// tokens, so they split text; their ids are the model's pieces.
static int init_sentencepiece(Tokenizer *t) {
    t->vocab_size = t->sp.n_pieces;
    t->unk_id = t->sp.unk_id;
    t->bos_id = t->sp.bos_id;
    t->eos_id = t->sp.eos_id;
    t->pad_id = t->sp.pad_id;
    const int32_t ids[3] = {t->unk_id, t->bos_id, t->eos_id};
    for (int i = 0; i < 3; i++) {
        if (ids[i] < 0 || ids[i] >= t->sp.n_pieces) continue;
        if (tokenizer_add_special(t, t->sp.pieces[ids[i]].piece, ids[i]) != VLM_OK) return VLM_ERR_FAIL;
    }
    return VLM_OK;
}

// tiktoken: Meta's llama3 tokenizer.py lays 256 special tokens after the ranks.
static int init_tiktoken(Tokenizer *t) {
    static const char *const FIRST[10] = {
        "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
        "<|reserved_special_token_2|>", "<|reserved_special_token_3|>", "<|start_header_id|>", "<|end_header_id|>",
        "<|reserved_special_token_4|>", "<|eot_id|>",
    };
    int32_t base = t->tt.n_ranks;
    t->vocab_size = base;
    for (int i = 0; i < 256; i++) {
        char name[64];
        if (i < 10) snprintf(name, sizeof name, "%s", FIRST[i]);
        else snprintf(name, sizeof name, "<|reserved_special_token_%d|>", i - 5);
        if (tokenizer_add_special(t, name, base + i) != VLM_OK) return VLM_ERR_FAIL;
    }
    t->bos_id = base;
    t->eos_id = base + 1;
    t->pad_id = -1;
    t->unk_id = -1;
    return VLM_OK;
}

// tokenizer.json: the BPE model, its added tokens (each splits text, as HF's
// AddedVocabulary does) and the BOS its TemplateProcessing puts first.
static int load_tokenizer_json(Tokenizer *t, const char *path) {
    json_error_t jerr;
    json_t *root = vlm_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "invalid JSON: %s (line %d)", jerr.text, jerr.line);
    }
    t->kind = TOK_HF_BPE;
    int rc = hf_bpe_load(&t->hf, root, path);
    t->vocab_size = t->hf.n_vocab;
    t->unk_id = t->hf.unk_id;
    t->bos_id = t->eos_id = t->pad_id = -1;
    size_t i;
    json_t *added;
    json_array_foreach(json_object_get(root, "added_tokens"), i, added) {
        if (rc != VLM_OK) break;
        const char *content = json_string_value(json_object_get(added, "content"));
        json_t *id = json_object_get(added, "id");
        if (!content || !content[0] || !json_is_integer(id)) {
            rc = vlm_fail(VLM_ERR_INPUT, path, "added_tokens", "entry %zu needs an id and a content", i);
        } else if (json_is_true(json_object_get(added, "single_word"))) {
            rc = vlm_fail(VLM_ERR_INPUT, path, content, "added tokens with single_word are not supported yet");
        } else {
            rc = tokenizer_add_special_stripping(t, content, (int32_t)json_integer_value(id),
                                                 json_is_true(json_object_get(added, "lstrip")),
                                                 json_is_true(json_object_get(added, "rstrip")));
        }
    }
    // post_processor: TemplateProcessing (maybe inside a Sequence) whose single starts with a SpecialToken
    json_t *post = json_object_get(root, "post_processor");
    if (json_is_object(post) && json_string_value(json_object_get(post, "type")) &&
        strcmp(json_string_value(json_object_get(post, "type")), "Sequence") == 0) {
        json_t *p;
        json_array_foreach(json_object_get(post, "processors"), i, p) {
            const char *type = json_string_value(json_object_get(p, "type"));
            if (type && strcmp(type, "TemplateProcessing") == 0) post = p;
        }
    }
    const char *first = json_string_value(
        json_object_get(json_object_get(json_array_get(json_object_get(post, "single"), 0), "SpecialToken"), "id"));
    t->add_bos = first != NULL;
    if (rc == VLM_OK && first) t->bos_id = tokenizer_token_id(t, first);
    json_decref(root);
    return rc;
}

static const char *token_content(json_t *v) {
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v)) return json_string_value(json_object_get(v, "content"));
    return NULL;
}

// tokenizer_config.json: added tokens (added_tokens_decoder) and the names of
// bos / eos / pad / unk; special_tokens_map.json: the same names.
static int apply_config_file(Tokenizer *t, const char *dir, const char *file) {
    char *path = path_join(dir, file);
    if (!path) return VLM_ERR_FAIL;
    if (!file_exists(path)) {
        free(path);
        return VLM_OK;
    }
    json_error_t jerr;
    json_t *root = vlm_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    int rc = VLM_OK;
    if (!json_is_object(root)) {
        rc = vlm_fail(VLM_ERR_INPUT, path, NULL, "invalid JSON: %s (line %d)", root ? "not an object" : jerr.text, jerr.line);
        goto done;
    }
    json_t *added = json_object_get(root, "added_tokens_decoder");
    const char *key;
    json_t *v;
    json_object_foreach(added, key, v) {
        char *end;
        long id = strtol(key, &end, 10);
        const char *content = token_content(v);
        if (*end || id < 0 || id > INT32_MAX || !content) {
            rc = vlm_fail(VLM_ERR_INPUT, path, key, "added token needs a numeric id and a content string");
            goto done;
        }
        if (json_is_true(json_object_get(v, "single_word"))) {
            rc = vlm_fail(VLM_ERR_INPUT, path, content, "added tokens with single_word are not supported yet");
            goto done;
        }
        rc = tokenizer_add_special_stripping(t, content, (int32_t)id, json_is_true(json_object_get(v, "lstrip")),
                                             json_is_true(json_object_get(v, "rstrip")));
        if (rc != VLM_OK) goto done;
    }
    static const char *const ROLES[4] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    int32_t *slots[4] = {&t->bos_id, &t->eos_id, &t->pad_id, &t->unk_id};
    for (int r = 0; r < 4; r++) {
        json_t *role = json_object_get(root, ROLES[r]);
        if (!role || json_is_null(role)) continue;
        const char *content = token_content(role);
        int32_t id = content ? tokenizer_token_id(t, content) : -1;
        if (id < 0) {
            rc = vlm_fail(VLM_ERR_INPUT, path, ROLES[r], "token '%s' is not in the vocabulary", content ? content : "?");
            goto done;
        }
        *slots[r] = id;
    }
    json_t *extra = json_object_get(root, "additional_special_tokens");
    size_t k;
    json_t *e;
    json_array_foreach(extra, k, e) {
        const char *content = token_content(e);
        int32_t id = content ? tokenizer_token_id(t, content) : -1;
        if (id < 0) {
            rc = vlm_fail(VLM_ERR_INPUT, path, "additional_special_tokens", "token '%s' is not in the vocabulary",
                          content ? content : "?");
            goto done;
        }
        int32_t *grown = vlm_realloc(t->additional, (size_t)(t->n_additional + 1) * sizeof *grown);
        if (!grown) { rc = VLM_ERR_FAIL; goto done; }
        t->additional = grown;
        t->additional[t->n_additional++] = id;
    }
    json_t *add_bos = json_object_get(root, "add_bos_token");
    if (json_is_boolean(add_bos)) t->add_bos = json_is_true(add_bos);
    json_t *legacy = json_object_get(root, "legacy");
    if (json_is_boolean(legacy)) t->legacy = json_is_true(legacy);
done:
    json_decref(root);
    free(path);
    return rc;
}

int tokenizer_load(Tokenizer *t, const char *path) {
    memset(t, 0, sizeof *t);
    t->add_bos = true;
    t->legacy = true;
    int is_dir = dir_exists(path);
    char *model_path = is_dir ? path_join(path, "tokenizer.model") : vlm_strdup(path);
    char *dir = is_dir ? vlm_strdup(path) : path_dirname(path);
    t->path = vlm_strdup(path);
    if (!model_path || !dir || !t->path) { free(model_path); free(dir); return VLM_ERR_FAIL; }
    MappedFile m = {0};
    int rc = VLM_OK;
    if (is_dir && !file_exists(model_path)) {
        free(model_path);
        model_path = path_join(path, "tokenizer.json");
        if (!model_path) rc = VLM_ERR_FAIL;
        else if (!file_exists(model_path))
            rc = vlm_fail(VLM_ERR_INPUT, path, NULL, "no tokenizer.model or tokenizer.json in this directory");
    }
    bool json = rc == VLM_OK && str_has_suffix(model_path, ".json");
    if (json) rc = load_tokenizer_json(t, model_path);
    else if (rc == VLM_OK) rc = file_map(model_path, &m);
    if (rc == VLM_OK && m.size > MAX_TOKENIZER_BYTES) rc = vlm_fail(VLM_ERR_INPUT, model_path, NULL, "larger than 64 MB");
    if (rc == VLM_OK && !json) {
        if (tiktoken_sniff(m.data, m.size)) {
            t->kind = TOK_TIKTOKEN;
            rc = tiktoken_load(&t->tt, (const char *)m.data, m.size, model_path);
            if (rc == VLM_OK) rc = init_tiktoken(t);
        } else {
            t->kind = TOK_SENTENCEPIECE;
            rc = sp_load(&t->sp, m.data, m.size, model_path);
            if (rc == VLM_OK) rc = init_sentencepiece(t);
            if (rc == VLM_OK) {
                IdBuf unk = {0};
                const SpPiece *p = &t->sp.pieces[t->sp.unk_id];
                rc = sp_encode(&t->sp, p->piece, p->len, false, &unk, NULL, 0);
                t->unk_length = (int)unk.len;
                ids_free(&unk);
            }
        }
    }
    // the config first: the map may name tokens only the config adds
    if (rc == VLM_OK) rc = apply_config_file(t, dir, "tokenizer_config.json");
    if (rc == VLM_OK) rc = apply_config_file(t, dir, "special_tokens_map.json");
    file_unmap(&m);
    free(model_path);
    free(dir);
    if (rc != VLM_OK) tokenizer_free(t);
    return rc;
}

void tokenizer_free(Tokenizer *t) {
    sp_free(&t->sp);
    tiktoken_free(&t->tt);
    hf_bpe_free(&t->hf);
    for (int i = 0; i < t->n_specials; i++) free(t->specials[i].text);
    free(t->specials);
    free(t->additional);
    free(t->path);
    memset(t, 0, sizeof *t);
}

int32_t tokenizer_token_id(const Tokenizer *t, const char *token) {
    for (int i = 0; i < t->n_specials; i++)
        if (strcmp(t->specials[i].text, token) == 0) return t->specials[i].id;
    size_t n = strlen(token);
    if (t->kind == TOK_SENTENCEPIECE) return sp_piece_to_id(&t->sp, token, n);
    if (t->kind == TOK_HF_BPE) return strmap_get(&t->hf.vocab, token, n);
    return strmap_get(&t->tt.ranks, token, n);
}

// Encodes text with no special tokens in it; base is its offset in the input.
static int encode_plain(const Tokenizer *t, const char *text, size_t len, IdBuf *out, SpanBuf *spans, size_t base) {
    if (len == 0) return VLM_OK;
    switch (t->kind) {
    case TOK_SENTENCEPIECE: return sp_encode(&t->sp, text, len, true, out, spans, base);
    case TOK_HF_BPE: return hf_bpe_encode(&t->hf, text, len, base == 0, out, spans, base);
    default: return tiktoken_encode(&t->tt, text, len, out, spans, base);
    }
}

// The longest special token starting at text[at], or NULL.
static const SpecialToken *special_at(const Tokenizer *t, const char *text, size_t len, size_t at) {
    const SpecialToken *best = NULL;
    for (int i = 0; i < t->n_specials; i++) {
        const SpecialToken *s = &t->specials[i];
        if (s->len <= len - at && s->text[0] == text[at] && memcmp(s->text, text + at, s->len) == 0 &&
            (!best || s->len > best->len))
            best = s;
    }
    return best;
}

int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int flags, IdBuf *out) {
    return tokenizer_encode_spans(t, text, len, flags, out, NULL);
}

// A stretch of the input between special tokens, or one special token.
typedef struct {
    size_t start, end;
    const SpecialToken *special;  // NULL for text
} Segment;

typedef struct {
    Segment *items;
    size_t len, cap;
} Segments;

static int segments_push(Segments *s, size_t start, size_t end, const SpecialToken *special) {
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        Segment *items = vlm_realloc(s->items, cap * sizeof *items);
        if (!items) return VLM_ERR_FAIL;
        s->items = items;
        s->cap = cap;
    }
    s->items[s->len++] = (Segment){start, end, special};
    return VLM_OK;
}

// Splits text at special tokens (leftmost, longest), then lets each special
// with rstrip / lstrip eat the whitespace of the text after / before it, as
// transformers' tokenize() does (right.lstrip(), left.rstrip()).
static int split_specials(const Tokenizer *t, const char *text, size_t len, bool split, Segments *segs) {
    size_t chunk = 0;
    int rc = VLM_OK;
    for (size_t at = 0; split && at < len && rc == VLM_OK;) {
        const SpecialToken *s = t->special_first[(unsigned char)text[at]] ? special_at(t, text, len, at) : NULL;
        if (!s) {
            at++;
            continue;
        }
        rc = segments_push(segs, chunk, at, NULL);
        if (rc == VLM_OK) rc = segments_push(segs, at, at + s->len, s);
        at += s->len;
        chunk = at;
    }
    if (rc == VLM_OK) rc = segments_push(segs, chunk, len, NULL);
    for (size_t i = 0; rc == VLM_OK && i < segs->len; i++) {
        const SpecialToken *s = segs->items[i].special;
        if (!s) continue;
        size_t a, b;
        if (s->rstrip && i + 1 < segs->len && !segs->items[i + 1].special) {
            Segment *r = &segs->items[i + 1];
            py_strip_range(text + r->start, r->end - r->start, &a, &b);
            r->start = b > a ? r->start + a : r->end;
        }
        if (s->lstrip && i > 0 && !segs->items[i - 1].special) {
            Segment *l = &segs->items[i - 1];
            py_strip_range(text + l->start, l->end - l->start, &a, &b);
            l->end = b > a ? l->start + b : l->start;
        }
    }
    return rc;
}

// transformers' all_special_tokens: bos, eos, unk, pad and the additional
// special tokens, not every added token (Phi-3's <|system|> is not one).
static bool is_named_special(const Tokenizer *t, int32_t id) {
    if (id == t->bos_id || id == t->eos_id || id == t->unk_id || id == t->pad_id) return true;
    for (int i = 0; i < t->n_additional; i++)
        if (t->additional[i] == id) return true;
    return false;
}

// One stretch of non-legacy text: no dummy prefix, except that a stretch
// starting with a space is encoded as "<unk>" + stretch with the unk's tokens
// dropped (LlamaTokenizer._tokenize), so its first word keeps its space.
static int encode_nonlegacy_chunk(const Tokenizer *t, const char *s, size_t n, IdBuf *ids, SpanBuf *spans) {
    bool spaced = s[0] == ' ' || (n >= 3 && memcmp(s, "\xe2\x96\x81", 3) == 0);
    if (!spaced) return sp_encode(&t->sp, s, n, false, ids, spans, 0);
    const SpPiece *unk = &t->sp.pieces[t->sp.unk_id];
    StrBuf joined = {0};
    IdBuf tmp = {0};
    SpanBuf tmp_spans = {0};
    int rc = str_append(&joined, unk->piece, unk->len);
    if (rc == VLM_OK) rc = str_append(&joined, s, n);
    if (rc == VLM_OK) rc = sp_encode(&t->sp, joined.data, joined.len, false, &tmp, spans ? &tmp_spans : NULL, 0);
    for (size_t i = (size_t)t->unk_length; rc == VLM_OK && i < tmp.len; i++) {
        rc = ids_push(ids, tmp.data[i]);
        if (rc == VLM_OK && spans) {
            int32_t a = tmp_spans.start.data[i] - (int32_t)unk->len, b = tmp_spans.end.data[i] - (int32_t)unk->len;
            rc = spans_push(spans, (size_t)(a < 0 ? 0 : a), (size_t)(b < 0 ? 0 : b));
        }
    }
    str_free(&joined);
    ids_free(&tmp);
    spans_free(&tmp_spans);
    return rc;
}

// transformers' non-legacy LlamaTokenizer.tokenize: "▁" + text (with any
// "▁" in it turned into a space), split on special tokens, each stretch by
// encode_nonlegacy_chunk, and a lone leading "▁" before a special dropped.
static int encode_nonlegacy(const Tokenizer *t, const char *text, size_t len, int flags, IdBuf *out, SpanBuf *spans) {
    if (len == 0) return VLM_OK;
    StrBuf s = {0};
    IdBuf src = {0};  // source byte of each byte of s
    int rc = str_append(&s, "\xe2\x96\x81", 3);
    for (int k = 0; k < 3 && rc == VLM_OK; k++) rc = ids_push(&src, 0);
    for (size_t i = 0; i < len && rc == VLM_OK;) {
        bool mark = len - i >= 3 && memcmp(text + i, "\xe2\x96\x81", 3) == 0;
        rc = mark ? str_append(&s, " ", 1) : str_append(&s, text + i, 1);
        if (rc == VLM_OK) rc = ids_push(&src, (int32_t)i);
        i += mark ? 3 : 1;
    }
    IdBuf ids = {0};
    SpanBuf local = {0};
    Segments segs = {0};
    if (rc == VLM_OK) rc = split_specials(t, s.data, s.len, flags & TOK_SPLIT_SPECIAL, &segs);
    for (size_t i = 0; i < segs.len && rc == VLM_OK; i++) {
        const Segment *g = &segs.items[i];
        if (g->special) {
            rc = ids_push(&ids, g->special->id);
            if (rc == VLM_OK && spans) rc = spans_push(&local, g->start, g->end);
            continue;
        }
        if (g->end == g->start) continue;
        size_t before = ids.len;
        rc = encode_nonlegacy_chunk(t, s.data + g->start, g->end - g->start, &ids, spans ? &local : NULL);
        for (size_t k = before; spans && rc == VLM_OK && k < ids.len; k++) {  // segment-relative -> s offsets
            local.start.data[k] += (int32_t)g->start;
            local.end.data[k] += (int32_t)g->start;
        }
    }
    free(segs.items);
    size_t first = 0;
    int32_t space_id = sp_piece_to_id(&t->sp, "\xe2\x96\x81", 3);
    if (ids.len > 1 && ids.data[0] == space_id && is_named_special(t, ids.data[1])) first = 1;
    for (size_t k = first; k < ids.len && rc == VLM_OK; k++) {
        rc = ids_push(out, ids.data[k]);
        if (rc == VLM_OK && spans) {
            int32_t a = local.start.data[k], b = local.end.data[k];
            size_t from = a < (int32_t)src.len ? (size_t)src.data[a] : len;
            size_t to = b > a && b - 1 < (int32_t)src.len ? (size_t)src.data[b - 1] + 1 : from;
            rc = spans_push(spans, from, to);
        }
    }
    str_free(&s);
    ids_free(&src);
    ids_free(&ids);
    spans_free(&local);
    return rc;
}

int tokenizer_encode_spans(const Tokenizer *t, const char *text, size_t len, int flags, IdBuf *out, SpanBuf *spans) {
    size_t bad = utf8_invalid_at(text, len, true);
    if (bad != len) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "text is not valid UTF-8 (byte %zu)", bad);
    int rc = VLM_OK;
    if ((flags & TOK_ADD_BOS) && t->add_bos && t->bos_id >= 0) {
        rc = ids_push(out, t->bos_id);
        if (rc == VLM_OK) rc = spans_push(spans, 0, 0);
    }
    if (rc == VLM_OK && t->kind == TOK_SENTENCEPIECE && !t->legacy) return encode_nonlegacy(t, text, len, flags, out, spans);
    Segments segs = {0};
    if (rc == VLM_OK) rc = split_specials(t, text, len, flags & TOK_SPLIT_SPECIAL, &segs);
    for (size_t i = 0; i < segs.len && rc == VLM_OK; i++) {
        const Segment *g = &segs.items[i];
        if (!g->special) {
            rc = encode_plain(t, text + g->start, g->end - g->start, out, spans, g->start);
            continue;
        }
        rc = ids_push(out, g->special->id);
        if (rc == VLM_OK) rc = spans_push(spans, g->start, g->end);
    }
    free(segs.items);
    return rc;
}

// The special token with this id, or NULL.
static const SpecialToken *special_by_id(const Tokenizer *t, int32_t id) {
    for (int k = 0; k < t->n_specials; k++)
        if (t->specials[k].id == id) return &t->specials[k];
    return NULL;
}

int tokenizer_decode(const Tokenizer *t, const int32_t *ids, size_t n, StrBuf *out) {
    size_t start = out->len;
    bool first = true;  // sentencepiece drops the dummy prefix of the first non-control piece only
    int rc = VLM_OK;
    for (size_t i = 0; i < n && rc == VLM_OK; i++) {
        int32_t id = ids[i];
        if (t->kind == TOK_SENTENCEPIECE && id >= 0 && id < t->sp.n_pieces) {
            rc = sp_decode_piece(&t->sp, id, first, out);
            first = first && t->sp.pieces[id].type == SP_CONTROL;
        } else if (t->kind == TOK_TIKTOKEN && id >= 0 && id < t->tt.n_ranks) {
            rc = str_append(out, t->tt.tokens[id], t->tt.token_lens[id]);
        } else if (t->kind == TOK_HF_BPE && id >= 0 && id < t->hf.n_vocab && t->hf.tokens[id] &&
                   (special_by_id(t, id) == NULL || hf_bpe_is_byte_token(&t->hf, id))) {
            rc = hf_bpe_decode_token(&t->hf, id, out);
        } else {
            const SpecialToken *s = special_by_id(t, id);
            if (!s) return vlm_fail(VLM_ERR_INPUT, NULL, NULL, "token id %d is outside the vocabulary", id);
            rc = str_append(out, s->text, s->len);
        }
    }
    // the U+2581 layouts of tokenizer.json decode with Strip(" ", 1, 0): one leading space goes
    if (rc == VLM_OK && t->kind == TOK_HF_BPE && t->hf.space != HF_SPACE_NONE && out->len > start && out->data[start] == ' ') {
        memmove(out->data + start, out->data + start + 1, out->len - start);
        out->len--;
    }
    return rc;
}
