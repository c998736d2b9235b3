#include "atrous_kernels.h"

// A compare-and-swap of each page's first word with itself is a write
// access, which faults the page in writable, and leaves a value another
// thread has stored there as it was: a plain store could overwrite it, and
// an atomic add of zero may be compiled to a load, which faults in no page.
void atr_touch_pages(void *start, size_t bytes) {
  for (size_t offset = 0; offset < bytes; offset += 4096) {
    int *word = (int *)((char *)start + offset);
    int seen = __atomic_load_n(word, __ATOMIC_RELAXED);
    __atomic_compare_exchange_n(word, &seen, seen, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  }
}
