/// The EXIF orientation tag (0x0112): how the stored pixels must be turned
/// to be seen upright. Raw values are the tag's, 1...8.
public enum ExifOrientation: Int, Sendable, CaseIterable {
  case up = 1, upMirrored, down, downMirrored, leftMirrored, right, rightMirrored, left

  /// Orientations 5...8 turn the image a quarter, swapping width and height.
  public var swapsAxes: Bool { rawValue >= 5 }

  /// Reads the tag from a TIFF-structured EXIF payload (the bytes after
  /// "Exif\0\0"). Nil when the payload is malformed or has no valid tag.
  public init?(tiff bytes: [UInt8]) {
    guard bytes.count >= 8 else { return nil }
    let little: Bool
    switch (bytes[0], bytes[1]) {
    case (0x49, 0x49): little = true
    case (0x4D, 0x4D): little = false
    default: return nil
    }
    func u16(_ at: Int) -> Int? {
      guard at >= 0, at + 2 <= bytes.count else { return nil }
      let a = Int(bytes[at]), b = Int(bytes[at + 1])
      return little ? a | b << 8 : a << 8 | b
    }
    func u32(_ at: Int) -> Int? {
      guard let low = u16(little ? at : at + 2), let high = u16(little ? at + 2 : at) else { return nil }
      return low | high << 16
    }
    guard u16(2) == 42, let ifd = u32(4), let entries = u16(ifd) else { return nil }
    for index in 0..<entries {
      let entry = ifd + 2 + index * 12
      guard let tag = u16(entry) else { return nil }
      // SHORT (type 3), count 1: the value sits in the first two value bytes.
      if tag == 0x0112, u16(entry + 2) == 3, let value = u16(entry + 8) {
        self.init(rawValue: value)
        return
      }
    }
    return nil
  }

  /// The upright image, with the transforms OpenCV's `imread` applies.
  public func apply(to image: Image) -> Image {
    if self == .up { return image }
    let w = image.width, h = image.height
    let outWidth = swapsAxes ? h : w, outHeight = swapsAxes ? w : h
    var result = Image(width: outWidth, height: outHeight, format: image.format, bitDepth: image.bitDepth)
    // Source pixel for each destination pixel (x, y).
    let source: (Int, Int) -> (Int, Int)
    switch self {
    case .up: source = { ($0, $1) }
    case .upMirrored: source = { (w - 1 - $0, $1) }
    case .down: source = { (w - 1 - $0, h - 1 - $1) }
    case .downMirrored: source = { ($0, h - 1 - $1) }
    case .leftMirrored: source = { ($1, $0) }
    case .right: source = { ($1, h - 1 - $0) }
    case .rightMirrored: source = { (w - 1 - $1, h - 1 - $0) }
    case .left: source = { (w - 1 - $1, $0) }
    }
    let pixelBytes = image.channels * image.bitDepth.bytesPerSample
    image.withUnsafeBytes { input in
      result.withUnsafeMutableBytes { output in
        for y in 0..<outHeight {
          for x in 0..<outWidth {
            let (sx, sy) = source(x, y)
            let from = (sy * w + sx) * pixelBytes, to = (y * outWidth + x) * pixelBytes
            output.baseAddress!.advanced(by: to)
              .copyMemory(from: input.baseAddress!.advanced(by: from), byteCount: pixelBytes)
          }
        }
      }
    }
    return result
  }
}
