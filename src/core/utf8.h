// UTF-8 validation (strict: no overlongs, surrogates or code points > U+10FFFF).
#ifndef VLM_CORE_UTF8_H
#define VLM_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

// Returns the byte offset of the first invalid sequence, or n when all is valid.
// NUL bytes count as invalid when allow_nul is false.
size_t utf8_invalid_at(const char *s, size_t n, bool allow_nul);

// Bytes in the UTF-8 sequence that starts with this lead byte (1 for a stray
// continuation byte, as sentencepiece's OneCharLen does).
static inline size_t utf8_char_len(unsigned char lead) {
    static const unsigned char LEN[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return LEN[lead >> 4];
}

// Decodes the code point at s (valid UTF-8 assumed); *len gets its byte length.
unsigned utf8_decode(const char *s, size_t *len);
// Python's str.isspace() for one code point (strip() uses it).
bool py_isspace(unsigned cp);
// Python's str.strip() on [s, s+n): the non-space part as *start, *end offsets.
void py_strip_range(const char *s, size_t n, size_t *start, size_t *end);

#endif
