@testable import AtrousNN
import Testing

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
