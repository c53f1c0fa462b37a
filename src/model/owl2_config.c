// mPLUG-Owl2's config.json, see config.h. Upstream: mplug_owl2/model/
// configuration_mplug_owl2.py (MPLUGOwl2Config, MplugOwlVisionConfig,
// MplugOwlVisualAbstractorConfig). save_pretrained writes the top-level keys
// that differ from MPLUGOwl2Config()'s defaults (LLaMA-2-7B's, rms_norm_eps
// 1e-6) and visual_config's two dicts whole; those dicts carry the whole
// PretrainedConfig boilerplate (tie_word_embeddings, torch_dtype, ...),
// none of which is an LLM setting, so only their own keys are read.
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "model/config_keys.h"

static int abstractor_from_json(AbstractorConfig *a, const json_t *j, const char *path) {
    const char *s = "visual_config.visual_abstractor";
    int rc = config_get_size(j, s, "hidden_size", 1024, MAX_WIDTH, &a->hidden, path);
    if (!rc) rc = config_get_size(j, s, "encoder_hidden_size", 1024, MAX_WIDTH, &a->encoder_hidden, path);
    if (!rc) rc = config_get_size(j, s, "num_hidden_layers", 6, MAX_LAYERS, &a->layers, path);
    if (!rc) rc = config_get_size(j, s, "num_attention_heads", 16, MAX_HEADS, &a->heads, path);
    if (!rc) rc = config_get_size(j, s, "intermediate_size", 2816, MAX_WIDTH, &a->intermediate, path);
    if (!rc) rc = config_get_size(j, s, "num_learnable_queries", 64, MAX_WIDTH, &a->queries, path);
    if (!rc) rc = config_get_size(j, s, "grid_size", 32, MAX_IMAGE, &a->grid, path);  // None: 32
    if (!rc) rc = config_get_float(j, s, "layer_norm_eps", 1e-6, true, &a->eps, path);
    json_t *v2t = json_object_get(j, "add_v2t_pos_emb"), *cls = json_object_get(j, "use_cls_token");
    if (!rc && v2t && json_is_true(v2t))
        rc = vlm_fail(VLM_ERR_INPUT, path, "visual_config.visual_abstractor.add_v2t_pos_emb",
                      "true is not supported (upstream's own path for it is broken: config.cls_token does not exist)");
    if (!rc && cls && !json_is_true(cls))
        rc = vlm_fail(VLM_ERR_INPUT, path, "visual_config.visual_abstractor.use_cls_token", "only true is supported");
    return rc;
}

int owl2_config_from_json(LlavaConfig *c, const json_t *root, const char *path) {
    memset(c, 0, sizeof *c);
    c->arch = ARCH_MPLUG_OWL2;
    c->projector = PROJECTOR_ABSTRACTOR;
    c->feature_layer = -1, c->feature_full = true;  // every token of the last layer, after post_layernorm
    const json_t *visual = json_object_get(root, "visual_config");
    const json_t *vm = json_object_get(visual, "visual_model"), *va = json_object_get(visual, "visual_abstractor");
    json_t *empty = json_object();  // absent: the classes' defaults (DEFAULT_VISUAL_CONFIG)
    static const VisionConfig owl = {.hidden = 1024, .intermediate = 4096, .layers = 24, .heads = 16, .image_size = 448,
                                     .patch = 14, .eps = 1e-6f, .post_norm = true};
    int rc = text_config_from_json(&c->text, root, NULL, path);
    c->text.multiway = true;
    if (!rc) rc = vision_config_read(&c->vision, &owl, vm ? vm : empty, "visual_config.visual_model", path);
    if (!rc) rc = abstractor_from_json(&c->abstractor, va ? va : empty, path);
    json_t *post = json_object_get(vm, "use_post_layernorm"), *cls = json_object_get(vm, "use_cls_token");
    if (!rc && ((post && !json_is_true(post)) || (cls && !json_is_true(cls))))
        rc = vlm_fail(VLM_ERR_INPUT, path, "visual_config.visual_model",
                      "use_post_layernorm and use_cls_token false are not supported (the released models use both)");
    json_decref(empty);
    if (rc) return rc;
    const AbstractorConfig *a = &c->abstractor;
    int grid = c->vision.image_size / c->vision.patch, HS = c->text.hidden / c->text.heads;
    if (a->hidden != a->encoder_hidden || a->encoder_hidden != c->vision.hidden)
        return vlm_fail(VLM_ERR_INPUT, path, "visual_config.visual_abstractor",
                        "hidden_size %d, encoder_hidden_size %d and the ViT's hidden_size %d must be equal "
                        "(upstream's norm1 and out_proj assume it)", a->hidden, a->encoder_hidden, c->vision.hidden);
    if (a->grid != grid)
        return vlm_fail(VLM_ERR_INPUT, path, "visual_config.visual_abstractor.grid_size",
                        "%d, but the ViT's grid is %d (image_size / patch_size): k_pos_embed has 1 + grid^2 rows",
                        a->grid, grid);
    if (a->hidden % a->heads || a->hidden % 4)
        return vlm_fail(VLM_ERR_INPUT, path, "visual_config.visual_abstractor",
                        "hidden_size %d must be a multiple of num_attention_heads %d and of 4 (the 2-D sin-cos table)",
                        a->hidden, a->heads);
    if (c->text.kv_heads != c->text.heads)
        return vlm_fail(VLM_ERR_INPUT, path, "num_key_value_heads",
                        "%d of %d heads: upstream's modality-adaptive LLaMA cannot group query heads", c->text.kv_heads,
                        c->text.heads);
    if (HS % 2) return vlm_fail(VLM_ERR_INPUT, path, "num_attention_heads", "the head size %d must be even (rotary)", HS);
    if (c->text.tie_embeddings)
        return vlm_fail(VLM_ERR_INPUT, path, "tie_word_embeddings", "true is not supported for mPLUG-Owl2 (its lm_head is its own)");
    if (c->text.rope.factor)
        return vlm_fail(VLM_ERR_INPUT, path, "rope_scaling", "not supported for mPLUG-Owl2 (upstream's pin has none)");
    c->projector_init_range = c->text.init_range;
    c->image_token_index = -200;  // IMAGE_TOKEN_INDEX in input_ids: the vocabulary has no image token
    return VLM_OK;
}

