// Disk space for a file's bytes, reserved in one call: fallocate needs
// _GNU_SOURCE, which the Swift overlay of the C library does not set.
#define _GNU_SOURCE
#include "atrous_kernels.h"

#include <errno.h>

#if defined(__linux__)
#include <fcntl.h>

int atr_reserve_file(int fd, int64_t bytes) { return fallocate(fd, 0, 0, (off_t)bytes) == 0 ? 0 : errno; }
#else
int atr_reserve_file(int fd, int64_t bytes) {
  (void)fd;
  (void)bytes;
  return EOPNOTSUPP;
}
#endif
