// OLA-VLM's depth teacher (model/teacher.h): Depth-Anything-v2's DINOv2 encoder,
// as upstream's _get_dav2_feats runs it (base_ola_vlm.py, SHI-Labs/OLA-VLM
// 6032a6c; aux_heads/depth_anything_v2/{dpt,dinov2}.py, util/transform.py):
//   img.resize((336, 336))      Pillow's default BICUBIC (image/resize.h, exact)
//   np.array -> infer_image(img, is_dsg=True) -> image2tensor:
//     cv2.cvtColor(raw, COLOR_BGR2RGB) / 255.0   the array is RGB already, so this SWAPS
//                                 the channels: the network sees B, G, R (upstream's quirk,
//                                 reproduced), then float64
//     Resize(336, keep_aspect_ratio, multiple of 14, lower_bound, INTER_CUBIC)   at 336 x 336
//                                 the size is unchanged and cv2.resize copies (the fixture
//                                 records it), so nothing to do
//     NormalizeImage(ImageNet mean / std) in float64, PrepareForNet: float32, CHW
//   DINOv2: patch conv (with bias), [cls; patches] + positions (the 37 x 37 grid of
//   img_size 518 interpolated bicubic to 24 x 24 with scale_factor (24 + 0.1) / 37, the
//   class position kept: interpolate_pos_encoding), blocks norm1 -> attn -> ls1 -> +,
//   norm2 -> mlp (GELU) -> ls2 -> +, LayerNorm eps 1e-6;
//   get_intermediate_layers(x, [4, 11, 17, 23] (vitl; vits / vitb [2, 5, 8, 11]),
//   return_class_token=True): the final norm on those blocks' outputs, class token dropped;
//   the target (f0 + f1 + f2 + f3) / 4: (576, C).
// From depth_anything_v2_vitl.pth (torch.save of DepthAnythingV2's state_dict:
// pretrained.* read, depth_head.* ignored) or a transformers Depth-Anything folder
// (DepthAnythingForDepthEstimation: backbone.*, its backbone_config's out_indices).
#include "model/teacher_depth.h"

#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "formats/checkpoint.h"
#include "image/resize.h"
#include "kernels/bicubic.h"
#include "kernels/norm.h"
#include "model/teacher_vit.h"

#define SIDE DEPTH_TEACHER_SIDE
#define TAKEN 4  // blocks averaged

// Where each tensor sits in the two layouts ("%d": the block).
typedef struct {
    const char *cls, *pos, *mask, *patch_w, *patch_b, *norm_w, *norm_b, *block, *registers, *swiglu;
    const char *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b, *ls1, *ln2_w, *ln2_b, *fc1_w, *fc1_b,
        *fc2_w, *fc2_b, *ls2;
    bool fused_qkv;  // one qkv tensor (q_w / q_b name it), or query / key / value
} DepthNames;

static const DepthNames PTH = {
    .cls = "pretrained.cls_token", .pos = "pretrained.pos_embed", .mask = "pretrained.mask_token",
    .patch_w = "pretrained.patch_embed.proj.weight", .patch_b = "pretrained.patch_embed.proj.bias",
    .norm_w = "pretrained.norm.weight", .norm_b = "pretrained.norm.bias", .block = "pretrained.blocks.%d.",
    .registers = "pretrained.register_tokens", .swiglu = "mlp.w12.weight",
    .ln1_w = "norm1.weight", .ln1_b = "norm1.bias", .q_w = "attn.qkv.weight", .q_b = "attn.qkv.bias",
    .o_w = "attn.proj.weight", .o_b = "attn.proj.bias", .ls1 = "ls1.gamma", .ln2_w = "norm2.weight",
    .ln2_b = "norm2.bias", .fc1_w = "mlp.fc1.weight", .fc1_b = "mlp.fc1.bias", .fc2_w = "mlp.fc2.weight",
    .fc2_b = "mlp.fc2.bias", .ls2 = "ls2.gamma", .fused_qkv = true};

