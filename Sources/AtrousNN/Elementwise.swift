import AtrousCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import _CKernels

/// Activations, arithmetic with NumPy broadcasting, Clip and Softmax.
enum Elementwise {
  static func register(_ table: inout OperatorTable) {
    let plain: [(String, Unary)] = [
      ("Relu", .relu), ("Sigmoid", .sigmoid), ("Tanh", .tanh), ("Exp", .exp), ("Sqrt", .sqrt), ("Neg", .neg),
      ("Abs", .abs), ("Identity", .identity), ("Floor", .floor), ("Ceil", .ceil), ("Reciprocal", .reciprocal),
      ("Log", .log), ("Erf", .erf), ("HardSwish", .hardSwish), ("Acos", .acos), ("Acosh", .acosh), ("Asin", .asin),
      ("Asinh", .asinh), ("Atan", .atan), ("Atanh", .atanh), ("Cos", .cos), ("Cosh", .cosh), ("Sin", .sin),
      ("Sinh", .sinh), ("Tan", .tan), ("Round", .round), ("Sign", .sign), ("Softplus", .softplus),
      ("Softsign", .softsign), ("Mish", .mish),
    ]
    for (name, unary) in plain {
      table[name] = { c in [try map(c.takeInput(0), unary, c)] }
    }
    let parameterized: [(String, @Sendable (OpContext) throws -> Unary)] = [
      ("LeakyRelu", { c in .leakyRelu(try c.float("alpha", default: 0.01)) }),
      ("Elu", { c in .elu(try c.float("alpha", default: 1)) }),
      ("Celu", { c in .celu(try c.float("alpha", default: 1)) }),
      ("Selu", { c in .selu(try c.float("alpha", default: 1.67326319217681884765625),
                            try c.float("gamma", default: 1.05070102214813232421875)) }),
      ("ThresholdedRelu", { c in .thresholdedRelu(try c.float("alpha", default: 1)) }),
      ("Shrink", { c in .shrink(try c.float("bias", default: 0), try c.float("lambd", default: 0.5)) }),
      ("HardSigmoid", { c in .hardSigmoid(try c.float("alpha", default: 0.2), try c.float("beta", default: 0.5)) }),
      ("Swish", { c in .swish(try c.float("alpha", default: 1)) }),
      ("Gelu", { c in
        switch try c.string("approximate", default: "none") {
        case "none": return .gelu
        case "tanh": return .geluTanh
        case let other: throw c.unsupported("approximate", other)
        }
      }),
    ]
    for (name, unary) in parameterized {
      table[name] = { c in [try map(c.takeInput(0), unary(c), c)] }
    }
    table.add("IsNaN", outputs: [.fixed(.bool)]) { c in
      let x = try c.input(0)
      return [NDArray(shape: x.shape, bools: x.dtype.isFloatingPoint ? x.floatValues().map(\.isNaN) : [Bool](repeating: false, count: x.count))]
    }
    table.add("IsInf", outputs: [.fixed(.bool)]) { c in
      let x = try c.input(0)
      let positive = try c.int("detect_positive", default: 1) == 1, negative = try c.int("detect_negative", default: 1) == 1
      let values = x.dtype.isFloatingPoint ? x.floatValues() : []
      return [NDArray(shape: x.shape, bools: values.map { $0.isInfinite && ($0 > 0 ? positive : negative) }
                        + [Bool](repeating: false, count: x.count - values.count))]
    }
    table.add("Not", outputs: [.fixed(.bool)]) { c in
      let x = try c.input(0)
      return [NDArray(shape: x.shape, bools: x.int64Values().map { $0 == 0 })]
    }
    table.add("Dropout", outputs: [.input(0), .fixed(.bool)]) { c in
      // Inference only: the input passes through and the mask is all true.
      if try c.int("is_test", default: 1) == 0 && c.opset < 7 { throw c.unsupported("is_test", 0) }
      if let training = c.optionalInput(2), training.int64Values().first ?? 0 != 0 {
        throw NNError.trainingMode(node: c.node.name, op: c.op)
      }
      let x = try c.input(0)
      return [x, NDArray(shape: x.shape, bools: [Bool](repeating: true, count: x.count))]
    }
    table["Clip"] = { c in try clip(&c) }
    let arithmetic: [(String, Binary)] = [("Add", .add), ("Sub", .sub), ("Mul", .mul), ("Div", .div), ("Pow", .pow),
                                          ("Max", .max), ("Min", .min), ("Sum", .add), ("Mean", .add)]
    for (name, op) in arithmetic {
      table[name] = { c in
        guard c.inputs.first != nil else { throw NNError.missingInput(node: c.node.name, op: c.op, input: "#0") }
        // Steps the optimizer fused after an Add of two values.
        let steps = name == "Add" ? try Pointwise.epilogue(of: c) : []
        if !steps.isEmpty { c.path = name + Pointwise.describe(steps) }
        if op == .add || op == .mul, c.inputs.count == 2, let a = c.inputs[0], let b = c.inputs[1], b.count > a.count {
          // The larger operand first, so the result can take its storage
          // (a squeeze-excitation gate times the map, a bias plus a map).
          return [try broadcast(c.takeInput(1), a, op, c, steps: steps)]
        }
        var result = try c.takeInput(0)
        let operands = c.inputs.dropFirst().compactMap { $0 }
        for other in operands { result = try broadcast(consume result, other, op, c, steps: steps) }
        if name == "Mean" && !operands.isEmpty && !c.shapesOnly {
          result = map(result, .scale(1 / Float(operands.count + 1)), threads: c.threads)
        }
        return [result]
      }
    }
    table["Mod"] = { c in
      let fmod = try c.int("fmod", default: 0) == 1
      let a = try c.input(0), b = try c.input(1)
      return [try broadcast(a, b, fmod ? .fmod : .mod, c)]
    }
    let comparisons: [(String, Comparison)] = [
      ("Equal", .equal), ("Greater", .greater), ("GreaterOrEqual", .greaterOrEqual), ("Less", .less),
      ("LessOrEqual", .lessOrEqual), ("And", .and), ("Or", .or), ("Xor", .xor),
    ]
    for (name, test) in comparisons {
      table.add(name, outputs: [.fixed(.bool)]) { c in [try compare(c.input(0), c.input(1), test, c)] }
    }
    table["PRelu"] = { c in
      let x = try c.input(0)
      var slope = try c.input(1)
      // Before opset 7 a 1-D slope is per channel (axis 1), not NumPy-broadcast.
      if c.opset < 7, slope.rank == 1, x.rank > 2, slope.count == x.shape[1] {
        slope = slope.reshaped([slope.count] + [Int](repeating: 1, count: x.rank - 2))
      }
      return [try broadcast(x, slope, .prelu, c)]
    }
    table["Softmax"] = { c in [try softmax(&c, .softmax)] }
    table["LogSoftmax"] = { c in [try softmax(&c, .logSoftmax)] }
    table["Hardmax"] = { c in [try softmax(&c, .hardmax)] }

    let unary = plain.map(\.0) + parameterized.map(\.0) + ["Clip", "Dropout"]
    let broadcasting = arithmetic.map(\.0) + ["Mod", "PRelu"]
    table.describe(unary, keepsShape: true)
    table.describe(broadcasting, tracesShapes: true)
    table.describe(unary + broadcasting + comparisons.map(\.0) + ["IsNaN", "IsInf", "Not"], spatiallyLocal: true)
    // Along an axis: the whole image when that axis is spatial.
    table.describe(["Softmax", "LogSoftmax", "Hardmax"], floatData: true, keepsShape: true)
  }

