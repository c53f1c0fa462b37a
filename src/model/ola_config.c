// OLA-VLM's configuration: upstream's flags and config.json keys, see config.h.
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/json.h"
#include "model/config.h"

const char *ola_task_name(OlaTask t) {
    static const char *const names[OLA_TASKS] = {"depth", "seg", "gen"};
    return names[t];
}

// config.json's dict per task and the prefix of its two keys (image_gen uses "img")
static const char *const DICT[OLA_TASKS] = {"image_depth", "image_seg", "image_gen"};
static const char *const PREFIX[OLA_TASKS] = {"depth", "seg", "img"};
static const char LETTER[OLA_TASKS] = {'d', 's', 'g'};

static int task_of(const char *name, size_t n, OlaTask *t) {
    for (int i = 0; i < OLA_TASKS; i++)
        if (strlen(ola_task_name((OlaTask)i)) == n && strncmp(name, ola_task_name((OlaTask)i), n) == 0)
            return *t = (OlaTask)i, 0;
    return -1;
}

// "gen-depth-seg": the tasks and their order in the sequence
static int parse_mode(OlaConfig *o, const char *mode, const char *where, const char *key) {
    o->n_order = 0;
    for (const char *p = mode; *p;) {
        size_t n = strcspn(p, "-");
        OlaTask t;
        if (task_of(p, n, &t) != 0 || ola_has_task(o, t) || o->n_order == OLA_TASKS)
            return vlm_fail(VLM_ERR_INPUT, where, key, "'%s': expected tasks among depth, seg, gen joined by '-'", mode);
        o->order[o->n_order++] = t;
        p += n + (p[n] == '-');
    }
    if (o->n_order == 0) return vlm_fail(VLM_ERR_INPUT, where, key, "no task named");
    return VLM_OK;
}

// "8-20": the 1-indexed hidden states of one task
static int parse_layers(OlaTaskConfig *c, const char *s, const char *where, const char *key) {
    c->n_layers = 0;
    for (const char *p = s; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != '-') || v < 1 || c->n_layers == OLA_MAX_LAYERS)
            return vlm_fail(VLM_ERR_INPUT, where, key, "'%s': expected up to %d layer numbers >= 1 joined by '-'", s,
                            OLA_MAX_LAYERS);
        c->layers[c->n_layers++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return VLM_OK;
}

// ola_vlm_train.py's ModelArguments defaults
static void defaults(OlaConfig *o) {
    memset(o, 0, sizeof *o);
    o->num_task_tokens = 8;
    o->contrastive_loss_weight = 0.3f;
    o->use_intermediate_depth = true;
    static const int out[OLA_TASKS] = {1024, 1536, 1024}, queries[OLA_TASKS] = {576, 576, 1};
    for (int t = 0; t < OLA_TASKS; t++)
        o->task[t] = (OlaTaskConfig){.loss_weight = 0.5f, .depth = 1, .dim_head = 32, .heads = 4,
                                     .num_tokens = queries[t], .output_dim = out[t], .ff_mult = 1};
}

int ola_config_from_flags(OlaConfig *o, const char *mode, const char *layer_indices, const char *loss_weights,
                          int num_task_tokens, double contrastive_loss_weight, int llm_layers,
                          const int (*heads)[OLA_HEAD_FLAGS]) {
    defaults(o);
    for (int t = 0; heads && t < OLA_TASKS; t++) {
        OlaTaskConfig *c = &o->task[t];
        c->depth = heads[t][0], c->dim_head = heads[t][1], c->heads = heads[t][2];
        c->num_tokens = heads[t][3], c->output_dim = heads[t][4], c->ff_mult = heads[t][5];
    }
    o->enabled = true;
    o->num_task_tokens = num_task_tokens;
    o->contrastive_loss_weight = (float)contrastive_loss_weight;
    int rc = parse_mode(o, mode, NULL, "--mode");
    // "d8-20_s10-18_g12-20": a letter per task, then its layers; a task not named keeps layer 0 upstream
    // (no predictor), which we refuse: a task in --mode needs layers
    for (const char *p = layer_indices; rc == VLM_OK && *p;) {
        size_t n = strcspn(p, "_");
        const char *hit = memchr(LETTER, p[0], OLA_TASKS);
        char part[64];
        if (!hit || n < 2 || n >= sizeof part)
            return vlm_fail(VLM_ERR_INPUT, NULL, "--layer_indices", "'%s': expected parts like d8-20 joined by '_'",
                            layer_indices);
        snprintf(part, sizeof part, "%.*s", (int)n - 1, p + 1);
        rc = parse_layers(&o->task[hit - LETTER], part, NULL, "--layer_indices");
        p += n + (p[n] == '_');
    }
    for (const char *p = loss_weights; rc == VLM_OK && *p;) {  // "d0.5_s0.5_g0.5"
        size_t n = strcspn(p, "_");
        const char *hit = memchr(LETTER, p[0], OLA_TASKS);
        char *end;
        double w = hit && n >= 2 ? strtod(p + 1, &end) : -1;
        if (w < 0 || end != p + n)
            return vlm_fail(VLM_ERR_INPUT, NULL, "--loss_weights", "'%s': expected parts like d0.5 joined by '_'",
                            loss_weights);
        o->task[hit - LETTER].loss_weight = (float)w;
        p += n + (p[n] == '_');
    }
    return rc == VLM_OK ? ola_config_check(o, llm_layers, NULL) : rc;
}

