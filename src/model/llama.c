// LLaMA decoder, see llama.h. Shapes: N = B*T tokens, H wide, NH query heads
// and NKV key/value heads of HS, I the MLP width, V the vocabulary.
#include "model/llama.h"

#include <stdlib.h>  // calloc

#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/embedding.h"
#include "kernels/gradients.h"
#include "kernels/linear.h"
#include "kernels/lora.h"
#include "kernels/norm.h"
#include "kernels/residual.h"
#include "kernels/rope.h"

void llama_acts_carve(LlamaActs *a, Carve *c, const TextConfig *t, const LoraConfig *lora, int max_batch, int max_seq,
                      bool recompute) {
    size_t N = (size_t)max_batch * max_seq, H = t->hidden, HS = H / t->heads, I = t->intermediate;
    size_t Q = (size_t)t->heads * HS, KV = (size_t)t->kv_heads * HS, R = lora->r > 0 ? (size_t)lora->r : 0;
    a->max_batch = max_batch, a->max_seq = max_seq, a->max_tokens = (int)N, a->recompute = recompute;
    a->lora = *lora;
    if (c->base && !a->x) {
        a->x = calloc((size_t)t->layers + 1, sizeof(float *));
        a->l = calloc((size_t)t->layers + 1, sizeof(LlamaLayerActs));
    }
    LlamaLayerActs dummy_l;
    a->inv_freq = carve(c, HS / 2);
    a->cos_t = carve(c, max_seq * HS / 2), a->sin_t = carve(c, max_seq * HS / 2);
    for (int l = 0; l <= t->layers; l++) {
        float *x = carve(c, N * H);
        if (c->base) a->x[l] = x;
    }
    // recomputing: one layer's activations, shared by every layer (the backward refills them)
    for (int l = 0; l < (recompute ? 1 : t->layers); l++) {
        LlamaLayerActs *L = c->base ? &a->l[l] : &dummy_l;
        L->ln1 = carve(c, N * H), L->ln1_rstd = carve(c, N);
        L->qkv = carve(c, N * (Q + 2 * KV));
        L->lse = carve(c, attention_state_floats(max_batch, t->heads, max_seq));
        L->ao = carve(c, N * Q), L->mid = carve(c, N * H);
        L->ln2 = carve(c, N * H), L->ln2_rstd = carve(c, N);
        L->gu = carve(c, N * 2 * I), L->act = carve(c, N * I);
        for (int g = 0; g < LORA_TARGETS; g++) L->lora_t[g] = R ? carve(c, N * R) : NULL;
    }
    if (recompute && c->base)
        for (int l = 1; l < t->layers; l++) a->l[l] = a->l[0];
    a->norm = carve(c, N * H), a->norm_rstd = carve(c, N), a->head_in = carve(c, N * H);
    a->logits = carve(c, N * t->vocab);
    a->rows = (int32_t *)carve(c, N);
    a->dx = carve(c, N * H), a->dhead = carve(c, N * H), a->tmp = carve(c, N * H);
    a->dqkv = carve(c, N * (Q + 2 * KV)), a->dao = carve(c, N * Q);
    a->dgu = carve(c, N * 2 * I), a->dact = carve(c, N * I);
    a->att_scratch = carve(c, attention_scratch_floats(max_seq));
    if (R) {  // the adapters' backward: dt (N, r), dropout(x) (N, widest input), a gradient block (widest out x r)
        size_t wide = I > H ? I : H;
        if (Q > wide) wide = Q;
        a->lora_dt = carve(c, N * R), a->lora_xd = carve(c, N * wide), a->lora_w = carve(c, wide * R);
    }
    a->modality = NULL, a->vis_rows = NULL, a->n_vis = 0;
    if (t->multiway) {  // the visual rows' own k, v products
        a->modality = (uint8_t *)carve(c, (N + 3) / 4), a->vis_rows = (int32_t *)carve(c, N);
        a->x1 = carve(c, N * H), a->dx1 = carve(c, N * H), a->kv1 = carve(c, N * 2 * KV), a->dkv1 = carve(c, N * 2 * KV);
    }
}

void llama_rope_init(LlamaActs *a, const TextConfig *t) {
    int HS = t->hidden / t->heads;
    rope_inv_freq(a->inv_freq, HS, &t->rope);
    rope_tables(a->cos_t, a->sin_t, a->inv_freq, a->max_seq, HS);
}

// The attention's mask: causal, within Phi-3's sliding window when it has one (attention.h:
// query t sees itself and the sliding_window keys before it, as transformers' mask gives it)
static int causal_of(const TextConfig *t) { return t->sliding_window > 0 ? t->sliding_window + 1 : 1; }

