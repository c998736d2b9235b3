import AtrousCore

/// Correlation with a separable kernel whose taps are equal along each axis
/// (a box filter, normalized or not), by running sums: each output row
/// adds the rows entering the window and subtracts those leaving it, and
/// each row's sums along x come from its prefix sums, so the cost per
/// pixel does not grow with the kernel, as with OpenCV's boxFilter. Sums
/// are kept in double precision, so the subtractions do not drift.
final class BoxStage: ComputedStage {
  private let input: PaddedRows
  private let weight: Double  // the product of the row and column tap values
  private let rowTaps: Int, columnTaps: Int
  private let vertical: AxisPlan, horizontal: AxisPlan
  private var sums: [Double]  // (OW * C): the window's rows summed along x, then added up
  private var window: Range<Int>? = nil  // the padded row positions in `sums`
  private var prefix: [Double]  // ((padded width + 1) * C): scratch for one row

  /// Kernels of more taps than this along an axis take the running sums;
  /// smaller ones stay on the vectorized direct passes, which are faster
  /// there (box filters on a 4000x3000 RGB image, 2 threads, AMD EPYC:
  /// direct 43 / 73 / 135 / 252 ms for 17 / 31 / 63 / 127 taps, running
  /// sums 130-145 ms for any size).
  static let minimumTaps = 64

  /// Whether `row` and `column` make a box this stage runs: equal taps
  /// along each axis, one of them long, no dilation.
  static func applies(row: [Float], column: [Float], geometry: FilterGeometry) -> Bool {
    geometry.dilation == (1, 1) && max(row.count, column.count) > minimumTaps
      && row.allSatisfy { $0 == row[0] } && column.allSatisfy { $0 == column[0] }
  }

  init(upstream: RowStage, row: [Float], column: [Float], geometry: FilterGeometry) throws {
    horizontal = try geometry.plan(count: upstream.width, taps: row.count, vertical: false)
    vertical = try geometry.plan(count: upstream.height, taps: column.count, vertical: true)
    weight = Double(row[0]) * Double(column[0])
    rowTaps = row.count
    columnTaps = column.count
    // The rows of the window stay cached, so a row leaving it is not
    // recomputed upstream: when the window is taller than the image, each
    // row is in it many times, and a chain of such stages recomputed its
    // upstream rows at every level (four boxes of 96 rows on a 16-row
    // image took 0.17 s, growing as 16^depth).
    input = PaddedRows(upstream: upstream, border: geometry.border, padLeft: horizontal.padBegin,
                       padRight: horizontal.padEnd, simultaneousRows: min(column.count, upstream.height) + 1)
    let c = upstream.channels
    sums = [Double](repeating: 0, count: horizontal.outputCount * c)
    prefix = [Double](repeating: 0, count: (input.paddedLength / max(c, 1) + 1) * c)
    super.init(height: vertical.outputCount, width: horizontal.outputCount, channels: c)
  }

  override func compute(row y: Int, into out: UnsafeMutablePointer<Float>) {
    let first = vertical.firstTap(y), wanted = first..<(first + columnTaps)
    if let current = window, current.lowerBound <= first, first < current.upperBound {
      for p in current.lowerBound..<first { add(input.source(p), times: -1) }
      for p in current.upperBound..<wanted.upperBound { add(input.source(p), times: 1) }
    } else {
      // The first row of a band, or a stride past the whole window: each
      // image row once, times the positions the border maps to it (a
      // kernel taller than the image sees most rows many times).
      sums.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
      var times: [Int: Int] = [:]
      for p in wanted { times[input.source(p), default: 0] += 1 }
      for (row, count) in times { add(row, times: Double(count)) }
    }
    window = wanted
    let weight = self.weight
    sums.withUnsafeBufferPointer { s in
      for i in 0..<rowLength { out[i] = Float(s[i] * weight) }
    }
  }

  override func startBand() { window = nil }

  /// Adds `times` times the sums along x of the row `PaddedRows.source`
  /// gave to `sums`.
  private func add(_ source: Int, times: Double) {
    let padded = input.row(source: source)
    let c = channels, length = input.paddedLength, (s, n, w) = (horizontal.stride, rowTaps, width)
    prefix.withUnsafeMutableBufferPointer { prefix in
      sums.withUnsafeMutableBufferPointer { sums in
        for k in 0..<c { prefix[k] = 0 }
        for i in 0..<length { prefix[i + c] = prefix[i] + Double(padded[i]) }
        for x in 0..<w {
          let start = x * s * c, end = (x * s + n) * c
          for k in 0..<c { sums[x * c + k] += times * (prefix[end + k] - prefix[start + k]) }
        }
      }
    }
  }
}
