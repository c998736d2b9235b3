import AtrousIO

/// Nil when two arrays are identical; otherwise a short account of the
/// first difference (rather than printing every element of both).
public func difference(_ actual: NPYArray, _ expected: NPYArray) -> String? {
  if actual.dtype != expected.dtype { return "dtype \(actual.dtype) where \(expected.dtype) was expected" }
  if actual.shape != expected.shape { return "shape \(actual.shape) where \(expected.shape) was expected" }
  if actual.bytes == expected.bytes { return nil }
  let a = actual.doubles, b = expected.doubles
  let mismatches = zip(a, b).filter { $0 != $1 }.count
  let first = a.indices.first { a[$0] != b[$0] } ?? 0
  return "\(mismatches) of \(a.count) elements differ; first at \(first): \(a[first]) vs \(b[first])"
}
