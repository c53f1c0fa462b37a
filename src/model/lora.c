// LoRA adapters of a model, see lora.h.
#include "model/lora.h"

#include <math.h>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/lora.h"

float *lora_target_weight(const LlavaParams *p, int l, LoraTarget g, int *in, int *out) {
    const TextConfig *t = &p->cfg.text;
    const LlamaLayerWeights *L = &p->w.tl[l];
    int H = t->hidden, HS = H / t->heads, Q = t->heads * HS, KV = t->kv_heads * HS, I = t->intermediate;
    switch (g) {
    case LORA_Q: return *in = H, *out = Q, L->q_w;
    case LORA_K: return *in = H, *out = KV, L->k_w;
    case LORA_V: return *in = H, *out = KV, L->v_w;
    case LORA_O: return *in = Q, *out = H, L->o_w;
    case LORA_GATE: return *in = H, *out = I, L->gate_w;
    case LORA_UP: return *in = H, *out = I, L->up_w;
    case LORA_DOWN: return *in = I, *out = H, L->down_w;
    case LORA_K1: return *in = H, *out = KV, L->kv1_w;                              // kv1's first KV rows
    case LORA_V1: return *in = H, *out = KV, L->kv1_w ? L->kv1_w + (size_t)KV * H : NULL;  // and its last
    default: return NULL;
    }
}

void lora_init(LlavaParams *p, uint64_t seed) {
    Rng rng;
    rng_init(&rng, seed, 0x10AA);
    for (int l = 0; l < p->cfg.text.layers; l++)
        for (int g = 0; g < LORA_TARGETS; g++) {
            const LlamaLayerWeights *L = &p->w.tl[l];
            if (!L->lora[g][0]) continue;
            int in, out;
            lora_target_weight(p, l, (LoraTarget)g, &in, &out);
            float bound = 1.0f / sqrtf((float)in);
            for (size_t k = 0; k < (size_t)p->cfg.lora.r * in; k++) L->lora[g][0][k] = bound * (2.0f * rng_uniform(&rng) - 1.0f);
            for (size_t k = 0; k < (size_t)out * p->cfg.lora.r; k++) L->lora[g][1][k] = 0.0f;
        }
}

int llava_lora_merge(LlavaParams *p) {
    const LoraConfig *c = &p->cfg.lora;
    if (c->r <= 0) return VLM_OK;
    for (int l = 0; l < p->cfg.text.layers; l++)
        for (int g = 0; g < LORA_TARGETS; g++) {
            const LlamaLayerWeights *L = &p->w.tl[l];
            int in, out;
            float *W = lora_target_weight(p, l, (LoraTarget)g, &in, &out);
            if (L->lora[g][0] && W) lora_merge(W, L->lora[g][0], L->lora[g][1], in, out, c->r, c->alpha / (float)c->r);
        }
    LlavaConfig cfg = p->cfg;
    cfg.lora = (LoraConfig){0};
    return llava_params_relayout(p, &cfg, NULL);
}
