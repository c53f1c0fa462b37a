// Training checkpoints, see train_checkpoint.h.
#include "train/train_checkpoint.h"

#include <dirent.h>    // opendir (latest, rotate)
#include <limits.h>    // LONG_MAX
#include <stdio.h>     // rename, snprintf
#include <stdlib.h>    // free, qsort, strtol
#include <string.h>    // strcmp, strrchr

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/str.h"
#include "formats/safetensors.h"

static const char *const MODEL_FILES[] = {"tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                                          "special_tokens_map.json", "added_tokens.json", "preprocessor_config.json"};

int train_copy_model_files(const char *tokenizer, const char *dir) {
    if (!dir_exists(tokenizer)) {
        const char *base = strrchr(tokenizer, '/');
        base = base ? base + 1 : tokenizer;
        char *dst = path_join(dir, str_has_suffix(base, ".json") ? base : "tokenizer.model");
        int rc = dst ? file_copy_atomic(tokenizer, dst) : VLM_ERR_FAIL;
        free(dst);
        return rc;
    }
    int rc = VLM_OK;
    for (size_t i = 0; i < sizeof MODEL_FILES / sizeof *MODEL_FILES && rc == VLM_OK; i++) {
        char *src = path_join(tokenizer, MODEL_FILES[i]), *dst = path_join(dir, MODEL_FILES[i]);
        if (!src || !dst) rc = VLM_ERR_FAIL;
        else if (file_exists(src) && strcmp(src, dst) != 0) rc = file_copy_atomic(src, dst);
        free(src), free(dst);
    }
    return rc;
}

// exp_avg.NAME and exp_avg_sq.NAME for every tensor the optimiser updates.
static int save_moments(const char *path, const LlavaModel *model, const Optimizer *o) {
    const LlavaParams *p = &model->params;
    int n = 0;
    TensorInfo *infos = vlm_calloc((size_t)o->n_ranges * 2 + 1, sizeof(TensorInfo));
    const void **datas = vlm_calloc((size_t)o->n_ranges * 2 + 1, sizeof(void *));
    char (*names)[200] = vlm_calloc((size_t)o->n_ranges * 2 + 1, sizeof *names);
    int rc = infos && datas && names ? VLM_OK : VLM_ERR_FAIL;
    for (int r = 0; r < o->n_ranges && rc == VLM_OK; r++) {
        const ParamSpec *s = &p->specs[o->spec[r]];
        for (int k = 0; k < 2; k++, n++) {
            snprintf(names[n], sizeof names[n], "%s.%s", k ? "exp_avg_sq" : "exp_avg", s->name);
            infos[n].name = names[n];
            infos[n].dtype = DT_F32;
            infos[n].ndim = s->ndim;
            for (int d = 0; d < s->ndim; d++) infos[n].shape[d] = s->shape[d];
            tensor_info_sizes(&infos[n]);
            datas[n] = (k ? o->adam.v : o->adam.m) + o->moment_offset[r];
        }
    }
    if (rc == VLM_OK) rc = safetensors_write(path, infos, datas, n, NULL);
    free(infos), free(datas), free(names);
    return rc;
}

// adam_step: the optimizer's steps; adam_steps: the tensors a step skipped (their grad None) with their own count
static json_t *state_to_json(const TrainState *st, const LlavaModel *model, const Optimizer *o, const json_t *args) {
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "global_step", (json_int_t)st->step, "max_steps",
                          (json_int_t)st->total_steps, "data_epoch", (json_int_t)st->epoch, "data_index",
                          (json_int_t)st->index, "seed", (json_int_t)st->seed, "adam_step", (json_int_t)o->adam.step);
    json_t *lag = json_object();
    for (int r = 0; j && lag && r < o->n_ranges; r++)
        if (o->steps[r] != o->adam.step)
            json_object_set_new(lag, model->params.specs[o->spec[r]].name, json_integer((json_int_t)o->steps[r]));
    if (j && lag && json_object_size(lag)) json_object_set(j, "adam_steps", lag);
    json_decref(lag);
    if (j && args) json_object_set(j, "args", (json_t *)args);
    return j;
}

