// safetensors reading and writing, see safetensors.h.
#include "formats/safetensors.h"

#include <stdlib.h>  // free, qsort
#include <string.h>  // memcmp, strcmp

#include "core/alloc.h"
#include "core/error.h"
#include "core/json.h"

static uint64_t load_u64_le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

// Reads a non-negative JSON integer.
static int json_to_u64(const json_t *j, uint64_t *out) {
    if (!json_is_integer(j) || json_integer_value(j) < 0) return -1;
    *out = (uint64_t)json_integer_value(j);
    return 0;
}

static int parse_metadata(SafetensorsFile *f, json_t *value, const char *name) {
    if (!json_is_object(value)) return vlm_fail(VLM_ERR_INPUT, name, "__metadata__", "must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(value, k, v) {
        if (!json_is_string(v))
            return vlm_fail(VLM_ERR_INPUT, name, "__metadata__", "value of '%s' is not a string", k);
    }
    f->metadata = json_incref(value);
    return VLM_OK;
}

static int parse_tensor_entry(TensorInfo *info, size_t *begin, size_t *end, const char *key, json_t *value,
                              const char *name) {
    if (!json_is_object(value)) return vlm_fail(VLM_ERR_INPUT, name, key, "tensor entry is not an object");
    json_t *jdtype = NULL, *jshape = NULL, *joffsets = NULL;
    const char *field;
    json_t *fv;
    json_object_foreach(value, field, fv) {
        if (strcmp(field, "dtype") == 0) jdtype = fv;
        else if (strcmp(field, "shape") == 0) jshape = fv;
        else if (strcmp(field, "data_offsets") == 0) joffsets = fv;
        else return vlm_fail(VLM_ERR_INPUT, name, key, "unknown field '%s'", field);
    }
    if (!jdtype || !jshape || !joffsets)
        return vlm_fail(VLM_ERR_INPUT, name, key, "missing %s", !jdtype ? "dtype" : !jshape ? "shape" : "data_offsets");
    if (!json_is_string(jdtype)) return vlm_fail(VLM_ERR_INPUT, name, key, "dtype is not a string");
    if (dtype_from_name(json_string_value(jdtype), &info->dtype) != 0)
        return vlm_fail(VLM_ERR_INPUT, name, key, "unsupported dtype '%s'", json_string_value(jdtype));
    if (!json_is_array(jshape)) return vlm_fail(VLM_ERR_INPUT, name, key, "shape is not an array");
    size_t ndim = json_array_size(jshape);
    if (ndim > TENSOR_MAX_DIMS)
        return vlm_fail(VLM_ERR_INPUT, name, key, "%zu dimensions, at most %d supported", ndim, TENSOR_MAX_DIMS);
    info->ndim = (int)ndim;
    for (size_t d = 0; d < ndim; d++) {
        uint64_t dim;
        if (json_to_u64(json_array_get(jshape, d), &dim) != 0)
            return vlm_fail(VLM_ERR_INPUT, name, key, "shape[%zu] is not a non-negative integer", d);
        info->shape[d] = (int64_t)dim;
    }
    if (tensor_info_sizes(info) != 0) return vlm_fail(VLM_ERR_INPUT, name, key, "shape is too large (overflow)");
    uint64_t b, e;
    if (!json_is_array(joffsets) || json_array_size(joffsets) != 2 ||
        json_to_u64(json_array_get(joffsets, 0), &b) != 0 || json_to_u64(json_array_get(joffsets, 1), &e) != 0)
        return vlm_fail(VLM_ERR_INPUT, name, key, "data_offsets must be two non-negative integers");
    if (e < b) return vlm_fail(VLM_ERR_INPUT, name, key, "data_offsets [%llu, %llu] end before they begin",
                               (unsigned long long)b, (unsigned long long)e);
    if (e - b != info->nbytes) {
        char shape[128];
        shape_format(info->shape, info->ndim, shape, sizeof shape);
        return vlm_fail(VLM_ERR_INPUT, name, key, "data_offsets span %llu bytes but %s x %s needs %zu",
                        (unsigned long long)(e - b), shape, dtype_name(info->dtype), info->nbytes);
    }
    *begin = (size_t)b;
    *end = (size_t)e;
    info->name = vlm_strdup(key);
    return info->name ? VLM_OK : VLM_ERR_FAIL;
}

