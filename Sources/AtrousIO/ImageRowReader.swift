import AtrousCore
import _CImageCodecs

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decodes a PNG or JPEG top to bottom, a few rows at a time, so that a
/// command holds a band of rows instead of the whole image.
///
/// Rows come as stored after expansion: 8-bit gray, gray+alpha, RGB or
/// RGBA, or 16 bits in host byte order (`PNGCodec`, `JPEGCodec` say
/// which). EXIF orientation is not applied: `orientation` tells whether a
/// caller must hold the whole image to turn it.
public final class ImageRowReader {
  public let format: ImageFormat
  public let width: Int, height: Int
  public let pixelFormat: Image.PixelFormat
  public let bitDepth: Image.BitDepth
  /// Bytes in one row: width * channels * bytes per sample.
  public let rowBytes: Int
  /// PNG: Adam7 (decoded whole on the first read). JPEG: progressive.
  public let interlaced: Bool
  /// The JPEG's EXIF orientation; `.up` for PNG and files without one.
  public let orientation: ExifOrientation
  /// The next row `read` returns.
  public private(set) var nextRow = 0
  let info: atr_image_info
  let exif: [UInt8]?
  private let reader: OpaquePointer
  private let file: UnsafeMutablePointer<FILE>
  private let buffer: UnsafeMutablePointer<CChar>?

  /// Opens `path` and reads its header.
  /// - Throws: `FileError` (cannot open, neither PNG nor JPEG), `PNGError`
  ///   or `JPEGError` (bad header, larger than `options.maxPixels`).
  public convenience init(path: String, options: DecodeOptions = DecodeOptions()) throws {
    let format = try ImageFormat.detect(FileIO.readPrefix(path, count: 8))
    guard let format else { throw FileError.unknownFormat(path: path, reason: "not a PNG or JPEG file") }
    guard let file = fopen(path, "rb") else { throw FileError.cannotRead(path: path, reason: FileIO.lastError()) }
    try self.init(file: file, format: format, maxPixels: options.maxPixels, buffered: true)
  }

  /// Takes `file` (closed with the reader) and reads its header.
  /// - Parameter buffered: reads a file 1 MiB at a time (stdio's 4 KiB
  ///   made 10,000 calls of a 40 MB file).
  init(file: UnsafeMutablePointer<FILE>, format: ImageFormat, maxPixels: Int, buffered: Bool = false) throws {
    self.file = file
    // glibc ignores the size unless it is given the buffer too.
    buffer = buffered ? UnsafeMutablePointer<CChar>.allocate(capacity: 1 << 20) : nil
    if let buffer { setvbuf(file, buffer, _IOFBF, 1 << 20) }
    self.format = format
    let limit = UInt64(max(maxPixels, 0))
    let opened = format == .png ? atr_png_reader_open(file, limit) : atr_jpeg_reader_open(file, limit)
    guard let opened else {
      fclose(file)
      buffer?.deallocate()
      throw format == .png ? PNGError.outOfMemory : JPEGError.outOfMemory as Error
    }
    reader = opened
    info = atr_reader_info(opened).pointee
    width = Int(info.width)
    height = Int(info.height)
    var exifSize = 0
    exif = atr_reader_exif(opened, &exifSize).map { Array(UnsafeBufferPointer(start: $0, count: exifSize)) }
    orientation = exif.flatMap(ExifOrientation.init(tiff:)) ?? .up
    interlaced = info.interlaced != 0
    pixelFormat = Image.PixelFormat(channels: Int(info.channels)) ?? .rgb
    bitDepth = Image.BitDepth(rawValue: Int(info.bit_depth)) ?? .eight
    rowBytes = width * pixelFormat.channels * bitDepth.bytesPerSample
    // Every property is set: deinit closes the reader and the file.
    let status = atr_reader_status(opened)
    if status != ATR_OK { throw failure(status, limit: maxPixels) }
  }

