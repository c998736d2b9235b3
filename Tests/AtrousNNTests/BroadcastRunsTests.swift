import AtrousCore
import Foundation
import Testing
@testable import AtrousNN

/// The run-at-a-time paths of the ops that broadcast, repeat or reduce
/// (`BroadcastRuns`, `ReducedBlock`) against plain per-element reference
/// loops written here, on seeded random shapes with axes of length 1 and
/// 0, every rank to 5, float and integer elements, NaN where it matters.
@Suite struct BroadcastRunsTests {
  /// A random target shape and an operand shape that broadcasts to it:
  /// leading axes dropped, others kept or made 1.
  static func shapes(_ random: inout SeededRandom) -> (operand: [Int], target: [Int]) {
    let rank = Int.random(in: 0...5, using: &random)
    let target = (0..<rank).map { _ in Int.random(in: 0...9, using: &random) == 0 ? 0 : Int.random(in: 1...5, using: &random) }
    let dropped = Int.random(in: 0...rank, using: &random)
    let operand = target[dropped...].map { Bool.random(using: &random) ? $0 : 1 }
    return (operand, target)
  }

  /// The element of an array of `shape` (standard order) that position
  /// `index` of `target` reads under broadcasting.
  static func source(_ index: [Int], _ shape: [Int], _ target: [Int]) -> Int {
    let padded = [Int](repeating: 1, count: target.count - shape.count) + shape
    var offset = 0
    for k in target.indices { offset = offset * padded[k] + (padded[k] == 1 ? 0 : index[k]) }
    return offset
  }

  /// Every multi-index of `shape` in standard order.
  static func indices(_ shape: [Int]) -> [[Int]] {
    var all: [[Int]] = [[]]
    for length in shape { all = all.flatMap { prefix in (0..<length).map { prefix + [$0] } } }
    return all
  }

  static func values(_ count: Int, _ random: inout SeededRandom) -> [Float] {
    (0..<count).map { _ in Float(Int.random(in: -1000...1000, using: &random)) / 64 }
  }

  /// `values` (multiples of 1/64) as floats, or as integers (each times
  /// 64, exactly) to take an op's integer path.
  static func array(_ values: [Float], _ shape: [Int], integers: Bool) -> NDArray {
    integers ? NDArray(shape: shape, int64s: values.map { Int64($0 * 64) }) : NDArray(shape: shape, floats: values)
  }

  /// Whether `y` holds `expected` stored as `array(_:_:integers:)` stores it.
  static func holds(_ y: NDArray, _ expected: [Float], integers: Bool) -> Bool {
    integers ? y.int64Values() == expected.map { Int64($0 * 64) } : y.floatValues() == expected
  }

  @Test func broadcastCopiesEveryElementFromItsSource() {
    var random = SeededRandom(seed: 41)
    for _ in 0..<300 {
      let (shape, target) = Self.shapes(&random)
      let x = Self.values(shape.reduce(1, *), &random)
      let expected = Self.indices(target).map { x[Self.source($0, shape, target)] }
      for integers in [false, true] {
        let y = Self.array(x, shape, integers: integers).broadcast(to: target)
        #expect(y.shape == target && Self.holds(y, expected, integers: integers), "\(shape) -> \(target), integers: \(integers)")
      }
    }
  }

