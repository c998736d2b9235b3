#include "atrous_kernels.h"

#include <string.h>

// Lanes of partial sums per row: wide enough for two AVX-512 vectors, so
// the adds into them do not wait on each other.
enum { LANES = 32 };
// Floats of packed weights the loop prefetches ahead of the chunk it reads:
// 2 KiB, four chunks of four rows. A classifier's weights come from L3 or
// memory once per run; with the hardware's prefetch alone, 1000 x 576 to
// 1000 x 1280 took 1.04 to 1.09 times as long (median of 41 alternating
// batches; 4 KiB ahead was no better).
enum { GEMV_AHEAD = 4 * 4 * LANES };
// Partial sums per row: where a vector holds 8 floats (AVX2) or 4 (SSE2,
// NEON), a chunk's two halves go into the same 16 sums: 32 lanes of four
// rows took all 16 registers, spilled (AVX2), and streamed cold weights
// at 12.3 GB/s against 13.3 to 14.3 with 16 (1000 x 1024, 1024 x 576,
// 1000 x 1280; 10.9 against 11.6 to 11.9 with SSE2; 8 sums: 9.4 to 9.8;
// AMD EPYC, medians of 40 runs with the caches flushed between).
enum { SUMS = ATR_ISA_WIDE ? LANES : LANES / 2 };

// A product with one row is a read of the weights: each weight is used
// once, so the loop streams W, four rows at a time sharing the loads of
// `a`, into lane-wise partial sums that vectorize without reassociating a
// float reduction. The four rows come interleaved in chunks of LANES
// (atr_gemv_pack) so that the whole of W is one sequential read: rows side
// by side were four streams, each a page long, which the prefetcher hardly
// got going on before it ended (weights out of cache: 1000 x 576 took 0.21
// instead of 0.12 ms, 1000 x 1024 0.28 instead of 0.21).
void atr_gemv_rows(float *restrict y, const float *restrict a, const float *restrict w, size_t n, size_t k,
                   const float *restrict bias) {
  const size_t body = k / LANES * LANES;
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float *restrict g = w + j * k;  // (body / LANES, 4, LANES) then (4, k - body)
    float s0[SUMS] = {0}, s1[SUMS] = {0}, s2[SUMS] = {0}, s3[SUMS] = {0};
    for (size_t i = 0; i < body; i += LANES) {
      const float *restrict c = g + 4 * i;
      for (int line = 0; line < 4 * LANES; line += 16) __builtin_prefetch(c + GEMV_AHEAD + line);
      for (int h = 0; h < LANES; h += SUMS) {
        for (int l = 0; l < SUMS; l++) {
          const float x = a[i + h + l];
          s0[l] += x * c[h + l];
          s1[l] += x * c[LANES + h + l];
          s2[l] += x * c[2 * LANES + h + l];
          s3[l] += x * c[3 * LANES + h + l];
        }
      }
    }
    float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (int l = 0; l < SUMS; l++) {
      t0 += s0[l];
      t1 += s1[l];
      t2 += s2[l];
      t3 += s3[l];
    }
    const size_t tail = k - body;
    const float *restrict r0 = g + 4 * body, *restrict r1 = r0 + tail, *restrict r2 = r1 + tail, *restrict r3 = r2 + tail;
    for (size_t i = 0; i < tail; i++) {
      const float x = a[body + i];
      t0 += x * r0[i];
      t1 += x * r1[i];
      t2 += x * r2[i];
      t3 += x * r3[i];
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

void atr_gemv_pack(float *restrict out, const float *restrict w, size_t n, size_t k) {
  const size_t body = k / LANES * LANES, tail = k - body;
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    float *restrict g = out + j * k;
    for (size_t i = 0; i < body; i += LANES) {
      for (size_t r = 0; r < 4; r++) memcpy(g + 4 * i + r * LANES, w + (j + r) * k + i, LANES * sizeof(float));
    }
    for (size_t r = 0; r < 4; r++) memcpy(g + 4 * body + r * tail, w + (j + r) * k + body, tail * sizeof(float));
  }
  memcpy(out + j * k, w + j * k, (n - j) * k * sizeof(float));
}
