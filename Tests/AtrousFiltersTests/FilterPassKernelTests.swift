import AtrousCore
@testable import AtrousFilters
import AtrousTestSupport
import Testing
import _CKernels

/// The separable passes' kernels against plain float64 sums, on every
/// instruction set: the row pass at every tap count (the usual odd sizes
/// run loops written for their size), the column pass with every number
/// of output rows (they are summed in groups).
@Suite struct FilterPassKernelTests {
  static let counts = [0, 1, 7, 15, 16, 17, 31, 33, 64, 100, 257]

  /// Sums of inputs in [-4, 4] times taps of at most 1 in magnitude: float32
  /// rounding stays below 1e-5 of the sum of the terms' magnitudes.
  private func expectClose(_ got: [Float], _ want: [Double], scale: [Double], _ label: String) {
    let worst = zip(got, zip(want, scale)).map { abs(Double($0) - $1.0) / ($1.1 + 1e-30) }.max() ?? 0
    #expect(worst < 1e-5, "\(label): \(worst)")
  }

  /// Every row pass against plain sums, and each output the same bits
  /// whether it falls in a vector, in the overlapping last vector or in
  /// the scalar loop of a short row: filtering from element `skip` on gives
  /// the same bits as filtering the whole row.
  @Test(arguments: InstructionSet.available)
  func rowPassMatchesPlainSumsAtEveryTapCount(isa: InstructionSet) {
    var random = SeededRandom(seed: 21)
    for ntaps in 1...27 {
      let symmetric = NamedKernels.gaussian(size: ntaps, sigma: Double(ntaps) / 5 + 0.3)
      let general = (0..<ntaps).map { _ in Float.random(in: -1...1, using: &random) }
      for taps in [symmetric, general] {
        for step in [1, 3] {
          for count in Self.counts {
            let input = (0..<(count + (ntaps - 1) * step + 8)).map { _ in Float.random(in: -4...4, using: &random) }
            func run(skip: Int) -> [Float] {
              var out = [Float](repeating: .nan, count: max(count - skip, 0))
              InstructionSet.with(isa) {
                input.withUnsafeBufferPointer { i in
                  out.withUnsafeMutableBufferPointer { o in
                    atr_filter_row(o.baseAddress, i.baseAddress! + skip, count - skip, taps, Int32(ntaps), step,
                                   symmetry(of: taps))
                  }
                }
              }
              return out
            }
            let whole = run(skip: 0)
            let terms = (0..<count).map { j in (0..<ntaps).map { Double(taps[$0]) * Double(input[j + $0 * step]) } }
            let label = "\(isa) taps \(ntaps) \(taps == symmetric ? "symmetric" : "general") step \(step) count \(count)"
            expectClose(whole, terms.map { $0.reduce(0, +) }, scale: terms.map { $0.map(abs).reduce(0, +) }, label)
            for skip in [1, 5, 9] where skip < count {
              #expect(run(skip: skip).map(\.bitPattern) == whole.dropFirst(skip).map(\.bitPattern), "\(label) skip \(skip)")
            }
          }
        }
      }
    }
  }

  /// The column pass on 1 to 9 output rows at once, every tap count up to
  /// 19: each output row against plain sums, and the same bits as when it
  /// is made alone. An infinity in the input row just past an output's
  /// window must not reach that output (a zero tap times it is NaN).
  @Test(arguments: InstructionSet.available)
  func columnPassMatchesPlainSumsInEveryGroup(isa: InstructionSet) {
    var random = SeededRandom(seed: 22)
    for ntaps in [1, 2, 3, 5, 8, 17, 19] {
      let taps = (0..<ntaps).map { _ in Float.random(in: -1...1, using: &random) }
      for count in [1, 16, 37, 150] {
        for nout in 1...9 {
          var rows = (0..<(nout + ntaps - 1)).map { _ in (0..<count).map { _ in Float.random(in: -4...4, using: &random) } }
          // Read by the last output only.
          if nout > 1 { rows[rows.count - 1][0] = .infinity }
          func run(first: Int, outputs: Int) -> [[Float]] {
            var out = [Float](repeating: .nan, count: outputs * count)
            let flat = rows.flatMap { $0 }
            InstructionSet.with(isa) {
              flat.withUnsafeBufferPointer { f in
                out.withUnsafeMutableBufferPointer { o in
                  let inputs: [UnsafePointer<Float>?] = (0..<(outputs + ntaps - 1)).map { f.baseAddress! + (first + $0) * count }
                  let targets: [UnsafeMutablePointer<Float>?] = (0..<outputs).map { o.baseAddress! + $0 * count }
                  atr_filter_columns_rows(targets, Int32(outputs), inputs, taps, Int32(ntaps), count, 0)
                }
              }
            }
            return (0..<outputs).map { Array(out[($0 * count)..<(($0 + 1) * count)]) }
          }
          let together = run(first: 0, outputs: nout)
          for r in 0..<nout {
            let label = "\(isa) taps \(ntaps) count \(count) rows \(nout) row \(r)"
            #expect(together[r].map(\.bitPattern) == run(first: r, outputs: 1)[0].map(\.bitPattern), "\(label)")
            let terms = (0..<count).map { j in (0..<ntaps).map { Double(taps[$0]) * Double(rows[r + $0][j]) } }
            if nout > 1 && r < nout - 1 { #expect(together[r][0].isFinite, "\(label)") }
            if r < nout - 1 || nout == 1 {
              expectClose(together[r], terms.map { $0.reduce(0, +) }, scale: terms.map { $0.map(abs).reduce(0, +) }, label)
            }
          }
        }
      }
    }
  }
}
