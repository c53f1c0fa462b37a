// The ConvNeXt tower's name, folder and vision config, see convnext_config.h.
#include "model/convnext_config.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/str.h"
#include "model/config_keys.h"

static const double OPENAI_MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
static const double OPENAI_STD[3] = {0.26862954, 0.26130258, 0.27577711};

// timm 1.0.8's ConvNeXts that open_clip's CLIP models use (patch stem, conv_mlp False, layer scale,
// 7x7 conv_dw): convnext_xxlarge() passes norm_eps 1e-5, the others leave LayerNorm2d's 1e-6.
static const struct {
    const char *name;
    float eps;
} TIMM[] = {{"convnext_tiny", 1e-6f},   {"convnext_small", 1e-6f},  {"convnext_base", 1e-6f},
            {"convnext_large", 1e-6f},  {"convnext_xlarge", 1e-6f}, {"convnext_xxlarge", 1e-5f}};

static bool has_open_clip_config(const char *folder) {
    char *p = path_join(folder, "open_clip_config.json");
    bool yes = p && file_exists(p);
    free(p);
    return yes;
}

static bool contains_convnext(const char *name) {
    for (const char *p = name; *p; p++) {
        const char *w = "convnext";
        size_t i = 0;
        while (w[i] && p[i] && tolower((unsigned char)p[i]) == w[i]) i++;
        if (!w[i]) return true;
    }
    return false;
}

int convnext_tower_parse(ConvNextTower *t, const char *name) {
    memset(t, 0, sizeof *t);
    size_t n = strlen(name);
    if (n >= sizeof t->folder) return vlm_fail(VLM_ERR_INPUT, name, "vision_tower", "the name is too long");
    // the last "-res<digits>" (upstream: vision_tower.split("-res")[0], the res<N> part of split("-"))
    const char *res = NULL;
    for (const char *p = strstr(name, "-res"); p; p = strstr(p + 1, "-res"))
        if (isdigit((unsigned char)p[4])) res = p;
    memcpy(t->folder, name, res ? (size_t)(res - name) : n);
    t->folder[res ? (size_t)(res - name) : n] = '\0';
    size_t len = strlen(t->folder);
    while (len > 1 && t->folder[len - 1] == '/') t->folder[--len] = '\0';
    t->have_folder = has_open_clip_config(t->folder);
    t->convnext = t->have_folder || (!dir_exists(t->folder) && contains_convnext(name));
    t->image_size = CONVNEXT_DEFAULT_SIZE;
    if (!t->convnext) return VLM_OK;
    if (strstr(name, "multi-stage"))
        return vlm_fail(VLM_ERR_INPUT, name, "vision_tower",
                        "upstream's multi-stage ConvNeXt features (every stage's, concatenated) are not supported");
    if (res) {
        char *end;
        long size = strtol(res + 4, &end, 10);
        if (*end)
            return vlm_fail(VLM_ERR_INPUT, name, "vision_tower", "'%s' after the -res size is not supported (upstream's "
                            "-interp resampling of the features is not implemented)", end);
        if (size <= 0 || size > MAX_IMAGE || size % 32)
            return vlm_fail(VLM_ERR_INPUT, name, "vision_tower",
                            "image size %ld: a ConvNeXt's needs to be a positive multiple of 32 (its output stride)", size);
        t->image_size = (int)size;
    }
    return VLM_OK;
}

char *convnext_weights_file(const char *folder) {
    static const char *const names[] = {"open_clip_model.safetensors", "open_clip_pytorch_model.bin"};
    for (int i = 0; i < 2; i++) {
        char *p = path_join(folder, names[i]);
        if (p && file_exists(p)) return p;
        free(p);
    }
    vlm_fail(VLM_ERR_INPUT, folder, NULL, "no open_clip weights (open_clip_model.safetensors or open_clip_pytorch_model.bin)");
    return NULL;
}

static int eps_of(const char *timm, float *eps, const char *path, const char *key) {
    for (size_t i = 0; i < sizeof TIMM / sizeof *TIMM; i++)
        if (strcmp(timm, TIMM[i].name) == 0) return *eps = TIMM[i].eps, VLM_OK;
    return vlm_fail(VLM_ERR_INPUT, path, key,
                    "'%s' is not supported (timm's convnext_tiny, _small, _base, _large, _xlarge and _xxlarge are: "
                    "open_clip's CLIP ConvNeXts)", timm);
}

