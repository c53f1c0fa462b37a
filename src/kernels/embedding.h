// Token embedding lookup and the LLaVA splice that builds the LLM's input
// sequence from text embeddings and projected image features.
#ifndef VLM_KERNELS_EMBEDDING_H
#define VLM_KERNELS_EMBEDDING_H

#include <stdint.h>

// out (N,C) = table[ids[n]]; backward: dtable[ids[n]] += dout[n] (rows with id < 0 are skipped)
void embedding_forward(float *out, const int32_t *ids, const float *table, int N, int C);
void embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int V, int C);

// Source of each row of the spliced sequence: a text position (>= 0, a row of
// text (N_text, C)), an image feature row (-1 - row of image (N_img_rows, C)),
// or SPLICE_ZERO (padding).
#define SPLICE_ZERO INT32_MIN
void splice_forward(float *out, const int32_t *src, const float *text, const float *image, int N, int C);
// dtext (N_text, C) and dimage (N_image, C) (either may be NULL) are
// written: the rows their inputs fed, 0 in the others.
void splice_backward(float *dtext, float *dimage, const float *dout, const int32_t *src, int N, int C, int N_text,
                     int N_image);

// Image spans: image i's span (n_feat + n_extra rows of img) is its n_feat
// rows of feat, then the n_extra rows of extra, the same for every image
// (rows added after each image's features: OLA-VLM's task tokens). The
// backward writes dfeat and dextra (the sum over the images); either may be NULL.
void image_span_forward(float *img, const float *feat, const float *extra, int n_images, int n_feat, int n_extra, int C);
void image_span_backward(float *dfeat, float *dextra, const float *dimg, int n_images, int n_feat, int n_extra, int C);

// Row selection (the LM head's rows with a target): out (n,C) = inp[rows[r]].
// The backward WRITES dinp (N,C): the selected rows' gradients, zero in the
// others (rows must be distinct).
void row_select_forward(float *out, const float *inp, const int32_t *rows, int n, int C);
void row_select_backward(float *dinp, const float *dout, const int32_t *rows, int n, int N, int C);

// A slice of every sequence (an image's feature rows out of its ViT tokens):
// out (B, count, C) = inp (B, T, C)[:, first:first+count]. The backward
// WRITES dinp (B, T, C), zero outside the slice.
void token_slice_forward(float *out, const float *inp, int B, int T, int first, int count, int C);
void token_slice_backward(float *dinp, const float *dout, int B, int T, int first, int count, int C);

#endif
