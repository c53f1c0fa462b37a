// Random initialisation, see init.h.
#include "model/init.h"

#include <math.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"  // Philox streams
#include "core/str.h"

// Streams: tensor i of the whole-model init draws from stream i; PT's fresh
// projector from PROJECTOR_STREAM + i, so it never repeats a whole-model draw.
#define PROJECTOR_STREAM 0x100000000ull
#define OLA_STREAM 0x200000000ull

static void fill_uniform(float *x, size_t n, float bound, uint64_t seed, uint64_t stream) {
    Rng r;
    rng_init(&r, seed, stream);
    for (size_t i = 0; i < n; i++) x[i] = bound * (2.0f * rng_uniform(&r) - 1.0f);
}

static void fill_normal(float *x, size_t n, double std, uint64_t seed, uint64_t stream) {
    Rng r;
    rng_init(&r, seed, stream);
    for (size_t i = 0; i < n; i++) x[i] = (float)(std * rng_normal(&r));
}

static void fill(float *x, size_t n, float value) {
    for (size_t i = 0; i < n; i++) x[i] = value;
}

void llava_projector_init_default(LlavaParams *p, uint64_t seed) {
    for (int i = 0; i < p->n_specs; i++) {
        const ParamSpec *s = &p->specs[i];
        if (s->module != MODULE_PROJECTOR) continue;
        // fan_in: the weight's columns; a bias shares its layer's (linear_1: Cv, linear_2: H)
        bool first = strstr(s->name, "linear_1.") != NULL;
        int fan_in = first ? p->cfg.vision.hidden : p->cfg.text.hidden;
        fill_uniform(p->data + s->offset, s->numel, (float)(1.0 / sqrt((double)fan_in)), seed, PROJECTOR_STREAM + (uint64_t)i);
    }
}

// mPLUG-Owl2's rules (init.h); the stream is the tensor's index, as for LLaVA's.
static int owl2_init_random(LlavaParams *p, uint64_t seed) {
    const TextConfig *t = &p->cfg.text;
    for (int i = 0; i < p->n_specs; i++) {
        const ParamSpec *s = &p->specs[i];
        float *x = p->data + s->offset;
        const char *n = s->name;
        if (s->module == MODULE_LLM) {
            if (strstr(n, "layernorm") || str_has_suffix(n, "model.norm.weight")) fill(x, s->numel, 1.0f);
            else fill_normal(x, s->numel, t->init_range, seed, (uint64_t)i);
            if (x == p->w.embed && t->pad_token_id >= 0)  // host-side, before any backend upload
                memset(x + (size_t)t->pad_token_id * t->hidden, 0, sizeof(float) * t->hidden);
        } else if (str_has_suffix(n, "cls_token") || str_has_suffix(n, "position_embedding") ||
                   str_has_suffix(n, "query_embeds") || str_has_suffix(n, "vit_eos")) {
            fill_normal(x, s->numel, 1.0, seed, (uint64_t)i);
        } else if (strstr(n, "norm") || strstr(n, "ffn_ln.")) {  // LayerNorms: *layernorm, norm1, normk, norm2, ffn_ln
            fill(x, s->numel, str_has_suffix(n, ".weight") ? 1.0f : 0.0f);
        } else {
            // a Linear's (or the patch conv's) fan_in: the weight's columns; a bias shares the weight before it
            const ParamSpec *w = str_has_suffix(n, ".bias") ? s - 1 : s;
            size_t fan_in = w->numel / (size_t)w->shape[0];
            fill_uniform(x, s->numel, (float)(1.0 / sqrt((double)fan_in)), seed, (uint64_t)i);
        }
    }
    return VLM_OK;
}

// CLIPPreTrainedModel._init_weights' std for the class token (mPLUG-Owl2's
// cls_token takes class_embedding's rule) and the position embedding; < 0 for
// any other tensor.
static double clip_embedding_std(const VisionConfig *v, const char *n) {
    if (strstr(n, "class_embedding") || str_has_suffix(n, "cls_token")) return pow(v->hidden, -0.5) * v->init_factor;
    if (strstr(n, "position_embedding")) return v->init_range * v->init_factor;
    return -1;
}

