// The agenda of BPE merge candidates: a binary min-heap ordered by
// (priority, pos), i.e. "best pair first, leftmost on ties", which both the
// SentencePiece model (priority = -score) and HF's BPE (priority = merge
// rank) use. Stale candidates are left in and skipped by the caller.
#ifndef VLM_TEXT_MERGE_HEAP_H
#define VLM_TEXT_MERGE_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float priority;  // smaller first (exact for ranks below 2^24)
    int32_t pos;     // left symbol; smaller first on ties
    int32_t a, b;    // the caller's payload
} MergeCandidate;

typedef struct {
    MergeCandidate *items;
    size_t len, cap;
} MergeHeap;

int merge_heap_push(MergeHeap *h, MergeCandidate c);  // VLM_OK or out of memory
MergeCandidate merge_heap_pop(MergeHeap *h);           // h->len must be > 0
void merge_heap_free(MergeHeap *h);

#endif
