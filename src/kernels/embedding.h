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
// dtext and dimage (either may be NULL) accumulate the rows their inputs fed.
void splice_backward(float *dtext, float *dimage, const float *dout, const int32_t *src, int N, int C);

#endif
