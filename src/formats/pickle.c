// Restricted unpickler, see pickle.h. Opcode semantics follow CPython's
// Lib/pickletools.py documentation (protocols 2-5).
#include "formats/pickle.h"

#include <stdlib.h>  // free
#include <string.h>  // memcpy, strcmp

#include "core/alloc.h"
#include "core/error.h"
#include "core/utf8.h"

// ----------------------------------------------------------------------------
// arena: bump allocation in chunks, with a cap proportional to the input so a
// hostile file cannot make us allocate much more than it weighs

typedef struct Chunk { struct Chunk *next; size_t used, cap; unsigned char data[]; } Chunk;
struct PickleArena { Chunk *head; size_t total, limit; };

static void *arena_alloc(PickleArena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (a->total + n > a->limit) return NULL;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        Chunk *c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    a->total += n;
    memset(p, 0, n);
    return p;
}

void pickle_arena_free(PickleArena *a) {
    if (!a) return;
    for (Chunk *c = a->head; c;) {
        Chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

// ----------------------------------------------------------------------------
// machine state

#define MAX_MARKS 4096

typedef struct {
    const unsigned char *data;
    size_t size, pos;
    const char *name;
    PickleArena *arena;
    PickleValue **stack;
    size_t sp, stack_cap;
    size_t marks[MAX_MARKS];
    int nmarks;
    PickleValue **memo;
    size_t memo_cap;
    size_t memo_count;  // distinct indices stored: MEMOIZE's next index
} Unpickler;

#define FAIL(u, ...) vlm_fail(VLM_ERR_INPUT, (u)->name, NULL, __VA_ARGS__)
#define OOM(u) FAIL(u, "pickle expands beyond the memory allowed for its size (hostile file?)")

static PickleValue *new_value(Unpickler *u, PickleKind kind) {
    PickleValue *v = arena_alloc(u->arena, sizeof *v);
    if (v) v->kind = kind;
    return v;
}

static int push(Unpickler *u, PickleValue *v) {
    if (!v) return OOM(u);
    if (u->sp == u->stack_cap) {
        // the stack can never hold more values than the input has bytes
        if (u->stack_cap >= u->size + 16) return FAIL(u, "pickle stack overflow");
        size_t cap = u->stack_cap ? u->stack_cap * 2 : 64;
        PickleValue **s = realloc(u->stack, cap * sizeof *s);
        if (!s) return OOM(u);
        u->stack = s;
        u->stack_cap = cap;
    }
    u->stack[u->sp++] = v;
    return VLM_OK;
}

static int pop(Unpickler *u, PickleValue **out) {
    size_t floor = u->nmarks ? u->marks[u->nmarks - 1] : 0;
    if (u->sp <= floor) return FAIL(u, "pickle stack underflow at byte %zu", u->pos);
    *out = u->stack[--u->sp];
    return VLM_OK;
}

static int need(Unpickler *u, size_t n) {
    if (u->size - u->pos < n) return FAIL(u, "pickle truncated at byte %zu", u->pos);
    return VLM_OK;
}

static uint64_t read_le(Unpickler *u, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | u->data[u->pos + (size_t)i];
    u->pos += (size_t)n;
    return v;
}

static PickleValue *new_string(Unpickler *u, PickleKind kind, const unsigned char *s, size_t n) {
    PickleValue *v = new_value(u, kind);
    if (!v) return NULL;
    char *d = arena_alloc(u->arena, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    v->u.str.data = d;
    v->u.str.len = n;
    return v;
}

static int seq_append(Unpickler *u, PickleValue *seq, PickleValue *item) {
    if (seq->u.seq.len == seq->u.seq.cap) {
        size_t cap = seq->u.seq.cap ? seq->u.seq.cap * 2 : 4;
        PickleValue **items = arena_alloc(u->arena, cap * sizeof *items);
        if (!items) return OOM(u);
        if (seq->u.seq.len) memcpy(items, seq->u.seq.items, seq->u.seq.len * sizeof *items);
        seq->u.seq.items = items;
        seq->u.seq.cap = cap;
    }
    seq->u.seq.items[seq->u.seq.len++] = item;
    return VLM_OK;
}

static int dict_set(Unpickler *u, PickleValue *d, PickleValue *k, PickleValue *v) {
    if (d->kind != PV_DICT) return FAIL(u, "SETITEM on a non-dict at byte %zu", u->pos);
    // keys of a state dict are strings; replace on repeat like Python does
    if (k->kind == PV_STR) {
        for (size_t i = 0; i < d->u.dict.len; i++) {
            const PickleValue *key = d->u.dict.keys[i];
            if (key->kind == PV_STR && key->u.str.len == k->u.str.len &&
                memcmp(key->u.str.data, k->u.str.data, k->u.str.len) == 0) {
                d->u.dict.values[i] = v;
                return VLM_OK;
            }
        }
    }
    if (d->u.dict.len == d->u.dict.cap) {
        size_t cap = d->u.dict.cap ? d->u.dict.cap * 2 : 8;
        PickleValue **keys = arena_alloc(u->arena, cap * sizeof *keys);
        PickleValue **values = arena_alloc(u->arena, cap * sizeof *values);
        if (!keys || !values) return OOM(u);
        if (d->u.dict.len) {
            memcpy(keys, d->u.dict.keys, d->u.dict.len * sizeof *keys);
            memcpy(values, d->u.dict.values, d->u.dict.len * sizeof *values);
        }
        d->u.dict.keys = keys;
        d->u.dict.values = values;
        d->u.dict.cap = cap;
    }
    d->u.dict.keys[d->u.dict.len] = k;
    d->u.dict.values[d->u.dict.len++] = v;
    return VLM_OK;
}

// Pops everything above the last mark into a fresh tuple or list.
static int pop_mark(Unpickler *u, PickleKind kind, PickleValue **out) {
    if (u->nmarks == 0) return FAIL(u, "pickle uses a missing MARK at byte %zu", u->pos);
    size_t from = u->marks[--u->nmarks];
    PickleValue *v = new_value(u, kind);
    if (!v) return OOM(u);
    for (size_t i = from; i < u->sp; i++)
        if (seq_append(u, v, u->stack[i]) != VLM_OK) return VLM_ERR_INPUT;
    u->sp = from;
    *out = v;
    return VLM_OK;
}

// ----------------------------------------------------------------------------
// globals: the whole attack surface, an explicit allow-list

static const struct { const char *name; DType dtype; } STORAGE_TYPES[] = {
    {"FloatStorage", DT_F32}, {"HalfStorage", DT_F16}, {"BFloat16Storage", DT_BF16},
    {"DoubleStorage", DT_F64}, {"LongStorage", DT_I64}, {"IntStorage", DT_I32},
    {"ShortStorage", DT_I16}, {"CharStorage", DT_I8}, {"ByteStorage", DT_U8}, {"BoolStorage", DT_BOOL},
};

static int resolve_global(Unpickler *u, const char *module, const char *name) {
    PickleValue *v = new_value(u, PV_GLOBAL);
    if (!v) return OOM(u);
    if (strcmp(module, "collections") == 0 && strcmp(name, "OrderedDict") == 0) {
        v->u.global.which = G_ORDERED_DICT;
    } else if (strcmp(module, "torch._utils") == 0 && strcmp(name, "_rebuild_tensor_v2") == 0) {
        v->u.global.which = G_REBUILD_TENSOR;
    } else if (strcmp(module, "torch._utils") == 0 &&
               (strcmp(name, "_rebuild_parameter") == 0 || strcmp(name, "_rebuild_parameter_with_state") == 0)) {
        v->u.global.which = G_REBUILD_PARAMETER;
    } else {
        int found = 0;
        if (strcmp(module, "torch") == 0) {
            for (size_t i = 0; i < sizeof STORAGE_TYPES / sizeof *STORAGE_TYPES; i++) {
                if (strcmp(name, STORAGE_TYPES[i].name) == 0) {
                    v->u.global.which = G_STORAGE_TYPE;
                    v->u.global.dtype = STORAGE_TYPES[i].dtype;
                    found = 1;
                }
            }
        }
        if (!found)
            return FAIL(u, "refusing pickle global '%s.%s': pickle can run arbitrary code, so only tensor "
                           "data is read from .bin files (convert with `vlm convert` or use safetensors)",
                        module, name);
    }
    return push(u, v);
}

static int as_int(const PickleValue *v, int64_t *out) {
    if (!v || (v->kind != PV_INT && v->kind != PV_BOOL)) return -1;
    *out = v->u.i;
    return 0;
}

static const PickleValue *tuple_item(const PickleValue *t, size_t i) {
    return (t->kind == PV_TUPLE && i < t->u.seq.len) ? t->u.seq.items[i] : NULL;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
static int rebuild_tensor(Unpickler *u, const PickleValue *args, PickleValue **out) {
    const PickleValue *storage = tuple_item(args, 0), *size = tuple_item(args, 2), *stride = tuple_item(args, 3);
    int64_t offset;
    if (!storage || storage->kind != PV_STORAGE || as_int(tuple_item(args, 1), &offset) != 0 || offset < 0 ||
        !size || size->kind != PV_TUPLE || !stride || stride->kind != PV_TUPLE || size->u.seq.len != stride->u.seq.len)
        return FAIL(u, "malformed _rebuild_tensor_v2 arguments at byte %zu", u->pos);
    if (size->u.seq.len > TENSOR_MAX_DIMS) return FAIL(u, "tensor with %zu dimensions", size->u.seq.len);
    PickleValue *t = new_value(u, PV_TENSOR);
    if (!t) return OOM(u);
    t->u.tensor.storage = storage;
    t->u.tensor.offset = offset;
    t->u.tensor.ndim = (int)size->u.seq.len;
    for (int d = 0; d < t->u.tensor.ndim; d++) {
        if (as_int(size->u.seq.items[d], &t->u.tensor.shape[d]) != 0 || t->u.tensor.shape[d] < 0 ||
            as_int(stride->u.seq.items[d], &t->u.tensor.stride[d]) != 0 || t->u.tensor.stride[d] < 0)
            return FAIL(u, "tensor size/stride must be non-negative integers (byte %zu)", u->pos);
    }
    *out = t;
    return VLM_OK;
}

static int op_reduce(Unpickler *u) {
    PickleValue *args, *callable, *result = NULL;
    if (pop(u, &args) != VLM_OK || pop(u, &callable) != VLM_OK) return VLM_ERR_INPUT;
    if (callable->kind != PV_GLOBAL || args->kind != PV_TUPLE)
        return FAIL(u, "REDUCE of a non-callable at byte %zu", u->pos);
    switch (callable->u.global.which) {
    case G_ORDERED_DICT:
        result = new_value(u, PV_DICT);
        if (!result) return OOM(u);
        break;
    case G_REBUILD_TENSOR:
        if (rebuild_tensor(u, args, &result) != VLM_OK) return VLM_ERR_INPUT;
        break;
    case G_REBUILD_PARAMETER:  // Parameter(data, requires_grad, hooks[, state]): the data is what we want
        result = (PickleValue *)tuple_item(args, 0);
        if (!result || result->kind != PV_TENSOR) return FAIL(u, "malformed _rebuild_parameter at byte %zu", u->pos);
        break;
    case G_STORAGE_TYPE:
        return FAIL(u, "storage types are not callable (byte %zu)", u->pos);
    }
    return push(u, result);
}

// persistent id ('storage', storage_type, key, location, numel)
static int op_binpersid(Unpickler *u) {
    PickleValue *pid;
    if (pop(u, &pid) != VLM_OK) return VLM_ERR_INPUT;
    const PickleValue *tag = tuple_item(pid, 0), *type = tuple_item(pid, 1), *key = tuple_item(pid, 2);
    int64_t numel;
    if (!tag || tag->kind != PV_STR || strcmp(tag->u.str.data, "storage") != 0 || !type ||
        type->kind != PV_GLOBAL || type->u.global.which != G_STORAGE_TYPE || !key || key->kind != PV_STR ||
        as_int(tuple_item(pid, 4), &numel) != 0 || numel < 0)
        return FAIL(u, "unsupported persistent id at byte %zu (expected a torch storage)", u->pos);
    PickleValue *s = new_value(u, PV_STORAGE);
    if (!s) return OOM(u);
    s->u.storage.dtype = type->u.global.dtype;
    s->u.storage.key = key->u.str.data;
    s->u.storage.numel = numel;
    return push(u, s);
}

static int memo_put(Unpickler *u, uint64_t index) {
    if (u->sp == 0) return FAIL(u, "memo store with an empty stack");
    // memo indices are dense (0, 1, 2, ...): one larger than the input is hostile
    if (index >= u->size) return FAIL(u, "memo index %llu out of range", (unsigned long long)index);
    if (index >= u->memo_cap) {
        size_t cap = u->memo_cap ? u->memo_cap : 64;
        while (cap <= index) cap *= 2;
        PickleValue **m = realloc(u->memo, cap * sizeof *m);
        if (!m) return OOM(u);
        memset(m + u->memo_cap, 0, (cap - u->memo_cap) * sizeof *m);
        u->memo = m;
        u->memo_cap = cap;
    }
    if (!u->memo[index]) u->memo_count++;
    u->memo[index] = u->stack[u->sp - 1];
    return VLM_OK;
}

static int memo_get(Unpickler *u, uint64_t index) {
    if (index >= u->memo_cap || !u->memo[index])
        return FAIL(u, "memo index %llu used before it was stored", (unsigned long long)index);
    return push(u, u->memo[index]);
}

// GLOBAL's argument: "module\nname\n"
static int op_global(Unpickler *u) {
    const unsigned char *start = u->data + u->pos, *end = u->data + u->size;
    const unsigned char *nl1 = memchr(start, '\n', (size_t)(end - start));
    const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
    if (!nl2 || nl1 - start > 255 || nl2 - nl1 > 256) return FAIL(u, "malformed GLOBAL at byte %zu", u->pos);
    char module[256], name[256];
    memcpy(module, start, (size_t)(nl1 - start));
    module[nl1 - start] = '\0';
    memcpy(name, nl1 + 1, (size_t)(nl2 - nl1 - 1));
    name[nl2 - nl1 - 1] = '\0';
    u->pos = (size_t)(nl2 + 1 - u->data);
    return resolve_global(u, module, name);
}

static int op_stack_global(Unpickler *u) {
    PickleValue *name, *module;
    if (pop(u, &name) != VLM_OK || pop(u, &module) != VLM_OK) return VLM_ERR_INPUT;
    if (name->kind != PV_STR || module->kind != PV_STR) return FAIL(u, "STACK_GLOBAL needs two strings");
    return resolve_global(u, module->u.str.data, name->u.str.data);
}

static int push_int(Unpickler *u, int64_t i) {
    PickleValue *v = new_value(u, PV_INT);
    if (v) v->u.i = i;
    return push(u, v);
}

// LONG1: little-endian two's complement of n bytes; only 64-bit values are supported.
static int op_long1(Unpickler *u) {
    if (need(u, 1) != VLM_OK) return VLM_ERR_INPUT;
    size_t n = u->data[u->pos++];
    if (n > 8) return FAIL(u, "integer wider than 64 bits at byte %zu", u->pos);
    if (need(u, n) != VLM_OK) return VLM_ERR_INPUT;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)u->data[u->pos + i] << (8 * i);
    if (n > 0 && n < 8 && (u->data[u->pos + n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);  // sign-extend
    u->pos += n;
    return push_int(u, (int64_t)v);
}

static int op_string(Unpickler *u, PickleKind kind, int len_bytes) {
    if (need(u, (size_t)len_bytes) != VLM_OK) return VLM_ERR_INPUT;
    uint64_t n = read_le(u, len_bytes);
    if (need(u, n) != VLM_OK) return VLM_ERR_INPUT;
    // text in a state dict is tensor names: one we cannot print or write to JSON is an error
    if (kind == PV_STR && utf8_invalid_at((const char *)u->data + u->pos, (size_t)n, false) != (size_t)n)
        return FAIL(u, "string at byte %zu is not valid UTF-8 text", u->pos);
    PickleValue *v = new_string(u, kind, u->data + u->pos, (size_t)n);
    u->pos += (size_t)n;
    return push(u, v);
}

static int op_setitems(Unpickler *u) {
    if (u->nmarks == 0) return FAIL(u, "SETITEMS without MARK");
    size_t from = u->marks[--u->nmarks];
    if (from == 0 || (u->sp - from) % 2 != 0) return FAIL(u, "malformed SETITEMS at byte %zu", u->pos);
    PickleValue *d = u->stack[from - 1];
    for (size_t i = from; i < u->sp; i += 2)
        if (dict_set(u, d, u->stack[i], u->stack[i + 1]) != VLM_OK) return VLM_ERR_INPUT;
    u->sp = from;
    return VLM_OK;
}

static int op_appends(Unpickler *u) {
    if (u->nmarks == 0) return FAIL(u, "APPENDS without MARK");
    size_t from = u->marks[--u->nmarks];
    if (from == 0 || u->stack[from - 1]->kind != PV_LIST) return FAIL(u, "APPENDS to a non-list at byte %zu", u->pos);
    for (size_t i = from; i < u->sp; i++)
        if (seq_append(u, u->stack[from - 1], u->stack[i]) != VLM_OK) return VLM_ERR_INPUT;
    u->sp = from;
    return VLM_OK;
}

// BUILD sets an object's state. An OrderedDict's state is its instance
// __dict__ (state_dict()'s `_metadata`), a tensor's its Python attributes:
// neither carries tensor data, so the state is dropped.
static int op_build(Unpickler *u) {
    PickleValue *state;
    if (pop(u, &state) != VLM_OK) return VLM_ERR_INPUT;
    if (u->sp == 0) return FAIL(u, "BUILD with an empty stack");
    PickleKind k = u->stack[u->sp - 1]->kind;
    if (k != PV_DICT && k != PV_TENSOR) return FAIL(u, "BUILD on an unsupported object at byte %zu", u->pos);
    return VLM_OK;
}

static int step(Unpickler *u, int *stop) {
    unsigned char op = u->data[u->pos++];
    PickleValue *v = NULL, *w = NULL, *x = NULL;
    switch (op) {
    case 0x80: /* PROTO */
        if (need(u, 1) != VLM_OK) return VLM_ERR_INPUT;
        if (u->data[u->pos] > 5) return FAIL(u, "pickle protocol %d is not supported", u->data[u->pos]);
        u->pos++;
        return VLM_OK;
    case 0x95: /* FRAME: a length hint only */
        if (need(u, 8) != VLM_OK) return VLM_ERR_INPUT;
        u->pos += 8;
        return VLM_OK;
    case '.': /* STOP */ *stop = 1; return VLM_OK;
    case '(': /* MARK */
        if (u->nmarks == MAX_MARKS) return FAIL(u, "pickle nests deeper than %d", MAX_MARKS);
        u->marks[u->nmarks++] = u->sp;
        return VLM_OK;
    case '0': /* POP */ return pop(u, &v);
    case '1': /* POP_MARK */
        if (u->nmarks == 0) return FAIL(u, "POP_MARK without MARK");
        u->sp = u->marks[--u->nmarks];
        return VLM_OK;
    case '2': /* DUP */
        if (u->sp == 0) return FAIL(u, "DUP on an empty stack");
        return push(u, u->stack[u->sp - 1]);
    case 'N': return push(u, new_value(u, PV_NONE));
    case 0x88: /* NEWTRUE */
    case 0x89: /* NEWFALSE */
        v = new_value(u, PV_BOOL);
        if (v) v->u.i = op == 0x88;
        return push(u, v);
    case 'J': /* BININT */
        if (need(u, 4) != VLM_OK) return VLM_ERR_INPUT;
        return push_int(u, (int32_t)(uint32_t)read_le(u, 4));
    case 'K': /* BININT1 */
        if (need(u, 1) != VLM_OK) return VLM_ERR_INPUT;
        return push_int(u, (int64_t)read_le(u, 1));
    case 'M': /* BININT2 */
        if (need(u, 2) != VLM_OK) return VLM_ERR_INPUT;
        return push_int(u, (int64_t)read_le(u, 2));
    case 0x8a: /* LONG1 */ return op_long1(u);
    case 'G': { /* BINFLOAT: big-endian double */
        if (need(u, 8) != VLM_OK) return VLM_ERR_INPUT;
        uint64_t bits = 0;
        for (int i = 0; i < 8; i++) bits = (bits << 8) | u->data[u->pos + (size_t)i];
        u->pos += 8;
        v = new_value(u, PV_FLOAT);
        if (v) memcpy(&v->u.f, &bits, 8);
        return push(u, v);
    }
    case 'X': /* BINUNICODE */ return op_string(u, PV_STR, 4);
    case 0x8c: /* SHORT_BINUNICODE */ return op_string(u, PV_STR, 1);
    case 0x8d: /* BINUNICODE8 */ return op_string(u, PV_STR, 8);
    case 'T': /* BINSTRING */ return op_string(u, PV_STR, 4);
    case 'U': /* SHORT_BINSTRING */ return op_string(u, PV_STR, 1);
    case 'B': /* BINBYTES */ return op_string(u, PV_BYTES, 4);
    case 'C': /* SHORT_BINBYTES */ return op_string(u, PV_BYTES, 1);
    case 0x8e: /* BINBYTES8 */ return op_string(u, PV_BYTES, 8);
    case ')': return push(u, new_value(u, PV_TUPLE));
    case ']': return push(u, new_value(u, PV_LIST));
    case '}': return push(u, new_value(u, PV_DICT));
    case 't': /* TUPLE */
    case 'l': /* LIST */
        if (pop_mark(u, op == 't' ? PV_TUPLE : PV_LIST, &v) != VLM_OK) return VLM_ERR_INPUT;
        return push(u, v);
    case 'd': /* DICT */
        if (push(u, new_value(u, PV_DICT)) != VLM_OK) return VLM_ERR_INPUT;
        {   // move the new dict below the marked items, then SETITEMS
            if (u->nmarks == 0) return FAIL(u, "DICT without MARK");
            size_t from = u->marks[u->nmarks - 1];
            PickleValue *d = u->stack[u->sp - 1];
            memmove(u->stack + from + 1, u->stack + from, (u->sp - 1 - from) * sizeof *u->stack);
            u->stack[from] = d;
            u->marks[u->nmarks - 1] = from + 1;
        }
        return op_setitems(u);
    case 0x85: case 0x86: case 0x87: { /* TUPLE1/2/3 */
        int n = op - 0x84;
        PickleValue *items[3];
        for (int i = n - 1; i >= 0; i--)
            if (pop(u, &items[i]) != VLM_OK) return VLM_ERR_INPUT;
        v = new_value(u, PV_TUPLE);
        if (!v) return OOM(u);
        for (int i = 0; i < n; i++)
            if (seq_append(u, v, items[i]) != VLM_OK) return VLM_ERR_INPUT;
        return push(u, v);
    }
    case 'a': /* APPEND */
        if (pop(u, &v) != VLM_OK) return VLM_ERR_INPUT;
        if (u->sp == 0 || u->stack[u->sp - 1]->kind != PV_LIST) return FAIL(u, "APPEND to a non-list");
        return seq_append(u, u->stack[u->sp - 1], v);
    case 'e': return op_appends(u);
    case 's': /* SETITEM */
        if (pop(u, &w) != VLM_OK || pop(u, &x) != VLM_OK) return VLM_ERR_INPUT;
        if (u->sp == 0) return FAIL(u, "SETITEM with no dict");
        return dict_set(u, u->stack[u->sp - 1], x, w);
    case 'u': return op_setitems(u);
    case 'q': /* BINPUT */
        if (need(u, 1) != VLM_OK) return VLM_ERR_INPUT;
        return memo_put(u, read_le(u, 1));
    case 'r': /* LONG_BINPUT */
        if (need(u, 4) != VLM_OK) return VLM_ERR_INPUT;
        return memo_put(u, read_le(u, 4));
    case 0x94: /* MEMOIZE */ return memo_put(u, u->memo_count);
    case 'h': /* BINGET */
        if (need(u, 1) != VLM_OK) return VLM_ERR_INPUT;
        return memo_get(u, read_le(u, 1));
    case 'j': /* LONG_BINGET */
        if (need(u, 4) != VLM_OK) return VLM_ERR_INPUT;
        return memo_get(u, read_le(u, 4));
    case 'c': return op_global(u);
    case 0x93: return op_stack_global(u);
    case 'R': return op_reduce(u);
    case 'b': return op_build(u);
    case 'Q': return op_binpersid(u);
    default:
        return FAIL(u, "unsupported pickle opcode 0x%02x at byte %zu (not a torch.save state dict?)", op, u->pos - 1);
    }
}

int pickle_load(const unsigned char *data, size_t size, const char *name, PickleArena **arena, PickleValue **result) {
    *result = NULL;
    *arena = vlm_calloc(1, sizeof **arena);
    if (!*arena) return VLM_ERR_FAIL;
    // an opcode byte makes at most one value (~160 bytes) plus amortised
    // container growth: 256 bytes per input byte is above what any pickle
    // needs, and bounds what a hostile file can make us allocate
    (*arena)->limit = size * 256 + (16u << 20);
    Unpickler u = {.data = data, .size = size, .name = name, .arena = *arena};
    int stop = 0, rc = VLM_OK;
    while (rc == VLM_OK && !stop) {
        if (u.pos >= u.size) rc = FAIL(&u, "pickle ends without STOP (truncated?)");
        else rc = step(&u, &stop);
    }
    if (rc == VLM_OK) {
        if (u.sp != 1) rc = FAIL(&u, "pickle leaves %zu values on the stack, expected 1", u.sp);
        else *result = u.stack[0];
    }
    free(u.stack);
    free(u.memo);
    if (rc != VLM_OK) {
        pickle_arena_free(*arena);
        *arena = NULL;
    }
    return rc;
}
