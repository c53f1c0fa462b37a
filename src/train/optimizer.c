// HF Trainer's AdamW parameter groups and clipping over a LlavaModel, see optimizer.h.
#include "train/optimizer.h"

#include <math.h>    // isfinite
#include <stdlib.h>  // free
#include <string.h>  // strstr

#include "core/alloc.h"
#include "core/error.h"
#include "core/str.h"
#include "dist/dist.h"
#include "train/zero.h"

OptimizerConfig optimizer_config_from_args(const TrainArgs *a) {
    return (OptimizerConfig){.lr = a->learning_rate, .weight_decay = a->weight_decay, .projector_lr = a->mm_projector_lr,
                             .beta1 = a->adam_beta1, .beta2 = a->adam_beta2, .eps = a->adam_epsilon,
                             .max_grad_norm = a->max_grad_norm, .zero_stage = a->zero_stage};
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

int optimizer_attach_model(Optimizer *o, LlavaModel *m) { return zero_attach(&o->zero, o, m); }

void optimizer_free(Optimizer *o) {
    zero_free(o->zero);
    o->zero = NULL;
    adamw_free(&o->adam);
    free(o->ranges), free(o->moment_offset), free(o->spec), free(o->decay), free(o->projector), free(o->steps);
    free(o->bounds), free(o->unit_sums);
    o->ranges = o->moment_offset = o->bounds = NULL, o->spec = NULL, o->decay = o->projector = NULL, o->steps = NULL;
    o->unit_sums = NULL;
    o->n_ranges = 0;
}

static void partition(Optimizer *o);

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
    o->n_packed = total;
    o->world = dist_world(), o->rank = dist_rank();
    o->n_units = grad_unit_count(o->ranges, o->n_ranges);
    o->bounds = vlm_calloc((size_t)o->world + 1, sizeof(size_t));
    o->unit_sums = vlm_calloc(o->n_units ? o->n_units : 1, sizeof(double));
    if (!o->bounds || !o->unit_sums) goto oom;
    partition(o);
    bool sharded = cfg->zero_stage >= 1;
    o->shard_lo = sharded ? o->bounds[o->rank] : 0, o->shard_hi = sharded ? o->bounds[o->rank + 1] : total;
    if (adamw_init(&o->adam, o->shard_hi - o->shard_lo, (AdamWConfig){cfg->beta1, cfg->beta2, cfg->eps}) != VLM_OK)
        goto oom;
    return VLM_OK;
oom:
    optimizer_free(o);
    return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory for the optimizer state");
}

// The packed offset of unit u's first float, by walking the ranges' units.
static size_t unit_start(const Optimizer *o, size_t u) {
    size_t first = 0;
    for (int r = 0; r < o->n_ranges; r++) {
        size_t units = (o->ranges[2 * r + 1] + GRAD_UNIT - 1) / GRAD_UNIT;
        if (u < first + units) return o->moment_offset[r] + (u - first) * GRAD_UNIT;
        first += units;
    }
    return o->n_packed;
}

// The units this rank owns: [unit_of(lo), unit_of(hi)).
static size_t unit_at(const Optimizer *o, size_t packed) {
    size_t first = 0;
    for (int r = 0; r < o->n_ranges; r++) {
        size_t cnt = o->ranges[2 * r + 1], units = (cnt + GRAD_UNIT - 1) / GRAD_UNIT;
        if (packed < o->moment_offset[r] + cnt) return first + (packed - o->moment_offset[r]) / GRAD_UNIT;
        first += units;
    }
    return o->n_units;
}

// Rank r's slice starts at the first unit boundary at or after r * n / world:
// whole units, so each unit's sum of squares is one rank's.
static void partition(Optimizer *o) {
    size_t u = 0;
    for (int r = 0; r <= o->world; r++) {
        size_t target = (size_t)((double)o->n_packed * r / o->world);
        while (u < o->n_units && unit_start(o, u) < target) u++;
        o->bounds[r] = r == o->world ? o->n_packed : unit_start(o, u);
    }
}

