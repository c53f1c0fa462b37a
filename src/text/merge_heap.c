// BPE merge agenda, see merge_heap.h.
#include "text/merge_heap.h"

#include <stdbool.h>
#include <stdlib.h>  // free

#include "core/alloc.h"
#include "core/error.h"

static bool before(const MergeCandidate *x, const MergeCandidate *y) {
    return x->priority < y->priority || (x->priority == y->priority && x->pos < y->pos);
}

int merge_heap_push(MergeHeap *h, MergeCandidate c) {
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        MergeCandidate *items = vlm_realloc(h->items, cap * sizeof *items);
        if (!items) return VLM_ERR_FAIL;
        h->items = items;
        h->cap = cap;
    }
    size_t i = h->len++;
    while (i > 0 && before(&c, &h->items[(i - 1) / 2])) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = c;
    return VLM_OK;
}

MergeCandidate merge_heap_pop(MergeHeap *h) {
    MergeCandidate top = h->items[0], last = h->items[--h->len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->len) break;
        if (c + 1 < h->len && before(&h->items[c + 1], &h->items[c])) c++;
        if (!before(&h->items[c], &last)) break;
        h->items[i] = h->items[c];
        i = c;
    }
    if (h->len) h->items[i] = last;
    return top;
}

void merge_heap_free(MergeHeap *h) {
    free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}
