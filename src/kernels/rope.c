// Rotary embeddings, see rope.h.
#include "kernels/rope.h"

#include <math.h>  // powf, cosf, sinf

void rope_inv_freq(float *inv_freq, int HS, const RopeConfig *cfg) {
    for (int i = 0; i < HS / 2; i++) {
        // 1 / base ** (arange(0, dim, 2).float() / dim), in float32
        float f = 1.0f / powf(cfg->theta, (float)(2 * i) / (float)HS);
        if (cfg->factor > 0) {
            // transformers' _compute_llama3_parameters: torch float32 tensor arithmetic with the
            // Python scalars cast to float32, in its order; `scalar / tensor` is torch's
            // reciprocal(tensor) * scalar (checked bit for bit against 4.44.2)
            float low_wavelen = (float)((double)cfg->original_max_position / cfg->low_freq_factor);
            float high_wavelen = (float)((double)cfg->original_max_position / cfg->high_freq_factor);
            float wavelen = (1.0f / f) * (float)(2 * M_PI);
            if (wavelen > low_wavelen) {
                f = f / cfg->factor;
            } else if (wavelen >= high_wavelen) {
                float smooth = ((1.0f / wavelen) * (float)cfg->original_max_position - cfg->low_freq_factor) /
                               (float)((double)cfg->high_freq_factor - cfg->low_freq_factor);
                f = (1.0f - smooth) * f / cfg->factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

void rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T, int HS) {
    int half = HS / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            float angle = (float)t * inv_freq[i];
            cos_t[t * half + i] = cosf(angle);
            sin_t[t * half + i] = sinf(angle);
        }
}

// rotate each (x[i], x[i + half]) pair by +angle (sign 1) or -angle (sign -1)
static void rotate(float *x, const float *cos_t, const float *sin_t, int B, int T, int NH, int HS, int ld, float sign) {
    int half = HS / 2;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *c = cos_t + (long)t * half, *s = sin_t + (long)t * half;
            for (int h = 0; h < NH; h++) {
                float *v = x + ((long)b * T + t) * ld + h * HS;
                for (int i = 0; i < half; i++) {
                    float x1 = v[i], x2 = v[i + half], si = sign * s[i];
                    v[i] = x1 * c[i] - x2 * si;
                    v[i + half] = x2 * c[i] + x1 * si;
                }
            }
        }
}

void rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int NH, int HS, int ld) {
    rotate(x, cos_t, sin_t, B, T, NH, HS, ld, 1.0f);
}

void rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int NH, int HS, int ld) {
    rotate(dx, cos_t, sin_t, B, T, NH, HS, ld, -1.0f);  // the transpose of a rotation is the inverse rotation
}
