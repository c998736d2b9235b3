import AtrousCore
import Foundation
import Testing
import _CKernels

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
  ]

  /// Within a few float ulps of the value, or 1e-6 of |x| + 1 where the
  /// approximations' absolute error (erf's 2e-7) is the larger.
  @Test(arguments: cases, InstructionSet.available)
  func stepMatchesItsFormula(_ c: Case, isa: InstructionSet) {
    // Every 1/64 from -120 to 120, then NaN.
    var x = (-7680...7680).map { Float($0) / 64 } + [.nan]
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
    #expect(x.last!.isNaN, "\(c) \(isa): NaN in, \(x.last!) out")
  }
}