bool optimizer_range_slice(const Optimizer *o, int r, size_t *a, size_t *b) {
    size_t moff = o->moment_offset[r], end = moff + o->ranges[2 * r + 1];
    *a = moff > o->shard_lo ? moff : o->shard_lo, *b = end < o->shard_hi ? end : o->shard_hi;
    if (*a >= *b) *a = *b = moff;  // empty, at the range's start
    return *a < *b;
}

static DistView view_of(const Optimizer *o, float *base) {
    return (DistView){base, o->ranges, o->n_ranges, o->n_packed};
}

int optimizer_reduce(const Optimizer *o, float *grad) {
    if (o->world == 1 || o->cfg.zero_stage >= 2) return VLM_OK;  // stages 2, 3: each group as the backward ends it (zero.h)
    DistView v = view_of(o, grad);
    int rc = dist_reduce_scatter(&v, o->bounds);
    if (rc == VLM_OK && o->cfg.zero_stage == 0) rc = dist_allgather(&v, o->bounds);
    return rc;
}

double optimizer_grad_norm(const Optimizer *o, const float *grad) {
    if (o->cfg.zero_stage == 0 || o->world == 1)  // every rank holds the summed gradients
        return grad_global_norm(grad, o->ranges, o->n_ranges);
    size_t lo = unit_at(o, o->shard_lo), hi = o->shard_hi == o->n_packed ? o->n_units : unit_at(o, o->shard_hi);
    for (size_t u = 0; u < o->n_units; u++) o->unit_sums[u] = 0.0;
    grad_unit_sumsq(grad, o->ranges, o->n_ranges, lo, hi, o->unit_sums);
    if (dist_sum_f64_disjoint(o->unit_sums, o->n_units) != VLM_OK) return NAN;
    return grad_units_norm(o->unit_sums, o->n_units);
}

// clip_grad_norm_'s scaling of the gradients this rank updates with (all of them at stage 0):
// a sharded rank leaves the others' parts alone (at stages 2 and 3 they are not even held)
static void clip_slice(const Optimizer *o, float *grad, double norm) {
    for (int r = 0; r < o->n_ranges; r++) {
        size_t a, b;
        if (!optimizer_range_slice(o, r, &a, &b)) continue;
        size_t part[2] = {o->ranges[2 * r] + (a - o->moment_offset[r]), b - a};
        grad_clip_with_norm(grad, part, 1, norm, o->cfg.max_grad_norm);
    }
}

int optimizer_step(Optimizer *o, LlavaModel *m, double lr_factor, double *grad_norm) {
    double norm = optimizer_grad_norm(o, m->grad);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm))
        return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "gradient norm is %g: no parameter updated", norm);
    if (o->cfg.max_grad_norm > 0) clip_slice(o, m->grad, norm);
    // LambdaLR: each group's lr = its base lr * lambda, in Python floats
    double lr = o->cfg.lr * lr_factor;
    double plr = (o->cfg.projector_lr >= 0 ? o->cfg.projector_lr : o->cfg.lr) * lr_factor;
    adamw_begin_step(&o->adam);
    for (int r = 0; r < o->n_ranges; r++) {
        if (!llava_param_has_grad(m, &m->params.specs[o->spec[r]])) continue;  // torch: grad None, skipped
        long step = ++o->steps[r];  // every rank counts every range's steps: the checkpoint holds them all
        size_t a, b;  // the part of the range in this rank's slice
        if (!optimizer_range_slice(o, r, &a, &b)) continue;
        size_t off = o->ranges[2 * r] + (a - o->moment_offset[r]);
        adamw_update_packed(&o->adam, m->params.data + off, m->grad + off, a - o->shard_lo, b - a,
                            o->projector[r] ? plr : lr, o->decay[r] ? o->cfg.weight_decay : 0.0, step);
    }
    if ((o->cfg.zero_stage == 1 || o->cfg.zero_stage == 2) && o->world > 1) {  // stage 3 gathers as the model reads
        DistView v = view_of(o, m->params.data);
        return dist_allgather(&v, o->bounds);
    }
    return VLM_OK;
}
