import AtrousCore

/// How stored sample values map to Float32 values and back.
public enum PixelScale: Sendable, Equatable {
  /// 0...1: samples divided by 255 (8-bit) or 65535 (16-bit).
  case unit
  /// 0...255: 8-bit samples as stored, 16-bit divided by 257.
  case byte
  /// Stored samples multiplied by the factor (1 keeps them as stored).
  case factor(Float)

  /// Float value of a stored sample of 1.
  public func multiplier(for depth: Image.BitDepth) -> Float {
    switch self {
    case .unit: 1 / Float(depth.maxValue)
    case .byte: depth == .eight ? 1 : 1 / 257
    case .factor(let factor): factor
    }
  }
}

/// Order of the colour channels in a tensor (images are always RGB).
public enum ChannelOrder: Sendable, Equatable {
  case rgb
  /// OpenCV's order: blue, green, red (alpha stays last).
  case bgr
}

/// Why an array cannot become an image.
public enum ImageConversionError: Error, Equatable, CustomStringConvertible {
  /// Images are (H, W) or (H, W, C) with C in 1...4.
  case unsupportedShape([Int])
  /// A per-channel setting (mean, std) with a count that fits neither the
  /// channels nor one shared value.
  case channelMismatch(what: String, given: Int, channels: Int)
  /// The image brought to `height` x `width` as float32 would not fit the
  /// memory budget.
  case exceedsMemoryBudget(height: Int, width: Int, channels: Int, bytes: Int, budget: MemoryBudget)

  public var description: String {
    switch self {
    case .exceedsMemoryBudget(let height, let width, let channels, let bytes, let budget):
      "the image brought to \(width)x\(height)x\(channels) as float32 would take \(MemoryBudget.format(bytes)), more than \(budget)"
    case .unsupportedShape(let shape):
      "shape \(NPY.tupleText(shape)) is not an image: expected (H, W) or (H, W, C) with C = 1, 2, 3 or 4"
    case .channelMismatch(let what, let given, let channels):
      "\(what) has \(given) values for \(channels) channels"
    }
  }
}

/// BT.601 luma weights as OpenCV's cvtColor uses them: 15-bit fixed point
/// for 8- and 16-bit images, the float weights for float ones.
enum Luma {
  static let red = 9798, green = 19235, blue = 3735, shift = 15
  static let redFloat: Float = 0.299, greenFloat: Float = 0.587, blueFloat: Float = 0.114
}

extension Tensor {
  /// An `(H, W, C)` Float32 tensor from an image.
  /// - Parameters:
  ///   - scale: value of the samples; `.unit` (0...1) by default.
  ///   - order: `.bgr` swaps red and blue, as OpenCV stores colour.
  ///   - gray: one channel of BT.601 luma (alpha dropped), computed on the
  ///     scaled float values as `cv2.cvtColor` does for float images.
  public init(_ image: Image, scale: PixelScale = .unit, order: ChannelOrder = .rgb, gray: Bool = false) {
    let multiplier = scale.multiplier(for: image.bitDepth)
    let colour = image.format == .rgb || image.format == .rgba
    let inChannels = image.channels
    let outChannels = gray ? 1 : inChannels
    let pixels = image.width * image.height
    var tensor = Tensor(height: image.height, width: image.width, channels: outChannels)
    tensor.withUnsafeMutableBufferPointer { out in
      image.withUnsafeBytes { raw in
        func convert<T: BinaryInteger>(_ samples: UnsafeBufferPointer<T>) {
          if gray {
            for p in 0..<pixels {
              let base = p * inChannels
              if colour {
                let r = Float(samples[base]), g = Float(samples[base + 1]), b = Float(samples[base + 2])
                out[p] = (r * multiplier) * Luma.redFloat + (g * multiplier) * Luma.greenFloat
                  + (b * multiplier) * Luma.blueFloat
              } else {
                out[p] = Float(samples[base]) * multiplier
              }
            }
          } else {
            for i in 0..<(pixels * inChannels) { out[i] = Float(samples[i]) * multiplier }
            if order == .bgr && colour {
              for p in 0..<pixels { out.swapAt(p * inChannels, p * inChannels + 2) }
            }
          }
        }
        switch image.bitDepth {
        case .eight: convert(raw.bindMemory(to: UInt8.self))
        case .sixteen: convert(raw.bindMemory(to: UInt16.self))
        }
      }
    }
    self = tensor
  }
}

extension Image {
  /// An image from an `(H, W, C)` tensor (C = 1...4) or an `(H, W)` one.
  /// Values are divided by the scale's multiplier, rounded half to even and
  /// clamped to the depth's range, as OpenCV's `saturate_cast` does; NaN
  /// becomes 0.
  /// - Throws: `ImageConversionError.unsupportedShape`.
  public init(_ tensor: Tensor, bitDepth: BitDepth = .eight, scale: PixelScale = .unit,
              order: ChannelOrder = .rgb) throws {
    let shape = tensor.shape
    guard shape.count == 2 || shape.count == 3, let format = PixelFormat(channels: shape.count == 2 ? 1 : shape[2])
    else { throw ImageConversionError.unsupportedShape(shape) }
    let height = shape[0], width = shape[1]
    self.init(width: width, height: height, format: format, bitDepth: bitDepth)
    let inverse = 1 / scale.multiplier(for: bitDepth)
    let channels = format.channels
    let swap = order == .bgr && channels >= 3
    let maxValue = Float(bitDepth.maxValue)
    withUnsafeMutableBytes { raw in
      tensor.withUnsafeBufferPointer { values in
        func fill<T: BinaryInteger>(_ out: UnsafeMutableBufferPointer<T>) {
          for i in 0..<values.count {
            var c = i % channels
            if swap && c != 3 { c = 2 - c }
            let v = (values[i - i % channels + c] * inverse).rounded(.toNearestOrEven)
            out[i] = T(v >= 0 ? min(v, maxValue) : 0)
          }
        }
        switch bitDepth {
        case .eight: fill(raw.bindMemory(to: UInt8.self))
        case .sixteen: fill(raw.bindMemory(to: UInt16.self))
        }
      }
    }
  }

