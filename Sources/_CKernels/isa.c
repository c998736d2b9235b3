// Which instruction set's kernels run: the widest the CPU has, capped for
// the process by ATROUS_ISA and for one thread by atr_isa_set_thread; and
// the cache sizes the kernels' blocks follow.
#include "isa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atr_isa supported = ATR_ISA_BASELINE;
static atr_isa process = ATR_ISA_BASELINE;
static int requested = -1;
static size_t l1d = 32 << 10, l2 = 1 << 20, l3 = 8 << 20;
// -1: the thread follows the process. Initial-exec: every kernel call
// reads it, and the default model for position-independent code reads it
// through a call to __tls_get_addr (1.4% of a Gaussian filter's time).
static _Thread_local int thread_isa __attribute__((tls_model("initial-exec"))) = -1;

// `isa`, or the widest the CPU has when that is narrower.
static int capped(int isa) { return isa < (int)supported ? isa : (int)supported; }

static int parse(const char *name) {
  if (!name) return -1;
  for (int isa = ATR_ISA_BASELINE; isa <= ATR_ISA_AVX512; isa++) {
    if (strcmp(name, atr_isa_name((atr_isa)isa)) == 0) return isa;
  }
  // On arm64 the baseline is NEON; "baseline" names it too.
  return strcmp(name, "baseline") == 0 ? ATR_ISA_BASELINE : -2;
}

// The size in bytes of cpu0's data or unified cache of `level` as the
// kernel describes it (sysfs), or 0. On a virtual machine the C library's
// answer may be the whole package's: an AMD EPYC guest's sysconf gave 256
// MiB of L3 where one core reaches its 16 MiB slice, as sysfs says.
static size_t sysfs_cache(int level) {
  for (int index = 0; index < 8; index++) {
    char path[64], text[32];
    int found = 0;
    size_t size = 0;
    static const char *const fields[] = {"level", "type", "size"};
    for (int f = 0; f < 3; f++) {
      snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/%s", index, fields[f]);
      FILE *file = fopen(path, "r");
      if (!file) return 0;
      const int read = fgets(text, sizeof text, file) != NULL;
      fclose(file);
      if (!read) break;
      if (f == 0 && atoi(text) != level) break;
      if (f == 1 && strncmp(text, "Instruction", 11) == 0) break;
      if (f == 2) {
        char *end = NULL;
        size = (size_t)strtoul(text, &end, 10);
        if (end && (*end == 'K' || *end == 'k')) size <<= 10;
        else if (end && (*end == 'M' || *end == 'm')) size <<= 20;
        found = size > 0;
      }
    }
    if (found) return size;
  }
  return 0;
}

// Before main, so every kernel call sees the final choice; the
// environment is read once.
__attribute__((constructor)) static void choose(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) supported = ATR_ISA_AVX512;
  else if (__builtin_cpu_supports("x86-64-v3")) supported = ATR_ISA_AVX2;
#endif
  requested = parse(getenv("ATROUS_ISA"));
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
  const long d = sysconf(_SC_LEVEL1_DCACHE_SIZE), u = sysconf(_SC_LEVEL2_CACHE_SIZE);
  if (d > 0) l1d = (size_t)d;
  if (u > 0) l2 = (size_t)u;
#endif
#if defined(_SC_LEVEL3_CACHE_SIZE)
  const long last = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (last > 0) l3 = (size_t)last;
#endif
  const size_t levels[3] = {sysfs_cache(1), sysfs_cache(2), sysfs_cache(3)};
  if (levels[0]) l1d = levels[0];
  if (levels[1]) l2 = levels[1];
  if (levels[2]) l3 = levels[2];
  l1d = l1d < (16u << 10) ? 16u << 10 : l1d > (1u << 20) ? 1u << 20 : l1d;
  l2 = l2 < (256u << 10) ? 256u << 10 : l2 > (16u << 20) ? 16u << 20 : l2;
  l3 = l3 < l2 ? l2 : l3 > ((size_t)1 << 30) ? (size_t)1 << 30 : l3;
  process = requested >= 0 ? (atr_isa)capped(requested) : supported;
}

atr_isa atr_isa_supported(void) { return supported; }
size_t atr_cache_l1d(void) { return l1d; }
size_t atr_cache_l2(void) { return l2; }
size_t atr_cache_l3(void) { return l3; }
atr_isa atr_isa_process(void) { return process; }
int atr_isa_requested(void) { return requested; }

atr_isa atr_isa_current(void) { return thread_isa >= 0 ? (atr_isa)thread_isa : process; }

int atr_isa_thread(void) { return thread_isa; }

int atr_isa_set_thread(int isa) {
  const int before = thread_isa;
  thread_isa = isa < 0 ? -1 : capped(isa);
  return before;
}

const char *atr_isa_name(atr_isa isa) {
  switch (isa) {
  case ATR_ISA_AVX512: return "avx512";
  case ATR_ISA_AVX2: return "avx2";
#if defined(__aarch64__)
  default: return "neon";
#else
  default: return "baseline";
#endif
  }
}

const atr_kernel_table *atr_kernels(void) {
#if defined(__x86_64__)
  switch (atr_isa_current()) {
  case ATR_ISA_AVX512: return &atr_kernels_avx512;
  case ATR_ISA_AVX2: return &atr_kernels_avx2;
  default: break;
  }
#endif
  return &atr_kernels_baseline;
}

int atr_conv_blocked_preferred(void) { return atr_isa_current() >= ATR_ISA_AVX2; }
