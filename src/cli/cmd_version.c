// `vlm version`: version and what this build was compiled with.
#include <cblas.h>    // openblas_get_config
#include <jansson.h>  // JANSSON_VERSION
#include <zip.h>      // zip_libzip_version

#include "cli/cli.h"
#include "dist/dist.h"
#include "core/threads.h"
#include "kernels/device.h"  // device_name

#ifndef VLM_VERSION
#define VLM_VERSION "dev"
#endif

int cmd_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    printf("vlm %s\n", VLM_VERSION);
    printf("threads: %d of %d cores\n", threads_get(), threads_available());
#ifdef _OPENMP
    printf("openmp: %d\n", _OPENMP);
#else
    printf("openmp: no\n");
#endif
    printf("blas: %s\n", openblas_get_config());
    printf("jansson: %s, libzip: %s\n", JANSSON_VERSION, zip_libzip_version());
    printf("mpi: %s\n", dist_built_with_mpi() ? "yes (mpirun -np N build/vlm train ...)" : "no (one process per run)");
#ifdef VLM_HAVE_CUDA
    printf("cuda: compiled in: the kernels run on the GPU (%s)\n", device_name());
#else
    printf("cuda: not compiled in (the CUDA build is make cuda's build-cuda/vlm-cuda)\n");
#endif
    return 0;
}
