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

// Per-image concatenation: out (n, na + nb, C), image i's rows a_i (na) then
// b_i (nb) (the abstractor's keys over [queries; image]). The backward writes
// da and db (either may be NULL).
void concat_rows_forward(float *out, const float *a, int na, const float *b, int nb, int n, int C);
void concat_rows_backward(float *da, float *db, const float *dout, int na, int nb, int n, int C);
// out (n, R, C) = table (R, C) for each of n images (the abstractor's learnt
// queries); the backward adds the images' gradients into dtable (a parameter:
// it accumulates), each element summed in image order.
void repeat_rows_forward(float *out, const float *table, int n, int R, int C);
void repeat_rows_backward(float *dtable, const float *dout, int n, int R, int C);
// out (n, R, C) = x + table (R, C) for each of n blocks: a fixed table (the
// abstractor's sin-cos positions), so the backward is the identity (callers
// pass the gradient on) and there is no backward function. out may be x.
void add_rows_forward(float *out, const float *x, const float *table, int n, int R, int C);
// Writes in (n, width) into columns [col, col + width) of out's rows rows[r]
// (out rows of ld floats): a product over some rows replacing part of a
// product over all (mPLUG-Owl2's visual rows' k and v). The backward writes
// din (n, width) from those entries of dout and zeroes them there (in place):
// the values they overwrote got no gradient.
void row_put_cols_forward(float *out, int ld, int col, const float *in, const int32_t *rows, int n, int width);
void row_put_cols_backward(float *din, float *dout, int ld, int col, const int32_t *rows, int n, int width);

#endif
