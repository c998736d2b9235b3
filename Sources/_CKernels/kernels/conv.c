#include "atrous_kernels.h"
#include "transpose8.h"
#include "window.h"

#include <stdint.h>
#include <string.h>

// Whether this build has 32 vector registers of 16 floats (AVX-512), so
// wider register tiles do not spill (set by the unit that includes this).
#define ATR_HAS_AVX512 ATR_ISA_WIDE
// Whether a register holds 8 floats (AVX2): a vector of 8 is one register,
// not two as where registers hold 4.
#if ATR_ISA_EIGHT_LANES
#define ATR_EIGHT_LANES 1
#else
#define ATR_EIGHT_LANES 0
#endif

typedef float v16 __attribute__((vector_size(64), aligned(4)));
#define V16_LOAD(p) (*(const v16 *)(p))
#define V16_STORE(p, v) (*(v16 *)(p) = (v))
// The larger of each lane of a running maximum a and new values b; a NaN
// in b keeps a, as the scalar loops' comparison does (a starts at
// -infinity and so is never NaN). One maxps per register: IEEE maxNum
// (__builtin_elementwise_max), which also takes b where a is NaN, added a
// compare and a blend to each, and pools took twice ONNX Runtime's time.
typedef int32_t v16i __attribute__((vector_size(64), aligned(4)));
static inline __attribute__((always_inline)) v16 v16_max(v16 a, v16 b) {
  const v16i take = b > a;  // all ones where b is the larger
  return (v16)(((v16i)b & take) | ((v16i)a & ~take));
}
#define V16_MAX(a, b) v16_max((a), (b))

// Channel runs are short (3 to a few hundred floats) and many, so they are
// copied inline: a memcpy call per tap costs more than the copy.
static inline __attribute__((always_inline)) void copy_run(float *restrict dst, const float *restrict src, size_t n) {
  if (n >= 16) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) V16_STORE(dst + i, V16_LOAD(src + i));
    // The remainder as the last 16 floats, overlapping what is already copied.
    if (i < n) V16_STORE(dst + n - 16, V16_LOAD(src + n - 16));
  } else if (n >= 4) {
    // 4 to 15 floats: two overlapping moves of 8 or of 4 (groups of a
    // grouped convolution are often 8 channels wide).
    typedef float v8 __attribute__((vector_size(32), aligned(4)));
    typedef float v4 __attribute__((vector_size(16), aligned(4)));
    if (n >= 8) {
      const v8 head = *(const v8 *)src, tail = *(const v8 *)(src + n - 8);
      *(v8 *)dst = head;
      *(v8 *)(dst + n - 8) = tail;
    } else {
      const v4 head = *(const v4 *)src, tail = *(const v4 *)(src + n - 4);
      *(v4 *)dst = head;
      *(v4 *)(dst + n - 4) = tail;
    }
  } else {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
  }
}

// The taps of a window starting at input column ix0 that land inside the
// input row: [*kx0, *kx1).
static inline __attribute__((always_inline)) void taps_inside(const atr_conv_geometry *g, ptrdiff_t ix0,
                                                              ptrdiff_t *kx0, ptrdiff_t *kx1) {
  const ptrdiff_t kw = g->kernel_w, dx = g->dilation_w, w = g->input_w;
  ptrdiff_t lo = 0, hi = kw;
  while (lo < kw && ix0 + lo * dx < 0) lo++;
  while (hi > lo && ix0 + (hi - 1) * dx >= w) hi--;
  *kx0 = lo;
  *kx1 = hi;
}

// Whether the `count` output pixels from ox, the first reading from input
// column ix0, all exist and have every tap inside the input row.
static inline __attribute__((always_inline)) int pixels_inside(const atr_conv_geometry *g, size_t ox, ptrdiff_t ix0,
                                                               size_t count) {
  return ix0 >= 0 && ox + count <= g->output_w &&
         ix0 + ((ptrdiff_t)count - 1) * g->stride_w + (g->kernel_w - 1) * g->dilation_w < g->input_w;
}

// How many of up to `most` output pixels from ox, the first reading
// from input column ix0, exist and have every tap inside the input row
// (each as `pixels_inside` tests it); 0 when the first does not.
static inline __attribute__((always_inline)) size_t pixels_inside_run(const atr_conv_geometry *g, size_t ox,
                                                                      ptrdiff_t ix0, size_t most) {
  const ptrdiff_t room = g->input_w - 1 - (g->kernel_w - 1) * g->dilation_w - ix0;  // for the later pixels' steps
  if (ix0 < 0 || room < 0) return 0;
  size_t n = (size_t)(room / g->stride_w) + 1;
  if (n > g->output_w - ox) n = g->output_w - ox;
  return n < most ? n : most;
}

void atr_im2col(float *restrict col, const float *restrict src, const atr_conv_geometry *g, size_t channel_offset,
                size_t channels, size_t first, size_t count) {
  const size_t k = (size_t)g->kernel_h * g->kernel_w * channels;
  const ptrdiff_t h = g->input_h, w = g->input_w;
  for (size_t row = 0; row < count; row++) {
    const size_t p = first + row;
    const size_t b = p / (g->output_h * g->output_w), oy = (p / g->output_w) % g->output_h, ox = p % g->output_w;
    float *dst = col + row * k;
    for (ptrdiff_t ky = 0; ky < g->kernel_h; ky++) {
      const ptrdiff_t iy = (ptrdiff_t)oy * g->stride_h - g->pad_top + ky * g->dilation_h;
      if (iy < 0 || iy >= h) {
        memset(dst, 0, (size_t)g->kernel_w * channels * sizeof(float));
        dst += (size_t)g->kernel_w * channels;
        continue;
      }
      const float *line = src + ((ptrdiff_t)b * h + iy) * w * g->pixel_stride + channel_offset;
      for (ptrdiff_t kx = 0; kx < g->kernel_w; kx++) {
        const ptrdiff_t ix = (ptrdiff_t)ox * g->stride_w - g->pad_left + kx * g->dilation_w;
        if (ix >= 0 && ix < w) {
          copy_run(dst, line + ix * g->pixel_stride, channels);
        } else {
          for (size_t i = 0; i < channels; i++) dst[i] = 0.0f;
        }
        dst += channels;
      }
    }
  }
}

// The panel width of atr_sgemm_packed (kernels.c).
enum { PANEL = 32 };

// Output pixels [0, len) of a run on one output row read line[t * sw] for
// t in [lo, hi) and are zero elsewhere.
static inline __attribute__((always_inline)) void gather_run(float *restrict dst, const float *line, ptrdiff_t lo,
                                                             ptrdiff_t hi, size_t len, ptrdiff_t sw) {
  for (size_t t = 0; t < len; t++) {
    const ptrdiff_t x = (ptrdiff_t)t;
    dst[t] = x >= lo && x < hi ? line[x * sw] : 0.0f;
  }
}

// The run [x0, x0 + len * sw) of an input row, stepping sw, as [lo, hi):
// the steps that land inside [0, w).
static inline __attribute__((always_inline)) void inside_steps(ptrdiff_t x0, size_t len, ptrdiff_t sw, ptrdiff_t w,
                                                               ptrdiff_t *lo, ptrdiff_t *hi) {
  ptrdiff_t a = x0 >= 0 ? 0 : (-x0 + sw - 1) / sw;
  ptrdiff_t b = x0 + ((ptrdiff_t)len - 1) * sw < w ? (ptrdiff_t)len : (w - 1 - x0 >= 0 ? (w - 1 - x0) / sw + 1 : 0);
  if (a > (ptrdiff_t)len) a = (ptrdiff_t)len;
  if (b < a) b = a;
  *lo = a;
  *hi = b;
}

typedef struct {
  float *gathered;       // (k, PANEL): the panel being gathered
  const float **rows;    // (output rows, k): row pointers for output column 0
  const float **panel;   // (k): the gathered panel's table
  float *zeros;          // (zero_count)
  size_t zero_count;
  float *window;         // (channels, window_rows, window_w)
  size_t window_rows, window_w;
  float *packed;         // (panels, channels, PANEL): a 1x1 block's columns, packed
} planes_scratch;

// A 1x1 convolution at stride 1 without padding (its output the size of
// its input: no padding at the end either): each plane's pixels are the
// product's B row as they lie.
static inline int pointwise_planes(const atr_conv_geometry *g) {
  return g->kernel_h == 1 && g->kernel_w == 1 && g->stride_h == 1 && g->stride_w == 1 && g->pad_top == 0 &&
         g->pad_left == 0 && g->output_h == g->input_h && g->output_w == g->input_w;
}

// The input rows a block of output pixels reads, as a window with zeros
// around it: row r of plane ci holds input row top + r, zeros where the
// row is padding, `pad_left` zeros, the row, then zeros to window_w.
// Room past the reach for a last panel read in full.
static void window_size(const atr_conv_geometry *g, size_t count, size_t *rows, size_t *width) {
  *rows = atr_window_rows(g, count / (size_t)g->output_w + 2);
  *width = atr_window_width(g, 2 * PANEL);
}

static planes_scratch carve(void *scratch, const atr_conv_geometry *g, size_t channels, size_t count, size_t *bytes) {
  const size_t k = channels * (size_t)(g->kernel_h * g->kernel_w);
  const size_t rows = count / (size_t)g->output_w + 2;
  planes_scratch s;
  char *p = scratch;
  size_t used = 0;
#define ATR_CARVE(field, type, size)                \
  do {                                              \
    s.field = (type)(void *)(p ? p + used : NULL);  \
    used += ((size) + 63) / 64 * 64;                \
  } while (0)
  ATR_CARVE(gathered, float *, k * PANEL * sizeof(float));
  ATR_CARVE(rows, const float **, rows * k * sizeof(float *));
  ATR_CARVE(panel, const float **, k * sizeof(float *));
  s.zero_count = (size_t)(g->output_w * g->stride_w) + 2 * PANEL;
  ATR_CARVE(zeros, float *, s.zero_count * sizeof(float));
  window_size(g, count, &s.window_rows, &s.window_w);
  // A window past about the L2 cache's size (a 1x1 convolution reading a
  // plane as one long row) is read in place instead.
  if (channels * s.window_rows * s.window_w * sizeof(float) > atr_cache_l2()) s.window_rows = 0;
  ATR_CARVE(window, float *, channels * s.window_rows * s.window_w * sizeof(float));
  ATR_CARVE(packed, float *, pointwise_planes(g) ? atr_packed_b_size(channels, count) * sizeof(float) : 0);
#undef ATR_CARVE
  *bytes = used;
  return s;
}

size_t atr_conv_planes_scratch(const atr_conv_geometry *g, size_t channels, size_t count) {
  size_t bytes;
  carve(NULL, g, channels, count, &bytes);
  return bytes;
}

// The input rows [lowest, highest] of each plane that a block of output
// pixels reads, and the columns [left, right) it reads of them.
typedef struct {
  ptrdiff_t lowest, highest, left, right;
} block_reach;

