// Rotary position embedding as HF LLaMA applies it (rotate_half: the two
// halves of each head are the pair, not interleaved neighbours).
#ifndef VLM_KERNELS_ROPE_H
#define VLM_KERNELS_ROPE_H

typedef struct {
    float theta;             // rope_theta (10000 LLaMA-2, 500000 Llama-3)
    // Llama-3.1 "llama3" scaling (factor 0: none)
    float factor, low_freq_factor, high_freq_factor;
    int original_max_position;
} RopeConfig;

// inv_freq (HS/2) as transformers computes it, scaling included. Both table
// builders compute on the host in every build, and take device or host
// memory (a saved checkpoint's inv_freq buffers are made in host memory).
void rope_inv_freq(float *inv_freq, int HS, const RopeConfig *cfg);
// cos, sin (T, HS/2) for positions 0..T-1 (float32 products, as HF).
void rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T, int HS);
// x (B,T,ld): the first NH heads of HS of each row rotated in place by
// position t (ld = NH*HS: packed heads); backward rotates back.
void rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int NH, int HS, int ld);
void rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int NH, int HS, int ld);

#endif
