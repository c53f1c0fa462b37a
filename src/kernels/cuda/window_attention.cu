// Swin's window attention on the GPU, see window_attention.h. One block per
// (window, head), one warp per query row at a time: the lanes share out the
// row's keys (each score a serial dot product over the head, then scaled,
// biased and masked as window_attention.c does), the row's maximum and sum of
// exponentials are warp butterflies (a fixed order), the probabilities are
// normalised in the warp's row of shared memory, then the lanes share out the
// head's columns, each a serial sum over the keys. No scratch in global
// memory; a block writes only its own head's columns of its window's rows.
#include <math.h>

#include "kernels/cuda/common.cuh"
extern "C" {
#include "kernels/window_attention.h"
}

#define MASKED (-100.0f)  // SwinLayer.get_attn_mask's masked_fill value
#define WA_WARPS 4        // query rows in flight per block

__global__ static void window_attention_kernel(float *out, const float *qkv, const float *table, const int32_t *idx,
                                               const int32_t *region, int nW, int T, int NH, int HS, float div) {
    extern __shared__ float probs[];  // (WA_WARPS, T)
    int w = blockIdx.x / NH, h = blockIdx.x % NH, C = NH * HS, ld = 3 * C;
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    float *p = probs + (size_t)warp * T;
    const float *base = qkv + (size_t)w * T * ld + h * HS;  // q of token 0; k at + C, v at + 2C
    const int32_t *reg = region ? region + (size_t)(w % nW) * T : NULL;
    for (int i = warp; i < T; i += WA_WARPS) {
        const float *q = base + (size_t)i * ld;
        const int32_t *ix = idx + (size_t)i * T;
        float mx = -INFINITY;
        for (int j = lane; j < T; j += 32) {
            const float *k = base + (size_t)j * ld + C;
            float s = 0.0f;
            for (int d = 0; d < HS; d++) s += q[d] * k[d];
            s = s / div + table[(size_t)ix[j] * NH + h];
            if (reg && reg[i] != reg[j]) s += MASKED;
            p[j] = s;
            mx = fmaxf(mx, s);
        }
        mx = warp_max(mx);
        float sum = 0.0f;
        for (int j = lane; j < T; j += 32) {
            float e = expf(p[j] - mx);
            p[j] = e;
            sum += e;
        }
        sum = warp_sum(sum);
        for (int j = lane; j < T; j += 32) p[j] /= sum;
        __syncwarp();  // the row's probabilities, written by every lane, read by every lane
        float *o = out + ((size_t)w * T + i) * C + h * HS;
        for (int d = lane; d < HS; d += 32) {
            const float *v = base + 2 * C + d;
            float acc = 0.0f;
            for (int j = 0; j < T; j++) acc += p[j] * v[(size_t)j * ld];
            o[d] = acc;
        }
        __syncwarp();  // the next row overwrites p
    }
}

size_t window_attention_scratch_floats(int T) {
    (void)T;
    return 0;
}

void window_attention_forward(float *out, const float *qkv, const float *table, const int32_t *idx,
                              const int32_t *region, int Bw, int nW, int T, int NH, int HS, float *scratch) {
    (void)scratch;
    if (Bw <= 0 || NH <= 0 || T <= 0) return;
    float div = (float)sqrt((double)HS);  // PyTorch's math.sqrt(head size), rounded to float
    size_t shared = sizeof(float) * WA_WARPS * (size_t)T;
    if (shared > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(window_attention_kernel,
                                                            cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared));
    window_attention_kernel<<<(unsigned)Bw * NH, 32 * WA_WARPS, shared>>>(out, qkv, table, idx, region, nW, T, NH, HS,
                                                                          div);
    CUDA_LAUNCHED("window_attention_kernel");
}
