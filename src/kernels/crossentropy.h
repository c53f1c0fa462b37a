// Softmax cross-entropy over the vocabulary with an ignore index, averaged
// over the non-ignored targets (nn.CrossEntropyLoss, reduction "mean").
#ifndef VLM_KERNELS_CROSSENTROPY_H
#define VLM_KERNELS_CROSSENTROPY_H

#include <stdint.h>

// logits (N,V), targets (N) (negative, e.g. IGNORE_INDEX -100, skipped).
// Returns the sum of the per-token losses; *count receives the number of
// targets used; lse (N) keeps each used row's log-sum-exp for the backward.
double crossentropy_forward(const float *logits, const int32_t *targets, int N, int V, long *count, float *lse);
// dlogits (N,V) = (softmax - onehot) * scale for used rows, 0 elsewhere
// (overwrites, and may be logits itself; scale is dloss / count for a mean).
void crossentropy_backward(float *dlogits, const float *logits, const int32_t *targets, const float *lse, int N, int V,
                           float scale);

#endif
