/// Maps values in 0...1 to colours for feature-map pictures. viridis,
/// magma and inferno are matplotlib's (perceptually uniform), sampled at
/// 256 levels; gray keeps one channel.
public enum Colormap: String, Sendable, CaseIterable {
  case gray, viridis, magma, inferno

  /// Channels of a rendered pixel: 1 for gray, 3 otherwise.
  public var channels: Int { self == .gray ? 1 : 3 }

  var table: [UInt8] {
    switch self {
    case .gray: (0..<256).flatMap { [UInt8($0), UInt8($0), UInt8($0)] }
    case .viridis: Self.viridisTable
    case .magma: Self.magmaTable
    case .inferno: Self.infernoTable
    }
  }
}

/// A value range mapped to 0...1: per channel (min-max) by default, or
/// one range shared by all channels of a layer.
public struct ValueRange: Sendable, Equatable {
  public var low: Float
  public var high: Float

  public init(low: Float, high: Float) {
    self.low = low
    self.high = high
  }

  /// The range of `count` values `stride` apart (NaN ignored).
  static func of(_ values: UnsafePointer<Float>, count: Int, stride: Int) -> ValueRange {
    var low = Float.infinity, high = -Float.infinity
    for i in 0..<count {
      let v = values[i * stride]
      if v < low { low = v }
      if v > high { high = v }
    }
    return low <= high ? ValueRange(low: low, high: high) : ValueRange(low: 0, high: 0)
  }

  /// `v` mapped to 0...1; a flat range maps everything to 0.
  @inline(__always) func unit(_ v: Float) -> Float {
    let span = high - low
    guard span > 0, !v.isNaN else { return 0 }
    return min(max((v - low) / span, 0), 1)
  }

  func union(_ other: ValueRange) -> ValueRange { ValueRange(low: min(low, other.low), high: max(high, other.high)) }
}
