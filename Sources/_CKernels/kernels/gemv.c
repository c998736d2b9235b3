#include "atrous_kernels.h"

#include <string.h>

// Output columns per block of the stream: four AVX-512 registers of sums,
// eight AVX2 ones, eight SSE2 or NEON ones (SSE2 has 16 registers, so 64
// columns there would spill).
#if ATR_ISA_WIDE || ATR_ISA_EIGHT_LANES
enum { GEMV_COLUMNS = 64 };
#else
enum { GEMV_COLUMNS = 32 };
#endif

size_t atr_gemv_columns(void) { return GEMV_COLUMNS; }

size_t atr_gemv_packed_size(size_t n, size_t k) { return (n + GEMV_COLUMNS - 1) / GEMV_COLUMNS * GEMV_COLUMNS * k; }

// A product with one row is a read of the weights: each weight is used
// once, so the loop streams W block by block, each block (k, COLUMNS) one
// sequential read, and multiplies a broadcast a[i] into a register-held
// row of sums for the block's columns. Each sum is a plain left-to-right
// dot product, and no lanes are summed across at the end: a stream of
// four rows' dot products in 32 lanes each spent more on folding its
// lanes, and on k % 32 left over in scalar code, than on the stream where
// k was small (960 x 240: 50.7 -> 29.3 us from L3, 17.6 -> 12.2 from L2;
// 1000 x 1280 from L3: 238 -> 177; AMD EPYC family 25, best of 200).
// The hardware's prefetch keeps up with the one stream: software
// prefetches 1 to 8 KiB ahead measured no better.
void atr_gemv_rows(float *restrict y, const float *restrict a, const float *restrict w, size_t n, size_t k,
                   const float *restrict bias) {
  for (size_t b = 0; b < n; b += GEMV_COLUMNS) {
    const float *restrict g = w + b * k;  // (k, COLUMNS)
    float s[GEMV_COLUMNS] = {0};
    for (size_t i = 0; i < k; i++) {
      const float x = a[i];
      for (int l = 0; l < GEMV_COLUMNS; l++) s[l] += x * g[i * GEMV_COLUMNS + l];
    }
    const size_t count = n - b < GEMV_COLUMNS ? n - b : GEMV_COLUMNS;
    if (bias) {
      for (size_t l = 0; l < count; l++) y[b + l] = s[l] + bias[b + l];
    } else {
      memcpy(y + b, s, count * sizeof(float));
    }
  }
}

void atr_gemv_pack(float *restrict out, const float *restrict w, size_t ldw, int columns, size_t n, size_t k) {
  for (size_t b = 0; b < n; b += GEMV_COLUMNS) {
    float *restrict block = out + b * k;  // (k, COLUMNS)
    const size_t count = n - b < GEMV_COLUMNS ? n - b : GEMV_COLUMNS;
    if (columns) {
      for (size_t i = 0; i < k; i++) memcpy(block + i * GEMV_COLUMNS, w + i * ldw + b, count * sizeof(float));
    } else {
      atr_transpose_strided(block, GEMV_COLUMNS, w + b * ldw, ldw, count, k);
    }
    if (count < GEMV_COLUMNS) {
      for (size_t i = 0; i < k; i++) memset(block + i * GEMV_COLUMNS + count, 0, (GEMV_COLUMNS - count) * sizeof(float));
    }
  }
}
