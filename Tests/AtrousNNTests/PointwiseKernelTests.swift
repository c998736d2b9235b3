import AtrousCore
import Foundation
import Testing
import _CKernels
@testable import AtrousNN

/// The element-wise steps built on exponentials and reciprocals
/// (`atr_pointwise`) against their formulas in double precision, on every
/// instruction set, from -120 to 120 (past where e^-x leaves float's
/// range) and at NaN.
@Suite struct PointwiseKernelTests {
  struct Case: CustomStringConvertible, Sendable {
    let name: String
    let op: atr_pointwise_op
    let formula: @Sendable (Double) -> Double
    var description: String { name }
  }

  static let cases: [Case] = [
    Case(name: "sigmoid", op: ATR_PW_SIGMOID) { 1 / (1 + exp(-$0)) },
    Case(name: "silu", op: ATR_PW_SILU) { $0 / (1 + exp(-$0)) },
    Case(name: "gelu", op: ATR_PW_GELU) { $0 / 2 * (1 + erf($0 / 2.0.squareRoot())) },
    Case(name: "gelu tanh", op: ATR_PW_GELU_TANH) { x in
      x / 2 * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
    },
    Case(name: "mish", op: ATR_PW_MISH) { $0 * tanh(log1p(exp($0))) },
    Case(name: "tanh", op: ATR_PW_TANH) { tanh($0) },
  ]

  /// Within a few float ulps of the value, or 1e-6 of |x| + 1 where the
  /// approximations' absolute error (erf's 4.2e-7) is the larger.
  @Test(arguments: cases, InstructionSet.available)
  func stepMatchesItsFormula(_ c: Case, isa: InstructionSet) {
    // Every 1/64 from -120 to 120, then NaNs, two with payload bits where
    // an exponent built from the input's bits would pick them up.
    let nans = [Float.nan, Float(bitPattern: 0x7FC0_01FF), Float(bitPattern: 0xFFC0_0081)]
    var x = (-7680...7680).map { Float($0) / 64 } + nans
    let input = x
    InstructionSet.with(isa) {
      var step = atr_pointwise_step(op: c.op, a: 0, b: 0)
      atr_pointwise(&x, 1, x.count, x.count, &step, 1)
    }
    var worst = (error: 0.0, at: Float(0))
    for (v, got) in zip(input, x) where !v.isNaN {
      let expected = c.formula(Double(v))
      let error = abs(Double(got) - expected) / (4 * 1.2e-7 * abs(expected) + 1e-6 * (abs(Double(v)) + 1) * 0.5)
      if !(error <= worst.error) { worst = (error.isNaN ? .infinity : error, v) }
    }
    #expect(worst.error <= 1, "\(c) \(isa): \(worst.error) of the bound at x = \(worst.at)")
    for (v, got) in zip(input, x).suffix(nans.count) {
      #expect(got.isNaN, "\(c) \(isa): NaN (\(String(v.bitPattern, radix: 16))) in, \(got) out")
    }
  }

  /// Tanh and Sigmoid as ops into storage of their own (their input held
  /// elsewhere too), a chunk at a time, against the step over the whole
  /// array in place: bit for bit, over several chunks and a partial one,
  /// the input left as it was.
  @Test func unaryOpsIntoNewStorageMatchTheStep() {
    let n = Elementwise.stepChunk * 2 + 37
    let values = (0..<n).map { Float($0 - n / 2) / 97 }
    let x = NDArray(shape: [n], floats: values)
    for (op, code) in [(Elementwise.Unary.tanh, ATR_PW_TANH), (.sigmoid, ATR_PW_SIGMOID)] {
      let y = Elementwise.map(x, op)
      var expected = values, step = atr_pointwise_step(op: code, a: 0, b: 0)
      atr_pointwise(&expected, 1, n, n, &step, 1)
      let differing = zip(y.floatValues(), expected).filter { $0.bitPattern != $1.bitPattern }.count
      #expect(differing == 0, "\(op): \(differing) of \(n) differ")
    }
    // A chain of fused steps, the parts split across two threads.
    var steps = [atr_pointwise_step(op: ATR_PW_TANH, a: 0, b: 0), atr_pointwise_step(op: ATR_PW_CLIP, a: -0.5, b: 0.25)]
    let y = Pointwise.apply(steps, to: x, threads: 2)
    var expected = values
    atr_pointwise(&expected, 1, n, n, &steps, steps.count)
    #expect(zip(y.floatValues(), expected).allSatisfy { $0.bitPattern == $1.bitPattern })
    #expect(x.floatValues() == values)
  }