// ---- LoRA: each target's input and output inside the layer's products

// Adapter g of layer l's dropout in this forward: one mask stream per (pass, layer, adapter)
static LoraDropout dropout_of(const LlamaActs *a, int l, LoraTarget g) {
    const LoraConfig *c = &a->lora;
    return (LoraDropout){a->lora_train ? c->dropout : 0.0f, c->seed, (a->lora_pass * 1024 + (uint64_t)l) * LORA_TARGETS + g};
}

// Adapter g of layer l on n rows: x (n, in) -> y (n, out) at stride ldy.
static void lora_fwd(LlamaActs *a, const LlamaLayerWeights *W, LlamaLayerActs *L, int l, LoraTarget g, float *y, int ldy,
                     const float *x, int n, int in, int out) {
    if (!W->lora[g][0]) return;
    const LoraConfig *c = &a->lora;
    LoraDropout d = dropout_of(a, l, g);
    lora_forward(y, ldy, x, W->lora[g][0], W->lora[g][1], L->lora_t[g], a->lora_xd, n, in, out, c->r, c->alpha / c->r, d);
}

static void lora_bwd(LlamaActs *a, const LlamaLayerWeights *W, LlamaLayerWeights *G, LlamaLayerActs *L, int l,
                     LoraTarget g, float *dx, const float *dy, int ldy, const float *x, int n, int in, int out) {
    if (!W->lora[g][0]) return;
    const LoraConfig *c = &a->lora;
    LoraDropout d = dropout_of(a, l, g);
    lora_backward(dx, G ? G->lora[g][0] : NULL, G ? G->lora[g][1] : NULL, dy, ldy, x, W->lora[g][0], W->lora[g][1],
                  L->lora_t[g], a->lora_dt, a->lora_xd, a->lora_w, n, in, out, c->r, c->alpha / c->r, d);
}

// Layer l: a->x[l] -> a->x[l + 1], its activations in a->l[l]. The backward
// calls it again when recomputing: the same kernels on the same input give
// the same bytes, so checkpointing changes no number.
static void layer_forward(LlamaActs *a, const TextConfig *t, const LlamaLayerWeights *W, int l, const int *lengths,
                          int B, int T) {
    int N = B * T, H = t->hidden, NH = t->heads, NKV = t->kv_heads, HS = H / NH, I = t->intermediate;
    int Q = NH * HS, KV = NKV * HS, QKV = Q + 2 * KV;
    LlamaLayerActs *L = &a->l[l];
    rmsnorm_forward(L->ln1, L->ln1_rstd, a->x[l], W->ln1_w, a->modality, N, H, t->rms_eps);
    // qkv (N, Q+2KV): each row q, k, v; rope turns q's and k's heads, adjacent too
    linear_forward(L->qkv, L->ln1, W->qkv_w, NULL, N, H, QKV);
    lora_fwd(a, W, L, l, LORA_Q, L->qkv, QKV, L->ln1, N, H, Q);
    lora_fwd(a, W, L, l, LORA_K, L->qkv + Q, QKV, L->ln1, N, H, KV);
    lora_fwd(a, W, L, l, LORA_V, L->qkv + Q + KV, QKV, L->ln1, N, H, KV);
    if (a->n_vis) {  // multiway: the visual rows' k, v from their own weights replace modality 0's
        row_select_forward(a->x1, L->ln1, a->vis_rows, a->n_vis, H);
        linear_forward(a->kv1, a->x1, W->kv1_w, NULL, a->n_vis, H, 2 * KV);
        lora_fwd(a, W, L, l, LORA_K1, a->kv1, 2 * KV, a->x1, a->n_vis, H, KV);
        lora_fwd(a, W, L, l, LORA_V1, a->kv1 + KV, 2 * KV, a->x1, a->n_vis, H, KV);
        row_put_cols_forward(L->qkv, QKV, Q, a->kv1, a->vis_rows, a->n_vis, 2 * KV);
    }
    rope_forward(L->qkv, a->cos_t, a->sin_t, B, T, NH + NKV, HS, QKV);
    attention_forward(L->ao, L->lse, L->qkv, L->qkv + Q, L->qkv + Q + KV, QKV, lengths, B, T, NH, NKV, HS, causal_of(t),
                      a->att_scratch);
    linear_forward(a->tmp, L->ao, W->o_w, NULL, N, NH * HS, H);
    lora_fwd(a, W, L, l, LORA_O, a->tmp, H, L->ao, N, Q, H);
    residual_forward(L->mid, a->x[l], a->tmp, (size_t)N * H);
    rmsnorm_forward(L->ln2, L->ln2_rstd, L->mid, W->ln2_w, a->modality, N, H, t->rms_eps);
    linear_forward(L->gu, L->ln2, W->gate_up_w, NULL, N, H, 2 * I);  // gu (N, 2I): gate, up
    lora_fwd(a, W, L, l, LORA_GATE, L->gu, 2 * I, L->ln2, N, H, I);
    lora_fwd(a, W, L, l, LORA_UP, L->gu + I, 2 * I, L->ln2, N, H, I);
    swiglu_forward(L->act, L->gu, N, I);
    linear_forward(a->tmp, L->act, W->down_w, NULL, N, I, H);
    lora_fwd(a, W, L, l, LORA_DOWN, a->tmp, H, L->act, N, I, H);
    residual_forward(a->x[l + 1], L->mid, a->tmp, (size_t)N * H);
}