  /// Add, Sub, Div, Max and PRelu with both operands broadcast, against
  /// the same arithmetic per element in float.
  @Test func binaryOpsMatchPerElementArithmetic() throws {
    var random = SeededRandom(seed: 42)
    let ops: [(String, (Float, Float) -> Float)] = [
      ("Add", { $0 + $1 }), ("Sub", { $0 - $1 }), ("Div", { $0 / $1 }), ("Max", { Swift.max($0, $1) }),
      ("PRelu", { $0 < 0 ? $0 * $1 : $0 }),
    ]
    for round in 0..<200 {
      let (aShape, full) = Self.shapes(&random)
      let bShape = full.map { Bool.random(using: &random) ? $0 : 1 }.suffix(Int.random(in: 0...full.count, using: &random))
      // Axes where neither operand has the full length stay 1.
      let aPadded = [Int](repeating: 1, count: full.count - aShape.count) + aShape
      let bPadded = [Int](repeating: 1, count: full.count - bShape.count) + bShape
      let target = Array(zip(aPadded, bPadded).map { $0 == 1 ? $1 : $0 }.suffix(Swift.max(aShape.count, bShape.count)))
      var a = Self.values(aShape.reduce(1, *), &random), b = Self.values(bShape.reduce(1, *), &random).map { $0 == 0 ? 1 : $0 }
      let (name, formula) = ops[round % ops.count]
      // NaNs pass through the arithmetic; Max's handling of them is its own matter.
      if round % 7 == 0, !a.isEmpty, name != "Max" { a[0] = .nan }
      if round % 11 == 0, !b.isEmpty, name != "Max" { b[b.count - 1] = .nan }
      let node = Node(name: "op", opType: name, inputs: ["a", "b"], outputs: ["y"])
      let y = try OpReferenceTests.run(node, inputs: ["a": NDArray(shape: aShape, floats: a), "b": NDArray(shape: Array(bShape), floats: b)],
                                       optimize: false).floatValues()
      let expected = Self.indices(target).map { formula(a[Self.source($0, aShape, target)], b[Self.source($0, Array(bShape), target)]) }
      let same = zip(y, expected).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
      #expect(y.count == expected.count && same, "\(name) \(aShape) with \(Array(bShape)) -> \(target)")
    }
  }

  /// Where with its three inputs broadcast, float and integer values.
  @Test func whereSelectsFromEitherInput() throws {
    var random = SeededRandom(seed: 45)
    for round in 0..<150 {
      let (aShape, full) = Self.shapes(&random)
      func part() -> [Int] {
        Array(full.map { Bool.random(using: &random) ? $0 : 1 }.suffix(Int.random(in: 0...full.count, using: &random)))
      }
      let (cShape, bShape) = (part(), part())
      let rank = [aShape, bShape, cShape].map(\.count).max()!
      let padded = [aShape, bShape, cShape].map { [Int](repeating: 1, count: rank - $0.count) + $0 }
      let target = (0..<rank).map { k in padded.map { $0[k] }.max()! == 1 ? padded.map { $0[k] }.min()! : padded.map { $0[k] }.max()! }
      let flags = (0..<cShape.reduce(1, *)).map { _ in Bool.random(using: &random) }
      let (a, b) = (Self.values(aShape.reduce(1, *), &random), Self.values(bShape.reduce(1, *), &random))
      let integers = round % 3 == 2
      let node = Node(name: "where", opType: "Where", inputs: ["c", "a", "b"], outputs: ["y"])
      let y = try OpReferenceTests.run(node, inputs: ["c": NDArray(shape: cShape, bools: flags),
                                                      "a": Self.array(a, aShape, integers: integers),
                                                      "b": Self.array(b, bShape, integers: integers)], optimize: false)
      let expected = Self.indices(target).map {
        flags[Self.source($0, cShape, target)] ? a[Self.source($0, aShape, target)] : b[Self.source($0, bShape, target)]
      }
      #expect(y.shape == target, "\(cShape) \(aShape) \(bShape)")
      #expect(Self.holds(y, expected, integers: integers), "\(cShape) \(aShape) \(bShape), integers: \(integers)")
    }
  }

