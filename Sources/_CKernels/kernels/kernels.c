#include "atrous_kernels.h"
#include "transpose8.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

// Rows are processed in blocks small enough that the block of `out` stays
// in L1 while every tap passes over it.
enum { BLOCK = 512 };

typedef float atr_taps_v16 __attribute__((vector_size(64), aligned(4)));

// The row filter's vectors: one register of the set (16 floats in a zmm, 8
// in a ymm; two xmm or NEON registers elsewhere), so that vectors it loads
// at equal offsets are equal values the compiler can load once.
typedef float atr_row_v __attribute__((vector_size(ATR_ISA_WIDE ? 64 : 32), aligned(4)));
typedef float atr_row_v_aligned __attribute__((vector_size(ATR_ISA_WIDE ? 64 : 32)));
enum { ROW_FLOATS = ATR_ISA_WIDE ? 16 : 8 };

typedef float atr_v16_aligned __attribute__((vector_size(64)));

// Stores 16 floats at `out`, past the caches when `stream` (then `out` is
// 64-byte aligned). A macro: a function taking the vector by value changes
// the calling convention where the set's registers are narrower.
#define STORE16(out, v, stream)                                                          \
  do {                                                                                   \
    const atr_taps_v16 store16_v = (v);                                                  \
    if (stream) __builtin_nontemporal_store((atr_v16_aligned)store16_v, (atr_v16_aligned *)(out)); \
    else *(atr_taps_v16 *)(out) = store16_v;                                             \
  } while (0)

// Orders streaming stores before what follows (another thread reading
// the output once a band is done); x86's are weakly ordered.
static inline void stream_done(int stream) {
#if defined(__x86_64__)
  if (stream) __builtin_ia32_sfence();
#else
  (void)stream;
#endif
}

static inline int aligned64(const float *p) { return ((uintptr_t)p & 63) == 0; }

// Floats of a row the row pass asks for ahead of the vector it sums: 2
// KiB, one cache line per vector of 16 outputs. A row read in place from
// an image out of cache outran the hardware's prefetch: the Gaussian of
// sigma 2 on 4096x4096 took 17.7 ms at 1 thread, 15.6 with (11.6 and
// 10.7 at 2; AVX-512, AMD EPYC family 25 model 17, medians of 9
// alternating runs). Only within the row: asked for past its end (into
// the next image row, 15.1 and 10.0), a row at the end of a buffer would
// send the requests to pages not mapped or never touched, which walk the
// page tables every time (see tile.h).
enum { ROW_AHEAD = 512 };

// out[j] = sum_t taps[t] * in[j + t * step], for j in [0, count); mirrored
// taps folded (one multiply for each pair) when `symmetry` says they mirror.
// VECTORS vectors of outputs are summed at once over all taps, in
// registers, and stored once. Written for a constant `ntaps` and a `step`
// of 1, its loops over taps unroll and each vector the span's outputs
// share is loaded once: 25 loads for two ymm of a 17-tap kernel instead
// of 34 (the row pass of a Gaussian is bound by its loads).
static inline __attribute__((always_inline)) void tap_sum(const int VECTORS, float *restrict out, const float *in,
                                                          size_t step, const float *taps, int ntaps, size_t count,
                                                          atr_taps_symmetry symmetry) {
  const int folded = symmetry != ATR_TAPS_GENERAL && ntaps >= 3;
  const int half = ntaps / 2;
  const int centre = folded && ntaps % 2 == 1 && symmetry == ATR_TAPS_SYMMETRIC;
  const int pairs = folded ? half : 0;
  const size_t span = (size_t)VECTORS * ROW_FLOATS;
#define ROW_V(p, l) (*(const atr_row_v *)((p) + ROW_FLOATS * (l)))
  size_t j = 0;
  for (; j < count; j += span) {
    // The last span ends at `count` and overlaps the one before it: those
    // outputs are written twice, with the same values, instead of one at
    // a time.
    if (j + span > count) {
      if (count < span) break;
      j = count - span;
    }
    for (size_t l = 0; l < span && j + l + ROW_AHEAD < count; l += 16) __builtin_prefetch(in + j + l + ROW_AHEAD);
    atr_row_v acc[4];  // VECTORS of them: a constant size, not a variable-length array
    for (int l = 0; l < VECTORS; l++) acc[l] = (atr_row_v){0};
    if (!folded) {
      for (int t = 0; t < ntaps; t++) {
        const float k = taps[t];
        const float *r = in + (size_t)t * step + j;
        for (int l = 0; l < VECTORS; l++) acc[l] += k * ROW_V(r, l);
      }
    } else {
      if (centre) {
        const float k = taps[half];
        const float *r = in + (size_t)half * step + j;
        for (int l = 0; l < VECTORS; l++) acc[l] = k * ROW_V(r, l);
      }
      for (int t = 0; t < pairs; t++) {
        const float k = taps[t];
        const float *a = in + (size_t)t * step + j, *b = in + (size_t)(ntaps - 1 - t) * step + j;
        if (symmetry == ATR_TAPS_SYMMETRIC) {
          for (int l = 0; l < VECTORS; l++) acc[l] += k * (ROW_V(a, l) + ROW_V(b, l));
        } else {
          for (int l = 0; l < VECTORS; l++) acc[l] += k * (ROW_V(a, l) - ROW_V(b, l));
        }
      }
    }
    for (int l = 0; l < VECTORS; l++) *(atr_row_v *)(out + j + ROW_FLOATS * l) = acc[l];
  }
#undef ROW_V
  // Rows shorter than a span, one output at a time, in the same order of
  // additions.
  for (; j < count; j++) {
    float sum = 0.0f;
    if (!folded) {
      for (int t = 0; t < ntaps; t++) sum += taps[t] * in[(size_t)t * step + j];
    } else {
      if (centre) sum = taps[half] * in[(size_t)half * step + j];
      const float sign = symmetry == ATR_TAPS_SYMMETRIC ? 1.0f : -1.0f;
      for (int t = 0; t < pairs; t++)
        sum += taps[t] * (in[(size_t)t * step + j] + sign * in[(size_t)(ntaps - 1 - t) * step + j]);
    }
    out[j] = sum;
  }
}

#if ATR_ISA_WIDE
// in[s .. s + 16) out of the 32 floats of a (in[0 .. 16)) and b (the next
// 16), s in [0, 16]: one valignd.
#define WINDOW16(s) \
  case s: return __builtin_shufflevector(a, b, s, s + 1, s + 2, s + 3, s + 4, s + 5, s + 6, s + 7, s + 8, s + 9, \
                                         s + 10, s + 11, s + 12, s + 13, s + 14, s + 15);
static inline __attribute__((always_inline)) atr_row_v window16(atr_row_v a, atr_row_v b, int s) {
  switch (s) {
    WINDOW16(1) WINDOW16(2) WINDOW16(3) WINDOW16(4) WINDOW16(5) WINDOW16(6) WINDOW16(7) WINDOW16(8)
    WINDOW16(9) WINDOW16(10) WINDOW16(11) WINDOW16(12) WINDOW16(13) WINDOW16(14) WINDOW16(15)
    case 16: return b;
    default: return a;
  }
}
#undef WINDOW16
#endif

