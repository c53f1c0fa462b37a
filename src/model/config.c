// config.json parsing with transformers' defaults, see config.h.
#include "model/config.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "model/config_keys.h"


// "SECTION.KEY" (or KEY at the top level) for messages.
static const char *key_name(const char *section, const char *key, char *buf, size_t size) {
    if (!section) return key;
    snprintf(buf, size, "%s.%s", section, key);
    return buf;
}

// An integer key in [lo, hi]; absent or null: dflt (transformers' None is the default).
int config_get_int(const json_t *j, const char *section, const char *key, int dflt, long long lo, long long hi,
                   int *out, const char *path) {
    char name[256];  // a 127-character section, a dot and the key
    long long x;  // any integer, as Python's json writes it: one beyond int64 is outside too, by value
    int rc = vlm_json_get_int(j, key, VLM_JSON_OPTIONAL, dflt, lo, hi, &x, path, key_name(section, key, name, sizeof name));
    if (rc == VLM_OK) *out = (int)x;
    return rc;
}

// A size: an integer in [1, hi].
int config_get_size(const json_t *j, const char *section, const char *key, int dflt, long long hi, int *out,
                    const char *path) {
    return config_get_int(j, section, key, dflt, 1, hi, out, path);
}

// A number key, absent or null: dflt; positive: it must be finite and > 0 (epsilons, rope bases).
int config_get_float(const json_t *j, const char *section, const char *key, double dflt, bool positive, float *out,
                     const char *path) {
    char buf[256];  // a 127-character section, a dot and the key
    const char *name = key_name(section, key, buf, sizeof buf);
    double x;  // NaN and ±Infinity too (Python's json writes them), refused below where a value must be positive
    int rc = vlm_json_get_real(j, key, VLM_JSON_OPTIONAL, dflt, &x, path, name);
    if (rc != VLM_OK) return rc;
    if (positive && !(x > 0 && x < 1e30)) return vlm_fail(VLM_ERR_INPUT, path, name, "%g must be a positive number", x);
    *out = (float)x;
    return VLM_OK;
}

// hidden_act, when set, must be the one activation the architecture implements.
static int check_act(const json_t *j, const char *section, const char *want, const char *path) {
    char name[128];
    const char *act = json_string_value(json_object_get(j, "hidden_act"));
    if (act && strcmp(act, want) != 0)
        return vlm_fail(VLM_ERR_INPUT, path, key_name(section, "hidden_act", name, sizeof name),
                        "'%s' is not supported (%s is)", act, want);
    return VLM_OK;
}

const char *arch_name(Arch a) { return a == ARCH_MPLUG_OWL2 ? "mPLUG-Owl2" : "LLaVA"; }

// The keys of a ViT config with the class's defaults d (CLIPVisionConfig's or MplugOwlVisionConfig's);
// hidden_act, when set, must be d's activation (d->gelu: "gelu", else "quick_gelu").
int vision_config_read(VisionConfig *c, const VisionConfig *d, const json_t *j, const char *section, const char *path) {
    const char *s = section;
    int rc = check_act(j, s, d->gelu ? "gelu" : "quick_gelu", path);
    if (!rc) rc = config_get_size(j, s, "hidden_size", d->hidden, MAX_WIDTH, &c->hidden, path);
    if (!rc) rc = config_get_size(j, s, "intermediate_size", d->intermediate, MAX_WIDTH, &c->intermediate, path);
    if (!rc) rc = config_get_size(j, s, "num_hidden_layers", d->layers, MAX_LAYERS, &c->layers, path);
    if (!rc) rc = config_get_size(j, s, "num_attention_heads", d->heads, MAX_HEADS, &c->heads, path);
    if (!rc) rc = config_get_size(j, s, "image_size", d->image_size, MAX_IMAGE, &c->image_size, path);
    if (!rc) rc = config_get_size(j, s, "patch_size", d->patch, MAX_IMAGE, &c->patch, path);
    if (!rc) rc = config_get_float(j, s, "layer_norm_eps", d->eps, true, &c->eps, path);
    c->post_norm = d->post_norm;
    c->gelu = d->gelu, c->layer_scale = d->layer_scale, c->patch_bias = d->patch_bias, c->skip_pre_norm = d->skip_pre_norm;
    if (!rc) rc = config_get_float(j, s, "initializer_range", 0.02, false, &c->init_range, path);
    if (!rc) rc = config_get_float(j, s, "initializer_factor", 1.0, false, &c->init_factor, path);
    if (!rc && (c->hidden % c->heads || c->image_size % c->patch))
        rc = vlm_fail(VLM_ERR_INPUT, path, section ? section : "vision config",
                      "inconsistent sizes (hidden %d, heads %d, image %d, patch %d): hidden_size must be a multiple of "
                      "num_attention_heads and image_size of patch_size", c->hidden, c->heads, c->image_size, c->patch);
    return rc;
}

