// OLA-VLM's gen teacher (model/teacher.h): SD-2.1-unCLIP's image encoder, as
// upstream's _get_gen_feats runs it (base_ola_vlm.py, SHI-Labs/OLA-VLM 6032a6c):
//   clip_ims = pipe.feature_extractor(images=img).pixel_values   CLIPImageProcessor
//                (image/preprocess.h, exact): shortest edge, centre crop, CLIP mean / std
//   pipe.image_encoder(clip_ims).image_embeds                     CLIPVisionModelWithProjection:
//                CLIP's ViT (pre_layrnorm, layers with hidden_act "gelu": erf GELU for
//                OpenCLIP ViT-H/14), post_layernorm of the last layer's class token,
//                visual_projection (no bias): (projection_dim)
// From a StableUnCLIPImg2ImgPipeline folder (image_encoder/ + feature_extractor/) or an
// image_encoder folder alone (then CLIP's default preprocessing at its image_size). The
// weights: model.fp16.safetensors (or pytorch_model.fp16.bin) when the folder has it,
// what upstream's from_pretrained(..., variant="fp16") loads, else model.safetensors /
// pytorch_model.bin (sharded too); float32 in memory either way.
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "formats/checkpoint.h"
#include "image/preprocess.h"
#include "kernels/linear.h"
#include "kernels/norm.h"
#include "model/config_keys.h"
#include "model/teacher.h"
#include "model/teacher_vit.h"

typedef struct {
    VitTeacher m;
    int proj;                      // projection_dim
    float *post_w, *post_b;        // post_layernorm (C)
    float *proj_w;                 // visual_projection (proj, C)
    float *pooled;                 // (max_batch, C) the class tokens after post_layernorm
    Preprocessor pre;
    PreprocessScratch *scratch;    // one per slot (prepare runs on several threads)
} GenTeacher;

static void carve_head(VitTeacher *m, Carve *c, void *ctx) {
    GenTeacher *g = ctx;
    size_t C = m->v.hidden;
    g->post_w = carve(c, C), g->post_b = carve(c, C), g->proj_w = carve(c, (size_t)g->proj * C);
}

static int gen_prepare(Teacher *t, int slot, const Image *im, const char *name) {
    GenTeacher *g = t->impl;
    if (slot < 0 || slot >= t->max_batch)
        return vlm_fail(VLM_ERR_INPUT, name, NULL, "slot %d outside the teacher's batch of %d", slot, t->max_batch);
    size_t S = g->m.v.image_size;
    return image_preprocess(im, &g->pre, g->m.pixels + (size_t)slot * 3 * S * S, NULL, &g->scratch[slot], name);
}

static int gen_forward(Teacher *t, int n, float *out) {
    GenTeacher *g = t->impl;
    VitTeacher *m = &g->m;
    int C = m->v.hidden, T = vision_patches(&m->v) + 1;
    vit_teacher_embed(m, n);
    for (int l = 0; l < m->v.layers; l++) vit_teacher_layer(m, l, n);
    // pooled_output = post_layernorm(last_hidden_state[:, 0]); image_embeds = visual_projection(pooled)
    // image by image: a product's rows then never depend on the batch
    for (int b = 0; b < n; b++) {
        float *p = g->pooled + (size_t)b * C;
        layernorm_forward(p, m->mean, m->rstd, m->x + (size_t)b * T * C, g->post_w, g->post_b, 1, C, m->v.eps);
        linear_forward(out + (size_t)b * g->proj, p, g->proj_w, NULL, 1, C, g->proj);
    }
    return VLM_OK;
}

static void gen_close(Teacher *t) {
    GenTeacher *g = t->impl;
    if (!g) return;
    for (int s = 0; g->scratch && s < t->max_batch; s++) preprocess_scratch_free(&g->scratch[s]);
    free(g->scratch);
    free(g->pooled);
    vit_teacher_free(&g->m);
    free(g);
}

static const TeacherOps GEN_OPS = {gen_prepare, gen_forward, gen_close};