// tap_sum's symmetric taps at step 1 for kernels of at most 17 taps, one
// vector of outputs at a time: its 16 + NTAPS - 1 inputs in two whole
// vectors, the windows of taps 1 to NTAPS / 2 loaded unaligned and those
// of the later taps shifted out of the two vectors in registers. One
// unaligned load per tap splits across cache lines 15 times in 16, and
// one shift per tap queues on the shuffle unit; half and half keeps both
// busy. A Gaussian of sigma 2 (17 taps) on a 4096x4096 image at 1 thread:
// 19.1 ms with loads alone, 17.2 with shifts alone (sigma 1 14.0 and
// 12.7); one row in L1, per 16 outputs, shifts alone against half and
// half: 17 taps 6.5 -> 4.5 ns, 13 taps 5.1 -> 3.7, 9 taps 3.4 -> 2.7, 5
// taps 1.9 -> 1.6 (AMD EPYC family 25). Wider kernels keep the loads:
// with 25 taps, three vectors' windows took twice as long. The same sums
// in the same order as tap_sum's. Stops where the next vector's inputs
// would run past the row's; returns the outputs made (none for wider
// kernels, or where vectors are narrower than AVX-512's).
static inline __attribute__((always_inline)) size_t tap_sum_shifted(const int NTAPS, float *restrict out,
                                                                    const float *in, size_t count,
                                                                    const float *taps) {
  size_t j = 0;
#if ATR_ISA_WIDE
  const int half = NTAPS / 2;
  for (; NTAPS <= 17 && j + 16 <= count && j + 32 <= count + NTAPS - 1; j += 16) {
    if (j + ROW_AHEAD < count) __builtin_prefetch(in + j + ROW_AHEAD);
    const atr_row_v a = *(const atr_row_v *)(in + j), b = *(const atr_row_v *)(in + j + 16);
    // The window at tap s: loaded for s in [1, half], else shifted.
#define ROW_WINDOW(s) ((s) >= 1 && (s) <= half ? *(const atr_row_v *)(in + j + (s)) : window16(a, b, (s)))
    atr_row_v acc = taps[half] * ROW_WINDOW(half);
#pragma clang loop unroll(full)
    for (int t = 0; t < half; t++) acc += taps[t] * (ROW_WINDOW(t) + ROW_WINDOW(NTAPS - 1 - t));
#undef ROW_WINDOW
    *(atr_row_v *)(out + j) = acc;
  }
#else
  (void)NTAPS, (void)out, (void)in, (void)count, (void)taps;
#endif
  return j;
}

void atr_filter_row(float *restrict out, const float *restrict in, size_t count, const float *taps,
                    int ntaps, size_t step, atr_taps_symmetry symmetry) {
  // Symmetric kernels of the usual odd sizes (Gaussians from sigma 0.3 to
  // 3) along single-channel rows get loops written for their size; two
  // vectors at once, where four cost more in registers than they save.
#define FIXED_TAPS(n)                                                                     \
  case n: {                                                                               \
    const size_t done = tap_sum_shifted(n, out, in, count, taps);                         \
    return tap_sum(2, out + done, in + done, 1, taps, n, count - done, ATR_TAPS_SYMMETRIC); \
  }
  if (step == 1 && symmetry == ATR_TAPS_SYMMETRIC) {
    switch (ntaps) {
      FIXED_TAPS(3) FIXED_TAPS(5) FIXED_TAPS(7) FIXED_TAPS(9) FIXED_TAPS(11) FIXED_TAPS(13)
      FIXED_TAPS(15) FIXED_TAPS(17) FIXED_TAPS(19) FIXED_TAPS(21) FIXED_TAPS(23) FIXED_TAPS(25)
    }
  }
#undef FIXED_TAPS
  tap_sum(4, out, in, step, taps, ntaps, count, symmetry);
}

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

// Output rows summed together by the column filter, and the floats of one
// vector of each: every input row's vector is loaded once and multiplied
// into each output of the group that it reaches, so loads are
// (ntaps + ROWS - 1) / ROWS per output vector instead of ntaps, and the
// sums stay in registers (8 of 32 zmm, 8 of 16 ymm, 16 of 32 NEON
// registers; SSE2's 16 xmm spill a few, a path only old CPUs take).
enum { COLUMN_ROWS = ATR_ISA_WIDE ? 8 : 4, COLUMN_FLOATS = 16 };

// Output rows out[0..<ROWS], columns [j0, j1) (whole vectors), from input
// rows rows[0..<ROWS + ntaps - 1]. Output r sums taps[t] * rows[r + t] in
// ascending t from zero whatever ROWS is, so a row's values do not depend
// on the group it falls in; taps that fall outside a row's window are
// skipped, not multiplied by zero (which would carry an infinite input
// into outputs that never read it).
static inline __attribute__((always_inline)) void column_group(const int ROWS, float *const *out, int stream,
                                                               const float *const *rows, const float *taps,
                                                               int ntaps, size_t j0, size_t j1) {
  int streams[COLUMN_ROWS];
  for (int r = 0; r < ROWS; r++) streams[r] = stream && aligned64(out[r]);
  for (size_t j = j0; j < j1; j += COLUMN_FLOATS) {
    atr_taps_v16 acc[COLUMN_ROWS];
    for (int r = 0; r < ROWS; r++) acc[r] = (atr_taps_v16){0};
    // Input row i reaches outputs r with 0 <= i - r < ntaps.
    for (int i = 0; i < ROWS - 1; i++) {
      const atr_taps_v16 v = *(const atr_taps_v16 *)(rows[i] + j);
      for (int r = 0; r < ROWS; r++)
        if (r <= i && i - r < ntaps) acc[r] += taps[i - r] * v;
    }
    for (int i = ROWS - 1; i < ntaps; i++) {
      const atr_taps_v16 v = *(const atr_taps_v16 *)(rows[i] + j);
      for (int r = 0; r < ROWS; r++) acc[r] += taps[i - r] * v;
    }
    for (int i = ntaps > ROWS - 1 ? ntaps : ROWS - 1; i < ntaps + ROWS - 1; i++) {
      const atr_taps_v16 v = *(const atr_taps_v16 *)(rows[i] + j);
      for (int r = 0; r < ROWS; r++)
        if (r <= i && i - r < ntaps) acc[r] += taps[i - r] * v;
    }
    for (int r = 0; r < ROWS; r++) STORE16(out[r] + j, acc[r], streams[r]);
  }
}

// Chunks of CHUNK columns: a chunk's nout + ntaps - 1 input rows (12 KiB
// for 8 outputs of a 17-tap kernel) come from L2 once and stay in L1 for
// every group of output rows.
void atr_filter_columns_rows(float *const *out, int nout, const float *const *rows, const float *taps, int ntaps,
                             size_t count, int stream) {
  enum { CHUNK = 128 };
  const size_t whole = count / COLUMN_FLOATS * COLUMN_FLOATS;
  for (size_t j0 = 0; j0 < whole; j0 += CHUNK) {
    const size_t j1 = whole - j0 < CHUNK ? whole : j0 + CHUNK;
    int r = 0;
    for (; r + COLUMN_ROWS <= nout; r += COLUMN_ROWS) column_group(COLUMN_ROWS, out + r, stream, rows + r, taps, ntaps, j0, j1);
    for (; r < nout; r++) column_group(1, out + r, stream, rows + r, taps, ntaps, j0, j1);
  }
  // The last few columns, one at a time, in the same order of additions.
  for (int r = 0; r < nout; r++) {
    for (size_t j = whole; j < count; j++) {
      float sum = 0.0f;
      for (int t = 0; t < ntaps; t++) sum += taps[t] * rows[r + t][j];
      out[r][j] = sum;
    }
  }
  stream_done(stream);
}

void atr_magnitude(float *restrict out, const float *restrict a, const float *restrict b, size_t count) {
  for (size_t j = 0; j < count; j++) out[j] = sqrtf(a[j] * a[j] + b[j] * b[j]);
}