static block_reach reach_of(const atr_conv_geometry *g, size_t first, size_t count) {
  const ptrdiff_t h = g->input_h, w = g->input_w, ow = g->output_w;
  const ptrdiff_t y0 = (ptrdiff_t)(first / (size_t)ow) % g->output_h;
  const ptrdiff_t y1 = y0 + (ptrdiff_t)((first % (size_t)ow + count - 1) / (size_t)ow);
  block_reach b = {y0 * g->stride_h - g->pad_top, y1 * g->stride_h - g->pad_top + (g->kernel_h - 1) * g->dilation_h, 0, w};
  if (b.lowest < 0) b.lowest = 0;
  if (b.highest > h - 1) b.highest = h - 1;
  if (y0 == y1) {
    // A block inside one output row reads only some columns.
    const ptrdiff_t x0 = (ptrdiff_t)(first % (size_t)ow);
    b.left = x0 * g->stride_w - g->pad_left;
    b.right = (x0 + (ptrdiff_t)count - 1) * g->stride_w - g->pad_left + (g->kernel_w - 1) * g->dilation_w + 1;
    if (b.left < 0) b.left = 0;
    if (b.right > w) b.right = w;
  }
  return b;
}

// Asks for lines [r0, r1) of the block's (channel, row) list to be brought
// into L2.
static void prefetch_lines(const atr_conv_planes_next *next, const atr_conv_geometry *g, block_reach b, size_t r0,
                           size_t r1) {
  const size_t rows = b.highest >= b.lowest ? (size_t)(b.highest - b.lowest + 1) : 0;
  if (rows == 0) return;
  const size_t plane = (size_t)(g->input_h * g->input_w);
  for (size_t r = r0; r < r1; r++) {
    const float *line = next->src + r / rows * plane + (size_t)(b.lowest + (ptrdiff_t)(r % rows)) * (size_t)g->input_w;
    for (ptrdiff_t x = b.left; x < b.right; x += 16) __builtin_prefetch(line + x, 0, 2);
  }
}

// The table of B rows for the panel of n output pixels from flat pixel p0
// (column ox of output row y, the block's row `row`): the output row's
// pointers, read at offset ox, when all 32 columns of every tap lie inside
// one input row; otherwise s->panel, pointing into s->gathered.
static inline __attribute__((always_inline)) const float *const *gather_panel(
    const planes_scratch *s, const atr_conv_geometry *g, size_t channels, size_t row, size_t p0, size_t n,
    ptrdiff_t ox) {
  const ptrdiff_t w = g->input_w, kh = g->kernel_h, kw = g->kernel_w, sw = g->stride_w;
  const ptrdiff_t ow = g->output_w, dw = g->dilation_w, pl = g->pad_left;
  const size_t taps = (size_t)(kh * kw), k = channels * taps;
  const size_t y = p0 / (size_t)ow;
  // All 32 columns read, for every tap, inside one input row: the
  // output row's pointers, shifted to this panel.
  if (sw == 1 && ox + (ptrdiff_t)n <= ow && ox - pl >= 0 && ox + PANEL + (kw - 1) * dw - pl <= w) {
    return s->rows + row * k;
  }
  const float **table = s->panel;
  float *gathered = s->gathered;
  for (size_t ci = 0; ci < channels; ci++) {
    for (ptrdiff_t ky = 0; ky < kh; ky++) {
      for (ptrdiff_t kx = 0; kx < kw; kx++) {
        const size_t r = ci * taps + (size_t)(ky * kw + kx);
        float *dst = gathered + r * PANEL;
        const float *reference = s->rows[row * k + r];
        if (ox + (ptrdiff_t)n <= ow) {
          // One output row: point into the input where the 32 columns fit, else gather.
          if (reference == s->zeros) {
            table[r] = s->zeros;
            continue;
          }
          const ptrdiff_t x0 = ox * sw - pl + kx * dw;
          const float *line = reference - kx * dw + pl;  // the input row
          if (sw == 1 && x0 >= 0 && x0 + PANEL <= w) {
            table[r] = line + x0;
            continue;
          }
          if (sw == 2 && n == PANEL && x0 >= 0 && x0 + 2 * PANEL <= w) {
            // Stride 2 inside the row: every other float of 64, through registers.
            const float *x = line + x0;
            const v16 a = V16_LOAD(x), b = V16_LOAD(x + 16), c = V16_LOAD(x + 32), d = V16_LOAD(x + 48);
            V16_STORE(dst, __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30));
            V16_STORE(dst + 16, __builtin_shufflevector(c, d, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30));
            table[r] = dst;
            continue;
          }
          ptrdiff_t lo, hi;
          inside_steps(x0, n, sw, w, &lo, &hi);
          gather_run(dst, line + x0, lo, hi, n, sw);
        } else {
          // The panel wraps onto the next output row(s): gather run by run.
          for (size_t j = 0; j < n;) {
            const size_t yy = (p0 + j) / (size_t)ow;
            const ptrdiff_t x = (ptrdiff_t)((p0 + j) % (size_t)ow);
            const size_t len = n - j < (size_t)(ow - x) ? n - j : (size_t)(ow - x);
            const float *ref = s->rows[(row + yy - y) * k + r];
            const ptrdiff_t x0 = x * sw - pl + kx * dw;
            ptrdiff_t lo = (ptrdiff_t)len, hi = (ptrdiff_t)len;
            if (ref != s->zeros) inside_steps(x0, len, sw, w, &lo, &hi);
            gather_run(dst + j, ref == s->zeros ? s->zeros : ref - kx * dw + pl + x0, lo, hi, len, sw);
            j += len;
          }
        }
        // Columns past the block are computed and dropped; zeros keep them finite.
        for (size_t t = n; t < PANEL; t++) dst[t] = 0.0f;
        table[r] = dst;
      }
    }
  }
  return table;
}

void atr_conv_planes(float *out, size_t ldc, size_t m, const float *weights, const float *bias, const float *src,
                     const atr_conv_geometry *g, size_t channels, size_t first, size_t count, void *scratch,
                     const atr_conv_planes_next *next) {
  const atr_conv_geometry *given = g;
  size_t bytes;
  planes_scratch s = carve(scratch, g, channels, count, &bytes);
  const atr_gemm_start start = bias ? ATR_START_ROW_BIAS : ATR_START_ZERO;
  if (pointwise_planes(g)) {
    // The block's columns packed as B panels, and one packed product: read
    // through row pointers, each of a panel's k rows lay on its own page
    // of a plane, and the panel's first tile waited on all of them (128 ->
    // 128 channels at 112x112: 69 GFLOP/s). Packing reads each plane's run
    // in order, which the hardware prefetches, so `next` is not needed.
    atr_pack_b(s.packed, src + first, channels, count, (size_t)(g->input_h * g->input_w));
    atr_sgemm_packed(m, count, channels, weights, channels, s.packed, out, ldc, start, bias);
    return;
  }
  for (size_t i = 0; i < s.zero_count; i++) s.zeros[i] = 0.0f;

  // Copy the input rows the block reads into a zero-padded window and read
  // that instead: its rows sit close together (a few pages, not one per
  // plane and row), and with the padding in the window every panel that
  // stays on one output row reads it in place.
  atr_conv_geometry wg = *g;
  if (s.window_rows > 0) {
    const ptrdiff_t y0 = (ptrdiff_t)(first / (size_t)g->output_w) % g->output_h;
    const ptrdiff_t y1 = y0 + (ptrdiff_t)((first % (size_t)g->output_w + count - 1) / (size_t)g->output_w);
    const ptrdiff_t top = y0 * g->stride_h - g->pad_top;
    atr_fill_plane_window(s.window, s.window_rows * s.window_w, s.window_w, atr_window_rows(g, (size_t)(y1 - y0 + 1)),
                          src, g, channels, top);
    src = s.window;
    wg.input_h = (ptrdiff_t)s.window_rows;
    wg.input_w = (ptrdiff_t)s.window_w;
    wg.pad_top = g->pad_top + top;
    wg.pad_left = 0;
    g = &wg;
  }
  const ptrdiff_t h = g->input_h, w = g->input_w, kh = g->kernel_h, kw = g->kernel_w;
  const ptrdiff_t ow = g->output_w, oh = g->output_h, dw = g->dilation_w, pl = g->pad_left;
  const size_t taps = (size_t)(kh * kw), k = channels * taps, plane = (size_t)(h * w);

  // Per output row the block touches: where row (ci, ky, kx) of the
  // matrix reads for output column 0, or zeros in the top and bottom padding.
  const size_t y0 = first / (size_t)ow, y1 = (first + count - 1) / (size_t)ow;
  for (size_t y = y0; y <= y1; y++) {
    const float **table = s.rows + (y - y0) * k;
    const ptrdiff_t oy = (ptrdiff_t)y % oh;
    for (ptrdiff_t ky = 0; ky < kh; ky++) {
      const ptrdiff_t iy = oy * g->stride_h - g->pad_top + ky * g->dilation_h;
      const int inside = iy >= 0 && iy < h;
      for (size_t ci = 0; ci < channels; ci++) {
        const float *line = src + ci * plane + iy * w;
        for (ptrdiff_t kx = 0; kx < kw; kx++)
          table[ci * taps + (size_t)(ky * kw + kx)] = inside ? line + kx * dw - pl : s.zeros;
      }
    }
  }

  // Panel by panel: each wrap or border panel is gathered just before its
  // product, into the one buffer, while it is in L1. After each product
  // comes its share of the next block's input lines: a few at a time are
  // fetched while the product computes, where all at once would overflow
  // the core's miss queue.
  const int prefetch = next && next->count > 0;
  block_reach reach = {0, -1, 0, 0};
  if (prefetch) reach = reach_of(given, next->first, next->count);
  const size_t lines = prefetch ? next->channels * (size_t)(reach.highest - reach.lowest + 1) : 0;
  const size_t panels = (count + PANEL - 1) / PANEL;
  for (size_t q = 0; q < panels; q++) {
    const size_t p0 = first + q * PANEL, n = count - q * PANEL < PANEL ? count - q * PANEL : PANEL;
    const size_t y = p0 / (size_t)ow;
    const ptrdiff_t ox = (ptrdiff_t)(p0 % (size_t)ow);
    const float *const *table = gather_panel(&s, g, channels, y - y0, p0, n, ox);
    const ptrdiff_t offset = table == s.panel ? 0 : ox;
    atr_sgemm_rows(m, n, k, weights, k, &table, &offset, out + q * PANEL, ldc, start, bias);
    if (prefetch) prefetch_lines(next, given, reach, lines * q / panels, lines * (q + 1) / panels);
  }
}

