import AtrousCore
import AtrousIO

extension NDArray {
  /// A `.npy` array as a network value: floating types become Float32,
  /// integer and boolean types Int64 (as the ONNX importer treats tensors).
  public init(_ array: NPYArray) {
    switch array.dtype {
    case .float16, .float32, .float64: self.init(shape: array.shape, floats: array.tensor())
    default: self.init(shape: array.shape, int64s: array.doubles.map { Int64($0) })
    }
  }
}

extension NPYArray {
  /// A network value as `.npy` stores it: float32 or int64, ONNX layout.
  public init(_ value: NDArray) {
    let plain = value.standard()
    switch plain.elements {
    case .float(let tensor): self.init(dtype: .float32, shape: plain.shape, bytes: tensor.withUnsafeBytes { Array($0) })
    case .int64(let values): self.init(shape: plain.shape, integers: values)
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
