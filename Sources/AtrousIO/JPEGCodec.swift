/// JPEG decode and encode through libjpeg-turbo.
///
/// Decoding uses libjpeg's defaults (accurate integer IDCT, fancy
/// upsampling), as OpenCV and PIL do, so the pixels are theirs. Gray files
/// decode to one channel; colour to RGB; CMYK and YCCK to RGB with OpenCV's
/// conversion (Adobe inverted CMYK). 12-bit files fail with
/// `JPEGError.unsupported`: the system libjpeg is built for 8 bits.
public enum JPEGCodec {
  /// Quality used when none is given (OpenCV's default).
  public static let defaultQuality = 95

  /// Decodes a whole JPEG file held in memory, applying its EXIF orientation
  /// unless `options.applyOrientation` is false.
  /// - Throws: `JPEGError`.
  public static func decode(_ bytes: [UInt8], options: DecodeOptions = DecodeOptions()) throws -> Image {
    try ImageRowReader.withBytes(bytes, format: .jpeg, path: "", options: options) { reader in
      let image = try reader.readImage()
      return options.applyOrientation ? reader.orientation.apply(to: image) : image
    }
  }

  /// Reads the header without decoding pixels.
  /// - Throws: `JPEGError`.
  public static func info(_ bytes: [UInt8], options: DecodeOptions = DecodeOptions()) throws -> ImageInfo {
    try ImageRowReader.withBytes(bytes, format: .jpeg, path: "", options: options) { info(of: $0, options: options) }
  }

  /// What an open reader of a JPEG found in its header; the size is after
  /// orientation when `options.applyOrientation` is set.
  static func info(of reader: ImageRowReader, options: DecodeOptions) -> ImageInfo {
    let info = reader.info
    let swap = options.applyOrientation && reader.orientation.swapsAxes
    return ImageInfo(
      format: .jpeg, width: swap ? reader.height : reader.width, height: swap ? reader.width : reader.height,
      pixelFormat: reader.pixelFormat, bitDepth: .eight, storedBitDepth: Int(info.source_bit_depth),
      storedComponents: Int(info.source_components), interlaced: reader.interlaced,
      arithmeticCoded: info.arithmetic != 0, storedColor: colorSpaceName(Int(info.source_color_type)),
      orientation: reader.orientation.rawValue)
  }

  /// Encodes an 8-bit gray or RGB image as baseline JPEG with 4:2:0 chroma.
  /// - Parameter quality: 1 (smallest) to 100 (best).
  /// - Throws: `JPEGError.cannotEncode` for alpha, 16 bits or a bad quality.
  public static func encode(_ image: Image, quality: Int = defaultQuality) throws -> [UInt8] {
    try ImageRowWriter.encode(image, format: .jpeg, quality: quality)
  }

  private static func colorSpaceName(_ space: Int) -> String {
    switch space {
    case 1: "gray"
    case 2: "RGB"
    case 3: "YCbCr"
    case 4: "CMYK"
    case 5: "YCCK"
    default: "colour space \(space)"
    }
  }
}
