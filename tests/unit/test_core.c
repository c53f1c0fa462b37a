// Unit tests: errors, RNG (Philox known answers), files and atomic writes.
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/error.h"
#include "core/file.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/str.h"
#include "test_util.h"

START_TEST(error_names_file_record_reason) {
    ck_assert_int_eq(vlm_fail(VLM_ERR_INPUT, "a.json", "record 7", "bad %s", "value"), VLM_ERR_INPUT);
    ck_assert_str_eq(vlm_last_error(), "a.json: record 7: bad value");
    vlm_fail(VLM_ERR_FAIL, NULL, NULL, "plain");
    ck_assert_str_eq(vlm_last_error(), "plain");
    vlm_fail_context(VLM_ERR_FAIL, "loading %s", "x");
    ck_assert_str_eq(vlm_last_error(), "loading x: plain");
}
END_TEST

// Random123's tests/kat_vectors, the three philox4x32 10 lines.
START_TEST(philox_known_answers) {
    const uint32_t vectors[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        philox4x32_10(vectors[v], vectors[v] + 4, out);
        for (int k = 0; k < 4; k++) ck_assert_uint_eq(out[k], vectors[v][6 + k]);
    }
}
END_TEST

START_TEST(rng_streams_reproduce_and_resume) {
    Rng a, b;
    rng_init(&a, 1234, 0);
    uint32_t first[10];
    for (int i = 0; i < 10; i++) first[i] = rng_u32(&a);
    // resume from a saved position: same values as drawing through
    rng_init(&b, 1234, 0);
    b.position = 6;
    for (int i = 6; i < 10; i++) ck_assert_uint_eq(rng_u32(&b), first[i]);
    // another stream or seed differs
    rng_init(&b, 1234, 1);
    ck_assert_uint_ne(rng_u32(&b), first[0]);
    rng_init(&b, 1235, 0);
    ck_assert_uint_ne(rng_u32(&b), first[0]);
}
END_TEST

START_TEST(rng_distributions) {
    Rng r;
    rng_init(&r, 42, 0);
    double sum = 0, sq = 0, usum = 0;
    int counts[7] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        float u = rng_uniform(&r);
        ck_assert(u >= 0.0f && u < 1.0f);
        usum += u;
        float z = rng_normal(&r);
        sum += z;
        sq += (double)z * z;
        counts[rng_below(&r, 7)]++;
    }
    ck_assert_double_eq_tol(usum / n, 0.5, 0.005);
    ck_assert_double_eq_tol(sum / n, 0.0, 0.01);
    ck_assert_double_eq_tol(sq / n, 1.0, 0.02);
    for (int k = 0; k < 7; k++) ck_assert_double_eq_tol(counts[k] / (double)n, 1.0 / 7, 0.005);
    uint64_t items[100];
    for (int i = 0; i < 100; i++) items[i] = (uint64_t)i;
    rng_shuffle_u64(&r, items, 100);
    int seen[100] = {0}, moved = 0;
    for (int i = 0; i < 100; i++) {
        seen[items[i]]++;
        moved += items[i] != (uint64_t)i;
    }
    for (int i = 0; i < 100; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert_int_gt(moved, 80);
}
END_TEST

START_TEST(alloc_is_aligned_and_checked) {
    float *p = vlm_alloc_aligned(1000 * sizeof(float));
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % VLM_ALIGNMENT, 0);
    for (int i = 0; i < 1000; i++) ck_assert(p[i] == 0.0f);
    vlm_free_aligned(p);
    size_t out;
    ck_assert(!size_mul(SIZE_MAX / 2, 3, &out));
    ck_assert(!size_add(SIZE_MAX, 1, &out));
    ck_assert(size_mul(1u << 20, 1u << 10, &out) && out == (size_t)1 << 30);
}
END_TEST

