// A tokenizer as users have it: a tokenizer.model (SentencePiece, or the
// tiktoken ranks file Meta ships for Llama-3) or an HF tokenizer.json, alone
// or in a model directory with tokenizer_config.json / special_tokens_map.json.
// A directory with both uses tokenizer.model: LLaVA and mPLUG-Owl2 load the
// slow tokenizer (use_fast=False), which reads it.
//
// Special tokens written inside text ("</s>", "<|eot_id|>") are split out
// the way the HF tokenizer of each recipe does: each special becomes its id,
// and each stretch of text between them is encoded on its own (for
// SentencePiece that means its own dummy-prefix space: the slow LLaMA
// tokenizer's legacy behaviour that LLaVA and mPLUG-Owl2 pin).
#ifndef VLM_TEXT_TOKENIZER_H
#define VLM_TEXT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text/ids.h"
#include "text/hf_bpe.h"
#include "text/sentencepiece.h"
#include "text/tiktoken.h"

typedef enum { TOK_SENTENCEPIECE, TOK_TIKTOKEN, TOK_HF_BPE } TokenizerKind;

typedef struct {
    char *text;
    size_t len;
    int32_t id;
    bool lstrip, rstrip;  // eats the whitespace before / after it (HF AddedToken flags)
} SpecialToken;

typedef struct {
    TokenizerKind kind;
    SpModel sp;
    TiktokenModel tt;
    HfBpeModel hf;
    SpecialToken *specials;  // recognised inside text
    int n_specials;
    bool special_first[256];  // bytes that start some special token: the scan skips the rest
    int32_t bos_id, eos_id, pad_id, unk_id;  // -1 when the tokenizer has none
    int32_t *additional;                     // additional_special_tokens from the configs
    int n_additional;
    int32_t vocab_size;                      // model pieces + added tokens
    bool add_bos;                            // tokenizer_config's add_bos_token (default true)
    // SentencePiece only: transformers' slow LlamaTokenizer mode. legacy (the
    // default) gives every stretch between special tokens its own dummy-prefix
    // space; tokenizer_config.json's "legacy": false (Vicuna-v1.5) prepends one
    // space to the whole text and none after special tokens.
    bool legacy;
    int unk_length;                          // len(encode("<unk>")) without dummy prefix
    char *path;
} Tokenizer;

enum {
    TOK_ADD_BOS = 1,        // prepend BOS (when the tokenizer has one and add_bos is set)
    TOK_SPLIT_SPECIAL = 2,  // recognise special-token literals in the text
};

int tokenizer_load(Tokenizer *t, const char *path);
void tokenizer_free(Tokenizer *t);
// Appends the ids of text to out. The text must be valid UTF-8.
int tokenizer_encode(const Tokenizer *t, const char *text, size_t len, int flags, IdBuf *out);
// The same, also appending each token's byte span [start, end) in text
// (BOS gets the empty span [0, 0)).
int tokenizer_encode_spans(const Tokenizer *t, const char *text, size_t len, int flags, IdBuf *out, SpanBuf *spans);
// Appends the text of ids to out (specials as their text, control pieces of
// SentencePiece as nothing, like sentencepiece's DecodeIds).
int tokenizer_decode(const Tokenizer *t, const int32_t *ids, size_t n, StrBuf *out);
// Adds a special token (recognised in text) with the given id.
int tokenizer_add_special(Tokenizer *t, const char *text, int32_t id);
int tokenizer_add_special_stripping(Tokenizer *t, const char *text, int32_t id, bool lstrip, bool rstrip);
// The id of a special token or vocabulary piece, or -1.
int32_t tokenizer_token_id(const Tokenizer *t, const char *token);

#endif
