import AtrousCore
import _CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// BatchNormalization (inference), LRN, and the normalizations over a
/// set of axes: LayerNormalization, RMSNormalization, GroupNormalization,
/// InstanceNormalization, MeanVarianceNormalization, LpNormalization.
/// Statistics accumulate in Double.
enum Normalization {
  static func register(_ table: inout OperatorTable) {
    table["BatchNormalization"] = { c in try batchNorm(&c) }
    table["LRN"] = { c in try lrn(c) }
    table.add("LayerNormalization", outputs: [.input(0), .fixed(.float32)]) { c in
      if let fast = try layerNormRows(&c) { return [fast] }
      let x = try c.input(0).standard()
      let axis = try c.axis(c.int("axis", default: -1), rank: x.rank)
      let epsilon = Double(try c.float("epsilon", default: 1e-5))
      let axes = Array(axis..<x.rank)
      let (mean, meanSquare) = moments(x, axes: axes)
      let inverse = zip(mean, meanSquare).map { 1 / ($1 - $0 * $0 + epsilon).squareRoot() }
      var y = normalized(x, axes: axes) { cell, v in (v - mean[cell]) * inverse[cell] }
      y = try affine(y, scale: c.input(1), bias: c.optionalInput(2), c)
      let statisticsShape = Array(x.shape[..<axis]) + [Int](repeating: 1, count: x.rank - axis)
      return [y, NDArray(shape: statisticsShape, floats: mean.map { Float($0) }),
              NDArray(shape: statisticsShape, floats: inverse.map { Float($0) })]
    }
    table["RMSNormalization"] = { c in
      let x = try c.input(0).standard()
      let axis = try c.axis(c.int("axis", default: -1), rank: x.rank)
      let epsilon = Double(try c.float("epsilon", default: 1e-5))
      let axes = Array(axis..<x.rank)
      let inverse = moments(x, axes: axes).meanSquare.map { 1 / ($0 + epsilon).squareRoot() }
      let y = normalized(x, axes: axes) { cell, v in v * inverse[cell] }
      return [try affine(y, scale: c.input(1), bias: nil, c)]
    }
    table["InstanceNormalization"] = { c in
      let x = try c.input(0).standard()
      guard x.rank >= 3 else { throw c.mismatch("input of rank \(x.rank)") }
      let epsilon = Double(try c.float("epsilon", default: 1e-5))
      let y = standardized(x, axes: Array(2..<x.rank), epsilon: epsilon)
      return [try affine(y, scale: perChannel(c.input(1), x, c), bias: perChannel(c.input(2), x, c), c)]
    }
    table["GroupNormalization"] = { c in
      let x = try c.input(0).standard()
      guard x.rank >= 3, let groups = try c.int("num_groups"), groups > 0, x.shape[1] % groups == 0 else {
        throw c.invalid("num_groups", "must divide the channels of the input")
      }
      let epsilon = Double(try c.float("epsilon", default: 1e-5))
      let (n, channels) = (x.shape[0], x.shape[1])
      let grouped = x.reshaped([n, groups, x.count / Swift.max(n * groups, 1)])
      let y = standardized(grouped, axes: [2], epsilon: epsilon).reshaped(x.shape)
      // Opset 18 takes a scale and bias per group, 21 per channel.
      func expand(_ v: NDArray) throws -> NDArray {
        guard v.count == groups && groups != channels else { return try perChannel(v, x, c) }
        let values = v.floatValues()
        return try perChannel(NDArray(shape: [channels], floats: (0..<channels).map { values[$0 / (channels / groups)] }), x, c)
      }
      return [try affine(y, scale: expand(c.input(1)), bias: expand(c.input(2)), c)]
    }
    table["MeanVarianceNormalization"] = { c in
      let x = try c.input(0).standard()
      let axes = try (c.ints("axes") ?? [0, 2, 3]).map { try c.axis($0, rank: x.rank, attribute: "axes") }
      let (mean, meanSquare) = moments(x, axes: axes)
      // As ONNX's function body: (x - mean) / (sqrt(var) + 1e-9).
      return [normalized(x, axes: axes) { cell, v in
        (v - mean[cell]) / ((meanSquare[cell] - mean[cell] * mean[cell]).squareRoot() + 1e-9)
      }]
    }
    table["LpNormalization"] = { c in
      let x = try c.input(0).standard()
      let axis = try c.axis(c.int("axis", default: -1), rank: x.rank)
      let p = try c.int("p", default: 2)
      guard p == 1 || p == 2 else { throw c.unsupported("p", p) }
      var norms = [Double](repeating: 0, count: x.count / Swift.max(x.shape[axis], 1))
      let values = x.floatValues()
      let kept = x.shape.indices.map { $0 != axis }
      Reduce.forEach(x.shape, kept: kept) { i, o in norms[o] += p == 1 ? Swift.abs(Double(values[i])) : Double(values[i] * values[i]) }
      if p == 2 { norms = norms.map { $0.squareRoot() } }
      return [normalized(x, axes: [axis]) { cell, v in norms[cell] == 0 ? 0 : v / norms[cell] }]
    }
    let normalizations = ["BatchNormalization", "LRN", "LayerNormalization", "RMSNormalization",
                          "InstanceNormalization", "GroupNormalization", "MeanVarianceNormalization", "LpNormalization"]
    table.describe(normalizations, keepsShape: true)
    // Per pixel across channels; the others take statistics over the image.
    table.describe(["BatchNormalization", "LRN"], floatData: true, spatiallyLocal: true)
  }