// stages.S.blocks.B.conv_dw.weight under prefix: S and B, or false
static bool block_of(const char *name, const char *prefix, int *s, int *b) {
    if (!str_has_prefix(name, prefix)) return false;
    char tail[32];
    int used = 0;
    if (sscanf(name + strlen(prefix), "stages.%d.blocks.%d.%31s%n", s, b, tail, &used) != 3) return false;
    return strcmp(tail, "conv_dw.weight") == 0 && name[strlen(prefix) + used] == '\0';
}

int convnext_structure_from_checkpoint(VisionConfig *v, const Checkpoint *ck, const char *prefix, const char *label) {
    int count[CONVNEXT_STAGES] = {0}, top[CONVNEXT_STAGES] = {0};
    for (int s = 0; s < CONVNEXT_STAGES; s++) v->depths[s] = 0, v->dims[s] = 0;
    for (int i = 0; i < ck->count; i++) {
        const TensorInfo *info = ck->tensors[i].info;
        int s, b;
        if (!block_of(info->name, prefix, &s, &b)) continue;
        if (s < 0 || s >= CONVNEXT_STAGES || b < 0 || b >= MAX_LAYERS)
            return vlm_fail(VLM_ERR_INPUT, label, info->name, "a ConvNeXt has 4 stages of at most %d blocks", MAX_LAYERS);
        if (info->ndim != 4 || info->shape[1] != 1 || info->shape[2] != CONVNEXT_KERNEL ||
            info->shape[3] != CONVNEXT_KERNEL || info->shape[0] < 1 || info->shape[0] > MAX_WIDTH)
            return vlm_fail(VLM_ERR_INPUT, label, info->name, "expected a depthwise [C, 1, %d, %d] kernel",
                            CONVNEXT_KERNEL, CONVNEXT_KERNEL);
        if (count[s] == 0 || b == 0) v->dims[s] = (int)info->shape[0];
        count[s]++;
        if (b + 1 > top[s]) top[s] = b + 1;
    }
    for (int s = 0; s < CONVNEXT_STAGES; s++) {
        char want[200];
        snprintf(want, sizeof want, "%sstages.%d.blocks.%d.conv_dw.weight", prefix, s, count[s] < top[s] ? count[s] : 0);
        if (count[s] == 0 || count[s] != top[s])
            return vlm_fail(VLM_ERR_INPUT, label, want,
                            count[s] ? "missing (blocks must be numbered 0..N-1)"
                                     : "missing: no ConvNeXt stage %d (an open_clip timm ConvNeXt trunk has tensors "
                                       "stages.0-3.blocks.N.*)", s);
        v->depths[s] = count[s];
    }
    return VLM_OK;
}

static int read_open_clip_config(const char *folder, char *timm, size_t size, double mean[3], double std[3]) {
    char *path = path_join(folder, "open_clip_config.json");
    json_error_t jerr;
    json_t *root = path ? vlm_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    int rc = VLM_OK;
    if (!root) rc = vlm_fail(VLM_ERR_INPUT, path, NULL, "line %d: %s", jerr.line, jerr.text);
    json_t *vc = json_object_get(json_object_get(root, "model_cfg"), "vision_cfg");
    const char *name = json_string_value(json_object_get(vc, "timm_model_name"));
    if (!rc && !name)
        rc = vlm_fail(VLM_ERR_INPUT, path, "model_cfg.vision_cfg.timm_model_name",
                      "missing: not a timm vision tower (open_clip's own ViTs are not a ConvNeXt)");
    if (!rc && strlen(name) >= size) rc = vlm_fail(VLM_ERR_INPUT, path, "model_cfg.vision_cfg.timm_model_name", "too long");
    if (!rc) snprintf(timm, size, "%s", name);
    json_t *pre = json_object_get(root, "preprocess_cfg");
    for (int c = 0; c < 3; c++) mean[c] = OPENAI_MEAN[c], std[c] = OPENAI_STD[c];  // open_clip's PreprocessCfg defaults
    static const char *const keys[2] = {"mean", "std"};
    for (int k = 0; !rc && k < 2; k++) {
        json_t *v = json_object_get(pre, keys[k]);
        double *out = k ? std : mean;
        if (!v || json_is_null(v)) continue;
        char key[64];
        snprintf(key, sizeof key, "preprocess_cfg.%s", keys[k]);
        if (vlm_json_is_number(v)) {
            out[0] = out[1] = out[2] = vlm_json_number(v);
        } else if (json_is_array(v) && json_array_size(v) == 3) {
            for (int c = 0; !rc && c < 3; c++) rc = vlm_json_real(json_array_get(v, c), &out[c], path, key);
        } else {
            rc = vlm_fail(VLM_ERR_INPUT, path, key, "expected a number or 3 numbers");
        }
        for (int c = 0; !rc && c < 3; c++)
            if (k && !(out[c] > 0)) rc = vlm_fail(VLM_ERR_INPUT, path, key, "%g must be positive", out[c]);
    }
    const char *mode = json_string_value(json_object_get(pre, "resize_mode"));
    const char *interp = json_string_value(json_object_get(pre, "interpolation"));
    if (!rc && mode && strcmp(mode, "shortest") != 0)
        rc = vlm_fail(VLM_ERR_INPUT, path, "preprocess_cfg.resize_mode", "'%s' is not supported (shortest is)", mode);
    if (!rc && interp && strcmp(interp, "bicubic") != 0)
        rc = vlm_fail(VLM_ERR_INPUT, path, "preprocess_cfg.interpolation", "'%s' is not supported (bicubic is)", interp);
    json_decref(root);
    free(path);
    return rc;
}

