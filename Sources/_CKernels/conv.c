#include "atrous_kernels.h"

#include <string.h>

#if defined(__x86_64__) && defined(__clang__) && defined(__linux__)
#define ATR_MULTIVERSION __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define ATR_MULTIVERSION
#endif

typedef float v16 __attribute__((vector_size(64), aligned(4)));
#define V16_LOAD(p) (*(const v16 *)(p))
#define V16_STORE(p, v) (*(v16 *)(p) = (v))

// Short runs (a first layer's 3 channels) are copied inline: a memcpy call
// per tap costs more than the copy.
static inline __attribute__((always_inline)) void copy_run(float *restrict dst, const float *restrict src, size_t n) {
  if (n >= 16) {
    memcpy(dst, src, n * sizeof(float));
  } else {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
  }
}

ATR_MULTIVERSION
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

ATR_MULTIVERSION
void atr_depthwise_row(float *restrict out, const float *const *rows, const float *restrict weights,
                       const float *restrict bias, const atr_conv_geometry *g, size_t channels) {
  const ptrdiff_t w = g->input_w, kw = g->kernel_w, kh = g->kernel_h;
  const size_t c = channels;
  for (size_t ox = 0; ox < g->output_w; ox++) {
    const ptrdiff_t ix0 = (ptrdiff_t)ox * g->stride_w - g->pad_left;
    // The taps that land inside the row: [kx0, kx1).
    ptrdiff_t kx0 = 0, kx1 = kw;
    while (kx0 < kw && ix0 + kx0 * g->dilation_w < 0) kx0++;
    while (kx1 > kx0 && ix0 + (kx1 - 1) * g->dilation_w >= w) kx1--;
    float *o = out + ox * c;
    size_t ch = 0;
    // 64 channels at a time in four accumulators, then 16, then one.
    for (; ch + 64 <= c; ch += 64) {
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
      V16_STORE(o + ch, s0); V16_STORE(o + ch + 16, s1); V16_STORE(o + ch + 32, s2); V16_STORE(o + ch + 48, s3);
    }
    for (; ch + 16 <= c; ch += 16) {
      v16 s = {0};
      if (bias) s = V16_LOAD(bias + ch);
      for (ptrdiff_t ky = 0; ky < kh; ky++) {
        if (!rows[ky]) continue;
        for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
          s += V16_LOAD(rows[ky] + (ix0 + kx * g->dilation_w) * g->pixel_stride + ch) * V16_LOAD(weights + (ky * kw + kx) * c + ch);
        }
      }
      V16_STORE(o + ch, s);
    }
    for (; ch < c; ch++) {
      float s = bias ? bias[ch] : 0.0f;
      for (ptrdiff_t ky = 0; ky < kh; ky++) {
        if (!rows[ky]) continue;
        for (ptrdiff_t kx = kx0; kx < kx1; kx++) {
          s += rows[ky][(ix0 + kx * g->dilation_w) * g->pixel_stride + ch] * weights[(ky * kw + kx) * c + ch];
        }
      }
      o[ch] = s;
    }
  }
}

ATR_MULTIVERSION
void atr_add_rows(float *restrict out, const float *const *rows, size_t nrows, size_t count) {
  for (size_t r = 0; r < nrows; r++) {
    const float *restrict x = rows[r];
    for (size_t i = 0; i < count; i++) out[i] += x[i];
  }
}

ATR_MULTIVERSION
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

// Each step runs over a chunk small enough to stay in L1, so a chain of
// steps costs one pass over memory, and each step's loop vectorizes.
enum { POINTWISE_CHUNK = 512 };

static inline __attribute__((always_inline)) void pointwise_chunk(float *restrict x, size_t n,
                                                                   const atr_pointwise_step *steps, size_t nsteps) {
  for (size_t s = 0; s < nsteps; s++) {
    const float a = steps[s].a, b = steps[s].b;
    switch (steps[s].op) {
      case ATR_PW_RELU: for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f; break;
      case ATR_PW_CLIP: for (size_t i = 0; i < n; i++) x[i] = fminf(fmaxf(x[i], a), b); break;
      case ATR_PW_AFFINE: for (size_t i = 0; i < n; i++) x[i] = x[i] * a + b; break;
      case ATR_PW_HARDSWISH:
        for (size_t i = 0; i < n; i++) x[i] = x[i] * fmaxf(0.0f, fminf(1.0f, x[i] / 6.0f + 0.5f));
        break;
      case ATR_PW_HARDSIGMOID: for (size_t i = 0; i < n; i++) x[i] = fmaxf(0.0f, fminf(1.0f, a * x[i] + b)); break;
      case ATR_PW_LEAKYRELU: for (size_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? a * x[i] : x[i]; break;
      case ATR_PW_SIGMOID: for (size_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i])); break;
    }
  }
}

ATR_MULTIVERSION
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
