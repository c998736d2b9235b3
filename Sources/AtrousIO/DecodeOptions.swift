/// How image files are decoded.
public struct DecodeOptions: Sendable, Equatable {
  /// The default pixel limit, 2^30 (about 1.07 gigapixels), OpenCV's own
  /// default (`CV_IO_MAX_IMAGE_PIXELS`).
  public static let defaultMaxPixels = 1 << 30

  /// Largest width * height accepted, checked against the size a file
  /// declares before anything is allocated.
  public var maxPixels: Int
  /// Apply a JPEG's EXIF orientation, as OpenCV's `imread` does by default.
  /// When false the pixels come out as stored.
  public var applyOrientation: Bool

  public init(maxPixels: Int = DecodeOptions.defaultMaxPixels, applyOrientation: Bool = true) {
    self.maxPixels = maxPixels
    self.applyOrientation = applyOrientation
  }
}

/// What a file declares about itself, read without decoding the pixels.
public struct ImageInfo: Sendable, Equatable {
  public var format: ImageFormat
  /// Size of the decoded image, after EXIF orientation when it is applied.
  public var width: Int
  public var height: Int
  /// Layout of the decoded pixels (palettes expand to RGB or RGBA).
  public var pixelFormat: Image.PixelFormat
  public var bitDepth: Image.BitDepth
  /// Bits per sample as stored (PNG: 1, 2, 4, 8, 16; JPEG: data precision).
  public var storedBitDepth: Int
  /// Components as stored in the file (a palette PNG stores 1).
  public var storedComponents: Int
  /// PNG: Adam7 interlaced. JPEG: progressive.
  public var interlaced: Bool
  /// JPEG: arithmetic coded.
  public var arithmeticCoded: Bool
  /// PNG colour type name or JPEG colour space name.
  public var storedColor: String
  /// EXIF orientation 1...8 (1 when absent).
  public var orientation: Int
}

/// The container formats Atrous reads and writes.
public enum ImageFormat: String, Sendable, CaseIterable {
  case png = "PNG"
  case jpeg = "JPEG"

  /// The format whose signature starts `bytes`, if any.
  public static func detect<Bytes: Collection>(_ bytes: Bytes) -> ImageFormat? where Bytes.Element == UInt8 {
    let head = Array(bytes.prefix(8))
    if head == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
    if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return .jpeg }
    return nil
  }

  /// The format a file name's extension names (.png, .jpg, .jpeg), if any.
  public init?(pathExtension: String) {
    switch pathExtension.lowercased() {
    case "png": self = .png
    case "jpg", "jpeg", "jpe", "jfif": self = .jpeg
    default: return nil
    }
  }
}
