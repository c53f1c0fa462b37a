// Model configurations, read from the config.json files users have, with
// the defaults transformers fills in for absent keys (save_pretrained writes
// only what differs from them).
#ifndef VLM_MODEL_CONFIG_H
#define VLM_MODEL_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "kernels/rope.h"

// VISION_CONVNEXT: timm's ConvNeXt trunk of an open_clip CLIP (OLA-VLM's CLIP-ConvNeXt tower,
// model/convnext.h), 4 stages of depths[s] blocks at dims[s] channels; its output rows are the
// (image / 32)^2 positions of the last stage: patch 32 (the output stride), hidden dims[3], no
// class token, layers 0 (it has no selectable hidden states), eps timm's norm_eps.
typedef enum { VISION_CLIP, VISION_CONVNEXT } VisionKind;
#define CONVNEXT_STAGES 4
#define CONVNEXT_KERNEL 7  // every timm ConvNeXt of open_clip's: conv_dw 7x7
#define CONVNEXT_STEM 4    // the patch stem: Conv2d(3, dims[0], 4, stride 4)

typedef struct {                  // CLIPVisionConfig, MplugOwlVisionConfig (and the ViT teachers'), open_clip's timm ConvNeXt
    VisionKind kind;
    int hidden, intermediate, layers, heads;
    int image_size, patch;
    float eps;
    bool post_norm;               // the output is post_layernorm of every token of the last layer (mPLUG-Owl2)
    // what differs in the other ViTs the layer code serves (model/clip.h; zero: CLIP's):
    bool gelu;                    // the MLP's activation is erf GELU (SD-unCLIP's image encoder, DINOv2), not quick_gelu
    bool layer_scale;             // each branch scaled by its LayerScale gamma before its residual add (DINOv2)
    bool patch_bias;              // the patch convolution has a bias (DINOv2)
    bool skip_pre_norm;           // no pre_layrnorm after the embeddings (DINOv2)
    float init_range, init_factor;  // initializer_range, initializer_factor (random init only)
    // VISION_CONVNEXT
    int depths[CONVNEXT_STAGES], dims[CONVNEXT_STAGES];
    double mean[3], std[3];       // open_clip's preprocess_cfg: the image processor's normalisation
    char tower[512];              // the tower's name as given (--vision_tower, mm_vision_tower), saved back as is
} VisionConfig;

typedef struct {                  // LlamaConfig
    int hidden, intermediate, layers, heads, kv_heads, vocab;
    float rms_eps;
    RopeConfig rope;
    bool tie_embeddings;
    float init_range;             // initializer_range (random init only)
    int pad_token_id;             // -1: none (its embedding row is zero after a random init)
    // mPLUG-Owl2's modality-adaptive LLaMA: input_layernorm, post_attention_layernorm, k_proj
    // and v_proj exist per modality (0 text, 1 visual rows), everything else is shared
    bool multiway;
    // Phi-3 (Phi3ForCausalLM): the LLaMA decoder with its q|k|v and gate|up products stored fused
    // (self_attn.qkv_proj, mlp.gate_up_proj), as vlm lays them out anyway
    bool fused_names;
    int sliding_window;           // > 0: each query sees itself and the sliding_window keys before it (Phi-3); 0: all
} TextConfig;

// mlp2x_gelu: linear_1 (H, Cv) -> GELU -> linear_2 (H, H). linear: LLaVA's
// mm_projector_type "linear", one Linear (H, Cv) with bias. transformers
// 4.37's LlavaMultiModalProjector always has two linears, so the llava-hf
// layout holds a linear projector as projector_hidden_act "linear" with
// linear_2 the identity and a zero bias (the same function); such a file
// loads back as PROJECTOR_LINEAR, and any other linear_2 is refused.
// PROJECTOR_ABSTRACTOR: mPLUG-Owl2's visual abstractor (AbstractorConfig).
typedef enum { PROJECTOR_MLP2X_GELU, PROJECTOR_LINEAR, PROJECTOR_ABSTRACTOR } ProjectorType;

