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
#include "dist/dist.h"
#include "formats/safetensors.h"
#include "model/lora.h"

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
            datas[n] = (k ? o->adam.v : o->adam.m) + o->moment_offset[r];  // unsharded: packed offset = moment index
        }
    }
    if (rc == VLM_OK) rc = safetensors_write(path, infos, datas, n, NULL);
    free(infos), free(datas), free(names);
    return rc;
}

static bool sharded(const Optimizer *o) { return o->shard_hi - o->shard_lo != o->n_packed; }

// ZeRO-1: this rank's slice of the packed moments, as exp_avg / exp_avg_sq
// (DeepSpeed writes one zero_pp_rank_R_..._optim_states.pt per rank alike).
static int save_moment_shard(const char *dir, const Optimizer *o) {
    char name[96];
    snprintf(name, sizeof name, "optimizer.rank-%d-of-%d.safetensors", o->rank, o->world);
    char *path = path_join(dir, name);
    if (!path) return VLM_ERR_FAIL;
    TensorInfo infos[2] = {{.name = "exp_avg", .dtype = DT_F32, .ndim = 1, .shape = {o->adam.n}},
                           {.name = "exp_avg_sq", .dtype = DT_F32, .ndim = 1, .shape = {o->adam.n}}};
    tensor_info_sizes(&infos[0]), tensor_info_sizes(&infos[1]);
    const void *datas[2] = {o->adam.m, o->adam.v};
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, "%zu", o->shard_lo), snprintf(hi, sizeof hi, "%zu", o->shard_hi);
    json_t *meta = json_pack("{s:s, s:s}", "packed_start", lo, "packed_end", hi);
    int rc = meta ? safetensors_write(path, infos, datas, 2, meta) : VLM_ERR_FAIL;
    json_decref(meta);
    free(path);
    return rc;
}