// CLIPPreTrainedModel._init_weights for one of CLIP's vision tensors, by its
// name. *std < 0: the constant *value.
static int clip_vision_rule(const VisionConfig *v, const char *n, double *std, float *value) {
    double f = v->init_factor, C = v->hidden, L = v->layers;
    double in_std = pow(C, -0.5) * pow(2 * L, -0.5) * f;
    *std = clip_embedding_std(v, n), *value = 0;
    if (*std >= 0) return VLM_OK;
    if (strstr(n, "patch_embedding")) *std = v->init_range * f;
    else if (strstr(n, "norm") && str_has_suffix(n, ".weight")) *value = 1;  // layer_norm1/2, pre_layrnorm, post_layernorm
    else if (str_has_suffix(n, ".bias")) *value = 0;
    else if (strstr(n, "q_proj") || strstr(n, "k_proj") || strstr(n, "v_proj")) *std = in_std;
    else if (strstr(n, "out_proj")) *std = pow(C, -0.5) * f;
    else if (strstr(n, "fc1")) *std = pow(2 * C, -0.5) * f;
    else if (strstr(n, "fc2")) *std = in_std;
    else return vlm_fail(VLM_ERR_FAIL, NULL, n, "no initialisation rule");
    return VLM_OK;
}

int llava_params_init_random(LlavaParams *p, uint64_t seed) {
    if (p->cfg.arch == ARCH_MPLUG_OWL2) return owl2_init_random(p, seed);
    const TextConfig *t = &p->cfg.text;
    for (int i = 0; i < p->n_specs; i++) {
        const ParamSpec *s = &p->specs[i];
        float *x = p->data + s->offset;
        const char *n = s->name;
        double std = -1;  // < 0: a constant
        float value = 0;
        if (s->module == MODULE_VISION) {
            int rc = clip_vision_rule(&p->cfg.vision, n, &std, &value);
            if (rc != VLM_OK) return rc;
        } else if (s->module == MODULE_OLA) {
            continue;  // OLA-VLM's parts: upstream creates them with torch's defaults (below)
        } else if (s->module == MODULE_PROJECTOR) {
            if (str_has_suffix(n, ".bias")) value = 0;
            else std = p->cfg.projector_init_range;
        } else {
            if (strstr(n, "norm")) value = 1;  // input_layernorm, post_attention_layernorm, model.norm (RMSNorm)
            else std = t->init_range;         // embed_tokens, q/k/v/o, gate/up/down, lm_head
        }
        if (std >= 0) fill_normal(x, s->numel, std, seed, (uint64_t)i);
        else fill(x, s->numel, value);
        // nn.Embedding(padding_idx) zeroes its row (host-side initialisation, before any backend upload)
        if (x == p->w.embed && t->pad_token_id >= 0) memset(x + (size_t)t->pad_token_id * t->hidden, 0, sizeof(float) * t->hidden);
    }
    if (p->cfg.ola.enabled) llava_ola_init_default(p, seed);
    return VLM_OK;
}

void llava_vision_init_clip_embeddings(LlavaParams *p, uint64_t seed) {
    for (int i = 0; i < p->n_specs; i++) {
        const ParamSpec *s = &p->specs[i];
        double std = s->module == MODULE_VISION ? clip_embedding_std(&p->cfg.vision, s->name) : -1;
        if (std >= 0) fill_normal(p->data + s->offset, s->numel, std, seed, (uint64_t)i);
    }
}

void llava_ola_init_default(LlavaParams *p, uint64_t seed) {
    for (int i = 0; i < p->n_specs; i++) {
        const ParamSpec *s = &p->specs[i];
        if (s->module != MODULE_OLA) continue;
        float *x = p->data + s->offset;
        const char *n = s->name;
        uint64_t stream = OLA_STREAM + (uint64_t)i;
        if (strstr(n, "_logit_scale")) {
            fill(x, s->numel, 2.0f);
        } else if (str_has_prefix(n, "model.special_")) {
            fill_normal(x, s->numel, 1.0, seed, stream);
        } else if (llava_is_ola_layernorm(n)) {
            fill(x, s->numel, str_has_suffix(n, ".weight") ? 1.0f : 0.0f);
        } else {
            // a bias shares its layer's fan-in: the weight registered just before it
            const ParamSpec *w = str_has_suffix(n, ".bias") ? s - 1 : s;
            fill_uniform(x, s->numel, (float)(1.0 / sqrt((double)w->shape[1])), seed, stream);
        }
    }
}
