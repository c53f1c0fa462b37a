// `vlm inspect`: tensors, totals and the config.json summary of a checkpoint.
#include <jansson.h>  // --json output, config.json
#include <math.h>     // isfinite
#include <stdlib.h>   // free
#include <string.h>   // strcmp

#include "cli/cli.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/progress.h"
#include "formats/checkpoint.h"
#include "model/weights.h"

// The config.json fields worth a glance, looked up at the top level and in
// the nested text_config / vision_config of llava-hf configs.
static const char *const CONFIG_KEYS[] = {
    "architectures", "model_type", "torch_dtype", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "vocab_size", "max_position_embeddings", "rope_theta",
    "hidden_act", "image_size", "patch_size", "projection_dim", "tie_word_embeddings",
    "mm_vision_tower", "mm_projector_type", "mm_vision_select_layer", "mm_vision_select_feature", "mm_hidden_size",
    "image_aspect_ratio", "vision_feature_layer", "vision_feature_select_strategy", "projector_hidden_act",
    "image_token_index",
};
static const char *const NESTED_CONFIGS[] = {"text_config", "vision_config"};  // mPLUG-Owl2: the model line

static void summarise_object(json_t *summary, json_t *config, const char *prefix) {
    for (size_t i = 0; i < sizeof CONFIG_KEYS / sizeof *CONFIG_KEYS; i++) {
        json_t *v = json_object_get(config, CONFIG_KEYS[i]);
        if (!v) continue;
        char key[128];
        snprintf(key, sizeof key, "%s%s", prefix, CONFIG_KEYS[i]);
        char text[64];
        if (vlm_json_is_number(v) && !json_is_number(v))  // NaN, Infinity: shown as written
            json_object_set_new(summary, key, json_string(vlm_json_number_text(v, text, sizeof text)));
        else json_object_set(summary, key, v);
    }
}

// Reads config.json beside the weights; NULL when there is none. A config
// that exists but does not parse is an error, not silently ignored.
static int load_config_summary(const char *path, json_t **out) {
    *out = NULL;
    char *dir = dir_exists(path) ? vlm_strdup(path) : path_dirname(path);
    char *config_path = dir ? path_join(dir, "config.json") : NULL;
    free(dir);
    if (!config_path) return VLM_ERR_FAIL;
    if (!file_exists(config_path)) {
        free(config_path);
        return VLM_OK;
    }
    json_error_t jerr;
    json_t *config = vlm_json_load_file(config_path, 0, &jerr);
    if (!config || !json_is_object(config)) {
        int rc = vlm_fail(VLM_ERR_INPUT, config_path, NULL, "invalid JSON: %s (line %d)", config ? "not an object" : jerr.text,
                          jerr.line);
        json_decref(config);
        free(config_path);
        return rc;
    }
    free(config_path);
    json_t *summary = json_object();
    summarise_object(summary, config, "");
    for (size_t i = 0; i < sizeof NESTED_CONFIGS / sizeof *NESTED_CONFIGS; i++) {
        json_t *nested = json_object_get(config, NESTED_CONFIGS[i]);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s.", NESTED_CONFIGS[i]);
        if (json_is_object(nested)) summarise_object(summary, nested, prefix);
    }
    json_decref(config);
    *out = summary;
    return VLM_OK;
}

typedef struct {
    unsigned long long params, bytes;
    int per_dtype[DT_COUNT];
    unsigned long long nonfinite;
    int nonfinite_tensors;
} Totals;

static void compute_totals(const Checkpoint *ck, Totals *t) {
    for (int i = 0; i < ck->count; i++) {
        const TensorInfo *info = ck->tensors[i].info;
        t->params += info->numel;
        t->bytes += info->nbytes;
        t->per_dtype[info->dtype]++;
    }
}

static int is_float_dtype(DType t) { return t == DT_F32 || t == DT_F16 || t == DT_BF16 || t == DT_F64; }

