// Parity tests: our safetensors / .bin / sharded readers against the values
// torch and safetensors wrote (tests/fixtures/formats/expected.json, made by
// tools/make_format_fixtures.py). Every value must match exactly.
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "formats/checkpoint.h"
#include "formats/pickle.h"
#include "formats/safetensors.h"
#include "formats/torch_bin.h"
#include "test_util.h"

static int64_t raw_int(DType t, const unsigned char *p, size_t i) {
    switch (t) {
    case DT_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    case DT_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case DT_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case DT_I8: return (int8_t)p[i];
    default: return p[i];  // U8, BOOL
    }
}

static double expected_float(json_t *v) {
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        return strcmp(s, "nan") == 0 ? NAN : strcmp(s, "inf") == 0 ? INFINITY : -INFINITY;
    }
    return json_number_value(v);
}

// Checks one tensor of ck against its expected dtype, shape and values.
static void check_tensor(Checkpoint *ck, const char *name, json_t *exp) {
    int i = checkpoint_find(ck, name);
    ck_assert_msg(i >= 0, "tensor %s not found", name);
    const TensorInfo *info = ck->tensors[i].info;
    ck_assert_str_eq(dtype_name(info->dtype), json_string_value(json_object_get(exp, "dtype")));
    json_t *shape = json_object_get(exp, "shape");
    ck_assert_int_eq(info->ndim, (int)json_array_size(shape));
    for (int d = 0; d < info->ndim; d++) ck_assert_int_eq(info->shape[d], json_integer_value(json_array_get(shape, (size_t)d)));
    json_t *values = json_object_get(exp, "values");
    ck_assert_uint_eq(info->numel, json_array_size(values));
    unsigned char *raw = malloc(info->nbytes + 1);
    double *f64 = malloc((info->numel + 1) * sizeof *f64);
    ck_assert_int_eq(checkpoint_read(ck, i, raw), VLM_OK);
    int is_float = info->dtype == DT_F32 || info->dtype == DT_F16 || info->dtype == DT_BF16 || info->dtype == DT_F64;
    if (is_float) dtype_to_f64(info->dtype, raw, f64, info->numel);
    for (size_t k = 0; k < info->numel; k++) {
        json_t *v = json_array_get(values, k);
        if (is_float) {
            double want = expected_float(v);
            if (isnan(want)) ck_assert(isnan(f64[k]));
            else ck_assert_msg(f64[k] == want, "%s[%zu]: %.17g != %.17g", name, k, f64[k], want);
        } else {
            ck_assert_msg(raw_int(info->dtype, raw, k) == json_integer_value(v), "%s[%zu]", name, k);
        }
    }
    // the float32 path agrees with the exact one (within float32 rounding)
    if (is_float && info->numel) {
        float *f32 = malloc(info->numel * sizeof *f32);
        ck_assert_int_eq(checkpoint_read_f32(ck, i, f32), VLM_OK);
        for (size_t k = 0; k < info->numel; k++)
            if (!isnan(f64[k])) ck_assert(f32[k] == (float)f64[k]);
        free(f32);
    }
    free(raw);
    free(f64);
}

static void check_against_expected(const char *fixture_name) {
    json_t *files = json_object_get(expected_json(), "files");
    json_t *exp = json_object_get(files, fixture_name);
    ck_assert_msg(exp != NULL, "%s not in expected.json", fixture_name);
    char path[4096];
    snprintf(path, sizeof path, "%s", fixture(""));
    strncat(path, "formats/", sizeof path - strlen(path) - 1);
    strncat(path, fixture_name, sizeof path - strlen(path) - 1);
    Checkpoint ck;
    ck_assert_msg(checkpoint_open(&ck, path) == VLM_OK, "%s", vlm_last_error());
    json_t *tensors = json_object_get(exp, "tensors");
    ck_assert_int_eq(ck.count, (int)json_object_size(tensors));
    ck_assert_int_eq(ck.skipped, (int)json_integer_value(json_object_get(exp, "skipped")));
    const char *name;
    json_t *t;
    json_object_foreach(tensors, name, t) check_tensor(&ck, name, t);
    checkpoint_close(&ck);
}

