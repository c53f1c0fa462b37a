// UTF-8 validation (strict: no overlongs, surrogates or code points > U+10FFFF).
#ifndef VLM_CORE_UTF8_H
#define VLM_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

// Returns the byte offset of the first invalid sequence, or n when all is valid.
// NUL bytes count as invalid when allow_nul is false.
size_t utf8_invalid_at(const char *s, size_t n, bool allow_nul);

#endif
