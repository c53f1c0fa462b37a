// Monotonic wall clock.
#ifndef VLM_CORE_TIMER_H
#define VLM_CORE_TIMER_H

double timer_now_s(void);

#endif