static const DepthNames HF = {
    .cls = "backbone.embeddings.cls_token", .pos = "backbone.embeddings.position_embeddings",
    .mask = "backbone.embeddings.mask_token", .patch_w = "backbone.embeddings.patch_embeddings.projection.weight",
    .patch_b = "backbone.embeddings.patch_embeddings.projection.bias", .norm_w = "backbone.layernorm.weight",
    .norm_b = "backbone.layernorm.bias", .block = "backbone.encoder.layer.%d.",
    .registers = "backbone.embeddings.register_tokens", .swiglu = "mlp.weights_in.weight",
    .ln1_w = "norm1.weight", .ln1_b = "norm1.bias", .q_w = "attention.attention.query.weight",
    .q_b = "attention.attention.query.bias", .k_w = "attention.attention.key.weight",
    .k_b = "attention.attention.key.bias", .v_w = "attention.attention.value.weight",
    .v_b = "attention.attention.value.bias", .o_w = "attention.output.dense.weight",
    .o_b = "attention.output.dense.bias", .ls1 = "layer_scale1.lambda1", .ln2_w = "norm2.weight",
    .ln2_b = "norm2.bias", .fc1_w = "mlp.fc1.weight", .fc1_b = "mlp.fc1.bias", .fc2_w = "mlp.fc2.weight",
    .fc2_b = "mlp.fc2.bias", .ls2 = "layer_scale2.lambda1", .fused_qkv = false};

typedef struct {
    VitTeacher m;
    int taken[TAKEN];              // blocks whose normed outputs are averaged, ascending
    int grid0;                     // the stored position grid's side (37 for img_size 518)
    float *norm_w, *norm_b;        // the final norm
    uint8_t *resized;              // (max_batch, SIDE, SIDE, 3): each slot's Pillow resize
    ResizeScratch *scratch;        // one per slot (prepare runs on several threads)
    float lut[3][256];             // network channel c of byte value v (after the swap)
} DepthTeacher;

static void carve_norm(VitTeacher *m, Carve *c, void *ctx) {
    DepthTeacher *d = ctx;
    d->norm_w = carve(c, (size_t)m->v.hidden), d->norm_b = carve(c, (size_t)m->v.hidden);
}

// ---- prepare: Pillow's resize, then image2tensor

static int depth_prepare(Teacher *t, int slot, const Image *im, const char *name) {
    DepthTeacher *d = t->impl;
    if (slot < 0 || slot >= t->max_batch)
        return vlm_fail(VLM_ERR_INPUT, name, NULL, "slot %d outside the teacher's batch of %d", slot, t->max_batch);
    uint8_t *u8 = d->resized + (size_t)slot * SIDE * SIDE * 3;
    PaddedImage src = {.rgb = im->rgb, .width = im->width, .height = im->height, .canvas_w = im->width,
                       .canvas_h = im->height};
    if (resize_bicubic_window(&src, SIDE, SIDE, 0, 0, SIDE, SIDE, u8, &d->scratch[slot]) != VLM_OK)
        return vlm_fail_context(VLM_ERR_INPUT, "%s", name);
    float *px = d->m.pixels + (size_t)slot * 3 * SIDE * SIDE;
    size_t n = (size_t)SIDE * SIDE;
    // network channel c is the array's channel 2 - c (cvtColor BGR2RGB on an RGB array)
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < n; i++) px[c * n + i] = d->lut[c][u8[3 * i + 2 - c]];
    return VLM_OK;
}

// ---- forward

static int depth_forward(Teacher *t, int n, float *out) {
    DepthTeacher *d = t->impl;
    VitTeacher *m = &d->m;
    int C = m->v.hidden, NP = vision_patches(&m->v), T = NP + 1, N = n * T;
    vit_teacher_embed(m, n);
    for (int l = 0, k = 0; k < TAKEN; l++) {
        vit_teacher_layer(m, l, n);
        if (l != d->taken[k]) continue;
        // the final norm on this block's output (tmp is free between layers), patch rows summed in order
        layernorm_forward(m->tmp, m->mean, m->rstd, m->x, d->norm_w, d->norm_b, N, C, m->v.eps);
#pragma omp parallel for
        for (int b = 0; b < n; b++) {
            float *o = out + (size_t)b * NP * C;
            const float *f = m->tmp + ((size_t)b * T + 1) * C;
            for (size_t i = 0; i < (size_t)NP * C; i++) o[i] = k == 0 ? f[i] : o[i] + f[i];
        }
        k++;
    }
    size_t total = (size_t)n * NP * C;
#pragma omp parallel for
    for (size_t i = 0; i < total; i++) out[i] /= (float)TAKEN;
    return VLM_OK;
}