int ola_config_check(const OlaConfig *o, int llm_layers, const char *path) {
    if (!o->enabled) return VLM_OK;
    if (o->num_task_tokens < 1)
        return vlm_fail(VLM_ERR_INPUT, path, "num_task_tokens",
                        "%d: only OLA-VLM's task-token predictors (num_task_tokens > 0) are supported", o->num_task_tokens);
    if (o->num_task_tokens > OLA_MAX_SIZE)
        return vlm_fail(VLM_ERR_INPUT, path, "num_task_tokens", "%d is more than %d", o->num_task_tokens, OLA_MAX_SIZE);
    for (int i = 0; i < o->n_order; i++) {
        OlaTask t = o->order[i];
        const OlaTaskConfig *c = &o->task[t];
        const char *name = DICT[t];
        if (c->n_layers == 0) return vlm_fail(VLM_ERR_INPUT, path, name, "the %s task has no layers", ola_task_name(t));
        for (int l = 0; l < c->n_layers; l++)
            if (c->layers[l] > llm_layers)
                return vlm_fail(VLM_ERR_INPUT, path, name, "layer %d: the language model has %d", c->layers[l], llm_layers);
        if (c->depth != 1)
            return vlm_fail(VLM_ERR_INPUT, path, name, "depth %d: one resampler block is supported (upstream's)", c->depth);
        // bounded like config.c's sizes, so the layout's products cannot overflow
        if (c->dim_head < 1 || c->heads < 1 || c->output_dim < 1 || c->ff_mult < 1 || c->num_tokens < 1 ||
            c->dim_head > OLA_MAX_SIZE || c->heads > OLA_MAX_SIZE || c->output_dim > OLA_MAX_SIZE ||
            c->num_tokens > OLA_MAX_SIZE || c->ff_mult > 64)
            return vlm_fail(VLM_ERR_INPUT, path, name,
                            "sizes must be positive and at most %d (ff_mult 64): dim_head %d, num_heads %d, "
                            "output_dim %d, num_tokens %d, ff_mult %d", OLA_MAX_SIZE, c->dim_head, c->heads,
                            c->output_dim, c->num_tokens, c->ff_mult);
        if (t != OLA_GEN && c->num_tokens % o->num_task_tokens)
            return vlm_fail(VLM_ERR_INPUT, path, name, "num_tokens %d is not a multiple of num_task_tokens %d",
                            c->num_tokens, o->num_task_tokens);
    }
    return VLM_OK;
}

// OLA-VLM's keys: absent keeps the default already in *out; null is an error
// (upstream reads each value as it is: None would fail there too).
static int get_int(const json_t *j, const char *key, int *out, const char *path) {
    long long x;  // an integer of any size, as Python's json writes it: refused by value beyond int's range
    int rc = vlm_json_get_int(j, key, VLM_JSON_NO_NULL, *out, INT_MIN, INT_MAX, &x, path, NULL);
    if (rc == VLM_OK) *out = (int)x;
    return rc;
}