  @Test func tileRepeatsEachAxis() throws {
    var random = SeededRandom(seed: 43)
    for round in 0..<150 {
      let rank = Int.random(in: 1...4, using: &random)
      let shape = (0..<rank).map { _ in Int.random(in: 0...9, using: &random) == 0 ? 0 : Int.random(in: 1...4, using: &random) }
      let repeats = (0..<rank).map { _ in Int.random(in: 0...8, using: &random) == 0 ? 0 : Int.random(in: 1...3, using: &random) }
      let x = Self.values(shape.reduce(1, *), &random)
      let integers = round % 2 == 1
      let node = Node(name: "tile", opType: "Tile", inputs: ["x", "r"], outputs: ["y"])
      let y = try OpReferenceTests.run(node, inputs: ["x": Self.array(x, shape, integers: integers)],
                                       initializers: ["r": NDArray(shape: [rank], int64s: repeats.map(Int64.init))], optimize: false)
      let target = zip(shape, repeats).map(*)
      let expected = Self.indices(target).map { index in
        x[zip(index, shape).reduce(0) { $0 * $1.1 + $1.0 % $1.1 }]
      }
      #expect(y.shape == target, "\(shape) x \(repeats)")
      #expect(Self.holds(y, expected, integers: integers), "\(shape) x \(repeats), integers: \(integers)")
    }
  }

  /// ArgMax and ArgMin along each axis, with ties (few distinct values),
  /// select_last_index and keepdims, against a scan per output cell.
  @Test func argExtremesMatchAScanAlongTheAxis() throws {
    var random = SeededRandom(seed: 46)
    for round in 0..<200 {
      let rank = Int.random(in: 1...4, using: &random)
      let shape = (0..<rank).map { _ in Int.random(in: 1...5, using: &random) }
      try checkArgExtreme(shape: shape, axis: Int.random(in: 0..<rank, using: &random), largest: round % 2 == 0, threads: 1,
                          &random)
    }
    // Maps large enough for two threads: blocks of outputs with a partial one.
    for (round, (shape, axis)) in [([2, 16, 1100, 2], 1), ([40, 1700], 0), ([3, 9, 2500], 2)].enumerated() {
      try checkArgExtreme(shape: shape, axis: axis, largest: round % 2 == 0, threads: 2, &random)
    }
  }