void atr_im2col_panels(float *restrict packed, const float *restrict src, const atr_conv_geometry *g,
                       size_t channel_offset, size_t channels, size_t first, size_t count) {
  const ptrdiff_t h = g->input_h, w = g->input_w, kh = g->kernel_h, kw = g->kernel_w;
  const size_t taps = (size_t)(kh * kw), k = taps * channels;
  const size_t per_image = (size_t)(g->output_h * g->output_w);
  for (size_t q = 0; q * PANEL < count; q++) {
    float *panel = packed + q * k * PANEL;
    const size_t n = count - q * PANEL < PANEL ? count - q * PANEL : PANEL;
    // Where each of the panel's pixels puts its window's top-left corner.
    ptrdiff_t image[PANEL], top[PANEL], left[PANEL];
    for (size_t j = 0; j < n; j++) {
      const size_t p = first + q * PANEL + j;
      image[j] = (ptrdiff_t)(p / per_image);
      top[j] = (ptrdiff_t)((p / (size_t)g->output_w) % (size_t)g->output_h) * g->stride_h - g->pad_top;
      left[j] = (ptrdiff_t)(p % (size_t)g->output_w) * g->stride_w - g->pad_left;
    }
    for (ptrdiff_t ky = 0; ky < kh; ky++) {
      for (ptrdiff_t kx = 0; kx < kw; kx++) {
        // This tap's input pixel for every column, NULL in the padding or past the block.
        const float *pixel[PANEL];
        for (size_t j = 0; j < PANEL; j++) {
          pixel[j] = NULL;
          if (j >= n) continue;
          const ptrdiff_t iy = top[j] + ky * g->dilation_h, ix = left[j] + kx * g->dilation_w;
          if (iy >= 0 && iy < h && ix >= 0 && ix < w)
            pixel[j] = src + ((image[j] * h + iy) * w + ix) * g->pixel_stride + channel_offset;
        }
        // Rows (tap, ci) of the panel: 8 pixels by 8 channels through registers.
        float *rows = panel + (size_t)(ky * kw + kx) * channels * PANEL;
        for (size_t j0 = 0; j0 < PANEL; j0 += 8) {
          size_t c = 0;
          for (; c + 8 <= channels; c += 8) {
            atr_v8 r[8];
            for (int i = 0; i < 8; i++) {
              const float *x = pixel[j0 + (size_t)i];
              r[i] = x ? *(const atr_v8 *)(x + c) : (atr_v8){0};
            }
            atr_transpose8x8(r);
            for (int i = 0; i < 8; i++) *(atr_v8 *)(rows + (c + (size_t)i) * PANEL + j0) = r[i];
          }
          for (; c < channels; c++)
            for (size_t i = 0; i < 8; i++) rows[c * PANEL + j0 + i] = pixel[j0 + i] ? pixel[j0 + i][c] : 0.0f;
        }
      }
    }
  }
}

// The steps a vector takes in a few instructions, one float at a time:
// pointwise_chunk's loops and the depthwise row's stores (`store_step`)
// compile them to the same vector code. Clip and HardSwish as comparisons
// in the operand order of the vector max and min instructions (one each
// per vector: fmaxf and fminf add a NaN test and a blend to each, which
// made ReLU6 8% of MobileNetV2's time); a NaN stays NaN through Clip, as
// in ONNX Runtime, and these are also the unfused ops' formulas.
static inline __attribute__((always_inline)) float relu1(float x) { return x > 0.0f ? x : 0.0f; }
static inline __attribute__((always_inline)) float clip1(float x, float a, float b) {
  const float t = a > x ? a : x;
  return b < t ? b : t;
}
// ONNX's alpha of 1/6 as a product: a division by 6 is a vector divide,
// several times the cost of the rest of the step.
static inline __attribute__((always_inline)) float hardswish1(float x) {
  const float v = x * (1.0f / 6.0f) + 0.5f, m = v < 1.0f ? v : 1.0f;
  return x * (m > 0.0f ? m : 0.0f);
}

// The steps the depthwise row applies to its sums in registers as it
// stores them, rather than in a pass over the row after (4 to 5% of
// inverted-residual blocks' time): ReLU, Clip with any bounds, and
// HardSwish. A constant at each call (STEP_NONE, STEP_RELU, STEP_CLIP,
// STEP_HARDSWISH), so each is its own loop with no test in it.
enum { STEP_NONE, STEP_RELU, STEP_CLIP, STEP_HARDSWISH };
static inline int stores_step(atr_pointwise_op op) {
  return op == ATR_PW_RELU || op == ATR_PW_CLIP || op == ATR_PW_HARDSWISH;
}
// relu1, clip1 and hardswish1 on whole vectors, the same formulas as
// selects on the comparisons' masks (which compile to the vector max and
// min): written lane by lane, some of the kernels' stores were left as
// scalar code.
// c ? t : f lane by lane, for a comparison's mask c (all ones or zeros).
#define ATR_SELECT(V, MASK, c, t, f) ((V)(((c) & (MASK)(t)) | (~(c) & (MASK)(f))))
#define ATR_STORE_STEP(NAME, V, LANES)                                                                 \
  static inline __attribute__((always_inline)) void NAME(V *x, const int STEP, float a, float b) {    \
    typedef int32_t mask __attribute__((vector_size((LANES) * 4)));                                    \
    const V zero = {0};                                                                                \
    if (STEP == STEP_RELU) *x = ATR_SELECT(V, mask, *x > zero, *x, zero);                              \
    if (STEP == STEP_CLIP) {                                                                           \
      const V low = zero + a, high = zero + b, t = ATR_SELECT(V, mask, low > *x, low, *x);             \
      *x = ATR_SELECT(V, mask, high < t, high, t);                                                     \
    }                                                                                                  \
    if (STEP == STEP_HARDSWISH) {                                                                      \
      const V one = zero + 1.0f, v = *x * (1.0f / 6.0f) + 0.5f, m = ATR_SELECT(V, mask, v < one, v, one); \
      *x *= ATR_SELECT(V, mask, m > zero, m, zero);                                                    \
    }                                                                                                  \
  }
ATR_STORE_STEP(store_step, v16, 16)
ATR_STORE_STEP(store_step8, atr_v8, 8)
#undef ATR_STORE_STEP
#undef ATR_SELECT
// Clip's bounds read afresh where the sums are stored: held in registers
// from the row's start (the compiler's choice, broadcast once), they leave
// the kernels' sums and inputs fewer registers, and blocks of a depthwise
// convolution and a 1x1 took 0.5 to 1% longer.
static inline __attribute__((always_inline)) float bound_at_store(const int STEP, float x) {
  if (STEP == STEP_CLIP) __asm__ volatile("" : "+m"(x));
  return x;
}
static inline __attribute__((always_inline)) float store_step1(float x, const int STEP, float a, float b) {
  return STEP == STEP_RELU ? relu1(x) : STEP == STEP_CLIP ? clip1(x, a, b) : STEP == STEP_HARDSWISH ? hardswish1(x) : x;
}

// P neighbouring output pixels (P constant at each call) of a depthwise
// row, every tap inside the row: `at` is the first pixel's first input
// offset, `tap` the offset between taps and `step` between the pixels.
// Each pixel's sum is one chain of FMAs, so P chains are in flight.
// With S (constant at each call) 1 or 2, the taps are adjacent pixels
// (dilation 1, `tap` the pixel stride) and the pixels S taps apart: each
// kernel row then loads the (P - 1) S + kw input vectors under the pixels
// once and reuses them across the taps, instead of one load per tap and
// pixel (the loads, not the FMAs, bound the plain loop). With D = 2 and
// S = 1 (dilation 2 at stride 1, `tap` two pixels), the even and the odd
// pixels each slide along their own phase of the row, a tap apart: 16
// loads for 8 pixels of a 5-wide row where each tap was a load (40), and
// the 8 addresses of the general loop no longer spill (AVX-512, AMD EPYC
// family 25: LR-ASPP's dilated 5x5 over 20x20x960 with the expansion
// before it 1.61-1.75 -> 1.44-1.48 ms, the model 0.963 of its time at 1
// thread). With S = 0 every tap of every pixel is its own load. At most 8 + 18 + 5 of the 32 registers (P = 8, and kw = 3
// at stride 2).
static inline __attribute__((always_inline)) void depthwise_pixels(const size_t P, float *restrict o,
                                                                   const float *const *rows,
                                                                   const float *restrict weights,
                                                                   const float *restrict bias, size_t c, size_t c0,
                                                                   size_t c1, ptrdiff_t kh, const ptrdiff_t kw,
                                                                   ptrdiff_t at, ptrdiff_t tap, ptrdiff_t step,
                                                                   const ptrdiff_t S, const ptrdiff_t D, const int STEP,
                                                                   float lo, float hi) {
  // Input vectors per phase: pixel j slides along phase j % D's.
  const ptrdiff_t per = S ? ((ptrdiff_t)P / D - 1) * S + kw : 0;
  for (size_t ch = c0; ch < c1;) {
    if (ch + 16 > c1) ch = c1 - 16;
    v16 s[8];
    const v16 start = bias ? V16_LOAD(bias + ch) : (v16){0};
#pragma clang loop unroll(full)
    for (size_t j = 0; j < P; j++) s[j] = start;
    for (ptrdiff_t ky = 0; ky < kh; ky++) {
      if (!rows[ky]) continue;
      const float *x = rows[ky] + at + ch;
      const float *k = weights + ky * kw * c + ch;
      if (S) {
        v16 line[7 * 2 + 5];
#pragma clang loop unroll(full)
        for (ptrdiff_t ph = 0; ph < D; ph++) {
#pragma clang loop unroll(full)
          for (ptrdiff_t m = 0; m < per; m++) line[ph * per + m] = V16_LOAD(x + ph * step + m * tap);
        }
#pragma clang loop unroll(full)
        for (ptrdiff_t kx = 0; kx < kw; kx++) {
          const v16 wk = V16_LOAD(k + kx * c);
#pragma clang loop unroll(full)
          for (ptrdiff_t j = 0; j < (ptrdiff_t)P; j++) s[j] += line[(j % D) * per + (j / D) * S + kx] * wk;
        }
        continue;
      }
      for (ptrdiff_t kx = 0; kx < kw; kx++) {
        const v16 wk = V16_LOAD(k + kx * c);
        const float *p = x + kx * tap;
#pragma clang loop unroll(full)
        for (size_t j = 0; j < P; j++) s[j] += V16_LOAD(p + (ptrdiff_t)j * step) * wk;
      }
    }
    const float low = bound_at_store(STEP, lo), high = bound_at_store(STEP, hi);
#pragma clang loop unroll(full)
    for (size_t j = 0; j < P; j++) {
      store_step(&s[j], STEP, low, high);
      V16_STORE(o + j * c + ch, s[j]);
    }
    ch += 16;
  }
}

// One kernel row's taps of `depthwise_slide8` into `sum` (a row outside
// the map, NULL, adds nothing).
static inline __attribute__((always_inline)) void slide8_row(const size_t P, atr_v8 *sum, const float *row,
                                                             const float *restrict k, size_t c, const ptrdiff_t kw,
                                                             ptrdiff_t at, ptrdiff_t tap, const ptrdiff_t S) {
  if (!row) return;
  const float *x = row + at;
  atr_v8 line[7 * 2 + 7];
#pragma clang loop unroll(full)
  for (ptrdiff_t j = 0; j < ((ptrdiff_t)P - 1) * S + kw; j++) line[j] = *(const atr_v8 *)(x + j * tap);
#pragma clang loop unroll(full)
  for (ptrdiff_t kx = 0; kx < kw; kx++) {
    const atr_v8 wk = *(const atr_v8 *)(k + kx * c);
#pragma clang loop unroll(full)
    for (ptrdiff_t j = 0; j < (ptrdiff_t)P; j++) sum[j] += line[j * S + kx] * wk;
  }
}

