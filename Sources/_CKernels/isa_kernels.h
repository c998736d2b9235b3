// Every file of kernels/, for the units that compile them once per
// instruction set (isa_*.c). Private to this target.
#include "kernels/kernels.c"
#include "kernels/conv.c"
#include "kernels/gemv.c"
#include "kernels/norm.c"
#include "kernels/reduce.c"
#include "kernels/winograd.c"
#include "kernels/blocked.c"
#include "kernels/box.c"
