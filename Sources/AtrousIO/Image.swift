import AtrousCore

/// A decoded raster: interleaved samples, 8 or 16 bits each, rows top to
/// bottom with no padding. 16-bit samples are in host byte order.
///
/// Layout of the samples: `(H, W, C)` with C = 1 gray, 2 gray+alpha,
/// 3 RGB, 4 RGBA. Copies share storage until one is written.
public struct Image: Sendable {
  /// What the channels of a pixel mean.
  public enum PixelFormat: Int, Sendable, CaseIterable {
    case gray = 1, grayAlpha = 2, rgb = 3, rgba = 4

    public var channels: Int { rawValue }
    public var hasAlpha: Bool { self == .grayAlpha || self == .rgba }
    public var name: String {
      switch self {
      case .gray: "gray"
      case .grayAlpha: "gray+alpha"
      case .rgb: "RGB"
      case .rgba: "RGBA"
      }
    }

    /// The format with `channels` channels, or nil outside 1...4.
    public init?(channels: Int) { self.init(rawValue: channels) }
  }

  /// Bits per sample.
  public enum BitDepth: Int, Sendable, CaseIterable {
    case eight = 8, sixteen = 16

    public var bytesPerSample: Int { rawValue / 8 }
    /// The largest sample value: 255 or 65535.
    public var maxValue: Int { (1 << rawValue) - 1 }
  }

  public let width: Int
  public let height: Int
  public let format: PixelFormat
  public let bitDepth: BitDepth
  private var storage: AlignedStorage

  public var channels: Int { format.channels }
  /// Samples in the image: width * height * channels.
  public var sampleCount: Int { width * height * format.channels }
  public var byteCount: Int { sampleCount * bitDepth.bytesPerSample }

  /// A black (all-zero) image.
  public init(width: Int, height: Int, format: PixelFormat, bitDepth: BitDepth) {
    precondition(width >= 0 && height >= 0, "negative image size \(width)x\(height)")
    self.width = width
    self.height = height
    self.format = format
    self.bitDepth = bitDepth
    storage = AlignedStorage(byteCount: width * height * format.channels * bitDepth.bytesPerSample)
  }

  /// An 8-bit image from samples in `(H, W, C)` order.
  public init(width: Int, height: Int, format: PixelFormat, samples: [UInt8]) {
    precondition(samples.count == width * height * format.channels,
                 "\(samples.count) samples do not fill \(width)x\(height)x\(format.channels)")
    self.init(width: width, height: height, format: format, bitDepth: .eight)
    samples.withUnsafeBytes { storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
  }

  /// A 16-bit image from samples in `(H, W, C)` order.
  public init(width: Int, height: Int, format: PixelFormat, samples: [UInt16]) {
    precondition(samples.count == width * height * format.channels,
                 "\(samples.count) samples do not fill \(width)x\(height)x\(format.channels)")
    self.init(width: width, height: height, format: format, bitDepth: .sixteen)
    samples.withUnsafeBytes { storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
  }

  /// Wraps a decoder's buffer without copying it.
  init(width: Int, height: Int, format: PixelFormat, bitDepth: BitDepth, adopting storage: AlignedStorage) {
    precondition(storage.byteCount >= width * height * format.channels * bitDepth.bytesPerSample)
    self.width = width
    self.height = height
    self.format = format
    self.bitDepth = bitDepth
    self.storage = storage
  }

  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try body(UnsafeRawBufferPointer(start: storage.pointer, count: byteCount))
  }

  public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
    if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
    return try body(UnsafeMutableRawBufferPointer(start: storage.pointer, count: byteCount))
  }

  /// One sample as an integer (0...255 or 0...65535).
  public subscript(x: Int, y: Int, channel: Int) -> Int {
    precondition(x >= 0 && x < width && y >= 0 && y < height && channel >= 0 && channel < channels,
                 "sample (\(x), \(y), \(channel)) outside \(width)x\(height)x\(channels)")
    let index = (y * width + x) * channels + channel
    switch bitDepth {
    case .eight: return Int(storage.pointer.load(fromByteOffset: index, as: UInt8.self))
    case .sixteen: return Int(storage.pointer.load(fromByteOffset: index * 2, as: UInt16.self))
    }
  }

  /// Every sample widened to `Int`, in `(H, W, C)` order.
  public var samples: [Int] {
    withUnsafeBytes { raw in
      switch bitDepth {
      case .eight: return raw.bindMemory(to: UInt8.self).map(Int.init)
      case .sixteen: return raw.bindMemory(to: UInt16.self).map(Int.init)
      }
    }
  }
}

extension Image: Equatable {
  /// Same size, format, depth and samples.
  public static func == (lhs: Image, rhs: Image) -> Bool {
    guard lhs.width == rhs.width, lhs.height == rhs.height, lhs.format == rhs.format,
      lhs.bitDepth == rhs.bitDepth
    else { return false }
    return lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in a.elementsEqual(b) } }
  }
}
