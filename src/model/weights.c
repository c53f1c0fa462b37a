// Parameter layout, loading and saving, see weights.h.
#include "model/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/str.h"
#include "formats/checkpoint.h"
#include "formats/safetensors.h"
#include "formats/torch_save.h"
#include "model/config_keys.h"
#include "model/convnext_config.h"
#include "model/init.h"
#include "model/walk.h"

int param_layer(const ParamSpec *s) {
    const char *p = strstr(s->name, ".layers.");
    return p ? atoi(p + 8) : -1;
}

const char *module_name(const LlavaConfig *c, Module m) {
    static const char *const llava[] = {"vision_tower", "multi_modal_projector", "language_model", "embedding_predictors",
                                        "lora_adapters"};
    static const char *const owl2[] = {"vision_model", "visual_abstractor", "language_model", "embedding_predictors",
                                       "lora_adapters"};
    return (c && c->arch == ARCH_MPLUG_OWL2 ? owl2 : llava)[m];
}

// ---- the registry: one walk over the architecture that both sizes the
// buffer and, given its base, sets every pointer (model/walk.h)

// The next tensor, at offset `at` of the buffer. Tensors are registered in
// the order of the file's state dict (the specs' order: the init streams and
// the saved order follow it); where several are one matrix product they are
// placed into a reserved block instead of one after the other.
size_t reg_at(Walk *k, size_t at, float **slot, Module m, const char *name, int ndim, int64_t d0, int64_t d1,
              int64_t d2, int64_t d3, bool reachable) {
    int64_t dims[4] = {d0, d1, d2, d3};
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (size_t)dims[i];
    if (k->p->specs && !k->base) {
        ParamSpec *s = &k->p->specs[k->count];
        snprintf(s->name, sizeof s->name, "%s", name);
        s->module = m;
        s->ndim = ndim;
        for (int i = 0; i < 4; i++) s->shape[i] = i < ndim ? dims[i] : 0;
        s->offset = at;
        s->numel = numel;
        s->reachable = reachable;
        s->qkv_heads = 0;
        s->modality = -1;
    }
    if (k->base) *slot = k->base + at;
    k->count++;
    return numel;
}

void reg(Walk *k, float **slot, Module m, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
         bool reachable) {
    k->offset += reg_at(k, k->offset, slot, m, name, ndim, d0, d1, d2, d3, reachable);
}

// OLA-VLM's parameters under upstream's names (OlaLlavaLlamaForCausalLM's
// state dict): model.special_*_tokens, image_{depth,seg,gen}_heads.I.*,
// *_logit_scale. Depth's linear_2 / linear_3 exist upstream but feed only
// its frozen depth decoder's picture, never the loss: kept (so checkpoints
// load both ways), unreachable (no gradient, as torch leaves them None).
static void walk_ola(Walk *k, const LlavaConfig *c, OlaWeights *w) {
    const OlaConfig *o = &c->ola;
    int D = c->text.hidden;
    char n[160];
    float *dummy;
#define SLOT(field) (k->base ? &(field) : &dummy)
    static const char *const heads[OLA_TASKS] = {"image_depth_heads", "image_seg_heads", "image_gen_heads"};
    for (int t = 0; t < OLA_TASKS; t++) {
        if (!ola_has_task(o, (OlaTask)t)) continue;
        const OlaTaskConfig *tc = &o->task[t];
        snprintf(n, sizeof n, "model.special_%s_tokens", ola_task_name((OlaTask)t));
        reg(k, SLOT(w->tokens[t]), MODULE_OLA, n, 2, ola_learnt_tokens(o, (OlaTask)t), D, 0, 0, true);
        snprintf(n, sizeof n, "%s_logit_scale", ola_task_name((OlaTask)t));
        reg(k, SLOT(w->logit_scale[t]), MODULE_OLA, n, 0, 0, 0, 0, 0, true);
        int d = ola_head_dim(o, (OlaTask)t, D), A = tc->heads * tc->dim_head, O = tc->output_dim, I = d * tc->ff_mult;
        for (int l = 0; l < tc->n_layers; l++) {
            OlaHeadWeights *h = w ? &w->head[t][l] : NULL;  // NULL while counting
#define HW(field, suffix, ndim, a, b, reachable)                                   \
    snprintf(n, sizeof n, "%s.%d.%s", heads[t], l, suffix);                         \
    reg(k, SLOT(h->field), MODULE_OLA, n, ndim, a, b, 0, 0, reachable)
            HW(proj_in_w, "projector.proj_in.weight", 2, d, D, true);
            HW(proj_in_b, "projector.proj_in.bias", 1, d, 0, true);
            HW(proj_out_w, "projector.proj_out.weight", 2, O, d, true);
            HW(proj_out_b, "projector.proj_out.bias", 1, O, 0, true);
            HW(norm_out_w, "projector.norm_out.weight", 1, O, 0, true);
            HW(norm_out_b, "projector.norm_out.bias", 1, O, 0, true);
            HW(norm1_w, "projector.layers.0.0.norm1.weight", 1, d, 0, true);
            HW(norm1_b, "projector.layers.0.0.norm1.bias", 1, d, 0, true);
            HW(norm2_w, "projector.layers.0.0.norm2.weight", 1, d, 0, true);
            HW(norm2_b, "projector.layers.0.0.norm2.bias", 1, d, 0, true);
            HW(to_q, "projector.layers.0.0.to_q.weight", 2, A, d, true);
            HW(to_kv, "projector.layers.0.0.to_kv.weight", 2, 2 * A, d, true);
            HW(to_out, "projector.layers.0.0.to_out.weight", 2, d, A, true);
            HW(ff_ln_w, "projector.layers.0.1.0.weight", 1, d, 0, true);
            HW(ff_ln_b, "projector.layers.0.1.0.bias", 1, d, 0, true);
            HW(ff1_w, "projector.layers.0.1.1.weight", 2, I, d, true);
            HW(ff2_w, "projector.layers.0.1.3.weight", 2, d, I, true);
            if (t == OLA_DEPTH && o->use_intermediate_depth) {
                HW(mlp1_w, "linear_1.0.weight", 2, O, O, true);
                HW(mlp1_b, "linear_1.0.bias", 1, O, 0, true);
                HW(mlp2_w, "linear_1.2.weight", 2, O, O, true);
                HW(mlp2_b, "linear_1.2.bias", 1, O, 0, true);
                for (int j = 2; j <= 3; j++)  // no pointer kept: nothing computes with them
                    for (int part = 0; part < 4; part++) {
                        snprintf(n, sizeof n, "%s.%d.linear_%d.%d.%s", heads[t], l, j, part < 2 ? 0 : 2,
                                 part % 2 ? "bias" : "weight");
                        reg(k, &dummy, MODULE_OLA, n, part % 2 ? 1 : 2, O, O, 0, 0, false);
                    }
            }
#undef HW
        }
    }
#undef SLOT
}

