// The processes of one training run (data parallel), and what they say to
// each other.
//
// Built with MPI (VLM_HAVE_MPI, Debian's OpenMPI): `mpirun -np N build/vlm
// train ...` (or a hostfile for several machines) starts N ranks; world size
// and rank come from the launcher. Without MPI, or when no launcher started
// the process, the world is one process and every collective is a copy.
//
// Determinism: float reductions are summed by vlm itself in rank order
// (rank 0 + rank 1 + ...), never with MPI_SUM, whose order the library and
// the network choose; a run is therefore bitwise repeatable for a given world
// size, and world size W with one micro-batch each sums exactly as one rank
// accumulating the same W micro-batches.
//
// Faults never hang: every collective waits at most the timeout
// (dist_set_timeout, --ddp_timeout as HF's flag: 1800 s by default); a
// watchdog thread then prints which collective on which rank waited and
// stops every rank (MPI_Abort). A rank that dies is noticed by mpirun, which
// stops the others. A rank that fails cleanly reaches the next dist_agree
// with its error, and every rank stops there with that rank's number.
//
// Only the main thread calls these.
#ifndef VLM_DIST_DIST_H
#define VLM_DIST_DIST_H

#include <stdbool.h>
#include <stddef.h>

// From the launcher's environment, before dist_init (either build):
// the world size mpirun (OpenMPI, MPICH's hydra) announced, 1 if none, and the
// ranks on this machine (the default thread count divides the cores by it).
int dist_env_world(void);
int dist_env_local_size(void);

bool dist_built_with_mpi(void);

// Joins the world the launcher made (MPI_Init when one did). A build without
// MPI started by a launcher with more than one process refuses, naming the
// world size (without this, N copies would train N independent runs into one
// output_dir). Idempotent; dist_finalize at exit.
int dist_init(void);
void dist_finalize(void);
int dist_rank(void);
int dist_world(void);
void dist_set_timeout(double seconds);

// Every rank's status: VLM_OK when all are VLM_OK, else the error code of
// the lowest failing rank (in *failed, -1 when none; may be NULL); a rank
// that did not fail itself records "rank R of W failed (see its message)".
// Cheap: one small collective; the points where a rank may fail alone call it.
int dist_agree(int rc, int *failed);

// Integer sums (exact in any order), n values in place.
int dist_sum_long(long *x, int n);
// all (world * n, rank-major) receives every rank's n doubles.
int dist_allgather_f64(const double *mine, int n, double *all);
// x (n doubles) summed over the ranks where each slot has at most one rank
// with a nonzero value: exact (adding zeros never rounds), in any order.
int dist_sum_f64_disjoint(double *x, size_t n);

// A packed vector of n floats that lies in pieces in a buffer:
// base[ranges[2i] .. ranges[2i] + ranges[2i + 1]) for i in order (the
// optimizer's trained tensors inside the gradient or parameter buffer).
typedef struct {
    float *base;
    const size_t *ranges;
    int n_ranges;
    size_t n;
} DistView;

// bounds: world + 1 offsets into the packed vector, 0 .. n; rank r owns
// [bounds[r], bounds[r + 1]).
// Reduce-scatter: each rank's own slice becomes the rank-order sum of every
// rank's values there (the rest is left as it was).
int dist_reduce_scatter(const DistView *v, const size_t *bounds);
// Allgather: every rank's own slice to every rank.
int dist_allgather(const DistView *v, const size_t *bounds);
// Root's n bytes to every rank.
int dist_broadcast(void *buf, size_t n, int root);
int dist_barrier(void);
// A collective failed where no error can be returned (inside the model's
// parameter events): prints why, with the rank, and stops every rank.
_Noreturn void dist_abort(const char *why);

#endif
