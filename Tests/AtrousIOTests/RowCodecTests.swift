import AtrousIO
import AtrousTestSupport
import Testing

/// The row readers and writers against whole-image decoding and encoding:
/// rows asked for in uneven bands from a file equal the image decoded at
/// once, and rows encoded in bands give the same file as the whole image.
@Suite struct RowCodecTests {
  static let images = PNGSuiteTests.valid.map { "pngsuite/valid/" + $0 }
    + ["jpeg/testorig.jpg", "jpeg/progressive.jpg", "jpeg/cmyk.jpg", "jpeg/gray.jpg", "jpeg/testimgari.jpg"]

  /// Reads `reader` in bands of 1, 2, 3, ... rows.
  static func readInBands(_ reader: ImageRowReader) throws -> Image {
    var image = Image(width: reader.width, height: reader.height, format: reader.pixelFormat, bitDepth: reader.bitDepth)
    var band = 1
    try image.withUnsafeMutableBytes { raw in
      while reader.nextRow < reader.height {
        let count = min(band, reader.height - reader.nextRow)
        try reader.read(into: raw.baseAddress! + reader.nextRow * reader.rowBytes, count: count)
        band += 1
      }
    }
    try reader.finish()
    return image
  }

  @Test(arguments: images)
  func bandsFromAFileEqualTheWholeDecode(path: String) throws {
    let reader = try ImageRowReader(path: Fixtures.path(path), options: DecodeOptions(applyOrientation: false))
    let whole = try ImageFile.decode(Fixtures.bytes(path), path: path, options: DecodeOptions(applyOrientation: false))
    #expect(try Self.readInBands(reader) == whole)
  }

  @Test(arguments: ["pngsuite/valid/basn2c16.png", "pngsuite/valid/basn6a08.png", "jpeg/testorig.jpg", "jpeg/gray.jpg"])
  func bandsEncodeTheFileTheWholeImageEncodes(path: String) throws {
    let image = try ImageFile.read(Fixtures.path(path))
    let format: ImageFormat = path.hasSuffix(".png") ? .png : .jpeg
    let whole = format == .png ? try PNGCodec.encode(image) : try JPEGCodec.encode(image)
    let target = Fixtures.scratchFolder() + "/out"
    let writer = try ImageRowWriter(path: target, format: format, width: image.width, height: image.height,
                                    pixelFormat: image.format, bitDepth: image.bitDepth)
    let rowBytes = image.width * image.channels * image.bitDepth.bytesPerSample
    try image.withUnsafeBytes { raw in
      var y = 0, band = 5
      while y < image.height {
        let count = min(band, image.height - y)
        try writer.write(raw.baseAddress! + y * rowBytes, count: count)
        (y, band) = (y + count, band + 3)
      }
    }
    #expect(!FileIO.exists(target), "nothing appears before commit")
    try writer.commit()
    #expect(try FileIO.readAll(target) == whole)
  }

  /// A writer dropped before its last row leaves nothing behind.
  @Test func unfinishedWriterLeavesNothing() throws {
    let folder = Fixtures.scratchFolder()
    do {
      let writer = try ImageRowWriter(path: folder + "/a.png", format: .png, width: 4, height: 4, pixelFormat: .gray,
                                      bitDepth: .eight)
      let row = [UInt8](repeating: 7, count: 4)
      try row.withUnsafeBytes { try writer.write($0.baseAddress!, count: 1) }
      #expect(throws: PNGError.self) { try writer.commit() }
    }
    #expect(try FileIO.listFolder(folder).isEmpty)
  }

  /// A file cut short fails at the row where its data ends, and after
  /// its last row when only its end is missing.
  @Test func truncationFailsWhereTheDataEnds() throws {
    for path in ["pngsuite/valid/basi0g08.png", "jpeg/testorig.jpg"] {
      let bytes = try Fixtures.bytes(path)
      for cut in [bytes.count / 2, bytes.count - 3] {
        #expect(throws: (any Error).self, "\(path) cut at \(cut)") {
          try ImageRowReader.withBytes(Array(bytes.prefix(cut)), path: path) { try Self.readInBands($0) }
        }
      }
    }
  }
}
