import AtrousCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The Reduce* family, ArgMax and ArgMin: one pass over the input in
/// standard order, each element added into the output cell of its kept
/// axes. Sums and products accumulate in Double (Int64 for integers).
enum Reduce {
  enum Kind {
    case sum, mean, max, min, prod, l1, l2, logSum, logSumExp, sumSquare

    /// The value of an empty reduction.
    var identity: Double {
      switch self {
      case .sum, .mean, .l1, .l2, .sumSquare: 0
      case .prod: 1
      case .max, .logSum, .logSumExp: -.infinity
      case .min: .infinity
      }
    }
  }

  static func register(_ table: inout OperatorTable) {
    let kinds: [(String, Kind)] = [
      ("ReduceSum", .sum), ("ReduceMean", .mean), ("ReduceMax", .max), ("ReduceMin", .min), ("ReduceProd", .prod),
      ("ReduceL1", .l1), ("ReduceL2", .l2), ("ReduceLogSum", .logSum), ("ReduceLogSumExp", .logSumExp),
      ("ReduceSumSquare", .sumSquare),
    ]
    for (name, kind) in kinds {
      table[name] = { c in [try reduce(c, kind, axesFromInput: c.opset >= (name == "ReduceSum" ? 13 : 18))] }
    }
    table.add("ArgMax", outputs: [.fixed(.int64)]) { c in [try argument(c, largest: true)] }
    table.add("ArgMin", outputs: [.fixed(.int64)]) { c in [try argument(c, largest: false)] }
  }

  /// The reduced axes, sorted, and the output shape.
  static func plan(_ x: NDArray, axes: [Int], keepDims: Bool) -> (kept: [Bool], shape: [Int]) {
    let kept = x.shape.indices.map { !axes.contains($0) }
    let shape = x.shape.indices.compactMap { kept[$0] ? x.shape[$0] : keepDims ? 1 : nil }
    return (kept, shape)
  }

  /// Calls `body(inputOffset, outputOffset)` for every input element in
  /// standard order; the output offset drops the reduced axes.
  static func forEach(_ shape: [Int], kept: [Bool], _ body: (Int, Int) -> Void) {
    let total = shape.reduce(1, *)
    guard total > 0 else { return }
    var outStrides = [Int](repeating: 0, count: shape.count)
    var step = 1
    for k in stride(from: shape.count - 1, through: 0, by: -1) where kept[k] {
      outStrides[k] = step
      step *= shape[k]
    }
    var index = [Int](repeating: 0, count: shape.count)
    var out = 0
    for i in 0..<total {
      body(i, out)
      var k = shape.count - 1
      while k >= 0 {
        index[k] += 1
        out += outStrides[k]
        if index[k] < shape[k] { break }
        out -= outStrides[k] * shape[k]
        index[k] = 0
        k -= 1
      }
    }
  }

  static func reduce(_ c: OpContext, _ kind: Kind, axesFromInput: Bool) throws -> NDArray {
    let original = try c.input(0)
    let keepDims = try c.int("keepdims", default: 1) == 1
    let given = try axesFromInput ? c.optionalInput(1)?.intValues() : c.ints("axes")
    let requested = try (given ?? []).map { try c.axis($0, rank: original.rank, attribute: "axes") }
    if original.isFloat, original.rank == 4, Set(requested) == [2, 3], kind == .mean || kind == .sum {
      // A global pool over the spatial axes: per pixel, a vector of channels.
      let (n, ch) = (original.shape[0], original.shape[1])
      let pooled = Pooling.overSpace(original, kind == .mean ? .mean : .sum, threads: c.threads)
      return NDArray(shape: keepDims ? [n, ch, 1, 1] : [n, ch], floats: pooled.reshaped([n * ch]), dtype: original.dtype)
    }
    let x = original.standard()
    var axes = requested
    if axes.isEmpty {
      if try c.int("noop_with_empty_axes", default: 0) == 1 { return x }
      axes = Array(0..<x.rank)
    }
    let (kept, shape) = plan(x, axes: axes, keepDims: keepDims)
    let count = shape.reduce(1, *)
    let n = Swift.max(x.count, 1) / Swift.max(count, 1)
    if !x.isFloat, [.sum, .prod, .max, .min, .l1, .sumSquare].contains(kind) {
      // Exact integer arithmetic, wrapping as the type does.
      let values = x.int64Values()
      let unsigned = x.dtype == .uint64
      let range = x.dtype.integerRange
      var out = [Int64](repeating: kind == .prod ? 1 : kind == .max ? range.min : kind == .min ? range.max : 0, count: count)
      forEach(x.shape, kept: kept) { i, o in
        let v = values[i]
        switch kind {
        case .sum: out[o] &+= v
        case .prod: out[o] &*= v
        case .max: out[o] = unsigned ? Int64(bitPattern: Swift.max(UInt64(bitPattern: out[o]), UInt64(bitPattern: v))) : Swift.max(out[o], v)
        case .min: out[o] = unsigned ? Int64(bitPattern: Swift.min(UInt64(bitPattern: out[o]), UInt64(bitPattern: v))) : Swift.min(out[o], v)
        case .l1: out[o] &+= v < 0 ? 0 &- v : v
        default: out[o] &+= v &* v
        }
      }
      return NDArray(shape: shape, int64s: out, dtype: x.dtype)
    }
    if kind != .logSumExp, let block = ReducedBlock(x.shape, kept: kept), case .float(let tensor) = x.elements {
      return NDArray(shape: shape, floats: block.reduce(tensor, kind, meanOver: n, threads: c.threads))
    }
    let values = x.floatValues()
    var out = [Double](repeating: kind == .logSumExp || kind == .logSum ? 0 : kind.identity, count: count)
    var peak = [Double](repeating: -.infinity, count: kind == .logSumExp ? count : 0)
    if kind == .logSumExp { forEach(x.shape, kept: kept) { i, o in peak[o] = Swift.max(peak[o], Double(values[i])) } }
    forEach(x.shape, kept: kept) { i, o in
      let v = Double(values[i])
      switch kind {
      case .sum, .mean, .logSum: out[o] += v
      case .max: out[o] = v.isNaN || out[o].isNaN ? .nan : Swift.max(out[o], v)
      case .min: out[o] = v.isNaN || out[o].isNaN ? .nan : Swift.min(out[o], v)
      case .prod: out[o] *= v
      case .l1: out[o] += Swift.abs(v)
      case .l2, .sumSquare: out[o] += v * v
      case .logSumExp: out[o] += peak[o].isFinite ? Glibc.exp(v - peak[o]) : (v == peak[o] ? 1 : 0)
      }
    }
    for o in out.indices {
      switch kind {
      case .mean: out[o] = n == 0 || x.count == 0 ? .nan : out[o] / Double(n)
      case .l2: out[o] = out[o].squareRoot()
      case .logSum: out[o] = Glibc.log(out[o])
      case .logSumExp: out[o] = x.count == 0 ? -.infinity : peak[o].isFinite ? peak[o] + Glibc.log(out[o]) : peak[o]
      default: break
      }
    }
    return NDArray(shape: shape, floats: out.map { Float($0) })
  }

