import AtrousCore

/// How float values (filter responses, feature maps) become 8- or 16-bit
/// samples. Each value is first taken as `value * scale + offset`.
public enum ValueMapping: String, Sendable, CaseIterable {
  /// |v|, rounded and saturated: `cv2.convertScaleAbs`, OpenCV's way to
  /// show signed responses such as derivatives. Non-negative values pass
  /// unchanged, so it is also right for blurs and magnitudes.
  case abs
  /// v rounded and saturated, as `cv2.imwrite` stores a float array.
  case clamp
  /// Stretched so the smallest value becomes 0 and the largest the
  /// depth's maximum (`cv2.normalize` with NORM_MINMAX, over all channels).
  case normalize
}

extension ValueMapping {
  /// The smallest and largest of `values * scale + offset`, over every
  /// channel but `rawChannel` of `(..., channels)` values; combine bands
  /// with `merged`. NaN is skipped; (inf, -inf) when nothing is left.
  public static func range(of values: UnsafeBufferPointer<Float>, channels: Int, scale: Float = 1, offset: Float = 0,
                           rawChannel: Int? = nil) -> (low: Float, high: Float) {
    var low = Float.infinity, high = -Float.infinity
    for i in 0..<values.count where i % channels != rawChannel ?? -1 {
      let v = values[i] * scale + offset
      if v < low { low = v }
      if v > high { high = v }
    }
    return (low, high)
  }
}

extension Image {
  /// An image from an `(H, W, C)` tensor (C = 1...4) with a value mapping.
  /// - Parameters:
  ///   - rawChannel: a channel (alpha) stored rounded and saturated as it
  ///     is, outside the mapping and the normalisation range.
  ///   - range: for `.normalize`, the smallest and largest value (after
  ///     scale and offset) of the whole image this tensor is a band of, as
  ///     `ValueMapping.range` gives it; the tensor's own when nil.
  /// - Throws: `ImageConversionError.unsupportedShape`.
  public init(mapping tensor: Tensor, bitDepth: BitDepth, mapping: ValueMapping, scale: Float = 1, offset: Float = 0,
              rawChannel: Int? = nil, range: (low: Float, high: Float)? = nil) throws {
    let shape = tensor.shape
    guard shape.count == 3, let format = PixelFormat(channels: shape[2]) else {
      throw ImageConversionError.unsupportedShape(shape)
    }
    let channels = shape[2]
    var a = scale, b = offset
    if mapping == .normalize {
      let (low, high) = range ?? tensor.withUnsafeBufferPointer {
        ValueMapping.range(of: $0, channels: channels, scale: scale, offset: offset, rawChannel: rawChannel)
      }
      let span = high - low
      let factor = span > 0 && span.isFinite ? Float(bitDepth.maxValue) / span : 0
      a = scale * factor
      b = (offset - low) * factor
    }
    let maxValue = Float(bitDepth.maxValue)
    let takeAbs = mapping == .abs
    self.init(width: shape[1], height: shape[0], format: format, bitDepth: bitDepth)
    withUnsafeMutableBytes { raw in
      tensor.withUnsafeBufferPointer { values in
        func fill<T: BinaryInteger>(_ out: UnsafeMutableBufferPointer<T>) {
          for i in 0..<values.count {
            var v: Float
            if i % channels == rawChannel ?? -1 {
              v = values[i]
            } else {
              v = values[i] * a + b
              if takeAbs { v = Swift.abs(v) }
            }
            v = v.rounded(.toNearestOrEven)
            // In range once clamped, so the plain conversion (the checked
            // T(v) took a fifth of a large filter's time).
            out[i] = T(truncatingIfNeeded: Int32(v >= 0 ? Swift.min(v, maxValue) : 0))  // NaN fails v >= 0: stored as 0
          }
        }
        switch bitDepth {
        case .eight: fill(raw.bindMemory(to: UInt8.self))
        case .sixteen: fill(raw.bindMemory(to: UInt16.self))
        }
      }
    }
  }
}