// P output pixels of a depthwise row, 8 channels at a time, each input
// vector loaded once per kernel row and slid across the P windows (S input
// pixels apart), one sum per pixel: P chains of FMAs. Loaded once instead
// of kw times, the rows (from L2 where three rows of a block of channels
// outgrow L1: 56 pixels of 64 channels do) come at a fraction of the
// traffic. With 16 registers of 8 floats, eight pixels' sums leave too
// few for the (P - 1) * S + kw input vectors: the compiler takes the rest
// as memory operands of the FMAs, which still beats four pixels, with or
// without a second set of sums for the odd kernel rows (more chains, but
// as many loads per FMA). One row in cache, AVX2, AMD EPYC family 23
// model 1, four pixels with two sets of sums -> eight with one: 3x3 over
// 56 pixels of 72 channels 19.2 -> 26.8 GFLOP/s, 112 of 16 19.2 -> 26.9,
// 3x3 stride 2 16.4 -> 20.3, 5x5 14 of 480 21.7 -> 29.4, 7x7 (ConvNeXt's,
// before one pixel at a time over 16 channels) 56 of 96 19.6 -> 35.1;
// 5x5 at stride 2 is the exception (19 input vectors for eight pixels):
// four with one set, 17.8 -> 23.4. Without AVX2 (a vector of 8 is two
// registers of 4) eight pixels spill: four with one set, 13.3 -> 14.4 at
// 3x3 and 17.0 -> 19.7 at 7x7. Rows of 8 to 15 channels, one pixel at a
// time before: 96 of 8 3.1 -> 21.3.
static inline __attribute__((always_inline)) void depthwise_slide8(const size_t P, float *restrict o,
                                                                   const float *const *rows,
                                                                   const float *restrict weights,
                                                                   const float *restrict bias, size_t c, size_t c0,
                                                                   size_t c1, ptrdiff_t kh, const ptrdiff_t kw,
                                                                   ptrdiff_t at, ptrdiff_t tap, const ptrdiff_t S,
                                                                   const int STEP, float lo, float hi) {
  for (size_t ch = c0; ch < c1;) {
    if (ch + 8 > c1) ch = c1 - 8;
    atr_v8 s[8];
    const atr_v8 start = bias ? *(const atr_v8 *)(bias + ch) : (atr_v8){0};
#pragma clang loop unroll(full)
    for (size_t j = 0; j < P; j++) s[j] = start;
    for (ptrdiff_t ky = 0; ky < kh; ky++) slide8_row(P, s, rows[ky], weights + ky * kw * c + ch, c, kw, at + ch, tap, S);
    const float low = bound_at_store(STEP, lo), high = bound_at_store(STEP, hi);
#pragma clang loop unroll(full)
    for (size_t j = 0; j < P; j++) {
      store_step8(&s[j], STEP, low, high);
      *(atr_v8 *)(o + j * c + ch) = s[j];
    }
    ch += 8;
  }
}

// One block of P pixels by depthwise_slide8, the kernel width (3, 5 or
// 7) and the stride (1 or 2; 7 only at 1) made constants for it.
static inline __attribute__((always_inline)) void slide_block(const size_t P, float *restrict o,
                                                              const float *const *rows, const float *restrict weights,
                                                              const float *restrict bias, size_t c, size_t c0,
                                                              size_t c1, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t at,
                                                              ptrdiff_t tap, ptrdiff_t S, const int STEP, float lo,
                                                              float hi) {
  if (kw == 3 && S == 1) depthwise_slide8(P, o, rows, weights, bias, c, c0, c1, kh, 3, at, tap, 1, STEP, lo, hi);
  else if (kw == 3) depthwise_slide8(P, o, rows, weights, bias, c, c0, c1, kh, 3, at, tap, 2, STEP, lo, hi);
  else if (kw == 5 && S == 1) depthwise_slide8(P, o, rows, weights, bias, c, c0, c1, kh, 5, at, tap, 1, STEP, lo, hi);
  else if (kw == 5) depthwise_slide8(P, o, rows, weights, bias, c, c0, c1, kh, 5, at, tap, 2, STEP, lo, hi);
  else depthwise_slide8(P, o, rows, weights, bias, c, c0, c1, kh, 7, at, tap, 1, STEP, lo, hi);
}

// One output pixel's sums over the channels from `ch` (as many as V
// holds, a vector type), from the bias, for the taps [kx0, kx1) that land
// inside the input row, into `sum` (a pointer: a vector returned by value
// changes the calling convention where the build's ISA lacks its width):
// even and odd taps in two accumulators, so that their FMAs overlap.
#define ATR_PIXEL_SUM(NAME, V)                                                                                      \
  static inline __attribute__((always_inline)) void NAME(V *sum, const float *const *rows,                          \
                                                         const float *restrict weights, const float *restrict bias, \
                                                         const atr_conv_geometry *g, size_t c, size_t ch,           \
                                                         ptrdiff_t ix0, ptrdiff_t kx0, ptrdiff_t kx1) {             \
    const ptrdiff_t kw = g->kernel_w, ps = g->pixel_stride;                                                         \
    V s = {0}, t = {0};                                                                                             \
    if (bias) s = *(const V *)(bias + ch);                                                                          \
    for (ptrdiff_t ky = 0; ky < g->kernel_h; ky++) {                                                                \
      if (!rows[ky]) continue;                                                                                      \
      const float *x = rows[ky] + ch, *k = weights + ky * kw * c + ch;                                              \
      ptrdiff_t kx = kx0;                                                                                           \
      for (; kx + 1 < kx1; kx += 2) {                                                                               \
        s += *(const V *)(x + (ix0 + kx * g->dilation_w) * ps) * *(const V *)(k + kx * c);                          \
        t += *(const V *)(x + (ix0 + (kx + 1) * g->dilation_w) * ps) * *(const V *)(k + (kx + 1) * c);              \
      }                                                                                                             \
      if (kx < kx1) s += *(const V *)(x + (ix0 + kx * g->dilation_w) * ps) * *(const V *)(k + kx * c);              \
    }                                                                                                               \
    *sum = s + t;                                                                                                   \
  }
ATR_PIXEL_SUM(pixel_sum16, v16)
ATR_PIXEL_SUM(pixel_sum8, atr_v8)
#undef ATR_PIXEL_SUM

// One output pixel of a depthwise row over channels [c0, c1), with the
// taps [kx0, kx1) that land inside the input row.
static inline __attribute__((always_inline)) void depthwise_pixel(float *restrict o, const float *const *rows,
                                                                  const float *restrict weights,
                                                                  const float *restrict bias,
                                                                  const atr_conv_geometry *g, size_t c, size_t first,
                                                                  size_t c0, size_t c1, ptrdiff_t ix0, ptrdiff_t kx0,
                                                                  ptrdiff_t kx1, const int STEP, float lo, float hi) {
  const ptrdiff_t kw = g->kernel_w, kh = g->kernel_h;
  size_t ch = c0;
  // 64 channels at a time in four accumulators, then 16 (or 8), then one.
  for (; ch + 64 <= c1; ch += 64) {
    v16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    if (bias) { s0 = V16_LOAD(bias + ch); s1 = V16_LOAD(bias + ch + 16); s2 = V16_LOAD(bias + ch + 32); s3 = V16_LOAD(bias + ch + 48); }
    for (ptrdiff_t ky = 0; ky < kh; ky++) {
      if (!rows[ky]) continue;
      for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
        const float *x = rows[ky] + (ix0 + kx * g->dilation_w) * g->pixel_stride + ch;
        const float *k = weights + (ky * kw + kx) * c + ch;
        s0 += V16_LOAD(x) * V16_LOAD(k); s1 += V16_LOAD(x + 16) * V16_LOAD(k + 16);
        s2 += V16_LOAD(x + 32) * V16_LOAD(k + 32); s3 += V16_LOAD(x + 48) * V16_LOAD(k + 48);
      }
    }
    store_step(&s0, STEP, lo, hi); store_step(&s1, STEP, lo, hi); store_step(&s2, STEP, lo, hi); store_step(&s3, STEP, lo, hi);
    V16_STORE(o + ch, s0); V16_STORE(o + ch + 16, s1); V16_STORE(o + ch + 32, s2); V16_STORE(o + ch + 48, s3);
  }
  // Then 16 at a time, the rest as the last 16 channels again (a few
  // recomputed, none done one by one) when the range from `first` has 16
  // or more; a range of 8 to 15 likewise 8 at a time (one by one,
  // PP-OCR's first block, 8 channels at 24x96, took 0.17 ms).
  while (ch < c1 && c1 - first >= 16) {
    if (ch + 16 > c1) ch = c1 - 16;
    v16 s;
    pixel_sum16(&s, rows, weights, bias, g, c, ch, ix0, kx0, kx1);
    store_step(&s, STEP, lo, hi);
    V16_STORE(o + ch, s);
    ch += 16;
  }
  while (ch < c1 && c1 - first >= 8) {
    if (ch + 8 > c1) ch = c1 - 8;
    atr_v8 s;
    pixel_sum8(&s, rows, weights, bias, g, c, ch, ix0, kx0, kx1);
    store_step8(&s, STEP, lo, hi);
    *(atr_v8 *)(o + ch) = s;
    ch += 8;
  }
  for (; ch < c1; ch++) {
    float s = bias ? bias[ch] : 0.0f;
    for (ptrdiff_t ky = 0; ky < kh; ky++) {
      if (!rows[ky]) continue;
      for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
        s += rows[ky][(ix0 + kx * g->dilation_w) * g->pixel_stride + ch] * weights[(ky * kw + kx) * c + ch];
      }
    }
    o[ch] = store_step1(s, STEP, lo, hi);
  }
}

