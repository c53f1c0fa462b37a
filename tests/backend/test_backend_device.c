// The device API (kernels/device.h) on this build's backend: uploads and
// downloads round-trip bit for bit, zero and copy (overlapping too) move what
// they say; and the list of the backend suites.
#include <string.h>

#include "backend_tests.h"
#include "backend_util.h"
#include "kernels/device.h"
#include "kernels/gradients.h"

START_TEST(device_roundtrip) {
    bt_seed(1);
    size_t n = 100003;
    float *x = bt_randn(n, 1.0f);
    float *d = bt_up(x, n);
    bt_exact("upload then download", d, x, n);
    // device -> device, then zero a part
    float *e = bt_dev(sizeof(float) * n);
    device_copy(e, d, sizeof(float) * n);
    bt_exact("device_copy", e, x, n);
    device_zero(e + 10, sizeof(float) * 1000);
    float *want = bt_host(sizeof(float) * n);
    memcpy(want, x, sizeof(float) * n);
    memset(want + 10, 0, sizeof(float) * 1000);
    bt_exact("device_zero", e, want, n);
    vlm_zero(e, 5);
    memset(want, 0, sizeof(float) * 5);
    bt_exact("vlm_zero", e, want, n);
    // an overlapping copy moves the values as memmove does
    device_copy(d + 7, d, sizeof(float) * (n - 7));
    memmove(x + 7, x, sizeof(float) * (n - 7));
    bt_exact("overlapping device_copy", d, x, n);
    device_sync();
    ck_assert(device_present());
    ck_assert(strlen(device_name()) > 0);
    bt_free_all();
}
END_TEST

START_TEST(device_zero_bytes) {
    void *p = device_alloc(0);  // a valid pointer, freed like any
    ck_assert_ptr_nonnull(p);
    device_upload(p, "", 0), device_zero(p, 0);
    device_free(p);
    device_free(NULL);
}
END_TEST

Suite *backend_device_suite(void) {
    Suite *s = suite_create("backend_device");
    TCase *tc = tcase_create("backend_device");
    tcase_add_test(tc, device_roundtrip);
    tcase_add_test(tc, device_zero_bytes);
    suite_add_tcase(s, tc);
    return s;
}

Suite *backend_elementwise_suite(void);
Suite *backend_dense_suite(void);
Suite *backend_attention_suite(void);
Suite *backend_movers_suite(void);
Suite *backend_losses_suite(void);
Suite *backend_vision_suite(void);
Suite *backend_layout_suite(void);

void backend_add_suites(SRunner *sr) {
    srunner_add_suite(sr, backend_elementwise_suite());
    srunner_add_suite(sr, backend_dense_suite());
    srunner_add_suite(sr, backend_attention_suite());
    srunner_add_suite(sr, backend_movers_suite());
    srunner_add_suite(sr, backend_losses_suite());
    srunner_add_suite(sr, backend_vision_suite());
    srunner_add_suite(sr, backend_layout_suite());
}