// Reads every tensor and counts NaN / Inf values of floating-point tensors,
// in float64 so that an F64 value beyond float32's range is not miscounted.
static int verify(Checkpoint *ck, Totals *t) {
    size_t max = 0;
    for (int i = 0; i < ck->count; i++)
        if (ck->tensors[i].info->nbytes > max) max = ck->tensors[i].info->nbytes;
    enum { CHUNK = 4096 };
    unsigned char *raw = vlm_malloc(max);
    double *vals = vlm_malloc(CHUNK * sizeof *vals);
    if (!raw || !vals) {
        free(raw);
        free(vals);
        return VLM_ERR_FAIL;
    }
    Progress p;
    progress_begin(&p, stderr, "verify", "tensors", (uint64_t)ck->count);
    int rc = VLM_OK;
    for (int i = 0; i < ck->count && rc == VLM_OK; i++) {
        const TensorInfo *info = ck->tensors[i].info;
        if (!is_float_dtype(info->dtype)) continue;
        rc = checkpoint_read(ck, i, raw);
        unsigned long long bad = 0;
        size_t es = dtype_size(info->dtype);
        for (size_t k = 0; rc == VLM_OK && k < info->numel; k += CHUNK) {
            size_t n = info->numel - k < CHUNK ? info->numel - k : CHUNK;
            dtype_to_f64(info->dtype, raw + k * es, vals, n);
            for (size_t j = 0; j < n; j++) bad += !isfinite(vals[j]);
        }
        t->nonfinite += bad;
        t->nonfinite_tensors += bad > 0;
        progress_update(&p, (uint64_t)i + 1);
    }
    progress_end(&p);
    free(raw);
    free(vals);
    return rc;
}

static const char *shard_name(const Checkpoint *ck, int s) {
    const char *slash = strrchr(ck->shard_paths[s], '/');
    return slash ? slash + 1 : ck->shard_paths[s];
}

static void print_json(const Checkpoint *ck, const Totals *t, json_t *config, int verified) {
    json_t *root = json_object();
    json_object_set_new(root, "path", json_string(ck->path));
    json_object_set_new(root, "format", json_string(checkpoint_format(ck)));
    json_object_set_new(root, "sharded", json_boolean(ck->sharded));
    json_t *files = json_array();
    for (int s = 0; s < ck->n_shards; s++) json_array_append_new(files, json_string(shard_name(ck, s)));
    json_object_set_new(root, "files", files);
    json_t *tensors = json_array();
    for (int i = 0; i < ck->count; i++) {
        const TensorInfo *info = ck->tensors[i].info;
        json_t *shape = json_array();
        for (int d = 0; d < info->ndim; d++) json_array_append_new(shape, json_integer(info->shape[d]));
        json_array_append_new(tensors, json_pack("{s:s, s:s, s:o, s:I, s:s}", "name", info->name, "dtype",
                                                 dtype_name(info->dtype), "shape", shape, "bytes",
                                                 (json_int_t)info->nbytes, "file", shard_name(ck, ck->tensors[i].shard)));
    }
    json_object_set_new(root, "tensors", tensors);
    json_t *by_dtype = json_object();
    for (int d = 0; d < DT_COUNT; d++)
        if (t->per_dtype[d]) json_object_set_new(by_dtype, dtype_name((DType)d), json_integer(t->per_dtype[d]));
    json_object_set_new(root, "total", json_pack("{s:i, s:I, s:I, s:o}", "tensors", ck->count, "parameters",
                                                 (json_int_t)t->params, "bytes", (json_int_t)t->bytes, "by_dtype", by_dtype));
    json_object_set_new(root, "skipped_non_tensors", json_integer(ck->skipped));
    if (verified) json_object_set_new(root, "nonfinite_values", json_integer((json_int_t)t->nonfinite));
    json_object_set(root, "config", config ? config : json_null());
    json_dumpf(root, stdout, JSON_INDENT(2));
    fputc('\n', stdout);
    json_decref(root);
}