// upstream's extract_res_interp: the name's last component picks the hub model
static const char *timm_of_name(const char *name) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    if (str_has_prefix(base, "CLIP-convnext_large")) return "convnext_large";  // laion/CLIP-convnext_large_d_320...
    if (str_has_prefix(base, "CLIP-convnext_xxlarge")) return "convnext_xxlarge";
    return NULL;
}

int convnext_vision_config(VisionConfig *v, const ConvNextTower *t, const char *name, Checkpoint *saved,
                           const char *saved_label) {
    memset(v, 0, sizeof *v);
    v->kind = VISION_CONVNEXT;
    if (strlen(name) >= sizeof v->tower) return vlm_fail(VLM_ERR_INPUT, name, "vision_tower", "the name is too long");
    snprintf(v->tower, sizeof v->tower, "%s", name);
    char timm[128];
    int rc = VLM_OK;
    if (t->have_folder) {
        char *cfg = path_join(t->folder, "open_clip_config.json");
        rc = read_open_clip_config(t->folder, timm, sizeof timm, v->mean, v->std);
        if (!rc) rc = eps_of(timm, &v->eps, cfg, "model_cfg.vision_cfg.timm_model_name");
        free(cfg);
        char *weights = rc ? NULL : convnext_weights_file(t->folder);
        Checkpoint ck;
        if (!rc) rc = weights ? checkpoint_open(&ck, weights) : VLM_ERR_INPUT;
        if (!rc) {
            rc = convnext_structure_from_checkpoint(v, &ck, CONVNEXT_TRUNK_PREFIX, weights);
            checkpoint_close(&ck);
        }
        free(weights);
    } else {
        const char *named = timm_of_name(name);
        if (!named)
            return vlm_fail(VLM_ERR_INPUT, name, "vision_tower",
                            "not an open_clip folder (no %s/open_clip_config.json), and not a name upstream maps to a "
                            "model (CLIP-convnext_xxlarge*, CLIP-convnext_large*)", t->folder);
        if (!saved)
            return vlm_fail(VLM_ERR_INPUT, name, "vision_tower",
                            "no open_clip folder %s (open_clip_config.json and its weights): pass the tower's local folder",
                            t->folder);
        snprintf(timm, sizeof timm, "%s", named);
        rc = eps_of(timm, &v->eps, name, "vision_tower");
        for (int c = 0; c < 3; c++) v->mean[c] = OPENAI_MEAN[c], v->std[c] = OPENAI_STD[c];
        if (!rc) rc = convnext_structure_from_checkpoint(v, saved, CONVNEXT_SAVED_PREFIX, saved_label);
        if (rc)
            vlm_fail_context(VLM_ERR_INPUT, "the tower folder %s is not there, so the saved model must hold the vision "
                             "weights", t->folder);
    }
    if (rc) return rc;
    v->image_size = t->image_size;
    v->patch = 32;
    v->hidden = v->dims[CONVNEXT_STAGES - 1];
    v->heads = 1, v->layers = 0, v->intermediate = 4 * v->hidden;
    return VLM_OK;
}
