import AtrousCore
import _CKernels

/// A tensor as a network computes it: a logical shape in ONNX's order
/// (NCHW for images), an ONNX element type, and elements computed as
/// Float32 (floating types) or Int64 (integer and boolean types; see
/// `DType` for how each type is held).
///
/// Rank-4 float arrays may be stored channels-last: their elements then lie
/// in (N, H, W, C) order while `shape` stays (N, C, H, W). Convolution,
/// pooling, resizing and element-wise ops work in that layout (a pixel's
/// channel vector is contiguous, so they vectorize across channels and a
/// 1x1 convolution is a plain matrix product); ops whose meaning depends on
/// the element order (Reshape, Flatten, Transpose, MatMul, ...) first ask
/// for the standard layout.
public struct NDArray: Sendable {
  public enum Elements: Sendable {
    /// Float32 elements; the tensor's own shape is the physical one.
    case float(Tensor)
    case int64([Int64])
  }

  /// Logical shape, ONNX order.
  public private(set) var shape: [Int]
  public private(set) var elements: Elements
  /// True for a rank-4 float array stored (N, H, W, C).
  public private(set) var channelsLast: Bool
  /// The element type ONNX sees; `elements` holds it as `DType` describes.
  public private(set) var dtype: DType

  /// Number of elements. Shapes are checked against `Int` overflow where
  /// they are made (importer, shape inference), so this product fits.
  public var count: Int { shape.reduce(1, *) }
  public var rank: Int { shape.count }
  public var isFloat: Bool { if case .float = elements { true } else { false } }

  /// A float array in standard (row-major, logical) order; `dtype` must
  /// be a floating type (float16 values are taken as already rounded).
  public init(shape: [Int], floats: Tensor, dtype: DType = .float32) {
    precondition(floats.count == shape.reduce(1, *), "\(floats.count) floats do not fill \(shape)")
    precondition(dtype.isFloatingPoint, "\(dtype) is not a floating type")
    self.shape = shape
    elements = .float(floats.shape == shape ? floats : floats.reshaped(shape))
    channelsLast = false
    self.dtype = dtype
  }

  public init(shape: [Int], floats: [Float], dtype: DType = .float32) {
    self.init(shape: shape, floats: Tensor(shape: shape, values: floats), dtype: dtype)
  }

  /// An integer or boolean array; values are wrapped to `dtype`'s width.
  public init(shape: [Int], int64s: [Int64], dtype: DType = .int64) {
    precondition(int64s.count == shape.reduce(1, *), "\(int64s.count) integers do not fill \(shape)")
    precondition(!dtype.isFloatingPoint, "\(dtype) is not an integer type")
    self.shape = shape
    switch dtype {
    case .int64, .uint64: elements = .int64(int64s)
    default: elements = .int64(int64s.map(dtype.wrap))
    }
    channelsLast = false
    self.dtype = dtype
  }

  /// A boolean array.
  public init(shape: [Int], bools: [Bool]) {
    self.init(shape: shape, int64s: bools.map { $0 ? 1 : 0 }, dtype: .bool)
  }

  /// A rank-4 float array from its channels-last storage, shape (N, H, W, C).
  public init(channelsLast storage: Tensor, dtype: DType = .float32) {
    precondition(storage.rank == 4, "channels-last storage is rank 4")
    let s = storage.shape
    shape = [s[0], s[3], s[1], s[2]]
    elements = .float(storage)
    channelsLast = true
    self.dtype = dtype
  }

  /// The same values as another element type, converted as ONNX's Cast
  /// converts them (floats to integers truncate toward zero; to bool,
  /// nonzero is true). Between floating types only the tag changes: inside
  /// a graph, float16 values keep float32 precision, as ONNX Runtime's CPU
  /// provider keeps them (it runs float16 ops in float32 and removes the
  /// casts between them); `storageRounded()` rounds them where they leave.
  public func cast(to type: DType) -> NDArray {
    if type == dtype { return self }
    switch (elements, type.isFloatingPoint) {
    case (.float, true):
      var result = self
      result.dtype = type
      return result
    case (.float, false):
      let plain = standard()
      guard case .float(let tensor) = plain.elements else { return plain }
      return NDArray(shape: shape, int64s: tensor.scalars.map(type.integer), dtype: type)
    case (.int64(let values), true):
      let source = dtype
      return NDArray(shape: shape, floats: values.map { source.float($0) }, dtype: .float32).cast(to: type)
    case (.int64(let values), false):
      return NDArray(shape: shape, int64s: values, dtype: type)
    }
  }

  /// The values as their type stores them: float16 values rounded to
  /// nearest even (overflowing to infinity), others unchanged. Applied
  /// where values enter or leave a graph.
  public func storageRounded() -> NDArray {
    guard dtype == .float16, case .float(var tensor) = elements else { return self }
    tensor.withUnsafeMutableBufferPointer { v in if let base = v.baseAddress { atr_float16_round(base, v.count) } }
    var result = self
    result.elements = .float(tensor)
    return result
  }

  /// The same elements described as `type` without conversion: the
  /// storage kinds (float or integer) of the two types must agree.
  func retagged(_ type: DType) -> NDArray {
    precondition(type.isFloatingPoint == isFloat, "cannot retag \(dtype) as \(type)")
    var result = self
    result.dtype = type
    return result
  }

