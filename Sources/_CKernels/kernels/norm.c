#include "atrous_kernels.h"

#include <math.h>

// Lanes of partial sums, so the sums vectorize without reassociating a
// float reduction.
enum { NORM_LANES = 16 };

static inline __attribute__((always_inline)) float lane_sum(const float *restrict x, size_t n, float shift, int square) {
  float s[NORM_LANES] = {0};
  const size_t body = n / NORM_LANES * NORM_LANES;
  for (size_t i = 0; i < body; i += NORM_LANES) {
    for (int l = 0; l < NORM_LANES; l++) {
      const float d = x[i + l] - shift;
      s[l] += square ? d * d : d;
    }
  }
  float total = 0;
  for (int l = 0; l < NORM_LANES; l++) total += s[l];
  for (size_t i = body; i < n; i++) {
    const float d = x[i] - shift;
    total += square ? d * d : d;
  }
  return total;
}

// Two passes per row (mean, then the variance of the deviations), which
// stays accurate where the mean is large against the spread.
void atr_layer_norm_rows(float *out, const float *in, size_t rows, size_t n, const float *restrict scale,
                         const float *restrict bias, float epsilon) {
  for (size_t r = 0; r < rows; r++) {
    const float *x = in + r * n;
    float *y = out + r * n;
    const float mean = lane_sum(x, n, 0.0f, 0) / (float)n;
    const float variance = lane_sum(x, n, mean, 1) / (float)n;
    const float inverse = 1.0f / sqrtf(variance + epsilon);
    if (scale && bias) {
      for (size_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inverse * scale[i] + bias[i];
    } else if (scale) {
      for (size_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inverse * scale[i];
    } else {
      for (size_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inverse;
    }
  }
}