// "model: ..." for a folder whose config.json is a model vlm runs: the
// architecture's parts and the parameters per module (nothing otherwise).
static void print_model(const char *path) {
    if (!dir_exists(path)) return;
    char *config = path_join(path, "config.json");
    LlavaConfig c;
    LlavaParams p;
    int rc = config && file_exists(config) ? llava_config_load(&c, config) : VLM_ERR_FAIL;
    free(config);
    if (rc != VLM_OK) {
        vlm_clear_error();
        return;
    }
    const VisionConfig *v = &c.vision;
    const TextConfig *t = &c.text;
    printf("model: %s: ViT %d layers x %d (%d heads, image %d, patch %d, %d tokens%s), ", arch_name(c.arch), v->layers,
           v->hidden, v->heads, v->image_size, v->patch, vision_patches(v) + 1, v->post_norm ? ", post_layernorm" : "");
    if (c.projector == PROJECTOR_ABSTRACTOR)
        printf("visual abstractor %d layers x %d (%d heads, %d queries)", c.abstractor.layers, c.abstractor.hidden,
               c.abstractor.heads, c.abstractor.queries);
    else printf("projector %s", c.projector == PROJECTOR_LINEAR ? "linear" : "mlp2x_gelu");
    printf(" -> %d rows per image, LLaMA %d layers x %d (%d heads, %d kv heads%s), vocab %d\n", llava_image_tokens(&c),
           t->layers, t->hidden, t->heads, t->kv_heads, t->multiway ? ", modality-adaptive" : "", t->vocab);
    if (llava_params_layout(&p, &c) != VLM_OK) return;
    printf("parameters:");
    for (int m = 0; m < MODULE_COUNT; m++)
        if (p.module_numel[m]) printf(" %s %zu", module_name(&c, (Module)m), p.module_numel[m]);
    printf("\n");
    llava_params_free(&p);
}

static void print_text(const Checkpoint *ck, const Totals *t, json_t *config, int verified) {
    printf("%s: %s", ck->path, checkpoint_format(ck));
    if (ck->sharded) printf(", %d shard%s", ck->n_shards, ck->n_shards == 1 ? "" : "s");
    printf("\n");
    print_model(ck->path);
    if (config && json_object_size(config)) {
        printf("config.json:");
        const char *key;
        json_t *v;
        json_object_foreach(config, key, v) {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            printf(" %s=%s", key, text ? text : "?");
            free(text);
        }
        printf("\n");
    }
    int width = 4;
    for (int i = 0; i < ck->count; i++) {
        int n = (int)strlen(ck->tensors[i].info->name);
        if (n > width) width = n;
    }
    printf("%-*s  %-5s  %-20s  %s\n", width, "name", "dtype", "shape", "bytes");
    for (int i = 0; i < ck->count; i++) {
        const TensorInfo *info = ck->tensors[i].info;
        char shape[160], bytes[32];
        shape_format(info->shape, info->ndim, shape, sizeof shape);
        format_count(info->nbytes, bytes, sizeof bytes);
        printf("%-*s  %-5s  %-20s  %s", width, info->name, dtype_name(info->dtype), shape, bytes);
        if (ck->sharded) printf("  %s", shard_name(ck, ck->tensors[i].shard));
        printf("\n");
    }
    char params[32], bytes[32];
    format_count(t->params, params, sizeof params);
    format_bytes(t->bytes, bytes, sizeof bytes);
    printf("total: %d tensors, %s parameters, %s (", ck->count, params, bytes);
    int first = 1;
    for (int d = 0; d < DT_COUNT; d++) {
        if (!t->per_dtype[d]) continue;
        printf("%s%s %d", first ? "" : ", ", dtype_name((DType)d), t->per_dtype[d]);
        first = 0;
    }
    printf(")\n");
    if (ck->skipped) printf("skipped: %d non-tensor entries\n", ck->skipped);
    if (verified) printf("verify: %llu non-finite values in %d tensors\n", t->nonfinite, t->nonfinite_tensors);
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int as_json = 0, do_verify = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) as_json = 1;
        else if (strcmp(argv[i], "--verify") == 0) do_verify = 1;
        else if (argv[i][0] == '-' && argv[i][1]) return cli_usage_error("inspect", "unknown option '%s'", argv[i]);
        else if (path) return cli_usage_error("inspect", "one PATH only");
        else path = argv[i];
    }
    if (!path) return cli_usage_error("inspect", "missing PATH");
    Checkpoint ck;
    int rc = checkpoint_open(&ck, path);
    if (rc != VLM_OK) return cli_report(rc);
    json_t *config = NULL;
    rc = load_config_summary(path, &config);
    Totals totals = {0};
    compute_totals(&ck, &totals);
    if (rc == VLM_OK && do_verify) rc = verify(&ck, &totals);
    if (rc == VLM_OK) {
        if (as_json) print_json(&ck, &totals, config, do_verify);
        else print_text(&ck, &totals, config, do_verify);
        if (totals.nonfinite)
            rc = vlm_fail(VLM_ERR_INPUT, path, NULL, "%llu non-finite values in %d tensors", totals.nonfinite,
                          totals.nonfinite_tensors);
    }
    json_decref(config);
    checkpoint_close(&ck);
    return cli_report(rc);
}
