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

extension Image {
  /// An image from an `(H, W, C)` tensor (C = 1...4) with a value mapping.
  /// - Parameters:
  ///   - rawChannel: a channel (alpha) stored rounded and saturated as it
  ///     is, outside the mapping and the normalisation range.
  /// - Throws: `ImageConversionError.unsupportedShape`.
  public init(mapping tensor: Tensor, bitDepth: BitDepth, mapping: ValueMapping, scale: Float = 1, offset: Float = 0,
              rawChannel: Int? = nil) throws {
    let shape = tensor.shape
    guard shape.count == 3, let format = PixelFormat(channels: shape[2]) else {
      throw ImageConversionError.unsupportedShape(shape)
    }
    let channels = shape[2]
    var a = scale, b = offset
    if mapping == .normalize {
      var low = Float.infinity, high = -Float.infinity
      tensor.withUnsafeBufferPointer { values in
        for i in 0..<values.count where i % channels != rawChannel ?? -1 {
          let v = values[i] * scale + offset
          if v < low { low = v }
          if v > high { high = v }
        }
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
            out[i] = T(v >= 0 ? Swift.min(v, maxValue) : 0)  // NaN fails v >= 0: stored as 0
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
