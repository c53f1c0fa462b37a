// Regex pre-tokenization with PCRE2 (UTF + Unicode properties): the split
// step of tiktoken (Llama-3) and of tokenizer.json's Split pre-tokenizer.
#ifndef VLM_TEXT_REGEX_SPLIT_H
#define VLM_TEXT_REGEX_SPLIT_H

#include <stdbool.h>
#include <stddef.h>

#include "text/ids.h"

// Compiles pattern (JIT when available); errors name `name` and `record`.
int regex_compile(const char *pattern, const char *name, const char *record, void **code);
void regex_free(void *code);

// Appends the pieces [start, end) of text as the regex cuts it: every
// non-empty match, and with gaps also the text between matches (HF's
// behavior "Isolated"); without gaps that text is dropped, as tiktoken's
// find_iter does. An empty match moves the search on by one character.
// The text must be valid UTF-8.
int regex_split(const void *code, const char *text, size_t len, bool gaps, SpanBuf *pieces);

#endif
