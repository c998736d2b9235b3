import AtrousCore
import Testing
import _CKernels

/// The packed product (`atr_sgemm_packed`) against plain loops in double
/// precision, on every instruction set: every right edge of a 32-column
/// panel (the partial stores; where vectors hold 8 floats a rest of at
/// most 8 columns takes tiles of 8 rows one vector wide, and a panel of 17
/// to 24 columns tiles of 4 rows three vectors wide; with AVX-512 a rest
/// of at most 8 takes one vector of 8 per row, and one of 17 to 24 a
/// vector of 16 and one of 8), tiles of every height
/// (where vectors are narrower than 16 floats, those of 6 rows down a
/// whole panel or a last one of 16 columns, of 4 rows 24 columns wide and
/// of 8 rows 8 wide one after another in a function of their own: 7, 24,
/// 29, 36, 49, 50, 57, 112 and 600 rows
/// here, across k blocks and with a residual), products large
/// enough that the tiles prefetch the next panel between them (B of 64 KiB
/// and more, more than one tile), rows in blocks of 128, k in two and three
/// blocks (a 32-column panel's slice of B larger than half of L2), and
/// each way a product starts; `atr_sgemm_packed_fresh` and `atr_sgemm_rows`
/// (B by its rows, here the packed panels') to the bit the same,
/// and `atr_sgemm_packed_sum` (a residual added as the tiles store) with and
/// without a bias, fresh or not.
@Suite struct ProductKernelTests {
  struct Shape: CustomStringConvertible, Sendable {
    let m, n, k: Int
    var description: String { "\(m)x\(n)x\(k)" }
  }

  /// Widths 1 to 31 past whole panels (and whole ones), heights 1 to 9, 49
  /// (7 tiles of 7, or 4 of 6 and 5 of 5), others shared out unevenly, and
  /// 600 (blocks of 128 rows); 14 x 40 x 512 and 49 x
  /// 200 x 96 prefetch across tiles; the last two split k in blocks.
  static let shapes: [Shape] = [
    Shape(m: 1, n: 5, k: 3), Shape(m: 2, n: 1, k: 1), Shape(m: 7, n: 24, k: 72), Shape(m: 8, n: 33, k: 16),
    Shape(m: 9, n: 47, k: 5), Shape(m: 3, n: 64, k: 2), Shape(m: 49, n: 72, k: 24), Shape(m: 56, n: 24, k: 72),
    Shape(m: 5, n: 31, k: 9), Shape(m: 6, n: 18, k: 7), Shape(m: 4, n: 62, k: 11), Shape(m: 14, n: 40, k: 512),
    Shape(m: 49, n: 200, k: 96), Shape(m: 600, n: 45, k: 20),
    // Every rest of 1 to 8 columns past a half panel of 16 (the one-vector
    // tile where vectors hold 8): 3, 4, 6 and 7 here, the others above.
    Shape(m: 5, n: 35, k: 13), Shape(m: 6, n: 52, k: 17), Shape(m: 3, n: 22, k: 9), Shape(m: 11, n: 23, k: 30),
    Shape(m: 24, n: 40, k: CPUCaches.l2 / 2 / (32 * 4) + 300), Shape(m: 9, n: 33, k: 2 * CPUCaches.l2 / 2 / (32 * 4) + 7),
    // Heights that tiles of 6 and of 8 rows share out unevenly (the first
    // tiles a row taller): 13, 17, 23, 29, 57, 112.
    Shape(m: 13, n: 20, k: 9), Shape(m: 17, n: 33, k: 6), Shape(m: 23, n: 16, k: 12), Shape(m: 29, n: 40, k: 5),
    Shape(m: 57, n: 8, k: 19), Shape(m: 112, n: 24, k: 10),
    // Panels of 17 to 24 columns in tiles of 4 rows shared out unevenly (21
    // as 4, 4, 4, 3, 3, 3), and rests of at most 8 in tiles of 8 (19 as 7,
    // 6, 6), both prefetching the next panel or k block between their tiles.
    Shape(m: 21, n: 56, k: 600), Shape(m: 19, n: 38, k: 700), Shape(m: 10, n: 21, k: CPUCaches.l2 / 2 / (32 * 4) + 9),
    // A last panel of exactly 16 columns in tiles of 6 rows one after
    // another (36 rows, 6 tiles; 50 as 5 of 6 and 4 of 5).
    Shape(m: 36, n: 48, k: 21), Shape(m: 50, n: 112, k: 9),
  ]