int vision_config_from_json(VisionConfig *c, const json_t *j, const char *section, const char *path) {
    static const VisionConfig clip = {.hidden = 768, .intermediate = 3072, .layers = 12, .heads = 12, .image_size = 224,
                                      .patch = 32, .eps = 1e-5f};
    return vision_config_read(c, &clip, j, section, path);
}

int text_config_from_json(TextConfig *c, const json_t *j, const char *section, const char *path) {
    const char *s = section;
    char name[128];
    int rc = check_act(j, s, "silu", path);
    if (!rc) rc = config_get_size(j, s, "hidden_size", 4096, MAX_WIDTH, &c->hidden, path);
    if (!rc) rc = config_get_size(j, s, "intermediate_size", 11008, MAX_WIDTH, &c->intermediate, path);
    if (!rc) rc = config_get_size(j, s, "num_hidden_layers", 32, MAX_LAYERS, &c->layers, path);
    if (!rc) rc = config_get_size(j, s, "num_attention_heads", 32, MAX_HEADS, &c->heads, path);
    if (!rc) rc = config_get_size(j, s, "num_key_value_heads", c->heads, MAX_HEADS, &c->kv_heads, path);
    if (!rc) rc = config_get_size(j, s, "vocab_size", 32000, MAX_VOCAB, &c->vocab, path);
    if (!rc) rc = config_get_float(j, s, "rms_norm_eps", 1e-6, true, &c->rms_eps, path);
    if (!rc) rc = config_get_float(j, s, "rope_theta", 10000.0, true, &c->rope.theta, path);
    if (!rc) rc = config_get_float(j, s, "initializer_range", 0.02, false, &c->init_range, path);
    if (!rc) rc = config_get_int(j, s, "pad_token_id", -1, -1, MAX_VOCAB, &c->pad_token_id, path);
    if (!rc && c->pad_token_id >= c->vocab)
        rc = vlm_fail(VLM_ERR_INPUT, path, key_name(section, "pad_token_id", name, sizeof name),
                      "%d is outside the vocabulary of %d", c->pad_token_id, c->vocab);
    json_t *tie = json_object_get(j, "tie_word_embeddings");
    c->tie_embeddings = tie && json_is_true(tie);
    c->rope.factor = 0;
    // Phi-3 (model_type phi3; OLA-VLM's / LLaVA's llava_phi3 wrap it): fused names, a sliding window
    const char *type = json_string_value(json_object_get(j, "model_type"));
    c->fused_names = type && strstr(type, "phi3") != NULL;
    c->sliding_window = 0;
    if (!rc && c->fused_names && json_object_get(j, "sliding_window") && !json_is_null(json_object_get(j, "sliding_window")))
        rc = config_get_int(j, s, "sliding_window", 0, 1, MAX_POSITIONS, &c->sliding_window, path);
    if (!rc && c->fused_names && json_object_get(j, "partial_rotary_factor") &&
        vlm_json_number(json_object_get(j, "partial_rotary_factor")) != 1.0)
        rc = vlm_fail(VLM_ERR_INPUT, path, key_name(section, "partial_rotary_factor", name, sizeof name),
                      "only a full rotary embedding (1.0) is supported");
    json_t *scaling = json_object_get(j, "rope_scaling");
    if (!rc && scaling && !json_is_null(scaling) && c->fused_names)
        return vlm_fail(VLM_ERR_INPUT, path, key_name(section, "rope_scaling", name, sizeof name),
                        "Phi-3's long-context rope (su / longrope: the 128k models) is not supported; the 4k models "
                        "(rope_scaling null) are");
    if (!rc && scaling && !json_is_null(scaling)) {
        const char *where = key_name(section, "rope_scaling", name, sizeof name);
        const char *type = json_string_value(json_object_get(scaling, "rope_type"));
        if (!type) type = json_string_value(json_object_get(scaling, "type"));
        if (!type || strcmp(type, "llama3") != 0)
            return vlm_fail(VLM_ERR_INPUT, path, where, "only the llama3 rope_type is supported");
        char sub[128];
        snprintf(sub, sizeof sub, "%s", where);
        rc = config_get_float(scaling, sub, "factor", 8.0, true, &c->rope.factor, path);
        if (!rc) rc = config_get_float(scaling, sub, "low_freq_factor", 1.0, true, &c->rope.low_freq_factor, path);
        if (!rc) rc = config_get_float(scaling, sub, "high_freq_factor", 4.0, true, &c->rope.high_freq_factor, path);
        if (!rc)
            rc = config_get_size(scaling, sub, "original_max_position_embeddings", 8192, MAX_POSITIONS,
                          &c->rope.original_max_position, path);
    }
    if (!rc && (c->hidden % c->heads || c->heads % c->kv_heads))
        rc = vlm_fail(VLM_ERR_INPUT, path, section ? section : "text config",
                      "inconsistent heads (hidden %d, heads %d, kv heads %d): hidden_size must be a multiple of "
                      "num_attention_heads and that of num_key_value_heads", c->hidden, c->heads, c->kv_heads);
    return rc;
}