  enum Unary {
    case relu, sigmoid, tanh, exp, sqrt, neg, abs, identity, floor, ceil, reciprocal, log, erf, hardSwish
    case acos, acosh, asin, asinh, atan, atanh, cos, cosh, sin, sinh, tan, round, sign, softplus, softsign, mish
    case gelu, geluTanh
    case leakyRelu(Float), elu(Float), hardSigmoid(Float, Float), clip(Float, Float), scale(Float)
    case celu(Float), selu(Float, Float), thresholdedRelu(Float), shrink(Float, Float), swish(Float)

    /// The op on an integer, for the ops ONNX defines on integer types.
    func integer(_ x: Int64) -> Int64? {
      switch self {
      case .relu: Swift.max(x, 0)
      case .neg: 0 &- x
      case .abs: x < 0 ? 0 &- x : x
      case .sign: x > 0 ? 1 : x < 0 ? -1 : 0
      case .identity, .floor, .ceil, .round: x
      case .clip(let low, let high): Swift.min(Swift.max(Float(x), low), high).isNaN ? x
        : Int64(Swift.min(Swift.max(Double(x), Double(low)), Double(high)))
      case .shrink(let bias, let lambd):
        Float(x) < -lambd ? x + Int64(bias) : Float(x) > lambd ? x - Int64(bias) : 0
      default: nil
      }
    }
  }

  /// `map` for an op: integer inputs through `Unary.integer`, or refused
  /// when the op is defined on floats only.
  static func map(_ value: consuming NDArray, _ op: Unary, _ c: OpContext) throws -> NDArray {
    if value.isFloat { return map(value, op, threads: c.threads) }
    if case .identity = op { return value }
    let x = consume value
    guard op.integer(0) != nil else {
      throw NNError.unsupportedType(node: c.node.name, op: c.op, input: c.node.inputs.first ?? "", type: "\(x.dtype)")
    }
    return NDArray(shape: x.shape, int64s: x.int64Values().map { op.integer($0)! }, dtype: x.dtype)
  }

