#include "atrous_kernels.h"
#include "transpose8.h"
#include "window.h"

#include <stdint.h>
#include <string.h>

typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef float v8 __attribute__((vector_size(32), aligned(4)));
#define V16_LOAD(p) (*(const v16 *)(p))
#define V16_STORE(p, v) (*(v16 *)(p) = (v))

// The channel-blocked direct convolution. Output channels come in blocks
// of 16 (one AVX-512 vector, two AVX2 ones), up to four blocks at once;
// input channels in blocks of 16. For one output pixel and one input value the product is a
// broadcast of that value times each block's 16 weights, so a tile of
// 4 blocks x 6 pixels holds 24 accumulators and takes 10 loads for its 24
// FMAs, and the weights of one (output group, input block) pair (36 KiB
// for 3x3) stay in L1 while a whole output row passes under them.

enum { CBLOCK = 16, GROUP_BLOCKS = 4 };

static inline size_t blocks_of(size_t n) { return (n + CBLOCK - 1) / CBLOCK; }

size_t atr_conv_blocked_packed_size(size_t m, size_t channels, size_t taps) {
  const size_t mb = blocks_of(m) * CBLOCK;
  return mb + channels * taps * mb;
}

// packed: the bias (m rounded up to 16, zeros past m), then per group of
// up to four output blocks, per input block of 16 channels (fewer in the
// last), per tap, per input channel of the block, the group's output
// channels (zeros past m): (groups, cb, taps, channels in cb, blocks * 16).
void atr_conv_blocked_pack(float *packed, const float *weights, const float *bias, size_t m, size_t channels,
                           size_t taps) {
  const size_t mb = blocks_of(m), cbs = blocks_of(channels);
  memset(packed, 0, atr_conv_blocked_packed_size(m, channels, taps) * sizeof(float));
  if (bias) memcpy(packed, bias, m * sizeof(float));
  float *w = packed + mb * CBLOCK;
  for (size_t og = 0; og * GROUP_BLOCKS < mb; og++) {
    const size_t ob0 = og * GROUP_BLOCKS, obs = mb - ob0 < GROUP_BLOCKS ? mb - ob0 : GROUP_BLOCKS;
    for (size_t cb = 0; cb < cbs; cb++) {
      for (size_t t = 0; t < taps; t++) {
        for (size_t ci = cb * CBLOCK; ci < channels && ci < (cb + 1) * CBLOCK; ci++) {
          for (size_t o = 0; o < obs * CBLOCK; o++) {
            const size_t co = ob0 * CBLOCK + o;
            *w++ = co < m ? weights[(co * channels + ci) * taps + t] : 0.0f;
          }
        }
      }
    }
  }
}

// The window a block of output rows reads: every input row it needs, with
// zeros for the padding around it. Planes (channels, rows, width) when
// the input is planes, pixels (rows, width, channels) when it is channels
// last.
typedef struct {
  size_t rows, width, channels;
  size_t channel_step, pixel_step, row_step, block_step;  // floats between neighbours of each kind
} window_shape;

static window_shape window_of(const atr_conv_geometry *g, size_t channels, size_t output_rows, int channels_last) {
  window_shape s;
  s.rows = atr_window_rows(g, output_rows);
  s.channels = channels;
  if (channels_last) {
    s.width = atr_window_reach(g);
    s.channel_step = 1;
    s.pixel_step = s.channels;
    s.row_step = s.width * s.channels;
    s.block_step = CBLOCK;
  } else {
    s.width = atr_window_width(g, 0);
    s.channel_step = s.rows * s.width;
    s.pixel_step = 1;
    s.row_step = s.width;
    s.block_step = CBLOCK * s.channel_step;
  }
  return s;
}

// Output pixels one pass of the weights of a (group, input block) pair
// covers: whole output rows, about this many, so that small images still
// reuse each weight many times while it is in L1.
enum { PASS_PIXELS = 224 };

static size_t pass_rows(const atr_conv_geometry *g, size_t rows) {
  size_t r = PASS_PIXELS / (size_t)g->output_w;
  if (r < 1) r = 1;
  return r < rows ? r : rows;
}

