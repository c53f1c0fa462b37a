// PyTorch zip checkpoints, see torch_bin.h.
#include "formats/torch_bin.h"

#include <stdlib.h>  // free
#include <string.h>  // strlen, strcmp
#include <sys/stat.h>  // stat
#include <zip.h>     // libzip: zip_open, zip_fopen_index, zip_fread

#include "core/alloc.h"
#include "core/error.h"
#include "formats/pickle.h"

#define MAX_PICKLE_BYTES (512u << 20)

int torch_bin_sniff(const unsigned char *head, size_t n) {
    return n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4;
}

static int locate_storage(TorchBinFile *f, int i, zip_int64_t *index_out, size_t *storage_bytes);

// Reads a whole zip entry (bounded) into memory.
static int read_entry(TorchBinFile *f, zip_int64_t index, size_t max, unsigned char **out, size_t *size) {
    zip_stat_t st;
    if (zip_stat_index(f->zip, (zip_uint64_t)index, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        return vlm_fail(VLM_ERR_INPUT, f->path, NULL, "cannot stat zip entry %lld", (long long)index);
    if (st.size > max)
        return vlm_fail(VLM_ERR_INPUT, f->path, st.name, "entry is %llu bytes, over the %zu allowed",
                        (unsigned long long)st.size, max);
    unsigned char *buf = vlm_malloc((size_t)st.size + 1);
    if (!buf) return VLM_ERR_FAIL;
    zip_file_t *zf = zip_fopen_index(f->zip, (zip_uint64_t)index, 0);
    zip_int64_t got = zf ? zip_fread(zf, buf, st.size) : -1;
    if (zf) zip_fclose(zf);
    if (got < 0 || (zip_uint64_t)got != st.size) {
        free(buf);
        return vlm_fail(VLM_ERR_INPUT, f->path, st.name, "cannot read zip entry (truncated or corrupt archive)");
    }
    *out = buf;
    *size = (size_t)st.size;
    return VLM_OK;
}

// Finds ARCHIVE/data.pkl and remembers "ARCHIVE/".
static zip_int64_t find_data_pkl(TorchBinFile *f) {
    zip_int64_t n = zip_get_num_entries(f->zip, 0);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *name = zip_get_name(f->zip, (zip_uint64_t)i, 0);
        if (!name) continue;
        const char *slash = strchr(name, '/');
        if (slash && strcmp(slash, "/data.pkl") == 0) {
            size_t len = (size_t)(slash - name) + 1;
            f->prefix = vlm_malloc(len + 1);
            if (!f->prefix) return -1;
            memcpy(f->prefix, name, len);
            f->prefix[len] = '\0';
            return i;
        }
    }
    return -1;
}

static int add_tensor(TorchBinFile *f, const char *name, const PickleValue *t, int *cap) {
    const PickleValue *s = t->u.tensor.storage;
    if (f->count == *cap) {
        int ncap = *cap ? *cap * 2 : 64;
        TorchTensor *n = vlm_realloc(f->tensors, (size_t)ncap * sizeof *n);
        if (!n) return VLM_ERR_FAIL;
        f->tensors = n;
        *cap = ncap;
    }
    TorchTensor *tt = &f->tensors[f->count];
    memset(tt, 0, sizeof *tt);
    tt->info.dtype = s->u.storage.dtype;
    tt->info.ndim = t->u.tensor.ndim;
    memcpy(tt->info.shape, t->u.tensor.shape, sizeof tt->info.shape);
    memcpy(tt->stride, t->u.tensor.stride, sizeof tt->stride);
    tt->offset = t->u.tensor.offset;
    tt->storage_numel = s->u.storage.numel;
    if (tensor_info_sizes(&tt->info) != 0) return vlm_fail(VLM_ERR_INPUT, f->path, name, "tensor shape overflows");
    // the furthest element the view touches must lie inside the storage
    if (tt->info.numel > 0) {
        uint64_t last = (uint64_t)tt->offset, step;
        for (int d = 0; d < tt->info.ndim; d++) {
            if (__builtin_mul_overflow((uint64_t)(tt->info.shape[d] - 1), (uint64_t)tt->stride[d], &step) ||
                __builtin_add_overflow(last, step, &last))
                return vlm_fail(VLM_ERR_INPUT, f->path, name, "tensor view overflows");
        }
        if (last >= (uint64_t)tt->storage_numel)
            return vlm_fail(VLM_ERR_INPUT, f->path, name, "tensor view reaches element %llu of a %lld-element storage",
                            (unsigned long long)last, (long long)tt->storage_numel);
    }
    int64_t expect = 1;
    tt->contiguous = 1;
    for (int d = tt->info.ndim - 1; d >= 0; d--) {
        if (tt->info.shape[d] != 1 && tt->stride[d] != expect) tt->contiguous = 0;
        expect *= tt->info.shape[d];
    }
    tt->info.name = vlm_strdup(name);
    tt->storage_key = vlm_strdup(s->u.storage.key);
    if (!tt->info.name || !tt->storage_key) return VLM_ERR_FAIL;
    f->count++;
    return VLM_OK;
}

// Walks the unpickled object: dicts are flattened with '.', tensors collected.
static int collect(TorchBinFile *f, const PickleValue *v, char *prefix, size_t prefix_len, int *cap, int depth) {
    if (depth > 32) return vlm_fail(VLM_ERR_INPUT, f->path, NULL, "dicts nested deeper than 32");
    if (v->kind == PV_TENSOR) return add_tensor(f, prefix, v, cap);
    if (v->kind != PV_DICT) {
        f->skipped++;
        return VLM_OK;
    }
    for (size_t i = 0; i < v->u.dict.len; i++) {
        const PickleValue *k = v->u.dict.keys[i];
        if (k->kind != PV_STR) {
            f->skipped++;
            continue;
        }
        size_t need = prefix_len + (prefix_len ? 1 : 0) + k->u.str.len;
        if (need >= 4096) return vlm_fail(VLM_ERR_INPUT, f->path, NULL, "tensor name longer than 4096 bytes");
        size_t at = prefix_len;
        if (prefix_len) prefix[at++] = '.';
        memcpy(prefix + at, k->u.str.data, k->u.str.len);
        prefix[need] = '\0';
        int rc = collect(f, v->u.dict.values[i], prefix, need, cap, depth + 1);
        prefix[prefix_len] = '\0';
        if (rc != VLM_OK) return rc;
    }
    return VLM_OK;
}

static int check_duplicates(TorchBinFile *f) {
    for (int i = 0; i < f->count; i++)
        for (int j = i + 1; j < f->count; j++)
            if (strcmp(f->tensors[i].info.name, f->tensors[j].info.name) == 0)
                return vlm_fail(VLM_ERR_INPUT, f->path, f->tensors[i].info.name, "tensor name appears twice after flattening");
    return VLM_OK;
}

static int open_archive(TorchBinFile *f) {
    if (zip_get_num_entries(f->zip, 0) <= 0) return vlm_fail(VLM_ERR_INPUT, f->path, NULL, "empty zip archive");
    zip_int64_t pkl = find_data_pkl(f);
    if (pkl < 0)
        return vlm_fail(VLM_ERR_INPUT, f->path, NULL, "zip archive has no */data.pkl (not a torch.save checkpoint)");
    unsigned char *bytes = NULL;
    size_t size = 0;
    int rc = read_entry(f, pkl, MAX_PICKLE_BYTES, &bytes, &size);
    if (rc != VLM_OK) return rc;
    PickleArena *arena;
    PickleValue *root;
    char *where = vlm_malloc(strlen(f->path) + strlen(f->prefix) + 16);
    if (!where) { free(bytes); return VLM_ERR_FAIL; }
    sprintf(where, "%s:%sdata.pkl", f->path, f->prefix);
    rc = pickle_load(bytes, size, where, &arena, &root);
    free(where);
    if (rc == VLM_OK) {
        char name[4096] = "";
        int cap = 0;
        rc = collect(f, root, name, 0, &cap, 0);
        pickle_arena_free(arena);
    }
    free(bytes);
    if (rc == VLM_OK) rc = check_duplicates(f);
    // check every storage now, so a damaged file fails at open, not mid-run
    for (int i = 0; i < f->count && rc == VLM_OK; i++) {
        zip_int64_t index;
        size_t storage_bytes;
        if (f->tensors[i].info.numel > 0) rc = locate_storage(f, i, &index, &storage_bytes);
    }
    return rc;
}

int torch_bin_open(TorchBinFile *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = vlm_strdup(path);
    if (!f->path) return VLM_ERR_FAIL;
    int err = 0;
    f->zip = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!f->zip) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        int rc = vlm_fail(VLM_ERR_INPUT, path, NULL,
                          "not a readable zip archive (truncated, or not a torch.save checkpoint?): %s",
                          zip_error_strerror(&ze));
        zip_error_fini(&ze);
        torch_bin_close(f);
        return rc;
    }
    struct stat st;
    if (stat(path, &st) == 0) f->archive_size = (uint64_t)st.st_size;
    int rc = open_archive(f);
    if (rc != VLM_OK) torch_bin_close(f);
    return rc;
}

