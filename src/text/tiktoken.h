// tiktoken-style byte-level BPE: Meta's Llama-3 tokenizer.model, a text
// file of "base64(token bytes) rank" lines. Text is split with the Llama-3
// pre-tokenization regex (PCRE2, Unicode properties), then each piece is
// merged byte pair by byte pair, lowest rank first (leftmost on ties), as
// tiktoken's _byte_pair_merge does.
#ifndef VLM_TEXT_TIKTOKEN_H
#define VLM_TEXT_TIKTOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "core/strmap.h"
#include "text/ids.h"

// Meta's llama3 tokenizer.py split pattern.
#define LLAMA3_SPLIT_PATTERN                                                                     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct {
    StrMap ranks;          // token bytes -> rank (= id)
    char **tokens;         // id -> bytes (into arena), n_ranks of them
    uint32_t *token_lens;
    int n_ranks;
    char *arena;
    void *regex;           // pcre2_code_8 *
} TiktokenModel;

int tiktoken_load(TiktokenModel *m, const char *data, size_t size, const char *name);
void tiktoken_free(TiktokenModel *m);
// Appends the ids of text (no special tokens recognised) to out and, when
// spans is not NULL, each token's source bytes offset by base.
int tiktoken_encode(const TiktokenModel *m, const char *text, size_t len, IdBuf *out, SpanBuf *spans, size_t base);

// True when the data looks like a ranks file (first line "base64 0").
int tiktoken_sniff(const unsigned char *data, size_t size);

#endif