START_TEST(atomic_write_commits_or_leaves_old_file) {
    char dir[] = "/tmp/vlm-test-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *path = path_join(dir, "out.txt");
    AtomicFile af;
    ck_assert_int_eq(atomic_open(&af, path), VLM_OK);
    fputs("first", af.fp);
    ck_assert_int_eq(atomic_commit(&af), VLM_OK);
    // an aborted second write leaves the first intact and no temp file behind
    ck_assert_int_eq(atomic_open(&af, path), VLM_OK);
    fputs("second, never committed", af.fp);
    atomic_abort(&af);
    char *text;
    size_t n;
    ck_assert_int_eq(file_read_all(path, 100, &text, &n), VLM_OK);
    ck_assert_str_eq(text, "first");
    free(text);
    ck_assert_int_eq(count_dir_entries(dir), 1);
    // a file over the read limit is refused, not truncated
    ck_assert_int_eq(file_read_all(path, 3, &text, &n), VLM_ERR_INPUT);
    unlink(path);
    rmdir(dir);
    free(path);
}
END_TEST

START_TEST(paths_and_durations) {
    char *p = path_join("a/b", "c.json");
    ck_assert_str_eq(p, "a/b/c.json");
    free(p);
    p = path_dirname("a/b/c.json");
    ck_assert_str_eq(p, "a/b");
    free(p);
    p = path_dirname("c.json");
    ck_assert_str_eq(p, ".");
    free(p);
    char buf[32];
    format_duration(3725, buf, sizeof buf);
    ck_assert_str_eq(buf, "1h02m");
    format_duration(185, buf, sizeof buf);
    ck_assert_str_eq(buf, "3m05s");
    format_duration(7.4, buf, sizeof buf);
    ck_assert_str_eq(buf, "7s");
}
END_TEST

// Not a terminal: one plain line per interval and one at the end, no escape codes.
START_TEST(progress_plain_lines_when_not_a_tty) {
    FILE *f = tmpfile();
    Progress p;
    progress_begin(&p, f, "convert", "tensors", 10);
    ck_assert(!p.tty);
    for (uint64_t i = 1; i <= 10; i++) progress_update(&p, i);  // well inside the 10 s interval
    progress_end(&p);
    rewind(f);
    char line[256], last[256] = "";
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        lines++;
        ck_assert(strchr(line, '\033') == NULL && strchr(line, '\r') == NULL);
        strcpy(last, line);
    }
    fclose(f);
    ck_assert_int_eq(lines, 1);
    ck_assert_msg(strncmp(last, "convert: 10/10 tensors", 22) == 0, "%s", last);
}
END_TEST

START_TEST(log_levels_parse_and_filter) {
    LogLevel level;
    ck_assert_int_eq(log_parse_level("debug", &level), 0);
    ck_assert_int_eq(level, LOG_DEBUG);
    ck_assert_int_eq(log_parse_level("verbose", &level), -1);
    LogLevel saved = log_get_level();
    log_set_level(LOG_ERROR);
    // a quiet run disables progress output too
    Progress p;
    FILE *f = tmpfile();
    progress_begin(&p, f, "x", "y", 1);
    progress_end(&p);
    ck_assert_int_eq(ftell(f), 0);
    fclose(f);
    log_set_level(saved);
}
END_TEST

START_TEST(string_prefix_and_suffix) {
    ck_assert(str_has_suffix("model.norm.weight", ".weight") && str_has_suffix("a", "") && str_has_suffix("", ""));
    ck_assert(!str_has_suffix("weight", ".weight") && !str_has_suffix("", "x"));
    ck_assert(str_has_suffix("x.index.json", ".index.json") && !str_has_suffix("x.json", ".index.json"));
    ck_assert(str_has_prefix("language_model.x", "language_model.") && str_has_prefix("a", "") && str_has_prefix("", ""));
    ck_assert(!str_has_prefix("language", "language_model.") && !str_has_prefix("", "x"));
}
END_TEST

Suite *core_suite(void) {
    return SUITE("core", "", 0,
                 error_names_file_record_reason,
                 philox_known_answers,
                 rng_streams_reproduce_and_resume,
                 rng_distributions,
                 alloc_is_aligned_and_checked,
                 atomic_write_commits_or_leaves_old_file,
                 paths_and_durations,
                 progress_plain_lines_when_not_a_tty,
                 log_levels_parse_and_filter,
                 string_prefix_and_suffix);
}
