import AtrousCore
import _CImageCodecs

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Encodes a PNG or JPEG top to bottom as rows arrive, writing the file as
/// it goes, so that a command holds a band of rows instead of the image.
///
/// A file appears whole or not at all: rows go to an `AtomicFileWriter`'s
/// temporary file, which `commit()` renames; a writer dropped before
/// `commit()` leaves nothing.
public final class ImageRowWriter {
  public let format: ImageFormat
  public let width: Int, height: Int
  public let pixelFormat: Image.PixelFormat
  public let bitDepth: Image.BitDepth
  /// Bytes in one row: width * channels * bytes per sample.
  public let rowBytes: Int
  /// The next row `write` takes.
  public private(set) var nextRow = 0
  /// Where errors point: the output's path, or "" in memory.
  private let path: String
  private let encoder: OpaquePointer
  private var file: UnsafeMutablePointer<FILE>?
  private let buffer: UnsafeMutablePointer<CChar>?
  private let target: AtomicFileWriter?
  /// open_memstream's buffer and size, for an encode into memory.
  private let memory: (buffer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, size: UnsafeMutablePointer<Int>)?

  /// Starts `path`'s temporary file.
  /// - Parameters:
  ///   - quality: JPEG quality 1...100.
  ///   - compressionLevel: PNG zlib level 0...9.
  /// - Throws: `PNGError.cannotEncode` or `JPEGError.cannotEncode` for a
  ///   layout the format cannot hold, `FileError.cannotWrite`.
  public convenience init(path: String, format: ImageFormat, width: Int, height: Int, pixelFormat: Image.PixelFormat,
                          bitDepth: Image.BitDepth, quality: Int = JPEGCodec.defaultQuality,
                          compressionLevel: Int = PNGCodec.defaultCompressionLevel) throws {
    try Self.check(format: format, width: width, height: height, pixelFormat: pixelFormat, bitDepth: bitDepth,
                   quality: quality, compressionLevel: compressionLevel)
    let target = try AtomicFileWriter(path: path)
    let copy = dup(target.fd)
    guard copy >= 0, let file = fdopen(copy, "wb") else {
      if copy >= 0 { close(copy) }
      throw FileError.cannotWrite(path: path, reason: FileIO.lastError())
    }
    try self.init(file: file, target: target, memory: nil, path: path, format: format, width: width, height: height,
                  pixelFormat: pixelFormat, bitDepth: bitDepth, quality: quality, compressionLevel: compressionLevel)
  }

