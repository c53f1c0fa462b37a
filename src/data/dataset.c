// JSON-array indexing, see dataset.h.
#include "data/dataset.h"

#include <stdlib.h>    // free
#include <string.h>    // memchr
#include <sys/mman.h>  // madvise
#include <unistd.h>    // sysconf

#include "core/alloc.h"
#include "core/error.h"
#include "core/json.h"

// Line and column (1-based) of byte offset `at`, for messages.
static void line_col(const unsigned char *data, size_t at, size_t *line, size_t *col) {
    *line = 1;
    size_t last_nl = 0;
    for (const unsigned char *p = data; (p = memchr(p, '\n', at - (size_t)(p - data))); p++) {
        (*line)++;
        last_nl = (size_t)(p - data) + 1;
    }
    *col = at - last_nl + 1;
}

static int structure_error(const DatasetFile *f, size_t at, const char *what) {
    size_t line, col;
    line_col(f->map.data, at, &line, &col);
    return vlm_fail(VLM_ERR_INPUT, f->path, NULL, "malformed JSON at line %zu, column %zu: %s", line, col, what);
}

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int push_record(DatasetFile *f, size_t *cap, size_t start, size_t end) {
    if (end - start > UINT32_MAX) return vlm_fail(VLM_ERR_INPUT, f->path, NULL, "record %zu is larger than 4 GB", f->count);
    if (f->count == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        uint64_t *s = vlm_realloc(f->start, c * sizeof *s);
        if (!s) return VLM_ERR_FAIL;
        f->start = s;
        uint32_t *l = vlm_realloc(f->len, c * sizeof *l);
        if (!l) return VLM_ERR_FAIL;
        f->len = l;
        *cap = c;
    }
    f->start[f->count] = start;
    f->len[f->count++] = (uint32_t)(end - start);
    return VLM_OK;
}

// Drops the mapped pages of [0, upto) from our resident set: the pass reads
// each byte once, and a record's pages come back from the page cache when it
// is parsed. Keeps the peak resident memory of indexing a 1 GB file small.
static void release_scanned(const DatasetFile *f, size_t upto) {
    if (f->borrowed || !f->map.data) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    upto -= upto % page;
    if (upto) madvise((void *)f->map.data, upto, MADV_DONTNEED);
}

// One pass over the bytes: depth 1 is inside the top-level array, where
// commas separate records. Only structure is checked here; jansson checks
// each record's syntax when it is parsed.
static int index_records(DatasetFile *f) {
    const unsigned char *d = f->map.data;
    size_t n = f->map.size, i = 0, cap = 0;
    while (i < n && is_space(d[i])) i++;
    if (i == n || d[i] != '[') return structure_error(f, i, "a dataset is a JSON array of records");
    i++;
    int depth = 1;
    size_t record_start = 0;
    int in_record = 0;
    enum { MAX_DEPTH = 512 };
    const size_t RELEASE_EVERY = (size_t)64 << 20;
    size_t next_release = RELEASE_EVERY;
    char stack[MAX_DEPTH];
    stack[0] = '[';
    while (i < n) {
        if (i >= next_release) {
            release_scanned(f, i);
            next_release = i + RELEASE_EVERY;
        }
        unsigned char c = d[i];
        if (c == '"') {
            // skip the string: find the closing quote not preceded by a backslash escape
            size_t j = i + 1;
            for (;;) {
                const unsigned char *q = memchr(d + j, '"', n - j);
                const unsigned char *b = memchr(d + j, '\\', (q ? (size_t)(q - d) : n) - j);
                if (b) { j = (size_t)(b - d) + 2; if (j > n) j = n; continue; }
                if (!q) return structure_error(f, i, "unterminated string");
                j = (size_t)(q - d) + 1;
                break;
            }
            if (!in_record && depth == 1) { record_start = i; in_record = 1; }
            i = j;
            continue;
        }
        if (is_space(c)) { i++; continue; }
        if (depth == 1 && (c == ',' || c == ']')) {
            // only "[]" may close without an element before it
            if (!in_record && !(c == ']' && f->count == 0)) return structure_error(f, i, "empty element");
            if (in_record) {
                size_t end = i;
                while (end > record_start && is_space(d[end - 1])) end--;
                int rc = push_record(f, &cap, record_start, end);
                if (rc != VLM_OK) return rc;
                in_record = 0;
            }
            if (c == ']') {
                i++;
                while (i < n && is_space(d[i])) i++;
                if (i != n) return structure_error(f, i, "data after the closing ']'");
                return VLM_OK;
            }
            i++;
            size_t k = i;  // a comma must be followed by an element
            while (k < n && is_space(d[k])) k++;
            if (k < n && d[k] == ']') return structure_error(f, k, "trailing comma");
            continue;
        }
        if (!in_record && depth == 1) { record_start = i; in_record = 1; }
        if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH) return structure_error(f, i, "nested deeper than 512");
            stack[depth++] = (char)c;
        } else if (c == '}' || c == ']') {
            if ((c == '}') != (stack[depth - 1] == '{')) return structure_error(f, i, "mismatched bracket");
            depth--;
        }
        i++;
    }
    return structure_error(f, n, "the array is not closed (truncated file?)");
}

