#ifndef ATROUS_KERNELS_H
#define ATROUS_KERNELS_H

// Vectorized inner loops over contiguous float32 rows. Each function is
// compiled for AVX-512, AVX2+FMA and the baseline instruction set on x86-64
// and picked when called, so the binary runs on any x86-64 (and arm64,
// where only the baseline NEON version exists) while using the widest
// vectors the machine has, or fewer when asked (`ATROUS_ISA`).

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The instruction sets the kernels are built for, in increasing order.
typedef enum {
  /// x86-64's SSE2 (or arm64's NEON): every CPU of the architecture.
  ATR_ISA_BASELINE = 0,
  /// x86-64-v3: AVX2, FMA, F16C, BMI1/2.
  ATR_ISA_AVX2 = 1,
  /// x86-64-v4: AVX-512 F, VL, BW, DQ beside x86-64-v3.
  ATR_ISA_AVX512 = 2,
} atr_isa;

/// The widest instruction set this CPU has that the kernels are built for.
atr_isa atr_isa_supported(void);

/// The instruction set the process uses: `atr_isa_supported`, capped by
/// the environment variable ATROUS_ISA (`avx512`, `avx2` or `baseline`)
/// when set to one of those; read once, at load time.
atr_isa atr_isa_process(void);

/// The instruction set `ATROUS_ISA` names, or -1 when it is unset; -2
/// when it names none (the command line reports that).
int atr_isa_requested(void);

/// The instruction set kernels called on this thread use: the thread's
/// own choice when it has one (`atr_isa_set_thread`), else the process's.
atr_isa atr_isa_current(void);

/// The calling thread's own instruction set, or -1 when it uses the process's.
int atr_isa_thread(void);

/// Gives the calling thread its own instruction set (capped by what the
/// CPU has), or with -1 takes it back to the process's. Returns the
/// thread's earlier choice (-1 for none), to restore after. Lets tests run
/// every kernel of every instruction set the machine has in one process.
int atr_isa_set_thread(int isa);

/// "avx512", "avx2" or "baseline" (on arm64, "neon").
const char *atr_isa_name(atr_isa isa);

/// Bytes of one core's level-1 data cache and level-2 cache, read from the
/// system once at load time (the kernel's description of cpu0's caches,
/// else the C library's; 32 KiB and 1 MiB where neither says),
/// held to 16 KiB..1 MiB and 256 KiB..16 MiB. Tile and block sizes of the
/// kernels, and of the callers that cut work into blocks, follow them.
size_t atr_cache_l1d(void);
size_t atr_cache_l2(void);
/// Bytes of the last-level cache a core reaches, read as the others (8
/// MiB where the system does not say).
size_t atr_cache_l3(void);

/// CPUs in the calling process's affinity mask (what taskset and a
/// scheduler's CPU set allow); 0 when the system does not say.
int atr_affinity_cpus(void);

/// The CPU the calling thread runs on, or -1 where unknown.
int atr_current_cpu(void);

/// Moves the calling thread off `cpu` to another CPU of its affinity
/// mask, which it keeps (the scheduler may later move the thread back);
/// 0 when moved, -1 when the mask holds no other CPU or the system refuses.
int atr_step_off_cpu(int cpu);

/// Allocates disk space for the first `bytes` bytes of the open file `fd`
/// (fallocate, mode 0: the file grows to that size, reading as zeros), so
/// the writes that fill it find their blocks and a full disk is known
/// before they start. Returns 0, or the errno: ENOSPC, EDQUOT or EFBIG
/// when the space is not there, EOPNOTSUPP where the file system (or the
/// system) has no such call.
int atr_reserve_file(int fd, int64_t bytes);

/// Starts writing the bytes [start, start + length) of the open file `fd`
/// to disk and returns without waiting (sync_file_range). Returns 0 or
/// the errno (EOPNOTSUPP where the system has no such call).
int atr_start_writeback(int fd, int64_t start, int64_t length);

/// Waits until the bytes [start, start + length) of `fd` are on disk, then
/// drops the whole pages among them from the page cache. Returns 0 or the
/// errno (EIO when writing them failed).
int atr_settle_range(int fd, int64_t start, int64_t length);

/// Faults in the pages of `bytes` bytes at `start` for writing without
/// changing what they hold (another thread may be writing them).
void atr_touch_pages(void *start, size_t bytes);

