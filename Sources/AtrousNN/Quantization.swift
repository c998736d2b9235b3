
/// QuantizeLinear and DequantizeLinear to and from the integer types
/// (8-, 16- and 32-bit); scales per tensor, per axis or per block.
enum Quantization {
  static func register(_ table: inout OperatorTable) {
    table.add("QuantizeLinear", outputs: [.kernel]) { c in
      let x = try c.input(0)
      let zeroPoint = c.optionalInput(2)
      var type = zeroPoint?.dtype ?? .uint8
      if zeroPoint == nil, let code = try c.int("output_dtype"), code != 0 {
        guard let given = DType(rawValue: code), !given.isFloatingPoint, given != .bool else {
          throw c.unsupported("output_dtype", DType.name(code))
        }
        type = given
      }
      guard !type.isFloatingPoint, type != .bool else { throw c.unsupported("zero point type", type.description) }
      let scale = try expand(c.input(1), to: x, c)
      let zero = try zeroPoint.map { try expand($0, to: x, c).map(Double.init) }
      let range = type.integerRange
      let values = x.floatValues().enumerated().map { i, v -> Int64 in
        // The quotient in float32, as ONNX's reference rounds it.
        let q = Double((v / scale[i]).rounded(.toNearestOrEven)) + (zero?[i] ?? 0)
        guard !q.isNaN else { return 0 }
        return Int64(Swift.min(Swift.max(q, Double(range.min)), Double(range.max)))
      }
      return [NDArray(shape: x.shape, int64s: values, dtype: type)]
    }
    table.add("DequantizeLinear", outputs: [.input(1)]) { c in
      let x = try c.input(0)
      let scale = try expand(c.input(1), to: x, c)
      let zero = try c.optionalInput(2).map { try expand($0, to: x, c) }
      let values = x.floatValues().enumerated().map { i, v in (v - (zero?[i] ?? 0)) * scale[i] }
      return [NDArray(shape: x.shape, floats: values)]
    }
    table.describe(["QuantizeLinear", "DequantizeLinear"], spatiallyLocal: true)
  }

  /// A scale or zero point as one value per element of `x`: a scalar, a
  /// vector along `axis`, or (with block_size) blocks along `axis`.
  static func expand(_ v: NDArray, to x: NDArray, _ c: OpContext) throws -> [Float] {
    let values = v.floatValues()
    if v.count == 1 { return [Float](repeating: values[0], count: x.count) }
    let axis = try c.axis(c.int("axis", default: 1), rank: x.rank)
    let block = try c.int("block_size", default: 0)
    let inner = x.shape[(axis + 1)...].reduce(1, *), length = x.shape[axis]
    if block > 0 {
      // Every other axis as x's: the index below reads v with x's strides.
      guard v.rank == x.rank, v.shape[axis] == (length + block - 1) / block,
        (0..<x.rank).allSatisfy({ $0 == axis || v.shape[$0] == x.shape[$0] })
      else {
        throw c.mismatch("scale \(v.shape) for blocks of \(block) along axis \(axis) of \(x.shape)")
      }
      let blocks = v.shape[axis]
      return (0..<x.count).map { i in
        let (o, k, j) = (i / (length * inner), (i / inner) % length, i % inner)
        return values[(o * blocks + k / block) * inner + j]
      }
    }
    guard v.rank == 1, v.count == length else { throw c.mismatch("scale \(v.shape) for axis \(axis) of \(x.shape)") }
    return (0..<x.count).map { values[($0 / inner) % length] }
  }
}