// One expression for the vectors and the last few elements, so that each
// element is rounded the same way wherever it falls.
#define ATR_LERP(T, j) (*(const T *)(a + (j)) + (*(const T *)(b + (j)) - *(const T *)(a + (j))) * w)
static inline void lerp(float *restrict out, const float *restrict a, const float *restrict b, float w, size_t count) {
  size_t j = 0;
  for (; j + 16 <= count; j += 16) STORE16(out + j, ATR_LERP(atr_taps_v16, j), 0);
  for (; j < count; j++) out[j] = ATR_LERP(float, j);
}
#undef ATR_LERP

void atr_lerp(float *restrict out, const float *restrict a, const float *restrict b, float w, size_t count) {
  lerp(out, a, b, w, count);
}

// A pixel whose second neighbour weighs nothing (every pixel of a map at
// the output's size) is its first neighbour's values, copied.
void atr_lerp_pixels(float *restrict out, size_t pixel_stride, const float *restrict row, ptrdiff_t shift,
                     const ptrdiff_t *low, const ptrdiff_t *high, const float *weight, size_t width, size_t channels) {
  const ptrdiff_t c = (ptrdiff_t)channels;
  for (size_t x = 0; x < width; x++) {
    if (weight[x] == 0.0f)
      memcpy(out + x * pixel_stride, row + (low[x] - shift) * c, channels * sizeof(float));
    else
      lerp(out + x * pixel_stride, row + (low[x] - shift) * c, row + (high[x] - shift) * c, weight[x], channels);
  }
}

void atr_bilinear_plane_row(float *restrict out, const float *restrict top, const float *restrict bottom,
                            const ptrdiff_t *restrict low, const ptrdiff_t *restrict high, const float *restrict fx,
                            float fy, size_t count) {
  // The channels-last Resize's rounding, term by term: no contraction of
  // a product and a sum into one fused multiply-add. Outputs come in runs
  // that share their two input pixels (as many as the scale, upsampling):
  // those four values are loaded once for the run, and the run's weights
  // and sums go a vector at a time instead of gathering per output.
#pragma clang fp contract(off)
  const float gy = 1 - fy;
  size_t x = 0;
  while (x < count) {
    const ptrdiff_t l = low[x], h = high[x];
    size_t end = x + 1;
    while (end < count && low[end] == l && high[end] == h) end++;
    const float a = top[l], b = top[h], c = bottom[l], d = bottom[h];
    for (size_t i = x; i < end; i++) {
      const float f = fx[i], g = 1 - f;
      const float blend = a * (gy * g) + b * (gy * f) + c * (fy * g) + d * (fy * f);
      out[i] = f == 0 && fy == 0 ? a : blend;
    }
    x = end;
  }
}

void atr_multiply_add(float *restrict out, const float *restrict a, const float *restrict b, size_t count) {
  for (size_t j = 0; j < count; j++) out[j] += a[j] * b[j];
}

void atr_scale(float *restrict out, float scale, size_t count) {
  for (size_t j = 0; j < count; j++) out[j] *= scale;
}

void atr_scale_add(float *restrict out, float scale, const float *restrict add, float weight, size_t count) {
  for (size_t j = 0; j < count; j++) out[j] = out[j] * scale + add[j] * weight;
}

// Branch-free, so that it vectorizes on every instruction set: the three
// cases are computed for every value and one is selected.
// Through the compiler's half type: one conversion instruction each way
// where the instruction set has them (F16C with AVX2, NEON), the runtime
// library's rounding elsewhere; a loop in Swift took 14 times as long as
// ONNX Runtime's Cast to float16 and back.
void atr_float16_round(float *x, size_t count) {
  for (size_t j = 0; j < count; j++) x[j] = (float)(_Float16)x[j];
}