static inline __attribute__((always_inline)) void depthwise_row_with(float *restrict out, const float *const *rows,
                                                                     const float *restrict weights,
                                                                     const float *restrict bias,
                                                                     const atr_conv_geometry *g, size_t channels,
                                                                     size_t first, size_t end, const int STEP,
                                                                     float lo, float hi) {
  const ptrdiff_t kw = g->kernel_w, kh = g->kernel_h;
  const size_t c = channels;
  const ptrdiff_t dx = g->dilation_w, step = g->stride_w * (ptrdiff_t)g->pixel_stride;
  const ptrdiff_t ps = (ptrdiff_t)g->pixel_stride, tap = dx * ps;
  // Where registers hold 8 floats or fewer, dilation 1 and the common
  // kernel widths and strides take the sliding kernel of 8 channels
  // (`slide`, its pixels per block), the rest blocks of 4 pixels by 16
  // channels. With 32 registers of 16 floats, blocks of 8 pixels by 16
  // channels: eight chains of FMAs keep both FMA units of an AVX-512 core
  // busy, where four vectors of 16 in flight leave half of them idle.
  const int slides = !ATR_HAS_AVX512 && tap == ps &&
                     ((step == ps && (kw == 3 || kw == 5 || kw == 7)) || (step == 2 * ps && (kw == 3 || kw == 5)));
  const size_t slide = !slides ? 0 : ATR_EIGHT_LANES && !(kw == 5 && step == 2 * ps) ? 8 : 4;
  const size_t wide = ATR_HAS_AVX512 ? 8 : slide ? slide : 4;
  // Channels a block of pixels needs: one vector of the kernel's.
  const size_t least = slide ? 8 : 16;
  // Blocks of 64 channels pass along the whole row, so a block's weights
  // (kh * kw * 64 floats) stay in L1 from one pixel to the next instead of
  // every pixel reading all the weights again from further out.
  enum { CHANNEL_BLOCK = 64 };
  for (size_t c0 = first; c0 < end; c0 += CHANNEL_BLOCK) {
    const size_t c1 = end - c0 < CHANNEL_BLOCK ? end : c0 + CHANNEL_BLOCK;
    for (size_t ox = 0; ox < g->output_w; ox++) {
      ptrdiff_t ix0 = (ptrdiff_t)ox * g->stride_w - g->pad_left;
      // Eight or four output pixels whose taps all land inside the row
      // share each weight load, a vector of channels at a time (the last
      // vector again for a rest). Near the row's end, a block that ends
      // with the row (writing a few pixels again) when its taps are
      // inside, as they are in rows padded with zeros.
      size_t p = 0;
      if (end - first >= least) {
        for (size_t q = wide; q >= 4 && !p; q /= 2) {
          if (pixels_inside(g, ox, ix0, q)) {
            p = q;
          } else if (ox + q > g->output_w && g->output_w >= q) {
            const size_t start = g->output_w - q;
            const ptrdiff_t at = (ptrdiff_t)start * g->stride_w - g->pad_left;
            if (pixels_inside(g, start, at, q)) {
              p = q;
              ox = start;
              ix0 = at;
            }
          }
        }
      }
      float *o = out + ox * c;
      if (p) {
        const float *const *r = rows;
        const ptrdiff_t at = ix0 * ps;
        // Each input vector loaded once per kernel row where it slides
        // (see depthwise_slide8 and depthwise_pixels); otherwise the
        // common widths with the tap loop unrolled (its count known here).
        const ptrdiff_t S = step / ps;
        if (slide && p == 8) slide_block(8, o, r, weights, bias, c, c0, c1, kh, kw, at, tap, S, STEP, lo, hi);
        else if (slide) slide_block(4, o, r, weights, bias, c, c0, c1, kh, kw, at, tap, S, STEP, lo, hi);
        else if (p == 8 && tap == ps && kw == 3 && S == 1) depthwise_pixels(8, o, r, weights, bias, c, c0, c1, kh, 3, at, tap, step, 1, 1, STEP, lo, hi);
        else if (p == 8 && tap == ps && kw == 5 && S == 1) depthwise_pixels(8, o, r, weights, bias, c, c0, c1, kh, 5, at, tap, step, 1, 1, STEP, lo, hi);
        else if (p == 8 && tap == ps && kw == 3 && S == 2) depthwise_pixels(8, o, r, weights, bias, c, c0, c1, kh, 3, at, tap, step, 2, 1, STEP, lo, hi);
        else if (p == 8 && tap == 2 * ps && kw == 3 && S == 1) depthwise_pixels(8, o, r, weights, bias, c, c0, c1, kh, 3, at, tap, step, 1, 2, STEP, lo, hi);
        else if (p == 8 && tap == 2 * ps && kw == 5 && S == 1) depthwise_pixels(8, o, r, weights, bias, c, c0, c1, kh, 5, at, tap, step, 1, 2, STEP, lo, hi);
        else if (p == 8) {
          if (kw == 3) depthwise_pixels(8, o, r, weights, bias, c, c0, c1, kh, 3, at, tap, step, 0, 1, STEP, lo, hi);
          else if (kw == 5) depthwise_pixels(8, o, r, weights, bias, c, c0, c1, kh, 5, at, tap, step, 0, 1, STEP, lo, hi);
          else depthwise_pixels(8, o, r, weights, bias, c, c0, c1, kh, kw, at, tap, step, 0, 1, STEP, lo, hi);
        } else {
          if (kw == 3) depthwise_pixels(4, o, r, weights, bias, c, c0, c1, kh, 3, at, tap, step, 0, 1, STEP, lo, hi);
          else if (kw == 5) depthwise_pixels(4, o, r, weights, bias, c, c0, c1, kh, 5, at, tap, step, 0, 1, STEP, lo, hi);
          else depthwise_pixels(4, o, r, weights, bias, c, c0, c1, kh, kw, at, tap, step, 0, 1, STEP, lo, hi);
        }
        ox += p - 1;
        continue;
      }
      ptrdiff_t kx0, kx1;
      taps_inside(g, ix0, &kx0, &kx1);
      depthwise_pixel(o, rows, weights, bias, g, c, first, c0, c1, ix0, kx0, kx1, STEP, lo, hi);
    }
  }
}

void atr_depthwise_row(float *restrict out, const float *const *rows, const float *restrict weights,
                       const float *restrict bias, const atr_conv_geometry *g, size_t channels, size_t first,
                       size_t count, const atr_pointwise_step *steps, size_t nsteps) {
  // The first step where the stores can take it, the rest in a pass after.
  // HardSwish's constants at the stores of kernels wider than 3 where
  // registers hold 8 floats or fewer pushed the sliding kernel's sums out
  // of the 16 registers: 5x5 rows in cache took 1.2 to 1.4 times as long
  // as with HardSwish in the pass after, which costs 3x3 rows 1.03 to 1.1
  // times theirs (AMD EPYC family 23 model 1, AVX2; LR-ASPP's four 5x5
  // blocks at 20x20 0.985 of their time).
  atr_pointwise_op op = nsteps ? steps[0].op : ATR_PW_AFFINE;
  if (op == ATR_PW_HARDSWISH && !ATR_HAS_AVX512 && g->kernel_w > 3) op = ATR_PW_AFFINE;
  const float a = nsteps ? steps[0].a : 0.0f, b = nsteps ? steps[0].b : 0.0f;
  const size_t end = first + count;
  switch (op) {
  case ATR_PW_RELU: depthwise_row_with(out, rows, weights, bias, g, channels, first, end, STEP_RELU, a, b); break;
  case ATR_PW_CLIP: depthwise_row_with(out, rows, weights, bias, g, channels, first, end, STEP_CLIP, a, b); break;
  case ATR_PW_HARDSWISH: depthwise_row_with(out, rows, weights, bias, g, channels, first, end, STEP_HARDSWISH, a, b); break;
  default: depthwise_row_with(out, rows, weights, bias, g, channels, first, end, STEP_NONE, a, b); break;
  }
  const size_t fused = stores_step(op);
  atr_pointwise(out + first, (size_t)g->output_w, count, channels, steps + fused, nsteps - fused);
}

// P output pixels (P constant at each call) of one group of 8 output
// channels: one accumulator of 8 per pixel, each weight vector loaded once
// for all P pixels and each input value broadcast against it. Taps
// [kx0, kx1) of each row land inside the input row for all P pixels.
static inline __attribute__((always_inline)) void group8_pixels(const size_t P, float *restrict o, size_t cout,
                                                                const float *const *rows, const float *restrict k,
                                                                const float *bias, const atr_conv_geometry *g,
                                                                size_t cin_g, ptrdiff_t x0, ptrdiff_t kx0,
                                                                ptrdiff_t kx1, ptrdiff_t step) {
  // A single pixel keeps four sums over alternating input channels, so
  // its FMAs do not each wait for the one before.
  enum { SPLIT = 4 };
  atr_v8 acc[8], part[SPLIT] = {{0}};
  const atr_v8 start = bias ? *(const atr_v8 *)bias : (atr_v8){0};
#pragma clang loop unroll(full)
  for (size_t j = 0; j < P; j++) acc[j] = start;
  const ptrdiff_t ps = g->pixel_stride, dx = g->dilation_w * ps;
  for (ptrdiff_t ky = 0; ky < g->kernel_h; ky++) {
    if (!rows[ky]) continue;
    for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
      const float *x = rows[ky] + x0 + kx * dx;
      const float *kt = k + (size_t)(ky * g->kernel_w + kx) * cin_g * 8;
      size_t ci = 0;
      if (P == 1) {
        for (; ci + SPLIT <= cin_g; ci += SPLIT) {
#pragma clang loop unroll(full)
          for (size_t s = 0; s < SPLIT; s++) part[s] += x[ci + s] * *(const atr_v8 *)(kt + (ci + s) * 8);
        }
      }
      for (; ci < cin_g; ci++) {
        const atr_v8 wv = *(const atr_v8 *)(kt + ci * 8);
#pragma clang loop unroll(full)
        for (size_t j = 0; j < P; j++) acc[j] += x[(ptrdiff_t)j * step + (ptrdiff_t)ci] * wv;
      }
    }
  }
  if (P == 1) acc[0] += (part[0] + part[1]) + (part[2] + part[3]);
#pragma clang loop unroll(full)
  for (size_t j = 0; j < P; j++) *(atr_v8 *)(o + j * cout) = acc[j];
}

// Requests into L2 the floats [from, to) of the `count` rows after
// `last` (rows of `row_floats` floats). Out of line: inlined into the
// pixel loop it cost the loop registers.
static __attribute__((noinline)) void prefetch_rows(const float *last, ptrdiff_t row_floats, ptrdiff_t count,
                                                    ptrdiff_t from, ptrdiff_t to) {
  for (ptrdiff_t j = 1; j <= count; j++) {
    const char *r = (const char *)(last + j * row_floats);
    for (ptrdiff_t at = from * (ptrdiff_t)sizeof(float); at < to * (ptrdiff_t)sizeof(float); at += 64) {
      __builtin_prefetch(r + at, 0, 1);
    }
  }
}

void atr_conv_group8_row(float *restrict out, const float *const *rows, const float *restrict weights,
                         const float *restrict bias, const atr_conv_geometry *g, size_t cin, size_t groups) {
  const size_t cin_g = cin / groups, cout = groups * 8, taps = (size_t)(g->kernel_h * g->kernel_w);
  const ptrdiff_t ps = g->pixel_stride, step = g->stride_w * ps;
  // A strided window's next output row reads stride_h rows this one does
  // not, often just written by the layer before and out of cache: they
  // are requested a block of pixels at a time, ahead of their loads
  // (RegNet-Y-400MF's 3x3 groups at stride 2 from maps of 112x112x48 and
  // 56x56x104 took 0.85 to 0.9 of the time without). At stride 1 the
  // requests only took the loads' slots (14x14x208: 1.2 times the time).
  const float *last = NULL;  // the lowest row this one reads; none at stride 1
  if (g->stride_h > 1) {
    for (ptrdiff_t ky = g->kernel_h - 1; ky >= 0 && !last; ky--) last = rows[ky];
  }
  size_t ox = 0;
  while (ox < g->output_w) {
    const ptrdiff_t ix0 = (ptrdiff_t)ox * g->stride_w - g->pad_left;
    if (last) prefetch_rows(last, g->input_w * ps, g->stride_h, (ix0 < 0 ? 0 : ix0) * ps, (ix0 + 8 * g->stride_w) * ps);
    // The longest run of up to 8 pixels whose taps all land inside the
    // row (a run of 8, then 4 and single pixels left up to 3 pixels a
    // row to the single-pixel loop: RegNet's 3x3 groups 1.1 to 1.3 times
    // as long); single pixels at the borders, with the taps inside.
    const size_t run = pixels_inside_run(g, ox, ix0, 8), p = run ? run : 1;
    ptrdiff_t kx0, kx1;
    taps_inside(g, ix0, &kx0, &kx1);
    for (size_t grp = 0; grp < groups; grp++) {
      float *o = out + ox * cout + grp * 8;
      const float *k = weights + grp * taps * cin_g * 8, *b = bias ? bias + grp * 8 : NULL;
      const ptrdiff_t x0 = ix0 * ps + (ptrdiff_t)(grp * cin_g);
      // Groups of 8 input channels (RegNet's) as a constant: the loop over
      // them unrolled, without its counter and address arithmetic (rows in
      // cache, AVX2, AMD EPYC family 23 model 1: 28 x 104 at stride 1 and
      // 2 1.08 times as fast, 56 x 48 at stride 2 1.03).
#define G8(P) if (cin_g == 8) group8_pixels(P, o, cout, rows, k, b, g, 8, x0, kx0, kx1, step); \
              else group8_pixels(P, o, cout, rows, k, b, g, cin_g, x0, kx0, kx1, step); break;
      switch (p) {
      case 8: G8(8) case 7: G8(7) case 6: G8(6) case 5: G8(5) case 4: G8(4) case 3: G8(3) case 2: G8(2)
      default: group8_pixels(1, o, cout, rows, k, b, g, cin_g, x0, kx0, kx1, step);
      }
#undef G8
    }
    ox += p;
  }
}

