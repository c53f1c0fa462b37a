// LLaVA's parameters: one contiguous float32 buffer carved into named
// tensors (llava-hf names), with a module tag on each so a stage can freeze
// a module. The gradient buffer has the same layout.
#ifndef VLM_MODEL_WEIGHTS_H
#define VLM_MODEL_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"
#include "model/config.h"

// MODULE_OLA: OLA-VLM's task tokens, embedding predictors and logit scales.
// MODULE_LORA: LoRA adapters on the LLM's linear layers (LlavaConfig.lora).
typedef enum { MODULE_VISION, MODULE_PROJECTOR, MODULE_LLM, MODULE_OLA, MODULE_LORA, MODULE_COUNT } Module;
// The module as the architecture calls it (llava-hf's, mPLUG-Owl2's; c NULL: llava-hf's).
const char *module_name(const LlavaConfig *c, Module m);

typedef struct {
    float *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b, *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w,
        *fc2_b;
    // fused views, laid out adjacent by the walk (checked once, in llava_weights_view):
    float *qkv_w, *qkv_b;  // (3C, C), (3C): q, k, v
    float *ls1, *ls2;      // (C) LayerScale gammas of the attention and MLP branches (VisionConfig.layer_scale)
} ClipLayerWeights;

// The LLM linears LoRA adapts: PEFT's target modules (find_all_linear_names), in the
// layer's order; K1 / V1 are a multiway layer's visual-branch k_proj / v_proj.
typedef enum { LORA_Q, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_K1, LORA_V1, LORA_TARGETS } LoraTarget;

typedef struct {
    float *ln1_w, *q_w, *k_w, *v_w, *o_w, *ln2_w, *gate_w, *up_w, *down_w;
    // fused views, laid out adjacent by the walk (checked once, in llava_weights_view):
    float *qkv_w;      // (Q + 2 KV, H): q_w, k_w, v_w
    float *gate_up_w;  // (2 I, H): gate_w, up_w
    // a multiway (modality-adaptive) layer: ln1_w and ln2_w are (2, H), one row per modality;
    // k_w, v_w are modality 0's (text), kv1_w (2 KV, H) modality 1's k, v (visual rows)
    float *kv1_w;
    // LoRA (LlavaConfig.lora): lora[target][0] A (r, in), [1] B (out, r); NULL without
    float *lora[LORA_TARGETS][2];
} LlamaLayerWeights;

// One layer of mPLUG-Owl2's visual abstractor (crossattention.*), nn.Linear
// layout; D the abstractor's width (= the ViT's), I its intermediate width.
typedef struct {
    float *norm1_w, *norm1_b, *normk_w, *normk_b;       // LayerNorm (D): queries, image
    float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b;           // attention.query / key / value (D, D), (D)
    float *o_w, *o_b;                                   // output.out_proj
    float *norm2_w, *norm2_b;                           // output.norm2
    float *w1_w, *w1_b, *w3_w, *w3_b;                   // SwiGLU gate, up (I, D), (I)
    float *ffn_ln_w, *ffn_ln_b, *w2_w, *w2_b;           // LayerNorm (I), down (D, I)
    // fused view (adjacent by the walk): w1|w3 (2I, D) + (2I), one product over norm2's output
    float *w13_w, *w13_b;
} AbstractorLayerWeights;

// One OLA-VLM embedding predictor (upstream's TaskToken*Head): a one-block
// Perceiver resampler, nn.Linear layout (out, in). D the LLM's width, d the
// head's inner width, A = heads * dim_head, O the output width.
typedef struct {
    float *proj_in_w, *proj_in_b;                 // (d, D), (d): inputs and queries alike
    float *norm1_w, *norm1_b, *norm2_w, *norm2_b; // LayerNorm (d) of inputs, of queries
    float *to_q, *to_kv, *to_out;                 // (A, d), (2A, d), (d, A), no bias
    float *ff_ln_w, *ff_ln_b, *ff1_w, *ff2_w;     // FeedForward: LayerNorm (d), (d*mult, d), (d, d*mult)
    float *proj_out_w, *proj_out_b, *norm_out_w, *norm_out_b;  // (O, d), (O), LayerNorm (O)
    float *mlp1_w, *mlp1_b, *mlp2_w, *mlp2_b;     // depth's linear_1 (use_intermediate_depth): (O, O) each
} OlaHeadWeights;