size_t atr_float16_from_float(uint16_t *restrict out, const float *restrict in, size_t count) {
  size_t overflows = 0;
  for (size_t j = 0; j < count; j++) {
    uint32_t x;
    memcpy(&x, &in[j], 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7FFFFFFFu;
    // At or beyond 65536 (or not finite): infinity, or the quiet NaN.
    const uint32_t big = x > 0x7F800000u ? 0x7E00u : 0x7C00u;
    // Below 2^-14, a subnormal half: adding 0.5 lines the mantissa up with
    // the half's, and the addition rounds to nearest even.
    float magnitude;
    memcpy(&magnitude, &x, 4);
    const float shifted = magnitude + 0.5f;
    uint32_t small;
    memcpy(&small, &shifted, 4);
    small -= 0x3F000000u;
    // Normal: rebias the exponent, round the 13 dropped bits to nearest
    // even (a carry into the exponent is right, and reaches infinity).
    const uint32_t normal = (x + ((uint32_t)(15 - 127) << 23) + 0xFFFu + ((x >> 13) & 1u)) >> 13;
    const uint32_t half = x >= 0x47800000u ? big : x < 0x38800000u ? small : normal;
    overflows += (x < 0x7F800000u) & (half == 0x7C00u);
    out[j] = (uint16_t)(half | sign);
  }
  return overflows;
}

// dx: [-1 0 1] across, [1 2 1] down; dy: [1 2 1] across, [-1 0 1] down.
// Each input row's parts along the row are made once for every output
// row of a group that reads it: its difference across the pixel (dx's
// row part) and its 1-2-1 sum (dy's). One formula for a float and for a
// vector (T), so that both give the same bits, whatever the group.
#define L(T, p, j) (*(const T *)((p) + (j)))
#define SOBEL3_PARTS(T, p, j, hx, hs)                                \
  do {                                                              \
    const T l_ = L(T, (p) - step, j), r_ = L(T, (p) + step, j);     \
    (hx) = r_ - l_;                                                 \
    (hs) = (l_ + 2.0f * L(T, p, j)) + r_;                           \
  } while (0)
#define SOBEL3_MAGNITUDE(hx, hs, i, sqrt)                                          \
  ({                                                                              \
    const __typeof__(hx[0]) gx = (hx[i] + 2.0f * hx[(i) + 1]) + hx[(i) + 2];      \
    const __typeof__(hx[0]) gy = hs[(i) + 2] - hs[i];                             \
    sqrt(gx * gx + gy * gy);                                                      \
  })

// Output rows made together: 6 input rows' parts for 4 outputs, 12 of 16
// ymm registers, and 1.5 rows read per output instead of 3 (0.83 of the
// time of one row at a time on an AMD EPYC, with the rows in cache).
enum { SOBEL3_ROWS = 4 };

// Element j of every output row of a group, one float at a time: the
// ends of the rows that whole vectors do not cover.
static inline __attribute__((always_inline)) void sobel3_pixel(const int ROWS, float *const *out,
                                                               const float *const *rows, size_t j, size_t step) {
  float hx[SOBEL3_ROWS + 2], hs[SOBEL3_ROWS + 2];
  for (int i = 0; i < ROWS + 2; i++) SOBEL3_PARTS(float, rows[i], j, hx[i], hs[i]);
  for (int r = 0; r < ROWS; r++) out[r][j] = SOBEL3_MAGNITUDE(hx, hs, r, sqrtf);
}

static inline __attribute__((always_inline)) void sobel3_group(const int ROWS, float *const *out,
                                                               const float *const *rows, size_t count, size_t step,
                                                               const float *ahead, int ahead_rows, int stream,
                                                               size_t head) {
  size_t j = 0;
  for (; j < head; j++) sobel3_pixel(ROWS, out, rows, j, step);
  for (; j + ROW_FLOATS <= count; j += ROW_FLOATS) {
    // The rows the next call reads, a line per row every 16 outputs or
    // fewer; a prefetch past a row's end is harmless (prefetches never
    // fault).
    for (int k = 0; k < ahead_rows; k++) __builtin_prefetch(ahead + (size_t)k * count + j, 0, 2);
    atr_row_v hx[SOBEL3_ROWS + 2], hs[SOBEL3_ROWS + 2];
    for (int i = 0; i < ROWS + 2; i++) SOBEL3_PARTS(atr_row_v, rows[i], j, hx[i], hs[i]);
    for (int r = 0; r < ROWS; r++) {
      const atr_row_v m = SOBEL3_MAGNITUDE(hx, hs, r, __builtin_elementwise_sqrt);
      if (stream) __builtin_nontemporal_store((atr_row_v_aligned)m, (atr_row_v_aligned *)(out[r] + j));
      else *(atr_row_v *)(out[r] + j) = m;
    }
  }
  for (; j < count; j++) sobel3_pixel(ROWS, out, rows, j, step);
}
#undef L
#undef SOBEL3_PARTS
#undef SOBEL3_MAGNITUDE

void atr_sobel3_magnitude(float *const *out, int nout, const float *const *rows, size_t count, size_t step,
                          const float *ahead, int ahead_rows, int stream) {
  if (!ahead) ahead_rows = 0;
  for (int r = 0; r < nout;) {
    const int n = nout - r >= SOBEL3_ROWS ? SOBEL3_ROWS : 1;
    // Streaming stores from the first 64-byte boundary on, when the
    // group's rows all start at the same place in a line.
    int streams = stream;
    for (int k = 1; k < n; k++) streams &= ((uintptr_t)out[r + k] & 63) == ((uintptr_t)out[r] & 63);
    size_t head = streams ? (size_t)((64 - ((uintptr_t)out[r] & 63)) & 63) / sizeof(float) : 0;
    head = head < count ? head : count;
    if (n == SOBEL3_ROWS) {
      sobel3_group(SOBEL3_ROWS, out + r, rows + r, count, step, ahead, ahead_rows, streams, head);
    } else {
      sobel3_group(1, out + r, rows + r, count, step, ahead, ahead_rows, streams, head);
    }
    r += n;
  }
  stream_done(stream);
}

#define ATR_APPLY(x, y) \
  (op == ATR_ADD ? (x) + (y) : op == ATR_SUB ? (x) - (y) : op == ATR_MUL ? (x) * (y) : op == ATR_DIV ? (x) / (y) \
   : op == ATR_MAX ? ((x) > (y) ? (x) : (y)) : op == ATR_MIN ? ((x) < (y) ? (x) : (y)) : ((x) < 0 ? (x) * (y) : (x)))

// One loop per operator and operand shape, so that each loop is a plain
// vectorizable expression (the operator test is hoisted by the compiler).
#define ATR_LOOPS(OP)                                                                               \
  do {                                                                                              \
    const atr_binary_op op = OP;                                                                    \
    if (a_count == count && b_count == count) {                                                     \
      for (size_t i = 0; i < count; i++) out[i] = ATR_APPLY(a[i], b[i]);                            \
    } else if (b_count == 1 && a_count == count) {                                                  \
      const float y = b[0];                                                                         \
      for (size_t i = 0; i < count; i++) out[i] = ATR_APPLY(a[i], y);                               \
    } else if (a_count == 1 && b_count == count) {                                                  \
      const float x = a[0];                                                                         \
      for (size_t i = 0; i < count; i++) out[i] = ATR_APPLY(x, b[i]);                               \
    } else if (b_count == period && a_count == count) {                                             \
      for (size_t o = 0; o < count; o += period)                                                    \
        for (size_t k = 0; k < period; k++) out[o + k] = ATR_APPLY(a[o + k], b[k]);                 \
    } else {                                                                                        \
      for (size_t o = 0; o < count; o += period)                                                    \
        for (size_t k = 0; k < period; k++) out[o + k] = ATR_APPLY(a[k], b[o + k]);                 \
    }                                                                                               \
  } while (0)

void atr_binary(atr_binary_op op, float *out, const float *a, size_t a_count, const float *b, size_t b_count,
                size_t count, size_t period) {
  switch (op) {
    case ATR_ADD: ATR_LOOPS(ATR_ADD); break;
    case ATR_SUB: ATR_LOOPS(ATR_SUB); break;
    case ATR_MUL: ATR_LOOPS(ATR_MUL); break;
    case ATR_DIV: ATR_LOOPS(ATR_DIV); break;
    case ATR_MAX: ATR_LOOPS(ATR_MAX); break;
    case ATR_MIN: ATR_LOOPS(ATR_MIN); break;
    case ATR_PRELU: ATR_LOOPS(ATR_PRELU); break;
  }
}

// Streams only where the output's rows are whole 8-float pieces on 32-byte
// boundaries and the input has fewer rows than columns (channel planes
// into pixels): there the blocks write consecutive pixels' runs of
// channels, which fill write-combining buffers whole (a 64-channel map of
// 224x224 took 0.56 of the time, 128 channels at 112x112 0.53 to 0.78).
// Planes out of pixels put 8 floats in each of 8 planes per block, and
// streamed took 0.86 to 1.2 of the time, so they are not.
static inline __attribute__((always_inline)) void transpose_tiles(float *restrict out, const float *restrict in,
                                                                  size_t rows, size_t columns, size_t first,
                                                                  size_t last, int stream) {
  enum { TILE = 32 };
  for (size_t i0 = 0; i0 < rows; i0 += TILE) {
    const size_t i1 = i0 + TILE < rows ? i0 + TILE : rows;
    for (size_t j0 = first; j0 < last; j0 += TILE) {
      const size_t j1 = j0 + TILE < last ? j0 + TILE : last;
      size_t j = j0;
      for (; j + 8 <= j1; j += 8) {
        size_t i = i0;
        for (; i + 8 <= i1; i += 8) atr_transpose8_to(out + j * rows + i, rows, in + i * columns + j, columns, stream);
        for (; i < i1; i++)
          for (size_t jj = j; jj < j + 8; jj++) out[jj * rows + i] = in[i * columns + jj];
      }
      for (; j < j1; j++) {
#pragma clang loop vectorize(disable)
        for (size_t i = i0; i < i1; i++) out[j * rows + i] = in[i * columns + j];
      }
    }
  }
}

void atr_transpose_columns(float *restrict out, const float *restrict in, size_t rows, size_t columns, size_t first,
                           size_t last, int stream) {
  if (stream && rows < columns && rows % 8 == 0 && ((uintptr_t)out & 31) == 0) {
    transpose_tiles(out, in, rows, columns, first, last, 1);
    stream_done(1);
  } else {
    transpose_tiles(out, in, rows, columns, first, last, 0);
  }
}

void atr_transpose_strided(float *restrict out, size_t ldo, const float *restrict in, size_t ldi, size_t rows,
                           size_t columns) {
  size_t i = 0;
  for (; i + 8 <= rows; i += 8) {
    size_t j = 0;
    for (; j + 8 <= columns; j += 8) atr_transpose8(out + j * ldo + i, ldo, in + i * ldi + j, ldi);
    for (; j < columns; j++)
      for (size_t ii = i; ii < i + 8; ii++) out[j * ldo + ii] = in[ii * ldi + j];
  }
  for (; i < rows; i++)
    for (size_t j = 0; j < columns; j++) out[j * ldo + i] = in[i * ldi + j];
}

void atr_transpose(float *out, const float *in, size_t rows, size_t columns) {
  atr_transpose_columns(out, in, rows, columns, 0, columns, 0);
}

// 16 floats, loadable from any 4-byte aligned address. Each instruction set lowers it
// to one zmm, two ymm or four xmm registers.
typedef float v16 __attribute__((vector_size(64), aligned(4)));
#define V16_LOAD(p) (*(const v16 *)(p))
#define V16_STORE(p, v) (*(v16 *)(p) = (v))

// Four rows of C, 32 columns at a time, accumulated in registers over a
// block of k; B rows are streamed, A values broadcast.
void atr_sgemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
               float *c, size_t ldc, int accumulate) {
  enum { KB = 256 };
  if (k == 0) {
    if (!accumulate) for (size_t i = 0; i < m; i++) for (size_t j = 0; j < n; j++) c[i * ldc + j] = 0.0f;
    return;
  }
  for (size_t k0 = 0; k0 < k; k0 += KB) {
    const size_t kn = k - k0 < KB ? k - k0 : KB;
    const int load = accumulate || k0 > 0;
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
      const float *a0 = a + i * lda + k0, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
      float *c0 = c + i * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
      size_t j = 0;
      for (; j + 32 <= n; j += 32) {
        v16 z = {0};
        v16 x00 = load ? V16_LOAD(c0 + j) : z, x01 = load ? V16_LOAD(c0 + j + 16) : z;
        v16 x10 = load ? V16_LOAD(c1 + j) : z, x11 = load ? V16_LOAD(c1 + j + 16) : z;
        v16 x20 = load ? V16_LOAD(c2 + j) : z, x21 = load ? V16_LOAD(c2 + j + 16) : z;
        v16 x30 = load ? V16_LOAD(c3 + j) : z, x31 = load ? V16_LOAD(c3 + j + 16) : z;
        const float *bp = b + k0 * ldb + j;
        for (size_t p = 0; p < kn; p++, bp += ldb) {
          const v16 b0 = V16_LOAD(bp), b1 = V16_LOAD(bp + 16);
          x00 += a0[p] * b0; x01 += a0[p] * b1;
          x10 += a1[p] * b0; x11 += a1[p] * b1;
          x20 += a2[p] * b0; x21 += a2[p] * b1;
          x30 += a3[p] * b0; x31 += a3[p] * b1;
        }
        V16_STORE(c0 + j, x00); V16_STORE(c0 + j + 16, x01);
        V16_STORE(c1 + j, x10); V16_STORE(c1 + j + 16, x11);
        V16_STORE(c2 + j, x20); V16_STORE(c2 + j + 16, x21);
        V16_STORE(c3 + j, x30); V16_STORE(c3 + j + 16, x31);
      }
      for (; j + 16 <= n; j += 16) {
        v16 z = {0};
        v16 x0 = load ? V16_LOAD(c0 + j) : z, x1 = load ? V16_LOAD(c1 + j) : z;
        v16 x2 = load ? V16_LOAD(c2 + j) : z, x3 = load ? V16_LOAD(c3 + j) : z;
        const float *bp = b + k0 * ldb + j;
        for (size_t p = 0; p < kn; p++, bp += ldb) {
          const v16 bv = V16_LOAD(bp);
          x0 += a0[p] * bv; x1 += a1[p] * bv; x2 += a2[p] * bv; x3 += a3[p] * bv;
        }
        V16_STORE(c0 + j, x0); V16_STORE(c1 + j, x1); V16_STORE(c2 + j, x2); V16_STORE(c3 + j, x3);
      }
      for (; j < n; j++) {
        float s0 = load ? c0[j] : 0.0f, s1 = load ? c1[j] : 0.0f, s2 = load ? c2[j] : 0.0f, s3 = load ? c3[j] : 0.0f;
        for (size_t p = 0; p < kn; p++) {
          const float bv = b[(k0 + p) * ldb + j];
          s0 += a0[p] * bv; s1 += a1[p] * bv; s2 += a2[p] * bv; s3 += a3[p] * bv;
        }
        c0[j] = s0; c1[j] = s1; c2[j] = s2; c3[j] = s3;
      }
    }
    for (; i < m; i++) {
      const float *ar = a + i * lda + k0;
      float *cr = c + i * ldc;
      if (!load) for (size_t j = 0; j < n; j++) cr[j] = 0.0f;
      for (size_t p = 0; p < kn; p++) {
        const float av = ar[p];
        const float *br = b + (k0 + p) * ldb;
        for (size_t j = 0; j < n; j++) cr[j] += av * br[j];
      }
    }
  }
}