// The planar depthwise kernel keeps each input row it reads zero-padded
// and split by column phase (x mod stride_w), so that every tap of a
// vector of 16 adjacent outputs is one contiguous load: phase p holds the
// padded row's columns p, p + sw, p + 2 sw, ...
static inline size_t depthwise_phase_length(const atr_conv_geometry *g) {
  const size_t padded = (size_t)((g->output_w - 1) * g->stride_w + (g->kernel_w - 1) * g->dilation_w + 1);
  const size_t length = (padded + g->stride_w - 1) / g->stride_w;
  return (length + 15) / 16 * 16;  // whole vectors
}

static inline size_t depthwise_ring_rows(const atr_conv_geometry *g) {
  return (size_t)((g->kernel_h - 1) * g->dilation_h + 1);
}

size_t atr_depthwise_plane_scratch(const atr_conv_geometry *g) {
  // The ring of input rows plus one zero row for the padding above and below.
  return (depthwise_ring_rows(g) + 1) * (size_t)g->stride_w * depthwise_phase_length(g) * sizeof(float);
}

// One input row into `line` as its stride_w phases of `length` columns,
// zero where the padded row is outside the input.
static inline __attribute__((always_inline)) void depthwise_load_row(float *restrict line, const float *restrict row,
                                                                       const atr_conv_geometry *g, size_t length) {
  const ptrdiff_t sw = g->stride_w, w = g->input_w, left = g->pad_left;
  const ptrdiff_t padded = (ptrdiff_t)length * sw;
  if (sw == 1) {
    // Padded index j holds column j - left.
    const ptrdiff_t inside0 = left < padded ? left : padded;
    const ptrdiff_t inside1 = w + left < padded ? w + left : padded;
    for (ptrdiff_t j = 0; j < inside0; j++) line[j] = 0.0f;
    if (inside1 > inside0) memcpy(line + inside0, row, (size_t)(inside1 - inside0) * sizeof(float));
    for (ptrdiff_t j = inside1 > inside0 ? inside1 : inside0; j < padded; j++) line[j] = 0.0f;
    return;
  }
  for (ptrdiff_t p = 0; p < sw; p++) {
    float *phase = line + (size_t)p * length;
    for (ptrdiff_t j = 0; j < (ptrdiff_t)length; j++) {
      const ptrdiff_t x = j * sw + p - left;
      phase[j] = x >= 0 && x < w ? row[x] : 0.0f;
    }
  }
}

// V vectors of 16 adjacent outputs of a planar depthwise row from `ox`
// (V constant at each call, at most PLANE_VECTORS): V chains of FMAs
// share each weight, where two (32 outputs) left each chain's FMAs
// waiting on the one before. Eight vectors of 16 with AVX-512, as many
// registers' worth where a vector of 16 is two registers (AVX2) or four
// (SSE2, NEON). A 3x3 over 128 planes of 112x112, which is mostly the
// memory traffic of planes that outgrow the caches: 1.06 -> 0.99 ms
// (AVX-512), 0.97 -> 0.93 (AVX2), 1.34 -> 1.30 (SSE2; AMD EPYC family
// 25 model 17, medians of 5 alternating runs). Each output sums its taps
// in the same order whatever V is.
enum { PLANE_VECTORS = ATR_HAS_AVX512 ? 8 : ATR_EIGHT_LANES ? 4 : 2 };
static inline __attribute__((always_inline)) void plane_vectors(const int V, float *restrict o, const float *const *rows,
                                                                const ptrdiff_t *offsets, const float *restrict weights,
                                                                float bias, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t ox) {
  v16 s[PLANE_VECTORS];
#pragma clang loop unroll(full)
  for (int v = 0; v < V; v++) s[v] = (v16){0} + bias;
  for (ptrdiff_t ky = 0; ky < kh; ky++) {
    for (ptrdiff_t kx = 0; kx < kw; kx++) {
      const float *x = rows[ky] + offsets[kx] + ox;
      const float k = weights[ky * kw + kx];
#pragma clang loop unroll(full)
      for (int v = 0; v < V; v++) s[v] += V16_LOAD(x + 16 * v) * k;
    }
  }
#pragma clang loop unroll(full)
  for (int v = 0; v < V; v++) V16_STORE(o + ox + 16 * v, s[v]);
}

void atr_depthwise_plane(float *restrict out, const float *restrict src, const float *restrict weights, float bias,
                         const atr_conv_geometry *g, void *scratch) {
  const ptrdiff_t h = g->input_h, ow = g->output_w, kh = g->kernel_h, kw = g->kernel_w;
  const ptrdiff_t sw = g->stride_w, dw = g->dilation_w;
  const size_t length = depthwise_phase_length(g), slot = (size_t)sw * length;
  const size_t ring = depthwise_ring_rows(g);
  float *base = scratch;  // (ring + 1, sw, length)
  float *zero = base + ring * slot;
  memset(zero, 0, slot * sizeof(float));
  // The input row each ring slot holds: an output row's rows span at most
  // `ring` consecutive rows, so they never share a slot.
  ptrdiff_t holds[ring];
  for (size_t r = 0; r < ring; r++) holds[r] = -1;
  const float *rows[kh];
  // Each tap's offset into a phased row: phase (kx dw) mod sw, column (kx dw) / sw.
  ptrdiff_t offsets[kw];
  for (ptrdiff_t kx = 0; kx < kw; kx++) offsets[kx] = (kx * dw) % sw * (ptrdiff_t)length + (kx * dw) / sw;
  for (ptrdiff_t oy = 0; oy < g->output_h; oy++) {
    const ptrdiff_t iy0 = oy * g->stride_h - g->pad_top;
    for (ptrdiff_t ky = 0; ky < kh; ky++) {
      const ptrdiff_t iy = iy0 + ky * g->dilation_h;
      if (iy < 0 || iy >= h) {
        rows[ky] = zero;
        continue;
      }
      const size_t r = (size_t)iy % ring;
      float *line = base + r * slot;
      if (holds[r] != iy) {
        depthwise_load_row(line, src + iy * g->input_w, g, length);
        holds[r] = iy;
      }
      rows[ky] = line;
    }
    float *o = out + oy * ow;
    // PLANE_VECTORS vectors of outputs at a time, then half as many, the
    // last such block overlapping the one before it, then one vector
    // likewise; rows narrower than a vector one output at a time.
    ptrdiff_t ox = 0;
    for (; ox + 16 * PLANE_VECTORS <= ow; ox += 16 * PLANE_VECTORS) {
      plane_vectors(PLANE_VECTORS, o, rows, offsets, weights, bias, kh, kw, ox);
    }
    for (; ox < ow && ow >= 8 * PLANE_VECTORS; ox += 8 * PLANE_VECTORS) {
      if (ox + 8 * PLANE_VECTORS > ow) ox = ow - 8 * PLANE_VECTORS;
      plane_vectors(PLANE_VECTORS / 2, o, rows, offsets, weights, bias, kh, kw, ox);
    }
    for (; ox < ow && ow >= 16; ox += 16) {
      if (ox + 16 > ow) ox = ow - 16;
      plane_vectors(1, o, rows, offsets, weights, bias, kh, kw, ox);
    }
    for (; ox < ow; ox++) {
      float s = bias;
      for (ptrdiff_t ky = 0; ky < kh; ky++) {
        for (ptrdiff_t kx = 0; kx < kw; kx++) s += rows[ky][offsets[kx] + ox] * weights[ky * kw + kx];
      }
      o[ox] = s;
    }
  }
}

void atr_add_rows(float *restrict out, const float *const *rows, size_t nrows, size_t count) {
  for (size_t r = 0; r < nrows; r++) {
    const float *restrict x = rows[r];
    for (size_t i = 0; i < count; i++) out[i] += x[i];
  }
}

void atr_transposed_gather_row(float *restrict out, size_t out_pixel_stride, const float *restrict bias,
                               size_t cout_g, const float *const *rows, const ptrdiff_t *kys, size_t nrows,
                               const atr_conv_geometry *g) {
  const size_t row_length = (size_t)(g->kernel_h * g->kernel_w) * cout_g;
  for (ptrdiff_t ox = 0; ox < g->output_w; ox++) {
    float *restrict o = out + ox * out_pixel_stride;
    for (size_t c = 0; c < cout_g; c++) o[c] = bias[c];
    for (size_t r = 0; r < nrows; r++) {
      for (ptrdiff_t kx = 0; kx < g->kernel_w; kx++) {
        // ox = ix * stride - pad + kx * dilation, solved for ix.
        const ptrdiff_t tx = ox + g->pad_left - kx * g->dilation_w;
        if (tx < 0 || tx % g->stride_w != 0 || tx / g->stride_w >= g->input_w) continue;
        const float *restrict x = rows[r] + (size_t)(tx / g->stride_w) * row_length + (size_t)(kys[r] * g->kernel_w + kx) * cout_g;
        for (size_t c = 0; c < cout_g; c++) o[c] += x[c];
      }
    }
  }
}

#include <math.h>
#include <stdint.h>
#include <string.h>

// e^x as p 2^n, branch-free so its loops vectorize: x clamped to [low,
// high], x = n ln2 + r with |r| <= ln2/2 (ln2 split in two for exactness),
// p = e^r by Cephes' degree-6 polynomial; p is returned, n through `n`.
// Relative error below 2e-7. Written for a short
// dependency chain, which is what bounds a loop of it (each vector's steps
// wait on each other; out-of-order execution overlaps only a few
// vectors): the clamp as max and min, n rounded by adding and
// subtracting 1.5 * 2^23 (whose low mantissa bits are then n), the
// polynomial in Estrin's form. With the loops below interleaving four
// vectors, SiLU over rows in L2 took 0.66 of the time of the Horner form
// rounded by floorf (AVX2, AMD EPYC), EfficientNet-B0 0.92 and YOLOX-S
// 0.94 (1 thread, six alternating runs).
static inline __attribute__((always_inline)) float exp_parts(float x, float low, float high, int32_t *n) {
  const float above = low > x ? low : x;
  x = high < above ? high : above;
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float whole = shifted - 12582912.0f;
  const float r = (x - whole * 0.693359375f) - whole * -2.12194440e-4f;
  const float r2 = r * r;
  const float q01 = 5.0000001201e-1f + r * 1.6666665459e-1f, q23 = 4.1665795894e-2f + r * 8.3334519073e-3f,
              q45 = 1.3981999507e-3f + r * 1.9875691500e-4f;
  // n from the shift's low mantissa bits (n + 2^22 there); garbage for a
  // NaN, whose p is NaN whatever it is multiplied by.
  int32_t bits;
  memcpy(&bits, &shifted, sizeof bits);
  *n = (int32_t)(((uint32_t)bits + 256u) & 511u) - 256;
  return r2 * (q01 + r2 * (q23 + r2 * q45)) + r + 1.0f;
}

