import AtrousCore
import _CKernels

/// Gemm and MatMul.
///
/// A product whose B is a constant gets B prepared once per executor:
/// as one sequential stream in blocks of output columns (`atr_gemv_pack`)
/// for products of at most `fewRows` rows of A, which read each weight
/// once per row (`atr_gemv_rows`, blocks split across threads); packed in
/// panels (`atr_pack_b`) otherwise, rows of A split across threads.
enum Linear {
  /// Rows of A up to which a product streams the weights row by row.
  static let fewRows = 4

  /// Multiply-accumulates from which a product's rows (or, streamed, its
  /// output columns) are split across threads. A stream of the weights is
  /// bound by memory, so a second core pays off early: 240 x 960 (a
  /// squeeze-excitation block's) runs 1.6 times faster on two.
  static let parallelWork = 1 << 16

  static func register(_ table: inout OperatorTable) {
    table["Gemm"] = { c in try gemm(&c) }
    table["MatMul"] = { c in try matmul(&c) }
    table.describe(["Gemm", "MatMul"], floatData: true, tracesShapes: true, macs: { t in
      // Output elements times the shared dimension of A (its first axis when transposed).
      guard let a = t.inputShapes.first ?? nil, let last = a.last, let out = t.outputShapes.first else { return 0 }
      return out.reduce(1, *) * (t.int("transA") == 1 ? a[0] : last)
    })
  }

  /// B (k, n), given row-major as (k, n), or as (n, k) when `transposed`,
  /// in the layout a product of `rows` rows of A reads.
  struct Weights {
    /// `atr_gemv_pack`'s blocks for few rows, `atr_pack_b` panels
    /// otherwise; flat, in pooled memory (a fresh process's first run
    /// finds it faulted in, where an array's pages fault one by one).
    var values: Tensor
    /// Output columns per block of the stream (`atr_gemv_columns` of the
    /// instruction set that laid it out), 0 for panels.
    var columns: Int
    var byRows: Bool { columns > 0 }
  }

  static func prepare(_ b: [Float], k: Int, n: Int, transposed: Bool, byRows: Bool, threads: Int = 1) -> Weights {
    b.withUnsafeBufferPointer { prepare($0, k: k, n: n, transposed: transposed, byRows: byRows, threads: threads) }
  }

  /// `prepare` from the values where they lie: a classifier's weights
  /// (5 MB for 1280 -> 1000) read once, into a result written whole. A
  /// copy of them and a zeroed result first made MobileNetV2's Gemm take
  /// 4.9 ms in a fresh process's first run, against 0.3 warm. `threads`
  /// share the work: blocks of output columns for the stream, panels of 32
  /// columns (`atr_pack_b_rows`, where B is (n, k)) for the product.
  static func prepare(_ b: UnsafeBufferPointer<Float>, k: Int, n: Int, transposed: Bool, byRows: Bool,
                      threads: Int = 1) -> Weights {
    let source = b.baseAddress!
    let parts = n * k < ConvKernel.parallelPackFloats ? 1 : threads
    if byRows {
      let columns = atr_gemv_columns()
      var values = Tensor.uninitialized(shape: [atr_gemv_packed_size(n, k)])  // every float is written
      values.withUnsafeMutableBufferPointer { stream in
        let shares = Parallel.ranges((n + columns - 1) / columns, parts: parts)
        Parallel.run(shares.count) { part in
          let first = shares[part].lowerBound * columns, end = min(n, shares[part].upperBound * columns)
          atr_gemv_pack(stream.baseAddress! + first * k, source + (transposed ? first * k : first), transposed ? k : n,
                        transposed ? 0 : 1, end - first, k)
        }
      }
      return Weights(values: values, columns: columns)
    }
    let count = atr_packed_b_size(k, n)
    var values = Tensor.uninitialized(shape: [count])  // every float is written
    values.withUnsafeMutableBufferPointer { packed in
      if transposed {
        let shares = Parallel.ranges((n + ConvKernel.panelColumns - 1) / ConvKernel.panelColumns, parts: parts)
        Parallel.run(shares.count) { part in
          atr_pack_b_rows(packed.baseAddress!, source, k, n, k, 1, shares[part].lowerBound, shares[part].upperBound)
        }
      } else {
        atr_pack_b(packed.baseAddress!, source, k, n, n)
      }
    }
    return Weights(values: values, columns: 0)
  }

  /// B for input `index` of the node: prepared once per executor when it
  /// is a constant.
  static func weights(_ c: OpContext, index: Int, k: Int, n: Int, transposed: Bool, rows: Int) throws -> Weights {
    let byRows = rows <= fewRows
    let b = try c.input(index)
    let make = {
      guard let stored = b.standard().storage else {
        return prepare(b.floatValues(), k: k, n: n, transposed: transposed, byRows: byRows, threads: c.threads)
      }
      return stored.withUnsafeBufferPointer { prepare($0, k: k, n: n, transposed: transposed, byRows: byRows, threads: c.threads) }
    }
    if let cache = c.cache, index < c.constant.count, c.constant[index] {
      return cache.value(c.index, byRows ? "linear-rows" : "linear-packed") { make() }
    }
    return make()
  }