size_t atr_conv_blocked_scratch(const atr_conv_geometry *g, size_t channels, size_t output_rows, int channels_last) {
  const window_shape s = window_of(g, channels, output_rows, channels_last);
  const size_t window = s.channels * s.rows * s.width;
  const size_t acc = GROUP_BLOCKS * pass_rows(g, output_rows) * (size_t)g->output_w * CBLOCK;
  return (window + acc) * sizeof(float) + 64;
}

// Where a tile's finished vectors go: block o of pixel p at
// at + o * block_step + p * pixel_step.
typedef struct {
  float *at;
  ptrdiff_t block_step, pixel_step;
} tile_out;

// The tile's body for vectors of type VT: OB of them per pixel, each
// loaded and stored whole, so a tile of 8-float vectors (OB 1) covers the
// first half of a block only.
#define ATR_BLOCKED_TILE(VT)                                                                        \
  VT a[GROUP_BLOCKS][12];                                                                          \
  _Pragma("clang loop unroll(full)") for (int o = 0; o < OB; o++) {                                \
    _Pragma("clang loop unroll(full)") for (int p = 0; p < PX; p++) a[o][p] =                      \
      start ? *(const VT *)(start + o * CBLOCK) : *(const VT *)(acc + o * ob_stride + p * CBLOCK); \
  }                                                                                                \
  for (ptrdiff_t ky = 0; ky < kh; ky++) {                                                          \
    for (ptrdiff_t kx = 0; kx < kw; kx++) {                                                        \
      const float *x = rows[ky] + kx * kstep;                                                      \
      for (int c = 0; c < cn; c++, x += cstep, w += wstride) {                                     \
        VT wv[GROUP_BLOCKS];                                                                       \
        _Pragma("clang loop unroll(full)") for (int o = 0; o < OB; o++) wv[o] =                    \
          *(const VT *)(w + o * CBLOCK);                                                           \
        _Pragma("clang loop unroll(full)") for (int p = 0; p < PX; p++) {                          \
          const float v = x[p * pstep];                                                            \
          _Pragma("clang loop unroll(full)") for (int o = 0; o < OB; o++) a[o][p] += wv[o] * v;    \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  _Pragma("clang loop unroll(full)") for (int o = 0; o < OB; o++) {                                \
    _Pragma("clang loop unroll(full)") for (int p = 0; p < PX; p++)                                \
      *(VT *)(dst.at + o * dst.block_step + p * dst.pixel_step) = a[o][p];                         \
  }

// One tile: OB output blocks x PX output pixels, over one input block and
// every tap, for the cn channels of the block (16 but in the last); HALF
// (with OB 1) computes the block's first 8 channels alone, in vectors of
// 8, for a last block of 8 channels or fewer.
// rows[ky] is where kernel row ky reads channel 0 of the block
// for the tile's first pixel; channel c is c * cstep floats on, pixel p
// p * pstep, tap kx kx * kstep. acc is (OB, ., 16) with `ob_stride`
// floats between blocks; it starts from `start` (OB vectors) when given,
// else from acc itself, and goes to `dst` (acc itself, or the output's
// pixels). The weights of one input channel are OB vectors
// at w, the next channel's `wstride` floats on (the whole group's, when a
// tile takes fewer blocks than the group packs). Callers pass
// compile-time steps where they can. Every loop over o and p is unrolled
// in full, so that the accumulators live in registers.
static inline __attribute__((always_inline)) void blocked_tile(const int OB, const int PX, const int HALF,
                                                       const float *const *rows, ptrdiff_t cstep, ptrdiff_t pstep,
                                                       ptrdiff_t kstep, ptrdiff_t kh, ptrdiff_t kw, int cn,
                                                       const float *w, ptrdiff_t wstride, float *acc, size_t ob_stride,
                                                       const float *start, tile_out dst) {
  if (HALF) {
    ATR_BLOCKED_TILE(v8)
  } else {
    ATR_BLOCKED_TILE(v16)
  }
}
#undef ATR_BLOCKED_TILE

// One output row for OB blocks over one input block: tiles of PX pixels
// (OB * PX accumulators, OB weight vectors and a broadcast fit the
// registers), then the rest in tiles of 8 (where 8 fit), 4, 2 and 1.
// LAYOUT is 0 for planes read at stride 1, 3 at stride 2, 1 at any
// stride, 2 for channels last. A step known when compiling makes each
// broadcast's address a constant offset; a step known only at run time
// is added to the pointer once per pixel, a chain of dependent adds that
// holds a tile of one block (12 FMAs to its 12 adds) to one FMA a cycle:
// a first convolution, 3 -> 16 channels at stride 2, took 1.5 times as long.
#define ATR_TILE(N)                                                                                 \
  blocked_tile(OB, N, HALF, at, cstep, pstep, kstep, kh, kw, cn, w, wstride, acc + x * CBLOCK, ob_stride, start, \
               (tile_out){dst.at + x * dst.pixel_step, dst.block_step, dst.pixel_step})
static inline __attribute__((always_inline)) void row_pass(const int OB, const int PX, const int HALF, const int LAYOUT,
                                                           const float *const *rows, const window_shape *s,
                                                           const atr_conv_geometry *g, int cn, const float *w,
                                                           ptrdiff_t wstride, float *acc, size_t ob_stride,
                                                           const float *start, tile_out dst) {
  const ptrdiff_t ow = g->output_w, kh = g->kernel_h, kw = g->kernel_w;
  const ptrdiff_t cstep = LAYOUT == 2 ? 1 : (ptrdiff_t)s->channel_step;
  const ptrdiff_t xstep = LAYOUT == 2 ? (ptrdiff_t)s->pixel_step : 1;
  const ptrdiff_t pstep = LAYOUT == 0 ? 1 : LAYOUT == 3 ? 2 : g->stride_w * xstep;
  const ptrdiff_t kstep = g->dilation_w * xstep;
  const float *at[16];
  ptrdiff_t x = 0;
  while (x < ow) {
    const ptrdiff_t rest = ow - x;
    const ptrdiff_t step = rest >= PX ? PX : OB < 4 && rest >= 8 ? 8 : rest >= 4 ? 4 : rest >= 2 ? 2 : 1;
    for (ptrdiff_t ky = 0; ky < kh; ky++) at[ky] = rows[ky] + x * pstep;
    if (step == PX) ATR_TILE(PX);
    else if (step == 8) ATR_TILE(8);
    else if (step == 4) ATR_TILE(4);
    else if (step == 2) ATR_TILE(2);
    else ATR_TILE(1);
    x += step;
  }
}
#undef ATR_TILE

// The tile shapes by register file. AVX-512's 32 registers of 16 floats
// hold up to 4 blocks x 6 pixels of accumulators; AVX2's 16 registers of
// 8 floats hold one block (two registers) x 6 pixels, 12 registers, beside
// the block's weights and a broadcast, so a group of blocks is passed one
// block at a time, each reading its own vectors of the group's weights.
// A last block of 8 channels or fewer (`half_last`) is computed in
// vectors of 8, 12 pixels at a time (6 where registers hold 4 floats),
// not as 16 channels half of them zeros: with AVX2 a first convolution
// 3 -> 8 at stride 2 took 0.88 of the time, ShuffleNetV2's 3 -> 24 0.9.
// With AVX-512 only a group of that one block does: a last half block
// beside others rides in their tiles.
static inline __attribute__((always_inline)) void row_pass_any(size_t obs, int half_last, int layout,
                                                               const float *const *rows, const window_shape *s,
                                                               const atr_conv_geometry *g, int cn, const float *w,
                                                               float *acc, size_t ob_stride, const float *start,
                                                               tile_out dst) {
#define ATR_LAYOUTS(OB, PX, HALF, W, ACC, START, WSTRIDE, DST)                                       \
  switch (layout) {                                                                                  \
  case 0: row_pass(OB, PX, HALF, 0, rows, s, g, cn, W, WSTRIDE, ACC, ob_stride, START, DST); break;  \
  case 1: row_pass(OB, PX, HALF, 1, rows, s, g, cn, W, WSTRIDE, ACC, ob_stride, START, DST); break;  \
  case 3: row_pass(OB, PX, HALF, 3, rows, s, g, cn, W, WSTRIDE, ACC, ob_stride, START, DST); break;  \
  default: row_pass(OB, PX, HALF, 2, rows, s, g, cn, W, WSTRIDE, ACC, ob_stride, START, DST); break; \
  }
#if ATR_ISA_WIDE
  if (obs == 1 && half_last) {
    ATR_LAYOUTS(1, 12, 1, w, acc, start, CBLOCK, dst);
    return;
  }
  switch (obs) {
  case 4: ATR_LAYOUTS(4, 6, 0, w, acc, start, 4 * CBLOCK, dst); break;
  case 3: ATR_LAYOUTS(3, 8, 0, w, acc, start, 3 * CBLOCK, dst); break;
  case 2: ATR_LAYOUTS(2, 12, 0, w, acc, start, 2 * CBLOCK, dst); break;
  default: ATR_LAYOUTS(1, 12, 0, w, acc, start, CBLOCK, dst); break;
  }
#else
  const ptrdiff_t wstride = (ptrdiff_t)obs * CBLOCK;
  for (size_t o = 0; o < obs; o++) {
    const float *wo = w + o * CBLOCK, *so = start ? start + o * CBLOCK : NULL;
    const tile_out d = {dst.at + o * dst.block_step, dst.block_step, dst.pixel_step};
    if (half_last && o == obs - 1) {
      ATR_LAYOUTS(1, ATR_EIGHT_LANES ? 12 : 6, 1, wo, acc + o * ob_stride, so, wstride, d);
    } else {
      ATR_LAYOUTS(1, 6, 0, wo, acc + o * ob_stride, so, wstride, d);
    }
  }
#endif
#undef ATR_LAYOUTS
}

// `pixels` finished output pixels of a group, (blocks, pixels, 16) with
// `ob_stride` floats between blocks, into planes (pixel_stride 1) or
// channels-last pixels (channel_stride 1; only a group ending in a part
// block comes here, the tiles store whole ones themselves).
static inline __attribute__((always_inline)) void write_pixels(float *out, size_t channel_stride, size_t pixel_stride,
                                                               const float *acc, size_t ob_stride, size_t obs,
                                                               size_t channels, size_t pixels) {
  for (size_t o = 0; o < obs; o++) {
    const float *block = acc + o * ob_stride;
    const size_t count = channels - o * CBLOCK < CBLOCK ? channels - o * CBLOCK : CBLOCK;
    float *dst = out + o * CBLOCK * channel_stride;
    if (pixel_stride == 1) {
      // Whole 8x8 blocks inline (a call per block pair costs about 2% of
      // a dilated 3x3 conv), the rest through the shared transpose.
      size_t x = 0;
      if (count == CBLOCK) {
        for (; x + 8 <= pixels; x += 8) {
          atr_transpose8(dst + x, channel_stride, block + x * CBLOCK, CBLOCK);
          atr_transpose8(dst + 8 * channel_stride + x, channel_stride, block + x * CBLOCK + 8, CBLOCK);
        }
      }
      atr_transpose_strided(dst + x, channel_stride, block + x * CBLOCK, CBLOCK, pixels - x, count);
    } else if (count == CBLOCK) {
      for (size_t x = 0; x < pixels; x++) V16_STORE(dst + x * pixel_stride, V16_LOAD(block + x * CBLOCK));
    } else {
      for (size_t x = 0; x < pixels; x++) move_part(dst + x * pixel_stride, block + x * CBLOCK, count, NULL);
    }
  }
}

// Copies the input rows the block reads into the window, zero-padded.
static inline __attribute__((always_inline)) void fill_window(float *window, const window_shape *s, const float *src,
                                                              const atr_conv_geometry *g, size_t channels,
                                                              ptrdiff_t top, int channels_last) {
  if (!channels_last) {
    atr_fill_plane_window(window, s->channel_step, s->width, s->rows, src, g, channels, top);
    return;
  }
  const ptrdiff_t h = g->input_h, w = g->input_w, pl = g->pad_left;
  const size_t pixel = (size_t)g->pixel_stride;
  for (size_t r = 0; r < s->rows; r++) {
    const ptrdiff_t iy = top + (ptrdiff_t)r;
    float *dst = window + r * s->row_step;
    if (iy < 0 || iy >= h) {
      memset(dst, 0, s->row_step * sizeof(float));
      continue;
    }
    memset(dst, 0, (size_t)pl * channels * sizeof(float));
    const float *line = src + (size_t)(iy * w) * pixel;
    float *d = dst + (size_t)pl * channels;
    if (pixel == channels) {
      memcpy(d, line, (size_t)w * channels * sizeof(float));
    } else {
      for (ptrdiff_t x = 0; x < w; x++) memcpy(d + (size_t)x * channels, line + (size_t)x * pixel, channels * sizeof(float));
    }
    memset(dst + (size_t)(pl + w) * channels, 0, (s->width - (size_t)(pl + w)) * channels * sizeof(float));
  }
}

void atr_conv_blocked(float *out, size_t channel_stride, size_t pixel_stride, size_t m, const float *packed,
                      const float *src, int channels_last, const atr_conv_geometry *g, size_t channels, size_t y0,
                      size_t rows, void *scratch, const atr_pointwise_step *steps, size_t nsteps) {
  const window_shape s = window_of(g, channels, rows, channels_last);
  const size_t cbs = blocks_of(channels), mb = blocks_of(m), taps = (size_t)(g->kernel_h * g->kernel_w);
  const size_t ow = (size_t)g->output_w, per_pass = pass_rows(g, rows);
  float *window = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
  float *acc = window + s.channels * s.rows * s.width;  // (4, per_pass * OW, 16)
  const size_t ob_stride = per_pass * ow * CBLOCK;
  fill_window(window, &s, src, g, channels, (ptrdiff_t)y0 * g->stride_h - g->pad_top, channels_last);

  const int layout = channels_last ? 2 : g->stride_w == 1 ? 0 : g->stride_w == 2 ? 3 : 1;
  const float *bias = packed;
  const float *weights = packed + mb * CBLOCK;
  const float *row_at[16];
  for (size_t y = 0; y < rows; y += per_pass) {
    const size_t pass = rows - y < per_pass ? rows - y : per_pass;
    for (size_t og = 0; og * GROUP_BLOCKS < mb; og++) {
      const size_t ob0 = og * GROUP_BLOCKS, obs = mb - ob0 < GROUP_BLOCKS ? mb - ob0 : GROUP_BLOCKS;
      const float *group_weights = weights + ob0 * CBLOCK * channels * taps;
      float *group_out = out + ob0 * CBLOCK * channel_stride + y * ow * pixel_stride;
      // Whole blocks of channels-last pixels: the last input block's
      // tiles store straight into the output, each as it is finished, so
      // the stores (to lines often not yet in cache) overlap the products
      // instead of waiting in a pass of their own after them.
      const int direct = channel_stride == 1 && pixel_stride != 1 && m - ob0 * CBLOCK >= obs * CBLOCK;
      for (size_t cb = 0; cb < cbs; cb++) {
        const float *w = group_weights + cb * CBLOCK * taps * obs * CBLOCK;
        const int cn = channels - cb * CBLOCK < CBLOCK ? (int)(channels - cb * CBLOCK) : CBLOCK;
        for (size_t yy = 0; yy < pass; yy++) {
          for (ptrdiff_t ky = 0; ky < g->kernel_h; ky++) {
            const size_t r = (y + yy) * (size_t)g->stride_h + (size_t)(ky * g->dilation_h);
            row_at[ky] = window + cb * s.block_step + r * s.row_step;
          }
          const tile_out dst = direct && cb == cbs - 1
            ? (tile_out){group_out + yy * ow * pixel_stride, CBLOCK, (ptrdiff_t)pixel_stride}
            : (tile_out){acc + yy * ow * CBLOCK, (ptrdiff_t)ob_stride, CBLOCK};
          row_pass_any(obs, m - ob0 * CBLOCK <= obs * CBLOCK - CBLOCK / 2, layout, row_at, &s, g, cn, w,
                       acc + yy * ow * CBLOCK, ob_stride,
                       cb == 0 ? bias + ob0 * CBLOCK : NULL, dst);
        }
      }
      if (direct) {
        atr_pointwise(group_out, pass * ow, obs * CBLOCK, pixel_stride, steps, nsteps);
        continue;
      }
      // The fused steps on the finished pixels while they are in L1,
      // rather than a pass over the output after.
      if (nsteps) {
        for (size_t o = 0; o < obs; o++) atr_pointwise(acc + o * ob_stride, 1, pass * ow * CBLOCK, 0, steps, nsteps);
      }
      write_pixels(group_out, channel_stride, pixel_stride, acc, ob_stride, obs, m - ob0 * CBLOCK, pass * ow);
    }
  }
}