// 2^e as a float, for e within [-126, 127] (other values give some float).
static inline __attribute__((always_inline)) float power_of_two(int32_t e) {
  const uint32_t bits = (uint32_t)(e + 127) << 23;
  float result;
  memcpy(&result, &bits, sizeof result);
  return result;
}

// e^x for the pointwise steps: exp_parts clamped to [-87, 88], where n +
// 127 is a normal exponent; times 2^n, a multiply rather than an add to
// p's exponent bits, so that a NaN in stays NaN whatever its payload.
static inline __attribute__((always_inline)) float exp_approx(float x) {
  int32_t n;
  const float p = exp_parts(x, -87.0f, 88.0f, &n);
  return p * power_of_two(n);
}

// e^x over the whole float range, for the Exp op itself: x clamped to
// [-104, 89] and 2^n applied as two halves, each a normal float, so that
// the product overflows to infinity past 88.72 and rounds once into the
// subnormals below -87.34, where e^x does.
static inline __attribute__((always_inline)) float exp_wide(float x) {
  int32_t n;
  const float p = exp_parts(x, -104.0f, 89.0f, &n);
  const int32_t half = n >> 1;
  return p * power_of_two(half) * power_of_two(n - half);
}

// erf as x P(x^2) / Q(x^2), P of degree 6 and Q of 4 (the coefficients
// Eigen and XLA use), x clamped to [-4, 4], past which erf is 1 in float
// (a NaN passes the clamp): absolute error below 4.2e-7 from -6 to 6,
// branch-free, one division and eleven multiply-adds. Abramowitz and
// Stegun's 7.1.26 on exp_approx (2e-7) took 1.6 times as long, a division
// and an exponential each, and made GELU 8% of ConvNeXt-T's time.
static inline __attribute__((always_inline)) float erf_approx(float x) {
  const float c = 4.0f < x ? 4.0f : -4.0f > x ? -4.0f : x, z = c * c;
  float p = -2.72614225801306e-10f;
  p = p * z + 2.77068142495902e-08f;
  p = p * z - 2.10102402082508e-06f;
  p = p * z - 5.69250639462346e-05f;
  p = p * z - 7.34990630326855e-04f;
  p = p * z - 2.95459980854025e-03f;
  p = p * z - 1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * z - 2.13374055278905e-04f;
  q = q * z - 1.68282697438203e-03f;
  q = q * z - 7.37332916720468e-03f;
  q = q * z - 1.42647390514189e-02f;
  return c * p / q;
}

// e^-x for the logistic steps (Sigmoid, SiLU), where a cheaper e^-x
// changes the result by less: x clamped to [-87, 88], -x log2(e) = n + f
// with |f| <= 1/2, 2^f by a degree-5 polynomial (a minimax fit, 9.1e-8 in
// float64, 1.8e-7 evaluated in float) times 2^n. Three multiply-adds fewer
// than exp_approx (f in one step, not r = x - n ln2 in two, and a degree
// less), and Horner's chain, which measured no slower than Estrin's here:
// SiLU over rows in L1 took 0.82 of exp_approx's time (AMD EPYC family 23
// model 1, AVX2). f carries the rounding of x log2(e) (of log2(e) alone
// with FMA, of the product too without), so the relative error of e^-x
// grows with |x|: below 3e-7 within |x| <= 17, where the logistic is
// neither 0 nor 1 in float, up to 1.1e-6 (FMA) or 3.6e-6 at |x| = 87,
// where the logistic is below 1e-29 or 1 exactly. Both steps stay within
// a tenth of the bound their test holds them to.
static inline __attribute__((always_inline)) float exp_neg_logistic(float x) {
  const float above = -88.0f > x ? -88.0f : x;
  x = 87.0f < above ? 87.0f : above;
  const float shifted = x * -1.44269504088896341f + 12582912.0f;
  const float whole = shifted - 12582912.0f;
  const float f = x * -1.44269504088896341f - whole;
  float p = 1.3264722447840493e-3f;
  p = p * f + 9.671512969358566e-3f;
  p = p * f + 5.550733759054807e-2f;
  p = p * f + 2.4022242078187292e-1f;
  p = p * f + 6.931469775881437e-1f;
  p = p * f + 1.0f;
  // 2^n from the shift's low mantissa bits (n + 2^22 there; the 2^22
  // leaves the word in the shift by 23), a multiply so that a NaN stays NaN.
  int32_t bits;
  memcpy(&bits, &shifted, sizeof bits);
  return p * power_of_two(bits);
}

// tanh(x) = 1 - 2 / (e^2x + 1), on exp_approx.
static inline __attribute__((always_inline)) float tanh_approx(float x) {
  return 1.0f - 2.0f / (exp_approx(2.0f * x) + 1.0f);
}

// tanh(x) within 7 float ulps (4.1e-7 absolute, near 1), measured over
// every float from 0 to 20 (and so, being odd, from -20), branch-free: x
// clamped to [-9, 9] (past which tanh is 1 in float, and a NaN passes the
// clamp), then a rational function, x times an even polynomial of degree 12 over one of
// degree 6: one division and eleven multiply-adds, against the exp form's
// exponential, division and Cephes polynomial near 0 computed both, which
// took 2.4 times ONNX Runtime's time. Below 0.0004 it is x itself, which
// there is tanh(x) rounded (x^3 / 3 is under half an ulp of x).
static inline __attribute__((always_inline)) float tanh_step(float x) {
  const float c = 9.0f < x ? 9.0f : x < -9.0f ? -9.0f : x, z = c * c;
  float p = -2.76076847742355e-16f;
  p = p * z + 2.00018790482477e-13f;
  p = p * z - 8.60467152213735e-11f;
  p = p * z + 5.12229709037114e-08f;
  p = p * z + 1.48572235717979e-05f;
  p = p * z + 6.37261928875436e-04f;
  p = p * z + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * z + 1.18534705686654e-04f;
  q = q * z + 2.26843463243900e-03f;
  q = q * z + 4.89352518554385e-03f;
  const float r = c * p / q;
  return fabsf(x) < 0.0004f ? x : r;
}

// The steps built on exp_approx: four vectors at a time, so that each
// waits on its own chain while the others' run (see exp_approx).
#define ATR_INTERLEAVE _Pragma("clang loop interleave_count(4)")

// Each step runs over a chunk small enough to stay in L1, so a chain of
// steps costs one pass over memory, and each step's loop vectorizes.
enum { POINTWISE_CHUNK = 512 };

static inline __attribute__((always_inline)) void pointwise_chunk(float *restrict x, size_t n,
                                                                   const atr_pointwise_step *steps, size_t nsteps) {
  for (size_t s = 0; s < nsteps; s++) {
    const float a = steps[s].a, b = steps[s].b;
    switch (steps[s].op) {
      case ATR_PW_RELU: for (size_t i = 0; i < n; i++) x[i] = relu1(x[i]); break;
      case ATR_PW_CLIP: for (size_t i = 0; i < n; i++) x[i] = clip1(x[i], a, b); break;
      case ATR_PW_AFFINE: for (size_t i = 0; i < n; i++) x[i] = x[i] * a + b; break;
      case ATR_PW_HARDSWISH: for (size_t i = 0; i < n; i++) x[i] = hardswish1(x[i]); break;
      case ATR_PW_HARDSIGMOID:
        for (size_t i = 0; i < n; i++) {
          const float v = a * x[i] + b, m = v < 1.0f ? v : 1.0f;
          x[i] = m > 0.0f ? m : 0.0f;
        }
        break;
      case ATR_PW_LEAKYRELU: for (size_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? a * x[i] : x[i]; break;
      case ATR_PW_SIGMOID:
        ATR_INTERLEAVE for (size_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + exp_neg_logistic(x[i])); break;
      case ATR_PW_SILU:
        ATR_INTERLEAVE for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + exp_neg_logistic(x[i])); break;
      case ATR_PW_GELU:
        ATR_INTERLEAVE for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erf_approx(x[i] * 0.70710678118654752f));
        break;
      case ATR_PW_GELU_TANH:
        ATR_INTERLEAVE for (size_t i = 0; i < n; i++) {
          const float v = x[i];
          x[i] = 0.5f * v * (1.0f + tanh_approx(0.79788456080286536f * (v + 0.044715f * v * v * v)));
        }
        break;
      case ATR_PW_EXP:
        ATR_INTERLEAVE for (size_t i = 0; i < n; i++) x[i] = exp_wide(x[i]);
        break;
      case ATR_PW_TANH:
        ATR_INTERLEAVE for (size_t i = 0; i < n; i++) x[i] = tanh_step(x[i]);
        break;
      case ATR_PW_MISH:
        // tanh(log(1 + e^x)) = m / (m + 2) with m = e^x (e^x + 2); past
        // x = 20 that is 1 in float, and e^x must not overflow.
        ATR_INTERLEAVE for (size_t i = 0; i < n; i++) {
          const float e = exp_approx(fminf(x[i], 20.0f)), m = e * (e + 2.0f);
          x[i] = x[i] * m / (m + 2.0f);
        }
        break;
    }
  }
}

void atr_pointwise(float *x, size_t rows, size_t width, size_t stride, const atr_pointwise_step *steps,
                   size_t nsteps) {
  if (nsteps == 0) return;
  if (width == stride) {
    width *= rows;
    rows = 1;
  }
  for (size_t r = 0; r < rows; r++) {
    float *row = x + r * stride;
    for (size_t start = 0; start < width; start += POINTWISE_CHUNK) {
      const size_t n = width - start < POINTWISE_CHUNK ? width - start : POINTWISE_CHUNK;
      pointwise_chunk(row + start, n, steps, nsteps);
    }
  }
}

// Sum of n floats in 16 lanes (a plain loop does not vectorize: float
// addition is not reassociated).
static inline __attribute__((always_inline)) float sum_lanes(const float *x, size_t n) {
  v16 acc = {0};
  size_t i = 0;
  for (; i + 16 <= n; i += 16) acc += V16_LOAD(x + i);
  float sum = 0.0f;
  for (int k = 0; k < 16; k++) sum += acc[k];
  for (; i < n; i++) sum += x[i];
  return sum;
}

