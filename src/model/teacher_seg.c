// OLA-VLM's seg teacher (model/teacher.h, OLA_SEG): OneFormer's Swin backbone
// on upstream's preprocessing (base_ola_vlm.py _get_seg_targets with
// oneformer_head.py OneFormerHead.forward_features), per image:
//   img.resize((768, 768))               Pillow's default filter, BICUBIC, on the RGB image
//   OneFormerProcessor(img, ["panoptic"]) its image processor: image/oneformer_preprocess.h
//   encoder(pixel_values).feature_maps[-1]  SwinBackbone (model/swin.h): the last output stage
//   F.interpolate(size=(24, 24), mode="bilinear", align_corners=False)  -> (C, 24, 24)
// The folder is what upstream's --image_segmentor names (shi-labs/oneformer_coco_swin_large,
// OneFormerForUniversalSegmentation's save_pretrained): config.json (its backbone_config),
// preprocessor_config.json, and the weights (pytorch_model.bin, model.safetensors, shards), of
// which only the backbone's tensors are read. Images run one at a time through activations sized
// for one (upstream loops over its images; at 800 px Swin-L's activations take about 0.5 GB per
// image), so a batch's targets are those of its images alone.
#include <stdio.h>   // snprintf
#include <stdlib.h>  // free
#include <string.h>  // memset, strcmp

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "image/oneformer_preprocess.h"
#include "kernels/interpolate.h"
#include "model/swin.h"
#include "model/teacher_seg.h"

typedef struct {
    uint8_t *pre, *proc;  // the image at pre x pre, then at the processor's size (HWC)
    ResizeScratch scratch;
    bool ready;  // prepared since the last forward
} SegSlot;

typedef struct {
    SwinConfig cfg;
    SwinWeights w;
    SwinActs a;
    OneFormerPreprocessor proc;
    int pre, side, px_w, px_h, max_batch;
    SegSlot *slots;
    float *pixels;  // (max_batch, 3, px_h, px_w)
} SegTeacher;

// OneFormerConfig's backbone when backbone_config is null: Swin-T at 224 with all four stages out
static json_t *default_backbone(void) {
    return json_pack("{s:s, s:i, s:i, s:[iiii], s:[iiii], s:i, s:[ssss]}", "model_type", "swin", "patch_size", 4,
                     "embed_dim", 96, "depths", 2, 2, 6, 2, "num_heads", 3, 6, 12, 24, "window_size", 7, "out_features",
                     "stage1", "stage2", "stage3", "stage4");
}

static int read_config(SwinConfig *c, const char *path) {
    json_error_t jerr;
    json_t *root = vlm_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return vlm_fail(VLM_ERR_INPUT, path, NULL, "line %d: %s", jerr.line, jerr.text);
    int rc = VLM_OK;
    const json_t *mt = json_object_get(root, "model_type"), *bb = json_object_get(root, "backbone");
    if (!json_is_string(mt) || strcmp(json_string_value(mt), "oneformer"))
        rc = vlm_fail(VLM_ERR_INPUT, path, "model_type", "'%s' is not a OneFormer config (oneformer)",
                      json_is_string(mt) ? json_string_value(mt) : "(none)");
    else if (json_is_true(json_object_get(root, "use_timm_backbone")))
        rc = vlm_fail(VLM_ERR_INPUT, path, "use_timm_backbone",
                      "a timm backbone is not supported (backbone_config swin is)");
    else if (bb && !json_is_null(bb))
        rc = vlm_fail(VLM_ERR_INPUT, path, "backbone",
                      "a backbone named by checkpoint ('%s') is not supported (backbone_config swin is)",
                      json_is_string(bb) ? json_string_value(bb) : "?");
    if (rc == VLM_OK) {
        const json_t *cfg = json_object_get(root, "backbone_config");
        if (cfg && !json_is_null(cfg)) {
            rc = swin_config_read(c, root, "backbone_config", path);
        } else {
            json_t *d = default_backbone();
            rc = d ? swin_config_read(c, d, NULL, path) : VLM_ERR_FAIL;
            json_decref(d);
        }
    }
    json_decref(root);
    return rc;
}

