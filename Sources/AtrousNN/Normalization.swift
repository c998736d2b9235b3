import AtrousCore
import Foundation

/// BatchNormalization (inference) and LRN.
enum Normalization {
  static func register(_ table: inout OperatorTable) {
    table["BatchNormalization"] = { c in try batchNorm(c) }
    table["LRN"] = { c in try lrn(c) }
  }

  /// y = (x - mean) / sqrt(var + epsilon) * scale + B, per channel (axis 1).
  static func batchNorm(_ c: OpContext) throws -> [NDArray] {
    // Training updates the running statistics: asked for by training_mode
    // (opset 14) or, before it, by asking for the statistics outputs.
    let statistics = c.node.outputs.dropFirst().contains { !$0.isEmpty }
    if try c.int("training_mode", default: 0) == 1 || (c.opset < 14 && statistics) {
      throw NNError.trainingMode(node: c.node.name, op: c.op)
    }
    let x = try c.input(0)
    let scale = try c.input(1).floatValues(), shift = try c.input(2).floatValues()
    let mean = try c.input(3).floatValues(), variance = try c.input(4).floatValues()
    let epsilon = try c.float("epsilon", default: 1e-5)
    guard x.rank >= 2 else { throw c.mismatch("input of rank \(x.rank)") }
    let channels = x.shape[1]
    guard [scale, shift, mean, variance].allSatisfy({ $0.count == channels }) else {
      throw c.mismatch("parameters do not have \(channels) entries")
    }
    // Folded to y = x * a + b per channel.
    let a = (0..<channels).map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
    let b = (0..<channels).map { shift[$0] - mean[$0] * a[$0] }
    let outputs = c.node.outputs.count
    if x.rank == 4 {
      var storage = x.toChannelsLast().storage!
      storage.withUnsafeMutableBufferPointer { v in
        var i = 0
        while i < v.count {
          for k in 0..<channels { v[i + k] = v[i + k] * a[k] + b[k] }
          i += channels
        }
      }
      return [NDArray(channelsLast: storage)] + [NDArray](repeating: NDArray(shape: [channels], floats: mean), count: outputs - 1)
    }
    let plain = x.standard()
    var values = plain.floatValues()
    let inner = x.shape[2...].reduce(1, *)
    for i in values.indices { let k = (i / inner) % channels; values[i] = values[i] * a[k] + b[k] }
    return [NDArray(shape: x.shape, floats: values)]
  }

  /// y = x / (bias + alpha / size * sum of x^2 over nearby channels)^beta.
  static func lrn(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0)
    guard x.rank == 4 else { throw c.unsupported("input rank", x.rank) }
    guard let size = try c.int("size"), size >= 1 else { throw c.invalid("size", "required and positive") }
    let alpha = try c.float("alpha", default: 1e-4), beta = try c.float("beta", default: 0.75)
    let bias = try c.float("bias", default: 1)
    let input = x.toChannelsLast().storage!
    let ch = input.shape[3]
    var output = Tensor.uninitialized(shape: input.shape)
    let below = (size - 1) / 2, above = size - 1 - below
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        var i = 0
        while i < src.count {
          for k in 0..<ch {
            var sum: Float = 0
            for j in Swift.max(0, k - below)...Swift.min(ch - 1, k + above) { sum += src[i + j] * src[i + j] }
            dst[i + k] = src[i + k] / pow(bias + alpha / Float(size) * sum, beta)
          }
          i += ch
        }
      }
    }
    return [NDArray(channelsLast: output)]
  }
}