// The LLM linears' LoRA adapters (LlavaConfig.lora), after every other tensor so the model's own
// keep their offsets: per layer and target (LoraTarget's order) lora_A (r, in), lora_B (out, r),
// named as the module they adapt + PEFT's ".lora_A.weight" / ".lora_B.weight".
static void walk_lora(Walk *k, const LlavaConfig *c) {
    const TextConfig *t = &c->text;
    int H = t->hidden, HS = H / t->heads, Q = t->heads * HS, KV = t->kv_heads * HS, I = t->intermediate, r = c->lora.r;
    bool owl2 = c->arch == ARCH_MPLUG_OWL2;
    const char *prefix = owl2 ? "model.layers" : "language_model.model.layers";
    static const char *const llava_names[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                              "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    static const char *const owl2_names[] = {"self_attn.q_proj", "self_attn.k_proj.multiway.0", "self_attn.v_proj.multiway.0",
                                             "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
                                             "self_attn.k_proj.multiway.1", "self_attn.v_proj.multiway.1"};
    const int in[LORA_TARGETS] = {H, H, H, Q, H, H, I, H, H}, out[LORA_TARGETS] = {Q, KV, KV, H, I, I, H, KV, KV};
    float *dummy;
    for (int l = 0; l < t->layers; l++)
        for (int g = 0; g < (t->multiway ? LORA_TARGETS : LORA_K1); g++) {
            LlamaLayerWeights *L = k->base ? &k->w->tl[l] : NULL;
            char n[160];
            const char *module = owl2 ? owl2_names[g] : llava_names[g];
            snprintf(n, sizeof n, "%s.%d.%s.lora_A.weight", prefix, l, module);
            reg(k, L ? &L->lora[g][0] : &dummy, MODULE_LORA, n, 2, r, in[g], 0, 0, true);
            snprintf(n, sizeof n, "%s.%d.%s.lora_B.weight", prefix, l, module);
            reg(k, L ? &L->lora[g][1] : &dummy, MODULE_LORA, n, 2, out[g], r, 0, 0, true);
        }
}

static void walk_arch(Walk *k, const LlavaConfig *c);

static void walk(Walk *k, const LlavaConfig *c) {
    if (c->arch == ARCH_MPLUG_OWL2) owl2_walk(k, c);
    else walk_arch(k, c);
    if (c->lora.r > 0) walk_lora(k, c);
}

// CLIP's ViT under llava-hf's names (vision_tower.vision_model.*).
static void walk_clip_vision(Walk *k, const LlavaConfig *c) {
    const VisionConfig *v = &c->vision;
    LlavaWeights *w = k->w;
    char n[160];
    float *dummy;
#define SLOT(field) (k->base ? &(field) : &dummy)
    const char *vp = "vision_tower.vision_model.";
    int P = v->patch, C = v->hidden, used = llava_vision_layers_used(c);
    snprintf(n, sizeof n, "%sembeddings.class_embedding", vp), reg(k, SLOT(w->cls), MODULE_VISION, n, 1, C, 0, 0, 0, true);
    snprintf(n, sizeof n, "%sembeddings.patch_embedding.weight", vp);
    reg(k, SLOT(w->patch_w), MODULE_VISION, n, 4, C, 3, P, P, true);
    snprintf(n, sizeof n, "%sembeddings.position_embedding.weight", vp);
    reg(k, SLOT(w->pos), MODULE_VISION, n, 2, vision_patches(v) + 1, C, 0, 0, true);
    snprintf(n, sizeof n, "%spre_layrnorm.weight", vp), reg(k, SLOT(w->pre_ln_w), MODULE_VISION, n, 1, C, 0, 0, 0, true);
    snprintf(n, sizeof n, "%spre_layrnorm.bias", vp), reg(k, SLOT(w->pre_ln_b), MODULE_VISION, n, 1, C, 0, 0, 0, true);
    for (int l = 0; l < v->layers; l++) {
        ClipLayerWeights *L = k->base ? &w->vl[l] : NULL;
#define VL(field, suffix, ndim, a, b)                                                          \
    snprintf(n, sizeof n, "%sencoder.layers.%d.%s", vp, l, suffix);                            \
    reg(k, L ? &L->field : &dummy, MODULE_VISION, n, ndim, a, b, 0, 0, l < used)
        // q, k, v: one product over the block [q_w; k_w; v_w | q_b; k_b; v_b], in the file's order k, v, q
        size_t qkv = k->offset, CC = (size_t)C * C;
        k->offset += 3 * CC + 3 * (size_t)C;
#define QKV(field, suffix, ndim, at)                                                           \
    snprintf(n, sizeof n, "%sencoder.layers.%d.%s", vp, l, suffix);                            \
    reg_at(k, qkv + (at), L ? &L->field : &dummy, MODULE_VISION, n, ndim, C, ndim == 2 ? C : 0, 0, 0, l < used)
        QKV(k_w, "self_attn.k_proj.weight", 2, CC);
        QKV(k_b, "self_attn.k_proj.bias", 1, 3 * CC + C);
        QKV(v_w, "self_attn.v_proj.weight", 2, 2 * CC);
        QKV(v_b, "self_attn.v_proj.bias", 1, 3 * CC + 2 * C);
        QKV(q_w, "self_attn.q_proj.weight", 2, 0);
        QKV(q_b, "self_attn.q_proj.bias", 1, 3 * CC);
#undef QKV
        VL(o_w, "self_attn.out_proj.weight", 2, C, C);
        VL(o_b, "self_attn.out_proj.bias", 1, C, 0);
        VL(ln1_w, "layer_norm1.weight", 1, C, 0);
        VL(ln1_b, "layer_norm1.bias", 1, C, 0);
        VL(fc1_w, "mlp.fc1.weight", 2, v->intermediate, C);
        VL(fc1_b, "mlp.fc1.bias", 1, v->intermediate, 0);
        VL(fc2_w, "mlp.fc2.weight", 2, C, v->intermediate);
        VL(fc2_b, "mlp.fc2.bias", 1, C, 0);
        VL(ln2_w, "layer_norm2.weight", 1, C, 0);
        VL(ln2_b, "layer_norm2.bias", 1, C, 0);
#undef VL
    }
    // LLaVA reads a hidden state before post_layernorm: it never gets a gradient
    snprintf(n, sizeof n, "%spost_layernorm.weight", vp), reg(k, SLOT(w->post_ln_w), MODULE_VISION, n, 1, C, 0, 0, 0, false);
    snprintf(n, sizeof n, "%spost_layernorm.bias", vp), reg(k, SLOT(w->post_ln_b), MODULE_VISION, n, 1, C, 0, 0, 0, false);
#undef SLOT
}

