#include "atrous_kernels.h"

#include <math.h>

// One clone per instruction set; the loader picks the best the CPU has.
#if defined(__x86_64__) && defined(__clang__) && defined(__linux__)
#define ATR_MULTIVERSION __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define ATR_MULTIVERSION
#endif

// Rows are processed in blocks small enough that the block of `out` stays
// in L1 while every tap passes over it.
enum { BLOCK = 512 };

ATR_MULTIVERSION
void atr_filter_row(float *restrict out, const float *restrict in, size_t count, const float *taps,
                    int ntaps, size_t step, atr_taps_symmetry symmetry) {
  const int half = ntaps / 2;
  for (size_t start = 0; start < count; start += BLOCK) {
    const size_t n = count - start < BLOCK ? count - start : BLOCK;
    float *restrict o = out + start;
    const float *restrict base = in + start;
    if (symmetry == ATR_TAPS_GENERAL || ntaps < 3) {
      const float k0 = taps[0];
      for (size_t j = 0; j < n; j++) o[j] = k0 * base[j];
      for (int t = 1; t < ntaps; t++) {
        const float k = taps[t];
        const float *restrict src = base + (size_t)t * step;
        for (size_t j = 0; j < n; j++) o[j] += k * src[j];
      }
      continue;
    }
    // Fold mirrored taps: one multiply for each pair.
    const float sign = symmetry == ATR_TAPS_SYMMETRIC ? 1.0f : -1.0f;
    if (ntaps % 2 == 1) {
      const float kc = symmetry == ATR_TAPS_SYMMETRIC ? taps[half] : 0.0f;
      const float *restrict mid = base + (size_t)half * step;
      for (size_t j = 0; j < n; j++) o[j] = kc * mid[j];
    } else {
      for (size_t j = 0; j < n; j++) o[j] = 0.0f;
    }
    for (int t = 0; t < half; t++) {
      const float k = taps[t];
      const float *restrict a = base + (size_t)t * step;
      const float *restrict b = base + (size_t)(ntaps - 1 - t) * step;
      for (size_t j = 0; j < n; j++) o[j] += k * (a[j] + sign * b[j]);
    }
  }
}

ATR_MULTIVERSION
void atr_filter_row_strided(float *restrict out, const float *restrict in, size_t width,
                            size_t channels, const float *taps, int ntaps, size_t stride,
                            size_t dilation) {
  for (size_t x = 0; x < width; x++) {
    for (size_t c = 0; c < channels; c++) {
      float sum = 0.0f;
      const float *restrict src = in + x * stride * channels + c;
      for (int t = 0; t < ntaps; t++) sum += taps[t] * src[(size_t)t * dilation * channels];
      out[x * channels + c] = sum;
    }
  }
}

ATR_MULTIVERSION
void atr_filter_row_accumulate(float *restrict out, const float *restrict in, size_t count,
                               const float *taps, int ntaps, size_t step) {
  for (size_t start = 0; start < count; start += BLOCK) {
    const size_t n = count - start < BLOCK ? count - start : BLOCK;
    float *restrict o = out + start;
    for (int t = 0; t < ntaps; t++) {
      const float k = taps[t];
      if (k == 0.0f) continue;
      const float *restrict src = in + start + (size_t)t * step;
      for (size_t j = 0; j < n; j++) o[j] += k * src[j];
    }
  }
}

ATR_MULTIVERSION
void atr_filter_columns(float *restrict out, const float *const *rows, const float *taps, int ntaps,
                        size_t count, atr_taps_symmetry symmetry) {
  const int half = ntaps / 2;
  for (size_t start = 0; start < count; start += BLOCK) {
    const size_t n = count - start < BLOCK ? count - start : BLOCK;
    float *restrict o = out + start;
    if (symmetry == ATR_TAPS_GENERAL || ntaps < 3) {
      const float k0 = taps[0];
      const float *restrict r0 = rows[0] + start;
      for (size_t j = 0; j < n; j++) o[j] = k0 * r0[j];
      for (int t = 1; t < ntaps; t++) {
        const float k = taps[t];
        const float *restrict r = rows[t] + start;
        for (size_t j = 0; j < n; j++) o[j] += k * r[j];
      }
      continue;
    }
    const float sign = symmetry == ATR_TAPS_SYMMETRIC ? 1.0f : -1.0f;
    if (ntaps % 2 == 1) {
      const float kc = symmetry == ATR_TAPS_SYMMETRIC ? taps[half] : 0.0f;
      const float *restrict mid = rows[half] + start;
      for (size_t j = 0; j < n; j++) o[j] = kc * mid[j];
    } else {
      for (size_t j = 0; j < n; j++) o[j] = 0.0f;
    }
    for (int t = 0; t < half; t++) {
      const float k = taps[t];
      const float *restrict a = rows[t] + start;
      const float *restrict b = rows[ntaps - 1 - t] + start;
      for (size_t j = 0; j < n; j++) o[j] += k * (a[j] + sign * b[j]);
    }
  }
}

ATR_MULTIVERSION
void atr_magnitude(float *restrict out, const float *restrict a, const float *restrict b, size_t count) {
  for (size_t j = 0; j < count; j++) out[j] = sqrtf(a[j] * a[j] + b[j] * b[j]);
}

ATR_MULTIVERSION
void atr_scale(float *restrict out, float scale, size_t count) {
  for (size_t j = 0; j < count; j++) out[j] *= scale;
}

ATR_MULTIVERSION
void atr_scale_add(float *restrict out, float scale, const float *restrict add, float weight, size_t count) {
  for (size_t j = 0; j < count; j++) out[j] = out[j] * scale + add[j] * weight;
}

ATR_MULTIVERSION
void atr_sobel3_magnitude(float *restrict out, const float *restrict above, const float *restrict row,
                          const float *restrict below, size_t count, size_t step) {
  const float *restrict a0 = above - step, *restrict a2 = above + step;
  const float *restrict r0 = row - step, *restrict r2 = row + step;
  const float *restrict b0 = below - step, *restrict b2 = below + step;
  for (size_t j = 0; j < count; j++) {
    // dx: [-1 0 1] across, [1 2 1] down; dy: [1 2 1] across, [-1 0 1] down.
    const float gx = (a2[j] - a0[j]) + 2.0f * (r2[j] - r0[j]) + (b2[j] - b0[j]);
    const float gy = (b0[j] + 2.0f * below[j] + b2[j]) - (a0[j] + 2.0f * above[j] + a2[j]);
    out[j] = sqrtf(gx * gx + gy * gy);
  }
}
