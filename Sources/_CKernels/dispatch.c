// The public name of every kernel: a call through the table of the
// instruction set the calling thread uses (isa.h, isa.c). One indirect
// call per row or block of work.
#include "isa.h"

size_t atr_conv_blocked_packed_size(size_t m, size_t channels, size_t taps) {
  return atr_kernels()->conv_blocked_packed_size(m, channels, taps);
}

void atr_conv_blocked_pack(float *packed, const float *weights, const float *bias, size_t m, size_t channels,
                           size_t taps) {
  atr_kernels()->conv_blocked_pack(packed, weights, bias, m, channels, taps);
}

size_t atr_conv_blocked_scratch(const atr_conv_geometry *g, size_t channels, size_t output_rows, int channels_last) {
  return atr_kernels()->conv_blocked_scratch(g, channels, output_rows, channels_last);
}

void atr_conv_blocked(float *out, size_t channel_stride, size_t pixel_stride, size_t m, const float *packed,
                      const float *src, int channels_last, const atr_conv_geometry *g, size_t channels, size_t y0,
                      size_t rows, void *scratch, const struct atr_pointwise_step *steps, size_t nsteps) {
  atr_kernels()->conv_blocked(out, channel_stride, pixel_stride, m, packed, src, channels_last, g, channels, y0, rows,
                              scratch, steps, nsteps);
}

void atr_im2col(float *col, const float *src, const atr_conv_geometry *g, size_t channel_offset, size_t channels,
                size_t first, size_t count) {
  atr_kernels()->im2col(col, src, g, channel_offset, channels, first, count);
}

size_t atr_conv_planes_scratch(const atr_conv_geometry *g, size_t channels, size_t count) {
  return atr_kernels()->conv_planes_scratch(g, channels, count);
}

void atr_conv_planes(float *out, size_t ldc, size_t m, const float *weights, const float *bias, const float *src,
                     const atr_conv_geometry *g, size_t channels, size_t first, size_t count, void *scratch,
                     const atr_conv_planes_next *next) {
  atr_kernels()->conv_planes(out, ldc, m, weights, bias, src, g, channels, first, count, scratch, next);
}

void atr_im2col_panels(float *packed, const float *src, const atr_conv_geometry *g, size_t channel_offset,
                       size_t channels, size_t first, size_t count) {
  atr_kernels()->im2col_panels(packed, src, g, channel_offset, channels, first, count);
}

void atr_depthwise_row(float *out, const float *const *rows, const float *weights, const float *bias,
                       const atr_conv_geometry *g, size_t channels, size_t first, size_t count,
                       const atr_pointwise_step *steps, size_t nsteps) {
  atr_kernels()->depthwise_row(out, rows, weights, bias, g, channels, first, count, steps, nsteps);
}

void atr_conv_group8_row(float *out, const float *const *rows, const float *weights, const float *bias,
                         const atr_conv_geometry *g, size_t cin, size_t groups) {
  atr_kernels()->conv_group8_row(out, rows, weights, bias, g, cin, groups);
}

size_t atr_depthwise_plane_scratch(const atr_conv_geometry *g) {
  return atr_kernels()->depthwise_plane_scratch(g);
}

void atr_depthwise_plane(float *out, const float *src, const float *weights, float bias, const atr_conv_geometry *g,
                         void *scratch) {
  atr_kernels()->depthwise_plane(out, src, weights, bias, g, scratch);
}

void atr_add_rows(float *out, const float *const *rows, size_t nrows, size_t count) {
  atr_kernels()->add_rows(out, rows, nrows, count);
}

void atr_transposed_gather_row(float *out, size_t out_pixel_stride, const float *bias, size_t cout_g,
                               const float *const *rows, const ptrdiff_t *kys, size_t nrows,
                               const atr_conv_geometry *g) {
  atr_kernels()->transposed_gather_row(out, out_pixel_stride, bias, cout_g, rows, kys, nrows, g);
}

void atr_pointwise(float *x, size_t rows, size_t width, size_t stride, const atr_pointwise_step *steps, size_t nsteps) {
  atr_kernels()->pointwise(x, rows, width, stride, steps, nsteps);
}

void atr_softmax_rows(float *x, size_t rows, size_t length, int log) {
  atr_kernels()->softmax_rows(x, rows, length, log);
}

void atr_pool_row(float *out, const float *const *rows, const atr_conv_geometry *g, size_t channels,
                  atr_pool_mode mode, size_t rows_padded, size_t pad_right) {
  atr_kernels()->pool_row(out, rows, g, channels, mode, rows_padded, pad_right);
}

void atr_gather_planes_strided(float *out, const float *in, size_t channels, size_t h, size_t w, size_t step,
                               const ptrdiff_t *offsets, size_t blocks, size_t ow, size_t y0, size_t y1) {
  atr_kernels()->gather_planes_strided(out, in, channels, h, w, step, offsets, blocks, ow, y0, y1);
}

