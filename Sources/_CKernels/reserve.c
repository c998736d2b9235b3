// Disk space for a file's bytes, reserved in one call, and its writes
// sent to disk as they are made: fallocate and sync_file_range need
// _GNU_SOURCE, which the Swift overlay of the C library does not set.
#define _GNU_SOURCE
#include "atrous_kernels.h"

#include <errno.h>

#if defined(__linux__)
#include <fcntl.h>

int atr_reserve_file(int fd, int64_t bytes) { return fallocate(fd, 0, 0, (off_t)bytes) == 0 ? 0 : errno; }

int atr_start_writeback(int fd, int64_t start, int64_t length) {
  return sync_file_range(fd, (off_t)start, (off_t)length, SYNC_FILE_RANGE_WRITE) == 0 ? 0 : errno;
}

int atr_settle_range(int fd, int64_t start, int64_t length) {
  const unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
  if (sync_file_range(fd, (off_t)start, (off_t)length, flags) != 0) return errno;
  // Whole pages only: the partial ones at the ends may hold bytes of a
  // neighbouring range not written yet, which would have to be read back.
  const int64_t page = 4096, first = (start + page - 1) / page * page, end = (start + length) / page * page;
  if (end > first) (void)posix_fadvise(fd, (off_t)first, (off_t)(end - first), POSIX_FADV_DONTNEED);
  return 0;
}
#else
int atr_reserve_file(int fd, int64_t bytes) {
  (void)fd;
  (void)bytes;
  return EOPNOTSUPP;
}

int atr_start_writeback(int fd, int64_t start, int64_t length) {
  (void)fd;
  (void)start;
  (void)length;
  return EOPNOTSUPP;
}

int atr_settle_range(int fd, int64_t start, int64_t length) {
  (void)fd;
  (void)start;
  (void)length;
  return EOPNOTSUPP;
}
#endif
