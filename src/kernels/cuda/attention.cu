// Self-attention on the GPU, see attention.h: the fused kernel of flash.cu
// (causal, padding, GQA, the sliding window). The state is the header's: lse
// (B, NH, T). No scratch: the backward recomputes rowsum(dout * out) per tile.
#include <math.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/flash.cuh"
extern "C" {
#include "kernels/attention.h"
}

static FlashArgs args_of(const float *q, const float *k, const float *v, int ld, const int *lengths, int B, int T,
                         int NH, int NKV, int HS, int causal) {
    FlashArgs a;
    a.q = q, a.k = k, a.v = v;
    a.ldq = a.ldk = ld, a.ldo = NH * HS;
    a.lengths = lengths;
    a.B = B, a.Tq = a.Tk = T, a.NH = NH, a.NKV = NKV, a.HS = HS, a.causal = causal;
    a.scale = 1.0f / sqrtf((float)HS);
    return a;
}

void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v, int ld,
                       const int *lengths, int B, int T, int NH, int NKV, int HS, int causal, float *scratch) {
    (void)scratch;
    flash_forward(args_of(q, k, v, ld, lengths, B, T, NH, NKV, HS, causal), out, lse);
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *out, const float *lse,
                        const float *q, const float *k, const float *v, int ld, const int *lengths, int B, int T,
                        int NH, int NKV, int HS, int causal, float *scratch) {
    (void)scratch;
    flash_backward(args_of(q, k, v, ld, lengths, B, T, NH, NKV, HS, causal), out, lse, dout, dq, dk, dv);
}

size_t attention_state_floats(int B, int NH, int T) { return (size_t)B * NH * T; }

// the fused kernels keep their tiles in shared memory: no scratch
size_t attention_scratch_floats(int T) {
    (void)T;
    return 0;
}