// timm's ConvNeXt trunk under "vision_tower." + timm's names, in its state dict's order (a block's
// gamma first: a module's own parameters come before its children's); head.norm is kept for the
// checkpoints (upstream saves the whole trunk) but never reached.
static void walk_convnext_vision(Walk *k, const VisionConfig *v) {
    ConvNextWeights *x = k->base ? &k->w->cx : NULL;  // NULL while counting and naming
    char n[160];
    float *dummy;
#define SLOT(field) (x ? &(x->field) : &dummy)
#define CX(field, suffix, ndim, a, b, c_, d, reachable)                                             \
    snprintf(n, sizeof n, "vision_tower.%s", suffix);                                            \
    reg(k, SLOT(field), MODULE_VISION, n, ndim, a, b, c_, d, reachable)
    int d0 = v->dims[0];
    CX(stem_w, "stem.0.weight", 4, d0, 3, CONVNEXT_STEM, CONVNEXT_STEM, true);
    CX(stem_b, "stem.0.bias", 1, d0, 0, 0, 0, true);
    CX(stem_ln_w, "stem.1.weight", 1, d0, 0, 0, 0, true);
    CX(stem_ln_b, "stem.1.bias", 1, d0, 0, 0, 0, true);
    char suffix[128];
    for (int s = 0, b = 0; s < CONVNEXT_STAGES; s++) {
        int C = v->dims[s];
        if (s > 0) {  // stage 0 has none (stride 1, as wide as the stem)
            int P = v->dims[s - 1];
            snprintf(suffix, sizeof suffix, "stages.%d.downsample.0.weight", s);
            CX(ds_ln_w[s], suffix, 1, P, 0, 0, 0, true);
            snprintf(suffix, sizeof suffix, "stages.%d.downsample.0.bias", s);
            CX(ds_ln_b[s], suffix, 1, P, 0, 0, 0, true);
            snprintf(suffix, sizeof suffix, "stages.%d.downsample.1.weight", s);
            CX(ds_w[s], suffix, 4, C, P, 2, 2, true);
            snprintf(suffix, sizeof suffix, "stages.%d.downsample.1.bias", s);
            CX(ds_b[s], suffix, 1, C, 0, 0, 0, true);
        }
        for (int j = 0; j < v->depths[s]; j++, b++) {
#define BLK(field, part, ndim, a, b_, c_, d)                                                        \
    snprintf(suffix, sizeof suffix, "stages.%d.blocks.%d.%s", s, j, part);                          \
    CX(blk[b].field, suffix, ndim, a, b_, c_, d, true)
            BLK(gamma, "gamma", 1, C, 0, 0, 0);
            BLK(dw_w, "conv_dw.weight", 4, C, 1, CONVNEXT_KERNEL, CONVNEXT_KERNEL);
            BLK(dw_b, "conv_dw.bias", 1, C, 0, 0, 0);
            BLK(ln_w, "norm.weight", 1, C, 0, 0, 0);
            BLK(ln_b, "norm.bias", 1, C, 0, 0, 0);
            BLK(fc1_w, "mlp.fc1.weight", 2, 4 * C, C, 0, 0);
            BLK(fc1_b, "mlp.fc1.bias", 1, 4 * C, 0, 0, 0);
            BLK(fc2_w, "mlp.fc2.weight", 2, C, 4 * C, 0, 0);
            BLK(fc2_b, "mlp.fc2.bias", 1, C, 0, 0, 0);
#undef BLK
        }
    }
    CX(head_ln_w, "head.norm.weight", 1, v->hidden, 0, 0, 0, false);
    CX(head_ln_b, "head.norm.bias", 1, v->hidden, 0, 0, 0, false);
#undef CX
#undef SLOT
}

static void walk_arch(Walk *k, const LlavaConfig *c) {
    const VisionConfig *v = &c->vision;
    const TextConfig *t = &c->text;
    LlavaWeights *w = k->w;
    char n[160];
    float *dummy;
#define SLOT(field) (k->base ? &(field) : &dummy)
    if (v->kind == VISION_CONVNEXT) walk_convnext_vision(k, v);
    else walk_clip_vision(k, c);
    int C = v->hidden;
    int H = t->hidden, HS = t->hidden / t->heads;
    reg(k, SLOT(w->p1_w), MODULE_PROJECTOR, "multi_modal_projector.linear_1.weight", 2, H, C, 0, 0, true);
    reg(k, SLOT(w->p1_b), MODULE_PROJECTOR, "multi_modal_projector.linear_1.bias", 1, H, 0, 0, 0, true);
    if (c->projector == PROJECTOR_MLP2X_GELU) {
        reg(k, SLOT(w->p2_w), MODULE_PROJECTOR, "multi_modal_projector.linear_2.weight", 2, H, H, 0, 0, true);
        reg(k, SLOT(w->p2_b), MODULE_PROJECTOR, "multi_modal_projector.linear_2.bias", 1, H, 0, 0, 0, true);
    } else if (k->base) {
        w->p2_w = w->p2_b = NULL;  // the linear projector is linear_1 alone
    }
    reg(k, SLOT(w->embed), MODULE_LLM, "language_model.model.embed_tokens.weight", 2, t->vocab, H, 0, 0, true);
    for (int l = 0; l < t->layers; l++) {
        LlamaLayerWeights *L = k->base ? &w->tl[l] : NULL;
#define TL(field, suffix, ndim, a, b)                                                          \
    snprintf(n, sizeof n, "language_model.model.layers.%d.%s", l, suffix);                     \
    reg(k, L ? &L->field : &dummy, MODULE_LLM, n, ndim, a, b, 0, 0, true)
        if (t->fused_names) {  // Phi-3 stores the products vlm fuses as they are: [q; k; v], [gate; up]
            TL(q_w, "self_attn.qkv_proj.weight", 2, (t->heads + 2 * t->kv_heads) * HS, H);
            TL(o_w, "self_attn.o_proj.weight", 2, H, t->heads * HS);
            TL(gate_w, "mlp.gate_up_proj.weight", 2, 2 * t->intermediate, H);
            TL(down_w, "mlp.down_proj.weight", 2, H, t->intermediate);
            if (L) {
                L->k_w = L->q_w + (size_t)t->heads * HS * H, L->v_w = L->k_w + (size_t)t->kv_heads * HS * H;
                L->up_w = L->gate_w + (size_t)t->intermediate * H;
            }
        } else {
            TL(q_w, "self_attn.q_proj.weight", 2, t->heads * HS, H);
            TL(k_w, "self_attn.k_proj.weight", 2, t->kv_heads * HS, H);
            TL(v_w, "self_attn.v_proj.weight", 2, t->kv_heads * HS, H);
            TL(o_w, "self_attn.o_proj.weight", 2, H, t->heads * HS);
            TL(gate_w, "mlp.gate_proj.weight", 2, t->intermediate, H);
            TL(up_w, "mlp.up_proj.weight", 2, t->intermediate, H);
            TL(down_w, "mlp.down_proj.weight", 2, H, t->intermediate);
        }
        TL(ln1_w, "input_layernorm.weight", 1, H, 0);
        TL(ln2_w, "post_attention_layernorm.weight", 1, H, 0);
#undef TL
    }
    reg(k, SLOT(w->norm_w), MODULE_LLM, "language_model.model.norm.weight", 1, H, 0, 0, 0, true);
    if (t->tie_embeddings) {
        if (k->base) w->lm_head = w->embed;
    } else {
        reg(k, SLOT(w->lm_head), MODULE_LLM, "language_model.lm_head.weight", 2, t->vocab, H, 0, 0, true);
    }
    if (c->ola.enabled) walk_ola(k, c, k->base ? &w->ola : NULL);
#undef SLOT
}

int llava_params_layout(LlavaParams *p, const LlavaConfig *cfg) {
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    Walk count = {p, NULL, NULL, 0, 0};
    walk(&count, cfg);
    p->n_specs = count.count;
    p->specs = vlm_calloc((size_t)p->n_specs, sizeof(ParamSpec));
    if (!p->specs) return VLM_ERR_FAIL;
    Walk names = {p, NULL, NULL, 0, 0};
    walk(&names, cfg);
    p->numel = names.offset;
    for (int i = 0; i < p->n_specs; i++) p->module_numel[p->specs[i].module] += p->specs[i].numel;
    return VLM_OK;
}

int llava_params_alloc_data(LlavaParams *p) {
    p->data = vlm_alloc_aligned(p->numel * sizeof(float));
    p->w.vl = vlm_calloc((size_t)p->cfg.vision.layers, sizeof(ClipLayerWeights));
    p->w.tl = vlm_calloc((size_t)p->cfg.text.layers, sizeof(LlamaLayerWeights));
    p->w.al = vlm_calloc((size_t)p->cfg.abstractor.layers + 1, sizeof(AbstractorLayerWeights));
    p->w.cx.blk = vlm_calloc((size_t)convnext_blocks(&p->cfg.vision), sizeof(ConvNextBlockWeights));
    if (!p->data || !p->w.vl || !p->w.tl || !p->w.al || !p->w.cx.blk) {
        llava_params_free(p);
        return VLM_ERR_FAIL;
    }
    memset(p->data, 0, p->numel * sizeof(float));  // host-side: the buffer loads fill (a backend uploads it after)
    llava_weights_view(p, p->data, &p->w);
    return VLM_OK;
}

