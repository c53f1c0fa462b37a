// Fully connected layer, PyTorch's nn.Linear layout (weight is (OC, C)).
// Gradients as kernels/gradients.h states: dinp written, dweight and dbias
// accumulated; a NULL gradient pointer skips that gradient (frozen weights,
// the first layer).
#ifndef VLM_KERNELS_LINEAR_H
#define VLM_KERNELS_LINEAR_H

#include <stddef.h>  // size_t

// out (N,OC) = inp (N,C) @ weight (OC,C)^T + bias (OC) (bias may be NULL)
void linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int C, int OC);
// The same product with the reduction in blocks of at most LINEAR_K_BLOCK columns,
// accumulated in order: the same bits for any thread count. OpenBLAS cuts a reduction
// longer than its GEMM_Q (320 on Haswell / SkylakeX) into blocks, and differently when
// threaded than on one thread when it is between one and two GEMM_Q (a ViT/14's patch
// product: 3 x 14 x 14 = 588). Inference only (the ViT teachers' patch embedding).
#define LINEAR_K_BLOCK 256
void linear_forward_blocked(float *out, const float *inp, const float *weight, const float *bias, int N, int C,
                            int OC);
// dinp (N,C) = dout @ weight; dweight (OC,C) += dout^T @ inp; dbias (OC) += sum_n dout
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int N, int C, int OC);
// The same with dinp += dout @ weight: the second of two layers that read
// one input (CLIP's k and v after q, a resampler's queries).
void linear_backward_acc(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int N, int C, int OC);

// The memory OpenBLAS takes for these products beyond their operands: run
// threaded, it packs the whole left operand in panels of at most GEMM_Q
// columns (320 measured for sgemm on x86-64 Haswell / SkylakeX; 512 taken as
// the bound), so up to max_rows x 512 floats for the product with the most
// rows: the N input rows, or LINEAR_DW_ROWS (the weight gradient is computed
// in blocks of that many output rows). One thread packs block by block.
// Plus the weight gradient's block (LINEAR_DW_SCRATCH floats, one for the
// process): each block of dweight is formed in full there, then added.
#define LINEAR_DW_ROWS 4096
#define LINEAR_DW_SCRATCH (1 << 20)
size_t linear_workspace_bytes(size_t max_rows);

#endif
