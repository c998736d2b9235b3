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

int atr_current_cpu(void) { return sched_getcpu(); }

// Setting a mask without the CPU the thread runs on moves it at once;
// the mask put back afterwards leaves it where it now is.
int atr_step_off_cpu(int cpu) {
  cpu_set_t set, away;
  CPU_ZERO(&set);
  if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof set, &set) != 0) return -1;
  if (!CPU_ISSET(cpu, &set) || CPU_COUNT(&set) < 2) return -1;
  away = set;
  CPU_CLR(cpu, &away);
  if (sched_setaffinity(0, sizeof away, &away) != 0) return -1;
  return sched_setaffinity(0, sizeof set, &set);
}
#else
int atr_affinity_cpus(void) { return 0; }
int atr_current_cpu(void) { return -1; }
int atr_step_off_cpu(int cpu) { (void)cpu; return -1; }
#endif
