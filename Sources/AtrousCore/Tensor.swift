/// A dense Float32 array in C (row-major) order, in 64-byte aligned storage.
///
/// Images and feature maps are rank 3, `(H, W, C)`: the channel vector of a
/// pixel is contiguous (channels-last). Other ranks exist for what models
/// compute along the way (vectors, matrices, scalars). Copies share storage
/// until one of them is written (copy on write).
public struct Tensor: Sendable {
  /// The extent of each axis; empty for a scalar.
  public private(set) var shape: [Int]
  private var storage: AlignedStorage

  /// Number of elements: the product of `shape` (1 for a scalar).
  public var count: Int { shape.reduce(1, *) }
  public var rank: Int { shape.count }

  /// A tensor of the given shape with every element `value`.
  public init(shape: [Int], repeating value: Float = 0) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
    self.shape = shape
    let count = shape.reduce(1, *)
    storage = AlignedStorage(byteCount: count * MemoryLayout<Float>.stride, zeroed: value == 0)
    if value != 0 {
      storage.pointer.bindMemory(to: Float.self, capacity: count).initialize(repeating: value, count: count)
    }
  }

  /// A tensor whose elements are not initialised: for outputs that are
  /// written whole, which saves a pass over memory.
  /// With `apartFrom`, its elements are placed as `AlignedStorage`'s
  /// `apartFrom` says: for an output written while that tensor is read.
  public static func uninitialized(shape: [Int], apartFrom other: Tensor? = nil) -> Tensor {
    let byteCount = shape.reduce(1, *) * MemoryLayout<Float>.stride
    return Tensor(shape: shape, storage: AlignedStorage(byteCount: byteCount, zeroed: false,
                                                        apartFrom: other.map { UnsafeRawPointer($0.storage.pointer) }))
  }

  private init(shape: [Int], storage: AlignedStorage) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in shape \(shape)")
    self.shape = shape
    self.storage = storage
  }

  /// A tensor of the given shape holding `values` in C order.
  public init(shape: [Int], values: [Float]) {
    precondition(shape.reduce(1, *) == values.count,
                 "\(values.count) values do not fill shape \(shape)")
    self = .uninitialized(shape: shape)  // every element is written next
    withUnsafeMutableBufferPointer { target in
      _ = target.initialize(from: values)
    }
  }

  /// An `(H, W, C)` tensor of zeros.
  public init(height: Int, width: Int, channels: Int) {
    self.init(shape: [height, width, channels])
  }

  /// Height of an `(H, W, C)` tensor.
  public var height: Int { precondition(rank == 3, "height of a rank-\(rank) tensor"); return shape[0] }
  /// Width of an `(H, W, C)` tensor.
  public var width: Int { precondition(rank == 3, "width of a rank-\(rank) tensor"); return shape[1] }
  /// Channels of an `(H, W, C)` tensor.
  public var channels: Int { precondition(rank == 3, "channels of a rank-\(rank) tensor"); return shape[2] }

  public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
    let base = storage.pointer.assumingMemoryBound(to: Float.self)
    return try body(UnsafeBufferPointer(start: base, count: count))
  }

  public mutating func withUnsafeMutableBufferPointer<R>(
    _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
  ) rethrows -> R {
    if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    let base = storage.pointer.assumingMemoryBound(to: Float.self)
    return try body(UnsafeMutableBufferPointer(start: base, count: count))
  }

  /// True when no other tensor shares this one's storage, so writing it
  /// will not copy.
  public var isUniquelyReferenced: Bool {
    mutating get { isKnownUniquelyReferenced(&storage) }
  }

  /// The raw little-endian bytes of the elements, as `.npy` stores them.
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try body(UnsafeRawBufferPointer(start: storage.pointer, count: count * MemoryLayout<Float>.stride))
  }

  /// All elements in C order.
  public var scalars: [Float] { withUnsafeBufferPointer { Array($0) } }

  /// Element of an `(H, W, C)` tensor.
  public subscript(y: Int, x: Int, c: Int) -> Float {
    get {
      precondition(rank == 3 && y >= 0 && y < shape[0] && x >= 0 && x < shape[1] && c >= 0 && c < shape[2],
                   "index (\(y), \(x), \(c)) outside \(shape)")
      return withUnsafeBufferPointer { $0[(y * shape[1] + x) * shape[2] + c] }
    }
    set {
      precondition(rank == 3 && y >= 0 && y < shape[0] && x >= 0 && x < shape[1] && c >= 0 && c < shape[2],
                   "index (\(y), \(x), \(c)) outside \(shape)")
      let index = (y * shape[1] + x) * shape[2] + c
      withUnsafeMutableBufferPointer { $0[index] = newValue }
    }
  }

  /// The same elements viewed with another shape of equal element count.
  public func reshaped(_ newShape: [Int]) -> Tensor {
    precondition(newShape.reduce(1, *) == count, "cannot view \(shape) as \(newShape)")
    var result = self
    result.shape = newShape
    return result
  }
}

extension Tensor: Equatable {
  /// Exact equality of shape and every element (NaN is unequal to itself).
  public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
    guard lhs.shape == rhs.shape else { return false }
    return lhs.withUnsafeBufferPointer { a in
      rhs.withUnsafeBufferPointer { b in
        for i in 0..<a.count where a[i] != b[i] { return false }
        return true
      }
    }
  }
}

extension Optional where Wrapped == Tensor {
  /// `body` with the tensor's first element, or nil when there is no
  /// tensor: for kernels that take an optional operand (a residual to add).
  public func withUnsafePointer<R>(_ body: (UnsafePointer<Float>?) throws -> R) rethrows -> R {
    guard let tensor = self else { return try body(nil) }
    return try tensor.withUnsafeBufferPointer { try body($0.baseAddress) }
  }
}
