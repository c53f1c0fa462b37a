// See gradients.h.
#include "kernels/gradients.h"

#include <string.h>

void vlm_zero(float *p, size_t n) { memset(p, 0, sizeof(float) * n); }
