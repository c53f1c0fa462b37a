// The Swin Transformer as transformers' SwinBackbone runs it (modeling_swin.py,
// transformers 4.41.2), inference only, float32: OneFormer's backbone, OLA-VLM's
// seg teacher. Patch embedding (Conv2d P x P stride P, the image zero-padded to
// multiples of P, then LayerNorm); stages of blocks (pre-norm window attention
// with a relative position bias, shift ws / 2 on odd blocks with the mask of
// the regions it wraps, the map zero-padded to multiples of ws after the norm;
// MLP with erf GELU); patch merging between stages (odd sides zero-padded,
// LayerNorm(4C), Linear(4C -> 2C, no bias)); each output stage's map before
// its merging, through hidden_states_norms.stageS, channels-first.
// SwinBackbone calls its encoder with always_partition=True: a block keeps its
// window and shift even where the stage is no larger than the window (the map
// is padded up to one window), unlike SwinModel's set_shift_and_window_size.
#ifndef VLM_MODEL_SWIN_H
#define VLM_MODEL_SWIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/checkpoint.h"

#define SWIN_MAX_STAGES 8

typedef struct {
    int patch, embed_dim, window, stages;
    int depths[SWIN_MAX_STAGES], heads[SWIN_MAX_STAGES];
    double mlp_ratio;
    bool qkv_bias;
    float eps;  // layer_norm_eps: the blocks' norms (the embeddings', merges' and stage norms are nn.LayerNorm's 1e-5)
    int out_stage;  // the last stage of out_features (1-based): SwinBackbone's feature_maps[-1]
    unsigned outs;  // bit s - 1: stage s is in out_features (it has hidden_states_norms.stageS)
} SwinConfig;

static inline int swin_dim(const SwinConfig *c, int s) { return c->embed_dim << s; }  // stage s (0-based) width
static inline int swin_mlp(const SwinConfig *c, int s) { return (int)(c->mlp_ratio * swin_dim(c, s)); }

// A SwinConfig's keys (section names them in errors, e.g. "backbone_config"),
// with SwinConfig's defaults; model_type must be "swin". Unsupported values
// (absolute position embeddings, an activation other than gelu, "stem" among
// out_features, channels other than 3) are errors naming the key.
int swin_config_read(SwinConfig *c, const json_t *j, const char *section, const char *path);

typedef struct {
    float *ln1_w, *ln1_b, *qkv_w, *qkv_b;  // qkv_w (3C, C): query, key, value rows; qkv_b NULL without qkv_bias
    float *table;                          // relative_position_bias_table ((2 ws - 1)^2, NH)
    float *proj_w, *proj_b, *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} SwinBlockWeights;

typedef struct {
    SwinBlockWeights *blocks;
    float *merge_ln_w, *merge_ln_b, *merge_w;  // downsample (norm, reduction); NULL where the stage's merge is not run
    float *norm_w, *norm_b;                    // hidden_states_norms.stageS; NULL when not an output
} SwinStageWeights;

typedef struct {
    int stages;  // run: 1 .. out_stage (later stages are not loaded)
    float *patch_w, *patch_b, *embed_ln_w, *embed_ln_b;
    SwinStageWeights st[SWIN_MAX_STAGES];
    int32_t *rel_index;  // (T, T), T = ws^2: recomputed, the checkpoint's buffer is not read
    float *mem;
    size_t floats;  // weights held
    SwinBlockWeights *block_mem;
} SwinWeights;

// The backbone's tensors, named prefix + transformers' names (embeddings.*,
// encoder.layers.S.blocks.B.*, encoder.layers.S.downsample.*, hidden_states_norms.stageS.*),
// read to float32; nothing else of the checkpoint is read. Errors name the
// checkpoint and the tensor (missing, wrong shape).
int swin_weights_load(SwinWeights *w, const SwinConfig *c, Checkpoint *ck, const char *prefix);
void swin_weights_free(SwinWeights *w);

// One stage's sizes for an input of the planned size.
typedef struct {
    int H, W;    // tokens
    int Hp, Wp;  // padded to multiples of the window
    int nW;      // windows per image
    int C, NH, mlp;
} SwinStageGeom;

typedef struct {
    int max_images, in_h, in_w, stages;
    unsigned maps_wanted;  // bit s - 1: map[s - 1] is written
    SwinStageGeom g[SWIN_MAX_STAGES];
    float *cols, *x, *mid, *ln, *mean, *rstd, *win, *qkv, *att, *fc, *merge, *merge_ln;
    float *map[SWIN_MAX_STAGES];       // (n, C, H, W) of stage s + 1, when wanted
    int32_t *region[SWIN_MAX_STAGES];  // the shifted blocks' regions (nW, T) per stage
    float *att_scratch;
    float *mem;
    int32_t *imem;
    size_t floats;
} SwinActs;

// Activations for up to max_images images of in_h x in_w pixels, for w's
// stages; maps_wanted: the output stages whose maps forward writes (bit s - 1
// for stage s; stages without a norm or not run are refused). Sized for the
// current thread count (it must not grow after).
int swin_acts_init(SwinActs *a, const SwinConfig *c, const SwinWeights *w, int in_h, int in_w, int max_images,
                   unsigned maps_wanted);
void swin_acts_free(SwinActs *a);

// pixels (n, 3, in_h, in_w) -> a->map[s] (n, C_s, H_s, W_s) for the wanted stages.
void swin_forward(SwinActs *a, const SwinConfig *c, const SwinWeights *w, const float *pixels, int n);

#endif