static void depth_close(Teacher *t) {
    DepthTeacher *d = t->impl;
    if (!d) return;
    for (int s = 0; d->scratch && s < t->max_batch; s++) resize_scratch_free(&d->scratch[s]);
    free(d->scratch);
    free(d->resized);
    vit_teacher_free(&d->m);
    free(d);
}

static const TeacherOps DEPTH_OPS = {depth_prepare, depth_forward, depth_close};

// ---- open

// "%d" of fmt with l, then name.
static const char *block_name(char *buf, size_t size, const DepthNames *nm, int l, const char *name) {
    int k = snprintf(buf, size, nm->block, l);
    snprintf(buf + k, size - (size_t)k, "%s", name);
    return buf;
}

// The sizes the weights say: width, blocks, MLP width, patch and the position grid.
static int infer_sizes(Checkpoint *ck, const char *path, const DepthNames *nm, VisionConfig *v, int *grid0) {
    char n[160];
    const TensorInfo *cls = vit_teacher_info(ck, nm->cls), *pos = vit_teacher_info(ck, nm->pos);
    const TensorInfo *pw = vit_teacher_info(ck, nm->patch_w);
    const TensorInfo *fc1 = vit_teacher_info(ck, block_name(n, sizeof n, nm, 0, nm->fc1_w));
    if (!cls) return vlm_fail(VLM_ERR_INPUT, path, nm->cls, "missing tensor (not a Depth-Anything-v2 checkpoint?)");
    if (cls->ndim != 3 || cls->shape[0] != 1 || cls->shape[1] != 1 || cls->shape[2] < 1 || cls->shape[2] > (1 << 16))
        return vlm_fail(VLM_ERR_INPUT, path, nm->cls, "expected [1, 1, width]");
    int C = (int)cls->shape[2];
    if (vit_teacher_info(ck, block_name(n, sizeof n, nm, 0, nm->swiglu)))
        return vlm_fail(VLM_ERR_INPUT, path, n,
                        "a SwiGLU FFN (Depth-Anything-v2 vitg): not supported (vits, vitb and vitl are)");
    if (vit_teacher_info(ck, nm->registers))
        return vlm_fail(VLM_ERR_INPUT, path, nm->registers,
                        "register tokens: not supported (Depth-Anything-v2 has none)");
    if (!pw) return vlm_fail(VLM_ERR_INPUT, path, nm->patch_w, "missing tensor");
    if (pw->ndim != 4 || pw->shape[0] != C || pw->shape[1] != 3 || pw->shape[2] != pw->shape[3] || pw->shape[2] < 1 ||
        SIDE % pw->shape[2])
        return vlm_fail(VLM_ERR_INPUT, path, nm->patch_w, "expected [%d, 3, P, P] with %d a multiple of P", C, SIDE);
    block_name(n, sizeof n, nm, 0, nm->fc1_w);
    if (!fc1) return vlm_fail(VLM_ERR_INPUT, path, n, "missing tensor");
    if (fc1->ndim != 2 || fc1->shape[1] != C || fc1->shape[0] < 1 || fc1->shape[0] > (1 << 18))
        return vlm_fail(VLM_ERR_INPUT, path, n, "expected [mlp width, %d]", C);
    if (!pos) return vlm_fail(VLM_ERR_INPUT, path, nm->pos, "missing tensor");
    int64_t np0 = pos->ndim == 3 ? pos->shape[1] - 1 : -1, g = (int64_t)llround(sqrt((double)(np0 > 0 ? np0 : 0)));
    if (pos->ndim != 3 || pos->shape[0] != 1 || pos->shape[2] != C || np0 < 1 || g * g != np0)
        return vlm_fail(VLM_ERR_INPUT, path, nm->pos, "expected [1, 1 + G * G, %d]", C);
    int layers = 0;
    while (layers < 1024 && vit_teacher_info(ck, block_name(n, sizeof n, nm, layers, nm->ln1_w))) layers++;
    if (!layers) return vlm_fail(VLM_ERR_INPUT, path, block_name(n, sizeof n, nm, 0, nm->ln1_w), "missing tensor");
    memset(v, 0, sizeof *v);
    v->hidden = C, v->intermediate = (int)fc1->shape[0], v->layers = layers, v->patch = (int)pw->shape[2];
    v->image_size = SIDE, v->eps = 1e-6f;  // DINOv2's norm_layer: partial(nn.LayerNorm, eps=1e-6)
    v->gelu = v->layer_scale = v->patch_bias = v->skip_pre_norm = true;
    *grid0 = (int)g;
    return VLM_OK;
}

