import AtrousCore

/// Reading and writing image files by path.
public enum ImageFile {
  /// Decodes a PNG or JPEG file, recognised by its signature, straight
  /// from the file (its bytes are never held whole).
  /// Refuses, before decoding, an image whose pixels and their float32
  /// copy (which every command makes) would not fit `MemoryBudget.current`.
  /// - Throws: `FileError`, `PNGError` or `JPEGError`.
  public static func read(_ path: String, options: DecodeOptions = DecodeOptions()) throws -> Image {
    let reader = try ImageRowReader(path: path, options: options)
    try checkBudget(width: reader.width, height: reader.height, format: reader.pixelFormat, depth: reader.bitDepth, path: path)
    let image = try reader.readImage()
    return options.applyOrientation ? reader.orientation.apply(to: image) : image
  }

  /// Decodes PNG or JPEG bytes, recognised by their signature; `path` only
  /// names the source in errors. The memory budget applies as for `read`.
  public static func decode(_ bytes: [UInt8], path: String, options: DecodeOptions = DecodeOptions()) throws -> Image {
    let info = try self.info(bytes, path: path, options: options)
    try checkBudget(width: info.width, height: info.height, format: info.pixelFormat, depth: info.bitDepth, path: path)
    switch ImageFormat.detect(bytes) {
    case .png: return try PNGCodec.decode(bytes, options: options)
    case .jpeg: return try JPEGCodec.decode(bytes, options: options)
    case nil: throw FileError.unknownFormat(path: path, reason: "not a PNG or JPEG file")
    }
  }

  private static func checkBudget(width: Int, height: Int, format: Image.PixelFormat, depth: Image.BitDepth,
                                  path: String) throws {
    // At most 2^30 pixels (the decoders' limit): the product cannot overflow.
    try MemoryBudget.check(width * height * format.channels, of: depth.bytesPerSample + 4) {
      FileError.exceedsMemoryBudget(path: path, what: "decoding its \(width)x\(height) \(format.name) pixels to float32",
                                    bytes: $0, budget: $1)
    }
  }

  /// What a PNG or JPEG file declares, without decoding its pixels.
  public static func info(_ bytes: [UInt8], path: String, options: DecodeOptions = DecodeOptions()) throws -> ImageInfo {
    switch ImageFormat.detect(bytes) {
    case .png: return try PNGCodec.info(bytes, options: options)
    case .jpeg: return try JPEGCodec.info(bytes, options: options)
    case nil: throw FileError.unknownFormat(path: path, reason: "not a PNG or JPEG file")
    }
  }

  /// Encodes `image` in the given format and writes it atomically.
  /// - Parameters:
  ///   - quality: JPEG quality 1...100.
  ///   - compressionLevel: PNG zlib level 0...9.
  /// - Throws: `FileError`, `PNGError` or `JPEGError`.
  public static func write(_ image: Image, to path: String, format: ImageFormat,
                           quality: Int = JPEGCodec.defaultQuality,
                           compressionLevel: Int = PNGCodec.defaultCompressionLevel) throws {
    let bytes: [UInt8]
    switch format {
    case .png: bytes = try PNGCodec.encode(image, compressionLevel: compressionLevel)
    case .jpeg: bytes = try JPEGCodec.encode(image, quality: quality)
    }
    try AtomicFileWriter.write(bytes, to: path)
  }
}
