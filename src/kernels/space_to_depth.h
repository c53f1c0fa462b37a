// Non-overlapping P x P patches of a channels-last map as rows, in a Conv2d weight's
// (c, ky, kx) order, so Conv2d(C, OC, kernel P, stride P) is linear_forward over them:
// ConvNeXt's downsample (P 2). (patch_embed.h's patch_im2col does the same on NCHW pixels.)
#ifndef VLM_KERNELS_SPACE_TO_DEPTH_H
#define VLM_KERNELS_SPACE_TO_DEPTH_H

// inp (N,H,W,C), H and W multiples of P -> cols (N, H/P, W/P, C*P*P):
// cols[n, oy, ox, (c*P + ky)*P + kx] = inp[n, oy*P + ky, ox*P + kx, c]
void space_to_depth_forward(float *cols, const float *inp, int N, int H, int W, int C, int P);
// dinp (N,H,W,C) written from dcols (each input element is in exactly one patch)
void space_to_depth_backward(float *dinp, const float *dcols, int N, int H, int W, int C, int P);

#endif