  /// An image from an `.npy` array of shape (H, W) or (H, W, C), C = 1...4.
  /// uint8 and uint16 arrays keep their values; other types are rounded half
  /// to even and clamped into `bitDepth` (8 bits unless given), as
  /// `cv2.imwrite` does with them. Bool becomes 0 and 255.
  /// - Throws: `ImageConversionError.unsupportedShape`.
  public init(_ array: NPYArray, bitDepth: BitDepth? = nil) throws {
    let shape = array.shape
    guard shape.count == 2 || shape.count == 3, PixelFormat(channels: shape.count == 2 ? 1 : shape[2]) != nil else {
      throw ImageConversionError.unsupportedShape(shape)
    }
    let stored: BitDepth? = array.dtype == .uint8 ? .eight : array.dtype == .uint16 ? .sixteen : nil
    let depth = bitDepth ?? stored ?? .eight
    if let stored, stored == depth {
      let format = PixelFormat(channels: shape.count == 2 ? 1 : shape[2])!
      self.init(width: shape[1], height: shape[0], format: format, bitDepth: depth)
      withUnsafeMutableBytes { target in
        array.bytes.withUnsafeBytes { target.copyMemory(from: $0) }
      }
      return
    }
    var tensor = array.tensor()
    if array.dtype == .bool {
      tensor.withUnsafeMutableBufferPointer { values in
        for i in values.indices { values[i] *= Float(depth.maxValue) }
      }
    } else if let stored {
      // uint8 <-> uint16: rescale as convert(toBitDepth:) does.
      let ratio: Float = stored == .eight ? 257 : 1 / 257
      tensor.withUnsafeMutableBufferPointer { values in
        for i in values.indices { values[i] *= ratio }
      }
    }
    try self.init(tensor, bitDepth: depth, scale: .factor(1))
  }

  /// The same pixels at another depth: 8 to 16 multiplies by 257 (255 maps
  /// to 65535); 16 to 8 divides by 257 and rounds.
  public func converted(to depth: BitDepth) -> Image {
    if depth == bitDepth { return self }
    var result = Image(width: width, height: height, format: format, bitDepth: depth)
    withUnsafeBytes { raw in
      result.withUnsafeMutableBytes { target in
        if depth == .sixteen {
          let input = raw.bindMemory(to: UInt8.self), output = target.bindMemory(to: UInt16.self)
          for i in 0..<sampleCount { output[i] = UInt16(input[i]) &* 257 }
        } else {
          let input = raw.bindMemory(to: UInt16.self), output = target.bindMemory(to: UInt8.self)
          // 257 is odd, so v / 257 never ends in exactly one half.
          for i in 0..<sampleCount { output[i] = UInt8((UInt32(input[i]) + 128) / 257) }
        }
      }
    }
    return result
  }

  /// One channel of BT.601 luma with OpenCV's fixed-point weights (the same
  /// values `cv2.cvtColor(..., COLOR_RGB2GRAY)` gives); alpha is dropped.
  public func grayscale() -> Image {
    if format == .gray { return self }
    var result = Image(width: width, height: height, format: .gray, bitDepth: bitDepth)
    let channels = self.channels
    let colour = format == .rgb || format == .rgba
    let pixels = width * height
    withUnsafeBytes { raw in
      result.withUnsafeMutableBytes { target in
        func fill<T: FixedWidthInteger>(_ input: UnsafeBufferPointer<T>, _ output: UnsafeMutableBufferPointer<T>) {
          for p in 0..<pixels {
            let base = p * channels
            if colour {
              let y = Int(input[base]) * Luma.red + Int(input[base + 1]) * Luma.green
                + Int(input[base + 2]) * Luma.blue
              output[p] = T((y + (1 << (Luma.shift - 1))) >> Luma.shift)
            } else {
              output[p] = input[base]
            }
          }
        }
        switch bitDepth {
        case .eight: fill(raw.bindMemory(to: UInt8.self), target.bindMemory(to: UInt8.self))
        case .sixteen: fill(raw.bindMemory(to: UInt16.self), target.bindMemory(to: UInt16.self))
        }
      }
    }
    return result
  }

  /// The colour or gray channels without alpha (an image without alpha is
  /// returned as it is).
  public func droppingAlpha() -> Image {
    guard format.hasAlpha else { return self }
    let outFormat: PixelFormat = format == .rgba ? .rgb : .gray
    var result = Image(width: width, height: height, format: outFormat, bitDepth: bitDepth)
    let inBytes = channels * bitDepth.bytesPerSample, outBytes = outFormat.channels * bitDepth.bytesPerSample
    withUnsafeBytes { raw in
      result.withUnsafeMutableBytes { target in
        for p in 0..<(width * height) {
          target.baseAddress!.advanced(by: p * outBytes)
            .copyMemory(from: raw.baseAddress!.advanced(by: p * inBytes), byteCount: outBytes)
        }
      }
    }
    return result
  }
}
