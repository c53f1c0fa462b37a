// safetensors files: zero-copy reading with strict header validation, and
// atomic writing.
//
// Layout: u64 little-endian N, N bytes of UTF-8 JSON header, then the data.
// The header maps each tensor name to {dtype, shape, data_offsets [begin, end)}
// relative to the data section; "__metadata__" holds string -> string pairs.
// Like the reference (Rust) implementation we require the tensors to tile the
// data section exactly: no gaps, no overlaps, nothing after the last tensor.
#ifndef VLM_FORMATS_SAFETENSORS_H
#define VLM_FORMATS_SAFETENSORS_H

#include <jansson.h>  // json_t (metadata)
#include <stddef.h>

#include "core/file.h"
#include "formats/dtype.h"

#define SAFETENSORS_MAX_HEADER (100u * 1000u * 1000u)  // the reference's limit

typedef struct {
    char *path;
    MappedFile map;
    TensorInfo *tensors;  // in file order of their names as written in the header
    size_t *begin;        // data offset of each tensor within the data section
    int count;
    const unsigned char *data;  // start of the data section
    size_t data_size;
    json_t *metadata;     // the "__metadata__" object, or NULL
} SafetensorsFile;

int safetensors_open(SafetensorsFile *f, const char *path);
// Validates and indexes a file image already in memory (used by open and by
// the fuzzer). `name` is used in error messages; buf must outlive f.
int safetensors_parse(SafetensorsFile *f, const unsigned char *buf, size_t size, const char *name);
const void *safetensors_tensor_data(const SafetensorsFile *f, int i);
int safetensors_find(const SafetensorsFile *f, const char *name);  // index or -1
void safetensors_close(SafetensorsFile *f);

// Streaming writer: the header (from every tensor's info) goes first, then
// each tensor's data in the same order, then commit() renames into place.
typedef struct {
    AtomicFile file;
    const TensorInfo *infos;
    int count;
    int next;
} SafetensorsWriter;

// metadata: a JSON object of strings, or NULL. Tensors are written in the given order.
int safetensors_writer_begin(SafetensorsWriter *w, const char *path, const TensorInfo *infos, int count,
                             const json_t *metadata);
int safetensors_writer_add(SafetensorsWriter *w, const void *data);  // infos[next].nbytes bytes
int safetensors_writer_commit(SafetensorsWriter *w);
void safetensors_writer_abort(SafetensorsWriter *w);

// One-call form for tensors already in memory.
int safetensors_write(const char *path, const TensorInfo *infos, const void *const *datas, int count,
                      const json_t *metadata);

#endif
