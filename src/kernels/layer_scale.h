// Layer scale on a residual branch (ConvNeXt's gamma, DINOv2's LayerScale): a learnt per-channel factor on the
// branch before it is added to the shortcut, as timm's x.mul(gamma) + shortcut.
#ifndef VLM_KERNELS_LAYER_SCALE_H
#define VLM_KERNELS_LAYER_SCALE_H

// out (R,C) = x + gamma (C) * y, row by row (out may be x)
void layer_scale_forward(float *out, const float *x, const float *y, const float *gamma, int R, int C);
// dy (R,C) = dout * gamma (written); dgamma (C) += sum over rows of dout * y (formed in full,
// rows in order; NULL: skipped). x's gradient is dout itself (the residual stream's).
void layer_scale_backward(float *dy, float *dgamma, const float *dout, const float *y, const float *gamma, int R, int C);

#endif
