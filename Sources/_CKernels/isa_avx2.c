// The kernels for x86-64 CPUs with AVX2 and FMA (x86-64-v3): 16 vector
// registers of 8 floats.
// See isa.h.
#if defined(__x86_64__)
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ATR_ISA_SUFFIX _avx2
#define ATR_ISA_WIDE 0
#define ATR_ISA_EIGHT_LANES 1
#include "isa.h"

// Every function defined from here on, the kernels' own helpers too, is
// compiled for x86-64-v3; the system headers above stay as they are.
#pragma clang attribute push(__attribute__((target("arch=x86-64-v3"))), apply_to = function)
#include "isa_kernels.h"
#pragma clang attribute pop

// The suffix written out, not through the renames: a kernel missing from
// them fails to link instead of pointing back at its dispatcher.
#define ATR_KERNEL_ENTRY(name) atr_##name##_avx2,
const atr_kernel_table atr_kernels_avx2 = {ATR_KERNEL_FUNCTIONS(ATR_KERNEL_ENTRY)};
#endif
