// The residual connection: out = inp1 + inp2 (its backward is the identity
// into both inputs, so callers add the incoming gradient where it is needed),
// and the scalings applied to a branch before it.
#ifndef VLM_KERNELS_RESIDUAL_H
#define VLM_KERNELS_RESIDUAL_H

#include <stddef.h>

// out (n) = inp1 + inp2; out may be either input
void residual_forward(float *out, const float *inp1, const float *inp2, size_t n);
// out (n) = c * inp: a loss's weight applied to its gradient (out may be inp)
void scale_forward(float *out, const float *inp, float c, size_t n);

#endif
