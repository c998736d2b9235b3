import _CImageCodecs

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
    let call = bytes.withUnsafeBytes {
      ShimDecode(atr_jpeg_decode, bytes: $0, maxPixels: options.maxPixels, headerOnly: false)
    }
    try check(call, limit: options.maxPixels)
    let image = call.takePixels()
    let orientation = call.takeExif().flatMap(ExifOrientation.init(tiff:)) ?? .up
    return options.applyOrientation ? orientation.apply(to: image) : image
  }

  /// Reads the header without decoding pixels.
  /// - Throws: `JPEGError`.
  public static func info(_ bytes: [UInt8], options: DecodeOptions = DecodeOptions()) throws -> ImageInfo {
    let call = bytes.withUnsafeBytes {
      ShimDecode(atr_jpeg_decode, bytes: $0, maxPixels: options.maxPixels, headerOnly: true)
    }
    try check(call, limit: options.maxPixels)
    let orientation = call.takeExif().flatMap(ExifOrientation.init(tiff:)) ?? .up
    let info = call.result.info
    let swap = options.applyOrientation && orientation.swapsAxes
    return ImageInfo(
      format: .jpeg, width: swap ? call.height : call.width, height: swap ? call.width : call.height,
      pixelFormat: Image.PixelFormat(channels: Int(info.channels)) ?? .rgb, bitDepth: .eight,
      storedBitDepth: Int(info.source_bit_depth), storedComponents: Int(info.source_components),
      interlaced: info.interlaced != 0, arithmeticCoded: info.arithmetic != 0,
      storedColor: colorSpaceName(Int(info.source_color_type)), orientation: orientation.rawValue)
  }

  /// Encodes an 8-bit gray or RGB image as baseline JPEG with 4:2:0 chroma.
  /// - Parameter quality: 1 (smallest) to 100 (best).
  /// - Throws: `JPEGError.cannotEncode` for alpha, 16 bits or a bad quality.
  public static func encode(_ image: Image, quality: Int = defaultQuality) throws -> [UInt8] {
    guard (1...100).contains(quality) else {
      throw JPEGError.cannotEncode(reason: "quality \(quality) is outside 1...100")
    }
    guard image.bitDepth == .eight else {
      throw JPEGError.cannotEncode(reason: "JPEG holds 8-bit samples, not 16-bit")
    }
    guard image.format == .gray || image.format == .rgb else {
      throw JPEGError.cannotEncode(reason: "JPEG holds gray or RGB, not \(image.format.name) (drop the alpha channel first)")
    }
    guard image.width > 0, image.height > 0, image.width <= 65500, image.height <= 65500 else {
      throw JPEGError.cannotEncode(reason: "size \(image.width)x\(image.height) is outside JPEG's 65500-pixel limit")
    }
    var result = atr_encode_result()
    let status = image.withUnsafeBytes {
      atr_jpeg_encode($0.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt32(image.width),
                      UInt32(image.height), UInt32(image.channels), Int32(quality), &result)
    }
    guard status == ATR_OK else {
      if status == ATR_ERR_MEMORY { throw JPEGError.outOfMemory }
      throw JPEGError.cannotEncode(reason: result.messageText)
    }
    return result.takeData()
  }

  private static func check(_ call: ShimDecode, limit: Int) throws {
    switch call.status {
    case ATR_OK: return
    case ATR_ERR_TRUNCATED: throw JPEGError.truncated
    case ATR_ERR_TOO_LARGE: throw JPEGError.tooLarge(width: call.width, height: call.height, limit: limit)
    case ATR_ERR_MEMORY: throw JPEGError.outOfMemory
    case ATR_ERR_UNSUPPORTED: throw JPEGError.unsupported(reason: call.result.messageText)
    default:
      let message = call.result.messageText
      if message.hasPrefix("not a JPEG") { throw JPEGError.notJPEG }
      throw JPEGError.malformed(reason: message)
    }
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