static int get_float(const json_t *j, const char *key, float *out, const char *path) {
    double x;  // NaN and ±Infinity too, as Python's json writes them
    int rc = vlm_json_get_real(j, key, VLM_JSON_NO_NULL, *out, &x, path, NULL);
    if (rc == VLM_OK) *out = (float)x;
    return rc;
}

int ola_config_from_json(OlaConfig *o, const json_t *root, const char *path) {
    defaults(o);
    const char *mode = json_string_value(json_object_get(root, "aux_mode"));
    int rc = get_int(root, "num_task_tokens", &o->num_task_tokens, path);
    if (rc || !mode || !json_object_get(root, "num_task_tokens")) return rc;  // not an OLA-VLM model
    o->enabled = true;
    rc = parse_mode(o, mode, path, "aux_mode");
    if (!rc) rc = get_float(root, "contrastive_loss_weight", &o->contrastive_loss_weight, path);
    static const char *const unsupported[] = {"use_contrastive", "pass_text_to_aux"};
    for (int i = 0; !rc && i < 2; i++) {
        json_t *v = json_object_get(root, unsupported[i]);
        if (v && !json_is_true(v))
            rc = vlm_fail(VLM_ERR_INPUT, path, unsupported[i], "only true (upstream's default) is supported");
    }
    for (int t = 0; !rc && t < OLA_TASKS; t++) {
        const json_t *d = json_object_get(root, DICT[t]);
        if (!d) continue;
        OlaTaskConfig *c = &o->task[t];
        char key[64];
        rc = get_int(d, "depth", &c->depth, path);
        if (!rc) rc = get_int(d, "dim_head", &c->dim_head, path);
        if (!rc) rc = get_int(d, "num_heads", &c->heads, path);
        if (!rc) rc = get_int(d, "num_tokens", &c->num_tokens, path);
        if (!rc) rc = get_int(d, "output_dim", &c->output_dim, path);
        if (!rc) rc = get_int(d, "ff_mult", &c->ff_mult, path);
        snprintf(key, sizeof key, "%s_loss_weight", PREFIX[t]);
        if (!rc) rc = get_float(d, key, &c->loss_weight, path);
        snprintf(key, sizeof key, "%s_layer_indices", PREFIX[t]);
        const char *layers = json_string_value(json_object_get(d, key));
        if (!rc && layers) rc = parse_layers(c, layers, path, key);
        json_t *inter = json_object_get(d, "use_intermediate_depth");
        if (t == OLA_DEPTH && inter) o->use_intermediate_depth = json_is_true(inter);
    }
    return rc;
}

void ola_config_to_json(const OlaConfig *o, json_t *root) {
    if (!o->enabled) return;
    char mode[32] = "";
    for (int i = 0; i < o->n_order; i++)
        snprintf(mode + strlen(mode), sizeof mode - strlen(mode), "%s%s", i ? "-" : "", ola_task_name(o->order[i]));
    json_object_set_new(root, "aux_mode", json_string(mode));
    json_object_set_new(root, "num_task_tokens", json_integer(o->num_task_tokens));
    json_object_set_new(root, "contrastive_loss_weight", json_real(o->contrastive_loss_weight));
    json_object_set_new(root, "use_contrastive", json_true());
    json_object_set_new(root, "pass_text_to_aux", json_true());
    for (int t = 0; t < OLA_TASKS; t++) {
        if (!ola_has_task(o, (OlaTask)t)) continue;
        const OlaTaskConfig *c = &o->task[t];
        char layers[64] = "", key[64];
        for (int l = 0; l < c->n_layers; l++)
            snprintf(layers + strlen(layers), sizeof layers - strlen(layers), "%s%d", l ? "-" : "", c->layers[l]);
        json_t *d = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "depth", c->depth, "dim_head", c->dim_head, "num_heads",
                              c->heads, "num_tokens", c->num_tokens, "output_dim", c->output_dim, "ff_mult", c->ff_mult);
        snprintf(key, sizeof key, "%s_layer_indices", PREFIX[t]);
        json_object_set_new(d, key, json_string(layers));
        snprintf(key, sizeof key, "%s_loss_weight", PREFIX[t]);
        json_object_set_new(d, key, json_real(c->loss_weight));
        if (t == OLA_DEPTH) json_object_set_new(d, "use_intermediate_depth", json_boolean(o->use_intermediate_depth));
        json_object_set_new(root, DICT[t], d);
    }
}