void llama_forward(LlamaActs *a, const TextConfig *t, const LlavaWeights *w, const int *lengths, int B, int T,
                   const int32_t *rows, int n_rows) {
    int N = B * T, H = t->hidden;
    for (int l = 0; l < t->layers; l++) {
        param_hook(a->hooks, HOOK_FETCH, MODULE_LLM, l);
        layer_forward(a, t, &w->tl[l], l, lengths, B, T);
        param_hook(a->hooks, HOOK_RELEASE, MODULE_LLM, l);
    }
    a->top_fresh = true;
    param_hook(a->hooks, HOOK_FETCH, MODULE_LLM, PARAM_GROUP_HEAD);
    rmsnorm_forward(a->norm, a->norm_rstd, a->x[t->layers], w->norm_w, NULL, N, H, t->rms_eps);
    a->n_rows = rows ? n_rows : N;
    for (int r = 0; r < a->n_rows; r++) a->rows[r] = rows ? rows[r] : r;  // host-side bookkeeping
    row_select_forward(a->head_in, a->norm, a->rows, a->n_rows, H);
    linear_forward(a->logits, a->head_in, w->lm_head, NULL, a->n_rows, H, t->vocab);
    param_hook(a->hooks, HOOK_RELEASE, MODULE_LLM, PARAM_GROUP_HEAD);
}

#define GRAD(field) (g ? g->field : NULL)