// image_encoder/config.json: a CLIPVisionConfig (CLIPVisionModelWithProjection's), either activation.
static int read_config(const char *dir, VisionConfig *v, int *proj) {
    char *path = path_join(dir, "config.json");
    if (!path) return VLM_ERR_FAIL;
    json_error_t jerr;
    json_t *root = vlm_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    int rc = root ? VLM_OK : vlm_fail(VLM_ERR_INPUT, path, NULL, "line %d: %s", jerr.line, jerr.text);
    // CLIPVisionConfig's defaults; the activation is whichever of the two the file names
    VisionConfig d = {.hidden = 768, .intermediate = 3072, .layers = 12, .heads = 12, .image_size = 224, .patch = 32,
                      .eps = 1e-5f};
    const char *act = root ? json_string_value(json_object_get(root, "hidden_act")) : NULL;
    d.gelu = act && strcmp(act, "gelu") == 0;
    if (!rc) rc = vision_config_read(v, &d, root, NULL, path);
    long long x = 512, ch = 3;
    if (!rc) rc = vlm_json_get_int(root, "projection_dim", VLM_JSON_OPTIONAL, 512, 1, 1 << 18, &x, path, NULL);
    if (!rc) rc = vlm_json_get_int(root, "num_channels", VLM_JSON_OPTIONAL, 3, 1, 1024, &ch, path, NULL);
    if (!rc && ch != 3) rc = vlm_fail(VLM_ERR_INPUT, path, "num_channels", "%lld: only RGB (3) is supported", ch);
    *proj = (int)x;
    json_decref(root);
    free(path);
    return rc;
}

// The weights upstream loads: the fp16 variant when present.
static int open_weights(Checkpoint *ck, const char *dir) {
    static const char *const variants[] = {"model.fp16.safetensors", "pytorch_model.fp16.bin"};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        char *f = path_join(dir, variants[i]);
        if (!f) return VLM_ERR_FAIL;
        bool have = file_exists(f);
        int rc = have ? checkpoint_open(ck, f) : VLM_OK;
        free(f);
        if (have) return rc;
    }
    return checkpoint_open(ck, dir);
}

static int load_weights(GenTeacher *g, Checkpoint *ck, const char *path) {
    VitTeacher *m = &g->m;
    const VisionConfig *v = &m->v;
    int64_t C = v->hidden, I = v->intermediate, P = v->patch, T = vision_patches(v) + 1;
    const char *e = "vision_model.embeddings.";
    char n[200];
#define READ(dst, ndim, ...) \
    (rc ? rc : checkpoint_read_f32_shaped(ck, n, path, (ndim), (int64_t[]){__VA_ARGS__}, (dst)))
    int rc = VLM_OK;
    snprintf(n, sizeof n, "%sclass_embedding", e), rc = READ(m->cls, 1, C);
    snprintf(n, sizeof n, "%spatch_embedding.weight", e), rc = READ(m->patch_w, 4, C, 3, P, P);
    snprintf(n, sizeof n, "%sposition_embedding.weight", e), rc = READ(m->pos, 2, T, C);
    snprintf(n, sizeof n, "vision_model.pre_layrnorm.weight"), rc = READ(m->pre_ln_w, 1, C);
    snprintf(n, sizeof n, "vision_model.pre_layrnorm.bias"), rc = READ(m->pre_ln_b, 1, C);
    snprintf(n, sizeof n, "vision_model.post_layernorm.weight"), rc = READ(g->post_w, 1, C);
    snprintf(n, sizeof n, "vision_model.post_layernorm.bias"), rc = READ(g->post_b, 1, C);
    snprintf(n, sizeof n, "visual_projection.weight"), rc = READ(g->proj_w, 2, (int64_t)g->proj, C);
    for (int l = 0; l < v->layers && !rc; l++) {
        ClipLayerWeights *W = &m->layers[l];
        struct { const char *name; float *dst; int ndim; int64_t d0, d1; } t[] = {
            {"layer_norm1.weight", W->ln1_w, 1, C, 0}, {"layer_norm1.bias", W->ln1_b, 1, C, 0},
            {"self_attn.q_proj.weight", W->q_w, 2, C, C}, {"self_attn.q_proj.bias", W->q_b, 1, C, 0},
            {"self_attn.k_proj.weight", W->k_w, 2, C, C}, {"self_attn.k_proj.bias", W->k_b, 1, C, 0},
            {"self_attn.v_proj.weight", W->v_w, 2, C, C}, {"self_attn.v_proj.bias", W->v_b, 1, C, 0},
            {"self_attn.out_proj.weight", W->o_w, 2, C, C}, {"self_attn.out_proj.bias", W->o_b, 1, C, 0},
            {"layer_norm2.weight", W->ln2_w, 1, C, 0}, {"layer_norm2.bias", W->ln2_b, 1, C, 0},
            {"mlp.fc1.weight", W->fc1_w, 2, I, C}, {"mlp.fc1.bias", W->fc1_b, 1, I, 0},
            {"mlp.fc2.weight", W->fc2_w, 2, C, I}, {"mlp.fc2.bias", W->fc2_b, 1, C, 0}};
        for (size_t i = 0; i < sizeof t / sizeof t[0] && !rc; i++) {
            snprintf(n, sizeof n, "vision_model.encoder.layers.%d.%s", l, t[i].name);
            rc = READ(t[i].dst, t[i].ndim, t[i].d0, t[i].d1);
        }
    }
#undef READ
    return rc;
}