// Every hostile fixture whose name passes `select` fails to open with
// VLM_ERR_INPUT and the expected reason.
static void check_hostile(int (*select)(const char *name)) {
    json_t *hostile = json_object_get(expected_json(), "hostile");
    const char *name;
    json_t *want;
    int checked = 0;
    json_object_foreach(hostile, name, want) {
        if (!select(name)) continue;
        char rel[512];
        snprintf(rel, sizeof rel, "formats/hostile/%s", name);
        Checkpoint ck;
        vlm_clear_error();
        int rc = checkpoint_open(&ck, fixture(rel));
        if (rc == VLM_OK) {
            // config.json problems surface in `vlm inspect`, not in the weights
            checkpoint_close(&ck);
            ck_assert_msg(strcmp(name, "bad_config") == 0, "%s opened without error", name);
            continue;
        }
        ck_assert_int_eq(rc, VLM_ERR_INPUT);
        ck_assert_msg(strstr(vlm_last_error(), json_string_value(want)) != NULL, "%s: got '%s', want '%s'", name,
                      vlm_last_error(), json_string_value(want));
        checked++;
    }
    ck_assert_int_gt(checked, 0);
}

static int is_safetensors(const char *n) { return strstr(n, ".safetensors") != NULL; }
static int is_bin(const char *n) { return strstr(n, ".bin") != NULL; }
static int is_dir(const char *n) { return strchr(n, '.') == NULL; }

// ---------------------------------------------------------------------------- safetensors

START_TEST(safetensors_reads_reference_file) { check_against_expected("dtypes.safetensors"); }
END_TEST

START_TEST(safetensors_metadata) {
    SafetensorsFile f;
    ck_assert_int_eq(safetensors_open(&f, fixture("formats/dtypes.safetensors")), VLM_OK);
    ck_assert_str_eq(json_string_value(json_object_get(f.metadata, "format")), "pt");
    ck_assert_str_eq(json_string_value(json_object_get(f.metadata, "note")), "vlm.c fixture");
    safetensors_close(&f);
}
END_TEST

START_TEST(safetensors_hostile_files) { check_hostile(is_safetensors); }
END_TEST

// Every prefix of a valid file is refused cleanly (no crash, no read past the end).
START_TEST(safetensors_every_truncation_refused) {
    MappedFile m;
    ck_assert_int_eq(file_map(fixture("formats/dtypes.safetensors"), &m), VLM_OK);
    for (size_t n = 0; n < m.size; n++) {
        unsigned char *copy = malloc(n + 1);
        memcpy(copy, m.data, n);
        SafetensorsFile f;
        memset(&f, 0, sizeof f);
        ck_assert_int_eq(safetensors_parse(&f, copy, n, "prefix"), VLM_ERR_INPUT);
        safetensors_close(&f);
        free(copy);
    }
    file_unmap(&m);
}
END_TEST

START_TEST(safetensors_write_roundtrip) {
    char dir[] = "/tmp/vlm-st-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/out.safetensors", dir);
    float a[6] = {1, -2, 3.5f, 0, 1e-30f, 7};
    uint16_t b[3] = {0x3c00, 0x8000, 0x7c00};
    int64_t c[1] = {-5};
    TensorInfo infos[3] = {
        {.name = "a", .dtype = DT_F32, .ndim = 2, .shape = {2, 3}},
        {.name = "b.weight", .dtype = DT_F16, .ndim = 1, .shape = {3}},
        {.name = "c", .dtype = DT_I64, .ndim = 0},
    };
    for (int i = 0; i < 3; i++) tensor_info_sizes(&infos[i]);
    const void *datas[3] = {a, b, c};
    json_t *meta = json_pack("{s:s}", "format", "pt");
    ck_assert_int_eq(safetensors_write(path, infos, datas, 3, meta), VLM_OK);
    json_decref(meta);
    SafetensorsFile f;
    ck_assert_int_eq(safetensors_open(&f, path), VLM_OK);
    ck_assert_int_eq(f.count, 3);
    ck_assert_uint_eq((size_t)(f.data - f.map.data) % 8, 0);  // header padded to 8 bytes
    for (int i = 0; i < 3; i++) {
        int k = safetensors_find(&f, infos[i].name);
        ck_assert_int_ge(k, 0);
        ck_assert_int_eq(memcmp(safetensors_tensor_data(&f, k), datas[i], infos[i].nbytes), 0);
    }
    safetensors_close(&f);
    // an aborted writer leaves the previous file as it was, and no temp file
    SafetensorsWriter w;
    ck_assert_int_eq(safetensors_writer_begin(&w, path, infos, 3, NULL), VLM_OK);
    ck_assert_int_eq(safetensors_writer_add(&w, a), VLM_OK);
    ck_assert_int_ne(safetensors_writer_commit(&w), VLM_OK);  // 1 of 3 tensors
    ck_assert_int_eq(safetensors_open(&f, path), VLM_OK);
    ck_assert_int_eq(f.count, 3);
    safetensors_close(&f);
    ck_assert_int_eq(count_dir_entries(dir), 1);
    // duplicate names are refused before anything is written
    infos[1].name = "a";
    ck_assert_int_eq(safetensors_write(path, infos, datas, 3, NULL), VLM_ERR_INPUT);
    unlink(path);
    rmdir(dir);
}
END_TEST

