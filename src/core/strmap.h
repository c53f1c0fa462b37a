// A hash map from byte strings to int32 values (open addressing, FNV-1a).
// Keys are not copied: they must outlive the map (tokenizers keep them in
// one arena). Lookups take (pointer, length), so a substring of a larger
// buffer can be looked up without copying it, which BPE merging does often.
#ifndef VLM_CORE_STRMAP_H
#define VLM_CORE_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *key;  // NULL: empty slot
    uint32_t len;
    int32_t value;
} StrMapSlot;

typedef struct {
    StrMapSlot *slots;
    size_t cap;    // power of two
    size_t count;
} StrMap;

int strmap_init(StrMap *m, size_t expected);
// Inserts or replaces. VLM_OK or an out-of-memory error.
int strmap_put(StrMap *m, const char *key, size_t len, int32_t value);
// The value, or -1 when absent.
int32_t strmap_get(const StrMap *m, const char *key, size_t len);
void strmap_free(StrMap *m);

#endif
