// Model configurations, read from the config.json files users have, with
// the defaults transformers fills in for absent keys (save_pretrained writes
// only what differs from them).
#ifndef VLM_MODEL_CONFIG_H
#define VLM_MODEL_CONFIG_H

#include <jansson.h>
#include <stdbool.h>

#include "kernels/rope.h"

typedef struct {                  // CLIPVisionConfig
    int hidden, intermediate, layers, heads;
    int image_size, patch;
    float eps;
    float init_range, init_factor;  // initializer_range, initializer_factor (random init only)
} VisionConfig;

typedef struct {                  // LlamaConfig
    int hidden, intermediate, layers, heads, kv_heads, vocab;
    float rms_eps;
    RopeConfig rope;
    bool tie_embeddings;
    float init_range;             // initializer_range (random init only)
    int pad_token_id;             // -1: none (its embedding row is zero after a random init)
} TextConfig;

// mlp2x_gelu: linear_1 (H, Cv) -> GELU -> linear_2 (H, H). linear: LLaVA's
// mm_projector_type "linear", one Linear (H, Cv) with bias. transformers
// 4.37's LlavaMultiModalProjector always has two linears, so the llava-hf
// layout holds a linear projector as projector_hidden_act "linear" with
// linear_2 the identity and a zero bias (the same function); such a file
// loads back as PROJECTOR_LINEAR, and any other linear_2 is refused.
typedef enum { PROJECTOR_MLP2X_GELU, PROJECTOR_LINEAR } ProjectorType;

typedef struct {                  // LlavaConfig
    VisionConfig vision;
    TextConfig text;
    ProjectorType projector;
    int feature_layer;            // hidden state index: -2 = penultimate layer's output
    bool feature_full;            // "full": keep the class token; "default": drop it
    int image_token_index;        // transformers' placeholder id (ours is -200 in input_ids)
    float projector_init_range;   // LlavaPreTrainedModel's std for the projector (random init only)
} LlavaConfig;

int vision_config_from_json(VisionConfig *c, const json_t *j, const char *path);
int text_config_from_json(TextConfig *c, const json_t *j, const char *path);
// A llava-hf config.json (LlavaForConditionalGeneration).
int llava_config_load(LlavaConfig *c, const char *path);
json_t *llava_config_to_json(const LlavaConfig *c);

// Derived sizes.
static inline int vision_patches(const VisionConfig *v) { return (v->image_size / v->patch) * (v->image_size / v->patch); }
// image features per image after selection (576 for ViT-L/14-336, default strategy)
static inline int llava_image_tokens(const LlavaConfig *c) { return vision_patches(&c->vision) + (c->feature_full ? 1 : 0); }
// encoder layers that must run to produce the selected hidden state
int llava_vision_layers_used(const LlavaConfig *c);

#endif
