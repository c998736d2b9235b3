#include "atrous_kernels.h"

#include <string.h>

// Winograd F(MxM, 3x3) (Lavin and Gray 2016) on channels-last pixels, for
// output tiles of M = 2, 4 or 6 pixels a side: a TxT input tile d (T =
// M + 2) becomes V = B^T d B, the 3x3 kernel g becomes U = G g G^T, and
// the MxM output tile is Y = A^T (U . V) A, where the elementwise product
// summed over input channels is T^2 matrix products, one per tile
// position. F(2x2) does 16 multiplications for 4 outputs, F(4x4) 36 for
// 16, F(6x6) 64 for 36, where direct convolution does 9 per output.
// Interpolation points 0, 1, -1 (F2), and 2, -2 (F4), and 1/2, -1/2
// (F6), and infinity. The transforms of F2 are exact; F4's G has 1/6 and
// 1/24, and F6's transforms scale by up to 32 and 1/90, so the rounding
// grows with M: F4 stays within a few 1e-6 of the output's range with 288
// terms, F6 about ten times that (the tests hold each to its bound
// against a float64 reference).
//
// Channels go 16 at a time in vectors, the last 16 again for a rest, so
// the transforms need at least 16 channels.

typedef float v16 __attribute__((vector_size(64), aligned(4)));
#define V16_LOAD(p) (*(const v16 *)(p))
#define V16_STORE(p, v) (*(v16 *)(p) = (v))

enum { MAX_TILE = 8 };

