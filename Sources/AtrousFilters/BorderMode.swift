/// How samples outside the image are made up, as OpenCV's border types.
///
/// For a line `abcdefgh`:
/// - `constant(v)`: `vvvv|abcdefgh|vvvv`
/// - `replicate`:   `aaaa|abcdefgh|hhhh`
/// - `reflect`:     `dcba|abcdefgh|hgfe`
/// - `reflect101`:  `edcb|abcdefgh|gfed` (the default, OpenCV's BORDER_DEFAULT)
/// - `wrap`:        `efgh|abcdefgh|abcd`
public enum BorderMode: Sendable, Equatable, CustomStringConvertible {
  case constant(Float)
  case replicate
  case reflect
  case reflect101
  case wrap

  /// The index of the sample that stands at position `p` of a line of
  /// `count` samples, or nil for a constant border outside the line. Far
  /// positions reflect repeatedly, as OpenCV's `borderInterpolate` does;
  /// reflection is periodic (2 count, or 2 count - 2 for reflect101), so
  /// this takes constant time however far `p` is.
  @inline(__always)
  public func index(_ p: Int, count: Int) -> Int? {
    if p >= 0 && p < count { return p }
    switch self {
    case .constant: return nil
    case .replicate: return p < 0 ? 0 : count - 1
    case .reflect, .reflect101:
      if count == 1 { return 0 }
      let period = self == .reflect101 ? 2 * count - 2 : 2 * count
      var q = p % period
      if q < 0 { q += period }
      return q < count ? q : period - q - (self == .reflect101 ? 0 : 1)
    case .wrap:
      let r = p % count
      return r < 0 ? r + count : r
    }
  }

  /// The smallest range of samples that positions `positions` read (nil
  /// when they read none, only a constant border). Takes time in the
  /// positions outside the line, at most two periods of them.
  func indices(covering positions: ClosedRange<Int>, count: Int) -> Range<Int>? {
    var low = Int.max, high = Int.min
    let inside = (max(positions.lowerBound, 0), min(positions.upperBound, count - 1))
    if inside.0 <= inside.1 { (low, high) = inside }
    if case .constant = self { return low <= high ? low..<(high + 1) : nil }
    let outside = [(positions.lowerBound, min(positions.upperBound, -1)),
                   (max(positions.lowerBound, count), positions.upperBound)]
    for (first, last) in outside where first <= last {
      // Two periods of a reflection (one of wrap) visit every sample.
      if last - first >= 2 * count { return 0..<count }
      for p in first...last {
        let i = index(p, count: count)!
        low = min(low, i)
        high = max(high, i)
      }
    }
    return low <= high ? low..<(high + 1) : nil
  }

  /// The constant value (0 for the other modes).
  var fillValue: Float {
    if case .constant(let value) = self { return value }
    return 0
  }

  public var description: String {
    switch self {
    case .constant(let value): "constant(\(value))"
    case .replicate: "replicate"
    case .reflect: "reflect"
    case .reflect101: "reflect101"
    case .wrap: "wrap"
    }
  }
}