int gen_teacher_open(Teacher *t, const char *path, int max_batch) {
    t->task = OLA_GEN, t->max_batch = max_batch;
    snprintf(t->path, sizeof t->path, "%s", path);
    if (max_batch < 1)
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "a teacher's batch must be at least 1 (got %d)", max_batch);
    if (!dir_exists(path))
        return vlm_fail(VLM_ERR_INPUT, path, NULL,
                        "not a folder (a StableUnCLIPImg2ImgPipeline folder or its image_encoder folder)");
    // a pipeline folder: image_encoder/ with feature_extractor/; else the image encoder itself
    char *sub = path_join(path, "image_encoder");
    char *fe = path_join(path, "feature_extractor/preprocessor_config.json");
    if (!sub || !fe) {
        free(sub), free(fe);
        return VLM_ERR_FAIL;
    }
    bool pipeline = dir_exists(sub);
    const char *enc = pipeline ? sub : path;
    VisionConfig v;
    int proj = 0;
    int rc = read_config(enc, &v, &proj);
    GenTeacher *g = rc ? NULL : vlm_calloc(1, sizeof *g);
    if (!rc && !g) rc = VLM_ERR_FAIL;
    if (!rc) {
        if (pipeline && !file_exists(fe))
            rc = vlm_fail(VLM_ERR_INPUT, fe, NULL, "missing: the pipeline's feature_extractor (CLIPImageProcessor)");
        else if (pipeline) rc = preprocessor_load(&g->pre, fe);
        else preprocessor_default(&g->pre, v.image_size);
    }
    if (!rc && (g->pre.crop_h != v.image_size || g->pre.crop_w != v.image_size))
        rc = vlm_fail(VLM_ERR_INPUT, fe, "crop_size", "%d x %d, but the image encoder's image_size is %d",
                      g->pre.crop_w, g->pre.crop_h, v.image_size);
    if (!rc) {
        g->proj = proj;
        t->impl = g, t->ops = &GEN_OPS;  // from here close frees what was made
        rc = vit_teacher_alloc(&g->m, &v, max_batch, carve_head, g, enc);
    } else {
        free(g);
    }
    Checkpoint ck;
    if (!rc) {
        rc = open_weights(&ck, enc);
        if (rc) rc = vlm_fail_context(rc, "the gen teacher's image encoder");
        else {
            rc = load_weights(g, &ck, ck.n_shards == 1 ? ck.shard_paths[0] : ck.path);
            checkpoint_close(&ck);
        }
    }
    if (!rc) {
        g->pooled = vlm_malloc(sizeof(float) * (size_t)max_batch * v.hidden);
        g->scratch = vlm_calloc((size_t)max_batch, sizeof(PreprocessScratch));
        if (!g->pooled || !g->scratch) rc = VLM_ERR_FAIL;
    }
    free(sub), free(fe);
    if (rc) {
        teacher_close(t);
        return rc;
    }
    snprintf(t->name, sizeof t->name, "SD-2.1-unCLIP image encoder (CLIP ViT %d x %d, patch %d, %s)", v.layers,
             v.hidden, v.patch, v.gelu ? "gelu" : "quick_gelu");
    t->ndim = 1, t->shape[0] = proj, t->shape[1] = t->shape[2] = 0;
    t->param_count = g->m.n_params;
    return VLM_OK;
}
