// Checkpoint files and directories, see checkpoint.h.
#include "formats/checkpoint.h"

#include <jansson.h>  // index files
#include <stdlib.h>   // free, qsort
#include <string.h>   // strcmp, strchr, strstr

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/str.h"

#define MAX_INDEX_BYTES (64u << 20)

static int open_shard(Checkpoint *ck, int s) {
    if (ck->kind == CKPT_SAFETENSORS) return safetensors_open(&ck->st[s], ck->shard_paths[s]);
    return torch_bin_open(&ck->tb[s], ck->shard_paths[s]);
}

static int shard_count(const Checkpoint *ck, int s) {
    return ck->kind == CKPT_SAFETENSORS ? ck->st[s].count : ck->tb[s].count;
}

static const TensorInfo *shard_info(const Checkpoint *ck, int s, int i) {
    return ck->kind == CKPT_SAFETENSORS ? &ck->st[s].tensors[i] : &ck->tb[s].tensors[i].info;
}

static int alloc_shards(Checkpoint *ck, int n) {
    ck->n_shards = n;
    ck->shard_paths = vlm_calloc((size_t)n, sizeof *ck->shard_paths);
    if (ck->kind == CKPT_SAFETENSORS) ck->st = vlm_calloc((size_t)n, sizeof *ck->st);
    else ck->tb = vlm_calloc((size_t)n, sizeof *ck->tb);
    return ck->shard_paths && (ck->st || ck->tb) ? VLM_OK : VLM_ERR_FAIL;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(((const CheckpointTensor *)a)->info->name, ((const CheckpointTensor *)b)->info->name);
}

// Gathers every shard's tensors into one sorted table; names must be unique.
static int build_table(Checkpoint *ck) {
    size_t total = 0;
    for (int s = 0; s < ck->n_shards; s++) total += (size_t)shard_count(ck, s);
    ck->tensors = vlm_calloc(total, sizeof *ck->tensors);
    if (!ck->tensors) return VLM_ERR_FAIL;
    for (int s = 0; s < ck->n_shards; s++) {
        for (int i = 0; i < shard_count(ck, s); i++)
            ck->tensors[ck->count++] = (CheckpointTensor){shard_info(ck, s, i), s, i};
        if (ck->kind == CKPT_TORCH_BIN) ck->skipped += ck->tb[s].skipped;
    }
    qsort(ck->tensors, (size_t)ck->count, sizeof *ck->tensors, name_cmp);
    for (int i = 1; i < ck->count; i++) {
        if (strcmp(ck->tensors[i - 1].info->name, ck->tensors[i].info->name) == 0)
            return vlm_fail(VLM_ERR_INPUT, ck->path, ck->tensors[i].info->name, "tensor appears in both %s and %s",
                            ck->shard_paths[ck->tensors[i - 1].shard], ck->shard_paths[ck->tensors[i].shard]);
    }
    return VLM_OK;
}

// A shard file name from an index must stay inside the model directory.
static int safe_shard_name(const char *name) {
    return name[0] && name[0] != '/' && !strstr(name, "..") && !strchr(name, '\\');
}