void atr_gemv_rows(float *y, const float *a, const float *w, size_t n, size_t k, const float *bias) {
  atr_kernels()->gemv_rows(y, a, w, n, k, bias);
}

void atr_gemv_pack(float *out, const float *w, size_t ldw, int columns, size_t n, size_t k) {
  atr_kernels()->gemv_pack(out, w, ldw, columns, n, k);
}

size_t atr_gemv_columns(void) { return atr_kernels()->gemv_columns(); }

size_t atr_gemv_packed_size(size_t n, size_t k) {
  return atr_kernels()->gemv_packed_size(n, k);
}

void atr_filter_row(float *out, const float *in, size_t count, const float *taps, int ntaps, size_t step,
                    atr_taps_symmetry symmetry) {
  atr_kernels()->filter_row(out, in, count, taps, ntaps, step, symmetry);
}

void atr_filter_row_strided(float *out, const float *in, size_t width, size_t channels, const float *taps, int ntaps,
                            size_t stride, size_t dilation) {
  atr_kernels()->filter_row_strided(out, in, width, channels, taps, ntaps, stride, dilation);
}

void atr_filter_row_accumulate(float *out, const float *in, size_t count, const float *taps, int ntaps, size_t step) {
  atr_kernels()->filter_row_accumulate(out, in, count, taps, ntaps, step);
}

void atr_filter_columns_rows(float *const *out, int nout, const float *const *rows, const float *taps, int ntaps,
                             size_t count, int stream) {
  atr_kernels()->filter_columns_rows(out, nout, rows, taps, ntaps, count, stream);
}

void atr_magnitude(float *out, const float *a, const float *b, size_t count) {
  atr_kernels()->magnitude(out, a, b, count);
}

void atr_lerp(float *out, const float *a, const float *b, float w, size_t count) {
  atr_kernels()->lerp(out, a, b, w, count);
}

void atr_lerp_pixels(float *out, size_t pixel_stride, const float *row, ptrdiff_t shift, const ptrdiff_t *low,
                     const ptrdiff_t *high, const float *weight, size_t width, size_t channels) {
  atr_kernels()->lerp_pixels(out, pixel_stride, row, shift, low, high, weight, width, channels);
}

void atr_bilinear_plane_row(float *out, const float *top, const float *bottom, const ptrdiff_t *low,
                            const ptrdiff_t *high, const float *fx, float fy, size_t count) {
  atr_kernels()->bilinear_plane_row(out, top, bottom, low, high, fx, fy, count);
}

void atr_multiply_add(float *out, const float *a, const float *b, size_t count) {
  atr_kernels()->multiply_add(out, a, b, count);
}

void atr_scale(float *out, float scale, size_t count) {
  atr_kernels()->scale(out, scale, count);
}

void atr_scale_add(float *out, float scale, const float *add, float weight, size_t count) {
  atr_kernels()->scale_add(out, scale, add, weight, count);
}

size_t atr_float16_from_float(uint16_t *out, const float *in, size_t count) {
  return atr_kernels()->float16_from_float(out, in, count);
}

void atr_float16_round(float *x, size_t count) { atr_kernels()->float16_round(x, count); }

void atr_sobel3_magnitude(float *const *out, int nout, const float *const *rows, size_t count, size_t step,
                          const float *ahead, int ahead_rows, int stream) {
  atr_kernels()->sobel3_magnitude(out, nout, rows, count, step, ahead, ahead_rows, stream);
}

void atr_binary(atr_binary_op op, float *out, const float *a, size_t a_count, const float *b, size_t b_count,
                size_t count, size_t period) {
  atr_kernels()->binary(op, out, a, a_count, b, b_count, count, period);
}

void atr_transpose_columns(float *out, const float *in, size_t rows, size_t columns, size_t first, size_t last,
                           int stream) {
  atr_kernels()->transpose_columns(out, in, rows, columns, first, last, stream);
}

void atr_transpose_strided(float *out, size_t ldo, const float *in, size_t ldi, size_t rows, size_t columns) {
  atr_kernels()->transpose_strided(out, ldo, in, ldi, rows, columns);
}

void atr_transpose(float *out, const float *in, size_t rows, size_t columns) {
  atr_kernels()->transpose(out, in, rows, columns);
}

