// The LLaMA decoder (RMSNorm, rotary attention with grouped-query heads,
// SwiGLU MLP, final norm, LM head) over an input sequence of embeddings,
// forward to logits and backward to the input embeddings.
#ifndef VLM_MODEL_LLAMA_H
#define VLM_MODEL_LLAMA_H

#include <stdbool.h>
#include <stdint.h>

#include "model/carve.h"
#include "model/param_hooks.h"
#include "model/weights.h"

typedef struct {
    float *ln1, *ln1_rstd;
    float *qkv;                     // (B*T, NH*HS + 2*NKV*HS): each row q, k, v
    float *lse, *ao, *mid, *ln2, *ln2_rstd;  // lse: attention's state (attention_state_floats)
    float *gu;                      // (B*T, 2I): each row gate, up
    float *act;
    float *lora_t[LORA_TARGETS];    // each adapter's dropout(x) A^T (B*T, r); NULL: no LoRA
} LlamaLayerActs;

typedef struct {
    int max_tokens, max_batch, max_seq;
    bool recompute;                 // layers share one LlamaLayerActs, refilled by the backward
    bool top_fresh;                 // they hold the top layer's since the last forward
    float *inv_freq, *cos_t, *sin_t;
    float **x;                      // layers + 1 residual states (B*T, H); x[0] is the input
    LlamaLayerActs *l;
    float *norm, *norm_rstd;
    float *head_in, *logits;        // the rows that get logits (n_rows, H) and their logits (n_rows, V)
    int32_t *rows;                  // which rows of the B*T positions (n_rows of them)
    int n_rows;
    float *tmp;                     // (B*T, H) a branch's output before its residual add, or its input's gradient
    float *dx, *dhead, *dqkv, *dao, *dgu, *dact;
    float *att_scratch;             // attention's forward and backward scratch
    // a multiway decoder (TextConfig.multiway): each row's modality (0 text, 1 visual), the
    // visual rows (n_vis of them, ascending), set by the composition before the forward; their
    // gathered ln1 rows, k|v products and gradients. NULL / 0: one modality.
    uint8_t *modality;
    int32_t *vis_rows;
    int n_vis;
    float *x1, *dx1, *kv1, *dkv1;
    // LoRA (LlavaConfig.lora, r 0: none): dropout applies while lora_train; lora_pass numbers the
    // forward (its masks' stream; a recomputing backward makes the same). Scratch for the backward.
    LoraConfig lora;
    bool lora_train;
    uint64_t lora_pass;
    float *lora_dt, *lora_xd, *lora_w;
    const ParamHooks *hooks;        // each layer's parameter events (model/param_hooks.h); NULL: none
} LlamaActs;

// recompute (--gradient_checkpointing): only the residual states x are kept
// per layer; one layer's activations are shared, and the backward recomputes
// each layer's before its gradients (bitwise the same numbers).
void llama_acts_carve(LlamaActs *a, Carve *c, const TextConfig *t, const LoraConfig *lora, int max_batch, int max_seq,
                      bool recompute);
// Fills the rotary tables for positions 0..max_seq-1 (once, after carving).
void llama_rope_init(LlamaActs *a, const TextConfig *t);
// a->x[0] (B,T,H) holds the input; lengths (B) the real tokens of each sample.
// -> a->logits (n_rows, V) for the positions rows[0..n_rows) (rows NULL: all
// B*T in order). Training needs logits only where a target is: LLaVA's image
// and prompt positions, most of a sequence, skip the LM head entirely.
void llama_forward(LlamaActs *a, const TextConfig *t, const LlavaWeights *w, const int *lengths, int B, int T,
                   const int32_t *rows, int n_rows);
// dlogits (n_rows, V) of the forward's rows -> a->dx (B*T, H), the gradient
// of the input x[0] (written). g NULL: frozen, no weight gradients. dstates
// (layers + 1 pointers, may be NULL; NULL entries: none) adds gradients of
// HF's hidden_states[h] (B*T, H) from elsewhere (OLA-VLM's predictors): h <
// layers the output of layer h, h == layers the final norm's output.
// g: the LLM's own weight gradients (NULL: frozen); lg: the LoRA adapters' (NULL: frozen or none).
void llama_backward(LlamaActs *a, const TextConfig *t, const LlavaWeights *w, LlavaWeights *g, LlavaWeights *lg,
                    const float *dlogits, float *const *dstates, const int *lengths, int B, int T);

// The layers' parameter events of a backward without computing (a micro-batch without a
// target still walks them as the other ranks' backward does: param_hooks.h).
void llama_walk_hooks(const LlamaActs *a, const TextConfig *t);

#endif
