// LoRA adapters of a model, see lora.h.
#include "model/lora.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/str.h"
#include "formats/checkpoint.h"
#include "formats/safetensors.h"
#include "formats/torch_save.h"
#include "core/rng.h"
#include "kernels/lora.h"

float *lora_target_weight(const LlavaParams *p, int l, LoraTarget g, int *in, int *out) {
    const TextConfig *t = &p->cfg.text;
    const LlamaLayerWeights *L = &p->w.tl[l];
    int H = t->hidden, HS = H / t->heads, Q = t->heads * HS, KV = t->kv_heads * HS, I = t->intermediate;
    switch (g) {
    case LORA_Q: return *in = H, *out = Q, L->q_w;
    case LORA_K: return *in = H, *out = KV, L->k_w;
    case LORA_V: return *in = H, *out = KV, L->v_w;
    case LORA_O: return *in = Q, *out = H, L->o_w;
    case LORA_GATE: return *in = H, *out = I, L->gate_w;
    case LORA_UP: return *in = H, *out = I, L->up_w;
    case LORA_DOWN: return *in = I, *out = H, L->down_w;
    case LORA_K1: return *in = H, *out = KV, L->kv1_w;                              // kv1's first KV rows
    case LORA_V1: return *in = H, *out = KV, L->kv1_w ? L->kv1_w + (size_t)KV * H : NULL;  // and its last
    default: return NULL;
    }
}

void lora_init(LlavaParams *p, uint64_t seed) {
    Rng rng;
    rng_init(&rng, seed, 0x10AA);
    for (int l = 0; l < p->cfg.text.layers; l++)
        for (int g = 0; g < LORA_TARGETS; g++) {
            const LlamaLayerWeights *L = &p->w.tl[l];
            if (!L->lora[g][0]) continue;
            int in, out;
            lora_target_weight(p, l, (LoraTarget)g, &in, &out);
            float bound = 1.0f / sqrtf((float)in);
            for (size_t k = 0; k < (size_t)p->cfg.lora.r * in; k++) L->lora[g][0][k] = bound * (2.0f * rng_uniform(&rng) - 1.0f);
            for (size_t k = 0; k < (size_t)out * p->cfg.lora.r; k++) L->lora[g][1][k] = 0.0f;
        }
}

int llava_lora_merge(LlavaParams *p) {
    const LoraConfig *c = &p->cfg.lora;
    if (c->r <= 0) return VLM_OK;
    for (int l = 0; l < p->cfg.text.layers; l++)
        for (int g = 0; g < LORA_TARGETS; g++) {
            const LlamaLayerWeights *L = &p->w.tl[l];
            int in, out;
            float *W = lora_target_weight(p, l, (LoraTarget)g, &in, &out);
            if (L->lora[g][0] && W) lora_merge(W, L->lora[g][0], L->lora[g][1], in, out, c->r, c->alpha / (float)c->r);
        }
    LlavaConfig cfg = p->cfg;
    cfg.lora = (LoraConfig){0};
    return llava_params_relayout(p, &cfg, NULL);
}

// ---- PEFT's adapter folder

#define PEFT_PREFIX "base_model.model."

bool lora_adapter_dir(const char *dir) {
    char *p = path_join(dir, "adapter_config.json");
    bool yes = p && file_exists(p);
    free(p);
    return yes;
}

// The module an adapter tensor belongs to: its name without ".lora_A.weight" (len bytes).
static size_t module_len(const char *name) {
    const char *a = strstr(name, ".lora_A.weight");
    return a ? (size_t)(a - name) : 0;
}

// A spec's name in the chosen layout (see lora_save_adapter).
static void layout_name(const LlavaParams *p, const char *name, bool original, char *out, size_t size) {
    if (original) llava_original_name(&p->cfg, name, out, size);
    else snprintf(out, size, "%s", name);
}