// Moves tmp into place as final; an existing final (a re-saved step after a
// resume) is replaced only once the new one is complete.
static int install_dir(const char *tmp, const char *final, const char *output_dir) {
    char *old = NULL;
    if (dir_exists(final)) {
        size_t n = strlen(final) + 8;
        old = vlm_malloc(n);
        if (!old) return VLM_ERR_FAIL;
        snprintf(old, n, "%s.old", final);
        remove_tree(old);
        if (rename(final, old) != 0) {
            free(old);
            return vlm_fail_errno(VLM_ERR_FAIL, final, NULL, "cannot move the previous checkpoint aside");
        }
    }
    int rc = rename(tmp, final) == 0 ? VLM_OK : vlm_fail_errno(VLM_ERR_FAIL, final, NULL, "cannot rename %s into place", tmp);
    fsync_dir(output_dir);
    if (old) {
        if (rc == VLM_OK) remove_tree(old);
        else rename(old, final);
        free(old);
    }
    return rc;
}

int train_checkpoint_save(const char *output_dir, const LlavaModel *model, const Optimizer *o, const TrainState *st,
                          const json_t *args, const char *tokenizer, char *path, size_t size) {
    if (make_dirs(output_dir) != VLM_OK) return VLM_ERR_FAIL;
    char name[64], tmp_name[80];
    snprintf(name, sizeof name, "checkpoint-%ld", st->step);
    snprintf(tmp_name, sizeof tmp_name, ".%s.tmp", name);
    char *final = path_join(output_dir, name), *tmp = path_join(output_dir, tmp_name);
    char *opt = tmp ? path_join(tmp, "optimizer.safetensors") : NULL, *state = tmp ? path_join(tmp, "trainer_state.json") : NULL;
    int rc = final && tmp && opt && state ? VLM_OK : VLM_ERR_FAIL;
    if (rc == VLM_OK) remove_tree(tmp);  // the leftover of a run killed while saving
    if (rc == VLM_OK) rc = llava_save_hf(&model->params, tmp);
    if (rc == VLM_OK) rc = save_moments(opt, model, o);
    if (rc == VLM_OK && tokenizer) rc = train_copy_model_files(tokenizer, tmp);
    if (rc == VLM_OK) {
        json_t *j = state_to_json(st, model, o, args);
        char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        rc = text ? atomic_write_text(state, text) : VLM_ERR_FAIL;
        free(text);
        json_decref(j);
    }
    if (rc == VLM_OK) fsync_dir(tmp), rc = install_dir(tmp, final, output_dir);
    if (rc != VLM_OK) remove_tree(tmp);
    if (rc == VLM_OK && path) snprintf(path, size, "%s", final);
    free(final), free(tmp), free(opt), free(state);
    return rc;
}

// A count vlm wrote itself: required, not null, >= 0.
static int json_long(const json_t *j, const char *key, const char *path, long *out) {
    long long x;
    int rc = vlm_json_get_int(j, key, VLM_JSON_REQUIRED, 0, 0, LONG_MAX, &x, path, NULL);
    if (rc == VLM_OK) *out = (long)x;
    return rc;
}

int train_checkpoint_read_state(const char *dir, TrainState *st) {
    char *path = path_join(dir, "trainer_state.json");
    if (!path) return VLM_ERR_FAIL;
    json_error_t err;
    json_t *j = vlm_json_load_file(path, 0, &err);
    int rc = j ? VLM_OK : vlm_fail(VLM_ERR_INPUT, path, NULL, "%s (line %d)", err.text, err.line);
    long epoch = 0, index = 0, seed = 0;
    if (rc == VLM_OK) rc = json_long(j, "global_step", path, &st->step);
    if (rc == VLM_OK) rc = json_long(j, "max_steps", path, &st->total_steps);
    if (rc == VLM_OK) rc = json_long(j, "data_epoch", path, &epoch);
    if (rc == VLM_OK) rc = json_long(j, "data_index", path, &index);
    if (rc == VLM_OK) rc = json_long(j, "seed", path, &seed);
    st->epoch = (uint64_t)epoch, st->index = (uint64_t)index, st->seed = (uint64_t)seed;
    json_decref(j);
    free(path);
    return rc;
}