// Panels of B are NR columns wide in every instruction set, so weights
// packed once serve all of them. A register tile is MR rows by NR columns
// where there are 32 vector registers of 16 floats (16 accumulators),
// and MR_NARROW rows by half a panel with AVX2's 16 registers of 8 floats
// (6 x 16 floats: 12 accumulators, 2 registers of B, a broadcast).
enum { NR = 32, MR = 8, MR_NARROW = 6, MC = 128 };
// Rows of a panel a tile prefetches ahead of the row it reads: 2 KiB,
// about one L3 latency's worth of the tile's reads.
enum { B_AHEAD = 16 };
// Packed B of at least this many bytes is fetched a panel ahead, spread
// over the tiles that go down the current one (see sgemm_panels).
enum { STREAM_BYTES = 64 * 1024 };

// Rows of a panel's slice of B per block along k, for a product of depth
// k: the slice (NR floats a row) fits in half of L2 as the tiles go down
// the rows, and the blocks are of equal length (no short last block).
// Blocks sized from L1 instead (160 rows with 32 KiB) were 4 to 12% slower
// on every shape measured, from 169 x 1000 x 512 to 512 x 512 x 4608,
// 1 and 2 threads, AVX2 and SSE2 (AMD EPYC, 512 KiB L2): each block
// reloads and stores the tiles of C again, and the tile's rows of A are
// read as short runs the hardware prefetcher follows badly, while the
// tile's two or four vector loads of B per row come from L2 fast enough.
static inline size_t k_block(size_t k) {
  size_t most = atr_cache_l2() / 2 / (NR * sizeof(float));
  if (most < 64) most = 64;
  const size_t blocks = (k + most - 1) / most;
  return blocks <= 1 ? (k ? k : 1) : (k + blocks - 1) / blocks;
}

size_t atr_packed_b_size(size_t k, size_t n) { return k * ((n + NR - 1) / NR) * NR; }

size_t atr_sgemm_tile_rows(void) { return ATR_ISA_WIDE ? MR : MR_NARROW; }

// Rows of the register tiles down a panel `width` columns wide (the last
// panel may be narrower than NR). With AVX2 (8 floats a register) a panel
// of at most 8 columns takes tiles of 8 rows by one vector (6 rows kept
// only 6 FMA chains going, fewer than the 2 x 5 cycles of FMA latency
// fill), and one of 17 to 24 columns tiles of 4 rows by three vectors (12
// accumulators, as a 6 x 16 tile) instead of a 6 x 16 tile and a 6 x 8.
static inline size_t tile_rows(size_t width) {
#if ATR_ISA_EIGHT_LANES
  if (width <= 8) return 8;
  if (width > 16 && width <= 24) return 4;
#else
  (void)width;
#endif
  return atr_sgemm_tile_rows();
}

void atr_pack_b(float *restrict packed, const float *restrict b, size_t k, size_t n, size_t ldb) {
  const size_t panels = (n + NR - 1) / NR;
  // Row by row of B, each read in order: B may be planes (a 1x1
  // convolution's pixels, atr_conv_planes), whose rows lie a page or more
  // apart.
  for (size_t p = 0; p < k; p++) {
    const float *row = b + p * ldb;
    for (size_t q = 0; q < panels; q++) {
      float *dst = packed + (q * k + p) * NR;
      const size_t j0 = q * NR, width = n - j0 < NR ? n - j0 : NR;
      if (width == NR) {
        for (size_t j = 0; j < NR; j++) dst[j] = row[j0 + j];  // a fixed length: whole vectors
        continue;
      }
      for (size_t j = 0; j < width; j++) dst[j] = row[j0 + j];
      for (size_t j = width; j < NR; j++) dst[j] = 0.0f;
    }
  }
}

