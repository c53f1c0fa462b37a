// What the launcher announced in the environment, see dist.h.
#include <stdlib.h>  // getenv, strtol

#include "dist/dist.h"

// The first of the variables set to a positive integer, else 0.
static int env_int(const char *const *names) {
    for (int i = 0; names[i]; i++) {
        const char *v = getenv(names[i]);
        if (!v || !*v) continue;
        char *end;
        long n = strtol(v, &end, 10);
        if (!*end && n > 0 && n < 1 << 20) return (int)n;
    }
    return 0;
}

// OpenMPI's mpirun, MPICH's / Intel MPI's hydra, MVAPICH
int dist_env_world(void) {
    static const char *const names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", NULL};
    int n = env_int(names);
    return n > 0 ? n : 1;
}

int dist_env_local_size(void) {
    static const char *const names[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_LOCAL_SIZE", NULL};
    int n = env_int(names);
    return n > 0 ? n : 1;
}
