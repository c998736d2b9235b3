// The kernels for every CPU of the architecture: x86-64's SSE2, arm64's
// NEON. See isa.h.
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ATR_ISA_SUFFIX _baseline
#define ATR_ISA_WIDE 0
#include "isa.h"

#include "isa_kernels.h"

// The suffix written out, not through the renames: a kernel missing from
// them fails to link instead of pointing back at its dispatcher.
#define ATR_KERNEL_ENTRY(name) atr_##name##_baseline,
const atr_kernel_table atr_kernels_baseline = {ATR_KERNEL_FUNCTIONS(ATR_KERNEL_ENTRY)};
