// The kernels for x86-64 CPUs with AVX-512 (x86-64-v4): 32 vector
// registers of 16 floats.
// See isa.h.
#if defined(__x86_64__)
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ATR_ISA_SUFFIX _avx512
#define ATR_ISA_WIDE 1
#include "isa.h"

// Every function defined from here on, the kernels' own helpers too, is
// compiled for x86-64-v4's features; the system headers above stay as they
// are. Features, not "arch=x86-64-v4": that also tunes for 256-bit
// vectors, and the loops the compiler vectorizes would use half the
// registers' width (a depthwise and pointwise pair took 1.35 times as long).
#pragma clang attribute push(                                                                                  \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512cd,avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,movbe"))), \
    apply_to = function)
#include "isa_kernels.h"
#pragma clang attribute pop

// The suffix written out, not through the renames: a kernel missing from
// them fails to link instead of pointing back at its dispatcher.
#define ATR_KERNEL_ENTRY(name) atr_##name##_avx512,
const atr_kernel_table atr_kernels_avx512 = {ATR_KERNEL_FUNCTIONS(ATR_KERNEL_ENTRY)};
#endif