  /// Elements below which an element-wise op stays on one thread: waking
  /// a second costs more than it saves. Pools and reductions over maps
  /// take the same bound on what they read. Low, because on one thread
  /// such an op reads half of a map the convolution before wrote on two
  /// threads from the other core's cache: a squeeze-and-excitation Mul of
  /// 7x7x1152 took 0.011 ms at 1 thread and 0.029 at 2 on one. From 64K
  /// to 16K elements, then 8K, 2 threads: MobileNetV3-small 0.936 then
  /// 0.908 of the time, RegNet-Y 0.967, EfficientNet-B0 0.977 (4K: no
  /// further change).
  static let parallelThreshold = 1 << 13

  /// Floats below which Concat, the channel shuffle and strided gathers
  /// copy on one thread. Higher than `parallelThreshold`: a copy does less
  /// per float, and ShuffleNetV2, all shuffles and splits, took 3% longer
  /// at 2 threads with the lower bound. Lowered from 256K, where a 0.8 MB
  /// Concat of DenseNet-121 ran on one thread and took 0.043 ms at 1
  /// thread and 0.093 at 2 (the network 0.945 of the time).
  static let parallelCopyThreshold = 1 << 16

  /// Applies `op` to every element, keeping the layout.
  static func map(_ value: consuming NDArray, _ op: Unary, threads: Int = 1) -> NDArray {
    // Integers compute as floats here; the executor casts back to their type.
    guard value.isFloat else { return map(value.cast(to: .float32), op, threads: threads) }
    if case .identity = op { return value }
    var x = consume value
    let (shape, channelsLast) = (x.shape, x.channelsLast)
    let input = x.releaseStorage()!
    // In place when the input is ours alone (its last reader was this op).
    let output = writeInPlaceOrNew(input, shape: input.shape) { src, dst in
      let chunks = Parallel.ranges(src.count, parts: src.count >= parallelThreshold ? threads : 1)
      Parallel.run(chunks.count) { part in
        let r = chunks[part]
        apply(op, UnsafeBufferPointer(rebasing: src[r]), UnsafeMutableBufferPointer(rebasing: dst[r]))
      }
    }
    return channelsLast ? NDArray(channelsLast: output) : NDArray(shape: shape, floats: output)
  }

  /// dst[i] = op(src[i]); the two may be one buffer.
  private static func apply(_ op: Unary, _ src: UnsafeBufferPointer<Float>, _ dst: UnsafeMutableBufferPointer<Float>) {
    let n = src.count
    switch op {
    case .relu: for i in 0..<n { dst[i] = Swift.max(src[i], 0) }
    case .sqrt: for i in 0..<n { dst[i] = src[i].squareRoot() }
    case .neg: for i in 0..<n { dst[i] = -src[i] }
    case .abs: for i in 0..<n { dst[i] = Swift.abs(src[i]) }
    case .floor: for i in 0..<n { dst[i] = src[i].rounded(.down) }
    case .ceil: for i in 0..<n { dst[i] = src[i].rounded(.up) }
    case .reciprocal: for i in 0..<n { dst[i] = 1 / src[i] }
    case .log: for i in 0..<n { dst[i] = Glibc.log(src[i]) }
    case .erf: for i in 0..<n { dst[i] = Glibc.erf(src[i]) }
    // The hard curves, Clip, tanh and exp run as the steps a fusion makes
    // of them, so that a fused and an unfused op agree bit for bit.
    case .tanh: applyStep(atr_pointwise_step(op: ATR_PW_TANH, a: 0, b: 0), src, dst)
    case .sigmoid: applyStep(atr_pointwise_step(op: ATR_PW_SIGMOID, a: 0, b: 0), src, dst)
    case .exp: applyStep(atr_pointwise_step(op: ATR_PW_EXP, a: 0, b: 0), src, dst)
    case .hardSwish: applyStep(atr_pointwise_step(op: ATR_PW_HARDSWISH, a: 0, b: 0), src, dst)
    case .leakyRelu(let alpha): for i in 0..<n { dst[i] = src[i] < 0 ? alpha * src[i] : src[i] }
    case .elu(let alpha): for i in 0..<n { dst[i] = src[i] < 0 ? alpha * (Glibc.exp(src[i]) - 1) : src[i] }
    case .hardSigmoid(let alpha, let beta): applyStep(atr_pointwise_step(op: ATR_PW_HARDSIGMOID, a: alpha, b: beta), src, dst)
    case .clip(let low, let high): applyStep(atr_pointwise_step(op: ATR_PW_CLIP, a: low, b: high), src, dst)
    case .scale(let k): for i in 0..<n { dst[i] = src[i] * k }
    case .acos: for i in 0..<n { dst[i] = Glibc.acos(src[i]) }
    case .acosh: for i in 0..<n { dst[i] = Glibc.acosh(src[i]) }
    case .asin: for i in 0..<n { dst[i] = Glibc.asin(src[i]) }
    case .asinh: for i in 0..<n { dst[i] = Glibc.asinh(src[i]) }
    case .atan: for i in 0..<n { dst[i] = Glibc.atan(src[i]) }
    case .atanh: for i in 0..<n { dst[i] = Glibc.atanh(src[i]) }
    case .cos: for i in 0..<n { dst[i] = Glibc.cos(src[i]) }
    case .cosh: for i in 0..<n { dst[i] = Glibc.cosh(src[i]) }
    case .sin: for i in 0..<n { dst[i] = Glibc.sin(src[i]) }
    case .sinh: for i in 0..<n { dst[i] = Glibc.sinh(src[i]) }
    case .tan: for i in 0..<n { dst[i] = Glibc.tan(src[i]) }
    case .round: for i in 0..<n { dst[i] = src[i].rounded(.toNearestOrEven) }
    case .sign: for i in 0..<n { dst[i] = src[i] > 0 ? 1 : src[i] < 0 ? -1 : src[i] }
    case .softplus: for i in 0..<n { dst[i] = softplus(src[i]) }
    case .softsign: for i in 0..<n { dst[i] = src[i] / (1 + Swift.abs(src[i])) }
    case .mish: for i in 0..<n { dst[i] = src[i] * Glibc.tanh(softplus(src[i])) }
    case .gelu: for i in 0..<n { dst[i] = 0.5 * src[i] * (1 + Glibc.erf(src[i] * 0.70710678118654752)) }
    case .geluTanh:
      for i in 0..<n {
        let x = src[i]
        dst[i] = 0.5 * x * (1 + Glibc.tanh(0.79788456080286536 * (x + 0.044715 * x * x * x)))
      }
    case .celu(let alpha): for i in 0..<n { dst[i] = Swift.max(0, src[i]) + Swift.min(0, alpha * (Glibc.exp(src[i] / alpha) - 1)) }
    case .selu(let alpha, let gamma):
      for i in 0..<n { dst[i] = src[i] > 0 ? gamma * src[i] : gamma * (alpha * Glibc.exp(src[i]) - alpha) }
    case .thresholdedRelu(let alpha): for i in 0..<n { dst[i] = src[i] > alpha ? src[i] : 0 }
    case .shrink(let bias, let lambd):
      for i in 0..<n { dst[i] = src[i] < -lambd ? src[i] + bias : src[i] > lambd ? src[i] - bias : 0 }
    case .swish(let alpha): for i in 0..<n { dst[i] = src[i] / (1 + Glibc.exp(-alpha * src[i])) }
    case .identity: break  // `map` hands its input back before getting here
    }
  }

