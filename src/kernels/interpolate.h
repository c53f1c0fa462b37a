// Resizing float maps as torch.nn.functional.interpolate(mode="bilinear",
// align_corners=False, antialias=False) computes them on the CPU (no scale
// factor given: scale = in / out in float), inference only.
#ifndef VLM_KERNELS_INTERPOLATE_H
#define VLM_KERNELS_INTERPOLATE_H

// inp (N, H, W) planes -> out (N, OH, OW). Output (oy, ox) reads source row
// sy = max(0, (oy + 0.5) * H / OH - 0.5), rows floor(sy) and the next (the
// last row itself at the edge) weighted 1 - frac and frac; columns alike.
void bilinear_resize_forward(float *out, const float *inp, int N, int H, int W, int OH, int OW);

#endif
