#include "atrous_kernels.h"

#include <string.h>

// One clone per instruction set; the loader picks the best the CPU has.
#if defined(__x86_64__) && defined(__clang__) && defined(__linux__)
#define ATR_MULTIVERSION __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define ATR_MULTIVERSION
#endif

// Winograd F(4x4, 3x3) (Lavin and Gray 2016) on channels-last pixels: a
// 6x6 input tile d becomes V = B^T d B, the 3x3 kernel g becomes
// U = G g G^T, and the 4x4 output tile is Y = A^T (U . V) A, where the
// elementwise product summed over input channels is 36 matrix products,
// one per tile position. 36 multiplications give 16 outputs where direct
// convolution needs 144. Interpolation points 0, 1, -1, 2, -2 and
// infinity; the transforms are exact in float but for the 1/6 and 1/24 of
// G, and the error grows with the sums of the transformed tiles (a few
// 1e-6 of the output's range with 288 terms; tests hold it within 5e-5 of
// the range and 1e-5 relative RMS error of a float64 reference).
//
// Channels go 16 at a time in vectors, the last 16 again for a rest, so
// the transforms need at least 16 channels.

typedef float v16 __attribute__((vector_size(64), aligned(4)));
#define V16_LOAD(p) (*(const v16 *)(p))
#define V16_STORE(p, v) (*(v16 *)(p) = (v))

enum { TILE = 6, OUT = 4, POSITIONS = TILE * TILE };

// r = B^T d for one column of six values.
static inline __attribute__((always_inline)) void input_line(const v16 d[6], v16 r[6]) {
  r[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
  r[1] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
  r[2] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
  r[3] = 2.0f * (d[3] - d[1]) - d[2] + d[4];
  r[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
  r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

// r = A^T m for one column of six values.
static inline __attribute__((always_inline)) void output_line(const v16 m[6], v16 r[4]) {
  const v16 a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
  r[0] = m[0] + a + c;
  r[1] = b + 2.0f * d;
  r[2] = a + 4.0f * c;
  r[3] = b + 8.0f * d + m[5];
}

// Where tile t (flat over images, tile rows and tile columns) starts.
static inline void tile_origin(const atr_conv_geometry *g, size_t t, size_t *image, ptrdiff_t *y, ptrdiff_t *x) {
  const size_t across = (g->output_w + OUT - 1) / OUT, down = (g->output_h + OUT - 1) / OUT;
  *image = t / (across * down);
  *y = (ptrdiff_t)(t / across % down) * OUT;
  *x = (ptrdiff_t)(t % across) * OUT;
}

size_t atr_winograd_tiles(const atr_conv_geometry *g, size_t images) {
  return images * ((g->output_h + OUT - 1) / OUT) * ((g->output_w + OUT - 1) / OUT);
}

void atr_winograd_weights(float *restrict u, const float *restrict w, size_t cout, size_t cin) {
  // G (6x3) with U = G g G^T.
  static const float G[6][3] = {
      {1.0f / 4, 0, 0},
      {-1.0f / 6, -1.0f / 6, -1.0f / 6},
      {-1.0f / 6, 1.0f / 6, -1.0f / 6},
      {1.0f / 24, 1.0f / 12, 1.0f / 6},
      {1.0f / 24, -1.0f / 12, 1.0f / 6},
      {0, 0, 1},
  };
  for (size_t co = 0; co < cout; co++) {
    for (size_t ci = 0; ci < cin; ci++) {
      const float *g = w + (co * cin + ci) * 9;  // (3, 3)
      float t[6][3];                             // G g
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
      for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
          u[((size_t)(i * 6 + j) * cin + ci) * cout + co] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
    }
  }
}

ATR_MULTIVERSION
void atr_winograd_input(float *restrict v, const float *restrict src, const atr_conv_geometry *g, size_t cin,
                        size_t first, size_t count) {
  const ptrdiff_t h = g->input_h, w = g->input_w;
  const size_t plane = count * cin;  // floats between tile positions
  for (size_t k = 0; k < count; k++) {
    size_t image;
    ptrdiff_t oy, ox;
    tile_origin(g, first + k, &image, &oy, &ox);
    const ptrdiff_t y0 = oy - g->pad_top, x0 = ox - g->pad_left;
    const int inside = y0 >= 0 && x0 >= 0 && y0 + TILE <= h && x0 + TILE <= w;
    const float *base = src + (size_t)image * (size_t)(h * w) * cin;
    float *dst = v + k * cin;
    for (size_t c = 0; c < cin;) {
      if (c + 16 > cin) c = cin - 16;
      v16 columns[6][6];  // [x][position along y]
      for (int j = 0; j < TILE; j++) {
        v16 d[6];
        for (int i = 0; i < TILE; i++) {
          const ptrdiff_t y = y0 + i, x = x0 + j;
          d[i] = inside || (y >= 0 && y < h && x >= 0 && x < w) ? V16_LOAD(base + (size_t)(y * w + x) * cin + c)
                                                                 : (v16){0};
        }
        input_line(d, columns[j]);
      }
      for (int i = 0; i < TILE; i++) {
        v16 d[6], r[6];
        for (int j = 0; j < TILE; j++) d[j] = columns[j][i];
        input_line(d, r);
        for (int j = 0; j < TILE; j++) V16_STORE(dst + (size_t)(i * TILE + j) * plane + c, r[j]);
      }
      c += 16;
    }
  }
}

ATR_MULTIVERSION
void atr_winograd_output(float *restrict out, const float *restrict m, const float *restrict bias,
                         const atr_conv_geometry *g, size_t cout, size_t first, size_t count,
                         const atr_pointwise_step *steps, size_t nsteps) {
  const size_t oh = g->output_h, ow = g->output_w;
  const size_t plane = count * cout;
  for (size_t k = 0; k < count; k++) {
    size_t image;
    ptrdiff_t oy, ox;
    tile_origin(g, first + k, &image, &oy, &ox);
    const size_t rows = oh - (size_t)oy < OUT ? oh - (size_t)oy : OUT;
    const size_t cols = ow - (size_t)ox < OUT ? ow - (size_t)ox : OUT;
    float *base = out + ((size_t)image * oh * ow + (size_t)oy * ow + (size_t)ox) * cout;
    const float *src = m + k * cout;
    for (size_t c = 0; c < cout;) {
      if (c + 16 > cout) c = cout - 16;
      v16 columns[6][4];  // [x][output row]
      for (int j = 0; j < TILE; j++) {
        v16 d[6];
        for (int i = 0; i < TILE; i++) d[i] = V16_LOAD(src + (size_t)(i * TILE + j) * plane + c);
        output_line(d, columns[j]);
      }
      const v16 b = bias ? V16_LOAD(bias + c) : (v16){0};
      for (size_t i = 0; i < rows; i++) {
        v16 d[6], r[4];
        for (int j = 0; j < TILE; j++) d[j] = columns[j][i];
        output_line(d, r);
        for (size_t j = 0; j < cols; j++) V16_STORE(base + (i * ow + j) * cout + c, r[j] + b);
      }
      c += 16;
    }
    // The fused steps on each of the tile's output rows while in cache.
    if (nsteps)
      for (size_t i = 0; i < rows; i++) atr_pointwise(base + i * ow * cout, 1, cols * cout, cols * cout, steps, nsteps);
  }
}