void atr_softmax_rows(float *restrict rows_data, size_t rows, size_t length, int log) {
  enum { CHUNK = 256 };
  float scratch[CHUNK];
  for (size_t r = 0; r < rows; r++) {
    float *restrict x = rows_data + r * length;
    v16 top = -__builtin_inff() - (v16){0};
    size_t i = 0;
    for (; i + 16 <= length; i += 16) top = V16_MAX(top, V16_LOAD(x + i));
    float peak = -__builtin_inff();
    for (int k = 0; k < 16; k++) peak = top[k] > peak ? top[k] : peak;
    for (; i < length; i++) peak = x[i] > peak ? x[i] : peak;
    if (log) {
      // The exps go through scratch: the row itself is still needed.
      float sum = 0.0f;
      for (size_t start = 0; start < length; start += CHUNK) {
        const size_t n = length - start < CHUNK ? length - start : CHUNK;
        ATR_INTERLEAVE for (size_t k = 0; k < n; k++) scratch[k] = exp_approx(x[start + k] - peak);
        sum += sum_lanes(scratch, n);
      }
      const float shift = peak + logf(sum);
      for (i = 0; i < length; i++) x[i] -= shift;
    } else {
      ATR_INTERLEAVE for (i = 0; i < length; i++) x[i] = exp_approx(x[i] - peak);
      const float scale = 1.0f / sum_lanes(x, length);
      for (i = 0; i < length; i++) x[i] *= scale;
    }
  }
}

// A max pool's output row at unit stride, undilated, 16 channels or more:
// each input column's maximum down the window's rows once, then each
// output's across its columns, kh + kw loads per output instead of kh *
// kw. One pass: output columns [ox0, ox1) for channels [c0, c1) (16 or
// more, the last 16 again for a rest), the column maxima `stride` floats
// apart in `column`.
static inline __attribute__((always_inline)) void max_pool_pass(float *restrict out, const float *const *rows,
                                                                 const atr_conv_geometry *g, ptrdiff_t c, ptrdiff_t c0,
                                                                 ptrdiff_t c1, ptrdiff_t ox0, ptrdiff_t ox1,
                                                                 float *restrict column, ptrdiff_t stride) {
  const ptrdiff_t w = g->input_w, kw = g->kernel_w, kh = g->kernel_h, ps = (ptrdiff_t)g->pixel_stride;
  const ptrdiff_t left = g->pad_left;
  const v16 lowest = -__builtin_inff() - (v16){0};
  // The input columns the pass reads, inside the row.
  const ptrdiff_t lo = ox0 - left > 0 ? ox0 - left : 0, hi = ox1 - 1 - left + kw < w ? ox1 - 1 - left + kw : w;
  for (ptrdiff_t ix = lo; ix < hi; ix++) {
    for (ptrdiff_t ch = c0; ch < c1; ch += 16) {
      if (ch + 16 > c1) ch = c1 - 16;
      v16 m = lowest;
      for (ptrdiff_t ky = 0; ky < kh; ky++) {
        if (rows[ky]) m = V16_MAX(m, V16_LOAD(rows[ky] + ix * ps + ch));
      }
      V16_STORE(column + (ix - lo) * stride + ch - c0, m);
    }
  }
  for (ptrdiff_t ox = ox0; ox < ox1; ox++) {
    const ptrdiff_t a = ox - left > lo ? ox - left : lo, b = ox - left + kw < hi ? ox - left + kw : hi;
    for (ptrdiff_t ch = c0; ch < c1; ch += 16) {
      if (ch + 16 > c1) ch = c1 - 16;
      v16 m = lowest;
      for (ptrdiff_t ix = a; ix < b; ix++) m = V16_MAX(m, V16_LOAD(column + (ix - lo) * stride + ch - c0));
      V16_STORE(out + ox * c + ch, m);
    }
  }
}

// Output columns a pass takes with windows 5 wide or more, and the widest
// window (a pass's column maxima of 16 channels then fit in 6 KiB); the
// column maxima of narrower windows' passes, whole pixels (32 KiB).
enum { POOL_SPAN = 64, POOL_WIDEST = 33, POOL_PIXELS_FLOATS = 8192 };

// Windows 5 wide or more: per 16 channels, passes of POOL_SPAN output
// columns. YOLOX-S's 5x5, 9x9 and 13x13 pools over 256 channels took 0.8
// ms instead of 2.8. Narrower ones: per pass of as many output columns as
// the buffer holds with the window's overlap, each pixel's channels at
// once (at most POOL_PIXELS_FLOATS / (kw + 3)), so every row is read in
// one stream; 16 channels a pixel apart took 1.3 to 1.5 times the general
// loop's time for 3x3. A 3x3 pool over 256 channels at 28x28 took 0.152
// ms so, with V16_MAX's single maxps, against 0.24 by the general loop
// with the compare and blend of IEEE maxNum; 832 channels at 14x14, 0.136
// against 0.19 (AMD EPYC, AVX2). False where neither applies.
static int max_pool_row_unit_stride(float *restrict out, const float *const *rows, const atr_conv_geometry *g,
                                    size_t channels) {
  const ptrdiff_t kw = g->kernel_w, ow = g->output_w, c = (ptrdiff_t)channels;
  if (g->stride_w != 1 || g->dilation_w != 1 || c < 16) return 0;
  if (kw >= 5 && kw <= POOL_WIDEST) {
    float column[(POOL_SPAN + POOL_WIDEST - 1) * 16];  // (columns, 16)
    for (ptrdiff_t ch = 0; ch < c; ch += 16) {
      if (ch + 16 > c) ch = c - 16;  // the last 16 again for a rest
      for (ptrdiff_t ox0 = 0; ox0 < ow; ox0 += POOL_SPAN) {
        max_pool_pass(out, rows, g, c, ch, ch + 16, ox0, ox0 + POOL_SPAN < ow ? ox0 + POOL_SPAN : ow, column, 16);
      }
    }
    return 1;
  }
  if (kw >= 5 || (kw + 3) * c > POOL_PIXELS_FLOATS) return 0;
  float column[POOL_PIXELS_FLOATS];  // (columns, C)
  const ptrdiff_t span = POOL_PIXELS_FLOATS / c - (kw - 1);  // output columns a pass
  for (ptrdiff_t ox0 = 0; ox0 < ow; ox0 += span) {
    max_pool_pass(out, rows, g, c, 0, c, ox0, ox0 + span < ow ? ox0 + span : ow, column, c);
  }
  return 1;
}

void atr_pool_row(float *restrict out, const float *const *rows, const atr_conv_geometry *g, size_t channels,
                  atr_pool_mode mode, size_t rows_padded, size_t pad_right) {
  if (mode == ATR_POOL_MAX && max_pool_row_unit_stride(out, rows, g, channels)) return;
  const ptrdiff_t w = g->input_w, kw = g->kernel_w, kh = g->kernel_h, dx = g->dilation_w;
  const ptrdiff_t ps = (ptrdiff_t)g->pixel_stride, c = (ptrdiff_t)channels;
  const int max = mode == ATR_POOL_MAX;
  size_t rows_inside = 0;
  for (ptrdiff_t ky = 0; ky < kh; ky++) rows_inside += rows[ky] != NULL;
  const size_t inside = (mode == ATR_POOL_AVERAGE_PADDED ? rows_padded : rows_inside) * (size_t)kw;
  const float inside_scale = 1.0f / (float)(inside ? inside : 1);
  for (size_t ox = 0; ox < g->output_w; ox++) {
    const ptrdiff_t ix0 = (ptrdiff_t)ox * g->stride_w - g->pad_left;
    // The taps inside the row, [kx0, kx1), and those inside the padded row
    // (all of them for a window inside the row, the common case).
    ptrdiff_t kx0 = 0, kx1 = kw;
    float scale = inside_scale;
    if (ix0 < 0 || ix0 + (kw - 1) * dx >= w) {
      ptrdiff_t padded = 0;
      taps_inside(g, ix0, &kx0, &kx1);
      for (ptrdiff_t kx = 0; kx < kw; kx++) {
        const ptrdiff_t ix = ix0 + kx * dx;
        padded += ix >= -(ptrdiff_t)g->pad_left && ix < w + (ptrdiff_t)pad_right;
      }
      const size_t count = mode == ATR_POOL_AVERAGE_PADDED ? rows_padded * (size_t)padded
                                                           : rows_inside * (size_t)(kx1 - kx0);
      scale = 1.0f / (float)(count ? count : 1);
    }
    const float start = max ? -__builtin_inff() : 0.0f;
    float *o = out + ox * (size_t)c;
    ptrdiff_t ch = 0;
    for (; ch + 64 <= c; ch += 64) {
      v16 s0 = start - (v16){0}, s1 = s0, s2 = s0, s3 = s0;
      for (ptrdiff_t ky = 0; ky < kh; ky++) {
        if (!rows[ky]) continue;
        for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
          const float *x = rows[ky] + (ix0 + kx * dx) * ps + ch;
          if (max) {
            s0 = V16_MAX(s0, V16_LOAD(x)); s1 = V16_MAX(s1, V16_LOAD(x + 16));
            s2 = V16_MAX(s2, V16_LOAD(x + 32)); s3 = V16_MAX(s3, V16_LOAD(x + 48));
          } else {
            s0 += V16_LOAD(x); s1 += V16_LOAD(x + 16); s2 += V16_LOAD(x + 32); s3 += V16_LOAD(x + 48);
          }
        }
      }
      if (!max) { s0 *= scale; s1 *= scale; s2 *= scale; s3 *= scale; }
      V16_STORE(o + ch, s0); V16_STORE(o + ch + 16, s1); V16_STORE(o + ch + 32, s2); V16_STORE(o + ch + 48, s3);
    }
    // Then 16 at a time, the rest as the last 16 channels again (a few
    // recomputed, none done one by one) when there are 16 or more.
    while (ch < c && c >= 16) {
      if (ch + 16 > c) ch = c - 16;
      v16 s = start - (v16){0};
      for (ptrdiff_t ky = 0; ky < kh; ky++) {
        if (!rows[ky]) continue;
        for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
          const v16 x = V16_LOAD(rows[ky] + (ix0 + kx * dx) * ps + ch);
          s = max ? V16_MAX(s, x) : s + x;
        }
      }
      V16_STORE(o + ch, max ? s : s * scale);
      ch += 16;
    }
    for (; ch < c; ch++) {
      float s = start;
      for (ptrdiff_t ky = 0; ky < kh; ky++) {
        if (!rows[ky]) continue;
        for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
          const float x = rows[ky][(ix0 + kx * dx) * ps + ch];
          s = max ? (x > s ? x : s) : s + x;
        }
      }
      o[ch] = max ? s : s * scale;
    }
  }
}

void atr_gather_planes_strided(float *restrict out, const float *restrict in, size_t channels, size_t h, size_t w,
                               size_t step, const ptrdiff_t *offsets, size_t blocks, size_t ow, size_t y0, size_t y1) {
  const size_t ps = blocks * channels;
  for (size_t y = y0; y < y1; y++) {
    float *o = out + y * ow * ps;
    for (size_t k = 0; k < blocks; k++) {
      for (size_t j = 0; j < channels; j++) {
        const float *x = in + (j * h + y * step + (size_t)offsets[2 * k]) * w + (size_t)offsets[2 * k + 1];
        float *p = o + k * channels + j;
        for (size_t i = 0; i < ow; i++) p[i * ps] = x[i * step];
      }
    }
  }
}