typedef struct { size_t begin, end; int index; } Span;

static int span_cmp(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

// The tensors must tile [0, data_size) exactly.
static int check_tiling(const SafetensorsFile *f, const size_t *ends, const char *name) {
    Span *spans = vlm_calloc((size_t)f->count, sizeof *spans);
    if (!spans) return VLM_ERR_FAIL;
    for (int i = 0; i < f->count; i++) spans[i] = (Span){f->begin[i], ends[i], i};
    qsort(spans, (size_t)f->count, sizeof *spans, span_cmp);
    size_t at = 0;
    int rc = VLM_OK;
    for (int i = 0; i < f->count && rc == VLM_OK; i++) {
        const char *t = f->tensors[spans[i].index].name;
        if (spans[i].begin < at)
            rc = vlm_fail(VLM_ERR_INPUT, name, t, "data_offsets [%zu, %zu] overlap the previous tensor (ends at %zu)",
                          spans[i].begin, spans[i].end, at);
        else if (spans[i].begin > at)
            rc = vlm_fail(VLM_ERR_INPUT, name, t, "data_offsets begin at %zu, leaving a gap after %zu",
                          spans[i].begin, at);
        else if (spans[i].end > f->data_size)
            rc = vlm_fail(VLM_ERR_INPUT, name, t, "data_offsets end at %zu, past the %zu bytes of data (truncated file?)",
                          spans[i].end, f->data_size);
        at = spans[i].end;
    }
    if (rc == VLM_OK && at != f->data_size)
        rc = vlm_fail(VLM_ERR_INPUT, name, NULL, "%zu bytes of data but the tensors cover %zu", f->data_size, at);
    free(spans);
    return rc;
}

int safetensors_parse(SafetensorsFile *f, const unsigned char *buf, size_t size, const char *name) {
    if (size < 8) return vlm_fail(VLM_ERR_INPUT, name, NULL, "file is %zu bytes, too small for a safetensors header", size);
    uint64_t n = load_u64_le(buf);
    if (n > SAFETENSORS_MAX_HEADER)
        return vlm_fail(VLM_ERR_INPUT, name, NULL, "header length %llu exceeds the %u-byte limit (not a safetensors file?)",
                        (unsigned long long)n, SAFETENSORS_MAX_HEADER);
    if (n > size - 8)
        return vlm_fail(VLM_ERR_INPUT, name, NULL, "header length %llu runs past the end of the %zu-byte file (truncated?)",
                        (unsigned long long)n, size);
    if (n < 2 || buf[8] != '{') return vlm_fail(VLM_ERR_INPUT, name, NULL, "header does not start with '{'");
    f->data = buf + 8 + n;
    f->data_size = size - 8 - (size_t)n;

    json_error_t jerr;
    json_t *root = vlm_json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return vlm_fail(VLM_ERR_INPUT, name, NULL, "header is not valid JSON: %s (at byte %d)", jerr.text, jerr.position);
    int rc = VLM_OK;
    size_t *ends = NULL;
    if (!json_is_object(root)) {
        rc = vlm_fail(VLM_ERR_INPUT, name, NULL, "header is not a JSON object");
        goto done;
    }
    size_t cap = json_object_size(root);
    f->tensors = vlm_calloc(cap, sizeof *f->tensors);
    f->begin = vlm_calloc(cap, sizeof *f->begin);
    ends = vlm_calloc(cap, sizeof *ends);
    if (!f->tensors || !f->begin || !ends) { rc = VLM_ERR_FAIL; goto done; }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        if (strcmp(key, "__metadata__") == 0) rc = parse_metadata(f, value, name);
        else {
            rc = parse_tensor_entry(&f->tensors[f->count], &f->begin[f->count], &ends[f->count], key, value, name);
            if (rc == VLM_OK) f->count++;
        }
        if (rc != VLM_OK) goto done;
    }
    rc = check_tiling(f, ends, name);
done:
    free(ends);
    json_decref(root);
    return rc;
}

int safetensors_open(SafetensorsFile *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = vlm_strdup(path);
    if (!f->path) return VLM_ERR_FAIL;
    int rc = file_map(path, &f->map);
    if (rc == VLM_OK) rc = safetensors_parse(f, f->map.data, f->map.size, path);
    if (rc != VLM_OK) safetensors_close(f);
    return rc;
}

