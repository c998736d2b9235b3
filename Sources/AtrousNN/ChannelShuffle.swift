import AtrousCore
import _CKernels

/// The internal op `_ChannelShuffle` (made by
/// `GraphOptimizer.recognizeChannelShuffle`, never found in a model file):
/// channels read as (g, C/g) and written as (C/g, g), in the layout the data
/// has, so channels-last data moves once and is not transposed to planes
/// and back.
enum ChannelShuffle {
  /// The leading underscore keeps it apart from ONNX's op types.
  static let opType = "_ChannelShuffle"
  /// The shape the first Reshape gave: (N, g, C/g, H, W).
  static let splitAttribute = "split"

  static func register(_ table: inout OperatorTable) {
    table[opType] = { c in
      let x = try c.input(0)
      guard let split = try c.ints(splitAttribute), split.count == 5 else { throw c.invalid(splitAttribute, "missing") }
      let merged = [split[0], split[1] * split[2], split[3], split[4]]
      guard x.shape == merged, x.isFloat else {
        // Not the channels of this input: the three ops as the model has them.
        guard x.count == merged.reduce(1, *) else { throw c.mismatch("cannot reshape \(x.shape) to \(split)") }
        return [ShapeOps.permute(x.reshaped(split), [0, 2, 1, 3, 4]).reshaped(merged)]
      }
      let groups = split[1]
      if c.shapesOnly { return [x] }
      let channels = x.shape[1], per = channels / groups
      // Output channel j = b * groups + a reads input channel a * per + b.
      let source = (0..<channels).map { j in Int32((j % groups) * per + j / groups) }
      let storage = x.storage!
      var output = Tensor.uninitialized(shape: storage.shape)
      storage.withUnsafeBufferPointer { src in
        output.withUnsafeMutableBufferPointer { dst in
          if x.channelsLast {
            atr_gather_channels(dst.baseAddress!, src.baseAddress!, src.count / channels, channels, source)
          } else {
            let plane = x.shape[2] * x.shape[3]
            for b in 0..<x.shape[0] {
              for j in 0..<channels {
                (dst.baseAddress! + (b * channels + j) * plane)
                  .update(from: src.baseAddress! + (b * channels + Int(source[j])) * plane, count: plane)
              }
            }
          }
        }
      }
      return [x.channelsLast ? NDArray(channelsLast: output, dtype: x.dtype) : NDArray(shape: x.shape, floats: output, dtype: x.dtype)]
    }
    table.describe([opType], keepsShape: true, spatiallyLocal: true)
  }
}
