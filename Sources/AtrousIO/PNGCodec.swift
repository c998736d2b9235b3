import _CImageCodecs

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
    let call = bytes.withUnsafeBytes {
      ShimDecode(atr_png_decode, bytes: $0, maxPixels: options.maxPixels, headerOnly: false)
    }
    try check(call, limit: options.maxPixels)
    return call.takePixels()
  }

  /// Reads the header (through the first IDAT) without decoding pixels.
  /// - Throws: `PNGError`.
  public static func info(_ bytes: [UInt8], options: DecodeOptions = DecodeOptions()) throws -> ImageInfo {
    let call = bytes.withUnsafeBytes {
      ShimDecode(atr_png_decode, bytes: $0, maxPixels: options.maxPixels, headerOnly: true)
    }
    try check(call, limit: options.maxPixels)
    let info = call.result.info
    return ImageInfo(
      format: .png, width: call.width, height: call.height,
      pixelFormat: Image.PixelFormat(channels: Int(info.channels)) ?? .rgb,
      bitDepth: Image.BitDepth(rawValue: Int(info.bit_depth)) ?? .eight,
      storedBitDepth: Int(info.source_bit_depth), storedComponents: Int(info.source_components),
      interlaced: info.interlaced != 0, arithmeticCoded: false,
      storedColor: colorTypeName(Int(info.source_color_type), transparency: info.has_transparency != 0),
      orientation: 1)
  }

  /// Encodes `image` as PNG at its own bit depth.
  /// - Parameter compressionLevel: zlib level 0 (none, fastest) to 9 (smallest).
  /// - Throws: `PNGError.cannotEncode`.
  public static func encode(_ image: Image, compressionLevel: Int = defaultCompressionLevel) throws -> [UInt8] {
    guard (0...9).contains(compressionLevel) else {
      throw PNGError.cannotEncode(reason: "compression level \(compressionLevel) is outside 0...9")
    }
    guard image.width > 0, image.height > 0, image.width <= 0x7fff_ffff, image.height <= 0x7fff_ffff else {
      throw PNGError.cannotEncode(reason: "size \(image.width)x\(image.height) cannot be stored")
    }
    var result = atr_encode_result()
    let status = image.withUnsafeBytes {
      atr_png_encode($0.baseAddress, UInt32(image.width), UInt32(image.height), UInt32(image.channels),
                     UInt32(image.bitDepth.rawValue), Int32(compressionLevel), &result)
    }
    guard status == ATR_OK else {
      if status == ATR_ERR_MEMORY { throw PNGError.outOfMemory }
      throw PNGError.cannotEncode(reason: result.messageText)
    }
    return result.takeData()
  }

  private static func check(_ call: ShimDecode, limit: Int) throws {
    switch call.status {
    case ATR_OK: return
    case ATR_ERR_TRUNCATED: throw PNGError.truncated
    case ATR_ERR_TOO_LARGE: throw PNGError.tooLarge(width: call.width, height: call.height, limit: limit)
    case ATR_ERR_MEMORY: throw PNGError.outOfMemory
    default:
      let message = call.result.messageText
      if message.hasPrefix("not a PNG") { throw PNGError.notPNG }
      throw PNGError.malformed(reason: message)
    }
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