// the backbone's prefix: OneFormerForUniversalSegmentation's or OneFormerModel's
static int find_prefix(const Checkpoint *ck, const char **prefix) {
    static const char *const prefixes[] = {"model.pixel_level_module.encoder.", "pixel_level_module.encoder."};
    for (int i = 0; i < 2; i++) {
        char name[128];
        snprintf(name, sizeof name, "%sembeddings.norm.weight", prefixes[i]);
        if (checkpoint_find(ck, name) >= 0) return *prefix = prefixes[i], VLM_OK;
    }
    return vlm_fail(VLM_ERR_INPUT, ck->path, "model.pixel_level_module.encoder.embeddings.norm.weight",
                    "missing tensor: no OneFormer Swin backbone in this checkpoint");
}

static void free_sized(SegTeacher *s) {
    for (int i = 0; s->slots && i < s->max_batch; i++) {
        free(s->slots[i].pre), free(s->slots[i].proc);
        resize_scratch_free(&s->slots[i].scratch);
    }
    free(s->slots), free(s->pixels);
    swin_acts_free(&s->a);
    s->slots = NULL, s->pixels = NULL;
}

// what depends on the sizes: the slots' buffers, the pixels, the activations, the shape
static int setup_sizes(Teacher *t, int pre, int side) {
    SegTeacher *s = t->impl;
    free_sized(s);
    s->pre = pre, s->side = side;
    int rc = oneformer_output_size(&s->proc, pre, pre, &s->px_w, &s->px_h, t->path);
    if (rc != VLM_OK) return rc;
    size_t px = (size_t)3 * s->px_w * s->px_h;
    s->slots = vlm_calloc((size_t)s->max_batch, sizeof(SegSlot));
    s->pixels = vlm_alloc_aligned(sizeof(float) * px * s->max_batch);
    if (!s->slots || !s->pixels) return VLM_ERR_FAIL;
    for (int i = 0; i < s->max_batch; i++) {
        s->slots[i].pre = vlm_malloc((size_t)3 * pre * pre);
        s->slots[i].proc = vlm_malloc(px);
        if (!s->slots[i].pre || !s->slots[i].proc) return VLM_ERR_FAIL;
    }
    if ((rc = swin_acts_init(&s->a, &s->cfg, &s->w, s->px_h, s->px_w, 1, 1u << (s->cfg.out_stage - 1))) != VLM_OK)
        return vlm_fail_context(rc, "%s", t->path);
    t->ndim = 3;
    t->shape[0] = swin_dim(&s->cfg, s->cfg.out_stage - 1), t->shape[1] = t->shape[2] = side;
    return VLM_OK;
}

static int seg_prepare(Teacher *t, int slot, const Image *im, const char *name) {
    SegTeacher *s = t->impl;
    if (slot < 0 || slot >= s->max_batch)
        return vlm_fail(VLM_ERR_INPUT, name, NULL, "teacher slot %d outside its batch of %d", slot, s->max_batch);
    SegSlot *sl = &s->slots[slot];
    sl->ready = false;
    // upstream: img.resize((768, 768)), Pillow's default filter (BICUBIC)
    PaddedImage src = {
        .rgb = im->rgb, .width = im->width, .height = im->height, .canvas_w = im->width, .canvas_h = im->height};
    if (resize_window(&src, RESIZE_BICUBIC, s->pre, s->pre, 0, 0, s->pre, s->pre, sl->pre, &sl->scratch) != VLM_OK)
        return vlm_fail_context(VLM_ERR_INPUT, "%s", name);
    Image square = {.width = s->pre, .height = s->pre, .rgb = sl->pre};
    size_t px = (size_t)3 * s->px_w * s->px_h;
    int rc = oneformer_preprocess(&s->proc, &square, s->pixels + px * slot, sl->proc, &sl->scratch, name);
    sl->ready = rc == VLM_OK;
    return rc;
}