int torch_bin_open_memory(TorchBinFile *f, const void *buf, size_t size, const char *name) {
    memset(f, 0, sizeof *f);
    f->path = vlm_strdup(name);
    if (!f->path) return VLM_ERR_FAIL;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(buf, size, 0, &ze);
    if (src) f->zip = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (!f->zip) {
        int rc = vlm_fail(VLM_ERR_INPUT, name, NULL, "not a readable zip archive: %s", zip_error_strerror(&ze));
        if (src) zip_source_free(src);
        zip_error_fini(&ze);
        torch_bin_close(f);
        return rc;
    }
    zip_error_fini(&ze);
    f->archive_size = size;
    int rc = open_archive(f);
    if (rc != VLM_OK) torch_bin_close(f);
    return rc;
}

// Copies a strided view out of a storage buffer, one element at a time.
static void gather(const unsigned char *storage, const TorchTensor *t, unsigned char *dst) {
    size_t es = dtype_size(t->info.dtype);
    int64_t index[TENSOR_MAX_DIMS] = {0};
    for (uint64_t n = 0; n < t->info.numel; n++) {
        int64_t src = t->offset;
        for (int d = 0; d < t->info.ndim; d++) src += index[d] * t->stride[d];
        memcpy(dst + n * es, storage + (size_t)src * es, es);
        for (int d = t->info.ndim - 1; d >= 0; d--) {
            if (++index[d] < t->info.shape[d]) break;
            index[d] = 0;
        }
    }
}

