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