// A transformers folder's backbone_config: heads, eps and the blocks taken (out_indices - 1).
static int read_hf_config(const char *dir, VisionConfig *v, int *heads, int taken[TAKEN]) {
    char *path = path_join(dir, "config.json");
    if (!path) return VLM_ERR_FAIL;
    json_error_t jerr;
    json_t *root = vlm_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    int rc = root ? VLM_OK : vlm_fail(VLM_ERR_INPUT, path, NULL, "line %d: %s", jerr.line, jerr.text);
    const char *type = root ? json_string_value(json_object_get(root, "model_type")) : NULL;
    json_t *bb = root ? json_object_get(root, "backbone_config") : NULL;
    if (!rc && (!type || strcmp(type, "depth_anything") != 0))
        rc = vlm_fail(VLM_ERR_INPUT, path, "model_type", "'%s': not a Depth-Anything config (depth_anything)",
                      type ? type : "");
    if (!rc && !json_is_object(bb))
        rc = vlm_fail(VLM_ERR_INPUT, path, "backbone_config", "missing (the DINOv2 backbone's config)");
    const char *act = bb ? json_string_value(json_object_get(bb, "hidden_act")) : NULL;
    if (!rc && act && strcmp(act, "gelu") != 0)
        rc = vlm_fail(VLM_ERR_INPUT, path, "backbone_config.hidden_act", "'%s' is not supported (gelu is)", act);
    json_t *sw = json_object_get(bb, "use_swiglu_ffn"), *ln = json_object_get(bb, "apply_layernorm");
    if (!rc && json_is_true(sw))
        rc = vlm_fail(VLM_ERR_INPUT, path, "backbone_config.use_swiglu_ffn", "a SwiGLU FFN (vitg): not supported");
    if (!rc && ln && !json_is_true(ln))
        rc = vlm_fail(VLM_ERR_INPUT, path, "backbone_config.apply_layernorm",
                      "false is not supported (upstream norms every block it takes)");
    long long x;
    // the sizes the weights have must be the config's (Dinov2Config's defaults when absent)
    const char *keys[] = {"hidden_size", "num_hidden_layers"};
    const int have[] = {v->hidden, v->layers}, dflt[] = {768, 12};
    char key[64];
    for (int i = 0; i < 2 && !rc; i++) {
        snprintf(key, sizeof key, "backbone_config.%s", keys[i]);
        rc = vlm_json_get_int(bb, keys[i], VLM_JSON_OPTIONAL, dflt[i], 1, 1 << 20, &x, path, key);
        if (!rc && x != have[i]) rc = vlm_fail(VLM_ERR_INPUT, path, key, "%lld, but the weights have %d", x, have[i]);
    }
    if (!rc)
        rc = vlm_json_get_int(bb, "num_attention_heads", VLM_JSON_OPTIONAL, 12, 1, 1024, &x, path,
                              "backbone_config.num_attention_heads");
    *heads = (int)x;
    double eps = 1e-6;
    if (!rc)
        rc = vlm_json_get_real(bb, "layer_norm_eps", VLM_JSON_OPTIONAL, 1e-6, &eps, path,
                               "backbone_config.layer_norm_eps");
    if (!rc && !(eps > 0 && eps < 1))
        rc = vlm_fail(VLM_ERR_INPUT, path, "backbone_config.layer_norm_eps", "%g must be in (0, 1)", eps);
    v->eps = (float)eps;
    // the stages taken: out_indices, or out_features' "stageN" (transformers keeps them aligned)
    json_t *oi = json_object_get(bb, "out_indices"), *of = json_object_get(bb, "out_features");
    bool by_index = json_is_array(oi) || !json_is_array(of);
    const char *which = by_index ? "backbone_config.out_indices" : "backbone_config.out_features";
    json_t *list = by_index ? oi : of;
    if (!rc && (!json_is_array(list) || json_array_size(list) != TAKEN))
        rc = vlm_fail(VLM_ERR_INPUT, path, which,
                      "expected %d stages (upstream averages four blocks)", TAKEN);
    for (int k = 0; k < TAKEN && !rc; k++) {
        json_t *e = json_array_get(list, (size_t)k);
        const char *name = json_string_value(e);
        long long s = json_is_integer(e) ? json_integer_value(e) : -1;
        if (name && !strncmp(name, "stage", 5) && name[5] >= '1' && name[5] <= '9') s = strtol(name + 5, NULL, 10);
        if (s < 1 || s > v->layers || (k && s - 1 <= taken[k - 1]))
            rc = vlm_fail(VLM_ERR_INPUT, path, which, "expected ascending stages in 1..%d (stage i: block i's output)", v->layers);
        else taken[k] = (int)s - 1;
    }
    json_decref(root);
    free(path);
    return rc;
}

