// Box means along one axis, for the guided filter's statistics: running
// sums in double precision, so that adding the entering element and
// subtracting the leaving one does not drift over long rows.

void atr_box_mean_pass(float *restrict out, const float *restrict in, size_t count, size_t length, size_t stride,
                       size_t radius, double *restrict sums) {
  for (size_t v = 0; v < length; v++) sums[v] = 0;
  size_t first = radius < count - 1 ? radius : count - 1;
  for (size_t e = 0; e <= first; e++) {
    const float *p = in + e * stride;
    for (size_t v = 0; v < length; v++) sums[v] += (double)p[v];
  }
  for (size_t e = 0; e < count; e++) {
    size_t low = e >= radius ? e - radius : 0, high = e + radius < count - 1 ? e + radius : count - 1;
    double scale = 1.0 / (double)(high - low + 1);
    float *o = out + e * stride;
    for (size_t v = 0; v < length; v++) o[v] = (float)(sums[v] * scale);
    if (e + radius + 1 < count) {
      const float *p = in + (e + radius + 1) * stride;
      for (size_t v = 0; v < length; v++) sums[v] += (double)p[v];
    }
    if (e >= radius) {
      const float *p = in + (e - radius) * stride;
      for (size_t v = 0; v < length; v++) sums[v] -= (double)p[v];
    }
  }
}

// The joint bilateral upsampling's blend: each block of 16 outputs is
// summed over all the rows in registers, so that every row is read once
// and the output written once, whatever the number of rows.
void atr_weighted_sum(float *restrict out, const float *const *rows, const float *restrict weights, size_t count,
                      size_t n) {
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    float acc[16] = {0};
    for (size_t t = 0; t < count; t++) {
      const float *restrict r = rows[t] + j;
      float w = weights[t];
      for (size_t k = 0; k < 16; k++) acc[k] += w * r[k];
    }
    for (size_t k = 0; k < 16; k++) out[j + k] = acc[k];
  }
  for (; j < n; j++) {
    float acc = 0;
    for (size_t t = 0; t < count; t++) acc += weights[t] * rows[t][j];
    out[j] = acc;
  }
}
