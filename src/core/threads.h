// Thread count for OpenMP and OpenBLAS (--threads; default: all cores).
#ifndef VLM_CORE_THREADS_H
#define VLM_CORE_THREADS_H

int threads_available(void);     // online cores
void threads_set(int n);         // n <= 0 means all cores
int threads_get(void);

#endif