// The blocks upstream takes for the checkpoint's size (DepthAnythingV2.intermediate_layer_idx).
static int pth_taken(const VisionConfig *v, const char *path, int taken[TAKEN]) {
    static const int small[TAKEN] = {2, 5, 8, 11}, large[TAKEN] = {4, 11, 17, 23};
    if (v->layers == 40)
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "40 blocks: Depth-Anything-v2 vitg (SwiGLU FFN) is not supported");
    if (v->layers != 12 && v->layers != 24)
        return vlm_fail(VLM_ERR_INPUT, path, NULL,
                        "%d blocks: not a Depth-Anything-v2 size (vits / vitb have 12, vitl 24)", v->layers);
    memcpy(taken, v->layers == 12 ? small : large, sizeof small);
    return VLM_OK;
}

static int load_weights(DepthTeacher *d, Checkpoint *ck, const char *path, const DepthNames *nm) {
    VitTeacher *m = &d->m;
    const VisionConfig *v = &m->v;
    int64_t C = v->hidden, I = v->intermediate, P = v->patch, G0 = d->grid0, T0 = G0 * G0 + 1;
    char n[160];
    int rc = checkpoint_read_f32_shaped(ck, nm->cls, path, 3, (int64_t[]){1, 1, C}, m->cls);
    if (!rc) rc = checkpoint_read_f32_shaped(ck, nm->patch_w, path, 4, (int64_t[]){C, 3, P, P}, m->patch_w);
    if (!rc) rc = checkpoint_read_f32_shaped(ck, nm->patch_b, path, 1, (int64_t[]){C}, m->patch_b);
    if (!rc) rc = checkpoint_read_f32_shaped(ck, nm->norm_w, path, 1, (int64_t[]){C}, d->norm_w);
    if (!rc) rc = checkpoint_read_f32_shaped(ck, nm->norm_b, path, 1, (int64_t[]){C}, d->norm_b);
    for (int l = 0; l < v->layers && !rc; l++) {
        ClipLayerWeights *W = &m->layers[l];
        struct { const char *name; float *dst; int ndim; int64_t d0, d1; } t[] = {
            {nm->ln1_w, W->ln1_w, 1, C, 0}, {nm->ln1_b, W->ln1_b, 1, C, 0},
            {nm->q_w, W->q_w, 2, nm->fused_qkv ? 3 * C : C, C}, {nm->q_b, W->q_b, 1, nm->fused_qkv ? 3 * C : C, 0},
            {nm->k_w, W->k_w, 2, C, C}, {nm->k_b, W->k_b, 1, C, 0},
            {nm->v_w, W->v_w, 2, C, C}, {nm->v_b, W->v_b, 1, C, 0},
            {nm->o_w, W->o_w, 2, C, C}, {nm->o_b, W->o_b, 1, C, 0}, {nm->ls1, W->ls1, 1, C, 0},
            {nm->ln2_w, W->ln2_w, 1, C, 0}, {nm->ln2_b, W->ln2_b, 1, C, 0}, {nm->fc1_w, W->fc1_w, 2, I, C},
            {nm->fc1_b, W->fc1_b, 1, I, 0}, {nm->fc2_w, W->fc2_w, 2, C, I}, {nm->fc2_b, W->fc2_b, 1, C, 0},
            {nm->ls2, W->ls2, 1, C, 0}};
        for (size_t i = 0; i < sizeof t / sizeof t[0] && !rc; i++)
            if (t[i].name)  // fused: qkv names q's slot, k and v have none
                rc = checkpoint_read_f32_shaped(ck, block_name(n, sizeof n, nm, l, t[i].name), path, t[i].ndim, (int64_t[]){t[i].d0, t[i].d1}, t[i].dst);
    }
    if (rc) return rc;
    // positions: the stored grid, interpolated to the input's unless it is that grid already
    float *pos0 = vlm_malloc(sizeof(float) * (size_t)(T0 * C));
    if (!pos0) return VLM_ERR_FAIL;
    rc = checkpoint_read_f32_shaped(ck, nm->pos, path, 3, (int64_t[]){1, T0, C}, pos0);
    int G = SIDE / v->patch;
    if (!rc) {
        memcpy(m->pos, pos0, sizeof(float) * (size_t)C);  // the class position
        if (G0 == G) memcpy(m->pos + C, pos0 + C, sizeof(float) * (size_t)(G * G * C));
        else {
            // interpolate_pos_encoding: scale_factor (G + 0.1) / sqrt(N) (interpolate_offset 0.1)
            double scale = ((double)G + 0.1) / sqrt((double)(G0 * G0));
            bicubic_resize_forward(m->pos + C, pos0 + C, (int)G0, (int)G0, (int)C, G, G, scale, scale);
        }
    }
    free(pos0);
    return rc;
}

