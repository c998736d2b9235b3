// The zero-padded window of input rows that the planar convolution
// (conv.c) and the channel-blocked one (blocked.c) copy a block's input
// into. Private to this target.
#ifndef ATROUS_WINDOW_H
#define ATROUS_WINDOW_H

#include "atrous_kernels.h"

#include <string.h>

// Input rows that `output_rows` consecutive output rows read.
static inline size_t atr_window_rows(const atr_conv_geometry *g, size_t output_rows) {
  return (output_rows - 1) * (size_t)g->stride_h + (size_t)((g->kernel_h - 1) * g->dilation_h + 1);
}

// Columns of a window row: every column an output row reads, and at least
// the left padding and the input row.
static inline size_t atr_window_reach(const atr_conv_geometry *g) {
  ptrdiff_t reach = (g->output_w - 1) * g->stride_w + (g->kernel_w - 1) * g->dilation_w + 1;
  if (reach < g->input_w + g->pad_left) reach = g->input_w + g->pad_left;
  return (size_t)reach;
}

// Floats between window rows of one plane: the reach plus `slack`, in
// whole 16-float lines, an odd number of them so that the same column of
// neighbouring rows and planes falls in different cache sets.
static inline size_t atr_window_width(const atr_conv_geometry *g, size_t slack) {
  size_t w = (atr_window_reach(g) + slack + 15) / 16 * 16;
  if ((w / 16) % 2 == 0) w += 16;
  return w;
}

// Copies input rows [top, top + rows) of `channels` planes at `src` into
// window planes `plane` floats apart, rows `width` floats apart: pad_left
// zeros, the row, zeros to `width`; rows outside the input are all zeros.
// Plane by plane, so each plane's rows are read in order.
static inline __attribute__((always_inline)) void atr_fill_plane_window(float *window, size_t plane, size_t width,
                                                                        size_t rows, const float *src,
                                                                        const atr_conv_geometry *g, size_t channels,
                                                                        ptrdiff_t top) {
  const ptrdiff_t h = g->input_h, w = g->input_w, pl = g->pad_left;
  for (size_t ci = 0; ci < channels; ci++) {
    for (size_t r = 0; r < rows; r++) {
      const ptrdiff_t iy = top + (ptrdiff_t)r;
      float *dst = window + ci * plane + r * width;
      if (iy < 0 || iy >= h) {
        memset(dst, 0, width * sizeof(float));
        continue;
      }
      memset(dst, 0, (size_t)pl * sizeof(float));
      memcpy(dst + pl, src + ci * (size_t)(h * w) + (size_t)(iy * w), (size_t)w * sizeof(float));
      memset(dst + pl + w, 0, (width - (size_t)(pl + w)) * sizeof(float));
    }
  }
}

#endif
