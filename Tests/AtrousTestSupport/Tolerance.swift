import AtrousCore

/// Element-wise comparison of float results with an absolute and relative
/// tolerance, as `numpy.allclose` does: |a - b| <= atol + rtol * |b|.
public struct Closeness: CustomStringConvertible {
  public var worstIndex: Int?
  public var worstExcess: Float = 0
  public var maxAbsoluteError: Float = 0
  public var shapesMatch = true

  public var isClose: Bool { shapesMatch && worstIndex == nil }

  public var description: String {
    guard shapesMatch else { return "shapes differ" }
    if let worstIndex { return "element \(worstIndex) off by \(maxAbsoluteError) (over tolerance by \(worstExcess))" }
    return "close (max abs error \(maxAbsoluteError))"
  }
}

public func closeness(_ actual: [Float], _ expected: [Float], rtol: Float = 1e-5, atol: Float = 1e-6) -> Closeness {
  var result = Closeness()
  guard actual.count == expected.count else {
    result.shapesMatch = false
    return result
  }
  for i in actual.indices {
    let error = abs(actual[i] - expected[i])
    result.maxAbsoluteError = max(result.maxAbsoluteError, error)
    let excess = error - (atol + rtol * abs(expected[i]))
    if excess > 0 || error.isNaN, excess > result.worstExcess || result.worstIndex == nil {
      result.worstIndex = i
      result.worstExcess = excess
    }
  }
  return result
}

public func closeness(_ actual: Tensor, _ expected: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6) -> Closeness {
  guard actual.shape == expected.shape else {
    var result = Closeness()
    result.shapesMatch = false
    return result
  }
  return closeness(actual.scalars, expected.scalars, rtol: rtol, atol: atol)
}