int llava_params_alloc(LlavaParams *p, const LlavaConfig *cfg) {
    int rc = llava_params_layout(p, cfg);
    return rc == VLM_OK ? llava_params_alloc_data(p) : rc;
}

void llava_weights_view(const LlavaParams *p, float *base, LlavaWeights *out) {
    ClipLayerWeights *vl = out->vl;
    LlamaLayerWeights *tl = out->tl;
    if (!vl) vl = out->vl = vlm_calloc((size_t)p->cfg.vision.layers, sizeof(ClipLayerWeights));
    if (!tl) tl = out->tl = vlm_calloc((size_t)p->cfg.text.layers, sizeof(LlamaLayerWeights));
    if (!out->al) out->al = vlm_calloc((size_t)p->cfg.abstractor.layers + 1, sizeof(AbstractorLayerWeights));
    if (!out->cx.blk) out->cx.blk = vlm_calloc((size_t)convnext_blocks(&p->cfg.vision), sizeof(ConvNextBlockWeights));
    Walk set = {(LlavaParams *)p, base, out, 0, 0};
    walk(&set, &p->cfg);
    // CLIP's q, k, v, LLaMA's q, k, v and gate, up are each one matrix product over adjacent rows
    size_t C = (size_t)p->cfg.vision.hidden;
    for (int l = 0; l < p->cfg.vision.layers; l++) {
        ClipLayerWeights *W = &vl[l];
        if (W->k_w != W->q_w + C * C || W->v_w != W->k_w + C * C || W->q_b != W->q_w + 3 * C * C ||
            W->k_b != W->q_b + C || W->v_b != W->k_b + C) {
            fprintf(stderr, "vlm: internal error: the parameter walk did not lay out CLIP's q/k/v adjacently\n");
            abort();
        }
        W->qkv_w = W->q_w, W->qkv_b = W->q_b;
    }
    const TextConfig *t = &p->cfg.text;
    size_t H = (size_t)t->hidden, HS = H / (size_t)t->heads, Q = (size_t)t->heads * HS, KV = (size_t)t->kv_heads * HS;
    for (int l = 0; l < t->layers; l++) {
        LlamaLayerWeights *W = &tl[l];
        if (W->k_w != W->q_w + Q * H || W->v_w != W->k_w + KV * H || W->up_w != W->gate_w + (size_t)t->intermediate * H) {
            fprintf(stderr, "vlm: internal error: the parameter walk did not lay out LLaMA's q/k/v or gate/up adjacently\n");
            abort();
        }
        W->qkv_w = W->q_w, W->gate_up_w = W->gate_w;
    }
}

bool llava_is_ola_name(const char *name) {
    return str_has_prefix(name, "model.special_") || str_has_prefix(name, "image_depth_heads.") ||
           str_has_prefix(name, "image_seg_heads.") || str_has_prefix(name, "image_gen_heads.") ||
           str_has_suffix(name, "_logit_scale");
}

bool llava_is_ola_layernorm(const char *name) {
    return llava_is_ola_name(name) && (strstr(name, ".norm1.") || strstr(name, ".norm2.") ||
                                       strstr(name, ".norm_out.") || strstr(name, ".layers.0.1.0."));
}

int llava_params_relayout(LlavaParams *p, const LlavaConfig *cfg, bool *all_kept) {
    LlavaParams q;
    if (llava_params_alloc(&q, cfg) != VLM_OK) return vlm_fail(VLM_ERR_FAIL, NULL, NULL, "out of memory for parameters");
    int kept = 0;
    for (int i = 0; i < q.n_specs; i++)
        for (int j = 0; j < p->n_specs; j++)
            if (strcmp(q.specs[i].name, p->specs[j].name) == 0 && q.specs[i].numel == p->specs[j].numel) {
                // host-side, at load time: a tensor kept across the change of layout
                memcpy(q.data + q.specs[i].offset, p->data + p->specs[j].offset, sizeof(float) * q.specs[i].numel);
                kept++;
                break;
            }
    if (all_kept) *all_kept = kept == q.n_specs;
    llava_params_free(p);
    *p = q;
    return VLM_OK;
}

void llava_params_free(LlavaParams *p) {
    free(p->specs);
    vlm_free_aligned(p->data);
    free(p->w.vl);
    free(p->w.tl);
    free(p->w.al);
    free(p->w.cx.blk);
    memset(p, 0, sizeof *p);
}

// ---- loading

// One source's problems, listed for the message.
typedef struct {
    char missing[1024], shapes[1024], unexpected[1024];
    size_t n_missing, n_shapes, n_unexpected;
} Problems;

static void append(char *list, size_t size, size_t *n, const char *name) {
    size_t used = strlen(list);
    if (++*n <= 8) snprintf(list + used, size - used, "%s%s", used ? ", " : "", name);
}

// "N missing tensors (a, b); N of the wrong shape (...); N unexpected (...)".
static void format_problems(const Problems *q, char *out, size_t size) {
    snprintf(out, size, "%zu missing tensors%s%s%s; %zu of the wrong shape%s%s%s; %zu unexpected%s%s%s", q->n_missing,
             q->n_missing ? " (" : "", q->missing, q->n_missing ? (q->n_missing > 8 ? ", ...)" : ")") : "", q->n_shapes,
             q->n_shapes ? " (" : "", q->shapes, q->n_shapes ? (q->n_shapes > 8 ? ", ...)" : ")") : "",
             q->n_unexpected, q->n_unexpected ? " (" : "", q->unexpected,
             q->n_unexpected ? (q->n_unexpected > 8 ? ", ...)" : ")") : "");
}

// Where a parameter comes from: up to three checkpoints, each with its own
// name for it (NULL: not there). The first that holds it wins.
#define MAX_SOURCES 3
typedef struct {
    Checkpoint *ck[MAX_SOURCES];
    bool report_unused[MAX_SOURCES];  // unused tensors of this checkpoint are "unexpected"
    const char *label[MAX_SOURCES];
    void (*names)(const LlavaConfig *c, const char *param, char out[MAX_SOURCES][200]);
    const char *skip_prefix;          // unused tensors under this prefix are not reported (checked elsewhere)
} Sources;

// OLA-VLM's checkpoints also hold its frozen teachers' decoders (the depth
// head that pictures predictions, ...): not part of the model trained here.
static bool is_ola_teacher(const char *name) {
    static const char *const prefixes[] = {"da_v2_head.", "dav2_backbone.", "oneformer.", "gen_encoder."};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (str_has_prefix(name, prefixes[i])) return true;
    return false;
}

void qkv_reorder(float *dst, const float *src, const ParamSpec *s, bool to_file) {
    size_t rows = (size_t)s->shape[0], cols = s->numel / rows, heads = (size_t)s->qkv_heads, HS = rows / (3 * heads);
    for (size_t h = 0; h < heads; h++)
        for (size_t slot = 0; slot < 3; slot++)
            for (size_t d = 0; d < HS; d++) {
                size_t file = (h * 3 + slot) * HS + d, ours = slot * heads * HS + h * HS + d;
                const float *from = src + (to_file ? ours : file) * cols;
                float *to = dst + (to_file ? file : ours) * cols;
                for (size_t c = 0; c < cols; c++) to[c] = from[c];  // host-side, at load and save
            }
}

