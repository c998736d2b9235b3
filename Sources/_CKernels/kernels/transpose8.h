// The 8x8 register transpose shared by the transposes in kernels.c, the
// panel packing in conv.c and the blocked convolution's planar output.
// Private to this target.
#ifndef ATROUS_TRANSPOSE8_H
#define ATROUS_TRANSPOSE8_H

#include <stddef.h>

typedef float atr_v8 __attribute__((vector_size(32), aligned(4)));

// Transposes r[0..7] (row i in r[i]) in place: three rounds of shuffles
// (the classic unpack / shuffle / permute sequence), written with generic
// vectors so each instruction set's build gets its own instructions.
static inline __attribute__((always_inline)) void atr_transpose8x8(atr_v8 r[8]) {
  const atr_v8 t0 = __builtin_shufflevector(r[0], r[1], 0, 8, 1, 9, 4, 12, 5, 13);
  const atr_v8 t1 = __builtin_shufflevector(r[0], r[1], 2, 10, 3, 11, 6, 14, 7, 15);
  const atr_v8 t2 = __builtin_shufflevector(r[2], r[3], 0, 8, 1, 9, 4, 12, 5, 13);
  const atr_v8 t3 = __builtin_shufflevector(r[2], r[3], 2, 10, 3, 11, 6, 14, 7, 15);
  const atr_v8 t4 = __builtin_shufflevector(r[4], r[5], 0, 8, 1, 9, 4, 12, 5, 13);
  const atr_v8 t5 = __builtin_shufflevector(r[4], r[5], 2, 10, 3, 11, 6, 14, 7, 15);
  const atr_v8 t6 = __builtin_shufflevector(r[6], r[7], 0, 8, 1, 9, 4, 12, 5, 13);
  const atr_v8 t7 = __builtin_shufflevector(r[6], r[7], 2, 10, 3, 11, 6, 14, 7, 15);
  const atr_v8 u0 = __builtin_shufflevector(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13);
  const atr_v8 u1 = __builtin_shufflevector(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
  const atr_v8 u2 = __builtin_shufflevector(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13);
  const atr_v8 u3 = __builtin_shufflevector(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
  const atr_v8 u4 = __builtin_shufflevector(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13);
  const atr_v8 u5 = __builtin_shufflevector(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15);
  const atr_v8 u6 = __builtin_shufflevector(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13);
  const atr_v8 u7 = __builtin_shufflevector(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15);
  r[0] = __builtin_shufflevector(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11);
  r[1] = __builtin_shufflevector(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11);
  r[2] = __builtin_shufflevector(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11);
  r[3] = __builtin_shufflevector(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11);
  r[4] = __builtin_shufflevector(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15);
  r[5] = __builtin_shufflevector(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15);
  r[6] = __builtin_shufflevector(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15);
  r[7] = __builtin_shufflevector(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15);
}

// An 8x8 block from rows `ldi` floats apart to rows `ldo` floats apart,
// stored past the caches when `stream` (then each row of `out` is 32-byte
// aligned).
static inline __attribute__((always_inline)) void atr_transpose8_to(float *restrict out, size_t ldo,
                                                                     const float *restrict in, size_t ldi,
                                                                     int stream) {
  typedef float v8_aligned __attribute__((vector_size(32)));
  atr_v8 r[8];
  for (int i = 0; i < 8; i++) r[i] = *(const atr_v8 *)(in + i * ldi);
  atr_transpose8x8(r);
  if (stream) {
    for (int i = 0; i < 8; i++) __builtin_nontemporal_store((v8_aligned)r[i], (v8_aligned *)(out + i * ldo));
  } else {
    for (int i = 0; i < 8; i++) *(atr_v8 *)(out + i * ldo) = r[i];
  }
}

// An 8x8 block from rows `ldi` floats apart to rows `ldo` floats apart.
static inline __attribute__((always_inline)) void atr_transpose8(float *restrict out, size_t ldo,
                                                                  const float *restrict in, size_t ldi) {
  atr_transpose8_to(out, ldo, in, ldi, 0);
}

#endif
