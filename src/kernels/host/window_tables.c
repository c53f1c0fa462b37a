// Swin's index tables (window_attention.h): host bookkeeping that the window
// attention reads, built once on the host into host memory. Compiled into
// every backend's library (src/kernels/host/ is not a kernel body): a device
// build uploads the tables it needs.
#include <stddef.h>  // size_t

#include "kernels/window_attention.h"

void window_relative_index(int32_t *idx, int ws) {
    int T = ws * ws;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++)
            idx[(size_t)i * T + j] = (i / ws - j / ws + ws - 1) * (2 * ws - 1) + (i % ws - j % ws + ws - 1);
}

// an axis' region: SwinLayer's slices (0, -ws), (-ws, -shift), (-shift, None) of a padded side P
static inline int axis_region(int p, int P, int ws, int shift) { return p < P - ws ? 0 : p < P - shift ? 1 : 2; }

void window_shift_regions(int32_t *region, int Hp, int Wp, int ws, int shift) {
    int nx = Wp / ws, nW = (Hp / ws) * nx, T = ws * ws;
    for (int w = 0; w < nW; w++)
        for (int t = 0; t < T; t++) {
            int y = (w / nx) * ws + t / ws, x = (w % nx) * ws + t % ws;
            region[(size_t)w * T + t] = 3 * axis_region(y, Hp, ws, shift) + axis_region(x, Wp, ws, shift);
        }
}