int llava_config_load(LlavaConfig *c, const char *path) {
    json_error_t jerr;
    json_t *root = vlm_json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return vlm_fail(VLM_ERR_INPUT, path, NULL, "line %d: %s", jerr.line, jerr.text);
    memset(c, 0, sizeof *c);
    int rc = VLM_OK;
    const char *type = json_string_value(json_object_get(root, "model_type"));
    if (type && strcmp(type, "mplug_owl2") == 0) {
        rc = owl2_config_from_json(c, root, path);
        json_decref(root);
        return rc;
    }
    if (!type || strcmp(type, "llava") != 0)
        rc = vlm_fail(VLM_ERR_INPUT, path, "model_type",
                      "expected \"llava\" (a llava-hf LlavaForConditionalGeneration) or \"mplug_owl2\"");
    json_t *vision = json_object_get(root, "vision_config"), *text = json_object_get(root, "text_config");
    if (!rc) rc = vision_config_from_json(&c->vision, vision ? vision : json_object(), "vision_config", path);
    if (!rc) rc = text_config_from_json(&c->text, text ? text : json_object(), "text_config", path);
    const char *act = json_string_value(json_object_get(root, "projector_hidden_act"));
    if (!rc && act && strcmp(act, "gelu") != 0 && strcmp(act, "linear") != 0)
        rc = vlm_fail(VLM_ERR_INPUT, path, "projector_hidden_act",
                      "'%s' is not supported (gelu is, and linear for LLaVA's linear projector)", act);
    // "linear": LLaVA's linear projector as llava_save_hf writes it (see ProjectorType)
    c->projector = act && strcmp(act, "linear") == 0 ? PROJECTOR_LINEAR : PROJECTOR_MLP2X_GELU;
    // LlavaPreTrainedModel: config.initializer_range when set, else the text config's
    if (!rc) rc = config_get_float(root, NULL, "initializer_range", c->text.init_range, false, &c->projector_init_range, path);
    if (!rc) rc = config_get_int(root, NULL, "vision_feature_layer", -2, -MAX_LAYERS - 1, MAX_LAYERS, &c->feature_layer, path);
    if (!rc) rc = config_get_int(root, NULL, "image_token_index", 32000, 0, MAX_VOCAB, &c->image_token_index, path);
    const char *strategy = json_string_value(json_object_get(root, "vision_feature_select_strategy"));
    if (!rc && strategy && strcmp(strategy, "default") != 0 && strcmp(strategy, "full") != 0)
        rc = vlm_fail(VLM_ERR_INPUT, path, "vision_feature_select_strategy", "expected default or full");
    c->feature_full = strategy && strcmp(strategy, "full") == 0;
    if (!rc) rc = ola_config_from_json(&c->ola, root, path);
    if (!rc) rc = ola_config_check(&c->ola, c->text.layers, path);
    if (!rc && (c->feature_layer < -(c->vision.layers + 1) || c->feature_layer > c->vision.layers))
        rc = vlm_fail(VLM_ERR_INPUT, path, "vision_feature_layer", "%d is outside the %d hidden states",
                      c->feature_layer, c->vision.layers + 1);
    json_decref(root);
    return rc;
}