void atr_pack_b_rows(float *restrict packed, const float *restrict rows, size_t k, size_t n, size_t ld,
                     size_t taps, size_t first, size_t last) {
  const size_t channels = k / taps;
  for (size_t q = first; q < last; q++) {
    float *panel = packed + q * k * NR;  // (k, NR)
    const size_t j0 = q * NR, width = n - j0 < NR ? n - j0 : NR;
    if (taps == 1) {
      // A transpose in blocks of 8 x 8: element by element, a column's
      // 32 floats came from 32 rows, and packing RegNet-Y's weights took
      // a quarter of its first run.
      atr_transpose_strided(panel, NR, rows + j0 * ld, ld, width, k);
    } else {
      // Each row read in order, its floats spread over the panel's rows
      // (which stay in cache: k x 32 floats).
      for (size_t j = 0; j < width; j++) {
        const float *row = rows + (j0 + j) * ld;
        for (size_t c = 0; c < channels; c++)
          for (size_t t = 0; t < taps; t++) panel[(t * channels + c) * NR + j] = row[c * taps + t];
      }
    }
    if (width < NR)
      for (size_t p = 0; p < k; p++)
        for (size_t j = width; j < NR; j++) panel[p * NR + j] = 0.0f;
  }
}

// Stores the first `width` (below 32) floats of t into c, each plus the
// same float of `src` where given (C itself, or a residual's row): the
// right edge of a product's tile, the part block of a blocked
// convolution's pixel. In pieces of 16, 8, 4, 2 and 1 floats, each a
// fixed-size move: as a loop the copy became a call to memcpy per tile
// row, 7% of a block whose projection makes 24 channels.
static inline __attribute__((always_inline)) void move_part(float *c, const float *t, size_t width, const float *src) {
  size_t j = 0;
#define ATR_PIECE(N)                                                                   \
  if (width - j >= (N)) {                                                              \
    typedef float piece __attribute__((vector_size((N) * sizeof(float)), aligned(4))); \
    piece v = *(const piece *)(t + j);                                                 \
    if (src) v += *(const piece *)(src + j);                                           \
    *(piece *)(c + j) = v;                                                             \
    j += (N);                                                                          \
  }
  ATR_PIECE(16) ATR_PIECE(8) ATR_PIECE(4) ATR_PIECE(2)
#undef ATR_PIECE
  if (j < width) c[j] = src ? src[j] + t[j] : t[j];
}

// `tile` at 16 or 32 columns (one or two vectors of 16 per row), and
// `tile8` at 8 for a right edge of at most 8 columns where a vector holds
// 8 floats (AVX2's half-panel rest: a product making 24, 40 or 72
// channels): `tile` at 16 columns computed twice the columns needed there
// (24 x 72 products at 56 rows took the time of 32 x 72).
#define ATR_TILE_NAME tile
#define ATR_TILE_VECTOR v16
#define ATR_TILE_LANES 16
#include "tile.h"
#undef ATR_TILE_NAME
#undef ATR_TILE_VECTOR
#undef ATR_TILE_LANES
#define ATR_TILE_NAME tile8
#define ATR_TILE_VECTOR atr_v8
#define ATR_TILE_LANES 8
#include "tile.h"
#undef ATR_TILE_NAME
#undef ATR_TILE_VECTOR
#undef ATR_TILE_LANES
#if ATR_ISA_WIDE
// `tile24`, 16 + 8 columns, for a right edge of 17 to 24 columns (24,
// 56, 88, 120 or 184 channels) with AVX-512: where the core splits a
// vector of 16 into two halves of 8 (AMD Zen 4), the 8 columns past the
// edge that a second vector of 16 computes cost as much as 8 that are
// needed; elsewhere the two cost the same.
#define ATR_TILE_NAME tile24
#define ATR_TILE_VECTOR v16
#define ATR_TILE_HI_VECTOR atr_v8
#define ATR_TILE_LANES 16
#include "tile.h"
#undef ATR_TILE_NAME
#undef ATR_TILE_VECTOR
#undef ATR_TILE_HI_VECTOR
#undef ATR_TILE_LANES
#endif

#if !ATR_ISA_WIDE
// `count` tiles of ROWS rows, one after another down a panel WIDTH
// columns wide, in a function of their own: 6 rows across both halves of
// a whole panel, and where vectors hold 8 floats, 4 rows of exactly 24
// columns, 8 rows of exactly 8, and 6 rows of a last panel of exactly 16
// (48, 80 or 112 output channels). Inside sgemm_panels' tile loop, where
// every tile size is inlined, each tile's set-up and stores reloaded its
// state from the stack and dispatched on its height: at k of 16 to 32 (a
// depthwise block's 1x1 products) a fifth of the time. 112 x 64 x 16:
// 29 -> 35 GFLOP/s, 56 x 72 x 24: 31 -> 33, 784 x 192 x 32: 33 -> 37,
// 3136 x 24 x 72: 43.5 -> 44.8, 12544 x 8 x 16: 26.7 -> 30.8 (AMD EPYC
// family 23 model 1, AVX2).
static inline __attribute__((always_inline)) void tile_run_with(const size_t ROWS, const size_t WIDTH, size_t count,
                                                                size_t kc, const float *a, size_t lda,
                                                                const float *bp, float *c, size_t ldc,
                                                                const float *src, size_t lds,
                                                                const float *column_bias, int fetch_c) {
  for (size_t t = 0; t < count; t++, a += ROWS * lda, c += ROWS * ldc, src = src ? src + ROWS * lds : NULL) {
    if (WIDTH == NR || WIDTH == 16) {
      for (size_t h = 0; h < WIDTH; h += 16) {
        tile(ROWS, 16, 16, kc, a, lda, bp + h, NULL, 0, c + h, ldc, src ? src + h : NULL, lds,
             column_bias ? column_bias + h : NULL, NULL, NULL, 0, fetch_c);
      }
    } else {
      tile8(ROWS, WIDTH, WIDTH, kc, a, lda, bp, NULL, 0, c, ldc, src, lds, column_bias, NULL, NULL, 0, fetch_c);
    }
  }
}

static __attribute__((noinline)) void tile_run(size_t width, size_t count, size_t kc, const float *a, size_t lda,
                                               const float *bp, float *c, size_t ldc, const float *src, size_t lds,
                                               const float *column_bias, int fetch_c) {
#if ATR_ISA_EIGHT_LANES
  if (width == 24) return tile_run_with(tile_rows(24), 24, count, kc, a, lda, bp, c, ldc, src, lds, column_bias, fetch_c);
  if (width == 8) return tile_run_with(tile_rows(8), 8, count, kc, a, lda, bp, c, ldc, src, lds, column_bias, fetch_c);
#endif
  if (width == 16) return tile_run_with(tile_rows(16), 16, count, kc, a, lda, bp, c, ldc, src, lds, column_bias, fetch_c);
  tile_run_with(tile_rows(NR), NR, count, kc, a, lda, bp, c, ldc, src, lds, column_bias, fetch_c);
}

// Whether tile_run takes a panel `width` columns wide (in tiles of
// tile_rows(width) rows).
static inline int tile_run_takes(size_t width) {
#if ATR_ISA_EIGHT_LANES
  if (width == 24 || width == 8) return 1;
#endif
  return width == NR || width == 16;
}
#endif

