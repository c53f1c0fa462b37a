// Thread count for OpenMP and OpenBLAS (--threads; default: all cores).
#ifndef VLM_CORE_THREADS_H
#define VLM_CORE_THREADS_H

int threads_available(void);     // online cores
void threads_set(int n);         // n <= 0 means all cores
int threads_get(void);

// Debian's OpenBLAS 0.3.21 picks its kernels from the CPU's model number and
// falls back to its Prescott (SSE3, no FMA) kernels on models it does not
// know, recent Xeons among them: 3-5x slower sgemm. When OpenBLAS chose that
// fallback and the user set no OPENBLAS_CORETYPE, this runs the program again
// (execv, once: call it first thing in main) with the newest kernel family
// the CPU supports (SkylakeX with AVX-512, Haswell with AVX2 + FMA); it
// returns only when nothing is to be done or the exec failed.
void threads_choose_blas_kernels(char **argv);

#endif