int llava_vision_layers_used(const LlavaConfig *c) {
    // hidden_states[0] is the embeddings (after pre_layrnorm), [i] the output of layer i
    int index = c->feature_layer < 0 ? c->vision.layers + 1 + c->feature_layer : c->feature_layer;
    return index;
}

json_t *text_config_to_json(const TextConfig *t) {
    json_t *text = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:s}", "model_type",
                             t->fused_names ? "phi3" : "llama",
                             "hidden_size", t->hidden, "intermediate_size", t->intermediate,
                             "num_hidden_layers", t->layers, "num_attention_heads", t->heads,
                             "num_key_value_heads", t->kv_heads, "vocab_size", t->vocab, "rms_norm_eps",
                             (double)t->rms_eps, "rope_theta", (double)t->rope.theta,
                             "tie_word_embeddings", t->tie_embeddings, "hidden_act", "silu");
    json_object_set_new(text, "initializer_range", json_real(t->init_range));
    if (t->fused_names)  // Phi-3's: its window (null: none)
        json_object_set_new(text, "sliding_window", t->sliding_window ? json_integer(t->sliding_window) : json_null());
    if (t->pad_token_id >= 0) json_object_set_new(text, "pad_token_id", json_integer(t->pad_token_id));
    if (t->rope.factor > 0)
        json_object_set_new(text, "rope_scaling",
                            json_pack("{s:s, s:f, s:f, s:f, s:i}", "rope_type", "llama3", "factor",
                                      (double)t->rope.factor, "low_freq_factor", (double)t->rope.low_freq_factor,
                                      "high_freq_factor", (double)t->rope.high_freq_factor,
                                      "original_max_position_embeddings", t->rope.original_max_position));
    return text;
}

json_t *llava_config_to_json(const LlavaConfig *c) {
    if (c->arch == ARCH_MPLUG_OWL2) {
        json_t *root = json_object();
        if (root) owl2_config_to_json(c, root), json_object_set_new(root, "torch_dtype", json_string("float32"));
        return root;
    }
    json_t *vision = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:s, s:f, s:f}", "model_type",
                               "clip_vision_model", "hidden_size", c->vision.hidden, "intermediate_size",
                               c->vision.intermediate, "num_hidden_layers", c->vision.layers, "num_attention_heads",
                               c->vision.heads, "image_size", c->vision.image_size, "patch_size", c->vision.patch,
                               "layer_norm_eps", (double)c->vision.eps, "hidden_act", "quick_gelu",
                               "initializer_range", (double)c->vision.init_range, "initializer_factor",
                               (double)c->vision.init_factor);
    json_t *text = text_config_to_json(&c->text);
    json_t *root = json_pack("{s:[s], s:s, s:o, s:o, s:s, s:i, s:s, s:i, s:i, s:s}", "architectures",
                     "LlavaForConditionalGeneration", "model_type", "llava", "vision_config", vision, "text_config",
                     text, "projector_hidden_act", c->projector == PROJECTOR_LINEAR ? "linear" : "gelu",
                     "vision_feature_layer", c->feature_layer,
                     "vision_feature_select_strategy", c->feature_full ? "full" : "default", "image_token_index",
                     c->image_token_index, "ignore_index", -100, "torch_dtype", "float32");
    if (root && c->projector_init_range != c->text.init_range)
        json_object_set_new(root, "initializer_range", json_real(c->projector_init_range));
    if (root) ola_config_to_json(&c->ola, root);
    return root;
}
