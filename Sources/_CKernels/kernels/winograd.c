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
// Channels go WL at a time, a vector register's floats (16 with AVX-512,
// 8 with AVX2 and the baseline), the last WL again for a rest; the
// transforms need at least WL channels (atr_winograd_lanes). With AVX2,
// 16 channels at a time (two registers per value) spilled the 8x8 tiles'
// transforms twice over:
// F(6x6)'s input transform of a 224x224x64 map took 4.4 to 5.0 ms, 3.6
// with 8 (AMD EPYC, minimum of 20 runs).

#if ATR_ISA_WIDE
enum { WL = 16 };
#else
enum { WL = 8 };
#endif
typedef float wv __attribute__((vector_size(WL * 4), aligned(4)));
#define WV_LOAD(p) (*(const wv *)(p))
#define WV_STORE(p, v) (*(wv *)(p) = (v))

enum { MAX_TILE = 8 };

// Stride 2 runs F(4x4, 2x2) on each phase of the input (see
// atrous_kernels.h): interpolation points 0, 1, -1, 2 and infinity, whose
// transforms hold integers but for G's 1/2 and 1/6 (applied to the
// kernels in float64). A 4x4 kernel runs F(3x3, 4x4), on F(4x4, 3x3)'s
// points and input transform.

// r = B^T d for one line of T = M + R - 1 values, R the kernel's taps
// along the line (atr_winograd_taps: 3; 2 for a phase at stride 2, with
// M = 4; 4 with M = 3).
static inline __attribute__((always_inline)) void input_line(const int M, const int R, const wv *d, wv *r) {
  const int T = M + R - 1;
  if (R == 2) {
    const wv s = d[3] - d[1];
    r[0] = 2.0f * (d[0] - d[2]) + s;
    r[1] = s - d[1] - d[2];
    r[2] = s + 3.0f * (d[1] - d[2]);
    r[3] = s;
    r[4] = d[4] - d[2] - 2.0f * s;
  } else if (T == 4) {
    r[0] = d[0] - d[2];
    r[1] = d[1] + d[2];
    r[2] = d[2] - d[1];
    r[3] = d[1] - d[3];
  } else if (T == 6) {
    // Points 0, 1, -1, 2, -2, infinity: F(4x4, 3x3) and F(3x3, 4x4) alike.
    r[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    r[1] = -4.0f * (d[1] + d[2]) + d[3] + d[4];
    r[2] = 4.0f * (d[1] - d[2]) - d[3] + d[4];
    r[3] = 2.0f * (d[3] - d[1]) - d[2] + d[4];
    r[4] = 2.0f * (d[1] - d[3]) - d[2] + d[4];
    r[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
  } else {
    r[0] = d[0] - d[6] + 5.25f * (d[4] - d[2]);
    r[7] = d[7] - d[1] + 5.25f * (d[3] - d[5]);
    wv a = d[2] + d[6] - 4.25f * d[4], b = d[1] + d[5] - 4.25f * d[3];
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

// r = A^T m for one line of T = M + R - 1 values, M results.
static inline __attribute__((always_inline)) void output_line(const int M, const int R, const wv *m, wv *r) {
  if (R == 2) {
    const wv a = m[1] + m[2], b = m[1] - m[2];
    r[0] = m[0] + a + m[3];
    r[1] = b + 2.0f * m[3];
    r[2] = a + 4.0f * m[3];
    r[3] = b + 8.0f * m[3] + m[4];
    return;
  }
  if (M == 2) {
    r[0] = m[0] + m[1] + m[2];
    r[1] = m[1] - m[2] - m[3];
    return;
  }
  const wv a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
  if (R == 4) {
    r[0] = m[0] + a + c;
    r[1] = b + 2.0f * d;
    r[2] = a + 4.0f * c + m[5];
    return;
  }
  if (M == 4) {
    r[0] = m[0] + a + c;
    r[1] = b + 2.0f * d;
    r[2] = a + 4.0f * c;
    r[3] = b + 8.0f * d + m[5];
    return;
  }
  const wv e = m[5] + m[6], f = m[5] - m[6];
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

size_t atr_winograd_lanes(void) { return WL; }

size_t atr_winograd_tiles(const atr_conv_geometry *g, size_t images, size_t m) {
  return images * tiles_down(m, g) * tiles_across(m, g) * (size_t)(g->dilation_h * g->dilation_w);
}

// A group of output channels, one a lane, as the weight transform holds
// them: in double, one vector register of them (8 with AVX-512, else 4:
// groups of 8 in two ymm registers took the AVX2 transform 1.4 to 5 times
// as long, spilled), and rounded to float.
enum { WEIGHT_LANES = ATR_ISA_WIDE ? 8 : 4, STAGED = WEIGHT_LANES < 8 };
typedef double atr_lanes_d __attribute__((vector_size(WEIGHT_LANES * 8)));
typedef float atr_lanes_f __attribute__((vector_size(WEIGHT_LANES * 4)));
typedef float atr_lanes_f_unaligned __attribute__((vector_size(WEIGHT_LANES * 4), aligned(4)));

// Row `row` (slot * cin + ci) of a position's (depth, Cout) matrix that
// starts at `matrix`, in the panel of NR output channels from q0.
static inline float *weights_row(float *u, size_t matrix, size_t depth, size_t q0, size_t row) {
  return u + matrix + q0 / NR * depth * NR + row * NR;
}

// The transform of weights_panels' panels for one tile shape: R taps a
// line (the kernel's side K, or 3 at stride 2 with STRIDED), T = M + R - 1
// positions a line, G the (T x R) matrix. Called with constants, so that
// the small loops unroll and p, t and r live in vector registers: with the
// shape read at run time, VGG16's 128 -> 128 at F(6x6) took 2.5 ms.
static inline __attribute__((always_inline)) void weights_panels(const size_t M, const size_t R, const int STRIDED,
                                                                 const double (*G)[4], float *restrict u,
                                                                 const float *restrict w, size_t cout, size_t cin,
                                                                 size_t first_panel, size_t panels, size_t c0,
                                                                 size_t c1) {
  const size_t T = M + R - 1;
  // The kernel's side: R, or 3 at stride 2 (each phase takes R of it).
  const size_t K = STRIDED ? 3 : R;
  // A group of output channels at once, in lanes: each of the T^2 planes
  // of U gets L floats in a row, and the products vectorize. (One kernel
  // at a time, writing one float per plane, took 9.6 ms for VGG16's blocks
  // 1-2 at F(4x4), mostly cache and TLB misses.)
  enum { L = WEIGHT_LANES };
  // Each position's matrix: where it starts and how deep it is.
  size_t start[MAX_TILE * MAX_TILE], depth[MAX_TILE * MAX_TILE];
  for (size_t xi = 0; xi < T * T; xi++) {
    start[xi] = atr_winograd_weights_offset(M, STRIDED ? 2 : 1, xi, cin, cout);
    depth[xi] = atr_winograd_depth(M, STRIDED ? 2 : 1, xi) * cin;
  }
  const size_t edge = cout % NR;
  const size_t end = (first_panel + panels) * NR < cout ? (first_panel + panels) * NR : cout;
  // The last panel's columns past cout are zeros, as atr_pack_b leaves them.
  if (edge && end == cout && panels)
    for (size_t xi = 0; xi < T * T; xi++)
      for (size_t slot = 0; slot < depth[xi] / cin; slot++)
        for (size_t ci = c0; ci < c1; ci++)
          for (size_t j = edge; j < NR; j++) weights_row(u, start[xi], depth[xi], cout - edge, slot * cin + ci)[j] = 0.0f;
  // A panel of NR output channels at a time, its input channels in order,
  // so that each position's panel fills row after row: T^2 sequential
  // streams. With the input channels outermost, each group of 8 went to
  // T^2 x Cout / NR places 64 KiB apart (512 channels) and the transform
  // of 512 -> 512 at F(2x2) took 13.2 ms instead of 4.4.
  // With groups of 4 (STAGED), one input channel's rows of a panel,
  // (position, slot) by NR output channels, are made group by group here
  // and then copied out whole. Stored straight into U, each group's 4
  // floats went to T^2 rows whose panels lie depth x NR floats apart (16
  // KiB for 128 channels), all in one set of the L1 cache: the AVX2
  // transform of 128 -> 128 at F(6x6) took 1.07 ms straight, 0.37 to 0.57
  // staged, 256 -> 256 at F(4x4) 2.65 and 1.21. Groups of 8 (AVX-512) store
  // straight: staged, 512 -> 512 at F(4x4) took 8.4 ms against 5.0. At
  // stride 2 a position has up to 4 slots.
  const size_t SLOTS = STRIDED ? 4 : 1;
  float stage[STAGED ? MAX_TILE * MAX_TILE * 2 : 1][NR];  // (T^2 x SLOTS rows, at most 100, NR)
  for (size_t q0 = first_panel * NR; q0 < end; q0 += NR) {
    // Output channels of this panel: NR, or fewer in the last.
    const size_t columns = cout - q0 < NR ? cout - q0 : NR;
    for (size_t ci = c0; ci < c1; ci++) {
      for (size_t co0 = q0; co0 < q0 + NR && co0 < cout; co0 += L) {
        const size_t lanes = cout - co0 < L ? cout - co0 : L;
        atr_lanes_d g[16];  // (K, K) kernels, channels in lanes
        // Lanes past the last channel are zeros; whole groups are written
        // whole, without the zeroing (a call to memset per group, 5% of
        // ResNet-18's transforms in a fresh process).
        if (lanes < L)
          for (size_t e = 0; e < K * K; e++) g[e] = (atr_lanes_d){0};
        for (size_t k = 0; k < lanes; k++)
          for (size_t e = 0; e < K * K; e++) g[e][k] = w[((co0 + k) * cin + ci) * K * K + e];
        // The kernel's phases: at stride 2 the taps (2u + a, 2v + b),
        // zeros past the kernel's edge.
        for (int a = 0; a < (STRIDED ? 2 : 1); a++)
          for (int b = 0; b < (STRIDED ? 2 : 1); b++) {
            atr_lanes_d p[4][4];  // (R, R) taps of the phase
            for (size_t y = 0; y < R; y++)
              for (size_t x = 0; x < R; x++) {
                const size_t ky = STRIDED ? 2 * y + (size_t)a : y, kx = STRIDED ? 2 * x + (size_t)b : x;
                p[y][x] = ky < K && kx < K ? g[ky * K + kx] : (atr_lanes_d){0};
              }
            // Row i of G p, then row i of (G p) G^T from it: a row at a
            // time, so that p and the row fit in registers (all of G p at
            // once spilled with AVX2's 16).
            for (size_t i = 0; i < T; i++) {
              atr_lanes_d t[4];  // row i of G p
              for (size_t j = 0; j < R; j++) {
                atr_lanes_d sum = {0};
                for (size_t y = 0; y < R; y++) sum += G[i][y] * p[y][j];
                t[j] = sum;
              }
              for (size_t j = 0; j < T; j++) {
                // At stride 2 an odd phase has no row (column) of positions
                // at the last row (column): its transform is zero there.
                if ((a && i + 1 == T) || (b && j + 1 == T)) continue;
                const size_t xi = i * T + j, slot = (size_t)a * (j + 1 < T && STRIDED ? 2 : 1) + (size_t)b;
                atr_lanes_d r = {0};
                for (size_t x = 0; x < R; x++) r += t[x] * G[j][x];
                const atr_lanes_f rounded = __builtin_convertvector(r, atr_lanes_f);
                // Column co0 + k of row slot * cin + ci of position xi's
                // matrix, in its panel of NR (or of its row in the stage).
                float *out = (STAGED ? stage[xi * SLOTS + slot] : weights_row(u, start[xi], depth[xi], q0, slot * cin + ci)) +
                             co0 % NR;
                // Whole groups apart: the compiler makes a loop of unknown length
                // a masked store, which AMD's cores run slowly (the 128 -> 128
                // transform at F(6x6) took 1.16 ms with one, 0.74 without).
                if (lanes == L)
                  *(atr_lanes_f_unaligned *)out = rounded;
                else
                  for (size_t k = 0; k < lanes; k++) out[k] = rounded[k];
              }
            }
          }
      }
      // Row slot * cin + ci of position xi's matrix, in its panel of NR;
      // the columns past cout keep the zeros written above.
      if (STAGED)
        for (size_t xi = 0; xi < T * T; xi++)
          for (size_t slot = 0; slot < depth[xi] / cin; slot++) {
            float *row = weights_row(u, start[xi], depth[xi], q0, slot * cin + ci);
            // A whole panel's row as a copy of constant size, inlined.
            if (columns == NR)
              memcpy(row, stage[xi * SLOTS + slot], NR * sizeof(float));
            else
              memcpy(row, stage[xi * SLOTS + slot], columns * sizeof(float));
          }
    }
  }
}

void atr_winograd_weights(float *restrict u, const float *restrict w, size_t cout, size_t cin, size_t m,
                          size_t stride, size_t first_panel, size_t panels, size_t first_channel, size_t channels) {
  const size_t c0 = first_channel, c1 = first_channel + channels;
  // G (T x R) with U = G g G^T, in double so that U is G g G^T rounded
  // once; columns past R are zeros.
  static const double G2[4][4] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  static const double G4[6][4] = {
      {1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
      {1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1},
  };
  static const double G6[8][4] = {
      {1, 0, 0},
      {-2.0 / 9, -2.0 / 9, -2.0 / 9},
      {-2.0 / 9, 2.0 / 9, -2.0 / 9},
      {1.0 / 90, 1.0 / 45, 2.0 / 45},
      {1.0 / 90, -1.0 / 45, 2.0 / 45},
      {32.0 / 45, 16.0 / 45, 8.0 / 45},
      {32.0 / 45, -16.0 / 45, 8.0 / 45},
      {0, 0, 1},
  };
  // F(4x4, 2x2), for the phases at stride 2.
  static const double G42[5][4] = {{0.5, 0}, {-0.5, -0.5}, {-1.0 / 6, 1.0 / 6}, {1.0 / 6, 1.0 / 3}, {0, 1}};
  // F(3x3, 4x4).
  static const double G34[6][4] = {
      {1.0 / 4, 0, 0, 0},
      {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
      {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6},
      {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3},
      {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3},
      {0, 0, 0, 1},
  };
  if (stride == 2)
    weights_panels(4, 2, 1, G42, u, w, cout, cin, first_panel, panels, c0, c1);
  else if (m == 3)
    weights_panels(3, 4, 0, G34, u, w, cout, cin, first_panel, panels, c0, c1);
  else if (m == 2)
    weights_panels(2, 3, 0, G2, u, w, cout, cin, first_panel, panels, c0, c1);
  else if (m == 4)
    weights_panels(4, 3, 0, G4, u, w, cout, cin, first_panel, panels, c0, c1);
  else
    weights_panels(6, 3, 0, G6, u, w, cout, cin, first_panel, panels, c0, c1);
}

// One tile's input transform for one group of WL channels: the tile's
// T x T pixels (T = M + R - 1) read at p + i * rows + j * pixels (floats),
// each line along x transformed, then each along y, into position (i, j)
// of dst (positions `plane` floats apart). At stride 2 (PA, PB >= 0) the
// pixels are phase (PA, PB)'s, and each position takes them at the
// phase's place among those it keeps (`atr_winograd_depth`), `cin`
// floats each; the positions that do not keep the phase are skipped.
// Rows first: a row's pixels are a constant stride apart, so the T^2
// addresses come from two running sums instead of T^2 offsets the
// registers cannot hold (with the columns first, the input transform
// above took 3.6 ms, rows first 2.6). With `ahead`, the M pixels after
// the tile's on each row, the next tile's new columns, are prefetched
// (2.6 ms to 2.3 to 2.45).
static inline __attribute__((always_inline)) void input_tile(const int M, const int R, const int PA, const int PB,
                                                             float *restrict dst, size_t plane, size_t cin,
                                                             const float *p, ptrdiff_t rows, ptrdiff_t pixels,
                                                             const int ahead) {
  const int T = M + R - 1;
  wv lines[MAX_TILE][MAX_TILE];  // [y][position along x]
#pragma clang loop unroll(full)
  for (int i = 0; i < T; i++) {
    wv d[MAX_TILE];
#pragma clang loop unroll(full)
    for (int j = 0; j < T; j++) d[j] = WV_LOAD(p + i * rows + j * pixels);
    if (ahead)
#pragma clang loop unroll(full)
      for (int j = 0; j < M; j++) __builtin_prefetch(p + i * rows + (T + j) * pixels);
    input_line(M, R, d, lines[i]);
  }
#pragma clang loop unroll(full)
  for (int j = 0; j < T; j++) {
    if (PB > 0 && j + 1 == T) continue;
    wv d[MAX_TILE], r[MAX_TILE];
#pragma clang loop unroll(full)
    for (int i = 0; i < T; i++) d[i] = lines[i][j];
    input_line(M, R, d, r);
    const size_t columns = PB >= 0 && j + 1 < T ? 2 : 1;
#pragma clang loop unroll(full)
    for (int i = 0; i < T; i++) {
      if (PA > 0 && i + 1 == T) continue;
      const size_t slot = PA < 0 ? 0 : (size_t)PA * columns + (size_t)PB;
      WV_STORE(dst + (size_t)(i * T + j) * plane + slot * cin, r[i]);
    }
  }
}

// One tile's input transform, all WL-channel groups, at stride 1 (PA < 0)
// or for phase (PA, PB) at stride 2: the whole tile where it lies inside
// the map (y0, x0 its first pixel, in the phase's rows and columns
// `step` apart), else its pixels, zeros outside the map, in a patch of
// its own.
static inline __attribute__((always_inline)) void input_tile_groups(const int M, const int R, const int PA,
                                                                    const int PB, float *restrict dst, size_t plane,
                                                                    const float *base, const atr_conv_geometry *g,
                                                                    size_t cin, ptrdiff_t y0, ptrdiff_t x0,
                                                                    ptrdiff_t sy, ptrdiff_t sx) {
  const int T = M + R - 1;
  const ptrdiff_t h = g->input_h, w = g->input_w;
  const ptrdiff_t rows = sy * w * (ptrdiff_t)cin, pixels = sx * (ptrdiff_t)cin;
  const int inside = y0 >= 0 && x0 >= 0 && y0 + (T - 1) * sy < h && x0 + (T - 1) * sx < w;
  for (size_t c = 0; c < cin;) {
    if (c + WL > cin) c = cin - WL;
    if (inside) {
      // A prefetch per 64-byte line: every 16 channels.
      input_tile(M, R, PA, PB, dst + c, plane, cin, base + (y0 * w + x0) * (ptrdiff_t)cin + (ptrdiff_t)c, rows, pixels,
                 PA <= 0 && c % 16 == 0);
    } else {
      wv patch[MAX_TILE * MAX_TILE];  // (T, T) pixels of WL channels
      for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
          const ptrdiff_t y = y0 + i * sy, x = x0 + j * sx;
          patch[i * T + j] = y >= 0 && y < h && x >= 0 && x < w ? WV_LOAD(base + (y * w + x) * (ptrdiff_t)cin + (ptrdiff_t)c)
                                                                : (wv){0};
        }
      input_tile(M, R, PA, PB, dst + c, plane, cin, (const float *)patch, T * WL, WL, 0);
    }
    c += WL;
  }
}

// The input transform for one output tile size: at stride 1 each tile's
// pixels dilation apart; at stride 2 each of its four phases.
static inline __attribute__((always_inline)) void input_tiles(const int M, const int R, const int strided, float *restrict v,
                                                              const float *restrict src, const atr_conv_geometry *g,
                                                              size_t cin, size_t first, size_t count) {
  const size_t width = strided ? 4 * cin : cin;
  const size_t plane = atr_winograd_plane(count, width);  // floats between tile positions
  for (size_t k = 0; k < count; k++) {
    size_t image;
    ptrdiff_t oy, ox;
    tile_origin((size_t)M, g, first + k, &image, &oy, &ox);
    const float *base = src + (size_t)image * (size_t)(g->input_h * g->input_w) * cin;
    float *dst = v + k * width;
    if (!strided) {
      input_tile_groups(M, R, -1, -1, dst, plane, base, g, cin, oy - g->pad_top, ox - g->pad_left, g->dilation_h,
                        g->dilation_w);
      continue;
    }
    const ptrdiff_t y0 = 2 * oy - g->pad_top, x0 = 2 * ox - g->pad_left;
    input_tile_groups(M, 2, 0, 0, dst, plane, base, g, cin, y0, x0, 2, 2);
    input_tile_groups(M, 2, 0, 1, dst, plane, base, g, cin, y0, x0 + 1, 2, 2);
    input_tile_groups(M, 2, 1, 0, dst, plane, base, g, cin, y0 + 1, x0, 2, 2);
    input_tile_groups(M, 2, 1, 1, dst, plane, base, g, cin, y0 + 1, x0 + 1, 2, 2);
  }
}

void atr_winograd_input(float *restrict v, const float *restrict src, const atr_conv_geometry *g, size_t cin,
                        size_t first, size_t count, size_t m) {
  if (g->stride_h == 2) input_tiles(4, 2, 1, v, src, g, cin, first, count);
  else if (m == 3) input_tiles(3, 4, 0, v, src, g, cin, first, count);
  else if (m == 2) input_tiles(2, 3, 0, v, src, g, cin, first, count);
  else if (m == 4) input_tiles(4, 3, 0, v, src, g, cin, first, count);
  else input_tiles(6, 3, 0, v, src, g, cin, first, count);
}

// One tile's output transform for one group of WL channels: the T^2
// products at s + (i * T + j) * plane, each line of positions along x
// transformed, then each along y, the bias and the residual at the same
// place (`sum`) added where they are not NULL; the first `rows` x `cols`
// of the M x M pixels stored at o + y * orow + x * opix. Called with
// constant rows and cols (M) for the whole tiles inside the map, whose
// loops then unroll. The bias comes as a pointer, not a vector: the
// baseline's ABI passes no 32-byte vectors.
static inline __attribute__((always_inline)) void output_tile(const int M, const int R, float *restrict o,
                                                              ptrdiff_t orow, ptrdiff_t opix, const float *restrict s,
                                                              size_t plane, const float *restrict bias,
                                                              const float *restrict sum, size_t rows, size_t cols) {
  const int T = M + R - 1;
  const wv b = bias ? WV_LOAD(bias) : (wv){0};
  wv lines[MAX_TILE][MAX_TILE];  // [position along y][output column]
#pragma clang loop unroll(full)
  for (int i = 0; i < T; i++) {
    wv d[MAX_TILE];
#pragma clang loop unroll(full)
    for (int j = 0; j < T; j++) d[j] = WV_LOAD(s + (size_t)(i * T + j) * plane);
    output_line(M, R, d, lines[i]);
  }
  for (size_t j = 0; j < cols; j++) {
    wv d[MAX_TILE], r[MAX_TILE];
#pragma clang loop unroll(full)
    for (int i = 0; i < T; i++) d[i] = lines[i][j];
    output_line(M, R, d, r);
    for (size_t i = 0; i < rows; i++) {
      const ptrdiff_t at = (ptrdiff_t)i * orow + (ptrdiff_t)j * opix;
      WV_STORE(o + at, sum ? r[i] + b + WV_LOAD(sum + at) : r[i] + b);
    }
  }
}

// The output transform for one output tile size, R taps along a line
// (2 at stride 2).
static inline __attribute__((always_inline)) void output_tiles(const int M, const int R, float *restrict out,
                                                               const float *restrict products,
                                                               const float *restrict bias,
                                                               const float *restrict residual, const atr_conv_geometry *g,
                                                               size_t cout, size_t first, size_t count,
                                                               const atr_pointwise_step *steps, size_t nsteps) {
  const size_t oh = g->output_h, ow = g->output_w, dy = (size_t)g->dilation_h, dx = (size_t)g->dilation_w;
  const size_t plane = atr_winograd_plane(count, cout);
  const ptrdiff_t orow = (ptrdiff_t)(dy * ow * cout), opix = (ptrdiff_t)(dx * cout);
  for (size_t k = 0; k < count; k++) {
    size_t image;
    ptrdiff_t oy, ox;
    tile_origin((size_t)M, g, first + k, &image, &oy, &ox);
    const size_t rows = tile_lines((size_t)M, oy, dy, oh), cols = tile_lines((size_t)M, ox, dx, ow);
    if (!rows || !cols) continue;
    const size_t at = ((size_t)image * oh * ow + (size_t)oy * ow + (size_t)ox) * cout;
    float *base = out + at;
    const float *src = products + k * cout;
    const int whole = rows == (size_t)M && cols == (size_t)M;
    for (size_t c = 0; c < cout;) {
      if (c + WL > cout) c = cout - WL;
      const float *b = bias ? bias + c : NULL;
      const float *sum = residual ? residual + at + c : NULL;
      if (whole && !sum) output_tile(M, R, base + c, orow, opix, src + c, plane, b, NULL, (size_t)M, (size_t)M);
      else if (whole) output_tile(M, R, base + c, orow, opix, src + c, plane, b, sum, (size_t)M, (size_t)M);
      else output_tile(M, R, base + c, orow, opix, src + c, plane, b, sum, rows, cols);
      c += WL;
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
  if (g->stride_h == 2) output_tiles(4, 2, out, products, bias, residual, g, cout, first, count, steps, nsteps);
  else if (m == 3) output_tiles(3, 4, out, products, bias, residual, g, cout, first, count, steps, nsteps);
  else if (m == 2) output_tiles(2, 3, out, products, bias, residual, g, cout, first, count, steps, nsteps);
  else if (m == 4) output_tiles(4, 3, out, products, bias, residual, g, cout, first, count, steps, nsteps);
  else output_tiles(6, 3, out, products, bias, residual, g, cout, first, count, steps, nsteps);
}