// The blocked product behind atr_sgemm_packed and atr_sgemm_rows: B from
// packed panels, or (`tables` given) row p of panel q at tables[q][p] + offsets[q].
static inline __attribute__((always_inline)) void sgemm_panels(size_t m, size_t n, size_t k, const float *a, size_t lda,
                                                               const float *packed, const float *const *const *tables,
                                                               const ptrdiff_t *offsets, float *c, size_t ldc,
                                                               atr_gemm_start start, const float *bias, const float *r,
                                                               size_t ldr, int fresh) {
  const size_t panels = (n + NR - 1) / NR;
  float edge_bias[NR];
  // Blocks of MC rows: a block's slice of A (MC x kb) stays near while
  // every panel of B passes over it, instead of all of A streaming from
  // further out once per panel. Up to 4 MC rows are one block: B (which
  // for so few rows is the larger operand) then streams once, not once
  // per 128 rows.
  const size_t mc = m <= 4 * MC ? m : MC;
  for (size_t i0 = 0; i0 < m; i0 += mc) {
    const size_t i1 = m - i0 < mc ? m : i0 + mc;
    const size_t kb = k_block(k);
    const size_t m_block = i1 - i0;
    // Packed weights read once per run come from L3 or memory. The first
    // tile down a panel brings it into L1 for the others, and with the
    // B_AHEAD prefetch alone it waits on those reads while the others
    // compute: the tiles going down a panel prefetch the next one between
    // them instead, each its share. Cold 49 x 1152 x 192 and 16 x 512 x
    // 512 products took 0.84 to 0.87 and 0.82 to 0.84 of the time (median
    // ratios over 41 alternating batches, three series). One tile has no
    // one to share with: its reads are the wait (7 x 1152 x 192 runs at
    // the L3's bandwidth either way). The next panel goes into L2, not
    // L1: there it pushed out the current panel's rows, which the tiles
    // below (and AVX2's second half of each tile) read again. 16 x 512 x
    // 512 products streaming 64 MiB of weights from memory: AVX2 57 -> 89
    // GFLOP/s, AVX-512 89 -> 102; ResNet-18 at 1 thread 0.82 (AVX2) and
    // 0.93 (AVX-512) of the time (AMD EPYC family 25 model 17).
    const int stream = !tables && k * panels * NR * sizeof(float) >= STREAM_BYTES;
    for (size_t p0 = 0; p0 < k || (k == 0 && p0 == 0); p0 += kb) {
      const size_t kc = k - p0 < kb ? k - p0 : kb;
      // What the tiles add as they store: C itself after the first block
      // of k (or from the start with ATR_START_C), else the residual if any.
      const int first = p0 == 0;
      const float *src = !first || start == ATR_START_C ? c : r;
      const size_t lds = src == c ? ldc : ldr;
      // Each tile asks for its rows of C as it starts where C is `fresh`
      // (out of cache: a product's output in new memory) or the steps take
      // long enough to hide a miss: then the lines come while the steps
      // run instead of each store waiting for its line. C out of cache:
      // 12544 x 48 x 32 53 -> 73 GFLOP/s, 3136 x 144 x 24 38 -> 48, 12544 x
      // 128 x 128 0.95 of the time; C in cache (a depthwise ring's rows), k
      // of 16 to 32: 2 to 5% slower, so there only where k is 64 or more.
      const int fetch_c = fresh || kc >= 64;
      // Cache lines of the next panel each tile prefetches (NR floats a
      // row), the next block's first panel after the last.
      const size_t kc_next = k - p0 - kc < kb ? k - p0 - kc : kb;
      for (size_t q = 0; q < panels; q++) {
        const float *bp = tables ? NULL : packed + q * k * NR + p0 * NR;
        const float *const *br = tables ? tables[q] + p0 : NULL;
        const ptrdiff_t offset = tables ? offsets[q] : 0;
        const size_t j0 = q * NR, width = n - j0 < NR ? n - j0 : NR;
        const size_t mr = tile_rows(width);
        // Tiles of equal height, to a row, where the rows do not divide by
        // the tile's (49 as 7 x 7, not 6 x 8 + 1; with tiles of 6, 56 as 6 x 6
        // + 4 x 5, not 9 x 6 + 2): a tile of one or two rows reads the whole
        // panel for a fraction of the work, its few chains waiting on each FMA.
        // With AVX2, products of 49 rows (a 7x7 map's 1x1 convolutions: 49 x
        // 1280 x 320, 49 x 160 x 960) ran 3 to 5% faster as 4 x 6 + 5 x 5 than
        // as 8 x 6 + 1 (AMD EPYC, three alternating runs).
        const size_t tiles = (m_block + mr - 1) / mr, base = m_block / tiles, extra = m_block % tiles;
        const int panel_stream = stream && tiles > 1;
        const size_t share = panel_stream ? (kc * NR / 16 + tiles - 1) / tiles : 0;
        const size_t share_next = panel_stream ? (kc_next * NR / 16 + tiles - 1) / tiles : 0;
        const float *column_bias = first && start == ATR_START_COLUMN_BIAS ? bias + j0 : NULL;
        if (column_bias && width < NR) {
          // The tile reads up to 32 bias values; past the matrix's edge they are zeros.
          for (size_t j = 0; j < NR; j++) edge_bias[j] = j < width ? column_bias[j] : 0.0f;
          column_bias = edge_bias;
        }
        const int last = q + 1 == panels;
        const float *next = !panel_stream ? NULL : !last ? bp + k * NR : p0 + kc < k ? packed + (p0 + kc) * NR : NULL;
        const size_t lines = !next ? 0 : (last ? kc_next : kc) * NR / 16, each = last ? share_next : share;
        // The tiles of full height across a panel tile_run takes, from
        // packed B, go through it; the rest (the shorter tiles, other
        // widths, rows of B from tables) one by one below.
        size_t t0 = 0;
#if !ATR_ISA_WIDE
        if (!tables && !panel_stream && tile_run_takes(width) && !(first && start == ATR_START_ROW_BIAS)) {
          t0 = base + 1 == mr ? extra : base == mr ? tiles : 0;
          tile_run(width, t0, kc, a + i0 * lda + p0, lda, bp, c + i0 * ldc + j0, ldc,
                   src ? src + i0 * lds + j0 : NULL, lds, column_bias, fetch_c);
        }
#endif
        for (size_t t = t0, i = i0 + t0 * mr, line = t0 * each; t < tiles; t++, i += base + (t <= extra), line += each) {
          const size_t next_lines = line >= lines ? 0 : lines - line < each ? lines - line : each;
          const float *tile_next = next_lines ? next + line * 16 : NULL;
          const size_t rows = base + (t < extra);  // the first `extra` tiles take one row more
          const float *row_bias = first && start == ATR_START_ROW_BIAS ? bias + i : NULL;
          const float *ai = a + i * lda + p0;
          float *ci = c + i * ldc + j0;
          const float *si = src ? src + i * lds + j0 : NULL;
          // One loop per tile size: the bottom edge computes only its rows,
          // and a right edge of at most 8, 16 or 24 columns only the vectors
          // it needs per row.
#if ATR_ISA_WIDE
#define ATR_TILE(R)                                                                                                 \
  case R:                                                                                                           \
    if (width > 24) {                                                                                               \
      tile(R, 32, width, kc, ai, lda, bp, br, offset, ci, ldc, si, lds, column_bias, row_bias, tile_next, next_lines, fetch_c); \
    } else if (width > 16) {                                                                                        \
      tile24(R, 24, width, kc, ai, lda, bp, br, offset, ci, ldc, si, lds, column_bias, row_bias, tile_next, next_lines, fetch_c); \
    } else if (width > 8) {                                                                                         \
      tile(R, 16, width, kc, ai, lda, bp, br, offset, ci, ldc, si, lds, column_bias, row_bias, tile_next, next_lines, fetch_c); \
    } else {                                                                                                        \
      tile8(R, 8, width, kc, ai, lda, bp, br, offset, ci, ldc, si, lds, column_bias, row_bias, tile_next, next_lines, fetch_c); \
    }                                                                                                               \
    break;
          switch (rows) {
            ATR_TILE(1) ATR_TILE(2) ATR_TILE(3) ATR_TILE(4) ATR_TILE(5) ATR_TILE(6) ATR_TILE(7) ATR_TILE(8)
          }
#else
#if ATR_ISA_EIGHT_LANES
#define ATR_TILE_ONE(R, COLS) \
  case R: tile8(R, COLS, width, kc, ai, lda, bp, br, offset, ci, ldc, si, lds, column_bias, row_bias, tile_next, next_lines, fetch_c); break;
          if (width <= 8) {
            switch (rows) {
              ATR_TILE_ONE(1, 8) ATR_TILE_ONE(2, 8) ATR_TILE_ONE(3, 8) ATR_TILE_ONE(4, 8)
              ATR_TILE_ONE(5, 8) ATR_TILE_ONE(6, 8) ATR_TILE_ONE(7, 8) ATR_TILE_ONE(8, 8)
            }
            continue;
          }
          if (width > 16 && width <= 24) {
            switch (rows) { ATR_TILE_ONE(1, 24) ATR_TILE_ONE(2, 24) ATR_TILE_ONE(3, 24) ATR_TILE_ONE(4, 24) }
            continue;
          }
#undef ATR_TILE_ONE
#endif
          // Each half of the panel in turn, while the tile's rows of A
          // stay in L1; a half of at most 8 columns one vector wide.
          for (size_t h = 0; h < NR && h < width; h += 16) {
            const size_t part = width - h < 16 ? width - h : 16;
            const float *hb = bp ? bp + h : NULL, *hbias = column_bias ? column_bias + h : NULL;
            // The first half's pass prefetches the tile's share for both.
            const size_t hlines = h ? 0 : next_lines;
#define ATR_TILE(R)                                                                                                         \
  case R:                                                                                                                   \
    if (part <= 8) {                                                                                                        \
      tile8(R, 8, part, kc, ai, lda, hb, br, offset + (ptrdiff_t)h, ci + h, ldc, si ? si + h : NULL, lds, hbias, row_bias, tile_next, hlines, fetch_c); \
    } else {                                                                                                                \
      tile(R, 16, part, kc, ai, lda, hb, br, offset + (ptrdiff_t)h, ci + h, ldc, si ? si + h : NULL, lds, hbias, row_bias, tile_next, hlines, fetch_c); \
    }                                                                                                                       \
    break;
            switch (rows) { ATR_TILE(1) ATR_TILE(2) ATR_TILE(3) ATR_TILE(4) ATR_TILE(5) ATR_TILE(6) }
          }
#endif
#undef ATR_TILE
        }
      }
      if (k == 0) break;
    }
  }
}