typedef struct {
    float *tokens[OLA_TASKS];      // special_{depth,seg}_tokens (num_tokens, D), special_gen_tokens (num_task_tokens, D)
    float *logit_scale[OLA_TASKS]; // one scalar per task
    OlaHeadWeights head[OLA_TASKS][OLA_MAX_LAYERS];
} OlaWeights;

// One ConvNeXt block (timm's ConvNeXtBlock, conv_mlp False), C its stage's width:
// gamma (C) layer scale, conv_dw (C, 1, 7, 7) + (C), norm (C) + (C), mlp.fc1 (4C, C) + (4C),
// mlp.fc2 (C, 4C) + (C).
typedef struct {
    float *gamma, *dw_w, *dw_b, *ln_w, *ln_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} ConvNextBlockWeights;

// timm's ConvNeXt trunk (VISION_CONVNEXT): the stem Conv2d(3, d0, 4, 4) (d0, 3, 4, 4) + (d0) and
// its LayerNorm2d; stage s > 0's downsample LayerNorm2d (d_{s-1}) and Conv2d (d_s, d_{s-1}, 2, 2)
// + (d_s); the blocks, stage by stage; head.norm (d3), which upstream's features never reach.
typedef struct {
    float *stem_w, *stem_b, *stem_ln_w, *stem_ln_b;
    float *ds_ln_w[CONVNEXT_STAGES], *ds_ln_b[CONVNEXT_STAGES], *ds_w[CONVNEXT_STAGES], *ds_b[CONVNEXT_STAGES];
    float *head_ln_w, *head_ln_b;
    ConvNextBlockWeights *blk;  // sum of depths
} ConvNextWeights;

typedef struct {
    // vision tower (CLIP)
    float *patch_w, *cls, *pos, *pre_ln_w, *pre_ln_b, *post_ln_w, *post_ln_b;
    ClipLayerWeights *vl;
    ConvNextWeights cx;               // the vision tower when it is a ConvNeXt (VisionConfig.kind)
    // projector: linear_1 (H, Cv) + bias, linear_2 (H, H) + bias (mlp2x_gelu)
    float *p1_w, *p1_b, *p2_w, *p2_b;
    // mPLUG-Owl2's visual abstractor: query_embeds (Q, D), layers, visual_fc (H, D) + bias, vit_eos (H)
    float *query_embeds, *visual_fc_w, *visual_fc_b, *vit_eos;
    AbstractorLayerWeights *al;
    // language model (LLaMA)
    float *embed, *norm_w, *lm_head;  // lm_head == embed when tied
    LlamaLayerWeights *tl;
    OlaWeights ola;                   // when cfg.ola.enabled
} LlavaWeights;

typedef struct {
    char name[160];
    Module module;
    int ndim;
    int64_t shape[4];
    size_t offset, numel;  // in floats, within the buffer
    bool reachable;        // on a path to the loss (false: CLIP layers past the selected one, post_layernorm)
    // > 0: a fused q|k|v the file holds per head interleaved ([heads][q|k|v][rows / (3 heads)], Megatron's,
    // mPLUG-Owl2's ViT); the buffer holds [q; k; v], converted at load and save
    int qkv_heads;
    // a multiway decoder's per-modality tensor: 0 text, 1 visual (-1: shared). One a step's rows never
    // used gets no gradient (torch: None), so AdamW leaves it alone (llava_param_has_grad)
    int modality;
} ParamSpec;

// The layer of a ".layers.N." tensor (a ViT's, an LLM's, an abstractor's), -1 for any other.
int param_layer(const ParamSpec *s);

// The optimiser updates s: reachable, in a trainable module (torch skips
// parameters whose grad is None; frozen modules have requires_grad False).
static inline bool param_trained(const ParamSpec *s, const bool trainable[MODULE_COUNT]) {
    return s->reachable && trainable[s->module];
}