  /// dst[i] = step(src[i]) by `atr_pointwise`; the two may be one buffer.
  private static func applyStep(_ step: atr_pointwise_step, _ src: UnsafeBufferPointer<Float>,
                                _ dst: UnsafeMutableBufferPointer<Float>) {
    withUnsafePointer(to: step) { applySteps(UnsafeBufferPointer(start: $0, count: 1), src, dst) }
  }

  /// dst[i] = the steps in turn on src[i], by `atr_pointwise`, which runs
  /// in place; the two may be one buffer. Into another buffer, each chunk
  /// of `stepChunk` is copied and stepped while in L1, not the whole input
  /// copied first.
  static func applySteps(_ steps: UnsafeBufferPointer<atr_pointwise_step>, _ src: UnsafeBufferPointer<Float>,
                         _ dst: UnsafeMutableBufferPointer<Float>) {
    guard let out = dst.baseAddress, let input = src.baseAddress else { return }
    let copying = UnsafePointer(out) != input
    for start in stride(from: 0, to: src.count, by: copying ? stepChunk : src.count) {
      let count = Swift.min(copying ? stepChunk : src.count, src.count - start)
      if copying { (out + start).update(from: input + start, count: count) }
      if let first = steps.baseAddress, steps.count > 0 { atr_pointwise(out + start, 1, count, count, first, steps.count) }
    }
  }

  /// Floats per chunk of `applySteps` into another buffer: 16 KiB.
  static let stepChunk = 4096

  /// log(1 + e^x) without overflow for large x.
  @inline(__always)
  static func softplus(_ x: Float) -> Float {
    x > 20 ? x : Glibc.log1p(Glibc.exp(x))
  }

