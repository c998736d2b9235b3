/// Why a PNG could not be decoded or encoded.
public enum PNGError: Error, Equatable, CustomStringConvertible {
  /// The data does not start with the PNG signature.
  case notPNG
  /// libpng rejected the data; the reason is libpng's message.
  case malformed(reason: String)
  /// The data ends before the image does.
  case truncated
  /// The declared size exceeds the pixel limit (nothing was allocated).
  case tooLarge(width: Int, height: Int, limit: Int)
  case outOfMemory
  /// The image cannot be written as PNG (layout, depth or level).
  case cannotEncode(reason: String)

  public var description: String {
    switch self {
    case .notPNG: "not a PNG file (bad signature)"
    case .malformed(let reason): "invalid PNG: \(reason)"
    case .truncated: "truncated PNG: unexpected end of file"
    case .tooLarge(let width, let height, let limit):
      "PNG declares \(width)x\(height) = \(width * height) pixels, over the limit of \(limit)"
    case .outOfMemory: "out of memory decoding PNG"
    case .cannotEncode(let reason): "cannot encode PNG: \(reason)"
    }
  }
}

/// Why a JPEG could not be decoded or encoded.
public enum JPEGError: Error, Equatable, CustomStringConvertible {
  /// The data does not start with an SOI marker.
  case notJPEG
  /// libjpeg rejected the data; the reason is libjpeg's message.
  case malformed(reason: String)
  /// The data ends before the image does.
  case truncated
  /// The declared size exceeds the pixel limit (nothing was allocated).
  case tooLarge(width: Int, height: Int, limit: Int)
  /// Valid JPEG that this libjpeg build cannot decode (12-bit precision).
  case unsupported(reason: String)
  case outOfMemory
  /// The image cannot be written as JPEG (alpha, 16 bits, quality).
  case cannotEncode(reason: String)

  public var description: String {
    switch self {
    case .notJPEG: "not a JPEG file (no SOI marker)"
    case .malformed(let reason): "invalid JPEG: \(reason)"
    case .truncated: "truncated JPEG: unexpected end of file"
    case .tooLarge(let width, let height, let limit):
      "JPEG declares \(width)x\(height) = \(width * height) pixels, over the limit of \(limit)"
    case .unsupported(let reason): "unsupported JPEG: \(reason)"
    case .outOfMemory: "out of memory decoding JPEG"
    case .cannotEncode(let reason): "cannot encode JPEG: \(reason)"
    }
  }
}
