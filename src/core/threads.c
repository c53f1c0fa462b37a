// Thread count control, see threads.h.
#include "core/threads.h"

#include <unistd.h>  // sysconf
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
