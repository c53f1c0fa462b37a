// torch.save's format written by vlm: byte for byte what torch wrote for the
// same state dict (the fixture tiny_gqa_mm_projector.bin, saved by
// tools/make_model_fixtures.py with torch.save), readable back.
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "core/error.h"
#include "core/file.h"
#include "formats/checkpoint.h"
#include "formats/dtype.h"
#include "formats/torch_save.h"
#include "test_util.h"

// The fixture's tensors, in its order, as float32.
static int read_fixture(Checkpoint *ck, TorchSaveTensor *t, float **data) {
    ck_assert_int_eq(checkpoint_open(ck, fixture("model/tiny_gqa_mm_projector.bin")), VLM_OK);
    static const char *const names[] = {"model.mm_projector.0.weight", "model.mm_projector.0.bias",
                                        "model.mm_projector.2.weight", "model.mm_projector.2.bias"};
    for (int i = 0; i < 4; i++) {
        int j = checkpoint_find(ck, names[i]);
        ck_assert_int_ge(j, 0);
        const TensorInfo *info = ck->tensors[j].info;
        data[i] = malloc(sizeof(float) * info->numel);
        ck_assert_int_eq(checkpoint_read_f32(ck, j, data[i]), VLM_OK);
        t[i] = (TorchSaveTensor){.name = names[i], .dtype = DT_F32, .ndim = info->ndim, .data = data[i]};
        for (int d = 0; d < info->ndim; d++) t[i].shape[d] = info->shape[d];
    }
    return 4;
}

// Where the last record's data (.data/serialization_id: torch draws it at
// random) starts: everything before it must be identical.
static zip_uint64_t id_offset(const char *path) {
    int err;
    zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    ck_assert_ptr_nonnull(z);
    zip_int64_t n = zip_get_num_entries(z, 0);
    ck_assert_int_eq((int)n, 10);
    zip_stat_t st;
    ck_assert_int_eq(zip_stat_index(z, (zip_uint64_t)n - 1, 0, &st), 0);
    ck_assert_ptr_nonnull(strstr(st.name, ".data/serialization_id"));
    ck_assert_int_eq((int)st.size, 40);
    zip_close(z);
    // its data ends 16 bytes (the data descriptor) before the central directory
    MappedFile m;
    ck_assert_int_eq(file_map(path, &m), VLM_OK);
    uint32_t cd;
    memcpy(&cd, m.data + m.size - 22 + 16, 4);
    file_unmap(&m);
    return cd - 16 - 40;
}

START_TEST(torch_save_matches_torch_byte_for_byte) {
    Checkpoint ck;
    TorchSaveTensor t[4];
    float *data[4];
    int n = read_fixture(&ck, t, data);
    char dir[] = "/tmp/vlm-torchsave-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *path = path_join(dir, "tiny_gqa_mm_projector.bin");  // the archive's folder is the file's stem
    ck_assert_msg(torch_save(path, t, n) == VLM_OK, "%s", vlm_last_error());
    MappedFile a, b;
    ck_assert_int_eq(file_map(path, &a), VLM_OK);
    ck_assert_int_eq(file_map(fixture("model/tiny_gqa_mm_projector.bin"), &b), VLM_OK);
    ck_assert_int_eq((int)a.size, (int)b.size);
    zip_uint64_t id = id_offset(fixture("model/tiny_gqa_mm_projector.bin"));
    ck_assert_int_eq((int)id_offset(path), (int)id);
    for (size_t i = 0; i < id; i++) ck_assert_msg(a.data[i] == b.data[i], "byte %zu differs", i);
    // after the id: its data descriptor, whose crc is the id's, then the central directory
    ck_assert_int_eq(memcmp(a.data + id + 40 + 8, b.data + id + 40 + 8, 8), 0);
    file_unmap(&a), file_unmap(&b);
    // the same tensors, saved again: the same bytes (the id is derived from the content)
    char *again = path_join(dir, "again.bin");
    ck_assert_int_eq(torch_save(again, t, n), VLM_OK);
    // read back as any checkpoint: bf16 as well
    Checkpoint back;
    ck_assert_int_eq(checkpoint_open(&back, path), VLM_OK);
    float *x = malloc(sizeof(float) * 32 * 32);
    int j = checkpoint_find(&back, "model.mm_projector.2.weight");
    ck_assert_int_ge(j, 0);
    ck_assert_int_eq(checkpoint_read_f32(&back, j, x), VLM_OK);
    ck_assert_int_eq(memcmp(x, data[2], sizeof(float) * 32 * 32), 0);
    checkpoint_close(&back);
    uint16_t *h = malloc(sizeof(uint16_t) * 32 * 32);
    for (int i = 0; i < 32 * 32; i++) h[i] = f32_to_bf16(data[2][i]);
    TorchSaveTensor one = {.name = "w", .dtype = DT_BF16, .ndim = 2, .shape = {32, 32}, .data = h};
    ck_assert_int_eq(torch_save(again, &one, 1), VLM_OK);
    ck_assert_int_eq(checkpoint_open(&back, again), VLM_OK);
    ck_assert_int_eq(back.tensors[0].info->dtype, DT_BF16);
    ck_assert_int_eq(checkpoint_read_f32(&back, 0, x), VLM_OK);
    for (int i = 0; i < 32 * 32; i++) ck_assert(x[i] == bf16_to_f32(h[i]));
    checkpoint_close(&back);
    free(x), free(h), free(path), free(again);
    for (int i = 0; i < n; i++) free(data[i]);
    checkpoint_close(&ck);
    remove_tree(dir);
}
END_TEST

Suite *torch_save_suite(void) { return SUITE("torch_save", "parser", 0, torch_save_matches_torch_byte_for_byte); }
