// Multi-head cross-attention without a mask: NQ queries over NK keys, as the
// Perceiver resampler of OLA-VLM's embedding predictors computes it
// (softmax(q k^T * scale) v per head, in fp32).
#ifndef VLM_KERNELS_CROSS_ATTENTION_H
#define VLM_KERNELS_CROSS_ATTENTION_H

// q (NQ, ldq) holding NH heads of HS at the start of each row; k, v (NK, ldkv)
// likewise -> out (NQ, NH*HS); att (NH, NQ, NK) keeps the probabilities.
void cross_attention_forward(float *out, float *att, const float *q, int ldq, const float *k, const float *v, int ldkv,
                             int NQ, int NK, int NH, int HS, float scale);
// dq, dk, dv (laid out as q, k, v) accumulate (+=); scratch (NQ * NK) floats.
void cross_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *att, const float *q,
                              int ldq, const float *k, const float *v, int ldkv, int NQ, int NK, int NH, int HS,
                              float scale, float *scratch);

#endif