void llama_backward(LlamaActs *a, const TextConfig *t, const LlavaWeights *w, LlavaWeights *g, LlavaWeights *lg,
                    const float *dlogits, float *const *dstates, const int *lengths, int B, int T) {
    int N = B * T, H = t->hidden, NH = t->heads, NKV = t->kv_heads, HS = H / NH, I = t->intermediate;
    int Q = NH * HS, KV = NKV * HS, QKV = Q + 2 * KV;
    size_t NxH = (size_t)N * H;
    // the LM head over the rows that had logits (dhead); the other rows get no gradient
    param_hook(a->hooks, HOOK_FETCH, MODULE_LLM, PARAM_GROUP_HEAD);
    linear_backward(a->dhead, GRAD(lm_head), NULL, dlogits, a->head_in, w->lm_head, a->n_rows, H, t->vocab);
    row_select_backward(a->tmp, a->dhead, a->rows, a->n_rows, N, H);
    if (dstates && dstates[t->layers]) residual_forward(a->tmp, a->tmp, dstates[t->layers], NxH);
    // dx: the residual stream's gradient, which every norm's backward adds into
    vlm_zero(a->dx, NxH);  // the final norm has no skip connection
    rmsnorm_backward(a->dx, GRAD(norm_w), a->tmp, a->x[t->layers], w->norm_w, NULL, a->norm_rstd, N, H);
    param_hook(a->hooks, HOOK_GRADS, MODULE_LLM, PARAM_GROUP_HEAD);
    param_hook(a->hooks, HOOK_RELEASE, MODULE_LLM, PARAM_GROUP_HEAD);
    for (int l = t->layers - 1; l >= 0; l--) {
        const LlamaLayerWeights *W = &w->tl[l];
        LlamaLayerWeights *G = g ? &g->tl[l] : NULL, *LG = lg ? &lg->tl[l] : NULL;
        LlamaLayerActs *L = &a->l[l];
        param_hook(a->hooks, HOOK_FETCH, MODULE_LLM, l);
        // refills the shared activations; the top layer's are still there after its forward
        if (a->recompute && !(l == t->layers - 1 && a->top_fresh)) layer_forward(a, t, W, l, lengths, B, T);
        a->top_fresh = false;
        if (dstates && l + 1 < t->layers && dstates[l + 1]) residual_forward(a->dx, a->dx, dstates[l + 1], NxH);
        // MLP: x[l+1] = mid + down(silu(gate(ln2)) * up(ln2)); dx becomes d mid
        linear_backward(a->dact, G ? G->down_w : NULL, NULL, a->dx, L->act, W->down_w, N, I, H);
        lora_bwd(a, W, LG, L, l, LORA_DOWN, a->dact, a->dx, H, L->act, N, I, H);
        swiglu_backward(a->dgu, a->dact, L->gu, N, I);
        linear_backward(a->tmp, G ? G->gate_up_w : NULL, NULL, a->dgu, L->ln2, W->gate_up_w, N, H, 2 * I);
        lora_bwd(a, W, LG, L, l, LORA_GATE, a->tmp, a->dgu, 2 * I, L->ln2, N, H, I);
        lora_bwd(a, W, LG, L, l, LORA_UP, a->tmp, a->dgu + I, 2 * I, L->ln2, N, H, I);
        rmsnorm_backward(a->dx, G ? G->ln2_w : NULL, a->tmp, L->mid, W->ln2_w, a->modality, L->ln2_rstd, N, H);
        // attention: mid = x[l] + o(attn(rope(q), rope(k), v of ln1(x[l]))); dx becomes d x[l]
        linear_backward(a->dao, G ? G->o_w : NULL, NULL, a->dx, L->ao, W->o_w, N, Q, H);
        lora_bwd(a, W, LG, L, l, LORA_O, a->dao, a->dx, H, L->ao, N, Q, H);
        attention_backward(a->dqkv, a->dqkv + Q, a->dqkv + Q + KV, a->dao, L->ao, L->lse, L->qkv, L->qkv + Q,
                           L->qkv + Q + KV, QKV, lengths, B, T, NH, NKV, HS, causal_of(t), a->att_scratch);
        rope_backward(a->dqkv, a->cos_t, a->sin_t, B, T, NH + NKV, HS, QKV);
        if (a->n_vis) {  // the visual rows' k, v: their own weights' (modality 0's got no gradient there)
            row_put_cols_backward(a->dkv1, a->dqkv, QKV, Q, a->vis_rows, a->n_vis, 2 * KV);
            row_select_forward(a->x1, L->ln1, a->vis_rows, a->n_vis, H);  // the gathered rows again (shared scratch)
            linear_backward(a->dx1, G ? G->kv1_w : NULL, NULL, a->dkv1, a->x1, W->kv1_w, a->n_vis, H, 2 * KV);
            lora_bwd(a, W, LG, L, l, LORA_K1, a->dx1, a->dkv1, 2 * KV, a->x1, a->n_vis, H, KV);
            lora_bwd(a, W, LG, L, l, LORA_V1, a->dx1, a->dkv1 + KV, 2 * KV, a->x1, a->n_vis, H, KV);
        }
        linear_backward(a->tmp, G ? G->qkv_w : NULL, NULL, a->dqkv, L->ln1, W->qkv_w, N, H, QKV);
        lora_bwd(a, W, LG, L, l, LORA_Q, a->tmp, a->dqkv, QKV, L->ln1, N, H, Q);
        lora_bwd(a, W, LG, L, l, LORA_K, a->tmp, a->dqkv + Q, QKV, L->ln1, N, H, KV);
        lora_bwd(a, W, LG, L, l, LORA_V, a->tmp, a->dqkv + Q + KV, QKV, L->ln1, N, H, KV);
        if (a->n_vis) embedding_backward(a->tmp, a->dx1, a->vis_rows, a->n_vis, N, H);  // tmp[vis_rows[r]] += dx1[r]
        rmsnorm_backward(a->dx, G ? G->ln1_w : NULL, a->tmp, a->x[l], W->ln1_w, a->modality, L->ln1_rstd, N, H);
        param_hook(a->hooks, HOOK_GRADS, MODULE_LLM, l);
        param_hook(a->hooks, HOOK_RELEASE, MODULE_LLM, l);
    }
}

void llama_walk_hooks(const LlamaActs *a, const TextConfig *t) {
    param_hook(a->hooks, HOOK_FETCH, MODULE_LLM, PARAM_GROUP_HEAD);
    param_hook(a->hooks, HOOK_GRADS, MODULE_LLM, PARAM_GROUP_HEAD);
    param_hook(a->hooks, HOOK_RELEASE, MODULE_LLM, PARAM_GROUP_HEAD);
    for (int l = t->layers - 1; l >= 0; l--) {
        param_hook(a->hooks, HOOK_FETCH, MODULE_LLM, l);
        param_hook(a->hooks, HOOK_GRADS, MODULE_LLM, l);
        param_hook(a->hooks, HOOK_RELEASE, MODULE_LLM, l);
    }
}