  /// C (m, n) = A (m, k) B, rows or columns split across threads; `bias`
  /// (n values) seeds each row. A is read where it lies and C is written
  /// once into a new tensor of shape `shape` (m n elements): a copy of A
  /// and a zeroed C copied into a tensor were 27% of a 3136 x 384 x 96
  /// product's time.
  static func product(_ a: Tensor, m: Int, k: Int, n: Int, _ w: Weights, bias: [Float]?, threads: Int,
                      steps: [atr_pointwise_step] = [], shape: [Int]) -> Tensor {
    var out = Tensor.uninitialized(shape: shape)  // (m, n)
    guard m > 0, n > 0, k > 0 else {
      out.withUnsafeMutableBufferPointer { o in
        for i in 0..<m { for j in 0..<n { o[i * n + j] = bias?[j] ?? 0 } }
        atr_pointwise(o.baseAddress, 1, o.count, o.count, steps, steps.count)
      }
      return out
    }
    let work = m * n * k
    a.withUnsafeBufferPointer { pa in
      w.values.withUnsafeBufferPointer { pw in
        out.withUnsafeMutableBufferPointer { po in
          precondition(pa.count == m * k && po.count == m * n, "product of \(m) x \(k) by \(k) x \(n)")
          let withBias = { (body: (UnsafePointer<Float>?) -> Void) in
            if let bias { bias.withUnsafeBufferPointer { body($0.baseAddress!) } } else { body(nil) }
          }
          withBias { pb in
            if w.byRows {
              // Whole blocks of columns per thread, as the stream holds them.
              let columns = w.columns
              precondition(columns == atr_gemv_columns(), "weights laid out for another instruction set")
              let parts = Parallel.ranges((n + columns - 1) / columns, parts: work >= parallelWork ? threads : 1)
                .map { columns * $0.lowerBound..<min(n, columns * $0.upperBound) }
              for row in 0..<m {
                Parallel.run(parts.count) { part in
                  let r = parts[part]
                  atr_gemv_rows(po.baseAddress! + row * n + r.lowerBound, pa.baseAddress! + row * k,
                                pw.baseAddress! + r.lowerBound * k, r.count, k, pb.map { $0 + r.lowerBound })
                }
              }
              atr_pointwise(po.baseAddress!, 1, m * n, m * n, steps, steps.count)
            } else {
              let parts = Parallel.ranges(m, parts: work >= parallelWork ? threads : 1)
              Parallel.run(parts.count) { part in
                let r = parts[part]
                atr_sgemm_packed(r.count, n, k, pa.baseAddress! + r.lowerBound * k, k, pw.baseAddress!,
                                 po.baseAddress! + r.lowerBound * n, n, pb == nil ? ATR_START_ZERO : ATR_START_COLUMN_BIAS, pb)
                // The steps fused after the product, on each block while in cache.
                atr_pointwise(po.baseAddress! + r.lowerBound * n, 1, r.count * n, r.count * n, steps, steps.count)
              }
            }
          }
        }
      }
    }
    return out
  }

  static func transpose(_ v: [Float], rows: Int, columns: Int) -> [Float] {
    v.withUnsafeBufferPointer { transpose($0, rows: rows, columns: columns) }
  }

