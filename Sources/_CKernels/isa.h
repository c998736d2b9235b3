// The kernels compiled once per instruction set, and how the units that
// compile them and the entry points that pick one agree on names. Private
// to this target.
//
// Each `isa_*.c` unit defines ATR_ISA_SUFFIX (and ATR_ISA_WIDE, 1 where
// there are 32 vector registers of 16 floats; ATR_ISA_EIGHT_LANES, 1 where
// a register holds 8 floats, which shapes the product's tiles) before
// including this header: every kernel's name then gains the suffix (atr_filter_row
// becomes atr_filter_row_avx2), in its declaration in atrous_kernels.h,
// its definition in kernels/ and every call between kernels, so a kernel
// only ever calls kernels of its own instruction set. The unit ends with
// its table of the kernels; `dispatch.c` defines the public names, each
// calling through the table `atr_kernels()` picks.
#ifndef ATROUS_ISA_H
#define ATROUS_ISA_H

// Every kernel, without its atr_ prefix; the table has one entry for each.
#define ATR_KERNEL_FUNCTIONS(X) \
  X(conv_blocked_packed_size) \
  X(conv_blocked_pack) \
  X(conv_blocked_scratch) \
  X(conv_blocked) \
  X(im2col) \
  X(conv_planes_scratch) \
  X(conv_planes) \
  X(im2col_panels) \
  X(depthwise_row) \
  X(conv_group8_row) \
  X(depthwise_plane_scratch) \
  X(depthwise_plane) \
  X(add_rows) \
  X(transposed_gather_row) \
  X(pointwise) \
  X(softmax_rows) \
  X(pool_row) \
  X(gather_planes_strided) \
  X(gemv_columns) \
  X(gemv_packed_size) \
  X(gemv_rows) \
  X(gemv_pack) \
  X(filter_row) \
  X(filter_row_strided) \
  X(filter_row_accumulate) \
  X(filter_columns_rows) \
  X(magnitude) \
  X(lerp) \
  X(lerp_pixels) \
  X(bilinear_plane_row) \
  X(multiply_add) \
  X(scale) \
  X(scale_add) \
  X(sobel3_magnitude) \
  X(float16_from_float) \
  X(float16_round) \
  X(binary) \
  X(transpose_columns) \
  X(transpose_strided) \
  X(transpose) \
  X(sgemm) \
  X(packed_b_size) \
  X(sgemm_tile_rows) \
  X(pack_b) \
  X(pack_b_rows) \
  X(sgemm_packed) \
  X(sgemm_packed_fresh) \
  X(sgemm_packed_sum) \
  X(sgemm_rows) \
  X(channel_affine) \
  X(max_into) \
  X(add_into) \
  X(gather_channels) \
  X(interleave_channels) \
  X(concat_rows) \
  X(layer_norm_rows) \
  X(reduce_extreme) \
  X(reduce_sum) \
  X(reduce_extreme_into) \
  X(reduce_sum_into) \
  X(pixels_into) \
  X(box_mean_pass) \
  X(weighted_sum) \
  X(winograd_lanes) \
  X(winograd_tiles) \
  X(winograd_weights) \
  X(winograd_input) \
  X(winograd_output)

#define ATR_ISA_PASTE2(a, b) a##b
#define ATR_ISA_PASTE(a, b) ATR_ISA_PASTE2(a, b)

