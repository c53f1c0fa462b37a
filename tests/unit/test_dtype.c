// Unit tests: float16 / bfloat16 conversions, exhaustively against the bit rules.
#include <check.h>
#include <math.h>
#include <string.h>

#include "formats/dtype.h"
#include "test_util.h"

static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

// Every one of the 65536 half values survives f16 -> f32 -> f16 (NaN stays NaN).
START_TEST(f16_roundtrip_all_values) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            ck_assert(((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff));
            continue;
        }
        ck_assert_uint_eq(f32_to_f16(f), h);
    }
}
END_TEST

START_TEST(f16_rounds_to_nearest_even) {
    ck_assert_uint_eq(f32_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(f32_to_f16(65519.0f), 0x7bff);   // below the halfway point to 65536
    ck_assert_uint_eq(f32_to_f16(65520.0f), 0x7c00);   // rounds to infinity
    ck_assert_uint_eq(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // tie -> even
    ck_assert_uint_eq(f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);  // tie -> even (up)
    ck_assert_uint_eq(f32_to_f16(5.9604645e-8f), 0x0001);  // smallest subnormal
    ck_assert_uint_eq(f32_to_f16(2.9802322e-8f), 0x0000);  // half of it: tie -> even (0)
    ck_assert_uint_eq(f32_to_f16(-0.0f), 0x8000);
    ck_assert_float_eq(f16_to_f32(0x0001), 5.9604644775390625e-8f);
}
END_TEST

START_TEST(bf16_conversions) {
    for (uint32_t b = 0; b < 65536; b++) {
        float f = bf16_to_f32((uint16_t)b);
        ck_assert_uint_eq(bits(f), b << 16);
        if (!isnan(f)) ck_assert_uint_eq(f32_to_bf16(f), b);
    }
    ck_assert_uint_eq(f32_to_bf16(1.00390625f), 0x3f80);   // tie -> even (down)
    ck_assert_uint_eq(f32_to_bf16(1.01171875f), 0x3f82);   // tie -> even (up)
    ck_assert(isnan(bf16_to_f32(f32_to_bf16(NAN))));
}
END_TEST

START_TEST(names_and_sizes) {
    DType t;
    ck_assert_int_eq(dtype_from_name("BF16", &t), 0);
    ck_assert_int_eq(t, DT_BF16);
    ck_assert_int_eq(dtype_from_name("F8_E4M3", &t), -1);
    ck_assert_uint_eq(dtype_size(DT_I64), 8);
    ck_assert_str_eq(dtype_name(DT_BOOL), "BOOL");
    TensorInfo info = {.dtype = DT_F16, .ndim = 2, .shape = {3, 5}};
    ck_assert_int_eq(tensor_info_sizes(&info), 0);
    ck_assert_uint_eq(info.numel, 15);
    ck_assert_uint_eq(info.nbytes, 30);
    info.shape[0] = INT64_MAX;
    ck_assert_int_eq(tensor_info_sizes(&info), -1);
    char buf[64];
    shape_format((int64_t[]){3, 224, 224}, 3, buf, sizeof buf);
    ck_assert_str_eq(buf, "[3, 224, 224]");
}
END_TEST

Suite *dtype_suite(void) {
    return SUITE("dtype", "", 0,
                 f16_roundtrip_all_values,
                 f16_rounds_to_nearest_even,
                 bf16_conversions,
                 names_and_sizes);
}
