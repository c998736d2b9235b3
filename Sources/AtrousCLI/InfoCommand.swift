import ArgumentParser
import AtrousIO

struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info",
    abstract: "Print the format, size, channels and bit depth of images, or the dtype and shape of .npy files.",
    discussion: """
      Reads headers only. Every file is reported; the exit status is 1 if any
      failed.

      EXAMPLES
        atrous info photo.png scan16.png in.npy
      """
  )

  @Argument(help: "PNG, JPEG or .npy files.")
  var files: [String]

  @Flag(name: .customLong("keep-orientation"),
        help: "Report a JPEG's stored size instead of its size after EXIF orientation.")
  var keepOrientation = false

  @Option(name: .customLong("max-pixels"), parsing: .unconditional, help: "Report images whose declared width*height exceeds this as errors.")
  var maxPixels = DecodeOptions.defaultMaxPixels

  func validate() throws {
    guard !files.isEmpty else { throw ValidationError("give at least one file") }
    guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive") }
  }

  func run() throws {
    let options = DecodeOptions(maxPixels: maxPixels, applyOrientation: !keepOrientation)
    var failed = false
    for file in files {
      do {
        print("\(file): \(try describe(file, options: options))")
      } catch {
        Reporting.fail(error, file: file)
        failed = true
      }
    }
    if failed { throw ExitCode.fileFailed }
  }

  private func describe(_ file: String, options: DecodeOptions) throws -> String {
    let bytes = try FileIO.readAll(file)
    if bytes.starts(with: NPY.magicBytes) {
      let array = try NPY.decode(bytes)
      return "NPY, dtype \(array.dtype.rawValue) ('\(array.dtype.descr)'), shape \(NPY.tupleText(array.shape))"
    }
    let info = try ImageFile.info(bytes, path: file, options: options)
    var text = "\(info.format.rawValue), \(info.width)x\(info.height), "
      + "\(info.pixelFormat.channels) channel\(info.pixelFormat.channels == 1 ? "" : "s") "
      + "(\(info.pixelFormat.name)), \(info.bitDepth.rawValue)-bit"
    var stored = ["stored as \(info.storedColor)"]
    switch info.format {
    case .png:
      stored[0] += " \(info.storedBitDepth)-bit"
      if info.interlaced { stored.append("interlaced") }
    case .jpeg:
      stored[0] += " \(info.storedComponents) component\(info.storedComponents == 1 ? "" : "s")"
      if info.interlaced { stored.append("progressive") }
      if info.arithmeticCoded { stored.append("arithmetic") }
      if info.orientation != 1 { stored.append("EXIF orientation \(info.orientation)") }
    }
    text += "; " + stored.joined(separator: ", ")
    return text
  }
}