int train_checkpoint_read_optimizer(const char *dir, const LlavaModel *model, Optimizer *o) {
    const LlavaParams *p = &model->params;
    char *path = path_join(dir, "optimizer.safetensors"), *state = path_join(dir, "trainer_state.json");
    if (!path || !state) return VLM_ERR_FAIL;
    long adam_step = 0;
    json_t *j = vlm_json_load_file(state, 0, NULL);
    int rc = j ? json_long(j, "adam_step", state, &adam_step) : vlm_fail(VLM_ERR_INPUT, state, NULL, "unreadable");
    const json_t *lag = json_object_get(j, "adam_steps");
    for (int r = 0; rc == VLM_OK && r < o->n_ranges; r++) {
        const json_t *v = json_object_get(lag, p->specs[o->spec[r]].name);
        o->steps[r] = adam_step;
        if (v && (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > adam_step))
            rc = vlm_fail(VLM_ERR_INPUT, state, "adam_steps", "%s: not a step count in [0, %ld]", p->specs[o->spec[r]].name,
                          adam_step);
        else if (v) o->steps[r] = (long)json_integer_value(v);
    }
    json_decref(j);
    SafetensorsFile f;
    bool opened = false;
    if (rc == VLM_OK) rc = safetensors_open(&f, path), opened = rc == VLM_OK;
    for (int r = 0; r < o->n_ranges && rc == VLM_OK; r++) {
        const ParamSpec *s = &p->specs[o->spec[r]];
        for (int k = 0; k < 2 && rc == VLM_OK; k++) {
            char name[200];
            snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", s->name);
            int t = safetensors_find(&f, name);
            if (t < 0)
                rc = vlm_fail(VLM_ERR_INPUT, path, name, "missing (was the checkpoint trained with other modules?)");
            else if (f.tensors[t].dtype != DT_F32 || f.tensors[t].nbytes != s->numel * sizeof(float))
                rc = vlm_fail(VLM_ERR_INPUT, path, name, "expected F32 with %zu elements", s->numel);
            else
                memcpy((k ? o->adam.v : o->adam.m) + o->moment_offset[r], safetensors_tensor_data(&f, t),
                       s->numel * sizeof(float));
        }
    }
    if (rc == VLM_OK) o->adam.step = adam_step;
    if (opened) safetensors_close(&f);
    free(path), free(state);
    return rc;
}

// The step of "checkpoint-N" (N digits only), or -1.
static long checkpoint_step(const char *name) {
    if (!str_has_prefix(name, "checkpoint-") || !name[11]) return -1;
    char *end;
    long n = strtol(name + 11, &end, 10);
    return *end || n < 0 ? -1 : n;
}

// Steps of the complete checkpoints in output_dir, ascending (caller frees).
static long *list_checkpoints(const char *output_dir, int *count) {
    *count = 0;
    DIR *d = opendir(output_dir);
    if (!d) return NULL;
    long *steps = NULL;
    int cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        long s = checkpoint_step(e->d_name);
        if (s < 0) continue;
        char *dir = path_join(output_dir, e->d_name), *state = dir ? path_join(dir, "trainer_state.json") : NULL;
        bool complete = state && file_exists(state);
        free(dir), free(state);
        if (!complete) continue;
        if (*count == cap) {
            cap = cap ? 2 * cap : 16;
            long *grown = realloc(steps, sizeof(long) * cap);
            if (!grown) break;
            steps = grown;
        }
        steps[(*count)++] = s;
    }
    closedir(d);
    for (int i = 1; i < *count; i++)  // insertion sort: a handful of entries
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) {
            long t = steps[j];
            steps[j] = steps[j - 1], steps[j - 1] = t;
        }
    return steps;
}

char *train_checkpoint_latest(const char *output_dir) {
    int n;
    long *steps = list_checkpoints(output_dir, &n);
    char *path = NULL;
    if (n > 0) {
        char name[64];
        snprintf(name, sizeof name, "checkpoint-%ld", steps[n - 1]);
        path = path_join(output_dir, name);
    }
    free(steps);
    return path;
}

int train_checkpoint_rotate(const char *output_dir, int keep) {
    if (keep <= 0) return VLM_OK;
    int n, rc = VLM_OK;
    long *steps = list_checkpoints(output_dir, &n);
    for (int i = 0; i + keep < n && rc == VLM_OK; i++) {
        char name[64];
        snprintf(name, sizeof name, "checkpoint-%ld", steps[i]);
        char *dir = path_join(output_dir, name);
        rc = dir ? remove_tree(dir) : VLM_ERR_FAIL;
        free(dir);
    }
    free(steps);
    return rc;
}
