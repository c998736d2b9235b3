import AtrousCore
import _CKernels

/// Gemm and MatMul.
enum Linear {
  static func register(_ table: inout OperatorTable) {
    table["Gemm"] = { c in try gemm(c) }
    table["MatMul"] = { c in try matmul(c) }
  }

  /// Row-major product of (m, k) and (k, n) float arrays.
  static func multiply(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    c.withUnsafeMutableBufferPointer { out in
      atr_sgemm(m, n, k, a, k, b, n, out.baseAddress!, n, 0)
    }
    return c
  }

  static func transpose(_ v: [Float], rows: Int, columns: Int) -> [Float] {
    var out = [Float](repeating: 0, count: v.count)
    for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = v[r * columns + c] } }
    return out
  }

  /// Y = alpha * A' B' + beta * C, with A' and B' optionally transposed.
  static func gemm(_ c: OpContext) throws -> [NDArray] {
    let a = try c.input(0), b = try c.input(1)
    guard a.rank == 2, b.rank == 2 else { throw c.mismatch("Gemm takes 2-D inputs, got \(a.shape) and \(b.shape)") }
    let transA = try c.int("transA", default: 0) == 1, transB = try c.int("transB", default: 0) == 1
    let alpha = try c.float("alpha", default: 1), beta = try c.float("beta", default: 1)
    let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let (k2, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
    guard k == k2 else { throw c.mismatch("inner sizes \(k) and \(k2) differ") }
    var av = a.floatValues(), bv = b.floatValues()
    if transA { av = transpose(av, rows: a.shape[0], columns: a.shape[1]) }
    if transB { bv = transpose(bv, rows: b.shape[0], columns: b.shape[1]) }
    var y = multiply(av, bv, m: m, k: k, n: n)
    if alpha != 1 { for i in y.indices { y[i] *= alpha } }
    if let bias = c.optionalInput(2), beta != 0 {
      let values = bias.floatValues()
      let strides = Elementwise.strides(bias.shape, to: [m, n])
      guard (try? Elementwise.broadcastShape(bias.shape, [m, n], c)) == [m, n] else {
        throw c.mismatch("bias \(bias.shape) does not broadcast to \([m, n])")
      }
      for i in 0..<m { for j in 0..<n { y[i * n + j] += beta * values[i * strides[0] + j * strides[1]] } }
    }
    return [NDArray(shape: [m, n], floats: y)]
  }

  /// NumPy matmul: 1-D operands promoted, leading axes broadcast.
  static func matmul(_ c: OpContext) throws -> [NDArray] {
    var a = try c.input(0).standard(), b = try c.input(1).standard()
    let promoteA = a.rank == 1, promoteB = b.rank == 1
    if promoteA { a = a.reshaped([1, a.shape[0]]) }
    if promoteB { b = b.reshaped([b.shape[0], 1]) }
    let (m, k) = (a.shape[a.rank - 2], a.shape[a.rank - 1]), (k2, n) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
    guard k == k2 else { throw c.mismatch("cannot multiply \(a.shape) by \(b.shape)") }
    let batch = try Elementwise.broadcastShape(Array(a.shape.dropLast(2)), Array(b.shape.dropLast(2)), c)
    let count = batch.reduce(1, *)
    let sa = Elementwise.strides(Array(a.shape.dropLast(2)), to: batch)
    let sb = Elementwise.strides(Array(b.shape.dropLast(2)), to: batch)
    let av = a.floatValues(), bv = b.floatValues()
    var out = [Float](repeating: 0, count: count * m * n)
    var index = [Int](repeating: 0, count: batch.count)
    for item in 0..<count {
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
    var shape = batch + [m, n]
    if promoteA { shape.remove(at: shape.count - 2) }
    if promoteB { shape.removeLast() }
    return [NDArray(shape: shape, floats: out)]
  }
}
