// The CPUs of the process's affinity mask: sched_getaffinity needs
// _GNU_SOURCE, which the Swift overlay of the C library does not set.
#define _GNU_SOURCE
#include "atrous_kernels.h"

#if defined(__linux__)
#include <sched.h>

int atr_affinity_cpus(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return CPU_COUNT(&set);
}
#else
int atr_affinity_cpus(void) { return 0; }
#endif