  static let starts: [atr_gemm_start] = [ATR_START_ZERO, ATR_START_C, ATR_START_COLUMN_BIAS, ATR_START_ROW_BIAS]

  @Test(arguments: InstructionSet.available)
  func packedProductMatchesPlainLoops(isa: InstructionSet) {
    InstructionSet.with(isa) {
      for shape in Self.shapes {
        for start in Self.starts { check(shape, start: start, isa: isa) }
      }
    }
  }

  func check(_ s: Shape, start: atr_gemm_start, isa: InstructionSet) {
    // A's rows lda = k + 3 apart, C's ldc = n + 5: the kernel must not
    // assume packed rows.
    let (lda, ldc) = (s.k + 3, s.n + 5)
    let a = Self.values(s.m * lda, seed: s.m + 3 * s.k)  // (M, lda)
    let b = Self.values(s.k * s.n, seed: s.n + 7 * s.k)  // (K, N)
    let bias = Self.values(max(s.m, s.n), seed: 11)
    let before = Self.values(s.m * ldc, seed: 5)  // (M, ldc)
    var packed = [Float](repeating: .nan, count: atr_packed_b_size(s.k, s.n))
    packed.withUnsafeMutableBufferPointer { atr_pack_b($0.baseAddress!, b, s.k, s.n, s.n) }
    // The residual's rows ldr = n + 2 apart, neither C's nor packed.
    let ldr = s.n + 2, residual = Self.values(s.m * ldr, seed: 13)  // (M, ldr)
    let sums = start == ATR_START_ZERO || start == ATR_START_COLUMN_BIAS
    var c = before, fresh = before, summed = before
    packed.withUnsafeBufferPointer { p in
      atr_sgemm_packed(s.m, s.n, s.k, a, lda, p.baseAddress!, &c, ldc, start, bias)
      atr_sgemm_packed_fresh(s.m, s.n, s.k, a, lda, p.baseAddress!, &fresh, ldc, start, bias)
      if sums {
        atr_sgemm_packed_sum(s.m, s.n, s.k, a, lda, p.baseAddress!, &summed, ldc, start == ATR_START_ZERO ? nil : bias,
                             residual, ldr, Int32(s.m % 2))
      }
    }
    // Asking for C's lines first changes no value.
    #expect(zip(c, fresh).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(isa) \(s) start \(start.rawValue): fresh differs")
    // B given by its rows (atr_sgemm_rows, as a convolution on planes reads
    // its input) runs the same tiles: pointing at the packed panels' rows,
    // the same bits.
    var byRows = before
    packed.withUnsafeBufferPointer { p in
      let panels = (s.n + 31) / 32
      // Row p of panel q: (panels, k) pointers.
      let rows = UnsafeMutablePointer<UnsafePointer<Float>?>.allocate(capacity: max(1, panels * s.k))
      defer { rows.deallocate() }
      for q in 0..<panels { for r in 0..<s.k { (rows + q * s.k + r).initialize(to: p.baseAddress! + (q * s.k + r) * 32) } }
      let tables = (0..<panels).map { Optional(UnsafePointer(rows + $0 * s.k)) }
      let offsets = [Int](repeating: 0, count: panels)
      atr_sgemm_rows(s.m, s.n, s.k, a, lda, tables, offsets, &byRows, ldc, start, bias)
    }
    let rowsDiffer = zip(c, byRows).filter { $0.bitPattern != $1.bitPattern }.count
    #expect(rowsDiffer == 0, "\(isa) \(s) start \(start.rawValue): \(rowsDiffer) floats differ by rows")
    var worst = 0.0, worstSum = 0.0, outside = 0
    for i in 0..<s.m {
      for j in 0..<ldc {
        guard j < s.n else {
          // Past column n, the row gap keeps what it held.
          if c[i * ldc + j].bitPattern != before[i * ldc + j].bitPattern { outside += 1 }
          if sums && summed[i * ldc + j].bitPattern != before[i * ldc + j].bitPattern { outside += 1 }
          continue
        }
        var sum = 0.0, magnitude = 0.0
        switch start {
        case ATR_START_C: sum = Double(before[i * ldc + j])
        case ATR_START_COLUMN_BIAS: sum = Double(bias[j])
        case ATR_START_ROW_BIAS: sum = Double(bias[i])
        default: break
        }
        magnitude = abs(sum)
        for p in 0..<s.k {
          let term = Double(a[i * lda + p]) * Double(b[p * s.n + j])
          sum += term
          magnitude += abs(term)
        }
        // Float rounding of the running sum: its errors add up like a
        // random walk, to about sqrt(k) ulps of the terms' magnitude. A
        // term missing or counted twice is larger than that bound even
        // at the largest k here (11,000 terms: 1/k against 2.4e-5).
        let bound = magnitude * (Double(s.k + 1)).squareRoot() * 4 * 6e-8 + 1e-30
        let error = abs(Double(c[i * ldc + j]) - sum) / bound
        worst = max(worst, error.isNaN ? .infinity : error)
        if sums {
          // The residual adds one term (and at most one rounding).
          let r = Double(residual[i * ldr + j])
          let errorSum = abs(Double(summed[i * ldc + j]) - (sum + r)) / (bound + abs(sum + r) * 1.2e-7)
          worstSum = max(worstSum, errorSum.isNaN ? .infinity : errorSum)
        }
      }
    }
    #expect(worst <= 1, "\(isa) \(s) start \(start.rawValue): error \(worst) of the bound")
    #expect(worstSum <= 1, "\(isa) \(s) start \(start.rawValue): with a residual, error \(worstSum) of the bound")
    #expect(outside == 0, "\(isa) \(s) start \(start.rawValue): \(outside) floats written past column n")
  }