int dataset_file_open(DatasetFile *f, const char *path, const char *image_folder) {
    memset(f, 0, sizeof *f);
    f->path = vlm_strdup(path);
    f->image_folder = image_folder ? vlm_strdup(image_folder) : NULL;
    if (!f->path || (image_folder && !f->image_folder)) { dataset_file_close(f); return VLM_ERR_FAIL; }
    int rc = file_map(path, &f->map);
    if (rc == VLM_OK && f->map.size == 0) rc = vlm_fail(VLM_ERR_INPUT, path, NULL, "empty file");
    if (rc == VLM_OK) rc = index_records(f);
    if (rc == VLM_OK) release_scanned(f, f->map.size);
    if (rc != VLM_OK) dataset_file_close(f);
    return rc;
}

int dataset_file_from_memory(DatasetFile *f, const void *data, size_t size, const char *name) {
    memset(f, 0, sizeof *f);
    f->path = vlm_strdup(name);
    if (!f->path) return VLM_ERR_FAIL;
    f->map.data = data;
    f->map.size = size;
    f->borrowed = 1;
    int rc = size ? index_records(f) : vlm_fail(VLM_ERR_INPUT, name, NULL, "empty file");
    if (rc != VLM_OK) dataset_file_close(f);
    return rc;
}

void dataset_file_close(DatasetFile *f) {
    if (!f->borrowed) file_unmap(&f->map);
    free(f->start);
    free(f->len);
    free(f->path);
    free(f->image_folder);
    memset(f, 0, sizeof *f);
}

int dataset_file_record(const DatasetFile *f, size_t i, json_t **out) {
    json_error_t jerr;
    // DECODE_ANY: a record that is a bare number is a schema problem, not a syntax error
    *out = vlm_json_loadb((const char *)f->map.data + f->start[i], f->len[i], JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                          &jerr);
    if (*out) return VLM_OK;
    char record[32];
    snprintf(record, sizeof record, "record %zu", i);
    size_t line, col;
    line_col(f->map.data, (size_t)f->start[i] + (size_t)(jerr.position > 0 ? jerr.position : 0), &line, &col);
    return vlm_fail(VLM_ERR_INPUT, f->path, record, "invalid JSON at line %zu, column %zu: %s", line, col, jerr.text);
}

int dataset_add(Dataset *d, const char *path, const char *image_folder) {
    DatasetFile *files = vlm_realloc(d->files, (size_t)(d->n_files + 1) * sizeof *files);
    if (!files) return VLM_ERR_FAIL;
    d->files = files;
    int rc = dataset_file_open(&d->files[d->n_files], path, image_folder);
    if (rc != VLM_OK) return rc;
    d->count += d->files[d->n_files++].count;
    return VLM_OK;
}

void dataset_close(Dataset *d) {
    for (int i = 0; i < d->n_files; i++) dataset_file_close(&d->files[i]);
    free(d->files);
    memset(d, 0, sizeof *d);
}

void dataset_locate(const Dataset *d, size_t index, int *file, size_t *record) {
    int f = 0;
    while (f < d->n_files - 1 && index >= d->files[f].count) index -= d->files[f++].count;
    *file = f;
    *record = index;
}

char *dataset_image_path(const DatasetFile *f, const char *image) {
    return f->image_folder ? path_join(f->image_folder, image) : vlm_strdup(image);
}
