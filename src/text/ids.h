// Growable buffers of token ids and of bytes, used across the text path.
#ifndef VLM_TEXT_IDS_H
#define VLM_TEXT_IDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t *data;
    size_t len, cap;
} IdBuf;

// Where each token came from: bytes [start, end) of the encoded text.
typedef struct {
    IdBuf start, end;
} SpanBuf;

typedef struct {
    char *data;  // NUL-terminated
    size_t len, cap;
} StrBuf;

int ids_push(IdBuf *b, int32_t id);
int ids_extend(IdBuf *b, const int32_t *ids, size_t n);
void ids_free(IdBuf *b);
int spans_push(SpanBuf *s, size_t start, size_t end);  // s may be NULL: no-op
void spans_free(SpanBuf *s);

int str_append(StrBuf *b, const char *s, size_t n);
void str_free(StrBuf *b);

#endif
