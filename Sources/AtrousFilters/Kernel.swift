import _CKernels

/// A 2-D kernel, row-major: `values[r * columns + c]`.
public struct Kernel2D: Sendable, Equatable {
  public var rows: Int
  public var columns: Int
  public var values: [Float]

  public init(rows: Int, columns: Int, values: [Float]) {
    precondition(rows >= 1 && columns >= 1 && values.count == rows * columns,
                 "\(values.count) values do not fill a \(rows)x\(columns) kernel")
    self.rows = rows
    self.columns = columns
    self.values = values
  }

  /// The outer product column ⊗ row: what a separable pair computes.
  public init(column: [Float], row: [Float]) {
    self.init(rows: column.count, columns: row.count, values: column.flatMap { c in row.map { c * $0 } })
  }

  public subscript(r: Int, c: Int) -> Float { values[r * columns + c] }

  /// The kernel turned 180 degrees: correlation with it is convolution
  /// with the original.
  public var flipped: Kernel2D { Kernel2D(rows: rows, columns: columns, values: values.reversed()) }

  /// A (column, row) pair whose outer product equals this kernel within
  /// `tolerance` times its largest magnitude, or nil when the kernel is not
  /// rank 1. The pivot is the largest element, which keeps the split exact
  /// for integer kernels such as Sobel's.
  public func separated(tolerance: Float = 1e-6) -> (column: [Float], row: [Float])? {
    guard let pivot = values.indices.max(by: { abs(values[$0]) < abs(values[$1]) }), values[pivot] != 0 else {
      return nil
    }
    let pr = pivot / columns, pc = pivot % columns
    let row = (0..<columns).map { self[pr, $0] }
    let column = (0..<rows).map { self[$0, pc] / values[pivot] }
    let largest = abs(values[pivot])
    for r in 0..<rows {
      for c in 0..<columns where abs(column[r] * row[c] - self[r, c]) > tolerance * largest {
        return nil
      }
    }
    return (column, row)
  }
}

/// Symmetry of a tap vector, for the folded loops in `_CKernels`.
func symmetry(of taps: [Float]) -> atr_taps_symmetry {
  let n = taps.count
  if (0..<(n / 2)).allSatisfy({ taps[$0] == taps[n - 1 - $0] }) { return ATR_TAPS_SYMMETRIC }
  if (0..<(n / 2)).allSatisfy({ taps[$0] == -taps[n - 1 - $0] }) && (n % 2 == 0 || taps[n / 2] == 0) {
    return ATR_TAPS_ANTISYMMETRIC
  }
  return ATR_TAPS_GENERAL
}

/// Zero taps on both ends to make `taps` `length` long (lengths of equal parity).
func centred(_ taps: [Float], length: Int) -> [Float] {
  let extra = length - taps.count
  precondition(extra >= 0 && extra % 2 == 0, "cannot centre \(taps.count) taps in \(length)")
  return [Float](repeating: 0, count: extra / 2) + taps + [Float](repeating: 0, count: extra / 2)
}