// Fills p from the sources. Every tensor's presence and shape is checked
// against p's layout from the files' headers first, and only then is p's
// buffer allocated (when p has none yet) and read: a config that disagrees
// with its weights is reported as such, naming the file each problem is in,
// before any memory is planned from the config's sizes.
static int load_from(LlavaParams *p, Sources *src) {
    Problems *q = vlm_calloc(MAX_SOURCES, sizeof(Problems));
    int *where = vlm_calloc((size_t)p->n_specs + 1, 2 * sizeof(int));  // (source, index) per parameter, -1: none
    unsigned char *used[MAX_SOURCES] = {NULL};
    int rc = q && where ? VLM_OK : VLM_ERR_FAIL;
    for (int c = 0; c < MAX_SOURCES; c++)
        if (rc == VLM_OK && src->ck[c] && !(used[c] = vlm_calloc((size_t)src->ck[c]->count + 1, 1))) rc = VLM_ERR_FAIL;
    for (int i = 0; rc == VLM_OK && i < p->n_specs; i++) {
        const ParamSpec *s = &p->specs[i];
        where[2 * i] = where[2 * i + 1] = -1;
        char names[MAX_SOURCES][200];
        src->names(&p->cfg, s->name, names);
        if (!names[0][0] && !names[1][0] && !names[2][0]) continue;  // not from a file (a fresh projector)
        int c = 0, j = -1;
        for (; c < MAX_SOURCES; c++)
            if (src->ck[c] && names[c][0] && (j = checkpoint_find(src->ck[c], names[c])) >= 0) break;
        if (j < 0) {
            int first = 0;
            while (first < MAX_SOURCES - 1 && !(src->ck[first] && names[first][0])) first++;
            append(q[first].missing, sizeof q[first].missing, &q[first].n_missing, names[first]);
            continue;
        }
        used[c][j] = 1;
        const TensorInfo *info = src->ck[c]->tensors[j].info;
        bool same = info->ndim == s->ndim;
        for (int d = 0; same && d < s->ndim; d++) same = info->shape[d] == s->shape[d];
        if (!same) {
            char got[96], want[96], entry[512];
            shape_format(info->shape, info->ndim, got, sizeof got);
            shape_format(s->shape, s->ndim, want, sizeof want);
            snprintf(entry, sizeof entry, "%s is %s, expected %s", names[c], got, want);
            append(q[c].shapes, sizeof q[c].shapes, &q[c].n_shapes, entry);
            continue;
        }
        where[2 * i] = c, where[2 * i + 1] = j;
    }
    for (int c = 0; rc == VLM_OK && c < MAX_SOURCES; c++)
        for (int j = 0; src->ck[c] && src->report_unused[c] && j < src->ck[c]->count; j++) {
            const char *name = src->ck[c]->tensors[j].info->name;
            // rotary caches some checkpoints carry are buffers, not parameters; a tied model's
            // lm_head (torch.save keeps both names of a shared tensor) is the embedding, as
            // transformers' tie_weights makes it whatever the file holds
            if (used[c][j] || strstr(name, "rotary_emb.inv_freq")) continue;
            // mPLUG-Owl2's sin-cos buffers: recomputed (and checked, owl2_check_buffers)
            if (p->cfg.arch == ARCH_MPLUG_OWL2 && (str_has_suffix(name, ".q_pos_embed") || str_has_suffix(name, ".k_pos_embed")))
                continue;
            if (p->cfg.text.tie_embeddings && str_has_suffix(name, "lm_head.weight")) continue;
            if (src->skip_prefix && str_has_prefix(name, src->skip_prefix)) continue;
            if (is_ola_teacher(name)) continue;
            append(q[c].unexpected, sizeof q[c].unexpected, &q[c].n_unexpected, name);
        }
    // one message, each file's problems under its name
    char message[8192] = "";
    for (int c = 0; rc == VLM_OK && c < MAX_SOURCES; c++) {
        if (!q[c].n_missing && !q[c].n_shapes && !q[c].n_unexpected) continue;
        char part[4096];
        format_problems(&q[c], part, sizeof part);
        size_t n = strlen(message);
        snprintf(message + n, sizeof message - n, "%s%s: %s", n ? "; and " : "", src->label[c], part);
    }
    if (rc == VLM_OK && message[0]) rc = vlm_fail(VLM_ERR_INPUT, NULL, NULL, "%s", message);
    if (rc == VLM_OK && !p->data) rc = llava_params_alloc_data(p);
    if (rc == VLM_OK && !p->data)
        rc = vlm_fail(VLM_ERR_FAIL, src->label[0], NULL, "out of memory for %zu parameters", p->numel);
    for (int i = 0; rc == VLM_OK && i < p->n_specs; i++) {
        const ParamSpec *s = &p->specs[i];
        if (where[2 * i] < 0) continue;
        if (!s->qkv_heads) {
            rc = checkpoint_read_f32(src->ck[where[2 * i]], where[2 * i + 1], p->data + s->offset);
            continue;
        }
        float *file = vlm_malloc(sizeof(float) * s->numel);  // the file's interleaved rows, reordered into place
        rc = file ? checkpoint_read_f32(src->ck[where[2 * i]], where[2 * i + 1], file) : VLM_ERR_FAIL;
        if (rc == VLM_OK) qkv_reorder(p->data + s->offset, file, s, false);
        free(file);
    }
    for (int c = 0; c < MAX_SOURCES; c++) free(used[c]);
    free(q), free(where);
    return rc;
}

static void hf_names(const LlavaConfig *c, const char *param, char out[MAX_SOURCES][200]) {
    (void)c;
    snprintf(out[0], 200, "%s", param);
    out[1][0] = out[2][0] = '\0';
}

// A linear projector in the llava-hf layout (see ProjectorType): linear_2
// must be the identity with a zero bias, else the file holds a two-linear
// projector without activation, which LLaVA does not have.
static int check_identity_linear_2(Checkpoint *ck, const char *dir, int H) {
    static const char *const names[2] = {"multi_modal_projector.linear_2.weight", "multi_modal_projector.linear_2.bias"};
    float *buf = vlm_malloc(sizeof(float) * (size_t)H * H);
    if (!buf) return VLM_ERR_FAIL;
    int rc = VLM_OK;
    for (int t = 0; rc == VLM_OK && t < 2; t++) {
        int j = checkpoint_find(ck, names[t]);
        const TensorInfo *info = j >= 0 ? ck->tensors[j].info : NULL;
        if (!info || info->ndim != 2 - t || info->shape[0] != H || (t == 0 && info->shape[1] != H)) {
            rc = vlm_fail(VLM_ERR_INPUT, dir, names[t], "missing or not [%d%s]: projector_hidden_act \"linear\" "
                          "stands for LLaVA's linear projector with linear_2 the identity", H, t == 0 ? ", H" : "");
            break;
        }
        rc = checkpoint_read_f32(ck, j, buf);
        for (size_t i = 0; rc == VLM_OK && i < (t == 0 ? (size_t)H * H : (size_t)H); i++) {
            float want = t == 0 && i / (size_t)H == i % (size_t)H ? 1.0f : 0.0f;
            if (buf[i] != want)
                rc = vlm_fail(VLM_ERR_INPUT, dir, names[t],
                              "projector_hidden_act \"linear\" is read as LLaVA's linear projector, which needs "
                              "linear_2 = identity with zero bias; element %zu is %g (a trained linear_2 is a "
                              "projector LLaVA does not have)", i, (double)buf[i]);
        }
    }
    free(buf);
    return rc;
}

