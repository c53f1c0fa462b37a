// Opening a model folder of any layout users have, see open.h.
#include "model/open.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>  // strdup

#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "model/convnext_config.h"
#include "model/lora.h"

// config.json's mm_vision_tower (a fresh string, or NULL).
static char *configured_vision_tower(const char *dir) {
    char *path = path_join(dir, "config.json");
    json_t *j = path ? vlm_json_load_file(path, 0, NULL) : NULL;
    const char *name = json_string_value(json_object_get(j, "mm_vision_tower"));
    char *out = name ? strdup(name) : NULL;
    json_decref(j);
    free(path);
    return out;
}

int llava_detect_layout(const char *dir, ModelLayout *layout) {
    char *path = path_join(dir, "config.json");
    if (!path) return VLM_ERR_FAIL;
    if (!dir_exists(dir) || !file_exists(path)) {
        free(path);
        return vlm_fail(VLM_ERR_INPUT, dir, NULL, "not a model folder (no config.json)");
    }
    json_error_t err;
    json_t *j = vlm_json_load_file(path, 0, &err);
    int rc = VLM_OK;
    const char *type = json_string_value(json_object_get(j, "model_type"));
    if (!json_is_object(j)) rc = vlm_fail(VLM_ERR_INPUT, path, NULL, "not a JSON object (%s, line %d)", err.text, err.line);
    else if (type && strcmp(type, "mplug_owl2") == 0) *layout = LAYOUT_MPLUG_OWL2;
    else if (json_object_get(j, "vision_config")) *layout = LAYOUT_HF;
    else if (json_object_get(j, "mm_vision_tower")) *layout = LAYOUT_ORIGINAL;
    else *layout = LAYOUT_PARTS;
    json_decref(j);
    free(path);
    return rc;
}

const char *llava_layout_name(ModelLayout layout) {
    switch (layout) {
    case LAYOUT_HF: return "llava-hf";
    case LAYOUT_ORIGINAL: return "original LLaVA + CLIP folder";
    case LAYOUT_MPLUG_OWL2: return "mPLUG-Owl2";
    default: return "LLM folder + CLIP folder + projector";
    }
}

// A PEFT adapter folder: its base (o->model_base, or adapter_config.json's base_model_name_or_path, as
// given or beside the adapter folder), then the adapters and non_lora_trainables.bin over it.
static int open_adapter(LlavaParams *p, const char *dir, const LlavaOpenOptions *o, ModelLayout *layout) {
    char *cfg = path_join(dir, "adapter_config.json");
    json_t *j = cfg ? vlm_json_load_file(cfg, 0, NULL) : NULL;
    const char *named = json_string_value(json_object_get(j, "base_model_name_or_path"));
    char *base = o->model_base ? strdup(o->model_base) : NULL, *parent = path_dirname(dir);
    if (!base && named && named[0]) base = dir_exists(named) || !parent ? strdup(named) : path_join(parent, named);
    int rc = VLM_OK;
    if (!base || !dir_exists(base))
        rc = vlm_fail(VLM_ERR_INPUT, cfg, "base_model_name_or_path",
                      "the adapters' base model '%s' is not a local folder: pass the base model's folder (--model-base)",
                      base ? base : named ? named : "");
    LlavaOpenOptions with = *o;
    with.model_base = NULL;
    // over an LLM-only base (LLaVA's finetune_lora.sh start), the adapter folder's own config.json
    // (LLaVA's, as its train.py saves it) names the vision tower and the projector's kind; the
    // projector itself is in non_lora_trainables.bin
    ModelLayout base_layout = LAYOUT_HF;
    char *tower = NULL;
    if (rc == VLM_OK && llava_detect_layout(base, &base_layout) == VLM_OK && base_layout == LAYOUT_PARTS &&
        !with.vision_tower && (tower = configured_vision_tower(dir))) {
        char *path = path_join(dir, "config.json");
        json_t *c = path ? vlm_json_load_file(path, 0, NULL) : NULL;
        const char *type = json_string_value(json_object_get(c, "mm_projector_type"));
        const char *feature = json_string_value(json_object_get(c, "mm_vision_select_feature"));
        long long layer = -2;
        if (json_object_get(c, "mm_vision_select_layer"))
            vlm_json_int(json_object_get(c, "mm_vision_select_layer"), -64, 64, &layer, path, "mm_vision_select_layer");
        with.vision_tower = tower;
        with.projector_type = type && strcmp(type, "linear") == 0 ? PROJECTOR_LINEAR : PROJECTOR_MLP2X_GELU;
        with.feature_layer = (int)layer;
        with.feature_full = feature && strcmp(feature, "cls_patch") == 0;
        json_decref(c);
        free(path);
    }
    if (rc == VLM_OK) rc = llava_open(p, base, &with, layout);
    free(tower);
    if (rc == VLM_OK) {
        rc = lora_load_adapter(p, dir);
        if (rc != VLM_OK) llava_params_free(p);
    }
    json_decref(j);
    free(cfg), free(base), free(parent);
    return rc;
}

int llava_open(LlavaParams *p, const char *dir, const LlavaOpenOptions *o, ModelLayout *layout) {
    if (lora_adapter_dir(dir)) return open_adapter(p, dir, o, layout);
    ModelLayout l;
    int rc = llava_detect_layout(dir, &l);
    if (rc != VLM_OK) return rc;
    if (layout) *layout = l;
    if (l == LAYOUT_HF || l == LAYOUT_MPLUG_OWL2) return llava_load_hf(p, dir);  // config.json says which
    if (l == LAYOUT_ORIGINAL && !o->vision_tower) {  // the tower the config names, when it is a local folder
        char *named = configured_vision_tower(dir);
        LlavaOpenOptions with = *o;
        with.vision_tower = named;
        rc = named ? llava_open(p, dir, &with, layout) : VLM_ERR_FAIL;
        free(named);
        return rc;
    }
    // a ConvNeXt tower's name carries its image size (PATH-res768: model/convnext_config.h); its
    // folder, or the saved model's weights without one, are checked as its config is read
    ConvNextTower tower = {.convnext = false};
    if (o->vision_tower && (rc = convnext_tower_parse(&tower, o->vision_tower)) != VLM_OK) return rc;
    if (!o->vision_tower || (!tower.convnext && !dir_exists(o->vision_tower)))
        return vlm_fail(VLM_ERR_INPUT, dir, "vision_tower",
                        o->vision_tower ? "'%s' is not a local folder: pass --vision_tower with the CLIP model's folder"
                                        : "%sa CLIP folder is needed: pass --vision_tower DIR",
                        o->vision_tower ? o->vision_tower : "");
    if (l == LAYOUT_ORIGINAL) return llava_load_original(p, dir, o->vision_tower);
    return llava_load_parts(p, dir, o->vision_tower, o->projector, o->projector_type, o->feature_layer, o->feature_full,
                            o->seed);
}

int llava_preprocessor(Preprocessor *p, const LlavaConfig *c, const char *model_dir, bool pad) {
    const VisionConfig *v = &c->vision;
    if (v->kind != VISION_CONVNEXT) return preprocessor_for_model(p, model_dir, v->image_size, pad);
    preprocessor_open_clip(p, v->image_size, v->mean, v->std);
    p->pad = pad;
    return VLM_OK;
}