static json_t *vision_json(const VisionConfig *v) {
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:f, s:f, s:f, s:b, s:b, s:b, s:f, s:i}", "model_type",
                     "mplug_owl_vision_model", "hidden_size", v->hidden, "intermediate_size", v->intermediate,
                     "num_hidden_layers", v->layers, "num_attention_heads", v->heads, "num_channels", 3, "image_size",
                     v->image_size, "patch_size", v->patch, "hidden_act", "quick_gelu", "layer_norm_eps", (double)v->eps,
                     "initializer_range", (double)v->init_range, "initializer_factor", (double)v->init_factor,
                     "use_flash_attn", 0, "use_post_layernorm", 1, "use_cls_token", 1, "attention_dropout", 0.0,
                     "projection_dim", 768);
}

static json_t *abstractor_json(const AbstractorConfig *a) {
    return json_pack("{s:s, s:b, s:b, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:i, s:i}", "model_type",
                     "mplug_owl_visual_abstract", "add_v2t_pos_emb", 0, "use_cls_token", 1, "num_learnable_queries",
                     a->queries, "hidden_size", a->hidden, "num_hidden_layers", a->layers, "num_attention_heads", a->heads,
                     "intermediate_size", a->intermediate, "attention_probs_dropout_prob", 0.0, "initializer_range", 0.02,
                     "layer_norm_eps", (double)a->eps, "encoder_hidden_size", a->encoder_hidden, "grid_size", a->grid);
}

void owl2_config_to_json(const LlavaConfig *c, json_t *root) {
    const TextConfig *t = &c->text;
    json_object_set_new(root, "model_type", json_string("mplug_owl2"));
    json_object_set_new(root, "architectures", json_pack("[s]", "MPLUGOwl2LlamaForCausalLM"));
    json_object_set_new(root, "hidden_size", json_integer(t->hidden));
    json_object_set_new(root, "intermediate_size", json_integer(t->intermediate));
    json_object_set_new(root, "num_hidden_layers", json_integer(t->layers));
    json_object_set_new(root, "num_attention_heads", json_integer(t->heads));
    json_object_set_new(root, "num_key_value_heads", json_integer(t->kv_heads));
    json_object_set_new(root, "vocab_size", json_integer(t->vocab));
    json_object_set_new(root, "rms_norm_eps", json_real(t->rms_eps));
    json_object_set_new(root, "rope_theta", json_real(t->rope.theta));
    json_object_set_new(root, "hidden_act", json_string("silu"));
    json_object_set_new(root, "tie_word_embeddings", json_false());
    json_object_set_new(root, "initializer_range", json_real(t->init_range));
    if (t->pad_token_id >= 0) json_object_set_new(root, "pad_token_id", json_integer(t->pad_token_id));
    json_object_set_new(root, "visual_config", json_pack("{s:o, s:o}", "visual_model", vision_json(&c->vision),
                                                         "visual_abstractor", abstractor_json(&c->abstractor)));
}