// Opens the checkpoint of every source that has a folder (label), into ck;
// on failure the ones already open are closed again.
static int open_sources(Sources *src, Checkpoint ck[MAX_SOURCES]) {
    for (int c = 0; c < MAX_SOURCES; c++) {
        src->ck[c] = NULL;
        if (!src->label[c]) continue;
        int rc = checkpoint_open(&ck[c], src->label[c]);
        if (rc != VLM_OK) {
            while (c--) if (src->ck[c]) checkpoint_close(src->ck[c]);
            return rc;
        }
        src->ck[c] = &ck[c];
    }
    return VLM_OK;
}

static void close_sources(Sources *src) {
    for (int c = MAX_SOURCES - 1; c >= 0; c--)
        if (src->ck[c]) checkpoint_close(src->ck[c]), src->ck[c] = NULL;
}

// config.json's mm_vision_tower when it names a ConvNeXt tower (a fresh string, or NULL).
static char *saved_convnext_tower(const char *config) {
    json_t *j = vlm_json_load_file(config, 0, NULL);
    const char *name = json_string_value(json_object_get(j, "mm_vision_tower"));
    ConvNextTower t;
    bool convnext = false;
    if (name && !json_object_get(j, "vision_config")) {  // a name upstream cannot run still says what it is
        convnext_tower_parse(&t, name);
        convnext = t.convnext;
        vlm_clear_error();  // llava_load_original reads it again, and reports
    }
    char *out = convnext ? strdup(name) : NULL;
    json_decref(j);
    return out;
}

int llava_load_hf(LlavaParams *p, const char *dir) {
    char *config = path_join(dir, "config.json");
    // a model with a ConvNeXt tower is saved in the original layout (save_original)
    char *tower = config ? saved_convnext_tower(config) : NULL;
    if (tower) {
        free(config);
        int rc = llava_load_original(p, dir, tower);
        free(tower);
        return rc;
    }
    LlavaConfig cfg;
    int rc = config ? llava_config_load(&cfg, config) : VLM_ERR_FAIL;
    free(config);
    if (rc != VLM_OK) return rc;
    rc = llava_params_layout(p, &cfg);
    if (rc != VLM_OK) return rc;
    Checkpoint ck[MAX_SOURCES];
    Sources src = {{NULL}, {true}, {dir}, hf_names, NULL};
    if (cfg.projector == PROJECTOR_LINEAR) src.skip_prefix = "multi_modal_projector.linear_2.";
    rc = open_sources(&src, ck);
    if (rc == VLM_OK) {
        rc = load_from(p, &src);
        if (rc == VLM_OK && cfg.projector == PROJECTOR_LINEAR) rc = check_identity_linear_2(src.ck[0], dir, cfg.text.hidden);
        if (rc == VLM_OK && cfg.arch == ARCH_MPLUG_OWL2) rc = owl2_check_buffers(src.ck[0], &cfg, dir, NULL);
        close_sources(&src);
    }
    if (rc != VLM_OK) llava_params_free(p);
    return rc;
}

// Original LLaVA: LLaMA weights under model.*, the projector as
// model.mm_projector.0 / .2, the vision tower (when saved) under
// model.vision_tower.vision_tower.*; a CLIP directory holds vision_model.*.
// The linear projector is model.mm_projector.weight / .bias (one nn.Linear).
static void original_names(const LlavaConfig *c, const char *param, char out[MAX_SOURCES][200]) {
    const char *rest;
    out[0][0] = out[1][0] = out[2][0] = '\0';
    if (llava_is_ola_name(param)) {  // OLA-VLM's own names, as its checkpoints hold them
        snprintf(out[0], 200, "%s", param);
    } else if ((rest = strstr(param, "vision_tower.")) == param) {
        snprintf(out[0], 200, "model.vision_tower.vision_tower.%s", rest + strlen("vision_tower."));
        // a ConvNeXt's open_clip folder holds the whole CLIP: the trunk is visual.trunk.*
        snprintf(out[1], 200, "%s%s", c->vision.kind == VISION_CONVNEXT ? CONVNEXT_TRUNK_PREFIX : "",
                 rest + strlen("vision_tower."));
    } else if (str_has_prefix(param, "multi_modal_projector.linear_")) {
        if (c->projector == PROJECTOR_LINEAR) snprintf(out[0], 200, "model.mm_projector.%s", param + 31);
        else snprintf(out[0], 200, "model.mm_projector.%d.%s", param[29] == '1' ? 0 : 2, param + 31);
    } else if (str_has_prefix(param, "language_model.")) {
        snprintf(out[0], 200, "%s", param + 15);
    }
}

