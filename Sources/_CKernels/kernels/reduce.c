#include "atrous_kernels.h"

#include <math.h>

// Lanes of partial results: four vectors of eight, so each waits on its
// own chain of max or add while the others' run (one chain of eight took
// three times ONNX Runtime's time over a 4M-element map).
enum { EXTREME_LANES = 32, SUM_LANES = 16 };

float atr_reduce_extreme(const float *restrict x, size_t count, int largest) {
  if (count == 0) return largest ? -INFINITY : INFINITY;
  float m[EXTREME_LANES];
  int nan[EXTREME_LANES] = {0};
  for (int l = 0; l < EXTREME_LANES; l++) m[l] = x[0];
  const size_t body = count / EXTREME_LANES * EXTREME_LANES;
  // One loop per direction, each a comparison in the operand order of the
  // vector max or min instruction.
  if (largest) {
    for (size_t i = 0; i < body; i += EXTREME_LANES) {
      for (int l = 0; l < EXTREME_LANES; l++) {
        const float v = x[i + l];
        nan[l] |= v != v;
        m[l] = v > m[l] ? v : m[l];
      }
    }
  } else {
    for (size_t i = 0; i < body; i += EXTREME_LANES) {
      for (int l = 0; l < EXTREME_LANES; l++) {
        const float v = x[i + l];
        nan[l] |= v != v;
        m[l] = v < m[l] ? v : m[l];
      }
    }
  }
  float result = m[0];
  int any = 0;
  for (int l = 0; l < EXTREME_LANES; l++) {
    any |= nan[l];
    result = largest ? (m[l] > result ? m[l] : result) : (m[l] < result ? m[l] : result);
  }
  for (size_t i = body; i < count; i++) {
    const float v = x[i];
    any |= v != v;
    result = largest ? (v > result ? v : result) : (v < result ? v : result);
  }
  return any ? NAN : result;
}

double atr_reduce_sum(const float *restrict x, size_t count, int square, int absolute) {
  double s[SUM_LANES] = {0};
  const size_t body = count / SUM_LANES * SUM_LANES;
  // One loop per kind, so none tests the kind per element.
#define ATR_SUM_LOOP(TERM)                                     \
  for (size_t i = 0; i < body; i += SUM_LANES) {               \
    for (int l = 0; l < SUM_LANES; l++) {                      \
      const double v = x[i + l];                               \
      s[l] += TERM;                                            \
    }                                                          \
  }
  if (square) {
    ATR_SUM_LOOP(v * v)
  } else if (absolute) {
    ATR_SUM_LOOP(fabs(v))
  } else {
    ATR_SUM_LOOP(v)
  }
#undef ATR_SUM_LOOP
  double total = 0;
  for (int l = 0; l < SUM_LANES; l++) total += s[l];
  for (size_t i = body; i < count; i++) {
    const double v = x[i];
    total += square ? v * v : absolute ? fabs(v) : v;
  }
  return total;
}

void atr_reduce_extreme_into(float *restrict acc, const float *restrict x, size_t count, int largest) {
  // A NaN in x is taken; one already in acc stays, as neither test passes it.
  if (largest) {
    for (size_t i = 0; i < count; i++) {
      const float v = x[i], m = v > acc[i] ? v : acc[i];
      acc[i] = v != v ? v : m;
    }
  } else {
    for (size_t i = 0; i < count; i++) {
      const float v = x[i], m = v < acc[i] ? v : acc[i];
      acc[i] = v != v ? v : m;
    }
  }
}

void atr_reduce_sum_into(double *restrict acc, const float *restrict x, size_t count, int square, int absolute) {
  if (square) {
    for (size_t i = 0; i < count; i++) acc[i] += (double)x[i] * (double)x[i];
  } else if (absolute) {
    for (size_t i = 0; i < count; i++) acc[i] += fabs((double)x[i]);
  } else {
    for (size_t i = 0; i < count; i++) acc[i] += (double)x[i];
  }
}

// Channels of a pixel run that atr_pixels_into keeps in registers at a
// time: the widest of these that fits what is left of the pixel.
enum { PIXEL_RUN_WIDE = 32, PIXEL_RUN_MID = 16, PIXEL_RUN_NARROW = 8 };

void atr_pixels_into(float *restrict out, const float *restrict in, size_t pixels, size_t channels, int largest) {
  size_t c0 = 0;
  // One pass over the pixels per run of channels, the run's partial
  // results in registers (a fixed-length array the compiler keeps there):
  // a call per pixel, as the global pools made, took 30 us for a 56x56
  // map of 16 channels.
#define ATR_PIXEL_RUN(LANES)                                                               \
  for (; c0 + (LANES) <= channels; c0 += (LANES)) {                                        \
    float acc[LANES];                                                                      \
    for (int l = 0; l < (LANES); l++) acc[l] = out[c0 + l];                                \
    const float *x = in + c0;                                                              \
    if (largest) {                                                                         \
      for (size_t p = 0; p < pixels; p++, x += channels) {                                 \
        for (int l = 0; l < (LANES); l++) acc[l] = x[l] > acc[l] ? x[l] : acc[l];          \
      }                                                                                    \
    } else {                                                                               \
      for (size_t p = 0; p < pixels; p++, x += channels) {                                 \
        for (int l = 0; l < (LANES); l++) acc[l] += x[l];                                  \
      }                                                                                    \
    }                                                                                      \
    for (int l = 0; l < (LANES); l++) out[c0 + l] = acc[l];                                \
  }
  ATR_PIXEL_RUN(PIXEL_RUN_WIDE)
  ATR_PIXEL_RUN(PIXEL_RUN_MID)
  ATR_PIXEL_RUN(PIXEL_RUN_NARROW)
#undef ATR_PIXEL_RUN
  for (; c0 < channels; c0++) {
    float acc = out[c0];
    for (size_t p = 0; p < pixels; p++) {
      const float v = in[p * channels + c0];
      acc = largest ? (v > acc ? v : acc) : acc + v;
    }
    out[c0] = acc;
  }
}
