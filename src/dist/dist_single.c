// A world of one process: the build without MPI, see dist.h.
#ifndef VLM_HAVE_MPI
#include <stdio.h>
#include <stdlib.h>

#include "core/error.h"
#include "dist/dist.h"

bool dist_built_with_mpi(void) { return false; }

int dist_init(void) {
    int n = dist_env_world();
    if (n > 1)
        return vlm_fail(VLM_ERR_INPUT, NULL, NULL,
                        "a launcher started %d processes, but this vlm was built without MPI: each would train alone "
                        "into the same output_dir. Install libopenmpi-dev and rebuild (make), or run one process",
                        n);
    return VLM_OK;
}

void dist_finalize(void) {}
int dist_rank(void) { return 0; }
int dist_world(void) { return 1; }
void dist_set_timeout(double seconds) { (void)seconds; }

int dist_agree(int rc, int *failed) {
    if (failed) *failed = rc == VLM_OK ? -1 : 0;
    return rc;
}

int dist_sum_long(long *x, int n) { return (void)x, (void)n, VLM_OK; }

int dist_allgather_f64(const double *mine, int n, double *all) {
    for (int i = 0; i < n; i++) all[i] = mine[i];
    return VLM_OK;
}

int dist_sum_f64_disjoint(double *x, size_t n) { return (void)x, (void)n, VLM_OK; }
int dist_reduce_scatter(const DistView *v, const size_t *bounds) { return (void)v, (void)bounds, VLM_OK; }
int dist_allgather(const DistView *v, const size_t *bounds) { return (void)v, (void)bounds, VLM_OK; }
int dist_broadcast(void *buf, size_t n, int root) { return (void)buf, (void)n, (void)root, VLM_OK; }
int dist_barrier(void) { return VLM_OK; }

_Noreturn void dist_abort(const char *why) {
    fprintf(stderr, "vlm: error: %s\n", why);
    exit(1);
}
#endif
