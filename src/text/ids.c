// Growable id and byte buffers, see ids.h.
#include "text/ids.h"

#include <stdlib.h>  // free
#include <string.h>  // memcpy

#include "core/alloc.h"
#include "core/error.h"

static int reserve(void **data, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return VLM_OK;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *p = vlm_realloc(*data, c * elem);
    if (!p) return VLM_ERR_FAIL;
    *data = p;
    *cap = c;
    return VLM_OK;
}

int ids_push(IdBuf *b, int32_t id) {
    if (reserve((void **)&b->data, &b->cap, b->len + 1, sizeof *b->data) != VLM_OK) return VLM_ERR_FAIL;
    b->data[b->len++] = id;
    return VLM_OK;
}

int ids_extend(IdBuf *b, const int32_t *ids, size_t n) {
    if (reserve((void **)&b->data, &b->cap, b->len + n, sizeof *b->data) != VLM_OK) return VLM_ERR_FAIL;
    if (n) memcpy(b->data + b->len, ids, n * sizeof *ids);
    b->len += n;
    return VLM_OK;
}

void ids_free(IdBuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int spans_push(SpanBuf *s, size_t start, size_t end) {
    if (!s) return VLM_OK;
    if (ids_push(&s->start, (int32_t)start) != VLM_OK || ids_push(&s->end, (int32_t)end) != VLM_OK) return VLM_ERR_FAIL;
    return VLM_OK;
}

void spans_free(SpanBuf *s) {
    ids_free(&s->start);
    ids_free(&s->end);
}

int str_append(StrBuf *b, const char *s, size_t n) {
    if (reserve((void **)&b->data, &b->cap, b->len + n + 1, 1) != VLM_OK) return VLM_ERR_FAIL;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return VLM_OK;
}

void str_free(StrBuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
