import AtrousCore
import AtrousIO

/// One file converted between PNG, JPEG and .npy: what `atrous convert`
/// does.
///
/// A PNG or JPEG input is decoded, converted and encoded a band of rows at
/// a time, so the memory held depends on the width, not the height; .npy
/// inputs and JPEGs that their EXIF orientation turns are read whole, under
/// the memory budget.
public struct ConvertJob {
  /// The format of the output.
  public enum Output: Sendable {
    /// uint8 or uint16 (H, W, C) samples as stored.
    case npy
    case image(ImageFormat, quality: Int, compressionLevel: Int)
  }

  /// The output's depth; the input's when nil (JPEG is always 8 bits).
  public var bitDepth: Image.BitDepth?
  /// One gray channel (BT.601 luma, alpha dropped).
  public var gray = false
  public var decodeOptions = DecodeOptions()

  /// Rows converted at a time.
  static let bandRows = 64

  public init(bitDepth: Image.BitDepth? = nil, gray: Bool = false, decodeOptions: DecodeOptions = DecodeOptions()) {
    self.bitDepth = bitDepth
    self.gray = gray
    self.decodeOptions = decodeOptions
  }

  /// Converts `input` into `path`, which appears whole or not at all.
  /// - Throws: `FileError`, `PNGError`, `JPEGError`, `NPYError`, `ImageConversionError`.
  public func run(input: String, output path: String, as output: Output) throws {
    if try FileIO.readPrefix(input, count: NPY.magicBytes.count) == NPY.magicBytes {
      let image = try Image(NPY.read(input), bitDepth: bitDepth)
      return try write(whole: image, to: path, as: output)
    }
    let reader = try ImageRowReader(path: input, options: decodeOptions)
    if decodeOptions.applyOrientation && reader.orientation != .up {
      // Turning needs every row.
      return try write(whole: ImageFile.read(input, options: decodeOptions), to: path, as: output)
    }
    let sink = try Sink(path: path, output: output, width: reader.width, height: reader.height,
                        format: converted(Image(width: 1, height: 1, format: reader.pixelFormat, bitDepth: reader.bitDepth), for: output))
    for start in stride(from: 0, to: reader.height, by: Self.bandRows) {
      let count = min(Self.bandRows, reader.height - start)
      try sink.write(converted(reader.readBand(count), for: output))
    }
    try reader.finish()
    try sink.commit()
  }

  private func write(whole image: Image, to path: String, as output: Output) throws {
    let image = converted(image, for: output)
    let sink = try Sink(path: path, output: output, width: image.width, height: image.height, format: image)
    try sink.write(image)
    try sink.commit()
  }

  /// What the output stores of `image` (a band of rows or all of them).
  private func converted(_ image: Image, for output: Output) -> Image {
    var image = gray ? image.grayscale() : image
    if let bitDepth { image = image.converted(to: bitDepth) }
    if case .image(.jpeg, _, _) = output { image = image.droppingAlpha().converted(to: .eight) }
    return image
  }
}

/// Rows of converted samples into an .npy or image file.
private final class Sink {
  private let npy: AtomicFileWriter?
  private let image: ImageRowWriter?

  /// `format`: an image of the output's channels and depth.
  init(path: String, output: ConvertJob.Output, width: Int, height: Int, format: Image) throws {
    switch output {
    case .npy:
      let writer = try AtomicFileWriter(path: path)
      try writer.write(NPY.header(dtype: format.bitDepth == .eight ? .uint8 : .uint16, shape: [height, width, format.channels]))
      (npy, image) = (writer, nil)
    case .image(let kind, let quality, let level):
      image = try ImageRowWriter(path: path, format: kind, width: width, height: height, pixelFormat: format.format,
                                 bitDepth: format.bitDepth, quality: quality, compressionLevel: level)
      npy = nil
    }
  }

  func write(_ rows: Image) throws {
    try rows.withUnsafeBytes { bytes in
      try npy?.write(bytes)
      try image?.write(bytes.baseAddress!, count: rows.height)
    }
  }

  func commit() throws {
    try npy?.commit()
    try image?.commit()
  }
}