// Opens each distinct shard named in the index's weight_map and checks the
// map against the shards' contents.
static int open_index(Checkpoint *ck, const char *index_path) {
    char *text;
    size_t size;
    int rc = file_read_all(index_path, MAX_INDEX_BYTES, &text, &size);
    if (rc != VLM_OK) return rc;
    json_error_t jerr;
    json_t *root = vlm_json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root) return vlm_fail(VLM_ERR_INPUT, index_path, NULL, "invalid JSON: %s (line %d)", jerr.text, jerr.line);
    json_t *map = json_object_get(root, "weight_map");
    char *dir = path_dirname(index_path);
    json_t *files = json_array();  // distinct shard names in first-seen order
    if (!json_is_object(map)) {
        rc = vlm_fail(VLM_ERR_INPUT, index_path, NULL, "no \"weight_map\" object");
        goto done;
    }
    const char *tensor;
    json_t *file;
    json_object_foreach(map, tensor, file) {
        if (!json_is_string(file) || !safe_shard_name(json_string_value(file))) {
            rc = vlm_fail(VLM_ERR_INPUT, index_path, tensor, "shard must be a file name inside the model directory");
            goto done;
        }
        size_t k;
        json_t *seen;
        int found = 0;
        json_array_foreach(files, k, seen) found |= json_equal(seen, file);
        if (!found) json_array_append(files, file);
    }
    rc = alloc_shards(ck, (int)json_array_size(files));
    for (int s = 0; s < ck->n_shards && rc == VLM_OK; s++) {
        ck->shard_paths[s] = path_join(dir, json_string_value(json_array_get(files, (size_t)s)));
        rc = ck->shard_paths[s] ? open_shard(ck, s) : VLM_ERR_FAIL;
    }
    if (rc != VLM_OK) goto done;
    // every mapped tensor is in its shard, and every shard tensor is mapped there
    json_object_foreach(map, tensor, file) {
        int s = 0;
        while (strcmp(json_string_value(json_array_get(files, (size_t)s)), json_string_value(file)) != 0) s++;
        int found = ck->kind == CKPT_SAFETENSORS ? safetensors_find(&ck->st[s], tensor) : torch_bin_find(&ck->tb[s], tensor);
        if (found < 0) {
            rc = vlm_fail(VLM_ERR_INPUT, index_path, tensor, "listed in weight_map but missing from %s", ck->shard_paths[s]);
            goto done;
        }
    }
    for (int s = 0; s < ck->n_shards; s++) {
        for (int i = 0; i < shard_count(ck, s); i++) {
            const char *name = shard_info(ck, s, i)->name;
            json_t *mapped = json_object_get(map, name);
            if (!mapped || strcmp(json_string_value(mapped), json_string_value(json_array_get(files, (size_t)s))) != 0) {
                rc = vlm_fail(VLM_ERR_INPUT, ck->shard_paths[s], name, "tensor is not listed for this shard in %s", index_path);
                goto done;
            }
        }
    }
done:
    json_decref(files);
    json_decref(root);
    free(dir);
    return rc;
}

static int open_single(Checkpoint *ck, const char *file) {
    int rc = alloc_shards(ck, 1);
    if (rc != VLM_OK) return rc;
    ck->shard_paths[0] = vlm_strdup(file);
    return ck->shard_paths[0] ? open_shard(ck, 0) : VLM_ERR_FAIL;
}

// Decides the kind of a single file from its first bytes; the name only
// decides which error a file that is neither kind gets.
static int sniff_kind(const char *path, CheckpointKind *kind) {
    MappedFile m;
    int rc = file_map(path, &m);
    if (rc != VLM_OK) return rc;
    int zip = torch_bin_sniff(m.data, m.size);
    // pickle PROTO opcode; a safetensors file may start with 0x80 too (the low byte of its header
    // length), and always has its JSON header's '{' at offset 8
    int raw_pickle = m.size > 0 && m.data[0] == 0x80 && !(m.size > 8 && m.data[8] == '{');
    file_unmap(&m);
    if (!zip && raw_pickle)
        return vlm_fail(VLM_ERR_INPUT, path, NULL, "legacy (pre-1.6) torch.save format is not supported: "
                                                   "re-save it with a current torch, or convert it to safetensors");
    int torch_name = str_has_suffix(path, ".bin") || str_has_suffix(path, ".pt") || str_has_suffix(path, ".pth");
    *kind = zip || torch_name ? CKPT_TORCH_BIN : CKPT_SAFETENSORS;
    return VLM_OK;
}

static const char *const DIR_CANDIDATES[] = {
    "model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json", "pytorch_model.bin",
};

