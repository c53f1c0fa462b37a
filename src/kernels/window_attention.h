// Swin's window attention (transformers' SwinSelfAttention and SwinLayer's
// shifted-window mask), inference only: multi-head attention inside each
// window of T = ws * ws tokens, scores q k^T / sqrt(HS) plus a learned bias
// per head and relative offset, plus -100 (not -inf: Swin's value) between
// tokens of different regions of a shifted map. Windows are formed and
// undone by kernels/swin_layout.h.
#ifndef VLM_KERNELS_WINDOW_ATTENTION_H
#define VLM_KERNELS_WINDOW_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

// Host bookkeeping (src/kernels/host/window_tables.c, the same code in every
// backend): both tables are written to host memory; a device build uploads them.
// relative_position_index (T, T), T = ws * ws, as SwinSelfAttention builds its
// buffer: tokens i = (yi, xi) and j = (yj, xj) of a window (row-major) index
// row (yi - yj + ws - 1) * (2 ws - 1) + (xi - xj + ws - 1) of the bias table.
void window_relative_index(int32_t *idx, int ws);

// The regions of a map padded to Hp x Wp and rolled by -shift (SwinLayer.get_attn_mask):
// along each axis [0, P - ws) is 0, [P - ws, P - shift) 1, [P - shift, P) 2; a token's
// region is 3 * its row's + its column's. region (nW, T): windows row-major, nW = (Hp / ws) * (Wp / ws).
void window_shift_regions(int32_t *region, int Hp, int Wp, int ws, int shift);

// qkv (Bw, T, 3C): each token's row q | k | v, C = NH * HS, heads contiguous
// within each -> out (Bw, T, C). table ((2 ws - 1)^2, NH) the bias table,
// idx (T, T) from window_relative_index; region (nW, T) or NULL (no mask):
// window w lies at w % nW of its image. scratch: window_attention_scratch_floats(T).
void window_attention_forward(float *out, const float *qkv, const float *table, const int32_t *idx,
                              const int32_t *region, int Bw, int nW, int T, int NH, int HS, float *scratch);
// CPU: one (T, T) block per thread (omp_get_max_threads() when sized; it must not grow
// after). CUDA: 0 (the scores live in shared memory).
size_t window_attention_scratch_floats(int T);

#endif