  /// `atr_pack_b_rows` (a convolution's (Cout, Cin, taps) weights) packs
  /// to the bit what `atr_pack_b` makes of the same B written out as
  /// (taps x Cin, Cout), zeros past the last column, on every instruction
  /// set: one tap (the blocked transpose, whole and partial blocks of 8)
  /// and several (row by row), in two shares of panels, rows `ld` apart.
  @Test(arguments: InstructionSet.available)
  func packingByRowsMatchesPackingB(isa: InstructionSet) {
    InstructionSet.with(isa) {
      for (n, channels, taps) in [(1, 1, 1), (32, 8, 1), (45, 13, 1), (100, 64, 1), (70, 17, 9), (33, 5, 25), (8, 3, 2)] {
        let k = channels * taps, ld = k + 3
        let rows = Self.values(n * ld, seed: n + k)  // (n, ld): (Cout, Cin x taps) and a gap
        var b = [Float](repeating: 0, count: k * n)  // (taps x Cin, Cout)
        for j in 0..<n {
          for c in 0..<channels { for t in 0..<taps { b[(t * channels + c) * n + j] = rows[j * ld + c * taps + t] } }
        }
        let count = atr_packed_b_size(k, n), panels = (n + 31) / 32
        var expected = [Float](repeating: .nan, count: count), packed = [Float](repeating: .nan, count: count)
        expected.withUnsafeMutableBufferPointer { atr_pack_b($0.baseAddress!, b, k, n, n) }
        packed.withUnsafeMutableBufferPointer { p in
          atr_pack_b_rows(p.baseAddress!, rows, k, n, ld, taps, 0, panels / 2)
          atr_pack_b_rows(p.baseAddress!, rows, k, n, ld, taps, panels / 2, panels)
        }
        let differ = zip(expected, packed).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(differ == 0, "\(isa) n \(n) channels \(channels) taps \(taps): \(differ) of \(count) floats differ")
      }
    }
  }

  /// Values in [-1, 1) from a seed.
  static func values(_ count: Int, seed: Int) -> [Float] {
    var state = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Float(Int(state >> 40) % 2000 - 1000) / 1000
    }
  }
}
