import AtrousCore
import _CImageCodecs

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A finished call into one of the shim's decoders.
struct ShimDecode {
  typealias Entry = (UnsafePointer<UInt8>?, Int, UInt64, Int32, UnsafeMutablePointer<atr_decode_result>?) -> atr_status

  var status: atr_status
  var result: atr_decode_result

  /// Runs `entry` over `bytes`. On success with pixels, ownership of the
  /// pixel and EXIF buffers passes to the caller (see `takePixels`,
  /// `takeExif`).
  init(_ entry: Entry, bytes: UnsafeRawBufferPointer, maxPixels: Int, headerOnly: Bool) {
    var result = atr_decode_result()
    let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
    status = entry(base, bytes.count, UInt64(max(maxPixels, 0)), headerOnly ? 1 : 0, &result)
    self.result = result
  }

  var succeeded: Bool { status == ATR_OK }
  var width: Int { Int(result.info.width) }
  var height: Int { Int(result.info.height) }

  /// The decoded pixels as an image that owns the C buffer.
  func takePixels() -> Image {
    let info = result.info
    guard let format = Image.PixelFormat(channels: Int(info.channels)),
      let depth = Image.BitDepth(rawValue: Int(info.bit_depth)), let pixels = result.pixels
    else { preconditionFailure("decoder returned an unexpected layout") }
    let storage = AlignedStorage(adopting: pixels, byteCount: result.pixel_bytes)
    return Image(width: Int(info.width), height: Int(info.height), format: format, bitDepth: depth,
                 adopting: storage)
  }

  /// The EXIF payload, freeing the C copy.
  func takeExif() -> [UInt8]? {
    guard let exif = result.exif else { return nil }
    defer { free(exif) }
    return Array(UnsafeBufferPointer(start: exif, count: result.exif_bytes))
  }
}