Suite *safetensors_suite(void) {
    return SUITE("safetensors", "parser", 120,
                 safetensors_reads_reference_file,
                 safetensors_metadata,
                 safetensors_hostile_files,
                 safetensors_every_truncation_refused,
                 safetensors_write_roundtrip);
}

// ---------------------------------------------------------------------------- pickle

static int load_pickle(const char *bytes, size_t n, PickleArena **arena, PickleValue **root) {
    vlm_clear_error();
    return pickle_load((const unsigned char *)bytes, n, "test.pkl", arena, root);
}

START_TEST(pickle_plain_values) {
    // pickle.dumps({'a': 1, 'b': (True, None, -3), 'c': [2.5]}, protocol=2)
    static const char p[] = {
        0x80, 0x02, 0x7d, 0x71, 0x00, 0x28, 0x58, 0x01, 0x00, 0x00, 0x00, 0x61, 0x71, 0x01, 0x4b, 0x01, 0x58, 0x01, 0x00,
        0x00, 0x00, 0x62, 0x71, 0x02, (char)0x88, 0x4e, 0x4a, (char)0xfd, (char)0xff, (char)0xff, (char)0xff, (char)0x87,
        0x71, 0x03, 0x58, 0x01, 0x00, 0x00, 0x00, 0x63, 0x71, 0x04, 0x5d, 0x71, 0x05, 0x47, 0x40, 0x04, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x61, 0x75, 0x2e, 0x00};
    PickleArena *arena;
    PickleValue *root;
    ck_assert_msg(load_pickle(p, sizeof p - 1, &arena, &root) == VLM_OK, "%s", vlm_last_error());
    ck_assert_int_eq(root->kind, PV_DICT);
    ck_assert_uint_eq(root->u.dict.len, 3);
    ck_assert_str_eq(root->u.dict.keys[1]->u.str.data, "b");
    const PickleValue *t = root->u.dict.values[1];
    ck_assert_int_eq(t->kind, PV_TUPLE);
    ck_assert_int_eq(t->u.seq.items[0]->kind, PV_BOOL);
    ck_assert_int_eq(t->u.seq.items[1]->kind, PV_NONE);
    ck_assert_int_eq(t->u.seq.items[2]->u.i, -3);
    ck_assert_double_eq(root->u.dict.values[2]->u.seq.items[0]->u.f, 2.5);
    pickle_arena_free(arena);
}
END_TEST

START_TEST(pickle_refuses_code_execution) {
    static const char *const evil[] = {
        "cos\nsystem\n(X\x02\x00\x00\x00idtR.",          // os.system('id')
        ("cbuiltins\neval\n(X\x01\x00\x00\x00" "1tR."),     // eval
        "\x80\x04\x8c\x02os\x8c\x06system\x93.",          // STACK_GLOBAL
        "ctorch\nload\n.",                               // torch functions beyond the allow-list
    };
    const char *const names[] = {"os.system", "builtins.eval", "os.system", "torch.load"};
    for (int i = 0; i < 4; i++) {
        PickleArena *arena;
        PickleValue *root;
        ck_assert_int_eq(load_pickle(evil[i], strlen(evil[i]), &arena, &root), VLM_ERR_INPUT);
        ck_assert_msg(strstr(vlm_last_error(), names[i]) != NULL, "%s", vlm_last_error());
        ck_assert_ptr_null(arena);
    }
}
END_TEST

