// torch's F.interpolate(mode="bicubic", align_corners=False, antialias=False)
// on CPU, for a grid of C-channel points stored channels-last: DINOv2 resizes
// its learnt position grid this way to the input's patch grid
// (interpolate_pos_encoding). Inference only (positions are weights read once).
#ifndef VLM_KERNELS_BICUBIC_H
#define VLM_KERNELS_BICUBIC_H

// inp (H, W, C) -> out (OH, OW, C). scale_h, scale_w: the scale_factor given to
// F.interpolate (torch maps output i to source (i + 0.5) / scale - 0.5, with
// 1 / scale rounded to float), or 0 when a size was given (then in / out).
// Keys's cubic convolution with A = -0.75; the source indices are clamped to
// the grid (the border replicated), as torch does.
void bicubic_resize_forward(float *out, const float *inp, int H, int W, int C, int OH, int OW, double scale_h,
                            double scale_w);

#endif
