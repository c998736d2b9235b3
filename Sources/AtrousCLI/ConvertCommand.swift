import ArgumentParser
import Atrous

struct ConvertCommand: ParsableCommand, MemoryBudgeted {
  static let configuration = CommandConfiguration(
    commandName: "convert",
    abstract: "Convert between PNG, JPEG and .npy.",
    discussion: """
      The output's extension picks its format. Images become .npy unscaled:
      uint8 or uint16 as stored, shape (H, W, C) with C = 1 gray, 2 gray+alpha,
      3 RGB or 4 RGBA. An .npy input of shape (H, W) or (H, W, C) becomes an
      image: uint8 and uint16 keep their values, other types are rounded and
      clamped to the output's bit depth, as cv2.imwrite does. Alpha is dropped
      when writing JPEG. The output is written whole or not at all, and never
      over the input.

      EXAMPLES
        atrous convert photo.jpg photo.npy
        atrous convert --bit-depth 8 scan16.png scan8.png
        atrous convert --gray --quality 85 photo.png gray.jpg
      """
  )

  @Argument(help: "Input file: PNG, JPEG or .npy (recognised by content).")
  var input: String

  @Argument(help: "Output file: .png, .jpg, .jpeg or .npy.")
  var output: String

  @Option(name: .customLong("bit-depth"), parsing: .unconditional,
          help: "Bits per sample of a PNG or .npy output, 8 or 16 (default: as the input; JPEG is always 8).")
  var bitDepth: Int?

  @OptionGroup var encoding: ImageWriteOptions

  @OptionGroup var memoryBudget: MemoryOptions

  @Flag(help: "Write one gray channel (BT.601 luma as OpenCV computes it; alpha dropped).")
  var gray = false

  @Flag(name: .customLong("keep-orientation"),
        help: "Keep a JPEG's stored orientation instead of applying its EXIF orientation.")
  var keepOrientation = false

  @Option(name: .customLong("max-pixels"), parsing: .unconditional,
          help: "Refuse images whose declared width*height exceeds this.")
  var maxPixels = DecodeOptions.defaultMaxPixels

  func validate() throws {
    guard let kind = FileKind(path: output) else {
      throw ValidationError("cannot tell the output format of '\(output)': use \(FileKind.extensionsText)")
    }
    if let bitDepth {
      guard bitDepth == 8 || bitDepth == 16 else { throw ValidationError("--bit-depth must be 8 or 16") }
      if bitDepth == 16 && kind == .jpeg { throw ValidationError("JPEG output is 8-bit; --bit-depth 16 needs .png or .npy") }
    }
    try encoding.check(writing: [kind], outputs: output)
    guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive") }
  }

  func run() throws {
    do {
      try FileIO.ensure(output: output, isNotOneOf: [input])
      let job = ConvertJob(bitDepth: bitDepth.flatMap(Image.BitDepth.init(rawValue:)), gray: gray,
                           decodeOptions: DecodeOptions(maxPixels: maxPixels, applyOrientation: !keepOrientation))
      let kind: ConvertJob.Output
      switch FileKind(path: output)! {
      case .npy: kind = .npy
      case .png: kind = .image(.png, quality: 0, compressionLevel: encoding.compression ?? PNGCodec.defaultCompressionLevel)
      case .jpeg: kind = .image(.jpeg, quality: encoding.quality ?? JPEGCodec.defaultQuality, compressionLevel: 0)
      }
      try job.run(input: input, output: output, as: kind)
    } catch {
      Reporting.fail(error, file: input)
      throw ExitCode.fileFailed
    }
  }
}