// The text config from llm_dir/config.json (LLaMA keys at the top level) and
// the vision config from vision_dir/config.json (a CLIPModel nests it under
// "vision_config"), or, when vision_dir names a ConvNeXt tower (model/convnext_config.h),
// from its open_clip folder (or, without one, from saved_dir's checkpoint: a saved LLaVA that
// holds the tower; NULL: none). *root receives the first file's JSON for further keys.
static int load_text_and_vision(LlavaConfig *c, const char *llm_dir, const char *vision_dir, const char *saved_dir,
                                json_t **root, char **path) {
    *path = path_join(llm_dir, "config.json");
    ConvNextTower tower;
    int rc = convnext_tower_parse(&tower, vision_dir);
    bool convnext = rc == VLM_OK && tower.convnext;
    char *vpath = convnext ? NULL : path_join(vision_dir, "config.json");
    json_error_t jerr;
    *root = *path ? vlm_json_load_file(*path, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    json_t *vroot = *root && vpath ? vlm_json_load_file(vpath, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    memset(c, 0, sizeof *c);
    if (!rc && (!*root || (!convnext && !vroot)))
        rc = vlm_fail(VLM_ERR_INPUT, !*root ? *path : vpath, NULL, "line %d: %s", jerr.line, jerr.text);
    if (!rc) rc = text_config_from_json(&c->text, *root, NULL, *path);
    json_t *vc = vroot ? json_object_get(vroot, "vision_config") : NULL;
    if (!rc && !convnext) rc = vision_config_from_json(&c->vision, vc ? vc : vroot, vc ? "vision_config" : NULL, vpath);
    if (!rc && convnext) {
        Checkpoint saved;
        bool open = !tower.have_folder && saved_dir && checkpoint_open(&saved, saved_dir) == VLM_OK;
        if (!tower.have_folder && saved_dir && !open) rc = VLM_ERR_INPUT;  // the saved model's weights: unreadable
        if (!rc) rc = convnext_vision_config(&c->vision, &tower, vision_dir, open ? &saved : NULL, saved_dir);
        if (open) checkpoint_close(&saved);
    }
    json_decref(vroot);
    free(vpath);
    c->projector = PROJECTOR_MLP2X_GELU;
    c->projector_init_range = c->text.init_range;
    c->image_token_index = 32000;  // llava-hf's placeholder id, for saving
    return rc;
}

// The checkpoint a vision tower's weights come from: a CLIP folder itself, a ConvNeXt's open_clip
// weights file (NULL when its folder is not there: the saved model holds them). *owned: to free.
static const char *vision_source(const VisionConfig *v, const char *vision_dir, char **owned) {
    *owned = NULL;
    if (v->kind != VISION_CONVNEXT) return vision_dir;
    ConvNextTower t;
    if (convnext_tower_parse(&t, vision_dir) != VLM_OK || !t.have_folder) return NULL;
    return *owned = convnext_weights_file(t.folder);
}

int llava_config_load_original(LlavaConfig *c, const char *llava_dir, const char *vision_dir) {
    json_t *root;
    char *path;
    int rc = load_text_and_vision(c, llava_dir, vision_dir, llava_dir, &root, &path);
    if (!rc && !json_object_get(root, "mm_projector_type") && !json_object_get(root, "mm_vision_tower"))
        rc = vlm_fail(VLM_ERR_INPUT, path, NULL, "not an original LLaVA config (no mm_vision_tower / mm_projector_type)");
    const char *type = json_string_value(json_object_get(root, "mm_projector_type"));
    if (!rc && type && strcmp(type, "mlp2x_gelu") != 0 && strcmp(type, "linear") != 0)
        rc = vlm_fail(VLM_ERR_INPUT, path, "mm_projector_type", "'%s' is not supported (mlp2x_gelu and linear are)", type);
    // LLaVA's default when the key is absent is linear (build_vision_projector)
    if (!type || strcmp(type, "linear") == 0) c->projector = PROJECTOR_LINEAR;
    long long select = -2;
    // a ConvNeXt tower has no hidden states to select nor a class token: upstream's reads the
    // last stage whatever the two keys say (kept, to be saved back)
    bool convnext = c->vision.kind == VISION_CONVNEXT;
    if (!rc)
        rc = vlm_json_get_int(root, "mm_vision_select_layer", VLM_JSON_OPTIONAL, -2,
                              convnext ? -MAX_LAYERS - 1 : -(c->vision.layers + 1), convnext ? MAX_LAYERS : c->vision.layers,
                              &select, path, NULL);
    c->feature_layer = (int)select;
    const char *feature = json_string_value(json_object_get(root, "mm_vision_select_feature"));
    if (!rc && feature && strcmp(feature, "patch") != 0 && strcmp(feature, "cls_patch") != 0)
        rc = vlm_fail(VLM_ERR_INPUT, path, "mm_vision_select_feature", "expected patch or cls_patch");
    c->feature_full = !convnext && feature && strcmp(feature, "cls_patch") == 0;
    if (!rc) rc = ola_config_from_json(&c->ola, root, path);  // an OLA-VLM checkpoint's keys
    if (!rc) rc = ola_config_check(&c->ola, c->text.layers, path);
    long long mm = c->vision.hidden;
    if (!rc) rc = vlm_json_get_int(root, "mm_hidden_size", VLM_JSON_OPTIONAL, mm, 1, 1LL << 30, &mm, path, NULL);
    if (!rc && mm != c->vision.hidden)
        rc = vlm_fail(VLM_ERR_INPUT, path, "mm_hidden_size", "%lld, but the vision tower %s is %d wide", mm, vision_dir,
                      c->vision.hidden);
    json_decref(root);
    free(path);
    return rc;
}

int llava_load_original(LlavaParams *p, const char *llava_dir, const char *vision_dir) {
    LlavaConfig cfg;
    int rc = llava_config_load_original(&cfg, llava_dir, vision_dir);
    if (rc != VLM_OK) return rc;
    rc = llava_params_layout(p, &cfg);
    if (rc != VLM_OK) return rc;
    Checkpoint ck[MAX_SOURCES];
    // a CLIPModel directory (an open_clip CLIP) also holds the text tower: its other tensors are not ours to report
    char *owned;
    Sources src = {{NULL}, {true, false}, {llava_dir, vision_source(&cfg.vision, vision_dir, &owned)}, original_names, NULL};
    rc = open_sources(&src, ck);
    if (rc == VLM_OK) {
        rc = load_from(p, &src);
        close_sources(&src);
    }
    free(owned);
    if (rc != VLM_OK) llava_params_free(p);
    return rc;
}

void llava_original_name(const LlavaConfig *c, const char *param, char *out, size_t size) {
    char orig[MAX_SOURCES][200];
    original_names(c, param, orig);
    snprintf(out, size, "%s", orig[0][0] ? orig[0] : param);
}

// The IFT start: LlamaForCausalLM names (model.*, lm_head) in the LLM
// directory, vision_model.* in the CLIP directory, model.mm_projector.0/2 in
// the projector file.
static void parts_names(const LlavaConfig *c, const char *param, char out[MAX_SOURCES][200]) {
    char orig[MAX_SOURCES][200];
    original_names(c, param, orig);
    out[0][0] = out[1][0] = out[2][0] = '\0';
    if (str_has_prefix(param, "language_model.")) snprintf(out[0], 200, "%s", orig[0]);
    else if (str_has_prefix(param, "vision_tower.")) snprintf(out[1], 200, "%s", orig[1]);
    else snprintf(out[2], 200, "%s", orig[0]);
}

// PT: no projector file; the projector is initialised afterwards.
static void parts_names_no_projector(const LlavaConfig *c, const char *param, char out[MAX_SOURCES][200]) {
    parts_names(c, param, out);
    if (str_has_prefix(param, "multi_modal_projector.")) out[0][0] = out[1][0] = out[2][0] = '\0';
}

int llava_load_parts(LlavaParams *p, const char *llm_dir, const char *vision_dir, const char *projector,
                     ProjectorType type, int feature_layer, bool feature_full, uint64_t seed) {
    LlavaConfig cfg;
    json_t *root;
    char *path;
    int rc = load_text_and_vision(&cfg, llm_dir, vision_dir, NULL, &root, &path);
    json_decref(root);
    free(path);
    cfg.projector = type;
    cfg.feature_layer = feature_layer;
    cfg.feature_full = feature_full && cfg.vision.kind != VISION_CONVNEXT;  // a ConvNeXt has no class token
    if (rc != VLM_OK) return rc;
    rc = llava_params_layout(p, &cfg);
    if (rc != VLM_OK) return rc;
    Checkpoint ck[MAX_SOURCES];
    char *owned;
    Sources src = {{NULL}, {true, false, true}, {llm_dir, vision_source(&cfg.vision, vision_dir, &owned), projector},
                   projector ? parts_names : parts_names_no_projector, NULL};
    rc = open_sources(&src, ck);
    if (rc == VLM_OK) {
        rc = load_from(p, &src);
        close_sources(&src);
    }
    free(owned);
    if (rc == VLM_OK && !projector) llava_projector_init_default(p, seed);
    if (rc != VLM_OK) llava_params_free(p);
    return rc;
}

// ---- saving

// A model with a ConvNeXt tower: transformers has no such LLaVA, so it is written as OLA-VLM's
// train.py saves one (the original LLaVA layout): config.json with the LLM's keys at the top
// level (model_type llava_llama / llava_phi3, ola_llama / ola_phi3 with OLA-VLM's parts) and
// LLaVA's mm_* keys, mm_vision_tower the tower's name as given; model.safetensors under the
// original names (model.*, lm_head.weight, model.mm_projector.*, and the trunk as upstream's
// state dict names it: model.vision_tower.vision_tower.<timm names>).
static int save_original(const LlavaParams *p, const char *dir) {
    const LlavaConfig *c = &p->cfg;
    int n = p->n_specs;
    TensorInfo *infos = vlm_calloc((size_t)n, sizeof(TensorInfo));
    const void **datas = vlm_calloc((size_t)n, sizeof(void *));
    char (*names)[200] = vlm_calloc((size_t)n, sizeof *names);
    int rc = infos && datas && names ? VLM_OK : VLM_ERR_FAIL;
    for (int i = 0; rc == VLM_OK && i < n; i++) {
        const ParamSpec *s = &p->specs[i];
        llava_original_name(c, s->name, names[i], sizeof names[i]);
        infos[i] = (TensorInfo){.name = names[i], .dtype = DT_F32, .ndim = s->ndim};
        for (int d = 0; d < s->ndim; d++) infos[i].shape[d] = s->shape[d];
        tensor_info_sizes(&infos[i]);
        datas[i] = p->data + s->offset;
    }
    char *weights = path_join(dir, "model.safetensors"), *config = path_join(dir, "config.json");
    json_t *meta = json_pack("{s:s}", "format", "pt");
    if (rc == VLM_OK) rc = weights && config ? safetensors_write(weights, infos, datas, n, meta) : VLM_ERR_FAIL;
    json_decref(meta);
    json_t *root = rc == VLM_OK ? text_config_to_json(&c->text) : NULL;
    if (root) {
        bool ola = c->ola.enabled, phi3 = c->text.fused_names;
        json_object_set_new(root, "model_type",
                            json_string(ola ? (phi3 ? "ola_phi3" : "ola_llama") : (phi3 ? "llava_phi3" : "llava_llama")));
        json_object_set_new(root, "architectures",
                            json_pack("[s]", ola ? (phi3 ? "OlaLlavaPhi3ForCausalLM" : "OlaLlavaLlamaForCausalLM")
                                                 : (phi3 ? "LlavaPhi3ForCausalLM" : "LlavaLlamaForCausalLM")));
        json_object_set_new(root, "mm_vision_tower", json_string(c->vision.tower));
        json_object_set_new(root, "mm_hidden_size", json_integer(c->vision.hidden));
        json_object_set_new(root, "mm_projector_type", json_string(c->projector == PROJECTOR_LINEAR ? "linear" : "mlp2x_gelu"));
        json_object_set_new(root, "mm_vision_select_layer", json_integer(c->feature_layer));
        json_object_set_new(root, "mm_vision_select_feature", json_string("patch"));
        json_object_set_new(root, "mm_patch_merge_type", json_string("flat"));
        json_object_set_new(root, "mm_use_im_start_end", json_false());
        json_object_set_new(root, "mm_use_im_patch_token", json_false());
        json_object_set_new(root, "torch_dtype", json_string("float32"));
        ola_config_to_json(&c->ola, root);
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
        rc = text ? atomic_write_text(config, text) : VLM_ERR_FAIL;
        free(text);
        json_decref(root);
    } else if (rc == VLM_OK) {
        rc = VLM_ERR_FAIL;
    }
    free(weights), free(config), free(infos), free(datas), free(names);
    return rc;
}

int llava_save_hf(const LlavaParams *p, const char *dir) {
    if (make_dirs(dir) != VLM_OK) return VLM_ERR_FAIL;
    if (p->cfg.vision.kind == VISION_CONVNEXT) return save_original(p, dir);
    bool linear = p->cfg.projector == PROJECTOR_LINEAR;
    int buffers = p->cfg.arch == ARCH_MPLUG_OWL2 ? owl2_buffer_count(&p->cfg) : 0;
    int n = p->n_specs + (linear ? 2 : 0) + buffers, H = p->cfg.text.hidden;
    TensorInfo *infos = vlm_calloc((size_t)n, sizeof(TensorInfo));
    const void **datas = vlm_calloc((size_t)n, sizeof(void *));
    float **owned = vlm_calloc((size_t)n, sizeof(float *));  // what is written from its own buffer
    char (*names)[200] = vlm_calloc((size_t)n, sizeof *names);
    // the linear projector's llava-hf form: linear_2 = identity, zero bias (see ProjectorType)
    float *identity = linear ? vlm_calloc((size_t)H * H + (size_t)H, sizeof(float)) : NULL;
    if (!infos || !datas || !owned || !names || (linear && !identity)) {
        free(infos), free(datas), free(identity), free(owned), free(names);
        return VLM_ERR_FAIL;
    }
    int rc = VLM_OK;
    if (linear) {
        for (int i = 0; i < H; i++) identity[(size_t)i * H + i] = 1.0f;
        infos[p->n_specs] = (TensorInfo){.name = (char *)"multi_modal_projector.linear_2.weight", .dtype = DT_F32, .ndim = 2,
                                         .shape = {H, H}};
        infos[p->n_specs + 1] = (TensorInfo){.name = (char *)"multi_modal_projector.linear_2.bias", .dtype = DT_F32, .ndim = 1,
                                             .shape = {H}};
        datas[p->n_specs] = identity, datas[p->n_specs + 1] = identity + (size_t)H * H;
        tensor_info_sizes(&infos[p->n_specs]), tensor_info_sizes(&infos[p->n_specs + 1]);
    }
    for (int i = 0; i < p->n_specs; i++) {
        const ParamSpec *s = &p->specs[i];
        infos[i].name = (char *)s->name;
        infos[i].dtype = DT_F32;
        infos[i].ndim = s->ndim;
        for (int d = 0; d < s->ndim; d++) infos[i].shape[d] = s->shape[d];
        tensor_info_sizes(&infos[i]);
        datas[i] = p->data + s->offset;
        if (s->qkv_heads) {  // back to the file's per-head interleaved rows
            if (!(owned[i] = vlm_malloc(sizeof(float) * s->numel))) rc = VLM_ERR_FAIL;
            else qkv_reorder(owned[i], p->data + s->offset, s, true), datas[i] = owned[i];
        }
    }
    int at = p->n_specs + (linear ? 2 : 0);
    if (rc == VLM_OK && buffers) rc = owl2_buffers(&p->cfg, infos + at, datas + at, owned + at, names + at);
    char *weights = path_join(dir, "model.safetensors"), *config = path_join(dir, "config.json");
    json_t *meta = json_pack("{s:s}", "format", "pt");
    if (rc == VLM_OK) rc = weights && config ? safetensors_write(weights, infos, datas, n, meta) : VLM_ERR_FAIL;
    json_decref(meta);
    if (rc == VLM_OK) {
        json_t *cj = llava_config_to_json(&p->cfg);
        char *text = json_dumps(cj, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(cj);
        rc = text ? atomic_write_text(config, text) : VLM_ERR_FAIL;
        free(text);
    }
    for (int i = 0; i < n; i++) free(owned[i]);
    free(weights), free(config), free(infos), free(datas), free(identity), free(owned), free(names);
    return rc;
}

int llava_save_mm_projector(const LlavaParams *p, const char *path, DType dtype) {
    // model.mm_projector.0 / .2 (mlp2x_gelu) or model.mm_projector (linear), in named_parameters' order
    TorchSaveTensor t[4];
    void *buf[4] = {NULL};
    char names[4][200];
    int n = 0, rc = VLM_OK;
    for (int i = 0; i < p->n_specs && rc == VLM_OK; i++) {
        const ParamSpec *s = &p->specs[i];
        if (s->module != MODULE_PROJECTOR) continue;
        char orig[MAX_SOURCES][200];
        original_names(&p->cfg, s->name, orig);
        snprintf(names[n], sizeof names[n], "%s", orig[0]);
        const float *src = p->data + s->offset;
        if (dtype == DT_F32) {
            buf[n] = NULL;
        } else if (!(buf[n] = vlm_malloc(s->numel * sizeof(uint16_t)))) {
            rc = VLM_ERR_FAIL;
            break;
        } else {
            uint16_t *h = buf[n];
            for (size_t j = 0; j < s->numel; j++) h[j] = dtype == DT_BF16 ? f32_to_bf16(src[j]) : f32_to_f16(src[j]);
        }
        t[n] = (TorchSaveTensor){.name = names[n], .dtype = dtype, .ndim = s->ndim, .data = buf[n] ? buf[n] : src};
        for (int d = 0; d < s->ndim; d++) t[n].shape[d] = s->shape[d];
        n++;
    }
    if (rc == VLM_OK) rc = torch_save(path, t, n);
    for (int i = 0; i < 4; i++) free(buf[i]);
    return rc;
}
