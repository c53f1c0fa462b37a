// UTF-8 validation, see utf8.h.
#include "core/utf8.h"

#include <stdint.h>

size_t utf8_invalid_at(const char *str, size_t n, bool allow_nul) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            if (c == 0 && !allow_nul) return i;
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
        else return i;
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const uint32_t MIN[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < MIN[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return n;
}

unsigned utf8_decode(const char *str, size_t *len) {
    const unsigned char *s = (const unsigned char *)str;
    if (s[0] < 0x80) { *len = 1; return s[0]; }
    if ((s[0] & 0xe0) == 0xc0) { *len = 2; return (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f); }
    if ((s[0] & 0xf0) == 0xe0) { *len = 3; return (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f); }
    *len = 4;
    return (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3f) << 12 | (unsigned)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

bool py_isspace(unsigned cp) {
    return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f ||
           cp == 0x3000;
}

void py_strip_range(const char *s, size_t n, size_t *start, size_t *end) {
    size_t first = n, last = 0, len;
    for (size_t i = 0; i < n; i += len) {
        if (!py_isspace(utf8_decode(s + i, &len))) {
            if (first == n) first = i;
            last = i + len;
        }
    }
    *start = first == n ? 0 : first;
    *end = first == n ? 0 : last;
}