int depth_teacher_open_heads(Teacher *t, const char *path, int max_batch, int heads) {
    t->task = OLA_DEPTH, t->max_batch = max_batch;
    snprintf(t->path, sizeof t->path, "%s", path);
    if (max_batch < 1)
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "a teacher's batch must be at least 1 (got %d)", max_batch);
    bool folder = dir_exists(path);
    const DepthNames *nm = folder ? &HF : &PTH;
    Checkpoint ck;
    int rc = checkpoint_open(&ck, path);
    if (rc) return vlm_fail_context(rc, "the depth teacher (Depth-Anything-v2)");
    VisionConfig v;
    int grid0 = 0, taken[TAKEN];
    rc = infer_sizes(&ck, path, nm, &v, &grid0);
    if (!rc && folder) rc = read_hf_config(path, &v, &heads, taken);
    if (!rc && !folder) rc = pth_taken(&v, path, taken);
    if (!rc && heads <= 0) {  // DINOv2's head size is 64 in every size
        if (v.hidden % 64)
            rc = vlm_fail(VLM_ERR_INPUT, path, nm->cls,
                          "width %d is not a multiple of 64, DINOv2's head size (vits 384, vitb 768, vitl 1024)",
                          v.hidden);
        heads = v.hidden / 64;
    }
    if (!rc && v.hidden % heads)
        rc = vlm_fail(VLM_ERR_INPUT, path, nm->cls, "width %d is not a multiple of the %d heads", v.hidden, heads);
    v.heads = heads;
    DepthTeacher *d = rc ? NULL : vlm_calloc(1, sizeof *d);
    if (!rc && !d) rc = VLM_ERR_FAIL;
    if (!rc) {
        memcpy(d->taken, taken, sizeof taken);
        d->grid0 = grid0;
        t->impl = d, t->ops = &DEPTH_OPS;  // from here close frees what was made
        rc = vit_teacher_alloc(&d->m, &v, max_batch, carve_norm, d, path);
    }
    if (!rc) rc = load_weights(d, &ck, path, nm);
    checkpoint_close(&ck);
    if (!rc) {
        d->resized = vlm_malloc((size_t)max_batch * SIDE * SIDE * 3);
        d->scratch = vlm_calloc((size_t)max_batch, sizeof(ResizeScratch));
        if (!d->resized || !d->scratch) rc = VLM_ERR_FAIL;
    }
    if (rc) {
        teacher_close(t);
        return rc;
    }
    // NormalizeImage in float64 on x / 255.0, then float32
    static const double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};
    for (int c = 0; c < 3; c++)
        for (int x = 0; x < 256; x++) d->lut[c][x] = (float)(((double)x / 255.0 - mean[c]) / std[c]);
    int G = SIDE / v.patch;
    snprintf(t->name, sizeof t->name, "Depth-Anything-v2 (DINOv2 ViT %d x %d, %d heads, patch %d)", v.layers, v.hidden,
             v.heads, v.patch);
    t->ndim = 2, t->shape[0] = (int64_t)G * G, t->shape[1] = v.hidden, t->shape[2] = 0;
    t->param_count = d->m.n_params;
    return VLM_OK;
}

int depth_teacher_open(Teacher *t, const char *path, int max_batch) {
    return depth_teacher_open_heads(t, path, max_batch, 0);
}