// Finds tensor i's storage entry and checks it can hold the storage.
static int locate_storage(TorchBinFile *f, int i, zip_int64_t *index_out, size_t *storage_bytes) {
    TorchTensor *t = &f->tensors[i];
    char entry[4352];
    snprintf(entry, sizeof entry, "%sdata/%s", f->prefix, t->storage_key);
    zip_int64_t index = zip_name_locate(f->zip, entry, 0);
    if (index < 0) return vlm_fail(VLM_ERR_INPUT, f->path, t->info.name, "storage entry '%s' is missing", entry);
    zip_stat_t st;
    size_t es = dtype_size(t->info.dtype);
    if (!size_mul((size_t)t->storage_numel, es, storage_bytes))
        return vlm_fail(VLM_ERR_INPUT, f->path, t->info.name, "storage size overflows");
    if (zip_stat_index(f->zip, (zip_uint64_t)index, 0, &st) != 0)
        return vlm_fail(VLM_ERR_INPUT, f->path, t->info.name, "cannot stat storage '%s'", entry);
    // torch.save stores storages uncompressed; refusing anything else also
    // keeps a lying "uncompressed size" (a zip bomb) from sizing our buffers
    if (st.comp_method != ZIP_CM_STORE || st.comp_size != st.size || st.size > f->archive_size)
        return vlm_fail(VLM_ERR_INPUT, f->path, t->info.name, "storage '%s' is compressed or larger than the archive", entry);
    if (st.size < *storage_bytes)
        return vlm_fail(VLM_ERR_INPUT, f->path, t->info.name, "storage '%s' holds %llu bytes, %zu expected (truncated?)",
                        entry, (unsigned long long)st.size, *storage_bytes);
    *index_out = index;
    return VLM_OK;
}

int torch_bin_read(TorchBinFile *f, int i, void *dst) {
    TorchTensor *t = &f->tensors[i];
    if (t->info.numel == 0) return VLM_OK;
    zip_int64_t index;
    size_t storage_bytes, es = dtype_size(t->info.dtype);
    int rc = locate_storage(f, i, &index, &storage_bytes);
    if (rc != VLM_OK) return rc;
    const char *entry = zip_get_name(f->zip, (zip_uint64_t)index, 0);
    zip_file_t *zf = zip_fopen_index(f->zip, (zip_uint64_t)index, 0);
    if (!zf) return vlm_fail(VLM_ERR_INPUT, f->path, t->info.name, "cannot open storage '%s'", entry);
    if (t->contiguous && zip_fseek(zf, (zip_int64_t)((size_t)t->offset * es), SEEK_SET) == 0) {
        zip_int64_t got = zip_fread(zf, dst, t->info.nbytes);
        if (got < 0 || (size_t)got != t->info.nbytes) rc = vlm_fail(VLM_ERR_INPUT, f->path, t->info.name, "short read of '%s' (corrupt archive?)", entry);
    } else {
        // compressed entry (no seek) or a strided view: read the storage, then gather
        zip_fclose(zf);
        zf = zip_fopen_index(f->zip, (zip_uint64_t)index, 0);
        unsigned char *storage = zf ? vlm_malloc(storage_bytes) : NULL;
        zip_int64_t got = storage ? zip_fread(zf, storage, storage_bytes) : -1;
        if (got < 0 || (size_t)got != storage_bytes) rc = vlm_fail(VLM_ERR_INPUT, f->path, t->info.name, "short read of '%s' (corrupt archive?)", entry);
        else gather(storage, t, dst);
        free(storage);
    }
    if (zf) zip_fclose(zf);
    return rc;
}

int torch_bin_find(const TorchBinFile *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].info.name, name) == 0) return i;
    return -1;
}

void torch_bin_close(TorchBinFile *f) {
    for (int i = 0; i < f->count; i++) {
        free(f->tensors[i].info.name);
        free(f->tensors[i].storage_key);
    }
    free(f->tensors);
    if (f->zip) zip_discard(f->zip);
    free(f->prefix);
    free(f->path);
    memset(f, 0, sizeof *f);
}