  /// Exp on every instruction set against e^x in double rounded to float:
  /// within 4 ulps where that is a normal float, within one subnormal step
  /// below, infinity past 88.72 and 0 past -103.98, from -120 to 120 every
  /// 1/64, at the edges of the range and at the infinities and NaN.
  @Test(arguments: InstructionSet.available)
  func expCoversTheFloatRange(isa: InstructionSet) {
    let edges: [Float] = [88.72283, 88.72284, 88.7228394, -87.33654, -87.33655, -103.27893, -103.97208, -103.9721, 0, -0.0,
                          .infinity, -.infinity, .nan]
    var x = (-7680...7680).map { Float($0) / 64 } + edges
    let input = x
    InstructionSet.with(isa) {
      var step = atr_pointwise_step(op: ATR_PW_EXP, a: 0, b: 0)
      atr_pointwise(&x, 1, x.count, x.count, &step, 1)
    }
    for (v, got) in zip(input, x) {
      let expected = Float(exp(Double(v)))
      let close = v.isNaN ? got.isNaN
        : expected.isInfinite || expected == 0 ? got == expected || (expected == 0 && got <= Float.leastNonzeroMagnitude)
        : expected < Float.leastNormalMagnitude ? abs(got - expected) <= Float.leastNonzeroMagnitude
        : abs(got - expected) <= 4 * expected.ulp
      #expect(close, "\(isa): e^\(v) = \(got), not \(expected)")
    }
  }

  /// Clip (ReLU6's bounds), HardSigmoid and HardSwish as fused steps on
  /// every instruction set, and as the ops run unfused, against ONNX
  /// Runtime's formulas: Clip bit for bit, min(max(x, low), high) with
  /// C++'s std::max and std::min (a NaN stays NaN, -0 stays -0); the hard
  /// curves max(0, min(1, v)) with v = alpha x + beta (x / 6 + 1/2 for
  /// HardSwish, times x) within their rounding. Inputs: ±0, ±infinity, NaN, the
  /// bounds and values on either side, every 1/16 from -8 to 8.
  @Test(arguments: InstructionSet.available)
  func boundedStepsMatchTheirFormulas(isa: InstructionSet) throws {
    let edges: [Float] = [0, -0.0, .infinity, -.infinity, .nan, 6, Float(6).nextUp, Float(6).nextDown, -3, 3, 2.5, -2.5]
    let grid: [Float] = (-128...128).map { Float($0) / 16 }
    let input = edges + grid
    func bounded(_ v: Float) -> Float {
      let m = v < 1 ? v : 1  // std::min(v, 1) with v first: a NaN stays NaN
      return m > 0 ? m : 0
    }
    let (alpha, beta): (Float, Float) = (0.2, 0.5)
    let cases: [(String, atr_pointwise_step, Node, (Float) -> Float)] = [
      ("clip", atr_pointwise_step(op: ATR_PW_CLIP, a: 0, b: 6),
       Node(name: "op", opType: "Clip", inputs: ["x", "lo", "hi"], outputs: ["y"]), { x in
         let t = 0 > x ? 0 : x  // std::max(x, 0) is (x < 0) ? 0 : x
         return 6 < t ? 6 : t
       }),
      ("hardsigmoid", atr_pointwise_step(op: ATR_PW_HARDSIGMOID, a: alpha, b: beta),
       Node(name: "op", opType: "HardSigmoid", inputs: ["x"], outputs: ["y"],
            attributes: ["alpha": .float(alpha), "beta": .float(beta)]), { bounded(alpha * $0 + beta) }),
      ("hardswish", atr_pointwise_step(op: ATR_PW_HARDSWISH, a: 0, b: 0),
       Node(name: "op", opType: "HardSwish", inputs: ["x"], outputs: ["y"]), { $0 * bounded($0 * (1 / 6) + 0.5) }),
    ]
    // Clip is exact; alpha x + beta may be one fused multiply-add or two
    // roundings, by instruction set (in ONNX Runtime too): as far apart as
    // a rounding of the terms, about 2^-24 of |x| + 1 (of x times that for
    // HardSwish).
    func same(_ a: Float, _ b: Float, x: Float, exact: Bool) -> Bool {
      a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) || (!exact && abs(a - b) <= 2.4e-7 * (abs(x) + 1) * (abs(x) + 1))
    }
    for (name, step, node, formula) in cases {
      let exact = name == "clip"
      var fused = input, step = step
      InstructionSet.with(isa) { atr_pointwise(&fused, 1, fused.count, fused.count, &step, 1) }
      let bounds = ["lo": NDArray(shape: [], floats: [0]), "hi": NDArray(shape: [], floats: [6])]
      let unfused = try OpReferenceTests.run(node, inputs: ["x": NDArray(shape: [input.count], floats: input)],
                                             initializers: name == "clip" ? bounds : [:], optimize: false).floatValues()
      for (i, x) in input.enumerated() {
        #expect(same(fused[i], formula(x), x: x, exact: exact), "\(name) \(isa) fused: \(x) -> \(fused[i]), not \(formula(x))")
        #expect(same(unfused[i], formula(x), x: x, exact: exact), "\(name) unfused: \(x) -> \(unfused[i]), not \(formula(x))")
      }
    }
  }
}