// r = B^T d for one line of T = M + 2 values.
static inline __attribute__((always_inline)) void input_line(const int M, const v16 *d, v16 *r) {
  if (M == 2) {
    r[0] = d[0] - d[2];
    r[1] = d[1] + d[2];
    r[2] = d[2] - d[1];
    r[3] = d[1] - d[3];
  } else if (M == 4) {
    r[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    r[1] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
    r[2] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
    r[3] = 2.0f * (d[3] - d[1]) - d[2] + d[4];
    r[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
    r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
  } else {
    r[0] = d[0] - d[6] + 5.25f * (d[4] - d[2]);
    r[7] = d[7] - d[1] + 5.25f * (d[3] - d[5]);
    v16 a = d[2] + d[6] - 4.25f * d[4], b = d[1] + d[5] - 4.25f * d[3];
    r[1] = a + b;
    r[2] = a - b;
    a = 0.25f * d[2] + d[6] - 1.25f * d[4];
    b = 0.5f * d[1] - 2.5f * d[3] + 2.0f * d[5];
    r[3] = a + b;
    r[4] = a - b;
    a = 4.0f * d[2] + d[6] - 5.0f * d[4];
    b = 2.0f * d[1] - 2.5f * d[3] + 0.5f * d[5];
    r[5] = a + b;
    r[6] = a - b;
  }
}

// r = A^T m for one line of T values, M results.
static inline __attribute__((always_inline)) void output_line(const int M, const v16 *m, v16 *r) {
  if (M == 2) {
    r[0] = m[0] + m[1] + m[2];
    r[1] = m[1] - m[2] - m[3];
    return;
  }
  const v16 a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
  if (M == 4) {
    r[0] = m[0] + a + c;
    r[1] = b + 2.0f * d;
    r[2] = a + 4.0f * c;
    r[3] = b + 8.0f * d + m[5];
    return;
  }
  const v16 e = m[5] + m[6], f = m[5] - m[6];
  r[0] = m[0] + a + c + e;
  r[1] = b + 2.0f * d + 0.5f * f;
  r[2] = a + 4.0f * c + 0.25f * e;
  r[3] = b + 8.0f * d + 0.125f * f;
  r[4] = a + 16.0f * c + 0.0625f * e;
  r[5] = b + 32.0f * d + 0.03125f * f + m[7];
}

// A dilated convolution (dilation dy, dx) is dy x dx ordinary ones, one
// per phase: the outputs (py + dy * i, px + dx * j) read only the inputs
// (py - pad + dy * i', px - pad + dx * j'), so a tile of a phase is an
// ordinary tile whose pixels lie dy rows and dx columns apart. Tiles are
// numbered flat over images, blocks of (M dy) x (M dx) output pixels and,
// innermost, the dy x dx phases of a block, which together cover it: the
// tiles of a block of the product read neighbouring inputs.
static inline size_t tiles_across(size_t M, const atr_conv_geometry *g) {
  const size_t span = M * (size_t)g->dilation_w;
  return (g->output_w + span - 1) / span;
}

static inline size_t tiles_down(size_t M, const atr_conv_geometry *g) {
  const size_t span = M * (size_t)g->dilation_h;
  return (g->output_h + span - 1) / span;
}

// Where tile t starts: its image and its first output pixel (y, x).
static inline void tile_origin(size_t M, const atr_conv_geometry *g, size_t t, size_t *image, ptrdiff_t *y,
                               ptrdiff_t *x) {
  const size_t dy = (size_t)g->dilation_h, dx = (size_t)g->dilation_w, phases = dy * dx;
  const size_t across = tiles_across(M, g), down = tiles_down(M, g);
  const size_t phase = t % phases, block = t / phases;
  *image = block / (across * down);
  *y = (ptrdiff_t)(block / across % down * M * dy + phase / dx);
  *x = (ptrdiff_t)(block % across * M * dx + phase % dx);
}

// How many of a tile's M lines starting at `start`, `step` apart, fall
// before `end`: fewer at the map's far edges, none for a phase past them.
static inline size_t tile_lines(size_t M, ptrdiff_t start, size_t step, size_t end) {
  if ((size_t)start >= end) return 0;
  const size_t lines = (end - (size_t)start + step - 1) / step;
  return lines < M ? lines : M;
}

size_t atr_winograd_tiles(const atr_conv_geometry *g, size_t images, size_t m) {
  return images * tiles_down(m, g) * tiles_across(m, g) * (size_t)(g->dilation_h * g->dilation_w);
}

void atr_winograd_weights(float *restrict u, const float *restrict w, size_t cout, size_t cin, size_t m,
                          size_t first_panel, size_t panels) {
  // G (T x 3) with U = G g G^T, in double so that U is G g G^T rounded once.
  static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static const double G4[6][3] = {
      {1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
      {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1},
  };
  static const double G6[8][3] = {
      {1, 0, 0},
      {-2.0 / 9, -2.0 / 9, -2.0 / 9},
      {-2.0 / 9, 2.0 / 9, -2.0 / 9},
      {1.0 / 90, 1.0 / 45, 2.0 / 45},
      {1.0 / 90, -1.0 / 45, 2.0 / 45},
      {32.0 / 45, 16.0 / 45, 8.0 / 45},
      {32.0 / 45, -16.0 / 45, 8.0 / 45},
      {0, 0, 1},
  };
  const double(*G)[3] = m == 2 ? G2 : m == 4 ? G4 : G6;
  const size_t T = m + 2;
  // Eight output channels at once, in lanes: each of the T^2 planes of U
  // gets 8 floats in a row, and the products vectorize. (One kernel at a
  // time, writing one float per plane, took 9.6 ms for VGG16's blocks 1-2
  // at F(4x4), mostly cache and TLB misses.)
  enum { L = 8 };
  const size_t size = atr_packed_b_size(cin, cout), edge = cout % NR;
  const size_t end = (first_panel + panels) * NR < cout ? (first_panel + panels) * NR : cout;
  // The last panel's columns past cout are zeros, as atr_pack_b leaves them.
  if (edge && end == cout && panels)
    for (size_t xi = 0; xi < T * T; xi++)
      for (size_t ci = 0; ci < cin; ci++)
        for (size_t j = edge; j < NR; j++) u[xi * size + cout / NR * cin * NR + ci * NR + j] = 0.0f;
  // A panel of NR output channels at a time, its input channels in order,
  // so that each position's panel fills row after row: T^2 sequential
  // streams. With the input channels outermost, each group of 8 went to
  // T^2 x Cout / NR places 64 KiB apart (512 channels) and the transform
  // of 512 -> 512 at F(2x2) took 13.2 ms instead of 4.4.
  for (size_t q0 = first_panel * NR; q0 < end; q0 += NR) {
    for (size_t ci = 0; ci < cin; ci++) {
      for (size_t co0 = q0; co0 < q0 + NR && co0 < cout; co0 += L) {
        const size_t lanes = cout - co0 < L ? cout - co0 : L;
        double g[9][L] = {{0}};  // (3, 3) kernels, channels in lanes
        for (size_t k = 0; k < lanes; k++)
          for (int e = 0; e < 9; e++) g[e][k] = w[((co0 + k) * cin + ci) * 9 + e];
        double t[MAX_TILE][3][L];  // G g
        for (size_t i = 0; i < T; i++)
          for (int j = 0; j < 3; j++)
            for (int k = 0; k < L; k++) t[i][j][k] = G[i][0] * g[j][k] + G[i][1] * g[3 + j][k] + G[i][2] * g[6 + j][k];
        for (size_t i = 0; i < T; i++)
          for (size_t j = 0; j < T; j++) {
            double r[L];
            for (int k = 0; k < L; k++) r[k] = t[i][0][k] * G[j][0] + t[i][1][k] * G[j][1] + t[i][2][k] * G[j][2];
            // Column co0 + k of position (i, j)'s matrix, in its panel of NR.
            float *out = u + (i * T + j) * size + co0 / NR * cin * NR + ci * NR + co0 % NR;
            for (size_t k = 0; k < lanes; k++) out[k] = (float)r[k];
          }
      }
    }
  }
}

// The input transform for one output tile size.
static inline __attribute__((always_inline)) void input_tiles(const int M, float *restrict v, const float *restrict src,
                                                              const atr_conv_geometry *g, size_t cin, size_t first,
                                                              size_t count) {
  const int T = M + 2;
  const ptrdiff_t h = g->input_h, w = g->input_w, dy = g->dilation_h, dx = g->dilation_w;
  const size_t plane = count * cin;  // floats between tile positions
  for (size_t k = 0; k < count; k++) {
    size_t image;
    ptrdiff_t oy, ox;
    tile_origin((size_t)M, g, first + k, &image, &oy, &ox);
    const ptrdiff_t y0 = oy - g->pad_top, x0 = ox - g->pad_left;
    const int inside = y0 >= 0 && x0 >= 0 && y0 + (T - 1) * dy < h && x0 + (T - 1) * dx < w;
    const float *base = src + (size_t)image * (size_t)(h * w) * cin;
    float *dst = v + k * cin;
    for (size_t c = 0; c < cin;) {
      if (c + 16 > cin) c = cin - 16;
      v16 columns[MAX_TILE][MAX_TILE];  // [x][position along y]
#pragma clang loop unroll(full)
      for (int j = 0; j < T; j++) {
        v16 d[MAX_TILE];
#pragma clang loop unroll(full)
        for (int i = 0; i < T; i++) {
          const ptrdiff_t y = y0 + i * dy, x = x0 + j * dx;
          d[i] = inside || (y >= 0 && y < h && x >= 0 && x < w) ? V16_LOAD(base + (size_t)(y * w + x) * cin + c)
                                                                 : (v16){0};
        }
        input_line(M, d, columns[j]);
      }
#pragma clang loop unroll(full)
      for (int i = 0; i < T; i++) {
        v16 d[MAX_TILE], r[MAX_TILE];
#pragma clang loop unroll(full)
        for (int j = 0; j < T; j++) d[j] = columns[j][i];
        input_line(M, d, r);
#pragma clang loop unroll(full)
        for (int j = 0; j < T; j++) V16_STORE(dst + (size_t)(i * T + j) * plane + c, r[j]);
      }
      c += 16;
    }
  }
}

void atr_winograd_input(float *restrict v, const float *restrict src, const atr_conv_geometry *g, size_t cin,
                        size_t first, size_t count, size_t m) {
  if (m == 2) input_tiles(2, v, src, g, cin, first, count);
  else if (m == 4) input_tiles(4, v, src, g, cin, first, count);
  else input_tiles(6, v, src, g, cin, first, count);
}

// The output transform for one output tile size.
static inline __attribute__((always_inline)) void output_tiles(const int M, float *restrict out,
                                                               const float *restrict products,
                                                               const float *restrict bias,
                                                               const float *restrict residual, const atr_conv_geometry *g,
                                                               size_t cout, size_t first, size_t count,
                                                               const atr_pointwise_step *steps, size_t nsteps) {
  const int T = M + 2;
  const size_t oh = g->output_h, ow = g->output_w, dy = (size_t)g->dilation_h, dx = (size_t)g->dilation_w;
  const size_t plane = count * cout;
  for (size_t k = 0; k < count; k++) {
    size_t image;
    ptrdiff_t oy, ox;
    tile_origin((size_t)M, g, first + k, &image, &oy, &ox);
    const size_t rows = tile_lines((size_t)M, oy, dy, oh), cols = tile_lines((size_t)M, ox, dx, ow);
    if (!rows || !cols) continue;
    const size_t at = ((size_t)image * oh * ow + (size_t)oy * ow + (size_t)ox) * cout;
    float *base = out + at;
    const float *src = products + k * cout;
    for (size_t c = 0; c < cout;) {
      if (c + 16 > cout) c = cout - 16;
      v16 columns[MAX_TILE][MAX_TILE];  // [x][output row]
#pragma clang loop unroll(full)
      for (int j = 0; j < T; j++) {
        v16 d[MAX_TILE];
#pragma clang loop unroll(full)
        for (int i = 0; i < T; i++) d[i] = V16_LOAD(src + (size_t)(i * T + j) * plane + c);
        output_line(M, d, columns[j]);
      }
      const v16 b = bias ? V16_LOAD(bias + c) : (v16){0};
      for (size_t i = 0; i < rows; i++) {
        v16 d[MAX_TILE], r[MAX_TILE];
#pragma clang loop unroll(full)
        for (int j = 0; j < T; j++) d[j] = columns[j][i];
        output_line(M, d, r);
        const size_t row = i * dy * ow * cout + c;  // floats from the tile's first pixel
        if (residual) {
          const float *sum = residual + at + row;
          for (size_t j = 0; j < cols; j++) V16_STORE(base + row + j * dx * cout, r[j] + b + V16_LOAD(sum + j * dx * cout));
        } else {
          for (size_t j = 0; j < cols; j++) V16_STORE(base + row + j * dx * cout, r[j] + b);
        }
      }
      c += 16;
    }
    // The fused steps on each of the tile's output rows while in cache: its
    // pixels dx apart (atr_pointwise runs contiguous ones as one row).
    if (nsteps)
      for (size_t i = 0; i < rows; i++) atr_pointwise(base + i * dy * ow * cout, cols, cout, dx * cout, steps, nsteps);
  }
}

void atr_winograd_output(float *restrict out, const float *restrict products, const float *restrict bias,
                         const float *restrict residual, const atr_conv_geometry *g, size_t cout, size_t first,
                         size_t count, const atr_pointwise_step *steps, size_t nsteps, size_t m) {
  if (m == 2) output_tiles(2, out, products, bias, residual, g, cout, first, count, steps, nsteps);
  else if (m == 4) output_tiles(4, out, products, bias, residual, g, cout, first, count, steps, nsteps);
  else output_tiles(6, out, products, bias, residual, g, cout, first, count, steps, nsteps);
}