  /// ArgMax and ArgMin along one axis: the first (or, with
  /// select_last_index, the last) position of the extreme value.
  static func argument(_ c: OpContext, largest: Bool) throws -> NDArray {
    let x = try c.input(0).standard()
    let axis = try c.axis(c.int("axis", default: 0), rank: x.rank)
    let keepDims = try c.int("keepdims", default: 1) == 1
    let last = try c.int("select_last_index", default: 0) == 1
    guard x.shape[axis] > 0 else { throw c.mismatch("axis \(axis) of \(x.shape) is empty") }
    let (kept, shape) = plan(x, axes: [axis], keepDims: keepDims)
    let count = shape.reduce(1, *)
    if case .float(let tensor) = x.elements {
      // Per index of the axes before `axis` and block of adjacent outputs,
      // the rows along the axis compared with the best so far, a row of
      // the block at a time; blocks split across threads.
      let (length, inner) = (x.shape[axis], x.shape[(axis + 1)...].reduce(1, *))
      let blocks = ColumnBlocks(outer: inner == 0 ? 0 : count / inner, inner: inner, width: ReducedBlock.columns)
      let best = [Int64](unsafeUninitializedCapacity: count) { out, initialized in
        tensor.withUnsafeBufferPointer { src in
          blocks.forEach(elements: x.count, threads: c.threads, scratchFloats: ReducedBlock.columns) { scratch, o, columns in
            let (first, cols) = (columns.lowerBound, columns.count)
            let base = src.baseAddress! + o * length * inner + first  // rows `inner` apart
            let top = scratch.assumingMemoryBound(to: Float.self)  // (cols) the block's best values
            let cell = out.baseAddress! + o * inner + first
            top.update(from: base, count: cols)
            cell.initialize(repeating: 0, count: cols)
            for r in 1..<length {
              let line = base + r * inner, position = Int64(r)
              for i in 0..<cols {
                let v = line[i]
                if largest ? v > top[i] || (last && v == top[i]) : v < top[i] || (last && v == top[i]) {
                  top[i] = v
                  cell[i] = position
                }
              }
            }
          }
        }
        initialized = count
      }
      return NDArray(shape: shape, int64s: best)
    }
    var best = [Int64](repeating: -1, count: count)
    var bestValue = [Double](repeating: 0, count: count)
    let values: [Double] = x.isFloat ? x.floatValues().map(Double.init)
      : x.dtype == .uint64 ? x.int64Values().map { Double(UInt64(bitPattern: $0)) } : x.int64Values().map(Double.init)
    let stride = x.shape[(axis + 1)...].reduce(1, *), length = x.shape[axis]
    forEach(x.shape, kept: kept) { i, o in
      let position = Int64((i / stride) % length), v = values[i]
      let better = largest ? v > bestValue[o] : v < bestValue[o]
      if best[o] < 0 || better || (last && v == bestValue[o]) {
        best[o] = position
        bestValue[o] = v
      }
    }
    return NDArray(shape: shape, int64s: best)
  }
}
