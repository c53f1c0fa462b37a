// Swin's layout moves (transformers' modeling_swin.py), inference only: the
// padded patchify in front of the patch embedding's product, the cyclic
// shift and window partition around the window attention, patch merging's
// gather, and tokens to a channels-first feature map. Pure copies (zeros
// where Swin pads): every output element written once, by one thread.
#ifndef VLM_KERNELS_SWIN_LAYOUT_H
#define VLM_KERNELS_SWIN_LAYOUT_H

// SwinPatchEmbeddings: pixels (B, 3, H, W) zero-padded on the right and bottom
// to multiples of P -> cols (B, GH * GW, 3 * P * P), GH = ceil(H / P), GW =
// ceil(W / P), in the conv weight's (c, ky, kx) order (then one product with it).
void patch_im2col_padded(float *cols, const float *pixels, int B, int H, int W, int P);

// SwinLayer before its attention: x (B, H, W, C) zero-padded to Hp x Wp
// (multiples of ws, maybe_pad), rolled by -shift on both axes (torch.roll),
// cut into windows -> win (B * nW, ws * ws, C), nW = (Hp / ws) * (Wp / ws),
// windows and their tokens row-major (window_partition).
void window_partition_forward(float *win, const float *x, int B, int H, int W, int C, int ws, int shift);
// The inverse, added to the residual: out (B, H, W, C) = res + the windows
// put back (window_reverse), rolled by +shift, cropped to H x W. out may be res.
void window_merge_residual_forward(float *out, const float *res, const float *win, int B, int H, int W, int C, int ws,
                                   int shift);

// SwinPatchMerging before its norm: x (B, H, W, C), zero-padded to even sides
// -> out (B, ceil(H / 2), ceil(W / 2), 4C): each row x[2i, 2j], x[2i+1, 2j],
// x[2i, 2j+1], x[2i+1, 2j+1] (the torch.cat order).
void patch_merge_gather_forward(float *out, const float *x, int B, int H, int W, int C);

// (B, N, C) tokens -> (B, C, N): a stage's map as SwinBackbone returns it (B, C, H, W).
void tokens_to_map_forward(float *map, const float *x, int B, int N, int C);

#endif
