// String hash map, see strmap.h.
#include "core/strmap.h"

#include <stdlib.h>  // free
#include <string.h>  // memcmp

#include "core/alloc.h"
#include "core/error.h"

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

int strmap_init(StrMap *m, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;  // load factor <= 0.5
    m->slots = vlm_calloc(cap, sizeof *m->slots);
    m->cap = cap;
    m->count = 0;
    return m->slots ? VLM_OK : VLM_ERR_FAIL;
}

static StrMapSlot *find_slot(StrMapSlot *slots, size_t cap, const char *key, size_t len) {
    size_t i = (size_t)hash_bytes(key, len) & (cap - 1);
    while (slots[i].key && !(slots[i].len == len && memcmp(slots[i].key, key, len) == 0)) i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int grow(StrMap *m) {
    size_t cap = m->cap * 2;
    StrMapSlot *slots = vlm_calloc(cap, sizeof *slots);
    if (!slots) return VLM_ERR_FAIL;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) *find_slot(slots, cap, m->slots[i].key, m->slots[i].len) = m->slots[i];
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return VLM_OK;
}

int strmap_put(StrMap *m, const char *key, size_t len, int32_t value) {
    if ((m->count + 1) * 2 > m->cap && grow(m) != VLM_OK) return VLM_ERR_FAIL;
    StrMapSlot *s = find_slot(m->slots, m->cap, key, len);
    if (!s->key) m->count++;
    s->key = key;
    s->len = (uint32_t)len;
    s->value = value;
    return VLM_OK;
}

int32_t strmap_get(const StrMap *m, const char *key, size_t len) {
    const StrMapSlot *s = find_slot(m->slots, m->cap, key, len);
    return s->key ? s->value : -1;
}

void strmap_free(StrMap *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}
