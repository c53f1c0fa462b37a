// CLIP's patch embedding: Conv2d(3, C, kernel=stride=P, bias=False) as an
// im2col copy plus one matrix product.
#ifndef VLM_KERNELS_PATCH_EMBED_H
#define VLM_KERNELS_PATCH_EMBED_H

// pixels (B,3,S,S) -> cols (B, NP, 3*P*P), NP = (S/P)^2, in the conv weight's (c, ky, kx) order
void patch_im2col(float *cols, const float *pixels, int B, int S, int P);
// out (B,NP,C) = cols @ weight (C, 3*P*P)^T
void patch_embed_forward(float *out, const float *cols, const float *weight, int B, int NP, int P, int C);
// dweight (C, 3*P*P) += dout^T @ cols (pixels get no gradient: they are data)
void patch_embed_backward(float *dweight, const float *dout, const float *cols, int B, int NP, int P, int C);

// The ViT's input rows: emb (B, NP+1, C), row 0 of each image cls (C), row
// 1 + p its patch p of patches (B, NP, C), each plus pos (NP+1, C).
void vit_embed_forward(float *emb, const float *patches, const float *cls, const float *pos, int B, int NP, int C);
// dpatches (B, NP, C) is written; dcls (C) and dpos (NP+1, C) accumulate
// (+=, images in order); either may be NULL.
void vit_embed_backward(float *dpatches, float *dcls, float *dpos, const float *demb, int B, int NP, int C);

#endif
