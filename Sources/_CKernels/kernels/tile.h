// The register tile of the packed product (kernels.c), written once for
// any vector type: kernels.c includes this file once per tile it needs,
// with ATR_TILE_NAME (the function's name), ATR_TILE_VECTOR (a vector of
// floats, loadable from any 4-byte aligned address) and ATR_TILE_LANES
// (its floats) defined, and uses what it defines only there. Where
// ATR_TILE_HI_VECTOR is defined too, a row's second vector is of that
// type (a narrower one: 16 + 8 columns), for a right edge of 17 to 24
// columns.
// Private to this target; no include guard, by design.

// One tile of ROWS rows (1 to MR) and COLS columns (one, two or three
// vectors of ATR_TILE_LANES floats per row) of C, accumulated in
// registers over kc steps, starting from zero or from a bias: per column
// (`column_bias`, COLS values) or per row (`row_bias`, one value per row),
// and stored plus `src` where given (C itself to accumulate, or a
// residual; `lds` floats between its rows). Both ROWS and COLS are
// constants at every call, so each size is its own loop with only the
// accumulators it needs; `width` (1 to COLS) is how many columns are
// stored, less than COLS only at the right edge of C.
// B's rows come from the packed panel `bp` (NR floats apart), or, when
// `brows` is given, from wherever brows[p] + offset points. The first
// `next_lines` cache lines from `next` are prefetched into L2, one per
// step; the tile's rows of C at its start where `fetch_c`.
static inline __attribute__((always_inline)) void ATR_TILE_NAME(const size_t ROWS, const size_t COLS, size_t width,
                                                                size_t kc, const float *a, size_t lda,
                                                                const float *bp, const float *const *brows,
                                                                ptrdiff_t offset, float *c, size_t ldc,
                                                                const float *src, size_t lds,
                                                                const float *column_bias, const float *row_bias,
                                                                const float *next, size_t next_lines, int fetch_c) {
  typedef ATR_TILE_VECTOR v;
#ifdef ATR_TILE_HI_VECTOR
  typedef ATR_TILE_HI_VECTOR vh;
#else
  typedef ATR_TILE_VECTOR vh;
#endif
  const int two = COLS > ATR_TILE_LANES, three = COLS > 2 * ATR_TILE_LANES;
  v z = {0};
  vh zh = {0};
  v c00 = z, c02 = z, c10 = z, c12 = z, c20 = z, c22 = z, c30 = z, c32 = z;
  v c40 = z, c42 = z, c50 = z, c52 = z, c60 = z, c62 = z, c70 = z, c72 = z;
  vh c01 = zh, c11 = zh, c21 = zh, c31 = zh, c41 = zh, c51 = zh, c61 = zh, c71 = zh;
  if (column_bias) {
    c00 = c10 = c20 = c30 = c40 = c50 = c60 = c70 = *(const v *)column_bias;
    if (two) c01 = c11 = c21 = c31 = c41 = c51 = c61 = c71 = *(const vh *)(column_bias + ATR_TILE_LANES);
    if (three) c02 = c12 = c22 = c32 = c42 = c52 = c62 = c72 = *(const v *)(column_bias + 2 * ATR_TILE_LANES);
  } else if (row_bias) {
    // Row r's bias in every lane of its vectors (zero, of either type).
#define ATR_ROW_BIAS(r, lo, hi, top)                   \
  {                                                    \
    const float bias_r = row_bias[(r) < ROWS ? (r) : 0]; \
    lo = top = z + bias_r;                             \
    hi = zh + bias_r;                                  \
  }
    ATR_ROW_BIAS(0, c00, c01, c02) ATR_ROW_BIAS(1, c10, c11, c12) ATR_ROW_BIAS(2, c20, c21, c22)
    ATR_ROW_BIAS(3, c30, c31, c32) ATR_ROW_BIAS(4, c40, c41, c42) ATR_ROW_BIAS(5, c50, c51, c52)
    ATR_ROW_BIAS(6, c60, c61, c62) ATR_ROW_BIAS(7, c70, c71, c72)
#undef ATR_ROW_BIAS
  }
  // One pointer per row of A, hidden from the compiler (the empty asm),
  // which otherwise derives each row's address from the one before with
  // an add per row per step: with those the AVX2 loop took 30 instructions
  // for its 12 FMAs, all the core issues in the 6 cycles the FMAs take;
  // with the pointers 24 (1 to 4% faster, 5% where k is 24: 3136 x 72 x 24).
  const float *a0 = a, *a1 = a + (ROWS > 1 ? lda : 0), *a2 = a + (ROWS > 2 ? 2 * lda : 0);
  const float *a3 = a + (ROWS > 3 ? 3 * lda : 0), *a4 = a + (ROWS > 4 ? 4 * lda : 0);
  const float *a5 = a + (ROWS > 5 ? 5 * lda : 0), *a6 = a + (ROWS > 6 ? 6 * lda : 0);
  const float *a7 = a + (ROWS > 7 ? 7 * lda : 0);
  __asm__("" : "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5), "+r"(a6), "+r"(a7));
  // The tile's rows of C asked for now, for writing (see sgemm_panels).
  if (fetch_c) {
#define ATR_PREFETCH_ROW(r)                                                         \
  if (ROWS > (r)) {                                                                 \
    __builtin_prefetch(c + (r) * ldc, 1, 3);                                        \
    if (COLS > 16) __builtin_prefetch(c + (r) * ldc + 16, 1, 3);                    \
  }
    ATR_PREFETCH_ROW(0) ATR_PREFETCH_ROW(1) ATR_PREFETCH_ROW(2) ATR_PREFETCH_ROW(3)
    ATR_PREFETCH_ROW(4) ATR_PREFETCH_ROW(5) ATR_PREFETCH_ROW(6) ATR_PREFETCH_ROW(7)
#undef ATR_PREFETCH_ROW
  }
  // The panel's rows B_AHEAD steps on: a small map's products (a
  // Winograd position's 16 tiles, 512 x 512 channels) read each panel
  // once from L3 or memory, with too few FMAs per line for the hardware's
  // prefetch to hide the wait. 16 x 512 x 512 products reading 16 MiB of
  // weights in turn took 0.77 of the time (minimum of 8 alternating runs);
  // products whose B is in cache did not change. The tile's share of the
  // next panel, a cache line per step, comes in a loop of its own so that
  // the steps after it test nothing.
  // The prefetch stops at the panel's last row: past the end of the
  // packed weights it may land on a page that is not mapped or was never
  // touched, and a prefetch there walks the page tables every time (AMD
  // EPYC, AVX2: a 112 x 96 x 16 product whose weights ended where an
  // unmapped page began ran at 6.6 GFLOP/s, 28.7 with that page in use;
  // 12544 x 48 x 16 at 5.2 with an untouched page after; see
  // `atrous-bench product ... edge`). Within the panel, the rows B_AHEAD
  // on are what it is for.
  const float *b_last = bp ? bp + (kc ? kc - 1 : 0) * NR : NULL;
#define ATR_FMA_ROW(r, lo, hi, top) \
  if (ROWS > (r)) {                 \
    x = a##r[p];                    \
    lo += x * b0;                   \
    if (two) hi += x * b1;          \
    if (three) top += x * b2;       \
  }
#define ATR_STEPS(end, NEXT)                                                                            \
  for (; p < (end); p++) {                                                                              \
    const float *b = brows ? brows[p] + offset : bp + p * NR;                                           \
    if (!brows) {                                                                                       \
      const float *ahead = b + B_AHEAD * NR < b_last ? b + B_AHEAD * NR : b_last;                       \
      __builtin_prefetch(ahead);                                                                        \
      if (COLS > 16) __builtin_prefetch(ahead + 16);                                                    \
    }                                                                                                   \
    if (NEXT) __builtin_prefetch(next + p * 16, 0, 2);                                                  \
    const v b0 = *(const v *)b;                                                                         \
    const vh b1 = two ? *(const vh *)(b + ATR_TILE_LANES) : zh;                                         \
    const v b2 = three ? *(const v *)(b + 2 * ATR_TILE_LANES) : z;                                       \
    float x;                                                                                            \
    ATR_FMA_ROW(0, c00, c01, c02) ATR_FMA_ROW(1, c10, c11, c12)                                         \
    ATR_FMA_ROW(2, c20, c21, c22) ATR_FMA_ROW(3, c30, c31, c32)                                         \
    ATR_FMA_ROW(4, c40, c41, c42) ATR_FMA_ROW(5, c50, c51, c52)                                         \
    ATR_FMA_ROW(6, c60, c61, c62) ATR_FMA_ROW(7, c70, c71, c72)                                         \
  }
  size_t p = 0;
  ATR_STEPS(next_lines < kc ? next_lines : kc, 1)
  ATR_STEPS(kc, 0)
#undef ATR_STEPS
#undef ATR_FMA_ROW
#define ATR_PUT(T, dst, from, value) *(T *)(dst) = src ? *(const T *)(from) + (value) : (value);
#define ATR_STORE_ROW(r, lo, hi, top)                                         \
  if (ROWS > (r)) {                                                           \
    float *cr = c + (r) * ldc;                                                \
    const float *sr = src ? src + (r) * lds : NULL;                           \
    if (width == COLS) {                                                      \
      ATR_PUT(v, cr, sr, lo)                                                  \
      if (two) ATR_PUT(vh, cr + ATR_TILE_LANES, sr + ATR_TILE_LANES, hi)      \
      if (three) ATR_PUT(v, cr + 2 * ATR_TILE_LANES, sr + 2 * ATR_TILE_LANES, top) \
    } else {                                                                  \
      float t[3 * ATR_TILE_LANES] __attribute__((aligned(64)));               \
      *(v *)t = lo;                                                           \
      *(vh *)(t + ATR_TILE_LANES) = hi;                                       \
      *(v *)(t + 2 * ATR_TILE_LANES) = top;                                   \
      move_part(cr, t, width, sr);                                            \
    }                                                                         \
  }
  ATR_STORE_ROW(0, c00, c01, c02) ATR_STORE_ROW(1, c10, c11, c12) ATR_STORE_ROW(2, c20, c21, c22)
  ATR_STORE_ROW(3, c30, c31, c32) ATR_STORE_ROW(4, c40, c41, c42) ATR_STORE_ROW(5, c50, c51, c52)
  ATR_STORE_ROW(6, c60, c61, c62) ATR_STORE_ROW(7, c70, c71, c72)
#undef ATR_STORE_ROW
#undef ATR_PUT
}