int checkpoint_open(Checkpoint *ck, const char *path) {
    memset(ck, 0, sizeof *ck);
    ck->path = vlm_strdup(path);
    if (!ck->path) return VLM_ERR_FAIL;
    char *file = NULL;
    int rc = VLM_OK;
    if (dir_exists(path)) {
        for (size_t i = 0; i < sizeof DIR_CANDIDATES / sizeof *DIR_CANDIDATES && !file; i++) {
            char *candidate = path_join(path, DIR_CANDIDATES[i]);
            if (candidate && file_exists(candidate)) file = candidate;
            else free(candidate);
        }
        if (!file) {
            rc = vlm_fail(VLM_ERR_INPUT, path, NULL, "no weights found (looked for model.safetensors[.index.json] "
                                                     "and pytorch_model.bin[.index.json])");
            goto done;
        }
    } else {
        file = vlm_strdup(path);
    }
    if (str_has_suffix(file, ".index.json")) {
        ck->sharded = 1;
        ck->kind = strstr(file, ".safetensors.index.json") ? CKPT_SAFETENSORS : CKPT_TORCH_BIN;
        rc = open_index(ck, file);
    } else {
        rc = sniff_kind(file, &ck->kind);
        if (rc == VLM_OK) rc = open_single(ck, file);
    }
    if (rc == VLM_OK) rc = build_table(ck);
done:
    free(file);
    if (rc != VLM_OK) checkpoint_close(ck);
    return rc;
}

int checkpoint_find(const Checkpoint *ck, const char *name) {
    int lo = 0, hi = ck->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(ck->tensors[mid].info->name, name);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int checkpoint_read(Checkpoint *ck, int i, void *dst) {
    const CheckpointTensor *t = &ck->tensors[i];
    if (ck->kind == CKPT_SAFETENSORS) {
        memcpy(dst, safetensors_tensor_data(&ck->st[t->shard], t->index), t->info->nbytes);
        return VLM_OK;
    }
    return torch_bin_read(&ck->tb[t->shard], t->index, dst);
}

int checkpoint_read_f32(Checkpoint *ck, int i, float *dst) {
    const CheckpointTensor *t = &ck->tensors[i];
    if (ck->kind == CKPT_SAFETENSORS) {
        // zero-copy source: convert straight from the mapping, then let its pages go (a 16-bit
        // file read into float32 would otherwise stay resident beside its copy until closed)
        const void *src = safetensors_tensor_data(&ck->st[t->shard], t->index);
        dtype_to_f32(t->info->dtype, src, dst, t->info->numel);
        file_release(src, t->info->nbytes);
        return VLM_OK;
    }
    if (t->info->dtype == DT_F32) return checkpoint_read(ck, i, dst);
    void *raw = vlm_malloc(t->info->nbytes);
    if (!raw) return VLM_ERR_FAIL;
    int rc = checkpoint_read(ck, i, raw);
    if (rc == VLM_OK) dtype_to_f32(t->info->dtype, raw, dst, t->info->numel);
    free(raw);
    return rc;
}

int checkpoint_read_f32_shaped(Checkpoint *ck, const char *name, const char *label, int ndim, const int64_t *shape,
                               float *dst) {
    int i = checkpoint_find(ck, name);
    if (i < 0) return vlm_fail(VLM_ERR_INPUT, label, name, "missing tensor");
    const TensorInfo *info = ck->tensors[i].info;
    bool same = info->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = info->shape[d] == shape[d];
    if (!same) {
        char got[128], want[128];
        shape_format(info->shape, info->ndim, got, sizeof got);
        shape_format(shape, ndim, want, sizeof want);
        return vlm_fail(VLM_ERR_INPUT, label, name, "shape %s, expected %s", got, want);
    }
    if (info->dtype != DT_F32 && info->dtype != DT_F16 && info->dtype != DT_BF16 && info->dtype != DT_F64)
        return vlm_fail(VLM_ERR_INPUT, label, name, "dtype %s is not a floating-point type", dtype_name(info->dtype));
    int rc = checkpoint_read_f32(ck, i, dst);
    return rc ? vlm_fail_context(rc, "%s", name) : VLM_OK;
}

const char *checkpoint_format(const Checkpoint *ck) { return ck->kind == CKPT_SAFETENSORS ? "safetensors" : "pytorch"; }

void checkpoint_close(Checkpoint *ck) {
    for (int s = 0; s < ck->n_shards; s++) {
        if (ck->st) safetensors_close(&ck->st[s]);
        if (ck->tb) torch_bin_close(&ck->tb[s]);
        if (ck->shard_paths) free(ck->shard_paths[s]);
    }
    free(ck->st);
    free(ck->tb);
    free(ck->shard_paths);
    free(ck->tensors);
    free(ck->path);
    memset(ck, 0, sizeof *ck);
}
