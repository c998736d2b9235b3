import AtrousIO
import AtrousTestSupport
import Testing

/// Every PngSuite image against the pixels Pillow (or, for 16-bit colour,
/// which Pillow truncates, OpenCV) decodes from it; see make_fixtures.py.
@Suite struct PNGSuiteTests {
  static let valid = Fixtures.files(in: "pngsuite/valid", withExtension: "png")
  static let invalid = Fixtures.files(in: "pngsuite/invalid", withExtension: "png")

  @Test func suiteIsPresent() {
    #expect(Self.valid.count == 121)
    #expect(Self.invalid.count == 10)
  }

  @Test(arguments: valid)
  func decodesToReferencePixels(name: String) throws {
    let image = try ImageFile.read(Fixtures.path("pngsuite/valid/\(name)"))
    let expected = try NPY.read(Fixtures.path("pngsuite/expected/\(name.dropLast(4)).npy"))
    #expect(expected.shape == [image.height, image.width, image.channels])
    #expect(difference(NPYArray(image), expected) == nil)
  }

  @Test(arguments: valid)
  func headerAgreesWithDecode(name: String) throws {
    let bytes = try Fixtures.bytes("pngsuite/valid/\(name)")
    let info = try PNGCodec.info(bytes)
    let image = try PNGCodec.decode(bytes)
    #expect(info.width == image.width && info.height == image.height)
    #expect(info.pixelFormat == image.format && info.bitDepth == image.bitDepth)
  }

  @Test(arguments: invalid)
  func rejectsCorruptFile(name: String) throws {
    let path = Fixtures.path("pngsuite/invalid/\(name)")
    #expect(throws: (any Error).self) { try ImageFile.read(path) }
    let bytes = try Fixtures.bytes("pngsuite/invalid/\(name)")
    // Decoded directly (past format detection), libpng itself must refuse.
    #expect(throws: PNGError.self) { try PNGCodec.decode(bytes) }
  }

  @Test func badChecksumNamesTheChunk() throws {
    let bytes = try Fixtures.bytes("pngsuite/invalid/xcsn0g01.png")
    #expect(throws: PNGError.malformed(reason: "IDAT: CRC error")) { try PNGCodec.decode(bytes) }
  }

  @Test func missingImageDataIsReported() throws {
    let bytes = try Fixtures.bytes("pngsuite/invalid/xdtn0g01.png")
    do {
      _ = try PNGCodec.decode(bytes)
      Issue.record("decoded a PNG with no IDAT")
    } catch let error as PNGError {
      guard case .malformed(let reason) = error else { Issue.record("unexpected \(error)"); return }
      #expect(!reason.isEmpty)
    }
  }
}
