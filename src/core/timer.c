// Monotonic wall clock, see timer.h.
#include "core/timer.h"

#include <time.h>  // clock_gettime

double timer_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