  static func transpose(_ v: UnsafeBufferPointer<Float>, rows: Int, columns: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: v.count) { out, initialized in
      atr_transpose(out.baseAddress!, v.baseAddress!, rows, columns)
      initialized = v.count
    }
  }

  /// Y = alpha * A' B' + beta * C, with A' and B' optionally transposed.
  static func gemm(_ c: inout OpContext) throws -> [NDArray] {
    let a = try c.input(0), b = try c.input(1)
    guard a.rank == 2, b.rank == 2 else { throw c.mismatch("Gemm takes 2-D inputs, got \(a.shape) and \(b.shape)") }
    let transA = try c.int("transA", default: 0) == 1, transB = try c.int("transB", default: 0) == 1
    let alpha = try c.float("alpha", default: 1), beta = try c.float("beta", default: 1)
    let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let (k2, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    guard k == k2 else { throw c.mismatch("inner sizes \(k) and \(k2) differ") }
    try c.checkShape([m, n])
    if c.shapesOnly { return [NDArray(shape: [m, n], floats: Tensor.uninitialized(shape: [m, n]))] }
    var av = a.floatTensor()
    if transA { av = Tensor(shape: [m, k], values: transpose(av.scalars, rows: a.shape[0], columns: a.shape[1])) }
    let w = try weights(c, index: 1, k: k, n: n, transposed: transB, rows: m)
    c.path = w.byRows ? "gemv" : "gemm"
    // A bias of one row seeds the accumulators; any other C is added after.
    var rowBias: [Float]? = nil, bias: NDArray? = nil
    if let given = c.optionalInput(2), beta != 0 {
      guard (try? Elementwise.broadcastShape(given.shape, [m, n], c)) == [m, n] else {
        throw c.mismatch("bias \(given.shape) does not broadcast to \([m, n])")
      }
      if given.count == n && given.shape.last == n && alpha == 1 && beta == 1 { rowBias = given.floatValues() } else { bias = given }
    }
    var y = product(av, m: m, k: k, n: n, w, bias: rowBias, threads: c.threads, shape: [m, n])
    y.withUnsafeMutableBufferPointer { y in
      if alpha != 1 { for i in y.indices { y[i] *= alpha } }
      if let bias {
        let values = bias.floatValues()
        let strides = Elementwise.strides(bias.shape, to: [m, n])
        for i in 0..<m { for j in 0..<n { y[i * n + j] += beta * values[i * strides[0] + j * strides[1]] } }
      }
    }
    return [NDArray(shape: [m, n], floats: y)]
  }

  /// NumPy matmul: 1-D operands promoted, leading axes broadcast. A
  /// constant 2-D B multiplies every row of A in one product.
  static func matmul(_ c: inout OpContext) throws -> [NDArray] {
    var a = try c.input(0).standard(), b = try c.input(1).standard()
    let promoteA = a.rank == 1, promoteB = b.rank == 1
    if promoteA { a = a.reshaped([1, a.shape[0]]) }
    if promoteB { b = b.reshaped([b.shape[0], 1]) }
    guard a.rank >= 2, b.rank >= 2 else { throw c.mismatch("cannot multiply \(a.shape) by \(b.shape)") }
    let (m, k) = (a.shape[a.rank - 2], a.shape[a.rank - 1]), (k2, n) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    guard k == k2 else { throw c.mismatch("cannot multiply \(a.shape) by \(b.shape)") }
    let batch = try Elementwise.broadcastShape(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)), c)
    var shape = batch + [m, n]
    if promoteA { shape.remove(at: shape.count - 2) }
    if promoteB { shape.removeLast() }
    try c.checkShape(shape)
    if c.shapesOnly { return [NDArray(shape: shape, floats: Tensor.uninitialized(shape: shape))] }
    if b.rank == 2, c.constant.count > 1, c.constant[1] {
      // Every row of A against one B: a single product, with the bias and
      // element-wise steps the optimizer folded into it.
      let rows = a.count / Swift.max(k, 1)
      let w = try weights(c, index: 1, k: k, n: n, transposed: false, rows: rows)
      let bias = c.optionalInput(2)?.floatValues()
      let steps = try Pointwise.epilogue(of: c)
      c.path = (w.byRows ? "gemv" : "gemm") + (bias == nil ? "" : "+bias") + Pointwise.describe(steps)
      let out = product(a.floatTensor(), m: rows, k: k, n: n, w, bias: bias, threads: c.threads, steps: steps,
                        shape: shape)
      return [NDArray(shape: shape, floats: out)]
    }
    let count = batch.reduce(1, *)
    let sa = Elementwise.strides(Array(a.shape.dropLast(2)), to: batch)
    let sb = Elementwise.strides(Array(b.shape.dropLast(2)), to: batch)
    let av = a.floatTensor(), bv = b.floatTensor()
    // (batch, m, n): every product writes its block, or zeros when k = 0.
    var out = k > 0 ? Tensor.uninitialized(shape: shape) : Tensor(shape: shape)
    var index = [Int](repeating: 0, count: batch.count)
    for item in 0..<count where k > 0 {
      var ia = 0, ib = 0
      for d in 0..<batch.count { ia += index[d] * sa[d]; ib += index[d] * sb[d] }
      av.withUnsafeBufferPointer { pa in
        bv.withUnsafeBufferPointer { pb in
          out.withUnsafeMutableBufferPointer { po in
            atr_sgemm(m, n, k, pa.baseAddress! + ia * m * k, k, pb.baseAddress! + ib * k * n, n,
                      po.baseAddress! + item * m * n, n, 0)
          }
        }
      }
      advance(&index, within: batch)
    }
    // Steps the optimizer moved in (a scale of the product), on the sums.
    let steps = try Pointwise.epilogue(of: c)
    if !steps.isEmpty {
      c.path = "gemm" + Pointwise.describe(steps)
      out.withUnsafeMutableBufferPointer { atr_pointwise($0.baseAddress, 1, $0.count, $0.count, steps, steps.count) }
    }
    return [NDArray(shape: shape, floats: out)]
  }
}