typedef struct {
    LlavaConfig cfg;
    ParamSpec *specs;
    int n_specs;
    size_t numel;                 // floats in the buffer
    size_t module_numel[MODULE_COUNT];
    float *data;                  // the parameters
    LlavaWeights w;               // pointers into data
} LlavaParams;

// Lays out the parameters for cfg (allocates, zero-filled).
int llava_params_alloc(LlavaParams *p, const LlavaConfig *cfg);
// Its two halves: the layout alone (specs, counts; p->data stays NULL), so
// a checkpoint's shapes can be checked against it before any memory is
// planned; then the zero-filled buffer and the weight pointers.
int llava_params_layout(LlavaParams *p, const LlavaConfig *cfg);
int llava_params_alloc_data(LlavaParams *p);
void llava_params_free(LlavaParams *p);
// The same pointer structure over another buffer of p->numel floats
// (gradients, moments). Allocates out->vl / out->tl when they are NULL; the
// caller frees them.
void llava_weights_view(const LlavaParams *p, float *base, LlavaWeights *out);

// A llava-hf parameter name as the original LLaVA layout (LlavaLlamaForCausalLM) names it:
// language_model.model.* -> model.*, multi_modal_projector.linear_1 -> model.mm_projector.0, ...
// (other names unchanged).
void llava_original_name(const LlavaConfig *c, const char *param, char *out, size_t size);

// A parameter name of OLA-VLM's parts (MODULE_OLA).
bool llava_is_ola_name(const char *name);
// One of its predictors' nn.LayerNorm parameters (attention's norm1 / norm2,
// FeedForward's first layer, norm_out): initialised 1 / 0, not decayed.
bool llava_is_ola_layernorm(const char *name);
// Lays p out again for cfg (e.g. with or without OLA-VLM's parts): tensors of
// the same name and size keep their values, new ones are zero; *all_kept
// (may be NULL) tells whether every new tensor had an old one.
int llava_params_relayout(LlavaParams *p, const LlavaConfig *cfg, bool *all_kept);

// Loads a llava-hf model directory (config.json + safetensors or .bin,
// sharded or not); f16/bf16 upcast. Missing, unexpected or mis-shaped
// tensors are one error listing them.
int llava_load_hf(LlavaParams *p, const char *dir);
// Loads an original LLaVA directory (LlavaLlamaForCausalLM: LLaMA config at
// the top level plus mm_projector_type, mm_vision_select_layer,
// mm_vision_select_feature; weights under model.*, the projector as
// model.mm_projector.0/2) with the CLIP directory its mm_vision_tower names
// (CLIPVisionModel or CLIPModel). Vision weights saved in the LLaVA directory
// win over the CLIP directory's, as upstream's load_state_dict does.
int llava_load_original(LlavaParams *p, const char *llava_dir, const char *vision_dir);
int llava_config_load_original(LlavaConfig *c, const char *llava_dir, const char *vision_dir);
// LLaVA-1.5's starts from parts: a plain LLaMA/Vicuna directory, a CLIP
// directory and, for IFT, the projector pretraining saved (mm_projector.bin:
// model.mm_projector.0/2 for mlp2x_gelu, model.mm_projector.weight/bias for
// linear). projector NULL is PT's start: a fresh projector initialised as
// torch's nn.Linear default with our RNG seeded by seed (see model/init.h).
// feature_layer and feature_full are the recipe's (-2, patch).
int llava_load_parts(LlavaParams *p, const char *llm_dir, const char *vision_dir, const char *projector,
                     ProjectorType type, int feature_layer, bool feature_full, uint64_t seed);
// Writes config.json + model.safetensors in the llava-hf layout (atomic files).
// A tied model writes the embedding alone (as transformers' safetensors
// save drops the tied lm_head); a linear projector is written as
// projector_hidden_act "linear" with linear_2 the identity (see ProjectorType).
int llava_save_hf(const LlavaParams *p, const char *dir);
// The projector alone as LLaVA's pretraining saves it (torch.save of the
// model.mm_projector.* tensors, dtype DT_F32, DT_BF16 or DT_F16, the latter
// two rounded to nearest even as torch's .to()): the file finetune.sh passes
// as --pretrain_mm_mlp_adapter.
int llava_save_mm_projector(const LlavaParams *p, const char *path, DType dtype);

#endif
