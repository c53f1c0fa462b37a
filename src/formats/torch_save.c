// torch.save's zip archive and pickle, see torch_save.h.
#include "formats/torch_save.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>  // crc32

#include "core/alloc.h"
#include "core/error.h"
#include "core/file.h"

// ---- the pickle, as Python's protocol-2 pickler writes torch's state dict

typedef struct {
    unsigned char *buf;
    size_t len, cap;
    int memo;       // next memo index
    bool failed;
} Pickle;

static void put(Pickle *p, const void *data, size_t n) {
    if (p->failed) return;
    if (p->len + n > p->cap) {
        size_t cap = (p->len + n) * 2 + 256;
        unsigned char *q = vlm_realloc(p->buf, cap);
        if (!q) { p->failed = true; return; }
        p->buf = q, p->cap = cap;
    }
    memcpy(p->buf + p->len, data, n);
    p->len += n;
}

static void op(Pickle *p, unsigned char c) { put(p, &c, 1); }

static void le32(unsigned char *b, uint32_t v) {
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

// A memo opcode: the 1-byte form below 256, else the 4-byte one.
static void memo_op(Pickle *p, unsigned char short_op, unsigned char long_op, int m) {
    if (m < 256) {
        unsigned char b[2] = {short_op, (unsigned char)m};
        put(p, b, 2);
    } else {
        unsigned char b[5] = {long_op};
        le32(b + 1, (uint32_t)m);
        put(p, b, 5);
    }
}

// BINPUT / LONG_BINPUT of the object just pushed; returns its memo index
static int memoize(Pickle *p) {
    int m = p->memo++;
    memo_op(p, 'q', 'r', m);
    return m;
}

// BINGET / LONG_BINGET
static void get(Pickle *p, int m) { memo_op(p, 'h', 'j', m); }

// save_long: BININT1 / BININT2 / BININT / LONG1
static void integer(Pickle *p, int64_t x) {
    if (x >= 0 && x < 256) {
        unsigned char b[2] = {'K', (unsigned char)x};
        put(p, b, 2);
    } else if (x >= 0 && x < 65536) {
        unsigned char b[3] = {'M', (unsigned char)x, (unsigned char)(x >> 8)};
        put(p, b, 3);
    } else if (x >= INT32_MIN && x <= INT32_MAX) {
        unsigned char b[5] = {'J'};
        le32(b + 1, (uint32_t)(int32_t)x);
        put(p, b, 5);
    } else {  // two's complement, little-endian, shortest form (x > 0 here: sizes)
        unsigned char b[11] = {0x8a, 0};
        int n = 0;
        uint64_t u = (uint64_t)x;
        while (u) b[2 + n++] = (unsigned char)u, u >>= 8;
        if (b[1 + n] & 0x80) b[2 + n++] = 0;
        b[1] = (unsigned char)n;
        put(p, b, 2 + (size_t)n);
    }
}

// BINUNICODE + memo
static int string(Pickle *p, const char *s) {
    unsigned char b[5] = {'X'};
    size_t n = strlen(s);
    le32(b + 1, (uint32_t)n);
    put(p, b, 5);
    put(p, s, n);
    return memoize(p);
}

// GLOBAL + memo
static int global(Pickle *p, const char *module, const char *name) {
    op(p, 'c');
    put(p, module, strlen(module));
    op(p, '\n');
    put(p, name, strlen(name));
    op(p, '\n');
    return memoize(p);
}

// A tuple of ints: TUPLE1/2/3 for up to three, MARK ... TUPLE beyond; memoized.
static void int_tuple(Pickle *p, const int64_t *v, int n) {
    if (n == 0) {
        op(p, ')');
    } else if (n <= 3) {
        for (int i = 0; i < n; i++) integer(p, v[i]);
        op(p, (unsigned char)(0x84 + n));  // TUPLE1 0x85, TUPLE2 0x86, TUPLE3 0x87
    } else {
        op(p, '(');
        for (int i = 0; i < n; i++) integer(p, v[i]);
        op(p, 't');
    }
    if (n) memoize(p);
}

static const char *storage_class(DType t) {
    return t == DT_BF16 ? "BFloat16Storage" : t == DT_F16 ? "HalfStorage" : "FloatStorage";
}

static uint64_t numel(const TorchSaveTensor *t) {
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (uint64_t)t->shape[d];
    return n;
}

// Memo indices of the objects the pickler meets more than once (-1: not yet).
typedef struct {
    int rebuild, storage_word, cpu, ordered_dict, storage_class[DT_COUNT];
} Memo;

// key: torch._utils._rebuild_tensor_v2(('storage', Class, 'i', 'cpu', numel), 0, shape, stride, False, OrderedDict())
static void tensor(Pickle *p, Memo *m, const TorchSaveTensor *t, int index) {
    string(p, t->name);
    if (m->rebuild < 0) m->rebuild = global(p, "torch._utils", "_rebuild_tensor_v2");
    else get(p, m->rebuild);
    op(p, '(');  // the arguments
    op(p, '(');  // the persistent id
    if (m->storage_word < 0) m->storage_word = string(p, "storage");
    else get(p, m->storage_word);
    if (m->storage_class[t->dtype] < 0) m->storage_class[t->dtype] = global(p, "torch", storage_class(t->dtype));
    else get(p, m->storage_class[t->dtype]);
    char key[24];
    snprintf(key, sizeof key, "%d", index);
    string(p, key);
    if (m->cpu < 0) m->cpu = string(p, "cpu");
    else get(p, m->cpu);
    integer(p, (int64_t)numel(t));
    op(p, 't');
    memoize(p);
    op(p, 'Q');  // BINPERSID
    integer(p, 0);  // storage offset
    int64_t stride[4];
    for (int d = t->ndim - 1, s = 1; d >= 0; s *= (int)t->shape[d], d--) stride[d] = s;
    int_tuple(p, t->shape, t->ndim);
    int_tuple(p, stride, t->ndim);
    op(p, 0x89);  // NEWFALSE: requires_grad
    if (m->ordered_dict < 0) m->ordered_dict = global(p, "collections", "OrderedDict");
    else get(p, m->ordered_dict);
    op(p, ')');
    op(p, 'R');
    memoize(p);
    op(p, 't');
    memoize(p);
    op(p, 'R');
    memoize(p);
}

// The dict: EMPTY_DICT, then batches of up to 1000 items (MARK ... SETITEMS,
// or a lone item's SETITEM), as pickle's _batch_setitems.
static void state_dict(Pickle *p, const TorchSaveTensor *t, int n) {
    Memo m = {-1, -1, -1, -1, {0}};
    for (int i = 0; i < DT_COUNT; i++) m.storage_class[i] = -1;
    op(p, 0x80), op(p, 2);
    op(p, '}');
    memoize(p);
    for (int at = 0; at < n; at += 1000) {
        int k = n - at < 1000 ? n - at : 1000;
        if (k > 1) op(p, '(');
        for (int i = at; i < at + k; i++) tensor(p, &m, &t[i], i);
        op(p, k > 1 ? 'u' : 's');
    }
    op(p, '.');
}

// ---- the zip archive, as PyTorchStreamWriter (miniz) writes it

#define ALIGNMENT 64

typedef struct {
    char name[512];
    uint32_t crc, size, offset;
} Record;

typedef struct {
    AtomicFile f;
    uint64_t at;
    Record *rec;
    int n;
} Zip;

static void le64(unsigned char *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static void u16(unsigned char *b, unsigned v) { b[0] = (unsigned char)v, b[1] = (unsigned char)(v >> 8); }

static int zip_write(Zip *z, const void *data, size_t n) {
    if (n && fwrite(data, 1, n, z->f.fp) != n) return vlm_fail_errno(VLM_ERR_FAIL, z->f.final_path, NULL, "write failed");
    z->at += n;
    return VLM_OK;
}

// One stored record: local header with the "FB" padding field that puts the
// data on a 64-byte boundary, the data, a data descriptor.
static int zip_record(Zip *z, const char *stem, const char *name, const void *data, size_t size) {
    Record *r = &z->rec[z->n++];
    snprintf(r->name, sizeof r->name, "%s/%s", stem, name);
    size_t name_len = strlen(r->name);
    r->offset = (uint32_t)z->at;
    r->size = (uint32_t)size;
    r->crc = (uint32_t)crc32(0L, data, (uInt)size);
    uint64_t start = z->at + 30 + name_len + 4, pad = (ALIGNMENT - start % ALIGNMENT) % ALIGNMENT;
    unsigned char h[30] = {0x50, 0x4b, 0x03, 0x04};  // version 0, time and date 0 as miniz under torch
    u16(h + 6, 0x0808);  // sizes in the data descriptor, UTF-8 names
    u16(h + 26, (unsigned)name_len);
    u16(h + 28, (unsigned)(pad + 4));
    unsigned char extra[4 + ALIGNMENT] = {'F', 'B'};
    u16(extra + 2, (unsigned)pad);
    memset(extra + 4, 'Z', (size_t)pad);
    unsigned char dd[16] = {0x50, 0x4b, 0x07, 0x08};
    le32(dd + 4, r->crc), le32(dd + 8, r->size), le32(dd + 12, r->size);
    int rc = zip_write(z, h, 30);
    if (!rc) rc = zip_write(z, r->name, name_len);
    if (!rc) rc = zip_write(z, extra, 4 + (size_t)pad);
    if (!rc) rc = zip_write(z, data, size);
    if (!rc) rc = zip_write(z, dd, 16);
    return rc;
}

static int zip_central(Zip *z) {
    uint64_t cd = z->at;
    int rc = VLM_OK;
    for (int i = 0; rc == VLM_OK && i < z->n; i++) {
        const Record *r = &z->rec[i];
        unsigned char h[46] = {0x50, 0x4b, 0x01, 0x02};
        u16(h + 8, 0x0808);
        le32(h + 16, r->crc), le32(h + 20, r->size), le32(h + 24, r->size);
        u16(h + 28, (unsigned)strlen(r->name));
        le32(h + 42, r->offset);
        rc = zip_write(z, h, 46);
        if (!rc) rc = zip_write(z, r->name, strlen(r->name));
    }
    // miniz under torch always adds the zip64 end record and its locator
    uint64_t cd_size = z->at - cd, end64 = z->at;
    unsigned char e64[56 + 20] = {0x50, 0x4b, 0x06, 0x06};
    le64(e64 + 4, 44);
    u16(e64 + 12, 0x031e), u16(e64 + 14, 0x002d);  // made by 3.0 (unix) 30, needs 4.5
    le64(e64 + 24, (uint64_t)z->n), le64(e64 + 32, (uint64_t)z->n), le64(e64 + 40, cd_size), le64(e64 + 48, cd);
    unsigned char *loc = e64 + 56;
    loc[0] = 0x50, loc[1] = 0x4b, loc[2] = 0x06, loc[3] = 0x07;
    le64(loc + 8, end64);
    le32(loc + 16, 1);
    unsigned char e[22] = {0x50, 0x4b, 0x05, 0x06};
    u16(e + 8, (unsigned)z->n), u16(e + 10, (unsigned)z->n);
    le32(e + 12, (uint32_t)cd_size), le32(e + 16, (uint32_t)cd);
    if (!rc) rc = zip_write(z, e64, sizeof e64);
    return rc ? rc : zip_write(z, e, 22);
}

// The file name without folder and extension: the archive's folder, as torch names it.
static void archive_stem(const char *path, char *out, size_t size) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(out, size, "%s", base);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = '\0';
    if (!out[0]) snprintf(out, size, "archive");
}

int torch_save(const char *path, const TorchSaveTensor *t, int n) {
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].ndim < 1 || t[i].ndim > 4 || (t[i].dtype != DT_F32 && t[i].dtype != DT_F16 && t[i].dtype != DT_BF16))
            return vlm_fail(VLM_ERR_FAIL, path, t[i].name, "torch_save: unsupported tensor");
        total += numel(&t[i]) * dtype_size(t[i].dtype);
    }
    if (total >= 0xFFFF0000u)  // zip64 not written: an adapter is far smaller
        return vlm_fail(VLM_ERR_FAIL, path, NULL, "torch_save: %llu bytes need zip64", (unsigned long long)total);
    Pickle p = {0};
    state_dict(&p, t, n);
    Zip z = {.rec = vlm_calloc((size_t)n + 8, sizeof(Record))};
    if (p.failed || !z.rec) {
        free(p.buf), free(z.rec);
        return VLM_ERR_FAIL;
    }
    char stem[256];
    archive_stem(path, stem, sizeof stem);
    int rc = atomic_open(&z.f, path);
    if (rc == VLM_OK) rc = zip_record(&z, stem, "data.pkl", p.buf, p.len);
    if (rc == VLM_OK) rc = zip_record(&z, stem, ".format_version", "1", 1);
    if (rc == VLM_OK) rc = zip_record(&z, stem, ".storage_alignment", "64", 2);
    if (rc == VLM_OK) rc = zip_record(&z, stem, "byteorder", "little", 6);
    // a content-derived id (torch draws one at random): the same tensors give the same file
    uLong id1 = crc32(0L, p.buf, (uInt)p.len), id2 = adler32(1L, p.buf, (uInt)p.len);
    for (int i = 0; rc == VLM_OK && i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "data/%d", i);
        size_t bytes = numel(&t[i]) * dtype_size(t[i].dtype);
        rc = zip_record(&z, stem, name, t[i].data, bytes);
        id1 = crc32(id1, t[i].data, (uInt)bytes), id2 = adler32(id2, t[i].data, (uInt)bytes);
    }
    if (rc == VLM_OK) rc = zip_record(&z, stem, "version", "3\n", 2);
    char id[64];
    snprintf(id, sizeof id, "%020llu%020llu", (unsigned long long)id1 * 2654435761ULL, (unsigned long long)id2 * 40503ULL);
    if (rc == VLM_OK) rc = zip_record(&z, stem, ".data/serialization_id", id, 40);
    if (rc == VLM_OK) rc = zip_central(&z);
    if (rc == VLM_OK) rc = atomic_commit(&z.f);
    else if (z.f.fp) atomic_abort(&z.f);
    free(p.buf), free(z.rec);
    return rc;
}