  /// ArgMax or ArgMin of a random map of small integers (many ties) over
  /// `axis`, against a scan along it.
  func checkArgExtreme(shape: [Int], axis: Int, largest: Bool, threads: Int, _ random: inout SeededRandom) throws {
    let (keep, last) = (Bool.random(using: &random), Bool.random(using: &random))
    let x = (0..<shape.reduce(1, *)).map { _ in Float(Int.random(in: -3...3, using: &random)) }
    let node = Node(name: "arg", opType: largest ? "ArgMax" : "ArgMin", inputs: ["x"], outputs: ["y"],
                    attributes: ["axis": .int(axis), "keepdims": .int(keep ? 1 : 0), "select_last_index": .int(last ? 1 : 0)])
    let y = try OpReferenceTests.run(node, inputs: ["x": NDArray(shape: shape, floats: x)], optimize: false, threads: threads)
    let outShape = shape.indices.compactMap { $0 == axis ? (keep ? 1 : nil) : shape[$0] }
    let strides = NDArray.strides(shape)
    let expected: [Int64] = Self.indices(shape.enumerated().map { $0.offset == axis ? 1 : $0.element }).map { index in
      let start = zip(index, strides).reduce(0) { $0 + $1.0 * $1.1 }
      var chosen = 0
      for r in 1..<shape[axis] {
        let (v, b) = (x[start + r * strides[axis]], x[start + chosen * strides[axis]])
        if largest ? v > b || (last && v == b) : v < b || (last && v == b) { chosen = r }
      }
      return Int64(chosen)
    }
    #expect(y.shape == outShape && y.int64Values() == expected,
            "\(largest ? "ArgMax" : "ArgMin") \(shape) axis \(axis) keepdims \(keep) last \(last) threads \(threads)")
  }

  /// Pad with a constant, in the layout the input comes in, against
  /// placing each element at its index plus the leading pads.
  @Test func constantPadPlacesEveryElement() throws {
    var random = SeededRandom(seed: 47)
    for _ in 0..<150 {
      let rank = Int.random(in: 1...4, using: &random)
      let shape = (0..<rank).map { _ in Int.random(in: 0...9, using: &random) == 0 ? 0 : Int.random(in: 1...5, using: &random) }
      let pads = (0..<(2 * rank)).map { _ in Int.random(in: 0...2, using: &random) }
      let value = Float(Int.random(in: -4...4, using: &random))
      let x = Self.values(shape.reduce(1, *), &random)
      let node = Node(name: "pad", opType: "Pad", inputs: ["x", "p", "v"], outputs: ["y"])
      let y = try OpReferenceTests.run(node, inputs: ["x": NDArray(shape: shape, floats: x)],
                                       initializers: ["p": NDArray(shape: [2 * rank], int64s: pads.map(Int64.init)),
                                                      "v": NDArray(shape: [], floats: [value])], optimize: false)
      let target = (0..<rank).map { shape[$0] + pads[$0] + pads[$0 + rank] }
      let expected = Self.indices(target).map { index -> Float in
        let inner = (0..<rank).map { index[$0] - pads[$0] }
        guard zip(inner, shape).allSatisfy({ $0 >= 0 && $0 < $1 }) else { return value }
        return x[zip(inner, shape).reduce(0) { $0 * $1.1 + $1.0 }]
      }
      #expect(y.shape == target && y.floatValues() == expected, "\(shape) pads \(pads)")
    }
  }

  /// Gather of float blocks along each axis, with negative and repeated
  /// indices in a 2-D index array, against picking each element.
  @Test func gatherPicksEachBlock() throws {
    var random = SeededRandom(seed: 48)
    for _ in 0..<150 {
      let rank = Int.random(in: 1...4, using: &random)
      let shape = (0..<rank).map { _ in Int.random(in: 1...4, using: &random) }
      let axis = Int.random(in: 0..<rank, using: &random)
      let indexShape = [Int.random(in: 1...3, using: &random), Int.random(in: 0...3, using: &random)]
      let picks = (0..<indexShape.reduce(1, *)).map { _ in Int.random(in: -shape[axis]..<shape[axis], using: &random) }
      let x = Self.values(shape.reduce(1, *), &random)
      let node = Node(name: "gather", opType: "Gather", inputs: ["x", "i"], outputs: ["y"], attributes: ["axis": .int(axis)])
      let y = try OpReferenceTests.run(node, inputs: ["x": NDArray(shape: shape, floats: x)],
                                       initializers: ["i": NDArray(shape: indexShape, int64s: picks.map(Int64.init))], optimize: false)
      let target = Array(shape[..<axis]) + indexShape + Array(shape[(axis + 1)...])
      let expected = Self.indices(target).map { index -> Float in
        let pick = picks[index[axis] * indexShape[1] + index[axis + 1]]
        let source = Array(index[..<axis]) + [pick < 0 ? pick + shape[axis] : pick] + Array(index[(axis + 2)...])
        return x[zip(source, shape).reduce(0) { $0 * $1.1 + $1.0 }]
      }
      #expect(y.shape == target && y.floatValues() == expected, "\(shape) axis \(axis) indices \(indexShape)")
    }
  }

  static let reductionKinds = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                                "ReduceSumSquare", "ReduceLogSum"]

  /// The Reduce ops over random axes (none, some, all; keepdims or not)
  /// against sums in Double and extremes per element, with NaNs among the
  /// inputs of Max and Min.
  @Test func reductionsMatchPerElementReference() throws {
    var random = SeededRandom(seed: 44)
    for round in 0..<400 {
      let rank = Int.random(in: 1...5, using: &random)
      let shape = (0..<rank).map { _ in Int.random(in: 0...11, using: &random) == 0 ? 0 : Int.random(in: 1...6, using: &random) }
      let axes = (0..<rank).filter { _ in Bool.random(using: &random) }
      try checkReduction(Self.reductionKinds[round % Self.reductionKinds.count], shape: shape, axes: axes,
                         keep: Bool.random(using: &random), nan: round % 3 == 0, threads: 1, &random)
    }
  }

  /// The same on maps large enough to split across two threads: runs split
  /// by rows (the last axis, all axes), and reductions across rows in
  /// blocks of `ReducedBlock.columns` outputs, with a partial block.
  @Test func largeReductionsSplitAcrossThreads() throws {
    var random = SeededRandom(seed: 45)
    let cases: [([Int], [Int])] = [([2, 32, 1, 1030], [1]), ([7300, 9], [1]), ([3, 22000], []), ([70, 3, 320], [0, 1])]
    for (index, kind) in Self.reductionKinds.enumerated() {
      for (shape, axes) in cases {
        try checkReduction(kind, shape: shape, axes: axes, keep: index % 2 == 0, nan: true, threads: 2, &random)
      }
    }
  }

  /// Runs `kind` over `axes` of a random map of `shape` (with a NaN for
  /// Max and Min where `nan`) and checks each output against the values
  /// its cell gathers, reduced in Double.
  func checkReduction(_ kind: String, shape: [Int], axes: [Int], keep: Bool, nan: Bool, threads: Int,
                      _ random: inout SeededRandom) throws {
    let rank = shape.count
    var x = Self.values(shape.reduce(1, *), &random).map { kind == "ReduceProd" ? 1 + $0 / 64 : kind == "ReduceLogSum" ? abs($0) + 1 : $0 }
    if (kind == "ReduceMax" || kind == "ReduceMin") && nan && !x.isEmpty {
      x[Int.random(in: 0..<x.count, using: &random)] = .nan
    }
    let node = Node(name: "r", opType: kind, inputs: ["x", "axes"], outputs: ["y"], attributes: ["keepdims": .int(keep ? 1 : 0)])
    let y = try OpReferenceTests.run(node, inputs: ["x": NDArray(shape: shape, floats: x)],
                                     initializers: ["axes": NDArray(shape: [axes.count], int64s: axes.map(Int64.init))],
                                     opset: 18, optimize: false, threads: threads)
    let reduced = axes.isEmpty ? Array(0..<rank) : axes
    let outShape = shape.indices.compactMap { reduced.contains($0) ? (keep ? 1 : nil) : shape[$0] }
    var cells = [[Double]](repeating: [], count: outShape.reduce(1, *))
    let kept = shape.indices.filter { !reduced.contains($0) }
    for (flat, index) in Self.indices(shape).enumerated() {
      cells[kept.reduce(0) { $0 * shape[$1] + index[$1] }].append(Double(x[flat]))
    }
    let expected: [Double] = cells.map { v in
      switch kind {
      case "ReduceSum": return v.reduce(0, +)
      case "ReduceMean": return v.isEmpty ? .nan : v.reduce(0, +) / Double(v.count)
      case "ReduceMax": return v.contains { $0.isNaN } ? .nan : v.max() ?? -.infinity
      case "ReduceMin": return v.contains { $0.isNaN } ? .nan : v.min() ?? .infinity
      case "ReduceProd": return v.reduce(1, *)
      case "ReduceL1": return v.reduce(0) { $0 + abs($1) }
      case "ReduceL2": return v.reduce(0) { $0 + $1 * $1 }.squareRoot()
      case "ReduceSumSquare": return v.reduce(0) { $0 + $1 * $1 }
      default: return log(v.reduce(0, +))
      }
    }
    let got = y.floatValues()
    let close = zip(got, expected).allSatisfy { g, e in
      (g.isNaN && e.isNaN) || g == Float(e) || abs(Double(g) - e) <= 1e-6 * abs(e)
    }
    #expect(y.shape == outShape && got.count == expected.count && close,
            "\(kind) \(shape) axes \(axes) keepdims \(keep): \(got.prefix(6)) against \(expected.prefix(6))")
  }
}