#ifdef ATR_ISA_SUFFIX
#define ATR_ISA_NAME(name) ATR_ISA_PASTE(name, ATR_ISA_SUFFIX)
#define atr_conv_blocked_packed_size ATR_ISA_NAME(atr_conv_blocked_packed_size)
#define atr_conv_blocked_pack ATR_ISA_NAME(atr_conv_blocked_pack)
#define atr_conv_blocked_scratch ATR_ISA_NAME(atr_conv_blocked_scratch)
#define atr_conv_blocked ATR_ISA_NAME(atr_conv_blocked)
#define atr_im2col ATR_ISA_NAME(atr_im2col)
#define atr_conv_planes_scratch ATR_ISA_NAME(atr_conv_planes_scratch)
#define atr_conv_planes ATR_ISA_NAME(atr_conv_planes)
#define atr_im2col_panels ATR_ISA_NAME(atr_im2col_panels)
#define atr_depthwise_row ATR_ISA_NAME(atr_depthwise_row)
#define atr_conv_group8_row ATR_ISA_NAME(atr_conv_group8_row)
#define atr_depthwise_plane_scratch ATR_ISA_NAME(atr_depthwise_plane_scratch)
#define atr_depthwise_plane ATR_ISA_NAME(atr_depthwise_plane)
#define atr_add_rows ATR_ISA_NAME(atr_add_rows)
#define atr_transposed_gather_row ATR_ISA_NAME(atr_transposed_gather_row)
#define atr_pointwise ATR_ISA_NAME(atr_pointwise)
#define atr_softmax_rows ATR_ISA_NAME(atr_softmax_rows)
#define atr_pool_row ATR_ISA_NAME(atr_pool_row)
#define atr_gather_planes_strided ATR_ISA_NAME(atr_gather_planes_strided)
#define atr_gemv_rows ATR_ISA_NAME(atr_gemv_rows)
#define atr_gemv_pack ATR_ISA_NAME(atr_gemv_pack)
#define atr_gemv_columns ATR_ISA_NAME(atr_gemv_columns)
#define atr_gemv_packed_size ATR_ISA_NAME(atr_gemv_packed_size)
#define atr_filter_row ATR_ISA_NAME(atr_filter_row)
#define atr_filter_row_strided ATR_ISA_NAME(atr_filter_row_strided)
#define atr_filter_row_accumulate ATR_ISA_NAME(atr_filter_row_accumulate)
#define atr_filter_columns_rows ATR_ISA_NAME(atr_filter_columns_rows)
#define atr_magnitude ATR_ISA_NAME(atr_magnitude)
#define atr_lerp ATR_ISA_NAME(atr_lerp)
#define atr_lerp_pixels ATR_ISA_NAME(atr_lerp_pixels)
#define atr_bilinear_plane_row ATR_ISA_NAME(atr_bilinear_plane_row)
#define atr_multiply_add ATR_ISA_NAME(atr_multiply_add)
#define atr_scale ATR_ISA_NAME(atr_scale)
#define atr_scale_add ATR_ISA_NAME(atr_scale_add)
#define atr_sobel3_magnitude ATR_ISA_NAME(atr_sobel3_magnitude)
#define atr_float16_from_float ATR_ISA_NAME(atr_float16_from_float)
#define atr_float16_round ATR_ISA_NAME(atr_float16_round)
#define atr_binary ATR_ISA_NAME(atr_binary)
#define atr_transpose_columns ATR_ISA_NAME(atr_transpose_columns)
#define atr_transpose_strided ATR_ISA_NAME(atr_transpose_strided)
#define atr_transpose ATR_ISA_NAME(atr_transpose)
#define atr_sgemm ATR_ISA_NAME(atr_sgemm)
#define atr_packed_b_size ATR_ISA_NAME(atr_packed_b_size)
#define atr_sgemm_tile_rows ATR_ISA_NAME(atr_sgemm_tile_rows)
#define atr_pack_b ATR_ISA_NAME(atr_pack_b)
#define atr_pack_b_rows ATR_ISA_NAME(atr_pack_b_rows)
#define atr_sgemm_packed ATR_ISA_NAME(atr_sgemm_packed)
#define atr_sgemm_packed_fresh ATR_ISA_NAME(atr_sgemm_packed_fresh)
#define atr_sgemm_packed_sum ATR_ISA_NAME(atr_sgemm_packed_sum)
#define atr_sgemm_rows ATR_ISA_NAME(atr_sgemm_rows)
#define atr_channel_affine ATR_ISA_NAME(atr_channel_affine)
#define atr_max_into ATR_ISA_NAME(atr_max_into)
#define atr_add_into ATR_ISA_NAME(atr_add_into)
#define atr_gather_channels ATR_ISA_NAME(atr_gather_channels)
#define atr_interleave_channels ATR_ISA_NAME(atr_interleave_channels)
#define atr_concat_rows ATR_ISA_NAME(atr_concat_rows)
#define atr_layer_norm_rows ATR_ISA_NAME(atr_layer_norm_rows)
#define atr_reduce_extreme ATR_ISA_NAME(atr_reduce_extreme)
#define atr_reduce_sum ATR_ISA_NAME(atr_reduce_sum)
#define atr_reduce_extreme_into ATR_ISA_NAME(atr_reduce_extreme_into)
#define atr_reduce_sum_into ATR_ISA_NAME(atr_reduce_sum_into)
#define atr_pixels_into ATR_ISA_NAME(atr_pixels_into)
#define atr_box_mean_pass ATR_ISA_NAME(atr_box_mean_pass)
#define atr_weighted_sum ATR_ISA_NAME(atr_weighted_sum)
#define atr_winograd_lanes ATR_ISA_NAME(atr_winograd_lanes)
#define atr_winograd_tiles ATR_ISA_NAME(atr_winograd_tiles)
#define atr_winograd_weights ATR_ISA_NAME(atr_winograd_weights)
#define atr_winograd_input ATR_ISA_NAME(atr_winograd_input)
#define atr_winograd_output ATR_ISA_NAME(atr_winograd_output)
#endif

#include "atrous_kernels.h"

#define ATR_KERNEL_FIELD(name) __typeof__(atr_##name) *name;
typedef struct {
  ATR_KERNEL_FUNCTIONS(ATR_KERNEL_FIELD)
} atr_kernel_table;
#undef ATR_KERNEL_FIELD

// One table per instruction set built for this architecture.
extern const atr_kernel_table atr_kernels_baseline;
#if defined(__x86_64__)
extern const atr_kernel_table atr_kernels_avx2;
extern const atr_kernel_table atr_kernels_avx512;
#endif

// The table of the instruction set the calling thread uses (`isa.c`).
const atr_kernel_table *atr_kernels(void);

#endif
