import AtrousCore
import _CKernels

/// The internal op `_InterleaveChannels` (made by
/// `GraphOptimizer.fuseShuffledConcat`, never found in a model file): a
/// channel shuffle of two groups over the concatenation of two runs of
/// `width` channels, output channel 2i being channel i of the first run and
/// 2i + 1 channel i of the second. A run is a whole input of `width`
/// channels, or the window of an input from a given channel on (the Slice
/// that took ShuffleNet's first half), read where it is. One pass instead
/// of a Slice, a Concat and a shuffle, each a copy of the map.
enum InterleaveChannels {
  /// The leading underscore keeps it apart from ONNX's op types.
  static let opType = "_InterleaveChannels"
  /// Channels in each run.
  static let widthAttribute = "width"
  /// Per input, the first channel of its run, or `wholeInput` for an input
  /// of exactly `width` channels.
  static let startsAttribute = "starts"
  static let wholeInput = -1

  static func register(_ table: inout OperatorTable) {
    table[opType] = { c in [try interleave(c)] }
    table.describe([opType], floatData: true, tracesShapes: true, spatiallyLocal: true)
  }

  static func interleave(_ c: OpContext) throws -> NDArray {
    let width = try c.int(widthAttribute) ?? 0
    guard let starts = try c.ints(startsAttribute), starts.count == 2, width > 0 else {
      throw c.invalid(startsAttribute, "expected two runs of a positive width")
    }
    let parts = [try c.input(0), try c.input(1)]
    let first = parts[0]
    for (part, start) in zip(parts, starts) {
      let fits = start == wholeInput ? part.rank == 4 && part.shape[1] == width
        : start >= 0 && part.rank == 4 && start + width <= part.shape[1]
      guard fits, part.shape[0] == first.shape[0], part.shape[2...] == first.shape[2...] else {
        throw c.mismatch("cannot interleave runs of \(width) channels of \(parts[0].shape) and \(parts[1].shape)")
      }
    }
    let (n, h, w) = (first.shape[0], first.shape[2], first.shape[3])
    let shape = [n, h, w, 2 * width]  // (N, H, W, 2 * width)
    if c.shapesOnly { return NDArray(channelsLast: Tensor.uninitialized(shape: shape)) }
    let stores = parts.map { ($0.isFloat ? $0 : $0.cast(to: .float32)).toChannelsLast().storage! }  // (N, H, W, C)
    let channels = parts.map { $0.shape[1] }, offsets = starts.map { max(0, $0) }
    var output = Tensor.uninitialized(shape: shape)
    let pixels = n * h * w
    let ranges = Parallel.ranges(pixels, parts: output.count >= Elementwise.parallelCopyThreshold ? c.threads : 1)
    stores[0].withUnsafeBufferPointer { a in
      stores[1].withUnsafeBufferPointer { b in
        output.withUnsafeMutableBufferPointer { out in
          Parallel.run(ranges.count) { part in
            let r = ranges[part]
            atr_interleave_channels(out.baseAddress! + r.lowerBound * 2 * width,
                                    a.baseAddress! + r.lowerBound * channels[0] + offsets[0], channels[0],
                                    b.baseAddress! + r.lowerBound * channels[1] + offsets[1], channels[1], r.count, width)
          }
        }
      }
    }
    return NDArray(channelsLast: output)
  }
}
