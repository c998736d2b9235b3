/// PNG decode and encode through libpng.
///
/// Decoding expands to 8-bit gray, gray+alpha, RGB or RGBA, or keeps 16
/// bits: palettes become RGB (RGBA when the file has tRNS), gray of 1, 2 or 4
/// bits is scaled to 8 bits by bit replication as libpng's expand does, and
/// a tRNS colour key becomes an alpha channel. Gamma is not applied.
public enum PNGCodec {
  /// zlib level used when none is given: 1, as OpenCV writes. Level 6
  /// (zlib's default) took 4.9 s to write a 4000x3000 RGB Sobel picture
  /// against 1.2 s at level 1, for a file 15% smaller (12.0 against
  /// 14.2 MB; AMD EPYC).
  public static let defaultCompressionLevel = 1

  /// Decodes a whole PNG file held in memory.
  /// - Throws: `PNGError`.
  public static func decode(_ bytes: [UInt8], options: DecodeOptions = DecodeOptions()) throws -> Image {
    try ImageRowReader.withBytes(bytes, format: .png, path: "", options: options) { try $0.readImage() }
  }

  /// Reads the header (through the first IDAT) without decoding pixels.
  /// - Throws: `PNGError`.
  public static func info(_ bytes: [UInt8], options: DecodeOptions = DecodeOptions()) throws -> ImageInfo {
    try ImageRowReader.withBytes(bytes, format: .png, path: "", options: options) { info(of: $0) }
  }

  /// What an open reader of a PNG found in its header.
  static func info(of reader: ImageRowReader) -> ImageInfo {
    let info = reader.info
    return ImageInfo(
      format: .png, width: reader.width, height: reader.height, pixelFormat: reader.pixelFormat,
      bitDepth: reader.bitDepth, storedBitDepth: Int(info.source_bit_depth),
      storedComponents: Int(info.source_components), interlaced: reader.interlaced, arithmeticCoded: false,
      storedColor: colorTypeName(Int(info.source_color_type), transparency: info.has_transparency != 0),
      orientation: 1)
  }

  /// Encodes `image` as PNG at its own bit depth.
  /// - Parameter compressionLevel: zlib level 0 (none, fastest) to 9 (smallest).
  /// - Throws: `PNGError.cannotEncode`.
  public static func encode(_ image: Image, compressionLevel: Int = defaultCompressionLevel) throws -> [UInt8] {
    try ImageRowWriter.encode(image, format: .png, compressionLevel: compressionLevel)
  }

  private static func colorTypeName(_ type: Int, transparency: Bool) -> String {
    let name: String
    switch type {
    case 0: name = "gray"
    case 2: name = "RGB"
    case 3: name = "palette"
    case 4: name = "gray+alpha"
    case 6: name = "RGBA"
    default: name = "colour type \(type)"
    }
    return transparency ? name + " with tRNS" : name
  }
}