/// A hint inside a busy-wait loop: the core slows the loop down and leaves
/// its execution units to the other hardware thread sharing it (a virtual
/// machine's cores may be two threads of one physical core).
static inline void atr_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/// Takes up to `grain` indices from a band of work [front, back) kept in
/// one word (front in the high 32 bits, back in the low 32): from the front
/// (`from_back` 0, the band's owner) or from the back (another thread that
/// has finished its own band). Sets [*lo, *hi) and returns 1, or returns 0
/// when the band is empty. Atomic, so owner and thieves never take the same
/// index.
static inline int atr_band_take(uint64_t *band, uint32_t grain, int from_back, uint32_t *lo, uint32_t *hi) {
  uint64_t old = __atomic_load_n(band, __ATOMIC_RELAXED);
  for (;;) {
    const uint32_t front = (uint32_t)(old >> 32), back = (uint32_t)old;
    if (front >= back) return 0;
    uint32_t new_front = front, new_back = back;
    if (from_back) {
      new_back = back - front > grain ? back - grain : front;
      *lo = new_back;
      *hi = back;
    } else {
      new_front = back - front > grain ? front + grain : back;
      *lo = front;
      *hi = new_front;
    }
    const uint64_t desired = ((uint64_t)new_front << 32) | new_back;
    if (__atomic_compare_exchange_n(band, &old, desired, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return 1;
  }
}

/// Symmetry of a tap vector, which lets the row filter fold mirrored taps
/// and halve its multiplies.
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

/// out[r][j] = sum_t taps[t] * rows[r + t][j], for r in [0, nout) and j in
/// [0, count): `nout` consecutive output rows of a column filter from
/// nout + ntaps - 1 consecutive input rows, each input row read once for
/// a group of them. Each output is summed in ascending t from zero, the
/// same way whatever `nout` is. With `stream` nonzero, output rows that
/// start on a 64-byte boundary are written past the caches (see
/// `atr_sobel3_magnitude`).
void atr_filter_columns_rows(float *const *out, int nout, const float *const *rows, const float *taps, int ntaps,
                             size_t count, int stream);

/// out[j] = sqrt(a[j]^2 + b[j]^2).
void atr_magnitude(float *out, const float *a, const float *b, size_t count);

/// out[j] = a[j] + (b[j] - a[j]) * w for j < count: bilinear resizing's
/// blend of two rows (`out` overlaps neither). Every element is rounded
/// the same way (one fused multiply-add where the set has it) wherever it
/// falls, here and in `atr_lerp_pixels`.
void atr_lerp(float *out, const float *a, const float *b, float w, size_t count);

/// Bilinear resizing along a row: output pixel x, `channels` floats at
/// out + x * pixel_stride, blends pixels low[x] - shift and high[x] - shift
/// of `row` ((pixels, channels)) by weight[x], as `atr_lerp` does; where
/// weight[x] is 0, pixel low[x] - shift is copied (the same value where
/// both neighbours are finite, and no NaN from an infinite second one). A
/// hypercolumn writes each layer's channels into a wider pixel this way.
void atr_lerp_pixels(float *out, size_t pixel_stride, const float *row, ptrdiff_t shift, const ptrdiff_t *low,
                     const ptrdiff_t *high, const float *weight, size_t width, size_t channels);

/// One output row of a single plane resized bilinearly from its input rows
/// `top` and `bottom` (blended by `fy`): out[x] = top[low[x]] w00 +
/// top[high[x]] w01 + bottom[low[x]] w10 + bottom[high[x]] w11, the
/// weights (1 - fy)(1 - fx[x]), (1 - fy) fx[x], fy (1 - fx[x]) and fy fx[x],
/// summed left to right with no fused multiply-add, as the channels-last
/// Resize computes each channel; top[low[x]] itself where fx[x] and fy
/// are both 0.
void atr_bilinear_plane_row(float *out, const float *top, const float *bottom, const ptrdiff_t *low,
                            const ptrdiff_t *high, const float *fx, float fy, size_t count);

/// out[j] += a[j] * b[j].
void atr_multiply_add(float *out, const float *a, const float *b, size_t count);

/// out[j] *= scale.
void atr_scale(float *out, float scale, size_t count);

/// out[j] = max(out[j], x[j]) (pooling a pixel's channels into an output).
void atr_max_into(float *out, const float *x, size_t count);

/// out[j] += x[j].
void atr_add_into(float *out, const float *x, size_t count);

/// out[j] = out[j] * scale + add[j] * weight (`add` must not overlap `out`).
void atr_scale_add(float *out, float scale, const float *add, float weight, size_t count);

/// out[j] = in[j] as IEEE half-precision bits, rounded to nearest even
/// (numpy's astype(float16)); NaN becomes 0x7E00 with its sign. Returns
/// how many finite values became infinity (beyond 65504 after rounding).
size_t atr_float16_from_float(uint16_t *out, const float *in, size_t count);

/// x[j] rounded to the nearest float16 value (ties to even, past 65504 to
/// infinity, NaN kept), in place: what storing as float16 keeps.
void atr_float16_round(float *x, size_t count);

/// The magnitude of the 3x3 Sobel gradient in one pass over its rows:
/// output rows out[0..<nout] from the nout + 2 input rows rows[0..<nout +
/// 2] around them, `count` floats each. Each row pointer addresses element
/// 0 of a row padded by `step` elements on both sides (row[-step] and
/// row[count-1+step] are valid); step is the channel count, so channels
/// are filtered independently. An output's bits do not depend on `nout`.
///
/// With `stream` nonzero the output goes past the caches (non-temporal
/// stores, from its first 64-byte boundary on, where the rows of a group
/// share their place in a line): for an output that will have left the
/// cache before it is read, which saves reading each line in before it is
/// overwritten. Same values either way.
///
/// `ahead`, when not NULL, is `ahead_rows` rows of `count` floats, one
/// after another, that the caller reads next (the image rows the next
/// output rows need): they are fetched into the level-2 cache while the
/// square roots run, instead of from memory when they are read.
void atr_sobel3_magnitude(float *const *out, int nout, const float *const *rows, size_t count, size_t step,
                          const float *ahead, int ahead_rows, int stream);

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

/// out[j * ldo + i] = in[i * ldi + j] for i < rows, j < columns.
void atr_transpose_strided(float *out, size_t ldo, const float *in, size_t ldi, size_t rows, size_t columns);

/// atr_transpose for input columns [first, last) only, so threads can share one transpose.
/// With `stream`, stores skip the caches where the output's rows allow it
/// (fewer rows than columns, rows a multiple of 8, `out` 32-byte aligned):
/// for an input and output that together outgrow the last-level cache,
/// whose lines would otherwise each be read in before being written.
void atr_transpose_columns(float *out, const float *in, size_t rows, size_t columns, size_t first, size_t last,
                           int stream);

/// C[M,N] = A[M,K] B[K,N] (+ C when `accumulate`), row-major with leading
/// dimensions lda, ldb, ldc (in elements).
void atr_sgemm(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b, size_t ldb,
               float *c, size_t ldc, int accumulate);

/// y[j] = bias[j] + sum_i a[i] W[j, i] for j < n: a product with one row
/// as a stream over the weights W (n, k), laid out by atr_gemv_pack in
/// blocks of atr_gemv_columns() output columns. Column j's block starts at
/// w + j k when j is a multiple of the block, so output columns split at
/// such multiples run as separate calls. `bias` may be NULL.
void atr_gemv_rows(float *y, const float *a, const float *w, size_t n, size_t k, const float *bias);

/// Output columns per block of atr_gemv_pack's layout (a power of two, 32
/// or 64, by instruction set).
size_t atr_gemv_columns(void);

/// Floats of atr_gemv_pack's layout for W (n, k): n rounded up to whole
/// blocks, times k.
size_t atr_gemv_packed_size(size_t n, size_t k);

/// W (n, k) into the layout atr_gemv_rows reads: per block of
/// atr_gemv_columns() output columns, (k, columns) row-major, the last
/// block's columns past n zero. W[j, i] is w[j ldw + i], or w[i ldw + j]
/// when `columns` (W given transposed, as a (k, n) B).
void atr_gemv_pack(float *out, const float *w, size_t ldw, int columns, size_t n, size_t k);

/// out[p, k] = in[p, k] * scale[k] + shift[k] for `pixels` vectors of
/// `channels` floats (a channels-last batch norm); out may be in.
void atr_channel_affine(float *out, const float *in, size_t pixels, size_t channels, const float *scale,
                        const float *shift);

/// The largest (`largest` 1) or smallest of `count` floats; NaN when any
/// is NaN, -infinity (+infinity) when there are none.
float atr_reduce_extreme(const float *x, size_t count, int largest);

/// The sum of `count` floats, of their squares (`square`) or of their
/// magnitudes (`absolute`), accumulated in double in sixteen partial sums.
double atr_reduce_sum(const float *x, size_t count, int square, int absolute);

/// acc[i] = the larger (`largest` 1) or smaller of acc[i] and x[i], NaN
/// when either is NaN: one row more of a reduction across rows.
void atr_reduce_extreme_into(float *acc, const float *x, size_t count, int largest);

/// acc[i] += x[i] (its square, its magnitude) in double: one row more of a
/// sum across rows.
void atr_reduce_sum_into(double *acc, const float *x, size_t count, int square, int absolute);

/// out[c] += in[p * channels + c] over the `pixels` pixels (or, with
/// `largest`, out[c] = the larger, as atr_max_into takes it: a NaN in
/// `in` is passed over), for each of the `channels` channels of
/// channels-last pixels: a global pool's sum or max of one image.
void atr_pixels_into(float *out, const float *in, size_t pixels, size_t channels, int largest);

/// Layer normalization of `rows` rows of n contiguous floats: each row
/// less its mean, over its standard deviation (sqrt(variance + epsilon)),
/// times scale[i], plus bias[i] (either may be NULL). out may be in.
void atr_layer_norm_rows(float *out, const float *in, size_t rows, size_t n, const float *scale, const float *bias,
                         float epsilon);

/// Means over windows of `radius` elements either side (clipped to the
/// `count` elements) of `count` elements of `length` floats, `stride`
/// floats apart: out[e] = mean of in[max(0, e - r) ... min(count - 1, e + r)].
/// `sums` is scratch of `length` doubles; out must not be in.
void atr_box_mean_pass(float *out, const float *in, size_t count, size_t length, size_t stride, size_t radius,
                       double *sums);

/// out[j] = sum over t < count of weights[t] * rows[t][j], for j < n.
void atr_weighted_sum(float *out, const float *const *rows, const float *weights, size_t count, size_t n);

/// Floats `atr_pack_b` writes for a (k, n) matrix: panels of 32 columns.
size_t atr_packed_b_size(size_t k, size_t n);

/// Rows of A the packed product's register tile takes at once: 8 where
/// there are 32 vector registers, 6 with AVX2's 16 and the baseline. A
/// product of m rows runs ceil(m / this) tiles of equal height (to a row), so m a
/// multiple of it keeps every tile full (8 rows with AVX2 run as two
/// tiles of 4, whose 8 accumulators wait on each FMA's latency: 64 x 64
/// x 64 products of 8 rows ran at 0.8 of the rate of 6 or 12 rows).
size_t atr_sgemm_tile_rows(void);

/// Packs B (k, n), leading dimension ldb, into column panels of 32
/// (zero-padded), the layout `atr_sgemm_packed` streams.
void atr_pack_b(float *packed, const float *b, size_t k, size_t n, size_t ldb);

/// Packs B given by its columns, as `atr_pack_b` packs it: column j of
/// B is the row `rows + j * ld` (n of them), whose k floats run (c, t)
/// for `taps` taps of each of k / taps channels, and B's row p is
/// t * (k / taps) + c. A convolution's (Cout, Cin, taps) weights become
/// the panels of its (taps, Cin) by Cout product. Panels [first, last)
/// of the ceil(n / 32) only, so threads can share one packing.
void atr_pack_b_rows(float *packed, const float *rows, size_t k, size_t n, size_t ld, size_t taps, size_t first,
                     size_t last);

/// What `atr_sgemm_packed` adds the product to.
typedef enum {
  /// C = A B
  ATR_START_ZERO = 0,
  /// C += A B
  ATR_START_C = 1,
  /// C[i, j] = bias[j] + (A B)[i, j]
  ATR_START_COLUMN_BIAS = 2,
  /// C[i, j] = bias[i] + (A B)[i, j]
  ATR_START_ROW_BIAS = 3,
} atr_gemm_start;

/// C[M,N] = start + A[M,K] B[K,N] with B packed by atr_pack_b: 8x32
/// register tiles, B panels reused from cache across rows. `bias` (N
/// values for a column bias, M for a row bias) seeds the accumulators, so
/// adding it costs no pass over C; it is unused otherwise and may be NULL.
void atr_sgemm_packed(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed, float *c,
                      size_t ldc, atr_gemm_start start, const float *bias);

/// atr_sgemm_packed for a C out of cache (an output in new memory): each
/// register tile asks for its rows of C as it starts, whatever k.
void atr_sgemm_packed_fresh(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed, float *c,
                            size_t ldc, atr_gemm_start start, const float *bias);

/// C = bias + A B + R: atr_sgemm_packed (a column `bias`, or none where
/// NULL) whose tiles add R[M,N] (`ldr` floats between rows; none where
/// NULL) as they store, a residual sum without a pass of its own over C;
/// with `fresh`, as atr_sgemm_packed_fresh.
void atr_sgemm_packed_sum(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *packed, float *c,
                          size_t ldc, const float *bias, const float *r, size_t ldr, int fresh);

/// atr_sgemm_packed with B given by its rows: row p of column panel q
/// (columns 32q to 32q + 31) is the 32 floats at tables[q][p] + offsets[q],
/// read in full even in a last panel narrower than 32. Lets a convolution
/// point into its input instead of copying it.
void atr_sgemm_rows(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *const *const *tables,
                    const ptrdiff_t *offsets, float *c, size_t ldc, atr_gemm_start start, const float *bias);

/// The window of a 2-D convolution over (N, H, W, C) storage, in pixels.
/// `pixel_stride` is the distance between neighbouring pixels in floats
/// (the channel count of the whole tensor, even when a group reads a part).
typedef struct {
  ptrdiff_t input_h, input_w, output_h, output_w;
  ptrdiff_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
  ptrdiff_t pixel_stride;
} atr_conv_geometry;

/// How `atr_pool_row` combines a window.
typedef enum {
  ATR_POOL_MAX = 0,
  /// The mean of the taps inside the image.
  ATR_POOL_AVERAGE = 1,
  /// The sum of the taps inside the image over the taps inside the padded
  /// image (`count_include_pad`).
  ATR_POOL_AVERAGE_PADDED = 2,
} atr_pool_mode;

/// One output row of 2-D pooling on channels-last pixels (`pixel_stride`
/// = channels). rows[ky] is the input row under window row ky, NULL where
/// it falls outside the image; `rows_padded` counts the window rows inside
/// the padded image and `pad_right` is the padding after each input row.
/// Channels go 64 and 16 at a time in registers, each output written once.
void atr_pool_row(float *out, const float *const *rows, const atr_conv_geometry *g, size_t channels,
                  atr_pool_mode mode, size_t rows_padded, size_t pad_right);

/// Blocks of strided samples of (C, H, W) planes written as pixels of
/// blocks * channels values, output rows [y0, y1):
/// out[(y * ow + x) * blocks * channels + k * channels + j] =
///   in[(j * h + y * step + offsets[2k]) * w + x * step + offsets[2k + 1]]
/// (a Focus block's space-to-depth). Each output row reads the `step`
/// input rows under it once, for every block.
void atr_gather_planes_strided(float *out, const float *in, size_t channels, size_t h, size_t w, size_t step,
                               const ptrdiff_t *offsets, size_t blocks, size_t ow, size_t y0, size_t y1);

/// im2col rows for output pixels [first, first + count) (flat over N, OH,
/// OW): row r holds, tap by tap (ky, kx), the `channels` values starting at
/// `channel_offset`, zero where the tap falls in the padding. Row length is
/// kernel_h * kernel_w * channels.
void atr_im2col(float *col, const float *src, const atr_conv_geometry *g, size_t channel_offset, size_t channels,
                size_t first, size_t count);

/// The im2col matrix of output pixels [first, first + count) (flat over N,
/// OH, OW) of (N, H, W, C) storage, transposed and packed as `atr_pack_b`
/// packs B: row (ky, kx, ci) for the `channels` channels from
/// `channel_offset`, one column per output pixel, in panels of 32 columns,
/// zero in the padding and past the block. Holds
/// atr_packed_b_size(kernel_h * kernel_w * channels, count) floats.
void atr_im2col_panels(float *packed, const float *src, const atr_conv_geometry *g, size_t channel_offset,
                       size_t channels, size_t first, size_t count);

/// Bytes of scratch `atr_conv_planes` needs for a block of `count` pixels.
size_t atr_conv_planes_scratch(const atr_conv_geometry *g, size_t channels, size_t count);

/// The block a worker computes after the current `atr_conv_planes` call:
/// output pixels [first, first + count) of the image whose first plane is
/// at `src`, reading `channels` planes (none when `count` is 0). Its input
/// lines are prefetched while the current block computes.
typedef struct {
  const float *src;
  size_t channels, first, count;
} atr_conv_planes_next;

/// Output pixels [first, first + count) of one image of a convolution on
/// planes: input (channels, H, W) at `src` (the group's first plane),
/// output (m, count) at `out` (the block's first pixel), `ldc` floats
/// between output channels. `weights` is
/// (m, channels * kernel_h * kernel_w) in ONNX order, `bias` m values or
/// NULL. The input rows the block reads are first copied into a
/// zero-padded window (unless it would outgrow about 1 MiB), and the
/// product reads its im2col columns through row pointers: into the window
/// (or the input) where a panel of 32 pixels stays on one output row, and
/// gathered otherwise. A 1x1 convolution at stride 1 without padding
/// packs the block's pixels of each plane into panels instead and runs
/// one packed product. `scratch` holds atr_conv_planes_scratch bytes,
/// 64-byte aligned. `next`, when not NULL, is the block to prefetch for.
/// `pixel_stride` of `g` is unused.
void atr_conv_planes(float *out, size_t ldc, size_t m, const float *weights, const float *bias, const float *src,
                     const atr_conv_geometry *g, size_t channels, size_t first, size_t count, void *scratch,
                     const atr_conv_planes_next *next);

/// Whether `atr_conv_blocked` is the faster convolution in the calling
/// thread's instruction set: its register tiles need AVX2's 16 vector
/// registers of 8 floats at least (with SSE's they spill).
int atr_conv_blocked_preferred(void);

/// Floats of the packed weights of `atr_conv_blocked` for `m` output and
/// `channels` input channels and `taps` kernel taps.
size_t atr_conv_blocked_packed_size(size_t m, size_t channels, size_t taps);

/// Packs `weights` (m, channels, taps) in ONNX order and `bias` (m values,
/// or NULL for zeros) for `atr_conv_blocked`: channels in blocks of 16,
/// zeros past the last.
void atr_conv_blocked_pack(float *packed, const float *weights, const float *bias, size_t m, size_t channels,
                           size_t taps);

/// Bytes of scratch `atr_conv_blocked` needs for `output_rows` rows.
size_t atr_conv_blocked_scratch(const atr_conv_geometry *g, size_t channels, size_t output_rows, int channels_last);

/// Output rows [y0, y0 + rows) of one image of a direct convolution,
/// output channels in blocks of 16 held in registers, each input value
/// broadcast against them. Input at `src`: planes (channels, H, W), or
/// when `channels_last` pixels (H, W, .) of `pixel_stride` (of `g`) floats
/// whose first `channels` are read. Output element (co, y, x) at
/// out[co * channel_stride + ((y - y0) * OW + x) * pixel_stride] (planes:
/// plane and 1; channels last: 1 and the pixel's channel count): `out`
/// points at row y0, so the rows may go to a buffer of their own. `packed` comes
/// from `atr_conv_blocked_pack`. The input rows are first copied into a
/// zero-padded window in `scratch` (atr_conv_blocked_scratch bytes).
/// `steps` (atr_pointwise) are applied to each output pixel before it is
/// written. kernel_h is at most 16.
struct atr_pointwise_step;
void atr_conv_blocked(float *out, size_t channel_stride, size_t pixel_stride, size_t m, const float *packed,
                      const float *src, int channels_last, const atr_conv_geometry *g, size_t channels, size_t y0,
                      size_t rows, void *scratch, const struct atr_pointwise_step *steps, size_t nsteps);

/// One output row of a grouped convolution with 8 output channels per
/// group, on channels-last pixels: `rows[ky]` addresses the input row the
/// kernel row ky reads (pixel 0, channel 0), or is NULL when that row is
/// padding. `weights` is (groups, kernel_h, kernel_w, cin / groups, 8),
/// `bias` (groups * 8) or NULL; `out` is (output_w, groups * 8).
void atr_conv_group8_row(float *out, const float *const *rows, const float *weights, const float *bias,
                         const atr_conv_geometry *g, size_t cin, size_t groups);

/// One output row of a depthwise convolution: `rows[ky]` addresses the
/// input row the kernel row ky reads (pixel 0, channel 0), or is NULL when
/// that row is padding. `weights` is (kernel_h * kernel_w, channels),
/// `bias` (channels) or NULL; `out` is (output_w, channels). Only
/// channels [first, first + count) are computed and written (threads
/// splitting a small map's channels each take a range; the kernel may
/// compute a channel of its range twice, never one outside it). Then
/// `steps` in order on those channels (as `atr_pointwise`), the first as
/// the sums are stored where it is ReLU, Clip or HardSwish.
void atr_depthwise_row(float *out, const float *const *rows, const float *weights, const float *bias,
                       const atr_conv_geometry *g, size_t channels, size_t first, size_t count,
                       const struct atr_pointwise_step *steps, size_t nsteps);

/// Bytes of scratch `atr_depthwise_plane` needs for geometry `g`.
size_t atr_depthwise_plane_scratch(const atr_conv_geometry *g);

/// One channel of a depthwise convolution on planes: input (H, W) at
/// `src`, output (OH, OW) at `out`, `weights` (kernel_h, kernel_w) and the
/// channel's `bias`. Copies each input row once, zero-padded, into
/// `scratch` (atr_depthwise_plane_scratch bytes). `pixel_stride` of `g` is
/// unused.
void atr_depthwise_plane(float *out, const float *src, const float *weights, float bias, const atr_conv_geometry *g,
                         void *scratch);

/// One output row of a transposed convolution from its per-tap columns:
/// rows[r] addresses the columns (input_w, kernel_h * kernel_w, cout_g) of
/// the input row that kernel row kys[r] maps onto this output row. Output
/// pixel ox (at out + ox * out_pixel_stride) gets bias plus every (kys[r],
/// kx) contribution landing on it. Uses input_w, output_w, kernel_h,
/// kernel_w, stride_w, dilation_w and pad_left of `g`.
void atr_transposed_gather_row(float *out, size_t out_pixel_stride, const float *bias, size_t cout_g,
                               const float *const *rows, const ptrdiff_t *kys, size_t nrows,
                               const atr_conv_geometry *g);

/// Element-wise steps that `atr_pointwise` chains; `a` and `b` are the
/// step's parameters where it has any.
typedef enum {
  ATR_PW_RELU = 0,
  /// min(max(x, a), b)
  ATR_PW_CLIP = 1,
  /// x * a + b
  ATR_PW_AFFINE = 2,
  /// x * clamp(x / 6 + 1/2, 0, 1)
  ATR_PW_HARDSWISH = 3,
  /// clamp(a * x + b, 0, 1)
  ATR_PW_HARDSIGMOID = 4,
  /// x < 0 ? a * x : x
  ATR_PW_LEAKYRELU = 5,
  ATR_PW_SIGMOID = 6,
  /// x * sigmoid(x) (SiLU, Swish with alpha 1)
  ATR_PW_SILU = 7,
  /// x / 2 * (1 + erf(x / sqrt 2))
  ATR_PW_GELU = 8,
  /// x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))
  ATR_PW_GELU_TANH = 9,
  /// x * tanh(softplus(x)) (Mish)
  ATR_PW_MISH = 10,
  /// tanh(x)
  ATR_PW_TANH = 11,
  /// e^x, to infinity above float's range and through the subnormals below it
  ATR_PW_EXP = 12,
} atr_pointwise_op;

typedef struct atr_pointwise_step {
  atr_pointwise_op op;
  float a, b;
} atr_pointwise_step;

/// Applies `steps` in order to every element of `rows` rows of `width`
/// floats, `stride` floats apart, in place: one pass over memory.
void atr_pointwise(float *x, size_t rows, size_t width, size_t stride, const atr_pointwise_step *steps,
                   size_t nsteps);

/// Winograd F(mxm, 3x3), m = 2, 4 or 6, for 3x3 convolutions with stride 1
/// and any dilation on channels-last pixels (`kernels/winograd.c`), m = 4
/// at stride 2 (no dilation), and F(3x3, 4x4) for 4x4 convolutions at
/// stride 1 (no dilation; t = 6, the input transform F(4x4, 3x3)'s). Output
/// tiles of m x m pixels, `dilation` apart, are numbered flat over images,
/// blocks of m dilation_h x m dilation_w pixels and the dilation's phases
/// within a block; there are atr_winograd_tiles of them. At stride 1 a tile
/// of input is t x t pixels, t = m + 2, and has t^2 positions. At stride 2
/// the input splits into its four phases (even and odd rows by even and odd
/// columns), each an ordinary correlation with a 2x2 part of the kernel
/// (the taps at even or odd offsets), run as F(mxm, 2x2): a tile reads t x
/// t pixels of each phase, t = m + 1, and has t^2 positions, at each of
/// which only the phases whose part of the kernel transforms to other than
/// zero take part (`atr_winograd_depth`).
size_t atr_winograd_tiles(const atr_conv_geometry *g, size_t images, size_t m);

/// Channels the transforms take at once (a vector register's floats: 16
/// with AVX-512, else 8): the fewest channels in and out they can run.
size_t atr_winograd_lanes(void);

/// Taps along a line of the kernel F(mxm) at `stride` runs with: 3; 4
/// for m = 3, F(3x3, 4x4), which runs 4x4 convolutions at stride 1 (a
/// 7x7 one at stride 2 after a space-to-depth of its input); 2 at stride 2
/// (each phase's part of a 3x3 kernel).
static inline size_t atr_winograd_taps(size_t m, size_t stride) { return stride == 2 ? 2 : m == 3 ? 4 : 3; }

/// Positions of a tile of F(mxm) at `stride` (1 or 2): t^2, t = m +
/// atr_winograd_taps - 1 (m + 2 for a 3x3 kernel, m + 1 at stride 2).
static inline size_t atr_winograd_positions(size_t m, size_t stride) {
  const size_t t = m + atr_winograd_taps(m, stride) - 1;
  return t * t;
}

/// The depth of position `position`'s product in input channels: cin
/// times this. 1 at stride 1. At stride 2 the phases taking part: all
/// four inside, two on the last row or column of positions (where the
/// transform of a part of the kernel one tap tall or wide is zero), one at
/// the corner. The rows of its (count, depth x cin) matrix hold the
/// phases in the order (row phase, column phase), each cin channels.
static inline size_t atr_winograd_depth(size_t m, size_t stride, size_t position) {
  if (stride != 2) return 1;
  const size_t t = m + 1, i = position / t, j = position % t;
  return (i + 1 < t ? 2 : 1) * (j + 1 < t ? 2 : 1);
}

/// Where position `position`'s packed (depth x cin, cout) matrix starts
/// in atr_winograd_weights' output, in floats; at `position` =
/// atr_winograd_positions, the floats of all of them.
static inline size_t atr_winograd_weights_offset(size_t m, size_t stride, size_t position, size_t cin, size_t cout) {
  size_t rows = 0;
  for (size_t x = 0; x < position; x++) rows += atr_winograd_depth(m, stride, x) * cin;
  return atr_packed_b_size(rows, cout);
}

/// The kernels (cout, cin, k, k) transformed (k = 3, or 4 for F(3x3, 4x4)):
/// one (depth x cin, cout) matrix per tile position (`atr_winograd_depth`),
/// each packed as atr_pack_b packs it, at atr_winograd_weights_offset.
/// Writes the rows of input channels [first_channel, first_channel +
/// channels) of the panels of output channels [first_panel, first_panel +
/// panels) (atr_packed_b_size(1, 1) channels each) at every position,
/// every float of them: calls for disjoint ranges may run at once.
void atr_winograd_weights(float *u, const float *w, size_t cout, size_t cin, size_t m, size_t stride,
                          size_t first_panel, size_t panels, size_t first_channel, size_t channels);

/// Floats from one tile position's (count, channels) matrix to the next
/// in a Winograd block's transformed input or products: count x channels
/// rounded up to an odd number of 64-byte lines. The t^2 positions are
/// written (input) or read (output) together, tile by tile, and a stride
/// of an even number of lines (count a multiple of 8, channels of 16)
/// maps all t^2 streams to a few sets of L1. Measured on VGG16's blocks
/// 1-2 (AMD EPYC, 1 thread) the padding is within the noise (57.1 and
/// 56.6 ms against 58.3 and 58.1); it keeps every block size clear of it.
static inline size_t atr_winograd_plane(size_t count, size_t channels) {
  return ((count * channels + 15) / 16 | 1) * 16;
}

/// Input tiles [first, first + count) of (N, H, W, cin) storage (cin >=
/// atr_winograd_lanes) transformed: v is (t^2, count, d cin), d =
/// atr_winograd_depth at position 0 (4 at stride 2, else 1), one (count, d
/// cin) matrix per tile position, atr_winograd_plane(count, d cin) floats
/// apart, of which a position's product reads its depth's columns; the
/// padding reads as zero.
void atr_winograd_input(float *v, const float *src, const atr_conv_geometry *g, size_t cin, size_t first,
                        size_t count, size_t m);

/// Output tiles [first, first + count) from the products, (t^2, count,
/// cout) (cout >= atr_winograd_lanes; positions atr_winograd_plane(count,
/// cout) floats apart), into (N, OH, OW, cout) storage, the bias and (when
/// not NULL) `residual`'s value at the same place (same layout as `out`)
/// added, then the fused steps applied; pixels past the map's edge are not
/// written.
void atr_winograd_output(float *out, const float *products, const float *bias, const float *residual,
                         const atr_conv_geometry *g, size_t cout, size_t first, size_t count,
                         const atr_pointwise_step *steps, size_t nsteps, size_t m);

/// Softmax (or, with `log`, log-softmax) of each of `rows` contiguous rows
/// of `length` values, in place: the row's largest value subtracted first,
/// exp by the pointwise steps' branch-free approximation (within 2 ulp).
void atr_softmax_rows(float *x, size_t rows, size_t length, int log);

/// Channels of each of `pixels` pixels reordered: out[p * channels + j] =
/// in[p * channels + source[j]] (a channel shuffle on channels-last data).
void atr_gather_channels(float *out, const float *in, size_t pixels, size_t channels, const int32_t *source);

/// Two runs of `width` channels per pixel interleaved, for each of
/// `pixels` pixels: out[p * 2 width + 2 i] = a[p * lda + i] and
/// out[p * 2 width + 2 i + 1] = b[p * ldb + i] (a channel shuffle of two
/// groups over their concatenation, on channels-last data).
void atr_interleave_channels(float *out, const float *a, size_t lda, const float *b, size_t ldb, size_t pixels,
                             size_t width);

/// Rows of `nparts` arrays side by side: row r of `out` is row r of each
/// part in turn, part q's rows `widths[q]` floats long (a concatenation
/// along the last axis, as channels-last maps along their channels). Each
/// output row is written whole, in one stream along memory; a part with
/// no floats may be NULL. With `scale` and `shift` (one float per output
/// column; both or neither), out[r, j] = x * scale[j] + shift[j] for the
/// x concatenated there: a batch norm on the concatenation, made as it is
/// copied (DenseNet's).
void atr_concat_rows(float *out, size_t rows, const float *const *parts, const size_t *widths, size_t nparts,
                     const float *scale, const float *shift);

/// out[i] += rows[r][i] for every r < nrows, i < count.
void atr_add_rows(float *out, const float *const *rows, size_t nrows, size_t count);

#ifdef __cplusplus
}
#endif

#endif