static int write_config(const LlavaParams *p, const char *dir, const char *base, bool original) {
    const LoraConfig *c = &p->cfg.lora;
    json_t *targets = json_array();
    for (int i = 0; i < p->n_specs; i++) {
        char name[200];
        layout_name(p, p->specs[i].name, original, name, sizeof name);
        size_t n = module_len(name);
        if (p->specs[i].module == MODULE_LORA && n) json_array_append_new(targets, json_stringn(name, n));
    }
    // the keys PEFT 0.8.2 writes, its defaults where vlm has nothing to say
    char drop[32];  // the flag's value as written (0.05), not its float32 rounding
    snprintf(drop, sizeof drop, "%.7g", (double)c->dropout);
    json_t *j = json_pack("{s:{}, s:n, s:s, s:s, s:b, s:b, s:b, s:n, s:n, s:{}, s:i, s:f, s:n, s:s, s:n, s:s, s:i, s:{}, "
                          "s:n, s:o, s:s, s:b}",
                          "alpha_pattern", "auto_mapping", "base_model_name_or_path", base ? base : "", "bias", "none",
                          "fan_in_fan_out", 0, "inference_mode", 1, "init_lora_weights", 1, "layers_pattern",
                          "layers_to_transform", "loftq_config", "lora_alpha", (int)c->alpha, "lora_dropout",
                          strtod(drop, NULL), "megatron_config", "megatron_core", "megatron.core", "modules_to_save",
                          "peft_type", "LORA", "r", c->r, "rank_pattern", "revision", "target_modules", targets,
                          "task_type", "CAUSAL_LM", "use_rslora", 0);
    char *path = path_join(dir, "adapter_config.json"), *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    int rc = path && text ? atomic_write_text(path, text) : VLM_ERR_FAIL;
    free(path), free(text);
    json_decref(j);
    return rc;
}

// Every spec of module m (or, trained != NULL, of the trained modules but LoRA) under PEFT's names.
static int collect(const LlavaParams *p, bool lora, const bool *trained, bool original, TensorInfo *infos,
                   const void **datas, char (*names)[200]) {
    int n = 0;
    for (int i = 0; i < p->n_specs; i++) {
        const ParamSpec *s = &p->specs[i];
        bool take = lora ? s->module == MODULE_LORA : trained && s->module != MODULE_LORA && trained[s->module] && s->reachable;
        if (!take) continue;
        char name[180];
        layout_name(p, s->name, original, name, sizeof name);
        snprintf(names[n], sizeof names[n], PEFT_PREFIX "%s", name);
        infos[n] = (TensorInfo){.name = names[n], .dtype = DT_F32, .ndim = s->ndim};
        for (int d = 0; d < s->ndim; d++) infos[n].shape[d] = s->shape[d];
        tensor_info_sizes(&infos[n]);
        datas[n++] = p->data + s->offset;
    }
    return n;
}

int lora_save_adapter(const LlavaParams *p, const char *dir, const bool *trained, const char *base) {
    bool original = p->cfg.lora.original_names;
    if (p->cfg.lora.r <= 0) return vlm_fail(VLM_ERR_FAIL, dir, NULL, "the model has no LoRA adapters to save");
    TensorInfo *infos = vlm_calloc((size_t)p->n_specs, sizeof(TensorInfo));
    const void **datas = vlm_calloc((size_t)p->n_specs, sizeof(void *));
    char (*names)[200] = vlm_calloc((size_t)p->n_specs, sizeof *names);
    char *st = path_join(dir, "adapter_model.safetensors"), *bin = path_join(dir, "non_lora_trainables.bin");
    int rc = infos && datas && names && st && bin ? make_dirs(dir) : VLM_ERR_FAIL;
    if (rc == VLM_OK) rc = write_config(p, dir, base, original);
    if (rc == VLM_OK) {
        int n = collect(p, true, NULL, original, infos, datas, names);
        rc = safetensors_write(st, infos, datas, n, NULL);
    }
    if (rc == VLM_OK && trained) {
        int n = collect(p, false, trained, original, infos, datas, names);
        TorchSaveTensor *t = vlm_calloc((size_t)(n ? n : 1), sizeof *t);
        rc = t ? VLM_OK : VLM_ERR_FAIL;
        for (int i = 0; rc == VLM_OK && i < n; i++) {
            t[i] = (TorchSaveTensor){.name = infos[i].name, .dtype = DT_F32, .ndim = infos[i].ndim, .data = datas[i]};
            for (int d = 0; d < infos[i].ndim; d++) t[i].shape[d] = infos[i].shape[d];
        }
        if (rc == VLM_OK) rc = torch_save(bin, t, n);
        free(t);
    }
    free(infos), free(datas), free(names), free(st), free(bin);
    return rc;
}

