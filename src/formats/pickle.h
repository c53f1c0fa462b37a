// A restricted unpickler for PyTorch checkpoints.
//
// Pickle is a program for a stack machine, and Python's unpickler will call
// any function the file names (os.system included): loading an untrusted
// .bin with torch.load can run arbitrary code. This reader executes nothing.
// It understands only the opcodes torch.save emits and only these globals:
//   collections.OrderedDict, torch._utils._rebuild_tensor_v2,
//   torch._utils._rebuild_parameter(_with_state), torch.<Type>Storage
// and builds a tree of plain values. Any other global or opcode is refused
// with an error naming it.
#ifndef VLM_FORMATS_PICKLE_H
#define VLM_FORMATS_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"

typedef enum {
    PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_BYTES,
    PV_TUPLE, PV_LIST, PV_DICT,
    PV_GLOBAL,   // one of the allowed callables / storage types
    PV_STORAGE,  // a persistent-id reference to data/<key> in the archive
    PV_TENSOR,
} PickleKind;

typedef enum { G_ORDERED_DICT, G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_STORAGE_TYPE } PickleGlobal;

typedef struct PickleValue PickleValue;
struct PickleValue {
    PickleKind kind;
    union {
        int64_t i;   // PV_INT, PV_BOOL
        double f;    // PV_FLOAT
        struct { const char *data; size_t len; } str;  // PV_STR, PV_BYTES (NUL-terminated)
        struct { PickleValue **items; size_t len, cap; } seq;  // PV_TUPLE, PV_LIST
        struct { PickleValue **keys, **values; size_t len, cap; } dict;
        struct { PickleGlobal which; DType dtype; } global;
        struct { DType dtype; const char *key; int64_t numel; } storage;
        struct {
            const PickleValue *storage;
            int64_t offset;  // in elements
            int ndim;
            int64_t shape[TENSOR_MAX_DIMS], stride[TENSOR_MAX_DIMS];
        } tensor;
    } u;
};

// All values of one load live in one arena, freed together.
typedef struct PickleArena PickleArena;

// Loads a pickle; *result points into *arena. name is used in errors.
int pickle_load(const unsigned char *data, size_t size, const char *name, PickleArena **arena, PickleValue **result);
void pickle_arena_free(PickleArena *arena);

#endif
