// Helpers shared by the unit tests, see test_util.h.
#include "test_util.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "model/config.h"
#include "model/weights.h"
#include "formats/safetensors.h"
#include "model/walk.h"  // qkv_reorder

const char *fixture(const char *relative) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", VLM_SOURCE_DIR, relative);
    return path;
}

static void slurp(const char *path, char *buf, size_t size) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    buf[n] = '\0';
    if (f) fclose(f);
    unlink(path);
}

int run_vlm(const char *args, char *out, size_t out_size, char *err, size_t err_size) {
    return run_vlm_input(args, "/dev/null", out, out_size, err, err_size);
}

int run_vlm_input(const char *args, const char *input, char *out, size_t out_size, char *err, size_t err_size) {
    char out_path[] = "/tmp/vlm-out-XXXXXX", err_path[] = "/tmp/vlm-err-XXXXXX";
    close(mkstemp(out_path));
    close(mkstemp(err_path));
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s <%s", VLM_BINARY, args, out_path, err_path, input);
    int status = system(cmd);
    slurp(out_path, out, out_size);
    slurp(err_path, err, err_size);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void write_text_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

void init_model(const char *dir, const char *name, const char *config_json, int seed) {
    char path[700], args[2048], out[4096], err[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    write_text_file(path, config_json);
    snprintf(args, sizeof args, "init --config %s --seed %d %s/%s", path, seed, dir, name);
    ck_assert_msg(run_vlm(args, out, sizeof out, err, sizeof err) == 0, "%s", err);
}

const char *temp_file(const char *text) {
    static char paths[8][64];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 64, "/tmp/vlm-test-in-XXXXXX");
    int fd = mkstemp(p);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return p;
}

int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

void *fixture_json(const char *relative) {
    json_error_t err;
    json_t *root = json_load_file(fixture(relative), 0, &err);
    ck_assert_msg(root != NULL, "%s: %s", relative, err.text);
    return root;
}

void *expected_json(void) {
    static json_t *root;
    if (!root) root = fixture_json("formats/expected.json");
    return root;
}

Suite *suite_of(const char *name, const char *tags, int timeout_s, const TTest *const *tests, size_t n) {
    Suite *s = suite_create(name);
    TCase *tc = tcase_create(name);
    if (tags[0]) tcase_set_tags(tc, tags);
    if (timeout_s > 0) tcase_set_timeout(tc, timeout_s);
    for (size_t i = 0; i < n; i++) tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
    return s;
}

const void *ref_tensor(const SafetensorsFile *f, const char *name, const TensorInfo **info) {
    int i = safetensors_find(f, name);
    ck_assert_msg(i >= 0, "reference tensor %s missing", name);
    if (info) *info = &f->tensors[i];
    return safetensors_tensor_data(f, i);
}

void read_ref_batch(const SafetensorsFile *ref, RefBatch *b) {
    const TensorInfo *ids_info, *pix_info;
    b->ids = ref_tensor(ref, "batch.input_ids", &ids_info), b->labels = ref_tensor(ref, "batch.labels", NULL);
    const int32_t *lengths = ref_tensor(ref, "batch.lengths", NULL);
    b->pixels = ref_tensor(ref, "batch.pixel_values", &pix_info);
    b->B = (int)ids_info->shape[0], b->T = (int)ids_info->shape[1], b->n_images = (int)pix_info->shape[0];
    ck_assert_int_le(b->B, 8);
    for (int i = 0; i < b->B; i++) b->lengths[i] = lengths[i];
}

void check_gradients(const LlavaModel *m, const SafetensorsFile *ref, const char *label) {
    for (int i = 0; i < m->params.n_specs; i++) {
        const ParamSpec *s = &m->params.specs[i];
        char key[200];
        snprintf(key, sizeof key, "grad.%s", s->name);
        const float *want = ref_tensor(ref, key, NULL), *ours = m->grad + s->offset;
        float *reordered = NULL;
        if (s->qkv_heads) {  // the file's per-head interleaved q|k|v rows, ours [q; k; v]
            reordered = malloc(sizeof(float) * s->numel);
            qkv_reorder(reordered, want, s, false);
            want = reordered;
        }
        double diff = 0, norm = 0;
        for (size_t k = 0; k < s->numel; k++) {
            diff += ((double)ours[k] - want[k]) * ((double)ours[k] - want[k]);
            norm += (double)want[k] * want[k];
        }
        free(reordered);
        ck_assert_msg(sqrt(diff) <= 1e-4 * sqrt(norm) + 1e-6, "%s: gradient of %s differs: |diff| %g, |grad| %g", label,
                      s->name, sqrt(diff), sqrt(norm));
    }
}

// DIR/cfg.json, DIR/base (a fresh tiny model + the tokenizer), DIR/data.json
// (image and text-only records; one text-only record says `poison`).
#define LLAMA2 VLM_SOURCE_DIR "/../shared/assets/tokenizers/llama2/tokenizer.model"
#define PHOTOS VLM_SOURCE_DIR "/../shared/assets/images"

void make_run_inputs(const char *dir, const char *poison) {
    char path[600];
    init_model(dir, "base", "{\"architectures\": [\"LlavaForConditionalGeneration\"], \"model_type\": \"llava\", "
               "\"image_token_index\": 32000, \"vision_feature_layer\": -2, \"vision_feature_select_strategy\": \"default\", "
               "\"text_config\": {\"model_type\": \"llama\", \"hidden_size\": 32, \"intermediate_size\": 48, "
               "\"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"num_key_value_heads\": 2, \"vocab_size\": 32064}, "
               "\"vision_config\": {\"model_type\": \"clip_vision_model\", \"hidden_size\": 32, \"intermediate_size\": 48, "
               "\"image_size\": 32, \"patch_size\": 8, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"projection_dim\": 16}}\n",
               3);
    snprintf(path, sizeof path, "%s/base/tokenizer.model", dir);
    ck_assert_int_eq(file_copy_atomic(LLAMA2, path), VLM_OK);
    static const char *const photos[] = {"211.jpg", "extreme_ironing.jpg", "llava_logo.png", "sausage.jpg", "waterview.jpg"};
    char *json = malloc(1 << 16);
    size_t at = (size_t)sprintf(json, "[");
    for (int i = 0; i < 36; i++) {
        const char *photo = photos[i % 5];
        if (i == 17 && poison)
            at += (size_t)sprintf(json + at, "%s{\"id\": \"poisoned\", \"conversations\": [{\"from\": \"human\", \"value\": \"Say %s\"}, "
                                              "{\"from\": \"gpt\", \"value\": \"%s.\"}]}", i ? "," : "", poison, poison);
        else if (i % 6 == 4)
            at += (size_t)sprintf(json + at, "%s{\"id\": \"text%d\", \"conversations\": [{\"from\": \"human\", \"value\": \"Count to %d.\"}, "
                                              "{\"from\": \"gpt\", \"value\": \"%d\"}]}", i ? "," : "", i, i % 10, i % 10);
        else
            at += (size_t)sprintf(json + at, "%s{\"id\": \"img%d\", \"image\": \"%s\", \"conversations\": [{\"from\": \"human\", "
                                              "\"value\": \"<image>\\nWhat is in picture %d?\"}, {\"from\": \"gpt\", \"value\": \"The file %s.\"}]}",
                                  i ? "," : "", i, photo, i, photo);
    }
    sprintf(json + at, "]\n");
    snprintf(path, sizeof path, "%s/data.json", dir);
    write_text_file(path, json);
    free(json);
}

// The "loss" of each line of a metrics.jsonl, as written (strings compare bit-exact values).
int read_losses(const char *path, char losses[][32], int max) {
    char *text;
    size_t size;
    ck_assert_int_eq(file_read_all(path, 1 << 20, &text, &size), VLM_OK);
    int n = 0;
    for (char *p = text; (p = strstr(p, "\"loss\": ")) && n < max; n++) {
        p += 8;
        size_t len = strcspn(p, ",");
        snprintf(losses[n], 32, "%.*s", (int)len, p);
    }
    free(text);
    return n;
}


// A tensor of a reference file, or NULL when it has none.
static const void *opt_tensor(const SafetensorsFile *f, const char *name, const TensorInfo **info) {
    int i = safetensors_find(f, name);
    if (i < 0) return NULL;
    if (info) *info = &f->tensors[i];
    return safetensors_tensor_data(f, i);
}


int collate_samples(const SafetensorsFile *ref, const int *samples, int n, Collated *c) {
    int T = 0;
    const TensorInfo *info;
    for (int b = 0; b < n; b++) {
        char key[64];
        snprintf(key, sizeof key, "sample.%d.input_ids", samples[b]);
        if (!opt_tensor(ref, key, &info)) return -1;
        c->lengths[b] = (int)info->shape[0];
        if (c->lengths[b] > T) T = c->lengths[b];
    }
    if (T > 16) return -1;
    size_t image = 0, S2 = 3 * 16 * 16;
    for (int b = 0; b < n; b++) {
        char key[64];
        snprintf(key, sizeof key, "sample.%d.input_ids", samples[b]);
        const int32_t *ids = opt_tensor(ref, key, NULL);
        snprintf(key, sizeof key, "sample.%d.labels", samples[b]);
        const int32_t *labels = opt_tensor(ref, key, NULL);
        for (int t = 0; t < T; t++) {
            c->ids[b * T + t] = t < c->lengths[b] ? ids[t] : 0;
            c->labels[b * T + t] = t < c->lengths[b] ? labels[t] : -100;
        }
        snprintf(key, sizeof key, "sample.%d.pixel_values", samples[b]);
        const float *px = opt_tensor(ref, key, NULL);
        if (px) memcpy(c->pixels + S2 * image++, px, S2 * sizeof(float));
    }
    c->mb = (MicroBatch){c->ids, c->labels, c->lengths, n, T, c->pixels, (int)image, NULL, 0};
    return 0;
}

void collate(const SafetensorsFile *ref, const int *samples, int n, Collated *c) {
    ck_assert_msg(collate_samples(ref, samples, n, c) == 0, "samples missing from the reference or longer than 16");
}

void write_llm_folder(const char *dir, const char *from, const char *to, const char *tokenizer, const char *architecture) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, from);
    LlavaParams p;
    ck_assert_int_eq(llava_load_hf(&p, path), VLM_OK);
    TensorInfo *infos = calloc((size_t)p.n_specs, sizeof *infos);
    const void **datas = calloc((size_t)p.n_specs, sizeof *datas);
    char (*n)[200] = calloc((size_t)p.n_specs, sizeof *n);
    int k = 0;
    for (int i = 0; i < p.n_specs; i++) {
        const ParamSpec *s = &p.specs[i];
        if (s->module != MODULE_LLM) continue;
        llava_original_name(&p.cfg, s->name, n[k], sizeof n[k]);
        infos[k] = (TensorInfo){.name = n[k], .dtype = DT_F32, .ndim = s->ndim};
        for (int d = 0; d < s->ndim; d++) infos[k].shape[d] = s->shape[d];
        tensor_info_sizes(&infos[k]);
        datas[k++] = p.data + s->offset;
    }
    snprintf(path, sizeof path, "%s/%s", dir, to);
    ck_assert_int_eq(make_dirs(path), VLM_OK);
    snprintf(path, sizeof path, "%s/%s/model.safetensors", dir, to);
    ck_assert_int_eq(safetensors_write(path, infos, datas, k, NULL), VLM_OK);
    json_t *j = text_config_to_json(&p.cfg.text);
    json_object_set_new(j, "architectures", json_pack("[s]", architecture));
    snprintf(path, sizeof path, "%s/%s/config.json", dir, to);
    ck_assert_int_eq(json_dump_file(j, path, JSON_INDENT(2)), 0);
    json_decref(j);
    snprintf(path, sizeof path, "%s/%s/tokenizer.model", dir, to);
    ck_assert_int_eq(file_copy_atomic(tokenizer, path), VLM_OK);
    free(infos), free(datas), free(n);
    llava_params_free(&p);
}
