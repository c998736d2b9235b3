import AtrousCore
@testable import AtrousNN
import Testing
import _CKernels

/// Where float16 values are rounded inside a graph, against ONNX Runtime
/// 1.32.0's CPU provider (default optimizations) on the same small graphs:
/// its outputs are stored below. It computes float16 ops in float32 and
/// removes the casts between them, so values keep float32 precision until
/// they leave the graph or reach an op that moves float16 storage.
@Suite struct Float16Tests {
  static let x: [Float] = [0.1, 1.0 / 3, 2.0001, -7.77]
  static let half = NDArray(shape: [4], floats: [1.5, 1.5, 1.5, 1.5], dtype: .float16)

  static func run(_ nodes: [Node], input: NDArray, initializers: [String: NDArray] = [:], optimize: Bool) throws -> [Float] {
    let graph = Graph(nodes: nodes, initializers: initializers, inputs: [Graph.Input(name: "x", shape: [nil], dtype: input.dtype)],
                      outputs: [nodes.last!.outputs[0]], opset: 17)
    return try Executor(graph: graph, threads: 1, optimize: optimize).run(["x": input])[nodes.last!.outputs[0]]!.floatValues()
  }

  static func cast(_ from: String, _ to: String, _ type: DType) -> Node {
    Node(name: "cast_\(to)", opType: "Cast", inputs: [from], outputs: [to], attributes: ["to": .int(type.rawValue)])
  }

  /// The rounding kernel on every instruction set against Swift's own
  /// Float16 conversion, bit for bit: ties to even at every exponent,
  /// subnormal halves, the overflow threshold, infinities, NaNs and a
  /// seeded spread of values.
  @Test(arguments: InstructionSet.available) func roundingKernelMatchesFloat16(isa: InstructionSet) {
    var random = SeededRandom(seed: 16)
    var x: [Float] = [0, -0.0, .infinity, -.infinity, .nan, 65504, 65519.996, 65520, -65520, 6.1e-5, 5.96e-8, 2.98e-8, 1e-9,
                      .leastNonzeroMagnitude, .greatestFiniteMagnitude]
    for exponent in -26...16 {
      // Halfway between two halves, and either side of it.
      let step = Float(sign: .plus, exponent: exponent - 10, significand: 1)
      let tie = Float(sign: .plus, exponent: exponent, significand: 1) + step / 2
      x += [tie, tie.nextUp, tie.nextDown, -tie, tie + step]
    }
    x += (0..<4000).map { _ in Float(bitPattern: UInt32.random(in: 0...0x477F_FFFF, using: &random)) * (Bool.random(using: &random) ? 1 : -1) }
    var rounded = x
    InstructionSet.with(isa) { atr_float16_round(&rounded, rounded.count) }
    for (value, got) in zip(x, rounded) {
      let expected = Float(Float16(value))
      #expect(got.bitPattern == expected.bitPattern || (got.isNaN && expected.isNaN), "\(isa): \(value) -> \(got), not \(expected)")
    }
  }

  /// float32 -> float16 -> float32 quantizes: both casts stay.
  @Test(arguments: [false, true]) func castPairRounds(optimize: Bool) throws {
    let y = try Self.run([Self.cast("x", "h", .float16), Self.cast("h", "y", .float32)],
                         input: NDArray(shape: [4], floats: Self.x), optimize: optimize)
    #expect(y == [0.0999755859375, 0.333251953125, 2.0, -7.76953125])
  }

  /// A Cast to float16 read by a Mul is not rounded: the Mul runs in
  /// float32 on the cast's input, and so does the Cast after it.
  @Test(arguments: [false, true]) func castBeforeComputeKeepsPrecision(optimize: Bool) throws {
    let nodes = [Self.cast("x", "h", .float16), Node(name: "mul", opType: "Mul", inputs: ["h", "c"], outputs: ["m"]),
                 Self.cast("m", "y", .float32)]
    let y = try Self.run(nodes, input: NDArray(shape: [4], floats: Self.x), initializers: ["c": Self.half], optimize: optimize)
    #expect(y == [0.15000000596046448, 0.5, 3.000149726867676, -11.654999732971191])
  }

  /// A Reshape or Transpose between them moves float16 storage, so the
  /// cast rounds; an Identity does not (ONNX Runtime removes it first).
  @Test(arguments: ["Reshape", "Transpose", "Identity"], [false, true])
  func castBeforeAMoveRounds(op: String, optimize: Bool) throws {
    let move = Node(name: "move", opType: op, inputs: op == "Reshape" ? ["h", "shape"] : ["h"], outputs: ["r"])
    let nodes = [Self.cast("x", "h", .float16), move,
                 Node(name: "mul", opType: "Mul", inputs: ["r", "c"], outputs: ["m"]), Self.cast("m", "y", .float32)]
    let y = try Self.run(nodes, input: NDArray(shape: [4], floats: Self.x),
                         initializers: ["c": Self.half, "shape": NDArray(shape: [1], int64s: [4])], optimize: optimize)
    let rounded: [Float] = [0.14996337890625, 0.4998779296875, 3.0, -11.654296875]
    let unrounded: [Float] = [0.15000000596046448, 0.5, 3.000149726867676, -11.654999732971191]
    #expect(y == (op == "Identity" ? unrounded : rounded))
  }

  /// x * 1.1 / 1.1 in float16 gives x back, as the float32 chain does;
  /// rounding after each op would change 3 of these 8 values.
  @Test(arguments: [false, true]) func chainRoundsOnceAtTheOutput(optimize: Bool) throws {
    let x: [Float] = [0.466064453125, 3.34375, 3.763671875, 2.595703125, 3.857421875, 1.91015625, 2.095703125, 0.29638671875]
    let c = NDArray(shape: [1], floats: [Float(Float16(1.1))], dtype: .float16)
    let nodes = [Node(name: "mul", opType: "Mul", inputs: ["x", "c"], outputs: ["m"]),
                 Node(name: "div", opType: "Div", inputs: ["m", "c"], outputs: ["y"])]
    let y = try Self.run(nodes, input: NDArray(shape: [8], floats: x, dtype: .float16), initializers: ["c": c], optimize: optimize)
    #expect(y == x)
    let perOp = x.map { Float(Float16(Float(Float16($0 * c.floatValues()[0])) / c.floatValues()[0])) }
    #expect(zip(perOp, x).filter { $0 != $1 }.count == 3)
  }
}
