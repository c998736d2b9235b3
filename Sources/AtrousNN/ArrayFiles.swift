import AtrousCore
import AtrousIO

extension NDArray {
  /// A `.npy` array as a network value of the same element type.
  public init(_ array: NPYArray) {
    let dtype = DType(array.dtype)
    if dtype.isFloatingPoint {
      self.init(shape: array.shape, floats: array.tensor(), dtype: dtype)
    } else {
      self.init(shape: array.shape, int64s: array.int64s, dtype: dtype)
    }
  }
}

extension DType {
  /// The network type of a `.npy` dtype.
  public init(_ type: NPYDType) {
    switch type {
    case .float16: self = .float16
    case .float32: self = .float32
    case .float64: self = .float64
    case .int8: self = .int8
    case .int16: self = .int16
    case .int32: self = .int32
    case .int64: self = .int64
    case .uint8: self = .uint8
    case .uint16: self = .uint16
    case .uint32: self = .uint32
    case .uint64: self = .uint64
    case .bool: self = .bool
    }
  }

  /// The `.npy` dtype that stores this type.
  public var npy: NPYDType {
    switch self {
    case .float16: .float16
    case .float32: .float32
    case .float64: .float64
    case .int8: .int8
    case .int16: .int16
    case .int32: .int32
    case .int64: .int64
    case .uint8: .uint8
    case .uint16: .uint16
    case .uint32: .uint32
    case .uint64: .uint64
    case .bool: .bool
    }
  }
}

extension NPYArray {
  /// A network value as `.npy` stores it: its own element type, ONNX layout.
  public init(_ value: NDArray) {
    let plain = value.standard()
    let shape = plain.shape
    switch plain.elements {
    case .float(let tensor):
      switch value.dtype {
      case .float16: self.init(float16: tensor.reshaped(shape))
      case .float64:
        self.init(dtype: .float64, shape: shape, bytes: tensor.scalars.map(Double.init).withUnsafeBytes { Array($0) })
      default: self.init(dtype: .float32, shape: shape, bytes: tensor.withUnsafeBytes { Array($0) })
      }
    case .int64(let v):
      switch value.dtype {
      case .int8: self.init(shape: shape, integers: v.map { Int8(truncatingIfNeeded: $0) })
      case .int16: self.init(shape: shape, integers: v.map { Int16(truncatingIfNeeded: $0) })
      case .int32: self.init(shape: shape, integers: v.map { Int32(truncatingIfNeeded: $0) })
      case .uint8: self.init(shape: shape, integers: v.map { UInt8(truncatingIfNeeded: $0) })
      case .uint16: self.init(shape: shape, integers: v.map { UInt16(truncatingIfNeeded: $0) })
      case .uint32: self.init(shape: shape, integers: v.map { UInt32(truncatingIfNeeded: $0) })
      case .uint64: self.init(shape: shape, integers: v.map { UInt64(bitPattern: $0) })
      case .bool: self.init(dtype: .bool, shape: shape, bytes: v.map { $0 != 0 ? 1 : 0 })
      default: self.init(shape: shape, integers: v)
      }
    }
  }
}

/// Weights for `NetworkBuilder`, by name (`conv1.weight`, `conv1.bias`, ...).
public enum NetworkWeights {
  /// Reads a `.npz` archive (member names are weight names) or a folder of
  /// `<name>.npy` files.
  /// - Throws: `FileError`, `NPYError`.
  public static func load(_ path: String) throws -> [String: NDArray] {
    if FileIO.isDirectory(path) {
      var weights: [String: NDArray] = [:]
      for name in try FileIO.listFolder(path) where name.hasSuffix(".npy") {
        weights[String(name.dropLast(4))] = NDArray(try NPY.read(path + "/" + name))
      }
      return weights
    }
    return try NPZ.read(path).mapValues(NDArray.init)
  }
}