static int seg_forward(Teacher *t, int n, float *out) {
    SegTeacher *s = t->impl;
    if (n < 1 || n > s->max_batch)
        return vlm_fail(VLM_ERR_INPUT, t->path, NULL, "a batch of %d for a teacher of at most %d", n, s->max_batch);
    for (int i = 0; i < n; i++)
        if (!s->slots[i].ready)
            return vlm_fail(VLM_ERR_INPUT, t->path, NULL, "teacher slot %d holds no prepared image", i);
    size_t px = (size_t)3 * s->px_w * s->px_h, per = teacher_target_floats(t);
    int last = s->cfg.out_stage - 1;
    const SwinStageGeom *g = &s->a.g[last];
    for (int i = 0; i < n; i++) {
        swin_forward(&s->a, &s->cfg, &s->w, s->pixels + px * i, 1);
        bilinear_resize_forward(out + per * i, s->a.map[last], g->C, g->H, g->W, s->side, s->side);
        s->slots[i].ready = false;
    }
    return VLM_OK;
}

static void seg_close(Teacher *t) {
    SegTeacher *s = t->impl;
    if (!s) return;
    free_sized(s);
    swin_weights_free(&s->w);
    free(s);
}

static const TeacherOps SEG_OPS = {seg_prepare, seg_forward, seg_close};

int seg_teacher_open(Teacher *t, const char *path, int max_batch) {
    memset(t, 0, sizeof *t);
    t->task = OLA_SEG, t->max_batch = max_batch;
    snprintf(t->path, sizeof t->path, "%s", path);
    if (max_batch < 1)
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "a teacher's batch must be at least 1 (got %d)", max_batch);
    if (!dir_exists(path))
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "not a folder (a OneFormer save_pretrained folder is expected)");
    SegTeacher *s = vlm_calloc(1, sizeof *s);
    if (!s) return VLM_ERR_FAIL;
    s->max_batch = max_batch;
    t->impl = s, t->ops = &SEG_OPS;
    char *config = path_join(path, "config.json"), *pre = path_join(path, "preprocessor_config.json");
    int rc = config && pre ? VLM_OK : VLM_ERR_FAIL;
    if (rc == VLM_OK) rc = read_config(&s->cfg, config);
    if (rc == VLM_OK && !file_exists(pre))
        rc = vlm_fail(VLM_ERR_INPUT, pre, NULL, "missing (OneFormerProcessor.from_pretrained needs it)");
    if (rc == VLM_OK) rc = oneformer_preprocessor_load(&s->proc, pre);
    free(config), free(pre);
    Checkpoint ck;
    bool opened = false;
    const char *prefix = NULL;
    if (rc == VLM_OK) opened = (rc = checkpoint_open(&ck, path)) == VLM_OK;
    if (rc == VLM_OK) rc = find_prefix(&ck, &prefix);
    if (rc == VLM_OK) rc = swin_weights_load(&s->w, &s->cfg, &ck, prefix);
    if (opened) checkpoint_close(&ck);
    if (rc == VLM_OK) rc = setup_sizes(t, SEG_PRE_RESIZE, SEG_SIDE);
    if (rc != VLM_OK) {
        teacher_close(t);
        return rc;
    }
    const SwinConfig *c = &s->cfg;
    int n = snprintf(t->name, sizeof t->name, "OneFormer's Swin backbone (embed %d, window %d, depths", c->embed_dim,
                     c->window);
    for (int i = 0; i < c->stages && n > 0 && (size_t)n < sizeof t->name; i++)
        n += snprintf(t->name + n, sizeof t->name - n, "%s%d", i ? "-" : " ", c->depths[i]);
    if (n > 0 && (size_t)n < sizeof t->name) snprintf(t->name + n, sizeof t->name - n, ")");
    t->param_count = s->w.floats;
    return VLM_OK;
}

int seg_teacher_test_sizes(Teacher *t, int pre_resize, int side) {
    if (pre_resize < 1 || side < 1) return vlm_fail(VLM_ERR_INPUT, t->path, NULL, "sizes %d and %d", pre_resize, side);
    return setup_sizes(t, pre_resize, side);
}

const float *seg_teacher_pixels(const Teacher *t, int slot, int *h, int *w) {
    const SegTeacher *s = t->impl;
    *h = s->px_h, *w = s->px_w;
    return s->pixels + (size_t)3 * s->px_w * s->px_h * slot;
}
