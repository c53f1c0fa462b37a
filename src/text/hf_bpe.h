// HF tokenizers' tokenizer.json with a BPE model, in the layouts model
// directories have:
//   SentencePiece-style (LLaMA-2 / Vicuna converted by transformers): byte
//     fallback, spaces as U+2581 by a Prepend + Replace normalizer or by a
//     Metaspace pre-tokenizer (prepend_scheme "first" or "always");
//   byte-level (Llama-3): a Split(regex, isolated) pre-tokenizer then
//     ByteLevel, bytes spelled with GPT-2's byte-to-unicode table.
// Merging follows tokenizers' BPE::merge_word: the adjacent pair with the
// lowest merge rank first (leftmost on ties); ignore_merges looks a whole
// word up in the vocabulary first. Anything else in the file (other
// normalizers, pre-tokenizers or models) is refused by name.
#ifndef VLM_TEXT_HF_BPE_H
#define VLM_TEXT_HF_BPE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/strmap.h"
#include "text/ids.h"

typedef enum {
    HF_SPACE_NONE,          // bytes as they are (byte-level models)
    HF_SPACE_PREPEND,       // normalizer Prepend("▁") + Replace(" ", "▁"): every chunk
    HF_SPACE_META_FIRST,    // Metaspace, prepend_scheme "first": the chunk at offset 0 only
    HF_SPACE_META_ALWAYS,   // Metaspace, prepend_scheme "always"
} HfSpaceMode;

typedef struct {
    StrMap vocab;             // token text as written in the file -> id
    char **tokens;            // id -> text (into arena)
    uint32_t *token_lens;
    int n_vocab;
    char *arena;
    uint64_t *merge_keys;     // ((left << 32) | right) + 1; 0 = empty slot
    int32_t *merge_rank, *merge_new;
    size_t merge_cap;
    HfSpaceMode space;
    bool byte_level, byte_fallback, fuse_unk, ignore_merges;
    void *split_regex;        // pcre2_code_8 *, NULL when there is no Split
    int32_t unk_id;
    int32_t byte_ids[256];    // <0xXX> tokens for byte fallback
    uint16_t byte_char[256];  // GPT-2 bytes_to_unicode: byte -> code point
    int16_t char_byte[512];   // and back (-1: not a byte character)
} HfBpeModel;

// Reads the "normalizer", "pre_tokenizer" and "model" parts of a parsed tokenizer.json.
int hf_bpe_load(HfBpeModel *m, const json_t *root, const char *name);
void hf_bpe_free(HfBpeModel *m);
// Appends the ids (and source spans offset by base) of one stretch of text
// between added tokens; at_start says whether it begins the input.
int hf_bpe_encode(const HfBpeModel *m, const char *text, size_t len, bool at_start, IdBuf *out, SpanBuf *spans,
                  size_t base);
// True for a byte-fallback token <0xXX> (decoded to its byte even when it is
// also an added token, as the ByteFallback decoder does).
bool hf_bpe_is_byte_token(const HfBpeModel *m, int32_t id);
// Appends the text of a vocabulary token (its bytes, after undoing the
// byte-level or U+2581 spelling).
int hf_bpe_decode_token(const HfBpeModel *m, int32_t id, StrBuf *out);

#endif