// Reads checkpoint ck's tensors into p's specs of the given kind (lora: MODULE_LORA; else any
// other): every adapter must be there (lora), every tensor of the file must be p's.
static int read_into(LlavaParams *p, Checkpoint *ck, const char *path, bool lora) {
    int found = 0, rc = VLM_OK;
    for (int i = 0; i < ck->count && rc == VLM_OK; i++) {
        const TensorInfo *info = ck->tensors[i].info;
        const char *name = str_has_prefix(info->name, PEFT_PREFIX) ? info->name + strlen(PEFT_PREFIX) : info->name;
        int k = -1;
        for (int j = 0; j < p->n_specs && k < 0; j++) {
            char orig[200];
            llava_original_name(&p->cfg, p->specs[j].name, orig, sizeof orig);
            if (strcmp(p->specs[j].name, name) == 0 || strcmp(orig, name) == 0) k = j;  // either layout's name
        }
        if (k < 0 || (p->specs[k].module == MODULE_LORA) != lora)
            rc = vlm_fail(VLM_ERR_INPUT, path, info->name, "not a tensor of this model's %s", lora ? "adapters" : "modules");
        else if (info->numel != p->specs[k].numel)
            rc = vlm_fail(VLM_ERR_INPUT, path, info->name, "%zu elements, the model's has %zu", info->numel,
                          p->specs[k].numel);
        else
            rc = checkpoint_read_f32(ck, i, p->data + p->specs[k].offset), found++;
    }
    int want = 0;
    for (int j = 0; j < p->n_specs; j++) want += p->specs[j].module == MODULE_LORA;
    if (rc == VLM_OK && lora && found != want)
        rc = vlm_fail(VLM_ERR_INPUT, path, NULL, "%d of the model's %d adapter tensors are missing (other targets, "
                      "or other layers?)", want - found, want);
    return rc;
}

int lora_load_adapter(LlavaParams *p, const char *dir) {
    // PEFT >= 0.6 writes safetensors, earlier ones (mPLUG-Owl2's pin, 0.4.0) a pickled .bin
    char *cfg_path = path_join(dir, "adapter_config.json"), *st = path_join(dir, "adapter_model.safetensors");
    if (st && !file_exists(st)) free(st), st = path_join(dir, "adapter_model.bin");
    char *bin = path_join(dir, "non_lora_trainables.bin");
    if (!cfg_path || !st || !bin) return free(cfg_path), free(st), free(bin), VLM_ERR_FAIL;
    json_error_t err;
    json_t *j = vlm_json_load_file(cfg_path, 0, &err);
    int rc = j ? VLM_OK : vlm_fail(VLM_ERR_INPUT, cfg_path, NULL, "%s (line %d)", err.text, err.line);
    long long r = 0;
    double alpha = 0, dropout = 0;
    if (rc == VLM_OK) rc = vlm_json_get_int(j, "r", VLM_JSON_REQUIRED, 0, 1, 1 << 16, &r, cfg_path, NULL);
    if (rc == VLM_OK) rc = vlm_json_get_real(j, "lora_alpha", VLM_JSON_REQUIRED, 0, &alpha, cfg_path, NULL);
    if (rc == VLM_OK) rc = vlm_json_get_real(j, "lora_dropout", VLM_JSON_OPTIONAL, 0, &dropout, cfg_path, NULL);
    if (rc == VLM_OK && (!(alpha > 0) || !(dropout >= 0 && dropout < 1)))
        rc = vlm_fail(VLM_ERR_INPUT, cfg_path, NULL, "lora_alpha %g must be > 0 and lora_dropout %g in [0, 1)", alpha, dropout);
    const char *peft = json_string_value(json_object_get(j, "peft_type")), *bias = json_string_value(json_object_get(j, "bias"));
    if (rc == VLM_OK && peft && strcmp(peft, "LORA") != 0)
        rc = vlm_fail(VLM_ERR_INPUT, cfg_path, "peft_type", "\"%s\": only LoRA adapters are read", peft);
    if (rc == VLM_OK && bias && strcmp(bias, "none") != 0)
        rc = vlm_fail(VLM_ERR_INPUT, cfg_path, "bias", "\"%s\": only bias \"none\" (LLaVA's scripts') is supported", bias);
    if (rc == VLM_OK && json_is_true(json_object_get(j, "use_rslora")))
        rc = vlm_fail(VLM_ERR_INPUT, cfg_path, "use_rslora", "rank-stabilised LoRA is not supported");
    json_decref(j);
    if (rc == VLM_OK) {
        LlavaConfig cfg = p->cfg;
        cfg.lora = (LoraConfig){.r = (int)r, .alpha = (float)alpha, .dropout = (float)dropout, .seed = p->cfg.lora.seed};
        rc = llava_params_relayout(p, &cfg, NULL);
    }
    Checkpoint ck;
    if (rc == VLM_OK && (rc = checkpoint_open(&ck, st)) == VLM_OK) {
        rc = read_into(p, &ck, st, true);
        checkpoint_close(&ck);
    }
    if (rc == VLM_OK && file_exists(bin) && (rc = checkpoint_open(&ck, bin)) == VLM_OK) {
        rc = read_into(p, &ck, bin, false);
        checkpoint_close(&ck);
    }
    free(cfg_path), free(st), free(bin);
    return rc;
}
