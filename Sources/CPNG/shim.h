#ifndef ATROUS_CPNG_SHIM_H
#define ATROUS_CPNG_SHIM_H
#include <png.h>
#endif
