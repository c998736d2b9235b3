import AtrousCore

/// Element moves shared by the ops that pick, repeat or scatter elements
/// without arithmetic: every such op computes flat offsets into its input
/// (standard order) and lets `gathered` copy the elements, whatever their type.
extension NDArray {
  /// Row-major element strides of `shape`.
  static func strides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    for k in stride(from: shape.count - 2, through: 0, by: -1) { strides[k] = strides[k + 1] * shape[k + 1] }
    return strides
  }

  /// A new array of `shape`, same type, whose element i is this array's
  /// element `offsets[i]` in standard order.
  func gathered(_ offsets: [Int], shape: [Int]) -> NDArray {
    let plain = standard()
    switch plain.elements {
    case .float(let tensor):
      var out = Tensor.uninitialized(shape: shape)
      tensor.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in for i in offsets.indices { dst[i] = src[offsets[i]] } }
      }
      return NDArray(shape: shape, floats: out, dtype: dtype)
    case .int64(let values):
      return NDArray(shape: shape, int64s: offsets.map { values[$0] }, dtype: dtype)
    }
  }

  /// The offsets into an array of `shape` read as the broadcast `target`
  /// (NumPy rules; the caller has checked that they agree).
  static func broadcastOffsets(_ shape: [Int], to target: [Int]) -> [Int] {
    let strides = Elementwise.strides(shape, to: target)
    var offsets = [Int](repeating: 0, count: target.reduce(1, *))
    guard !offsets.isEmpty else { return offsets }
    var index = [Int](repeating: 0, count: target.count)
    for i in offsets.indices {
      var offset = 0
      for k in 0..<target.count { offset += index[k] * strides[k] }
      offsets[i] = offset
      advance(&index, within: target)
    }
    return offsets
  }

  /// This array broadcast to `target` (NumPy rules, already checked),
  /// copied a run at a time (`BroadcastRuns`).
  func broadcast(to target: [Int]) -> NDArray {
    if shape == target { return standard() }
    let runs = BroadcastRuns([shape], to: target)
    switch standard().elements {
    case .float(let tensor):
      var out = Tensor.uninitialized(shape: target)
      tensor.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in runs.copy(src.baseAddress!, into: dst.baseAddress!) }
      }
      return NDArray(shape: target, floats: out, dtype: dtype)
    case .int64(let values):
      let out = [Int64](unsafeUninitializedCapacity: target.reduce(1, *)) { dst, count in
        values.withUnsafeBufferPointer { src in runs.copy(src.baseAddress!, into: dst.baseAddress!) }
        count = dst.count
      }
      return NDArray(shape: target, int64s: out, dtype: dtype)
    }
  }

  /// Elements of several arrays of one type, concatenated in standard order
  /// (the type of the first; floats and integers are not mixed).
  static func joined(_ parts: [NDArray], shape: [Int]) -> NDArray {
    let dtype = parts.first?.dtype ?? .float32
    if dtype.isFloatingPoint {
      return NDArray(shape: shape, floats: parts.flatMap { $0.floatValues() }, dtype: dtype)
    }
    return NDArray(shape: shape, int64s: parts.flatMap { $0.int64Values() }, dtype: dtype)
  }

  /// An array of this one's type from values computed as floats (or as
  /// integers for integer types); `ints` is used when the type is integral.
  static func make(shape: [Int], dtype: DType, floats: () -> [Float], ints: () -> [Int64]) -> NDArray {
    dtype.isFloatingPoint ? NDArray(shape: shape, floats: floats(), dtype: .float32).cast(to: dtype)
      : NDArray(shape: shape, int64s: ints(), dtype: dtype)
  }
}

/// The largest number of elements an op may make: shapes past it are
/// refused before anything is allocated (2^31, 8 GiB of float32).
let maximumElements = 1 << 31

extension OpContext {
  /// Input `index` as a shape: integers, each at least 0 (or -1 and 0 when
  /// `allowSpecial`, as Reshape takes them), whose product stays within
  /// `maximumElements`.
  func shapeInput(_ index: Int, allowSpecial: Bool = false) throws -> [Int] {
    let value = try input(index)
    guard !value.dtype.isFloatingPoint else { throw mismatch("shape input has type \(value.dtype)") }
    let dims = value.intValues()
    try checkShape(dims.filter { !allowSpecial || $0 > 0 }, what: "shape")
    guard allowSpecial || dims.allSatisfy({ $0 >= 0 }) else { throw mismatch("negative dimension in shape \(dims)") }
    return dims
  }

  /// Throws when `shape` has a negative dimension, more elements than
  /// `maximumElements`, or more float32 bytes than `MemoryBudget.current`.
  func checkShape(_ shape: [Int], what: String = "output") throws {
    var total = 1
    for d in shape {
      guard d >= 0 else { throw mismatch("negative dimension in \(what) shape \(shape)") }
      let (product, overflow) = total.multipliedReportingOverflow(by: d)
      guard !overflow, product <= maximumElements else {
        throw mismatch("\(what) shape \(shape) has more than \(maximumElements) elements")
      }
      total = product
    }
    try MemoryBudget.check(total, of: 4) { mismatch("\(what) shape \(shape) would take \(MemoryBudget.format($0)), more than \($1)") }
  }
}