  /// Decodes a file held in memory with `body`; the reader must not
  /// escape it.
  /// - Parameter format: the decoder to use, or nil to recognise it by
  ///   signature.
  /// - Throws: `FileError` when the bytes are neither PNG nor JPEG, or what
  ///   the decoder or `body` throws.
  public static func withBytes<R>(_ bytes: [UInt8], format: ImageFormat? = nil, path: String,
                                  options: DecodeOptions = DecodeOptions(),
                                  _ body: (ImageRowReader) throws -> R) throws -> R {
    guard let format = format ?? ImageFormat.detect(bytes) else {
      throw FileError.unknownFormat(path: path, reason: "not a PNG or JPEG file")
    }
    // fmemopen takes no empty buffer: one zero byte instead, which the
    // decoders refuse as they would an empty file.
    let bytes = bytes.isEmpty ? [0] : bytes
    return try bytes.withUnsafeBytes { raw in
      // Read-only: fmemopen never writes through a stream opened "rb".
      guard let file = fmemopen(UnsafeMutableRawPointer(mutating: raw.baseAddress!), raw.count, "rb") else {
        throw FileError.cannotRead(path: path, reason: FileIO.lastError())
      }
      let reader = try ImageRowReader(file: file, format: format, maxPixels: options.maxPixels)
      return try body(reader)
    }
  }

  deinit {
    atr_reader_close(reader)
    fclose(file)
    buffer?.deallocate()
  }

  /// Decodes the next `count` rows into `rows` (count * `rowBytes` bytes).
  /// - Throws: `PNGError` or `JPEGError`.
  public func read(into rows: UnsafeMutableRawPointer, count: Int) throws {
    precondition(count >= 0 && count <= height - nextRow, "rows past the end of the image")
    let status = atr_reader_read_rows(reader, rows.assumingMemoryBound(to: UInt8.self), UInt32(count))
    guard status == ATR_OK else { throw failure(status, limit: 0) }
    nextRow += count
  }

  /// Reads what follows the last row, so that a file cut after its pixels
  /// fails.
  /// - Throws: `PNGError` or `JPEGError`.
  public func finish() throws {
    let status = atr_reader_finish(reader)
    guard status == ATR_OK else { throw failure(status, limit: 0) }
  }

  /// The next `count` rows as an image of that height.
  /// - Throws: `PNGError` or `JPEGError`.
  public func readBand(_ count: Int) throws -> Image {
    var band = Image(width: width, height: count, format: pixelFormat, bitDepth: bitDepth)
    try band.withUnsafeMutableBytes { try read(into: $0.baseAddress!, count: count) }
    return band
  }

  /// Reads every remaining row into an image, which `finish` then checks.
  public func readImage() throws -> Image {
    precondition(nextRow == 0, "readImage reads a whole image")
    var image = Image(width: width, height: height, format: pixelFormat, bitDepth: bitDepth)
    try image.withUnsafeMutableBytes { try read(into: $0.baseAddress!, count: height) }
    try finish()
    return image
  }

  private func failure(_ status: atr_status, limit: Int) -> Error {
    let message = String(cString: atr_reader_message(reader))
    switch (format, status) {
    case (.png, ATR_ERR_TRUNCATED): return PNGError.truncated
    case (.png, ATR_ERR_TOO_LARGE): return PNGError.tooLarge(width: width, height: height, limit: limit)
    case (.png, ATR_ERR_MEMORY): return PNGError.outOfMemory
    case (.png, _): return message.hasPrefix("not a PNG") ? PNGError.notPNG : PNGError.malformed(reason: message)
    case (.jpeg, ATR_ERR_TRUNCATED): return JPEGError.truncated
    case (.jpeg, ATR_ERR_TOO_LARGE): return JPEGError.tooLarge(width: width, height: height, limit: limit)
    case (.jpeg, ATR_ERR_MEMORY): return JPEGError.outOfMemory
    case (.jpeg, ATR_ERR_UNSUPPORTED): return JPEGError.unsupported(reason: message)
    case (.jpeg, _): return message.hasPrefix("not a JPEG") ? JPEGError.notJPEG : JPEGError.malformed(reason: message)
    }
  }
}
