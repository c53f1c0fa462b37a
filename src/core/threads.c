// Thread count control, see threads.h.
#include "core/threads.h"

#include <stdlib.h>   // getenv, setenv
#include <strings.h>  // strcasecmp
#include <unistd.h>   // sysconf, execv
#ifdef _OPENMP
#include <omp.h>     // omp_set_num_threads
#endif
#include <cblas.h>   // openblas_set_num_threads

static int g_threads = 0;

int threads_available(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void threads_set(int n) {
    g_threads = n > 0 ? n : threads_available();
#ifdef _OPENMP
    omp_set_num_threads(g_threads);
#endif
    openblas_set_num_threads(g_threads);
}

int threads_get(void) { return g_threads > 0 ? g_threads : threads_available(); }

void threads_choose_blas_kernels(char **argv) {
    if (getenv("OPENBLAS_CORETYPE")) return;  // the user's choice, or ours after the exec
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "prescott") != 0) return;
    __builtin_cpu_init();
    const char *want = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
                           ? "SkylakeX"
                       : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "Haswell"
                                                                                         : NULL;
    if (!want || setenv("OPENBLAS_CORETYPE", want, 1) != 0) return;
    execv("/proc/self/exe", argv);  // only returns on failure: carry on with the kernels we have
    unsetenv("OPENBLAS_CORETYPE");
}
