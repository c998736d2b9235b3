import AtrousCore
import AtrousFilters
import AtrousIO

/// Reads a 2-D kernel for `kernel:file=PATH`: a .npy array of shape
/// (rows, columns) or (n,), or a .csv file with one kernel row per line.
enum KernelFile {
  static func load(_ path: String) throws -> Kernel2D {
    let bytes = try FileIO.readAll(path)
    if bytes.starts(with: NPY.magicBytes) {
      let array = try NPY.decode(bytes)
      let values = array.tensor().scalars
      guard (array.shape.count == 2 || array.shape.count == 1), !values.isEmpty, values.allSatisfy(\.isFinite) else {
        throw FilterError.malformedKernel(reason: "\(path): expected a finite 1-D or 2-D array, got shape \(array.shape)")
      }
      let rows = array.shape.count == 2 ? array.shape[0] : 1
      return Kernel2D(rows: rows, columns: values.count / rows, values: values)
    }
    let text = String(decoding: bytes, as: UTF8.self)
    let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmed() }
      .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    do {
      return try FilterSpec.parseMatrix(lines.joined(separator: ";"))
    } catch FilterError.malformedKernel(let reason) {
      throw FilterError.malformedKernel(reason: "\(path): \(reason)")
    }
  }
}

