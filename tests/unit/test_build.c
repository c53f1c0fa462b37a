// The build itself: optional dependencies that are present but unusable must
// not stop CMake's configure (issue 13, item 8).
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_util.h"

static void write_script(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, 0755), 0);
}

// OpenMPI's runtime without its development package: `mpicc` exists and names
// include / library folders that do not. CMake's FindMPI then fails its
// try_compile with a hard error. And an nvcc that cannot run.
static const char FAKE_MPICC[] =
    "#!/bin/sh\n"
    "for a in \"$@\"; do case \"$a\" in\n"
    "  -showme:compile|--showme:compile) echo '-I/nonexistent/openmpi/include'; exit 0;;\n"
    "  -showme:link|--showme:link) echo '-L/nonexistent/openmpi/lib -lmpi'; exit 0;;\n"
    "  -showme:incdirs|--showme:incdirs) echo /nonexistent/openmpi/include; exit 0;;\n"
    "  -showme:libdirs|--showme:libdirs) echo /nonexistent/openmpi/lib; exit 0;;\n"
    "  -showme:libs|--showme:libs) echo mpi; exit 0;;\n"
    "  -showme*|--showme*) echo 'gcc -I/nonexistent/openmpi/include -L/nonexistent/openmpi/lib -lmpi'; exit 0;;\n"
    "esac; done\n"
    "exec cc \"$@\"\n";
static const char FAKE_MPIEXEC[] = "#!/bin/sh\necho 'mpiexec (OpenRTE) 4.1.4'\n";
static const char BROKEN_NVCC[] = "#!/bin/sh\necho 'nvcc: error while loading shared libraries' >&2\nexit 127\n";

START_TEST(configure_survives_unusable_optional_dependencies) {
    char dir[] = "/tmp/vlm-build-test.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char bin[600];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    ck_assert_int_eq(mkdir(bin, 0755), 0);
    write_script(bin, "mpicc", FAKE_MPICC);
    write_script(bin, "mpiexec", FAKE_MPIEXEC);
    write_script(bin, "nvcc", BROKEN_NVCC);
    char cmd[4096], log[700];
    snprintf(log, sizeof log, "%s/configure.log", dir);
    snprintf(cmd, sizeof cmd,
             "PATH='%s':\"$PATH\" CUDACXX='%s/nvcc' cmake -S '%s' -B '%s/build' -DCMAKE_BUILD_TYPE=Release >'%s' 2>&1",
             bin, bin, VLM_SOURCE_DIR, dir, log);
    int rc = system(cmd);
    char *text = NULL;
    FILE *f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    size_t cap = 1 << 20;
    text = calloc(cap, 1);
    size_t n = fread(text, 1, cap - 1, f);
    fclose(f);
    text[n] = '\0';
    if (rc != 0 || strstr(text, "CMake Error")) fprintf(stderr, "%s\n", text);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_null(strstr(text, "CMake Error"));
    // the unusable CUDA compiler is reported in one line, and the build goes on
    ck_assert_ptr_nonnull(strstr(text, "CUDA not usable"));
    ck_assert_ptr_nonnull(strstr(text, "Configuring done"));
    free(text);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

// The CUDA build asked for (make cuda) with an nvcc that cannot run: configure stops, saying why.
START_TEST(cuda_build_needs_a_working_nvcc) {
    char dir[] = "/tmp/vlm-build-test.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char bin[600];
    snprintf(bin, sizeof bin, "%s/bin", dir);
    ck_assert_int_eq(mkdir(bin, 0755), 0);
    write_script(bin, "nvcc", BROKEN_NVCC);
    char cmd[4096], log[700];
    snprintf(log, sizeof log, "%s/configure.log", dir);
    snprintf(cmd, sizeof cmd,
             "PATH='%s':\"$PATH\" CUDACXX='%s/nvcc' cmake -S '%s' -B '%s/build' -DVLM_CUDA=ON -DVLM_MPI=OFF >'%s' 2>&1",
             bin, bin, VLM_SOURCE_DIR, dir, log);
    int rc = system(cmd);
    FILE *f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(text, "VLM_CUDA=ON needs a working nvcc") != NULL, "%s", text);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

Suite *build_suite(void) {
    return SUITE("build", "", 120, configure_survives_unusable_optional_dependencies, cuda_build_needs_a_working_nvcc);
}