const void *safetensors_tensor_data(const SafetensorsFile *f, int i) { return f->data + f->begin[i]; }

int safetensors_find(const SafetensorsFile *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return i;
    return -1;
}

void safetensors_close(SafetensorsFile *f) {
    if (f->tensors)
        for (int i = 0; i < f->count; i++) free(f->tensors[i].name);
    free(f->tensors);
    free(f->begin);
    json_decref(f->metadata);
    file_unmap(&f->map);
    free(f->path);
    memset(f, 0, sizeof *f);
}

// ----------------------------------------------------------------------------
// writing

static json_t *build_header(const TensorInfo *infos, int count, const json_t *metadata, const char *path, int *rc) {
    json_t *root = json_object();
    if (metadata) {
        if (!json_is_object(metadata)) {
            *rc = vlm_fail(VLM_ERR_INPUT, path, "__metadata__", "must be an object of strings");
            json_decref(root);
            return NULL;
        }
        json_object_set(root, "__metadata__", (json_t *)metadata);
    }
    size_t offset = 0;
    for (int i = 0; i < count; i++) {
        const TensorInfo *t = &infos[i];
        if (json_object_get(root, t->name)) {
            *rc = vlm_fail(VLM_ERR_INPUT, path, t->name, "duplicate tensor name");
            json_decref(root);
            return NULL;
        }
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *entry = json_object();
        json_object_set_new(entry, "dtype", json_string(dtype_name(t->dtype)));
        json_object_set_new(entry, "shape", shape);
        json_object_set_new(entry, "data_offsets",
                            json_pack("[II]", (json_int_t)offset, (json_int_t)(offset + t->nbytes)));
        json_object_set_new(root, t->name, entry);
        offset += t->nbytes;
    }
    return root;
}

int safetensors_writer_begin(SafetensorsWriter *w, const char *path, const TensorInfo *infos, int count,
                             const json_t *metadata) {
    memset(w, 0, sizeof *w);
    w->infos = infos;
    w->count = count;
    int rc = VLM_OK;
    json_t *root = build_header(infos, count, metadata, path, &rc);
    if (!root) return rc;
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) return vlm_fail(VLM_ERR_FAIL, path, NULL, "cannot serialise header");
    // pad with spaces so the data section starts 8-byte aligned, as the reference does
    size_t n = strlen(text);
    size_t padded = (n + 7) & ~(size_t)7;
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    rc = atomic_open(&w->file, path);
    if (rc == VLM_OK) {
        fwrite(len, 1, 8, w->file.fp);
        fwrite(text, 1, n, w->file.fp);
        for (size_t i = n; i < padded; i++) fputc(' ', w->file.fp);
    }
    free(text);
    return rc;
}

int safetensors_writer_add(SafetensorsWriter *w, const void *data) {
    if (w->next >= w->count) return vlm_fail(VLM_ERR_FAIL, w->file.final_path, NULL, "more tensors than declared");
    size_t n = w->infos[w->next].nbytes;
    if (n && fwrite(data, 1, n, w->file.fp) != n)
        return vlm_fail_errno(VLM_ERR_FAIL, w->file.final_path, w->infos[w->next].name, "write failed");
    w->next++;
    return VLM_OK;
}

int safetensors_writer_commit(SafetensorsWriter *w) {
    if (w->next != w->count) {
        int rc = vlm_fail(VLM_ERR_FAIL, w->file.final_path, NULL, "%d of %d tensors written", w->next, w->count);
        atomic_abort(&w->file);
        return rc;
    }
    return atomic_commit(&w->file);
}

void safetensors_writer_abort(SafetensorsWriter *w) { atomic_abort(&w->file); }

int safetensors_write(const char *path, const TensorInfo *infos, const void *const *datas, int count,
                      const json_t *metadata) {
    SafetensorsWriter w;
    int rc = safetensors_writer_begin(&w, path, infos, count, metadata);
    for (int i = 0; i < count && rc == VLM_OK; i++) rc = safetensors_writer_add(&w, datas[i]);
    if (rc != VLM_OK) {
        safetensors_writer_abort(&w);
        return rc;
    }
    return safetensors_writer_commit(&w);
}