// The sharded layout: each rank's slice, and the packed order it slices
static json_t *shard_layout(const LlavaModel *model, const Optimizer *o) {
    json_t *shards = json_array(), *packed = json_array();
    for (int k = 0; k < o->world; k++)
        json_array_append_new(shards, json_pack("[I, I]", (json_int_t)o->bounds[k], (json_int_t)o->bounds[k + 1]));
    for (int r = 0; r < o->n_ranges; r++)
        json_array_append_new(packed, json_pack("[s, I]", model->params.specs[o->spec[r]].name,
                                                (json_int_t)o->ranges[2 * r + 1]));
    return json_pack("{s:i, s:o, s:o}", "zero_stage", 1, "optimizer_shards", shards, "packed_tensors", packed);
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
    if (j) json_object_set_new(j, "world_size", json_integer(o->world));
    if (j && sharded(o)) {
        json_t *layout = shard_layout(model, o);
        if (layout) json_object_update(j, layout);
        json_decref(layout);
    }
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

// Every rank calls it: rank 0 writes the model, the unsharded moments and
// the state, each rank its slice of sharded moments, and rank 0 renames the
// folder into place only once every rank's files are on disk.
int train_checkpoint_save(const char *output_dir, const LlavaModel *model, const Optimizer *o, const TrainState *st,
                          const json_t *args, const char *tokenizer, char *path, size_t size) {
    bool main = o->rank == 0;
    char name[64], tmp_name[80];
    snprintf(name, sizeof name, "checkpoint-%ld", st->step);
    snprintf(tmp_name, sizeof tmp_name, ".%s.tmp", name);
    char *final = path_join(output_dir, name), *tmp = path_join(output_dir, tmp_name);
    char *opt = tmp ? path_join(tmp, "optimizer.safetensors") : NULL, *state = tmp ? path_join(tmp, "trainer_state.json") : NULL;
    int rc = final && tmp && opt && state ? VLM_OK : VLM_ERR_FAIL;
    if (rc == VLM_OK && main) {
        remove_tree(tmp);  // the leftover of a run killed while saving
        rc = make_dirs(tmp);
    }
    rc = dist_agree(rc, NULL);  // the folder exists for every rank
    if (rc == VLM_OK && sharded(o)) rc = save_moment_shard(tmp, o);
    if (rc == VLM_OK && main) {
        // a LoRA run's: the adapters and the other trained tensors (resumed over the run's base)
        rc = model->params.cfg.lora.r > 0 ? lora_save_adapter(&model->params, tmp, model->trainable, tokenizer)
                                          : llava_save_hf(&model->params, tmp);
        if (rc == VLM_OK && !sharded(o)) rc = save_moments(opt, model, o);
        if (rc == VLM_OK && tokenizer) rc = train_copy_model_files(tokenizer, tmp);
        if (rc == VLM_OK) {
            json_t *j = state_to_json(st, model, o, args);
            char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
            rc = text ? atomic_write_text(state, text) : VLM_ERR_FAIL;
            free(text);
            json_decref(j);
        }
    }
    rc = dist_agree(rc, NULL);  // every rank's files are written
    if (main) {
        if (rc == VLM_OK) fsync_dir(tmp), rc = install_dir(tmp, final, output_dir);
        if (rc != VLM_OK) remove_tree(tmp);
    }
    rc = dist_agree(rc, NULL);
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
    long world = 1;
    if (rc == VLM_OK && json_object_get(j, "world_size")) rc = json_long(j, "world_size", path, &world);
    st->world = world > 0 ? (int)world : 1;
    json_decref(j);
    free(path);
    return rc;
}

// Moments k (0: exp_avg, 1: exp_avg_sq) of the packed floats [a, b) of this rank's slice, from src.
static void copy_slice(Optimizer *o, int k, size_t a, size_t b, const float *src) {
    memcpy((k ? o->adam.v : o->adam.m) + (a - o->shard_lo), src, (b - a) * sizeof(float));
}

// optimizer.safetensors: exp_avg.NAME / exp_avg_sq.NAME, the part of each in this rank's slice.
static int read_named_moments(const char *path, const LlavaModel *model, Optimizer *o) {
    SafetensorsFile f;
    int rc = safetensors_open(&f, path);
    if (rc != VLM_OK) return rc;
    for (int r = 0; r < o->n_ranges && rc == VLM_OK; r++) {
        const ParamSpec *s = &model->params.specs[o->spec[r]];
        size_t moff = o->moment_offset[r], a, b;
        bool mine = optimizer_range_slice(o, r, &a, &b);
        for (int k = 0; k < 2 && rc == VLM_OK; k++) {
            char name[200];
            snprintf(name, sizeof name, "%s.%s", k ? "exp_avg_sq" : "exp_avg", s->name);
            int t = safetensors_find(&f, name);
            if (t < 0)
                rc = vlm_fail(VLM_ERR_INPUT, path, name, "missing (was the checkpoint trained with other modules?)");
            else if (f.tensors[t].dtype != DT_F32 || f.tensors[t].nbytes != s->numel * sizeof(float))
                rc = vlm_fail(VLM_ERR_INPUT, path, name, "expected F32 with %zu elements", s->numel);
            else if (mine)
                copy_slice(o, k, a, b, (const float *)safetensors_tensor_data(&f, t) + (a - moff));
        }
    }
    safetensors_close(&f);
    return rc;
}

// optimizer.rank-R-of-W.safetensors: the slices of another world, re-cut into this rank's.
static int read_sharded_moments(const char *dir, const char *state, const json_t *j, const LlavaModel *model,
                                Optimizer *o) {
    const json_t *shards = json_object_get(j, "optimizer_shards"), *packed = json_object_get(j, "packed_tensors");
    size_t world = json_array_size(shards);
    if (!json_is_array(shards) || world == 0 || !json_is_array(packed))
        return vlm_fail(VLM_ERR_INPUT, state, "optimizer_shards", "missing: no optimizer.safetensors and no shard layout");
    // the same trained tensors in the same order, or the slices mean something else
    bool same = (int)json_array_size(packed) == o->n_ranges;
    for (int r = 0; same && r < o->n_ranges; r++) {
        const json_t *e = json_array_get(packed, (size_t)r);
        const char *name = json_string_value(json_array_get(e, 0));
        same = name && strcmp(name, model->params.specs[o->spec[r]].name) == 0 &&
               json_integer_value(json_array_get(e, 1)) == (json_int_t)o->ranges[2 * r + 1];
    }
    if (!same)
        return vlm_fail(VLM_ERR_INPUT, state, "packed_tensors",
                        "the checkpoint's trained tensors differ from this run's (was it trained with other modules?)");
    int rc = VLM_OK;
    for (size_t k = 0; k < world && rc == VLM_OK; k++) {
        json_int_t lo = json_integer_value(json_array_get(json_array_get(shards, k), 0));
        json_int_t hi = json_integer_value(json_array_get(json_array_get(shards, k), 1));
        if (lo < 0 || hi < lo || (size_t)hi > o->n_packed)
            return vlm_fail(VLM_ERR_INPUT, state, "optimizer_shards", "slice %zu is [%lld, %lld) of %zu", k,
                            (long long)lo, (long long)hi, o->n_packed);
        size_t a = (size_t)lo > o->shard_lo ? (size_t)lo : o->shard_lo, b = (size_t)hi < o->shard_hi ? (size_t)hi : o->shard_hi;
        if (a >= b) continue;  // none of this rank's slice
        char name[96];
        snprintf(name, sizeof name, "optimizer.rank-%zu-of-%zu.safetensors", k, world);
        char *path = path_join(dir, name);
        SafetensorsFile f;
        rc = path ? safetensors_open(&f, path) : VLM_ERR_FAIL;
        bool opened = rc == VLM_OK;
        for (int m = 0; m < 2 && rc == VLM_OK; m++) {
            int t = safetensors_find(&f, m ? "exp_avg_sq" : "exp_avg");
            if (t < 0 || f.tensors[t].dtype != DT_F32 || f.tensors[t].nbytes != (size_t)(hi - lo) * sizeof(float))
                rc = vlm_fail(VLM_ERR_INPUT, path, m ? "exp_avg_sq" : "exp_avg", "expected F32 with %lld elements",
                              (long long)(hi - lo));
            else
                copy_slice(o, m, a, b, (const float *)safetensors_tensor_data(&f, t) + (a - (size_t)lo));
        }
        if (opened) safetensors_close(&f);
        free(path);
    }
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
    if (rc == VLM_OK)
        rc = file_exists(path) ? read_named_moments(path, model, o) : read_sharded_moments(dir, state, j, model, o);
    if (rc == VLM_OK) o->adam.step = adam_step;
    json_decref(j);
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
