// HF Trainer's AdamW parameter groups and clipping over a LlavaModel, see optimizer.h.
#include "train/optimizer.h"

#include <math.h>    // isfinite
#include <stdlib.h>  // free
#include <string.h>  // strstr

#include "core/alloc.h"
#include "core/error.h"
#include "core/str.h"

OptimizerConfig optimizer_config_from_args(const TrainArgs *a) {
    return (OptimizerConfig){.lr = a->learning_rate, .weight_decay = a->weight_decay, .projector_lr = a->mm_projector_lr,
                             .beta1 = a->adam_beta1, .beta2 = a->adam_beta2, .eps = a->adam_epsilon,
                             .max_grad_norm = a->max_grad_norm};
}


// Trainer.get_decay_parameter_names: get_parameter_names(model, ALL_LAYERNORM_LAYERS) minus every
// name containing "bias". The norm modules of the llava-hf layout: CLIP's pre_layrnorm,
// post_layernorm, layer_norm1/2 (nn.LayerNorm), LLaMA's input_layernorm,
// post_attention_layernorm and model.norm (LlamaRMSNorm), OLA-VLM's resampler LayerNorms. The CLIP embeddings (class_embedding is a
// bare nn.Parameter, position_embedding an nn.Embedding, patch_embedding an nn.Conv2d) decay.
// mPLUG-Owl2 under 4.31: the nn.LayerNorm modules are the ViT's (pre_layernorm, post_layernorm,
// each layer's input_layernorm / post_attention_layernorm) and the abstractor's (norm1, normk,
// norm2, ffn_ln); the LLaMA's RMSNorms are not in ALL_LAYERNORM_LAYERS and decay.
static bool owl2_param_decays(const char *name) {
    if (strstr(name, "bias")) return false;
    if (str_has_prefix(name, "model.vision_model.")) return !strstr(name, "layernorm.");
    static const char *const norms[] = {".norm1.weight", ".normk.weight", ".norm2.weight", ".ffn_ln.weight"};
    for (size_t i = 0; i < sizeof norms / sizeof *norms; i++)
        if (str_has_prefix(name, "model.visual_abstractor.") && str_has_suffix(name, norms[i])) return false;
    return true;
}

bool param_decays(const LlavaConfig *cfg, const char *name) {
    if (cfg->arch == ARCH_MPLUG_OWL2) return owl2_param_decays(name);
    if (strstr(name, "bias")) return false;
    static const char *const norms[] = {".pre_layrnorm.weight", ".post_layernorm.weight", ".layer_norm1.weight",
                                        ".layer_norm2.weight", ".input_layernorm.weight",
                                        ".post_attention_layernorm.weight", "model.norm.weight"};
    for (size_t i = 0; i < sizeof norms / sizeof *norms; i++)
        if (str_has_suffix(name, norms[i])) return false;
    return !llava_is_ola_layernorm(name);
}

void optimizer_free(Optimizer *o) {
    adamw_free(&o->adam);
    free(o->ranges), free(o->moment_offset), free(o->spec), free(o->decay), free(o->projector), free(o->steps);
    o->ranges = o->moment_offset = NULL, o->spec = NULL, o->decay = o->projector = NULL, o->steps = NULL;
    o->n_ranges = 0;
}

int optimizer_init(Optimizer *o, const LlavaModel *m, const OptimizerConfig *cfg) {
    *o = (Optimizer){.cfg = *cfg};
    int n = m->params.n_specs;
    o->ranges = vlm_calloc((size_t)2 * (n ? n : 1), sizeof(size_t));
    o->moment_offset = vlm_calloc(n ? n : 1, sizeof(size_t));
    o->spec = vlm_calloc(n ? n : 1, sizeof(int));
    o->decay = vlm_calloc(n ? n : 1, sizeof(bool));
    o->projector = vlm_calloc(n ? n : 1, sizeof(bool));
    o->steps = vlm_calloc(n ? n : 1, sizeof(long));
    if (!o->ranges || !o->moment_offset || !o->spec || !o->decay || !o->projector || !o->steps) goto oom;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        const ParamSpec *s = &m->params.specs[i];
        if (!param_trained(s, m->trainable)) continue;
        int r = o->n_ranges++;
        o->ranges[2 * r] = s->offset, o->ranges[2 * r + 1] = s->numel;
        o->moment_offset[r] = total;
        o->spec[r] = i;
        o->decay[r] = param_decays(&m->params.cfg, s->name);
        o->projector[r] = s->module == MODULE_PROJECTOR;
        total += s->numel;
    }
    if (adamw_init(&o->adam, total, (AdamWConfig){cfg->beta1, cfg->beta2, cfg->eps}) != VLM_OK) goto oom;
    return VLM_OK;
oom:
    optimizer_free(o);
    return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory for the optimizer state");
}

double optimizer_grad_norm(const Optimizer *o, const float *grad) {
    return grad_global_norm(grad, o->ranges, o->n_ranges);
}

int optimizer_step(Optimizer *o, LlavaModel *m, double lr_factor, double *grad_norm) {
    double norm = optimizer_grad_norm(o, m->grad);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm))
        return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "gradient norm is %g: no parameter updated", norm);
    if (o->cfg.max_grad_norm > 0) grad_clip_with_norm(m->grad, o->ranges, o->n_ranges, norm, o->cfg.max_grad_norm);
    // LambdaLR: each group's lr = its base lr * lambda, in Python floats
    double lr = o->cfg.lr * lr_factor;
    double plr = (o->cfg.projector_lr >= 0 ? o->cfg.projector_lr : o->cfg.lr) * lr_factor;
    adamw_begin_step(&o->adam);
    for (int r = 0; r < o->n_ranges; r++) {
        size_t off = o->ranges[2 * r], cnt = o->ranges[2 * r + 1];
        if (!llava_param_has_grad(m, &m->params.specs[o->spec[r]])) continue;  // torch: grad None, skipped
        adamw_update_packed(&o->adam, m->params.data + off, m->grad + off, o->moment_offset[r], cnt,
                            o->projector[r] ? plr : lr, o->decay[r] ? o->cfg.weight_decay : 0.0, ++o->steps[r]);
    }
    return VLM_OK;
}
