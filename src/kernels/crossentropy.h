// Softmax cross-entropy over the vocabulary with an ignore index, averaged
// over the non-ignored targets (nn.CrossEntropyLoss, reduction "mean").
#ifndef VLM_KERNELS_CROSSENTROPY_H
#define VLM_KERNELS_CROSSENTROPY_H

#include <stdint.h>

// logits (N,V), targets (N) (IGNORE_INDEX = -100 skipped). Returns the sum of
// the per-token losses; *count receives the number of targets used.
double crossentropy_forward(const float *logits, const int32_t *targets, int N, int V, long *count);
// dlogits (N,V) = (softmax - onehot) * scale for used rows, 0 elsewhere
// (overwrites; scale is dloss / count for a mean).
void crossentropy_backward(float *dlogits, const float *logits, const int32_t *targets, int N, int V, float scale);

#endif