// mPLUG-Owl2's visual abstractor (MplugOwlVisualAbstractorConfig): `queries`
// learnt queries read every ViT token through `layers` cross-attention
// blocks, then visual_fc to the LLM's width and vit_eos: queries + 1 rows
// per image. Upstream's code needs hidden == encoder_hidden (the ViT's width)
// and grid == image_size / patch.
typedef struct {
    int hidden, encoder_hidden, layers, heads, intermediate, queries, grid;
    float eps;                    // layer_norm_eps: ffn_ln's (norm1 / normk / norm2 are nn.LayerNorm's 1e-5)
} AbstractorConfig;

typedef enum { ARCH_LLAVA, ARCH_MPLUG_OWL2 } Arch;
const char *arch_name(Arch a);  // "LLaVA", "mPLUG-Owl2"

// OLA-VLM's embedding distillation (SHI-Labs/OLA-VLM, ola_vlm_train.py and
// base_ola_vlm.py): learnable task tokens follow each image's features in the
// LLM input, and at chosen LLM layers a one-block Perceiver resampler per
// (task, layer) predicts a frozen teacher's embedding of the image from the
// hidden states. config.json holds upstream's keys (aux_mode,
// num_task_tokens, contrastive_loss_weight, image_depth / image_seg /
// image_gen with their *_layer_indices and *_loss_weight).
typedef enum { OLA_DEPTH, OLA_SEG, OLA_GEN, OLA_TASKS } OlaTask;
#define OLA_MAX_LAYERS 4
#define OLA_MAX_SIZE (1 << 16)  // bound on every predictor size and on num_task_tokens

typedef struct {
    int n_layers;
    int layers[OLA_MAX_LAYERS];   // 1-indexed LLM hidden states (HF's hidden_states[i]: the output of layer i)
    float loss_weight;
    int depth, dim_head, heads;   // the resampler: blocks (1 supported), attention heads of dim_head
    int num_tokens, output_dim, ff_mult;  // queries, predicted width, FeedForward width multiple
} OlaTaskConfig;

typedef struct {
    bool enabled;                 // the model has task tokens and predictors
    int num_task_tokens;          // per task in the sequence (8)
    int n_order;
    OlaTask order[OLA_TASKS];     // aux_mode, e.g. "gen-depth-seg": which tasks, in sequence order
    float contrastive_loss_weight;
    bool use_intermediate_depth;  // image_depth's: the depth loss reads linear_1's MLP of the prediction
    OlaTaskConfig task[OLA_TASKS];
} OlaConfig;

const char *ola_task_name(OlaTask t);  // "depth", "seg", "gen"
static inline bool ola_has_task(const OlaConfig *o, OlaTask t) {
    for (int i = 0; i < o->n_order; i++)
        if (o->order[i] == t) return true;
    return false;
}
// Rows of a task's learnt tokens (model.special_*_tokens): depth's and seg's
// num_tokens (mean-pooled, num_tokens / num_task_tokens each, into the
// sequence's num_task_tokens rows), gen's num_task_tokens as they are.
static inline int ola_learnt_tokens(const OlaConfig *o, OlaTask t) {
    return t == OLA_GEN ? o->num_task_tokens : o->task[t].num_tokens;
}
// Task tokens after each image: num_task_tokens per task.
static inline int ola_task_rows(const OlaConfig *o) { return o->enabled ? o->num_task_tokens * o->n_order : 0; }
// The predictor's inner width: depth runs at the LLM's width, seg / gen at their output width (upstream).
static inline int ola_head_dim(const OlaConfig *o, OlaTask t, int llm_hidden) {
    return t == OLA_DEPTH ? llm_hidden : o->task[t].output_dim;
}
// Upstream's defaults (ola_vlm_train.py ModelArguments) with mode, layer
// indices ("d8-20_s10-18_g12-20"), loss weights ("d0.5_s0.5_g0.5") and, when
// heads is not NULL, each task's resampler sizes (depth, dim_head, num_heads,
// num_tokens, output_dim, ff_mult: its --{depth,seg,img}_head_* flags) as its
// flags spell them, checked once complete; errors name the flag.
#define OLA_HEAD_FLAGS 6
int ola_config_from_flags(OlaConfig *o, const char *mode, const char *layer_indices, const char *loss_weights,
                          int num_task_tokens, double contrastive_loss_weight, int llm_layers,
                          const int (*heads)[OLA_HEAD_FLAGS]);