  /// LayerNormalization over the trailing axes from `axis` as rows of
  /// contiguous floats (`atr_layer_norm_rows`, rows across threads), when
  /// scale and bias hold one value per element of a row and the Mean and
  /// InvStdDev outputs are not asked for; nil otherwise.
  static func layerNormRows(_ c: inout OpContext) throws -> NDArray? {
    guard c.node.outputs.dropFirst().allSatisfy(\.isEmpty), !c.shapesOnly else { return nil }
    let x = try c.input(0).standard()
    let axis = try c.axis(c.int("axis", default: -1), rank: x.rank)
    let n = x.shape[axis...].reduce(1, *)
    let scale = try c.input(1), bias = c.optionalInput(2)
    guard x.isFloat, n > 0, scale.count == n, bias.map({ $0.count == n }) ?? true,
      scale.shape.drop(while: { $0 == 1 }).elementsEqual(x.shape[axis...].drop(while: { $0 == 1 })),
      bias.map({ $0.shape.drop(while: { $0 == 1 }).elementsEqual(x.shape[axis...].drop(while: { $0 == 1 })) }) ?? true
    else { return nil }
    let epsilon = try c.float("epsilon", default: 1e-5)
    c.path = "rows"
    let rows = x.count / n
    let (scales, biases) = (scale.floatValues(), bias?.floatValues())
    var output = Tensor.uninitialized(shape: x.shape)
    let parts = Parallel.ranges(rows, parts: x.count >= Elementwise.parallelThreshold ? c.threads : 1)
    x.storage!.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        scales.withUnsafeBufferPointer { ps in
          let run = { (pb: UnsafePointer<Float>?) in
            Parallel.run(parts.count) { part in
              let r = parts[part]
              atr_layer_norm_rows(dst.baseAddress! + r.lowerBound * n, src.baseAddress! + r.lowerBound * n, r.count, n,
                                  ps.baseAddress!, pb, epsilon)
            }
          }
          if let biases { biases.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
        }
      }
    }
    return NDArray(shape: x.shape, floats: output)
  }

  /// Mean and mean square of `x` over `axes`, one per cell of the kept axes.
  static func moments(_ x: NDArray, axes: [Int]) -> (mean: [Double], meanSquare: [Double]) {
    let kept = x.shape.indices.map { !axes.contains($0) }
    let cells = x.shape.indices.filter { kept[$0] }.map { x.shape[$0] }.reduce(1, *)
    let n = Double(Swift.max(x.count / Swift.max(cells, 1), 1))
    var sum = [Double](repeating: 0, count: cells), squares = sum
    let values = x.floatValues()
    Reduce.forEach(x.shape, kept: kept) { i, o in
      let v = Double(values[i])
      sum[o] += v
      squares[o] += v * v
    }
    return (sum.map { $0 / n }, squares.map { $0 / n })
  }

  /// `f(cell, x)` for every element, with the cell of its kept axes.
  static func normalized(_ x: NDArray, axes: [Int], _ f: (Int, Double) -> Double) -> NDArray {
    let kept = x.shape.indices.map { !axes.contains($0) }
    let values = x.floatValues()
    var out = [Float](repeating: 0, count: values.count)
    Reduce.forEach(x.shape, kept: kept) { i, o in out[i] = Float(f(o, Double(values[i]))) }
    return NDArray(shape: x.shape, floats: out)
  }

  /// (x - mean) / sqrt(var + epsilon) over `axes`.
  static func standardized(_ x: NDArray, axes: [Int], epsilon: Double) -> NDArray {
    let (mean, meanSquare) = moments(x, axes: axes)
    let inverse = zip(mean, meanSquare).map { 1 / ($1 - $0 * $0 + epsilon).squareRoot() }
    return normalized(x, axes: axes) { cell, v in (v - mean[cell]) * inverse[cell] }
  }

  /// A per-channel vector shaped (C, 1, ...) to broadcast against `x`'s axis 1.
  static func perChannel(_ v: NDArray, _ x: NDArray, _ c: OpContext) throws -> NDArray {
    guard v.count == x.shape[1] else { throw c.mismatch("\(v.count) values for \(x.shape[1]) channels") }
    return v.reshaped([v.count] + [Int](repeating: 1, count: x.rank - 2))
  }

  /// y * scale + bias, broadcast as NumPy does.
  static func affine(_ y: NDArray, scale: NDArray, bias: NDArray?, _ c: OpContext) throws -> NDArray {
    var result = try Elementwise.broadcast(y, scale, .mul, c)
    if let bias { result = try Elementwise.broadcast(result, bias, .add, c) }
    return result
  }

  /// y = (x - mean) / sqrt(var + epsilon) * scale + B, per channel (axis 1).
  /// A batch norm not folded into a convolution (one after a concatenation,
  /// as DenseNet's) runs channels-last as one vectorized multiply-add per
  /// pixel, pixels across threads, in place when its input is its own, with
  /// the element-wise steps fused after it applied while in cache.
  static func batchNorm(_ c: inout OpContext) throws -> [NDArray] {
    let x = try c.takeInput(0)
    guard x.rank >= 2 else { throw c.mismatch("input of rank \(x.rank)") }
    let channels = x.shape[1]
    let (a, b) = try batchNormAffine(c, parameters: 1, channels: channels)
    let steps = try Pointwise.epilogue(of: c)
    c.path = "channels" + Pointwise.describe(steps)
    if x.rank == 4 {
      var owned = x.toChannelsLast()
      let input = owned.releaseStorage()!
      let pixels = input.count / Swift.max(channels, 1)
      let parts = Parallel.ranges(pixels, parts: input.count >= Elementwise.parallelThreshold ? c.threads : 1)
      let output = Elementwise.writeInPlaceOrNew(input, shape: input.shape) { src, dst in
        a.withUnsafeBufferPointer { pa in
          b.withUnsafeBufferPointer { pb in
            Parallel.run(parts.count) { part in
              let r = parts[part]
              let start = r.lowerBound * channels, count = r.count * channels
              atr_channel_affine(dst.baseAddress! + start, src.baseAddress! + start, r.count, channels, pa.baseAddress!,
                                 pb.baseAddress!)
              atr_pointwise(dst.baseAddress! + start, 1, count, count, steps, steps.count)
            }
          }
        }
      }
      return [NDArray(channelsLast: output)]
    }
    let plain = x.standard()
    var values = plain.floatValues()
    let inner = x.shape[2...].reduce(1, *)
    for i in values.indices { let k = (i / inner) % channels; values[i] = values[i] * a[k] + b[k] }
    return [Pointwise.apply(steps, to: NDArray(shape: x.shape, floats: values), threads: c.threads)]
  }

  /// A BatchNormalization's scale, B, mean and variance (inputs
  /// `parameters` to `parameters + 3`, `channels` each) folded to y = x *
  /// a + b per channel. Throws where the node would train: training
  /// updates the running statistics, asked for by training_mode (opset 14)
  /// or, before it, by asking for the statistics outputs.
  static func batchNormAffine(_ c: OpContext, parameters first: Int, channels: Int) throws -> (a: [Float], b: [Float]) {
    let statistics = c.node.outputs.dropFirst().contains { !$0.isEmpty }
    if try c.int("training_mode", default: 0) == 1 || (c.opset < 14 && statistics) {
      throw NNError.trainingMode(node: c.node.name, op: c.op)
    }
    let scale = try c.input(first).floatValues(), shift = try c.input(first + 1).floatValues()
    let mean = try c.input(first + 2).floatValues(), variance = try c.input(first + 3).floatValues()
    let epsilon = try c.float("epsilon", default: 1e-5)
    guard [scale, shift, mean, variance].allSatisfy({ $0.count == channels }) else {
      throw c.mismatch("parameters do not have \(channels) entries")
    }
    let a = (0..<channels).map { scale[$0] / (variance[$0] + epsilon).squareRoot() }
    let b = (0..<channels).map { shift[$0] - mean[$0] * a[$0] }
    return (a, b)
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
