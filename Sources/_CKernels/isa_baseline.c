// The kernels for every CPU of the architecture: x86-64's SSE2, arm64's
// NEON. See isa.h.
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ATR_ISA_SUFFIX _baseline
#define ATR_ISA_WIDE 0
#include "isa.h"

#include "kernels/kernels.c"
#include "kernels/conv.c"
#include "kernels/gemv.c"
#include "kernels/norm.c"
#include "kernels/winograd.c"
#include "kernels/blocked.c"

#define ATR_KERNEL_ENTRY(name) atr_##name,
const atr_kernel_table atr_kernels_baseline = {ATR_KERNEL_FUNCTIONS(ATR_KERNEL_ENTRY)};