  private init(file: UnsafeMutablePointer<FILE>, target: AtomicFileWriter?,
               memory: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, UnsafeMutablePointer<Int>)?, path: String,
               format: ImageFormat, width: Int, height: Int, pixelFormat: Image.PixelFormat, bitDepth: Image.BitDepth,
               quality: Int, compressionLevel: Int) throws {
    self.file = file
    // 1 MiB writes; glibc ignores the size unless it is given the buffer too.
    buffer = target != nil ? UnsafeMutablePointer<CChar>.allocate(capacity: 1 << 20) : nil
    if let buffer { setvbuf(file, buffer, _IOFBF, 1 << 20) }
    self.target = target
    self.memory = memory
    self.path = path
    self.format = format
    self.width = width
    self.height = height
    self.pixelFormat = pixelFormat
    self.bitDepth = bitDepth
    rowBytes = width * pixelFormat.channels * bitDepth.bytesPerSample
    let (w, h, c) = (UInt32(width), UInt32(height), UInt32(pixelFormat.channels))
    let opened = format == .png
      ? atr_png_writer_open(file, w, h, c, UInt32(bitDepth.rawValue), Int32(compressionLevel))
      : atr_jpeg_writer_open(file, w, h, c, Int32(quality))
    guard let opened else {
      fclose(file)
      buffer?.deallocate()
      memory.map { free($0.0.pointee); $0.0.deallocate(); $0.1.deallocate() }
      throw format == .png ? PNGError.outOfMemory : JPEGError.outOfMemory as Error
    }
    encoder = opened
    // Every property is set: deinit releases the encoder and the file.
    let status = atr_writer_status(opened)
    if status != ATR_OK { throw failure() }
  }

  deinit {
    atr_writer_close(encoder)
    if let file { fclose(file) }
    buffer?.deallocate()
    if let memory {
      free(memory.buffer.pointee)
      memory.buffer.deallocate()
      memory.size.deallocate()
    }
    // An uncommitted target removes its temporary file as it goes.
  }

  /// Encodes the next `count` rows, `rowBytes` each, one after another.
  /// - Throws: `FileError.cannotWrite` (disk full), `PNGError` or `JPEGError`.
  public func write(_ rows: UnsafeRawPointer, count: Int) throws {
    precondition(count >= 0 && count <= height - nextRow, "rows past the end of the image")
    let status = atr_writer_write_rows(encoder, rows.assumingMemoryBound(to: UInt8.self), UInt32(count))
    guard status == ATR_OK else { throw failure() }
    nextRow += count
  }

  /// Ends the file after its last row and renames it over the path (inside
  /// `OutputGroup.all`, with the group's other files).
  /// - Throws: `FileError.cannotWrite`, `PNGError` or `JPEGError`.
  public func commit() throws {
    try finish()
    try target?.commit()
  }

  /// Ends the encoding and flushes the stream.
  private func finish() throws {
    guard atr_writer_finish(encoder) == ATR_OK else { throw failure() }
    guard let file else { return }
    self.file = nil
    if fclose(file) != 0 { throw FileError.cannotWrite(path: path, reason: FileIO.lastError()) }
  }

  /// Encodes a whole image into memory.
  static func encode(_ image: Image, format: ImageFormat, quality: Int = JPEGCodec.defaultQuality,
                     compressionLevel: Int = PNGCodec.defaultCompressionLevel) throws -> [UInt8] {
    try check(format: format, width: image.width, height: image.height, pixelFormat: image.format,
              bitDepth: image.bitDepth, quality: quality, compressionLevel: compressionLevel)
    let buffer = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: 1)
    let size = UnsafeMutablePointer<Int>.allocate(capacity: 1)
    buffer.pointee = nil
    size.pointee = 0
    guard let file = open_memstream(buffer, size) else {
      buffer.deallocate()
      size.deallocate()
      throw format == .png ? PNGError.outOfMemory : JPEGError.outOfMemory as Error
    }
    let writer = try ImageRowWriter(file: file, target: nil, memory: (buffer, size), path: "", format: format,
                                    width: image.width, height: image.height, pixelFormat: image.format,
                                    bitDepth: image.bitDepth, quality: quality, compressionLevel: compressionLevel)
    try image.withUnsafeBytes { try writer.write($0.baseAddress!, count: image.height) }
    try writer.finish()
    guard let bytes = buffer.pointee else { return [] }
    return bytes.withMemoryRebound(to: UInt8.self, capacity: size.pointee) {
      Array(UnsafeBufferPointer(start: $0, count: size.pointee))
    }
  }

  /// Refuses a layout the format cannot hold, with the format's own error.
  static func check(format: ImageFormat, width: Int, height: Int, pixelFormat: Image.PixelFormat,
                    bitDepth: Image.BitDepth, quality: Int, compressionLevel: Int) throws {
    switch format {
    case .png:
      guard (0...9).contains(compressionLevel) else {
        throw PNGError.cannotEncode(reason: "compression level \(compressionLevel) is outside 0...9")
      }
      guard width > 0, height > 0, width <= 0x7fff_ffff, height <= 0x7fff_ffff else {
        throw PNGError.cannotEncode(reason: "size \(width)x\(height) cannot be stored")
      }
    case .jpeg:
      guard (1...100).contains(quality) else {
        throw JPEGError.cannotEncode(reason: "quality \(quality) is outside 1...100")
      }
      guard bitDepth == .eight else { throw JPEGError.cannotEncode(reason: "JPEG holds 8-bit samples, not 16-bit") }
      guard pixelFormat == .gray || pixelFormat == .rgb else {
        throw JPEGError.cannotEncode(reason: "JPEG holds gray or RGB, not \(pixelFormat.name) (drop the alpha channel first)")
      }
      guard width > 0, height > 0, width <= 65500, height <= 65500 else {
        throw JPEGError.cannotEncode(reason: "size \(width)x\(height) is outside JPEG's 65500-pixel limit")
      }
    }
  }

  /// A write error of the stream (disk full) as the file's error, else
  /// the encoder's.
  private func failure() -> Error {
    if let file, ferror(file) != 0, !path.isEmpty {
      return FileError.cannotWrite(path: path, reason: FileIO.lastError())
    }
    let message = String(cString: atr_writer_message(encoder))
    switch format {
    case .png: return PNGError.cannotEncode(reason: message)
    case .jpeg: return JPEGError.cannotEncode(reason: message)
    }
  }
}