// config.json's OLA keys (absent: o->enabled false) and their writing back.
int ola_config_from_json(OlaConfig *o, const json_t *root, const char *path);
void ola_config_to_json(const OlaConfig *o, json_t *root);
// Checks sizes against the model (layers within the LLM, queries a multiple of num_task_tokens, ...).
int ola_config_check(const OlaConfig *o, int llm_layers, const char *path);

// One configuration for the LLaVA family: a vision tower, a connector
// (projector), the splice, a LLaMA decoder; arch names the checkpoint layout
// (tensor names, config.json) and the variant's parts.
// LoRA adapters on the LLM's linear layers (PEFT's LoraConfig, as LLaVA's
// train.py builds it: find_all_linear_names' targets, every nn.Linear of the
// LLM but lm_head; mPLUG-Owl2's k_proj / v_proj in both modality branches).
// r 0: none. Not a config.json key: the run's flags or adapter_config.json.
typedef struct {
    int r;
    float alpha, dropout;  // scale alpha / r; dropout on each adapter's input (training only)
    uint64_t seed;         // the dropout masks' (the run's --seed)
    bool original_names;   // saved under the original LLaVA layout's names (model/lora.h)
} LoraConfig;

typedef struct {                  // LlavaConfig, MPLUGOwl2Config
    Arch arch;
    VisionConfig vision;
    TextConfig text;
    ProjectorType projector;
    int feature_layer;            // hidden state index: -2 = penultimate layer's output
    bool feature_full;            // "full": keep the class token; "default": drop it
    int image_token_index;        // transformers' placeholder id (ours is -200 in input_ids)
    float projector_init_range;   // LlavaPreTrainedModel's std for the projector (random init only)
    OlaConfig ola;                // OLA-VLM's task tokens and embedding predictors (enabled false: none)
    AbstractorConfig abstractor;  // projector PROJECTOR_ABSTRACTOR
    LoraConfig lora;              // r 0: none
} LlavaConfig;

// section: where the keys sit, for messages ("text_config" in a llava-hf
// config, NULL at the top level of a LLaMA or CLIPVisionModel config). Every
// size is checked positive and bounded, and their divisibility, naming the
// file, the key and the value.
int vision_config_from_json(VisionConfig *c, const json_t *j, const char *section, const char *path);
int text_config_from_json(TextConfig *c, const json_t *j, const char *section, const char *path);
// A llava-hf config.json (LlavaForConditionalGeneration).
int llava_config_load(LlavaConfig *c, const char *path);
json_t *llava_config_to_json(const LlavaConfig *c);
// The text config's keys as llava-hf's text_config holds them (also the top level of an
// original LLaVA config.json).
json_t *text_config_to_json(const TextConfig *t);

// Derived sizes.
static inline int vision_patches(const VisionConfig *v) { return (v->image_size / v->patch) * (v->image_size / v->patch); }
// a ConvNeXt's blocks, every stage's (0 for a ViT)
static inline int convnext_blocks(const VisionConfig *v) {
    int n = 0;
    for (int s = 0; v->kind == VISION_CONVNEXT && s < CONVNEXT_STAGES; s++) n += v->depths[s];
    return n;
}
// the vision tower's rows per image the connector reads (576 for ViT-L/14-336, default strategy)
static inline int llava_feature_rows(const LlavaConfig *c) { return vision_patches(&c->vision) + (c->feature_full ? 1 : 0); }
// the connector's rows per image in the LLM's input: a projector's are the features', the abstractor's its queries + vit_eos
static inline int llava_image_tokens(const LlavaConfig *c) {
    return c->projector == PROJECTOR_ABSTRACTOR ? c->abstractor.queries + 1 : llava_feature_rows(c);
}
// rows each image occupies in the LLM's input: its features, then OLA's task tokens
static inline int llava_image_span(const LlavaConfig *c) { return llava_image_tokens(c) + ola_task_rows(&c->ola); }
// encoder layers that must run to produce the selected hidden state
int llava_vision_layers_used(const LlavaConfig *c);

// An mPLUG-Owl2 config.json (model_type "mplug_owl2": LLaMA keys at the top
// level with MPLUGOwl2Config's defaults, visual_config.visual_model and
// visual_config.visual_abstractor); src/model/owl2_config.c.
int owl2_config_from_json(LlavaConfig *c, const json_t *root, const char *path);
void owl2_config_to_json(const LlavaConfig *c, json_t *root);

#endif
