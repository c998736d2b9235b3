#ifndef ATROUS_KERNELS_H
#define ATROUS_KERNELS_H

// Vectorized inner loops over contiguous float32 rows. Each function is
// compiled for AVX-512, AVX2+FMA and the baseline instruction set on x86-64
// and picked at load time, so the binary runs on any x86-64 (and arm64,
// where only the baseline NEON version exists) while using the widest
// vectors the machine has.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Symmetry of a tap vector, which lets the row and column filters fold
/// mirrored taps and halve their multiplies.
typedef enum {
  ATR_TAPS_GENERAL = 0,
  /// taps[i] == taps[n-1-i]
  ATR_TAPS_SYMMETRIC = 1,
  /// taps[i] == -taps[n-1-i] (the middle tap is zero)
  ATR_TAPS_ANTISYMMETRIC = 2,
} atr_taps_symmetry;

/// out[j] = sum_t taps[t] * in[j + t*step], for j in [0, count).
/// `in` must hold count + (ntaps-1)*step elements. `out` and `in` must not overlap.
void atr_filter_row(float *out, const float *in, size_t count, const float *taps, int ntaps,
                    size_t step, atr_taps_symmetry symmetry);

/// out[x*channels + c] = sum_t taps[t] * in[(x*stride + t*dilation)*channels + c]
/// for x in [0, width), c in [0, channels): the strided form of atr_filter_row.
void atr_filter_row_strided(float *out, const float *in, size_t width, size_t channels,
                            const float *taps, int ntaps, size_t stride, size_t dilation);

/// out[j] += sum_t taps[t] * in[j + t*step], for j in [0, count).
void atr_filter_row_accumulate(float *out, const float *in, size_t count, const float *taps,
                               int ntaps, size_t step);

/// out[j] = sum_t taps[t] * rows[t][j], for j in [0, count).
void atr_filter_columns(float *out, const float *const *rows, const float *taps, int ntaps,
                        size_t count, atr_taps_symmetry symmetry);

/// out[j] = sqrt(a[j]^2 + b[j]^2).
void atr_magnitude(float *out, const float *a, const float *b, size_t count);

/// out[j] += a[j] * b[j].
void atr_multiply_add(float *out, const float *a, const float *b, size_t count);

/// out[j] *= scale.
void atr_scale(float *out, float scale, size_t count);

/// out[j] = out[j] * scale + add[j] * weight (`add` must not overlap `out`).
void atr_scale_add(float *out, float scale, const float *add, float weight, size_t count);

/// The magnitude of the 3x3 Sobel gradient in one pass over three rows.
/// Each row pointer addresses element 0 of a row padded by `step` elements
/// on both sides (row[-step] and row[count-1+step] are valid); step is the
/// channel count, so channels are filtered independently.
void atr_sobel3_magnitude(float *out, const float *above, const float *row, const float *below,
                          size_t count, size_t step);

/// Element-wise binary operators of `atr_binary`.
typedef enum {
  ATR_ADD = 0, ATR_SUB = 1, ATR_MUL = 2, ATR_DIV = 3, ATR_MAX = 4, ATR_MIN = 5,
  /// a < 0 ? a * b : a
  ATR_PRELU = 6,
} atr_binary_op;

/// out[i] = a[i * a_step + (i % period) * a_inner] op b[...], written as the
/// three shapes networks use: `a_count` and `b_count` are each `count`
/// (whole array), 1 (scalar) or `period` (a vector repeated along the
/// leading axes, such as a per-channel vector in channels-last storage).
/// `out` may be `a` or `b` (element i is read before it is written).
void atr_binary(atr_binary_op op, float *out, const float *a, size_t a_count, const float *b, size_t b_count,
                size_t count, size_t period);

/// out[j * rows + i] = in[i * columns + j]: a 2-D transpose in cache blocks
/// (NCHW <-> NHWC is one per image).
void atr_transpose(float *out, const float *in, size_t rows, size_t columns);

/// atr_transpose for input columns [first, last) only, so threads can share one transpose.
void atr_transpose_columns(float *out, const float *in, size_t rows, size_t columns, size_t first, size_t last);

/// C[M,N] = A[M,K] B[K,N] (+ C when `accumulate`), row-major with leading
/// dimensions lda, ldb, ldc (in elements).
void atr_sgemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
               float *c, size_t ldc, int accumulate);

/// Floats `atr_pack_b` writes for a (k, n) matrix: panels of 32 columns.
size_t atr_packed_b_size(size_t k, size_t n);

/// Packs B (k, n), leading dimension ldb, into column panels of 32
/// (zero-padded), the layout `atr_sgemm_packed` streams.
void atr_pack_b(float *packed, const float *b, size_t k, size_t n, size_t ldb);

/// C[M,N] = A[M,K] B[K,N] (+ C when `accumulate`) with B packed by
/// atr_pack_b: 8x32 register tiles, B panels reused from cache across rows.
void atr_sgemm_packed(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed, float *c,
                      size_t ldc, int accumulate);

#ifdef __cplusplus
}
#endif

#endif