void atr_sgemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb, float *c,
               size_t ldc, int accumulate) {
  atr_kernels()->sgemm(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
}

size_t atr_packed_b_size(size_t k, size_t n) {
  return atr_kernels()->packed_b_size(k, n);
}

size_t atr_sgemm_tile_rows(void) { return atr_kernels()->sgemm_tile_rows(); }

void atr_pack_b(float *packed, const float *b, size_t k, size_t n, size_t ldb) {
  atr_kernels()->pack_b(packed, b, k, n, ldb);
}

void atr_pack_b_rows(float *packed, const float *rows, size_t k, size_t n, size_t ld, size_t taps, size_t first,
                     size_t last) {
  atr_kernels()->pack_b_rows(packed, rows, k, n, ld, taps, first, last);
}

void atr_sgemm_packed(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed, float *c,
                      size_t ldc, atr_gemm_start start, const float *bias) {
  atr_kernels()->sgemm_packed(m, n, k, a, lda, packed, c, ldc, start, bias);
}

void atr_sgemm_packed_fresh(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed, float *c,
                            size_t ldc, atr_gemm_start start, const float *bias) {
  atr_kernels()->sgemm_packed_fresh(m, n, k, a, lda, packed, c, ldc, start, bias);
}

void atr_sgemm_packed_sum(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed, float *c,
                          size_t ldc, const float *bias, const float *r, size_t ldr, int fresh) {
  atr_kernels()->sgemm_packed_sum(m, n, k, a, lda, packed, c, ldc, bias, r, ldr, fresh);
}

void atr_sgemm_rows(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *const *const *tables,
                    const ptrdiff_t *offsets, float *c, size_t ldc, atr_gemm_start start, const float *bias) {
  atr_kernels()->sgemm_rows(m, n, k, a, lda, tables, offsets, c, ldc, start, bias);
}

void atr_channel_affine(float *out, const float *in, size_t pixels, size_t channels, const float *scale,
                        const float *shift) {
  atr_kernels()->channel_affine(out, in, pixels, channels, scale, shift);
}

void atr_max_into(float *out, const float *x, size_t count) {
  atr_kernels()->max_into(out, x, count);
}

void atr_add_into(float *out, const float *x, size_t count) {
  atr_kernels()->add_into(out, x, count);
}

void atr_gather_channels(float *out, const float *in, size_t pixels, size_t channels, const int32_t *source) {
  atr_kernels()->gather_channels(out, in, pixels, channels, source);
}

void atr_interleave_channels(float *out, const float *a, size_t lda, const float *b, size_t ldb, size_t pixels,
                             size_t width) {
  atr_kernels()->interleave_channels(out, a, lda, b, ldb, pixels, width);
}

void atr_concat_rows(float *out, size_t rows, const float *const *parts, const size_t *widths, size_t nparts,
                     const float *scale, const float *shift) {
  atr_kernels()->concat_rows(out, rows, parts, widths, nparts, scale, shift);
}

float atr_reduce_extreme(const float *x, size_t count, int largest) {
  return atr_kernels()->reduce_extreme(x, count, largest);
}

double atr_reduce_sum(const float *x, size_t count, int square, int absolute) {
  return atr_kernels()->reduce_sum(x, count, square, absolute);
}

void atr_reduce_extreme_into(float *acc, const float *x, size_t count, int largest) {
  atr_kernels()->reduce_extreme_into(acc, x, count, largest);
}

void atr_reduce_sum_into(double *acc, const float *x, size_t count, int square, int absolute) {
  atr_kernels()->reduce_sum_into(acc, x, count, square, absolute);
}

void atr_pixels_into(float *out, const float *in, size_t pixels, size_t channels, int largest) {
  atr_kernels()->pixels_into(out, in, pixels, channels, largest);
}

void atr_layer_norm_rows(float *out, const float *in, size_t rows, size_t n, const float *scale, const float *bias,
                         float epsilon) {
  atr_kernels()->layer_norm_rows(out, in, rows, n, scale, bias, epsilon);
}

void atr_box_mean_pass(float *out, const float *in, size_t count, size_t length, size_t stride, size_t radius,
                       double *sums) {
  atr_kernels()->box_mean_pass(out, in, count, length, stride, radius, sums);
}

void atr_weighted_sum(float *out, const float *const *rows, const float *weights, size_t count, size_t n) {
  atr_kernels()->weighted_sum(out, rows, weights, count, n);
}

size_t atr_winograd_lanes(void) { return atr_kernels()->winograd_lanes(); }

size_t atr_winograd_tiles(const atr_conv_geometry *g, size_t images, size_t m) {
  return atr_kernels()->winograd_tiles(g, images, m);
}

void atr_winograd_weights(float *u, const float *w, size_t cout, size_t cin, size_t m, size_t stride,
                          size_t first_panel, size_t panels, size_t first_channel, size_t channels) {
  atr_kernels()->winograd_weights(u, w, cout, cin, m, stride, first_panel, panels, first_channel, channels);
}

void atr_winograd_input(float *v, const float *src, const atr_conv_geometry *g, size_t cin, size_t first,
                        size_t count, size_t m) {
  atr_kernels()->winograd_input(v, src, g, cin, first, count, m);
}

void atr_winograd_output(float *out, const float *products, const float *bias, const float *residual,
                         const atr_conv_geometry *g, size_t cout, size_t first, size_t count,
                         const atr_pointwise_step *steps, size_t nsteps, size_t m) {
  atr_kernels()->winograd_output(out, products, bias, residual, g, cout, first, count, steps, nsteps, m);
}
