// LLaVA-format datasets: one JSON array of records per file, of any size.
//
// Opening a file maps it and makes one pass that records where each
// top-level element starts and ends (strings and nesting tracked, nothing
// parsed), so a 1 GB file opens in seconds with memory for two integers per
// record; a record is parsed only when asked for. Several files, each with
// its own image folder, form one dataset without a merge step.
#ifndef VLM_DATA_DATASET_H
#define VLM_DATA_DATASET_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/file.h"

typedef struct {
    char *path;
    char *image_folder;  // may be NULL
    MappedFile map;      // the bytes (mapped by open, borrowed by from_memory)
    int borrowed;
    uint64_t *start;     // byte offset of record i
    uint32_t *len;       // its length in bytes
    size_t count;
} DatasetFile;

typedef struct {
    DatasetFile *files;
    int n_files;
    size_t count;        // records in all files
} Dataset;

// Indexes one file. Structural errors (not an array, unbalanced brackets,
// unterminated strings, trailing data) name the file, line and column.
int dataset_file_open(DatasetFile *f, const char *path, const char *image_folder);
// The same over bytes in memory (they must outlive f); name is used in errors.
int dataset_file_from_memory(DatasetFile *f, const void *data, size_t size, const char *name);
void dataset_file_close(DatasetFile *f);
// Parses record i of one file; errors name "FILE: record I".
int dataset_file_record(const DatasetFile *f, size_t i, json_t **out);

// A record's image path: under the file's image folder when it has one (fresh string).
char *dataset_image_path(const DatasetFile *f, const char *image);

int dataset_add(Dataset *d, const char *path, const char *image_folder);
void dataset_close(Dataset *d);
// Global record index -> file and record within it.
void dataset_locate(const Dataset *d, size_t index, int *file, size_t *record);

#endif
