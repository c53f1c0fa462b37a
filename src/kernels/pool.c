// Mean pooling, see pool.h.
#include "kernels/pool.h"

#include <stddef.h>  // size_t

void group_mean_forward(float *out, const float *inp, int R, int group, int C) {
#pragma omp parallel for
    for (int r = 0; r < R; r++) {
        const float *in = inp + (size_t)r * group * C;
        for (int c = 0; c < C; c++) {
            float s = 0.0f;
            for (int j = 0; j < group; j++) s += in[(size_t)j * C + c];
            out[(size_t)r * C + c] = s / (float)group;
        }
    }
}

void group_mean_backward(float *dinp, const float *dout, int R, int group, int C) {
#pragma omp parallel for
    for (int r = 0; r < R; r++)
        for (int j = 0; j < group; j++) {
            float *d = dinp + ((size_t)r * group + j) * C;
            for (int c = 0; c < C; c++) d[c] += dout[(size_t)r * C + c] / (float)group;
        }
}