START_TEST(pickle_malformed) {
    static const struct { const char *bytes; size_t n; const char *why; } cases[] = {
        {"\x80\x02}q\x00", 5, "without STOP"},
        {"\x80\x02h\x05.", 5, "used before it was stored"},
        {"\x80\x02N\x81.", 5, "unsupported pickle opcode 0x81"},
        {"\x80\x02t.", 4, "missing MARK"},
        {"\x80\x02X\xff\xff\xff\x7f", 8, "truncated"},
        {"\x80\x02X\x02\x00\x00\x00\xc3\x28.", 10, "not valid UTF-8"},
        {"\x80\x02r\xff\xff\xff\xff.", 8, "memo store with an empty stack"},
        {"\x80\x02NN.", 5, "2 values on the stack"},
        {"\x80\x02Nr\xff\xff\xff\x0f.", 9, "out of range"},
        {"\x80\x09.", 3, "protocol 9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        PickleArena *arena;
        PickleValue *root;
        ck_assert_int_eq(load_pickle(cases[i].bytes, cases[i].n, &arena, &root), VLM_ERR_INPUT);
        ck_assert_msg(strstr(vlm_last_error(), cases[i].why) != NULL, "case %zu: %s", i, vlm_last_error());
    }
}
END_TEST

// 200K values from a 200 KB pickle stay within the arena's cap (which is
// proportional to the input, so a hostile file cannot allocate without bound).
START_TEST(pickle_many_values_within_cap) {
    size_t n = 200000;
    char *p = malloc(n + 8);
    size_t at = 0;
    p[at++] = '\x80'; p[at++] = 2;
    p[at++] = '(';
    while (at < n) p[at++] = ']';  // many empty lists under one mark
    p[at++] = 't'; p[at++] = '.';
    PickleArena *arena;
    PickleValue *root;
    ck_assert_msg(load_pickle(p, at, &arena, &root) == VLM_OK, "%s", vlm_last_error());
    ck_assert_uint_eq(root->u.seq.len, n - 3);
    pickle_arena_free(arena);
    free(p);
}
END_TEST

Suite *pickle_suite(void) {
    return SUITE("pickle", "parser", 0,
                 pickle_plain_values,
                 pickle_refuses_code_execution,
                 pickle_malformed,
                 pickle_many_values_within_cap);
}

// ---------------------------------------------------------------------------- torch .bin

START_TEST(bin_reads_reference_file) { check_against_expected("dtypes.bin"); }
END_TEST
START_TEST(bin_reads_module_state_dict) { check_against_expected("module.bin"); }
END_TEST
START_TEST(bin_flattens_nested_dicts) { check_against_expected("nested.bin"); }
END_TEST
START_TEST(bin_hostile_files) { check_hostile(is_bin); }
END_TEST

START_TEST(bin_every_truncation_refused) {
    MappedFile m;
    ck_assert_int_eq(file_map(fixture("formats/module.bin"), &m), VLM_OK);
    for (size_t n = 0; n < m.size; n += 7) {
        TorchBinFile f;
        ck_assert_int_eq(torch_bin_open_memory(&f, m.data, n, "prefix"), VLM_ERR_INPUT);
    }
    file_unmap(&m);
}
END_TEST

Suite *torch_bin_suite(void) {
    return SUITE("torch_bin", "parser", 120,
                 bin_reads_reference_file,
                 bin_reads_module_state_dict,
                 bin_flattens_nested_dicts,
                 bin_hostile_files,
                 bin_every_truncation_refused);
}

// ---------------------------------------------------------------------------- checkpoints

START_TEST(sharded_safetensors_directory) { check_against_expected("sharded_safetensors"); }
END_TEST
START_TEST(sharded_bin_directory) { check_against_expected("sharded_bin"); }
END_TEST
START_TEST(broken_directories) { check_hostile(is_dir); }
END_TEST

START_TEST(index_file_path_and_lookup) {
    Checkpoint ck;
    ck_assert_int_eq(checkpoint_open(&ck, fixture("formats/sharded_bin/pytorch_model.bin.index.json")), VLM_OK);
    ck_assert_int_eq(ck.kind, CKPT_TORCH_BIN);
    ck_assert_int_eq(ck.n_shards, 2);
    ck_assert_int_eq(checkpoint_find(&ck, "language_model.model.norm.weight") >= 0, 1);
    ck_assert_int_eq(checkpoint_find(&ck, "nope"), -1);
    for (int i = 1; i < ck.count; i++) ck_assert_int_lt(strcmp(ck.tensors[i - 1].info->name, ck.tensors[i].info->name), 0);
    checkpoint_close(&ck);
    ck_assert_int_eq(checkpoint_open(&ck, fixture("formats/does-not-exist")), VLM_ERR_INPUT);
    ck_assert(strstr(vlm_last_error(), "does-not-exist") != NULL);
}
END_TEST

Suite *checkpoint_suite(void) {
    return SUITE("checkpoint", "parser", 0,
                 sharded_safetensors_directory,
                 sharded_bin_directory,
                 broken_directories,
                 index_file_path_and_lookup);
}
