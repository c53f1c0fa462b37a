// Depthwise 2-D convolution over channels-last maps: ConvNeXt's conv_dw, torch's
// Conv2d(C, C, K, padding K / 2, groups C, bias) with stride 1 and zero padding, odd K,
// run on (N, H, W, C) so the inner loops walk contiguous channels.
#ifndef VLM_KERNELS_DWCONV_H
#define VLM_KERNELS_DWCONV_H

#define DWCONV_MAX_K 15

// out (N,H,W,C)[n,y,x,c] = bias[c] + sum_{ky,kx} weight[c,0,ky,kx] * inp[n, y+ky-K/2, x+kx-K/2, c]
// (taps outside the map read zero). weight (C,1,K,K) in torch's layout; bias (C) or NULL.
// wt: K*K*C floats of scratch (the weight as (K,K,C)).
void dwconv2d_forward(float *out, const float *inp, const float *weight, const float *bias, float *wt, int N, int H,
                      int W, int C, int K);
// dinp (N,H,W,C) ACCUMULATES the convolution's input gradient (a block's residual stream: the
// branch adds into the shortcut's gradient, as the norms' dinp does, kernels/gradients.h); each
// element's contribution is formed in full, then added. dweight (C,1,K,K) and dbias (C) accumulate
// (+=, formed in full, positions in order: the same bits for any thread count). Any may be NULL.
// wt: K*K*C floats of scratch.
void dwconv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                       const float *weight, float *wt, int N, int H, int W, int C, int K);

#endif
