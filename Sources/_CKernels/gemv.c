#include "atrous_kernels.h"

// One clone per instruction set; the loader picks the best the CPU has.
#if defined(__x86_64__) && defined(__clang__) && defined(__linux__)
#define ATR_MULTIVERSION __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define ATR_MULTIVERSION
#endif

// Lanes of partial sums per row: wide enough for two AVX-512 vectors, so
// the adds into them do not wait on each other.
enum { LANES = 32 };

// A product with one row is a read of the weights: each weight is used
// once, so the loop streams W row by row, four rows at a time sharing the
// loads of `a`, into lane-wise partial sums that vectorize without
// reassociating a float reduction.
ATR_MULTIVERSION
void atr_gemv_rows(float *restrict y, const float *restrict a, const float *restrict w, size_t n, size_t k,
                   const float *restrict bias) {
  const size_t body = k / LANES * LANES;
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float *restrict w0 = w + j * k, *restrict w1 = w0 + k, *restrict w2 = w1 + k, *restrict w3 = w2 + k;
    float s0[LANES] = {0}, s1[LANES] = {0}, s2[LANES] = {0}, s3[LANES] = {0};
    for (size_t i = 0; i < body; i += LANES) {
      for (int l = 0; l < LANES; l++) {
        const float x = a[i + l];
        s0[l] += x * w0[i + l];
        s1[l] += x * w1[i + l];
        s2[l] += x * w2[i + l];
        s3[l] += x * w3[i + l];
      }
    }
    float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (int l = 0; l < LANES; l++) {
      t0 += s0[l];
      t1 += s1[l];
      t2 += s2[l];
      t3 += s3[l];
    }
    for (size_t i = body; i < k; i++) {
      t0 += a[i] * w0[i];
      t1 += a[i] * w1[i];
      t2 += a[i] * w2[i];
      t3 += a[i] * w3[i];
    }
    y[j] = t0 + (bias ? bias[j] : 0);
    y[j + 1] = t1 + (bias ? bias[j + 1] : 0);
    y[j + 2] = t2 + (bias ? bias[j + 2] : 0);
    y[j + 3] = t3 + (bias ? bias[j + 3] : 0);
  }
  for (; j < n; j++) {
    const float *restrict w0 = w + j * k;
    float s0[LANES] = {0};
    for (size_t i = 0; i < body; i += LANES) {
      for (int l = 0; l < LANES; l++) s0[l] += a[i + l] * w0[i + l];
    }
    float t0 = 0;
    for (int l = 0; l < LANES; l++) t0 += s0[l];
    for (size_t i = body; i < k; i++) t0 += a[i] * w0[i];
    y[j] = t0 + (bias ? bias[j] : 0);
  }
}
