import AtrousCore
import AtrousIO

/// A picture of hypercolumns made while they are exported: on the left the
/// mean activation per pixel (viridis), as the seed note shows it; on the
/// right the first three principal components as red, green and blue.
///
/// The components come from a sample of pixels taken before the export;
/// each is scaled by its 1st to 99th percentile over that sample. Pixels
/// never observed (all but the chosen ones of a sparse export) are black.
public final class HypercolumnPreview: @unchecked Sendable {
  public let width: Int, height: Int, channels: Int
  private var means: [Float]  // (H, W)
  private var projections: [Float]  // (H, W, 3)
  private var observed: [Bool]  // (H, W)
  private let centre: [Float]  // (C)
  private let axes: [Float]  // (3, C): the principal directions, row by row
  private let meanRange: ValueRange
  private let axisRanges: [ValueRange]

  /// - Parameter samples: hypercolumns of a sample of pixels, (N, C).
  public init(width: Int, height: Int, samples: Tensor) {
    self.width = width
    self.height = height
    let (n, c) = (samples.shape[0], samples.shape[1])
    channels = c
    means = [Float](repeating: 0, count: width * height)
    projections = [Float](repeating: 0, count: width * height * 3)
    observed = [Bool](repeating: false, count: width * height)
    let x = samples.scalars
    var centre = [Float](repeating: 0, count: c)
    for i in 0..<n { for k in 0..<c { centre[k] += x[i * c + k] / Float(max(n, 1)) } }
    self.centre = centre
    // Centred data, then the top three directions by power iteration,
    // each kept orthogonal to the ones before.
    let centred = (0..<(n * c)).map { x[$0] - centre[$0 % c] }
    var random = SeededRandom(seed: 1)
    var axes: [[Float]] = []
    for _ in 0..<min(3, c) {
      var v = (0..<c).map { _ in Float.random(in: -0.5...0.5, using: &random) }
      for _ in 0..<60 {
        var scores = [Float](repeating: 0, count: n)
        for i in 0..<n { var s: Float = 0; for k in 0..<c { s += centred[i * c + k] * v[k] }; scores[i] = s }
        var next = [Float](repeating: 0, count: c)
        for i in 0..<n { for k in 0..<c { next[k] += centred[i * c + k] * scores[i] } }
        for a in axes {
          let dot = zip(next, a).map(*).reduce(0, +)
          for k in 0..<c { next[k] -= dot * a[k] }
        }
        let norm = next.map { $0 * $0 }.reduce(0, +).squareRoot()
        guard norm > 0 else { break }
        v = next.map { $0 / norm }
      }
      axes.append(v)
    }
    while axes.count < 3 { axes.append([Float](repeating: 0, count: c)) }
    self.axes = axes.flatMap { $0 }
    func percentiles(_ values: [Float]) -> ValueRange {
      let sorted = values.sorted()
      guard !sorted.isEmpty else { return ValueRange(low: 0, high: 0) }
      return ValueRange(low: sorted[sorted.count / 100], high: sorted[(sorted.count * 99) / 100])
    }
    meanRange = percentiles((0..<n).map { i in (0..<c).map { x[i * c + $0] }.reduce(0, +) / Float(max(c, 1)) })
    axisRanges = axes.map { a in percentiles((0..<n).map { i in (0..<c).map { centred[i * c + $0] * a[$0] }.reduce(0, +) }) }
  }

  /// Takes in a band of hypercolumns, (rows, columns, C).
  public func observe(rows: Range<Int>, columns: Range<Int>, values: UnsafeBufferPointer<Float>) {
    let c = channels, w = columns.count
    for (i, y) in rows.enumerated() {
      for x in 0..<w {
        let p = values.baseAddress! + (i * w + x) * c
        var sum: Float = 0, s0: Float = 0, s1: Float = 0, s2: Float = 0
        for k in 0..<c {
          let v = p[k], d = v - centre[k]
          sum += v
          s0 += d * axes[k]
          s1 += d * axes[c + k]
          s2 += d * axes[2 * c + k]
        }
        let index = y * width + columns.lowerBound + x
        observed[index] = true
        means[index] = sum / Float(max(c, 1))
        projections[index * 3] = s0
        projections[index * 3 + 1] = s1
        projections[index * 3 + 2] = s2
      }
    }
  }

  /// The two pictures side by side, 8-bit RGB, (2W) x H.
  public func image() -> Image {
    let table = Colormap.viridis.table
    var samples = [UInt8](repeating: 0, count: 2 * width * height * 3)
    for y in 0..<height {
      for x in 0..<width {
        let index = y * width + x
        guard observed[index] else { continue }
        let level = Int((meanRange.unit(means[index]) * 255).rounded()) * 3
        let left = (y * 2 * width + x) * 3, right = (y * 2 * width + width + x) * 3
        for k in 0..<3 {
          samples[left + k] = table[level + k]
          samples[right + k] = UInt8((axisRanges[k].unit(projections[index * 3 + k]) * 255).rounded())
        }
      }
    }
    return Image(width: 2 * width, height: height, format: .rgb, samples: samples)
  }
}
