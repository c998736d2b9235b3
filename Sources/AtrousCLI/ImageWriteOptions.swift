import ArgumentParser
import AtrousIO

/// How images are encoded, as command-line options: JPEG quality and PNG
/// compression, each refused where no output of its format is written.
struct ImageWriteOptions: ParsableArguments {
  @Option(parsing: .unconditional, help: "JPEG quality, 1 (smallest) to 100 (best) (default: \(JPEGCodec.defaultQuality)).")
  var quality: Int?

  @Option(parsing: .unconditional,
          help: "PNG zlib compression level, 0 (fastest) to 9 (smallest) (default: \(PNGCodec.defaultCompressionLevel), as OpenCV).")
  var compression: Int?

  /// For `validate()`: the ranges, and an option for a format none of the
  /// outputs has (`outputs` describes them for the message).
  func check(writing kinds: Set<FileKind>, outputs: String) throws {
    if let quality {
      guard (1...100).contains(quality) else { throw ValidationError("--quality must be within 1...100, not \(quality)") }
      guard kinds.contains(.jpeg) else { throw ValidationError("--quality has no effect: \(outputs) is not JPEG") }
    }
    if let compression {
      guard (0...9).contains(compression) else { throw ValidationError("--compression must be within 0...9, not \(compression)") }
      guard kinds.contains(.png) else { throw ValidationError("--compression has no effect: \(outputs) is not PNG") }
    }
  }

  /// Writes `image` as PNG or JPEG, as `kind` says, with these settings.
  func write(_ image: Image, to path: String, kind: FileKind) throws {
    if kind == .jpeg {
      try ImageFile.write(image, to: path, format: .jpeg, quality: quality ?? JPEGCodec.defaultQuality)
    } else {
      try ImageFile.write(image, to: path, format: .png, compressionLevel: compression ?? PNGCodec.defaultCompressionLevel)
    }
  }
}
