import AtrousCore
import _CKernels

/// Chains of element-wise steps run in one pass over memory: the internal
/// op `_Pointwise` (made by `GraphOptimizer.fusePointwise`, never found in
/// a model file) and a convolution's epilogue, applied to each block of
/// output while it is still in cache.
enum Pointwise {
  /// The internal op type; the leading underscore keeps it apart from ONNX's.
  static let opType = "_Pointwise"
  /// Attribute holding the steps as (op, a, b) triples.
  static let stepsAttribute = "steps"
  /// Attribute of a Conv holding the steps applied to its output.
  static let epilogueAttribute = "_epilogue"
  /// Attribute of `_Pointwise`: the rank of a fused constant operand, which
  /// broadcasting would raise a lower-rank input to.
  static let rankAttribute = "rank"

  static func register(_ table: inout OperatorTable) {
    table[opType] = { c in
      var x = try c.takeInput(0)
      let rank = try c.int(rankAttribute, default: 0)
      if x.rank < rank { x = x.reshaped([Int](repeating: 1, count: rank - x.rank) + x.shape) }
      let steps = try decode(c.floats(stepsAttribute) ?? [])
      c.path = "fused " + describe(steps).dropFirst()
      if c.shapesOnly { return [x] }
      return [apply(steps, to: x, threads: c.threads)]
    }
    table.describe([opType], floatData: true, keepsShape: true, spatiallyLocal: true)
  }

  static func encode(_ steps: [atr_pointwise_step]) -> [Float] {
    steps.flatMap { [Float($0.op.rawValue), $0.a, $0.b] }
  }

  static func decode(_ values: [Float]) throws -> [atr_pointwise_step] {
    stride(from: 0, to: values.count - 2, by: 3).map { i in
      atr_pointwise_step(op: atr_pointwise_op(rawValue: UInt32(values[i])), a: values[i + 1], b: values[i + 2])
    }
  }

  /// Encoded `steps` with `step` after them; an affine step after an
  /// affine one merges with it: a2 (a1 x + b1) + b2 = (a2 a1) x + (a2 b1 + b2)
  /// (the same within float rounding), one pass instead of two.
  static func appending(_ step: atr_pointwise_step, to steps: [Float]) -> [Float] {
    guard step.op == ATR_PW_AFFINE, steps.count >= 3, UInt32(steps[steps.count - 3]) == ATR_PW_AFFINE.rawValue else {
      return steps + encode([step])
    }
    let (a1, b1) = (steps[steps.count - 2], steps[steps.count - 1])
    return steps.dropLast(3) + encode([atr_pointwise_step(op: ATR_PW_AFFINE, a: step.a * a1, b: step.a * b1 + step.b)])
  }

  /// "+relu+sigmoid" for the steps (empty for none), for profiles.
  static func describe(_ steps: [atr_pointwise_step]) -> String {
    steps.map { step -> String in
      switch step.op {
      case ATR_PW_RELU: "+relu"
      case ATR_PW_CLIP: "+clip"
      case ATR_PW_AFFINE: "+affine"
      case ATR_PW_HARDSWISH: "+hardswish"
      case ATR_PW_HARDSIGMOID: "+hardsigmoid"
      case ATR_PW_LEAKYRELU: "+leakyrelu"
      case ATR_PW_SIGMOID: "+sigmoid"
      case ATR_PW_SILU: "+silu"
      case ATR_PW_GELU: "+gelu"
      case ATR_PW_GELU_TANH: "+gelu-tanh"
      case ATR_PW_MISH: "+mish"
      case ATR_PW_TANH: "+tanh"
      case ATR_PW_EXP: "+exp"
      default: "+step"
      }
    }.joined()
  }

  /// The steps of a Conv's epilogue (none when it has none).
  static func epilogue(of c: OpContext) throws -> [atr_pointwise_step] {
    try decode(c.floats(epilogueAttribute) ?? [])
  }

  /// Applies the steps to every element, in place when `x` holds the only
  /// reference to its storage; else into new storage, each thread copying
  /// its own part a chunk at a time as it goes.
  static func apply(_ steps: [atr_pointwise_step], to value: consuming NDArray, threads: Int) -> NDArray {
    var x = consume value
    // Integer inputs (Relu or Abs on int32, say) compute as floats; the
    // executor casts the result back to their type.
    if !x.isFloat { x = x.cast(to: .float32) }
    let (shape, channelsLast) = (x.shape, x.channelsLast)
    let input = x.releaseStorage()!
    let output = Elementwise.writeInPlaceOrNew(input, shape: input.shape) { src, dst in
      let chunks = Parallel.ranges(src.count, parts: src.count >= Elementwise.parallelThreshold ? threads : 1)
      steps.withUnsafeBufferPointer { steps in
        Parallel.run(chunks.count) { part in
          let r = chunks[part]
          Elementwise.applySteps(steps, UnsafeBufferPointer(rebasing: src[r]), UnsafeMutableBufferPointer(rebasing: dst[r]))
        }
      }
    }
    return channelsLast ? NDArray(channelsLast: output) : NDArray(shape: shape, floats: output)
  }
}