  /// Runs `body(source, target)` in the input's own storage when nobody
  /// else holds it and it has `shape` (elements are read before they are
  /// written, so source and target may be one buffer); otherwise into new
  /// storage of `shape`.
  static func writeInPlaceOrNew(_ input: consuming Tensor, shape: [Int],
                                _ body: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) -> Void) -> Tensor {
    var tensor = consume input
    if tensor.shape == shape && tensor.isUniquelyReferenced {
      tensor.withUnsafeMutableBufferPointer { buffer in body(UnsafeBufferPointer(buffer), buffer) }
      return tensor
    }
    var output = Tensor.uninitialized(shape: shape)
    tensor.withUnsafeBufferPointer { source in output.withUnsafeMutableBufferPointer { body(source, $0) } }
    return output
  }

  /// Clip: bounds from attributes before opset 11, from inputs after.
  static func clip(_ c: inout OpContext) throws -> [NDArray] {
    var low = -Float.infinity, high = Float.infinity
    if c.opset < 11 {
      low = try c.float("min", default: low)
      high = try c.float("max", default: high)
    } else {
      if let v = c.optionalInput(1) { low = v.floatValues().first ?? low }
      if let v = c.optionalInput(2) { high = v.floatValues().first ?? high }
    }
    return [map(try c.takeInput(0), .clip(low, high), threads: c.threads)]
  }

  enum Binary {
    case add, sub, mul, div, pow, max, min, prelu, mod, fmod

    /// The vectorized kernel for this operator, if there is one.
    var code: atr_binary_op? {
      switch self {
      case .add: ATR_ADD
      case .sub: ATR_SUB
      case .mul: ATR_MUL
      case .div: ATR_DIV
      case .max: ATR_MAX
      case .min: ATR_MIN
      case .prelu: ATR_PRELU
      case .pow, .mod, .fmod: nil
      }
    }

    @inline(__always) func apply(_ a: Float, _ b: Float) -> Float {
      switch self {
      case .add: a + b
      case .sub: a - b
      case .mul: a * b
      case .div: a / b
      case .pow: Glibc.pow(a, b)
      case .max: Swift.max(a, b)
      case .min: Swift.min(a, b)
      case .prelu: a < 0 ? a * b : a
      case .fmod: Glibc.fmod(a, b)
      case .mod:
        // The sign of the divisor, as Python's % and NumPy's mod.
        Self.floorMod(a, b)
      }
    }

    /// a mod b with the sign of b (zero too), NaN for b = 0 or a infinite.
    static func floorMod(_ a: Float, _ b: Float) -> Float {
      let r = Glibc.fmod(a, b)
      if r.isNaN { return r }
      if r == 0 { return Float(signOf: b, magnitudeOf: 0) }
      return (r < 0) != (b < 0) ? r + b : r
    }

    func apply(_ a: Int64, _ b: Int64) -> Int64 {
      switch self {
      case .add: a &+ b
      case .sub: a &- b
      case .mul: a &* b
      case .div: b == 0 || (a == .min && b == -1) ? 0 : a / b
      case .pow: DType.int64.integer(Float(Glibc.pow(Double(a), Double(b))))
      case .max: Swift.max(a, b)
      case .min: Swift.min(a, b)
      case .prelu: a < 0 ? a &* b : a
      case .fmod: b == 0 || (a == .min && b == -1) ? 0 : a % b
      case .mod:
        if b == 0 || (a == .min && b == -1) { 0 } else {
          a % b != 0 && ((a % b < 0) != (b < 0)) ? a % b + b : a % b
        }
      }
    }
  }

  /// Element-wise tests with a boolean result.
  enum Comparison {
    case equal, greater, greaterOrEqual, less, lessOrEqual, and, or, xor

    func test<T: Comparable>(_ a: T, _ b: T, zero: T) -> Bool {
      switch self {
      case .equal: a == b
      case .greater: a > b
      case .greaterOrEqual: a >= b
      case .less: a < b
      case .lessOrEqual: a <= b
      case .and: a != zero && b != zero
      case .or: a != zero || b != zero
      case .xor: (a != zero) != (b != zero)
      }
    }
  }

  /// A comparison of two broadcast arrays: integers compared as integers
  /// (unsigned 64-bit ones by their value), anything else as floats.
  static func compare(_ a: NDArray, _ b: NDArray, _ test: Comparison, _ c: OpContext) throws -> NDArray {
    let shape = try broadcastShape(a.shape, b.shape, c)
    if !a.isFloat && !b.isFloat {
      let (sa, sb) = (strides(a.shape, to: shape), strides(b.shape, to: shape))
      var out = [Bool](repeating: false, count: shape.reduce(1, *))
      let (x, y) = (a.int64Values(), b.int64Values())
      if a.dtype == .uint64 || b.dtype == .uint64 {
        forEachIndex(shape, offsets: (sa, sb)) { i, ia, ib in
          out[i] = test.test(UInt64(bitPattern: x[ia]), UInt64(bitPattern: y[ib]), zero: 0)
        }
      } else {
        forEachIndex(shape, offsets: (sa, sb)) { i, ia, ib in out[i] = test.test(x[ia], y[ib], zero: 0) }
      }
      return NDArray(shape: shape, bools: out)
    }
    // Floats a run at a time, the test chosen once (`BroadcastRuns`), into
    // the 0 and 1 a boolean array holds.
    let runs = BroadcastRuns([a.shape, b.shape], to: shape)
    let (x, y) = (a.floatTensor(), b.floatTensor())
    let (run, sa, sb) = (runs.run, runs.runStrides[0], runs.runStrides[1])
    let flags = [Int64](unsafeUninitializedCapacity: shape.reduce(1, *)) { po, count in
      x.withUnsafeBufferPointer { px in y.withUnsafeBufferPointer { py in
        @inline(__always) func each(_ test: (Float, Float) -> Bool) {
          runs.forEachRun { o, offsets in
            let (pa, pb) = (px.baseAddress! + offsets[0], py.baseAddress! + offsets[1])
            for i in 0..<run { po[o + i] = test(pa[i &* sa], pb[i &* sb]) ? 1 : 0 }
          }
        }
        switch test {
        case .equal: each { $0 == $1 }
        case .greater: each { $0 > $1 }
        case .greaterOrEqual: each { $0 >= $1 }
        case .less: each { $0 < $1 }
        case .lessOrEqual: each { $0 <= $1 }
        case .and: each { $0 != 0 && $1 != 0 }
        case .or: each { $0 != 0 || $1 != 0 }
        case .xor: each { ($0 != 0) != ($1 != 0) }
        }
      } }
      count = po.count
    }
    return NDArray(shape: shape, int64s: flags, dtype: .bool)
  }


  /// NumPy-style broadcast of two arrays. When either is stored
  /// channels-last, both are brought to rank 4 channels-last first.
  /// `steps` (fused by the optimizer) follow on each chunk of the result.
  static func broadcast(_ a: consuming NDArray, _ b: NDArray, _ op: Binary, _ c: OpContext,
                        steps: [atr_pointwise_step] = []) throws -> NDArray {
    if !steps.isEmpty && !(a.isFloat && b.isFloat) {
      // Integers (index arithmetic) in their own type, the steps after.
      let dtype = a.dtype
      return Pointwise.apply(steps, to: try broadcast(a, b, op, c), threads: c.threads).cast(to: dtype)
    }
    if case .int64(let x) = a.elements, case .int64(let y) = b.elements {
      let shape = try broadcastShape(a.shape, b.shape, c)
      var out = [Int64](repeating: 0, count: shape.reduce(1, *))
      let (sa, sb) = (strides(a.shape, to: shape), strides(b.shape, to: shape))
      if a.dtype == .uint64, [.div, .max, .min, .mod, .fmod].contains(op) {
        // Unsigned 64-bit values past Int64.max: divide and compare unsigned.
        forEachIndex(shape, offsets: (sa, sb)) { i, ia, ib in
          let (p, q) = (UInt64(bitPattern: x[ia]), UInt64(bitPattern: y[ib]))
          let r: UInt64
          switch op {
          case .div: r = q == 0 ? 0 : p / q
          case .max: r = Swift.max(p, q)
          case .min: r = Swift.min(p, q)
          default: r = q == 0 ? 0 : p % q
          }
          out[i] = Int64(bitPattern: r)
        }
      } else {
        forEachIndex(shape, offsets: (sa, sb)) { i, ia, ib in out[i] = op.apply(x[ia], y[ib]) }
      }
      return NDArray(shape: shape, int64s: out, dtype: a.dtype)
    }
    if c.shapesOnly {
      // A shape-only run: the broadcast shape, nothing computed.
      let shape = try broadcastShape(a.shape, b.shape, c)
      return NDArray(shape: shape, floats: Tensor.uninitialized(shape: shape), dtype: a.isFloat ? a.dtype : .float32)
    }
    // Integer operands of a float op (Pow's exponent, say) compute as floats.
    let a = a.isFloat ? a : a.cast(to: .float32), b = b.isFloat ? b : b.cast(to: .float32)
    let channelsLast = (a.channelsLast || b.channelsLast) && a.rank <= 4 && b.rank <= 4
    func physical(_ v: NDArray) -> Tensor {
      if channelsLast {
        let four = v.rank == 4 ? v : v.reshaped([Int](repeating: 1, count: 4 - v.rank) + v.shape)
        return four.toChannelsLast().storage!
      }
      let plain = v.standard()
      if let tensor = plain.storage { return tensor }
      return Tensor(shape: plain.shape, values: plain.floatValues())
    }
    var owned = consume a
    // The first operand's own storage when its layout is already the one
    // used here: then, held by nobody else, it can take the result.
    let x = owned.isFloat && owned.channelsLast == channelsLast ? owned.releaseStorage()! : physical(owned)
    let y = physical(b)
    let shape = try broadcastShape(x.shape, y.shape, c)
    let (xShape, xCount) = (x.shape, x.count)
    // The first operand's storage takes the result when it is ours alone
    // and already has the output's shape.
    let output = writeInPlaceOrNew(x, shape: shape) { px, po in
      y.withUnsafeBufferPointer { py in
          let last = shape.last ?? 1
          func fits(_ t: Tensor) -> Bool {
            t.shape == shape || t.count == 1 || (t.count == last && t.shape.last == last)
          }
          func fitsShape(_ s: [Int], _ count: Int) -> Bool {
            s == shape || count == 1 || (count == last && s.last == last)
          }
          if let code = op.code, fitsShape(xShape, xCount), fits(y), xShape == shape || y.shape == shape, po.count > 0 {
            // The whole array, a scalar, or a vector along the last axis
            // (per channel in channels-last storage): vectorized loops.
            // Threads take whole periods, so each sees the same pattern.
            let total = po.count, yCount = y.count
            let chunks = Parallel.ranges(total / last, parts: total >= parallelThreshold ? c.threads : 1)
            Parallel.run(chunks.count) { part in
              let start = chunks[part].lowerBound * last, count = chunks[part].count * last
              let (a, aCount) = xCount == total ? (px.baseAddress! + start, count) : (px.baseAddress!, xCount)
              let (b, bCount) = yCount == total ? (py.baseAddress! + start, count) : (py.baseAddress!, yCount)
              atr_binary(code, po.baseAddress! + start, a, aCount, b, bCount, count, last)
              atr_pointwise(po.baseAddress! + start, 1, count, count, steps, steps.count)
            }
          } else {
            let runs = BroadcastRuns([xShape, y.shape], to: shape)
            let (run, inner) = (runs.run, runs.runStrides)
            if let code = op.code, inner.allSatisfy({ $0 <= 1 }) {
              // Each run whole or one value repeated: the vectorized loop per run.
              let (aCount, bCount) = (inner[0] == 1 ? run : 1, inner[1] == 1 ? run : 1)
              runs.forEachRun { output, offsets in
                atr_binary(code, po.baseAddress! + output, px.baseAddress! + offsets[0], aCount, py.baseAddress! + offsets[1],
                           bCount, run, run)
              }
            } else {
              let (sa, sb) = (strides(xShape, to: shape), strides(y.shape, to: shape))
              forEachIndex(shape, offsets: (sa, sb)) { i, ia, ib in po[i] = op.apply(px[ia], py[ib]) }
            }
            atr_pointwise(po.baseAddress!, 1, po.count, po.count, steps, steps.count)
          }
      }
    }
    return channelsLast ? NDArray(channelsLast: output) : NDArray(shape: shape, floats: output)
  }

  static func broadcastShape(_ a: [Int], _ b: [Int], _ c: OpContext) throws -> [Int] {
    let rank = max(a.count, b.count)
    let pa = [Int](repeating: 1, count: rank - a.count) + a, pb = [Int](repeating: 1, count: rank - b.count) + b
    return try zip(pa, pb).map { x, y in
      guard x == y || x == 1 || y == 1 else { throw c.mismatch("cannot broadcast \(a) with \(b)") }
      return x == 1 ? y : x
    }
  }

  /// Element strides of `shape` read as the broadcast `target` (0 on broadcast axes).
  static func strides(_ shape: [Int], to target: [Int]) -> [Int] {
    let padded = [Int](repeating: 1, count: target.count - shape.count) + shape
    var result = [Int](repeating: 0, count: target.count)
    var step = 1
    for k in stride(from: target.count - 1, through: 0, by: -1) {
      result[k] = padded[k] == 1 ? 0 : step
      step *= padded[k]
    }
    return result
  }

  /// Calls `body(outputIndex, offsetA, offsetB)` for every element of `shape`.
  @inline(__always)
  static func forEachIndex(_ shape: [Int], offsets: ([Int], [Int]), _ body: (Int, Int, Int) -> Void) {
    let total = shape.reduce(1, *)
    guard total > 0 else { return }
    let rank = shape.count
    if rank == 0 {
      body(0, 0, 0)
      return
    }
    var index = [Int](repeating: 0, count: rank)
    let (sa, sb) = offsets
    let inner = shape[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1]
    var o = 0
    while o < total {
      var a = 0, b = 0
      for k in 0..<(rank - 1) {
        a += index[k] * sa[k]
        b += index[k] * sb[k]
      }
      for i in 0..<inner { body(o + i, a + i * ia, b + i * ib) }
      o += inner
      advance(&index, within: shape, axes: rank - 1)
    }
  }

  /// Columns per block of `softmaxAcross`: a block's `length` rows of them
  /// (64 rows: 64 KiB) stay in L2 through its passes.
  static let softmaxColumns = 256

  /// Softmax (or log-softmax) of `input` read as (outer, length, inner)
  /// over its middle axis, `inner` > 1 (the channels of an NCHW map): per
  /// block of adjacent columns, the largest of each column, the
  /// differences, their exponentials as the EXP step makes them, each
  /// column's sum, then the quotients (or the differences less the sums'
  /// logarithms); a pass over the block's rows for each, vectorized along
  /// them. Blocks split across threads.
  static func softmaxAcross(_ input: Tensor, outer: Int, length: Int, inner: Int, log: Bool, threads: Int) -> Tensor {
    var output = Tensor.uninitialized(shape: input.shape)  // (outer, length, inner)
    let width = softmaxColumns
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        // Scratch: the block's largest values and sums.
        ColumnBlocks(outer: outer, inner: inner, width: width).forEach(elements: input.count, threads: threads,
                                                                       scratchFloats: 2 * width) { scratch, o, columns in
          let (first, cols) = (columns.lowerBound, columns.count)
          let base = o * length * inner + first
          let peak = scratch.assumingMemoryBound(to: Float.self), sum = peak + width  // (cols) each
          let x = src.baseAddress! + base, y = dst.baseAddress! + base  // rows `inner` apart
          peak.update(from: x, count: cols)
          for k in 1..<length { atr_max_into(peak, x + k * inner, cols) }
          for k in 0..<length {
            let (row, out) = (x + k * inner, y + k * inner)
            for i in 0..<cols { out[i] = row[i] - peak[i] }
          }
          var step = atr_pointwise_step(op: ATR_PW_EXP, a: 0, b: 0)
          atr_pointwise(y, length, cols, inner, &step, 1)
          sum.update(from: y, count: cols)
          for k in 1..<length { atr_add_into(sum, y + k * inner, cols) }
          if log {
            for i in 0..<cols { sum[i] = peak[i] + Glibc.log(sum[i]) }
            for k in 0..<length {
              let (row, out) = (x + k * inner, y + k * inner)
              for i in 0..<cols { out[i] = row[i] - sum[i] }
            }
          } else {
            for i in 0..<cols { sum[i] = 1 / sum[i] }
            for k in 0..<length {
              let out = y + k * inner
              for i in 0..<cols { out[i] *= sum[i] }
            }
          }
        }
      }
    }
    return output
  }

  /// Softmax over one axis (opset 13+) or over all axes from `axis` on,
  /// flattened (before 13).
  enum SoftmaxKind { case softmax, logSoftmax, hardmax }

  static func softmax(_ c: inout OpContext, _ kind: SoftmaxKind) throws -> NDArray {
    var x = try c.takeInput(0).standard()
    let axis = try c.axis(c.int("axis", default: c.opset >= 13 ? -1 : 1), rank: x.rank)
    let outer = x.shape[..<axis].reduce(1, *)
    let (length, inner): (Int, Int) = c.opset >= 13
      ? (x.shape[axis], x.shape[(axis + 1)...].reduce(1, *))
      : (x.shape[axis...].reduce(1, *), 1)
    if inner == 1 && kind != .hardmax && length > 0 && x.isFloat {
      // Contiguous rows: vectorized, in the input's storage when nothing
      // else holds it, rows split across threads when large.
      let shape = x.shape
      let parts = Parallel.ranges(outer, parts: x.count >= parallelThreshold ? c.threads : 1)
      let output = writeInPlaceOrNew(x.releaseStorage()!, shape: shape) { input, output in
        let copying = input.baseAddress != UnsafePointer(output.baseAddress)
        // Into storage of their own, rows are copied a block at a time
        // (about 32 KiB), each block then taken while in L1.
        let rowsPerBlock = copying ? max(1, 8192 / length) : outer
        Parallel.run(parts.count) { part in
          for row in stride(from: parts[part].lowerBound, to: parts[part].upperBound, by: rowsPerBlock) {
            let rows = min(rowsPerBlock, parts[part].upperBound - row), first = row * length
            if copying { (output.baseAddress! + first).update(from: input.baseAddress! + first, count: rows * length) }
            atr_softmax_rows(output.baseAddress! + first, rows, length, kind == .logSoftmax ? 1 : 0)
          }
        }
      }
      return NDArray(shape: shape, floats: output)
    }
    if kind != .hardmax && length > 0 && x.isFloat {
      return NDArray(shape: x.shape, floats: softmaxAcross(x.releaseStorage()!, outer: outer, length: length, inner: inner,
                                                           log: kind == .logSoftmax, threads: c.threads))
    }
    let values = x.floatValues()
    var out = values
    for o in 0..<outer {
      for i in 0..<inner {
        let base = o * length * inner + i
        var peak = -Float.infinity
        for k in 0..<length { peak = Swift.max(peak, values[base + k * inner]) }
        var sum: Float = 0
        for k in 0..<length { sum += Glibc.exp(values[base + k * inner] - peak) }
        var first = -1
        for k in 0..<length {
          let shifted = values[base + k * inner] - peak
          switch kind {
          case .softmax: out[base + k * inner] = Glibc.exp(shifted) / sum
          case .logSoftmax: out[base + k * inner] = shifted - Glibc.log(sum)
          case .hardmax:
            // One 1 at the first largest element.
            out[base + k * inner] = shifted == 0 && first < 0 ? 1 : 0
            if shifted == 0 && first < 0 { first = k }
          }
        }
      }
    }
    return NDArray(shape: x.shape, floats: out)
  }
}