  /// Hands over the float storage, leaving this array empty, so that the
  /// caller holds the only reference when nothing else does.
  mutating func releaseStorage() -> Tensor? {
    guard case .float(let tensor) = elements else { return nil }
    elements = .int64([])
    return tensor
  }

  /// The float elements as stored (physical shape).
  public var storage: Tensor? {
    if case .float(let tensor) = elements { return tensor }
    return nil
  }

  /// The same values in standard layout.
  public func standard() -> NDArray {
    guard channelsLast, case .float(let nhwc) = elements else { return self }
    return NDArray(shape: shape, floats: Permute.apply(nhwc, order: [0, 3, 1, 2]), dtype: dtype)
  }

  /// The same values stored channels-last (rank-4 floats only).
  public func toChannelsLast() -> NDArray {
    guard !channelsLast, rank == 4, case .float(let nchw) = elements else { return self }
    return NDArray(channelsLast: Permute.apply(nchw, order: [0, 2, 3, 1]), dtype: dtype)
  }

  /// Float elements in logical (standard) order as a tensor of the
  /// logical shape: the stored one, without a copy, when it is already in
  /// that order; integers converted.
  public func floatTensor() -> Tensor {
    let plain = standard()
    if case .float(let tensor) = plain.elements { return tensor }
    return Tensor(shape: shape, values: plain.floatValues())
  }

  /// Float elements in logical (standard) order, converting integers.
  public func floatValues() -> [Float] {
    switch standard().elements {
    case .float(let tensor): tensor.scalars
    case .int64(let values): dtype == .uint64 ? values.map { dtype.float($0) } : values.map { Float($0) }
    }
  }

  /// The elements as stored integers in logical order (floats truncated
  /// toward zero, as `DType.int64` converts them).
  public func int64Values() -> [Int64] {
    switch standard().elements {
    case .float(let tensor): tensor.scalars.map(DType.int64.integer)
    case .int64(let values): values
    }
  }

  /// The elements as integers in logical order (floats are truncated).
  public func intValues() -> [Int] {
    int64Values().map { Int($0) }
  }

  /// The same elements with another logical shape of equal count, standard layout.
  public func reshaped(_ newShape: [Int]) -> NDArray {
    let plain = standard()
    var result = plain
    result.shape = newShape
    if case .float(let tensor) = plain.elements { result.elements = .float(tensor.reshaped(newShape)) }
    return result
  }
}

/// Axis permutation of dense tensors.
public enum Permute {
  /// `output[i0, i1, ...] = input[...]` with output axis k = input axis order[k].
  public static func apply(_ input: Tensor, order: [Int]) -> Tensor {
    let inShape = input.shape
    let rank = inShape.count
    let outShape = order.map { inShape[$0] }
    var output = Tensor.uninitialized(shape: outShape)
    if input.count == 0 { return output }
    // NCHW <-> NHWC: one blocked 2-D transpose per image.
    if rank == 4 && (order == [0, 2, 3, 1] || order == [0, 3, 1, 2]) {
      let n = inShape[0]
      let rows = order == [0, 2, 3, 1] ? inShape[1] : inShape[1] * inShape[2]
      let columns = input.count / n / rows
      // Each thread takes a range of input columns of every image.
      let ranges = Parallel.ranges(columns, parts: input.count >= Elementwise.parallelCopyThreshold ? Parallel.budget : 1)
      let stream: Int32 = CPUCaches.passOutgrowsCache(bytes: 2 * input.count * MemoryLayout<Float>.stride) ? 1 : 0
      input.withUnsafeBufferPointer { src in
        output.withUnsafeMutableBufferPointer { dst in
          let source = src.baseAddress!, target = dst.baseAddress!
          Parallel.run(ranges.count) { part in
            for b in 0..<n {
              atr_transpose_columns(target + b * rows * columns, source + b * rows * columns, rows, columns,
                                    ranges[part].lowerBound, ranges[part].upperBound, stream)
            }
          }
        }
      }
      return output
    }
    var inStrides = [Int](repeating: 1, count: rank)
    for k in stride(from: rank - 2, through: 0, by: -1) { inStrides[k] = inStrides[k + 1] * inShape[k + 1] }
    let strides = order.map { inStrides[$0] }
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        // Odometer over the output, innermost axis in a tight loop.
        var index = [Int](repeating: 0, count: rank)
        let inner = outShape[rank - 1], innerStride = strides[rank - 1]
        var o = 0
        let outer = outShape.count == 0 ? 1 : input.count / max(inner, 1)
        for _ in 0..<outer {
          var base = 0
          for k in 0..<(rank - 1) { base += index[k] * strides[k] }
          for i in 0..<inner { dst[o + i] = src[base + i * innerStride] }
          o += inner
          advance(&index, within: outShape, axes: rank - 1)
        }
      }
    }
    return output
  }
}

/// Steps a row-major multi-index to the next element of `shape`, over its
/// first `axes` axes (all by default); wraps to zeros after the last.
@inline(__always)
func advance(_ index: inout [Int], within shape: [Int], axes: Int? = nil) {
  var k = (axes ?? shape.count) - 1
  while k >= 0 {
    index[k] += 1
    if index[k] < shape[k] { return }
    index[k] = 0
    k -= 1
  }
}
