#ifndef ATROUS_CZLIB_SHIM_H
#define ATROUS_CZLIB_SHIM_H
#include <zlib.h>
#endif