void atr_sgemm_packed(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed, float *c,
                      size_t ldc, atr_gemm_start start, const float *bias) {
  sgemm_panels(m, n, k, a, lda, packed, NULL, NULL, c, ldc, start, bias, NULL, 0, 0);
}

void atr_sgemm_packed_fresh(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed, float *c,
                            size_t ldc, atr_gemm_start start, const float *bias) {
  sgemm_panels(m, n, k, a, lda, packed, NULL, NULL, c, ldc, start, bias, NULL, 0, 1);
}

void atr_sgemm_packed_sum(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed, float *c,
                          size_t ldc, const float *bias, const float *r, size_t ldr, int fresh) {
  const atr_gemm_start start = bias ? ATR_START_COLUMN_BIAS : ATR_START_ZERO;
  sgemm_panels(m, n, k, a, lda, packed, NULL, NULL, c, ldc, start, bias, r, ldr, fresh);
}

void atr_sgemm_rows(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *const *const *tables,
                    const ptrdiff_t *offsets, float *c, size_t ldc, atr_gemm_start start, const float *bias) {
  sgemm_panels(m, n, k, a, lda, NULL, tables, offsets, c, ldc, start, bias, NULL, 0, 0);
}

void atr_channel_affine(float *out, const float *in, size_t pixels, size_t channels, const float *restrict scale,
                        const float *restrict shift) {
  for (size_t p = 0; p < pixels; p++) {
    const float *x = in + p * channels;
    float *y = out + p * channels;
    for (size_t k = 0; k < channels; k++) y[k] = x[k] * scale[k] + shift[k];
  }
}

void atr_max_into(float *restrict out, const float *restrict x, size_t count) {
  for (size_t j = 0; j < count; j++) out[j] = x[j] > out[j] ? x[j] : out[j];
}

void atr_add_into(float *restrict out, const float *restrict x, size_t count) {
  for (size_t j = 0; j < count; j++) out[j] += x[j];
}

// Copies are vector moves inline: a call per part and row (DenseNet's
// concatenations join up to 32 parts of 32 channels per pixel) cost more
// than the copying.
void atr_concat_rows(float *restrict out, size_t rows, const float *const *parts, const size_t *widths,
                     size_t nparts, const float *restrict scale, const float *restrict shift) {
  size_t total = 0;
  for (size_t q = 0; q < nparts; q++) total += widths[q];
  for (size_t r = 0; r < rows; r++) {
    float *o = out + r * total;
    size_t at = 0;  // the part's first column
    for (size_t q = 0; q < nparts; q++) {
      const size_t n = widths[q];
      const float *x = parts[q] + r * n;
      size_t i = 0;
      if (scale) {
        const float *a = scale + at, *b = shift + at;
        for (; i + 16 <= n; i += 16) V16_STORE(o + i, V16_LOAD(x + i) * V16_LOAD(a + i) + V16_LOAD(b + i));
        for (; i < n; i++) o[i] = x[i] * a[i] + b[i];
      } else {
        for (; i + 16 <= n; i += 16) V16_STORE(o + i, V16_LOAD(x + i));
        for (; i < n; i++) o[i] = x[i];
      }
      o += n;
      at += n;
    }
  }
}

void atr_interleave_channels(float *restrict out, const float *a, size_t lda, const float *b, size_t ldb,
                             size_t pixels, size_t width) {
  typedef float v16f __attribute__((vector_size(64), aligned(4)));
  // 16 pairs at a time through two-register permutes instead of gathers.
  for (size_t p = 0; p < pixels; p++) {
    const float *x = a + p * lda, *y = b + p * ldb;
    float *o = out + p * 2 * width;
    size_t i = 0;
    for (; i + 16 <= width; i += 16) {
      const v16f u = *(const v16f *)(x + i), v = *(const v16f *)(y + i);
      *(v16f *)(o + 2 * i) = __builtin_shufflevector(u, v, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      *(v16f *)(o + 2 * i + 16) =
        __builtin_shufflevector(u, v, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    }
    for (; i < width; i++) {
      o[2 * i] = x[i];
      o[2 * i + 1] = y[i];
    }
  }
}

void atr_gather_channels(float *restrict out, const float *restrict in, size_t pixels, size_t channels,
                         const int32_t *restrict source) {
  const size_t half = channels / 2;
  int interleave = channels % 2 == 0 && half >= 16;
  for (size_t j = 0; interleave && j < channels; j++) interleave = source[j] == (int32_t)((j % 2) * half + j / 2);
  if (interleave) {
    // Two groups (ShuffleNet's shuffle): the halves interleaved.
    atr_interleave_channels(out, in, channels, in + half, channels, pixels, half);
    return;
  }
  for (size_t p = 0; p < pixels; p++) {
    const float *x = in + p * channels;
    float *o = out + p * channels;
    for (size_t j = 0; j < channels; j++) o[j] = x[source[j]];
  }
}
