import AtrousIO
import AtrousTestSupport
import Testing

/// JPEG decoding against OpenCV's and Pillow's decodes of the same files
/// (both libjpeg-turbo, accurate IDCT, fancy upsampling); see make_fixtures.py.
@Suite struct JPEGTests {
  static let references = ["testorig", "testimgint", "testimgari", "progressive", "gray", "cmyk"]
    + (1...8).map { "orientation\($0)" }

  @Test(arguments: references)
  func decodesToReferencePixels(name: String) throws {
    let image = try ImageFile.read(Fixtures.path("jpeg/\(name).jpg"))
    let expected = try NPY.read(Fixtures.path("jpeg/expected/\(name).npy"))
    #expect(difference(NPYArray(image), expected) == nil)
  }

  @Test(arguments: 1...8)
  func storedOrientationIsKeptOnRequest(orientation: Int) throws {
    let image = try ImageFile.read(Fixtures.path("jpeg/orientation\(orientation).jpg"),
                                   options: DecodeOptions(applyOrientation: false))
    let expected = try NPY.read(Fixtures.path("jpeg/expected/orientation\(orientation)-stored.npy"))
    #expect(difference(NPYArray(image), expected) == nil)
    let info = try JPEGCodec.info(Fixtures.bytes("jpeg/orientation\(orientation).jpg"))
    #expect(info.orientation == orientation)
  }

  @Test func twelveBitIsRefusedClearly() throws {
    let bytes = try Fixtures.bytes("jpeg/monkey12.jpg")
    do {
      _ = try JPEGCodec.decode(bytes)
      Issue.record("decoded a 12-bit JPEG with an 8-bit library")
    } catch let error as JPEGError {
      guard case .unsupported(let reason) = error else { Issue.record("unexpected \(error)"); return }
      #expect(reason.contains("precision 12"))
    }
  }

  @Test(arguments: ["testorig.jpg", "progressive.jpg", "testimgari.jpg", "gray.jpg", "orientation6.jpg"])
  func truncatedAtEveryByteFails(name: String) throws {
    let bytes = try Fixtures.bytes("jpeg/\(name)")
    for length in 0..<bytes.count {
      #expect(throws: JPEGError.self, "cut at \(length) of \(bytes.count)") {
        try JPEGCodec.decode(Array(bytes[0..<length]))
      }
    }
  }

  @Test func oversizedHeaderIsRefusedBeforeAllocating() throws {
    var bytes = try Fixtures.bytes("jpeg/testorig.jpg")
    // SOF0 (FF C0): length(2) precision(1) height(2) width(2).
    let sof = try #require((0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
    // 65000 x 65000: within libjpeg's 65500 limit, far over the pixel limit.
    for (offset, byte) in zip(sof + 5...sof + 8, [UInt8(0xFD), 0xE8, 0xFD, 0xE8]) { bytes[offset] = byte }
    #expect(throws: JPEGError.tooLarge(width: 65000, height: 65000, limit: DecodeOptions.defaultMaxPixels)) {
      try JPEGCodec.decode(bytes)
    }
  }

  @Test func encodeRoundTripIsClose() throws {
    let photo = try ImageFile.read(Fixtures.repository + "/SampleImages/astronaut.png")
    for quality in [50, 90, 100] {
      let decoded = try JPEGCodec.decode(JPEGCodec.encode(photo, quality: quality))
      #expect(decoded.width == photo.width && decoded.height == photo.height && decoded.format == .rgb)
      let a = photo.samples, b = decoded.samples
      let meanError = Double(zip(a, b).reduce(0) { $0 + abs($1.0 - $1.1) }) / Double(a.count)
      #expect(meanError < (quality == 100 ? 1.5 : quality == 90 ? 3 : 6), "quality \(quality): \(meanError)")
    }
    let small50 = try JPEGCodec.encode(photo, quality: 50).count
    let large95 = try JPEGCodec.encode(photo, quality: 95).count
    #expect(small50 < large95)
  }

  @Test func grayEncodesAsOneComponent() throws {
    let gray = try ImageFile.read(Fixtures.repository + "/SampleImages/camera.png")
    let bytes = try JPEGCodec.encode(gray, quality: 90)
    #expect(try JPEGCodec.info(bytes).storedComponents == 1)
    #expect(try JPEGCodec.decode(bytes).format == .gray)
  }

  @Test func encoderRefusesWhatJPEGCannotHold() {
    #expect(throws: JPEGError.self) { try JPEGCodec.encode(Image(width: 4, height: 4, format: .rgba, bitDepth: .eight)) }
    #expect(throws: JPEGError.self) { try JPEGCodec.encode(Image(width: 4, height: 4, format: .rgb, bitDepth: .sixteen)) }
    #expect(throws: JPEGError.self) { try JPEGCodec.encode(Image(width: 4, height: 4, format: .rgb, bitDepth: .eight), quality: 0) }
  }

  @Test func notAJPEG() {
    #expect(throws: JPEGError.notJPEG) { try JPEGCodec.decode([0xFF, 0xD9]) }
    // An SOI followed by garbage: libjpeg's own message comes through.
    #expect(throws: JPEGError.self) { try JPEGCodec.decode([0xFF, 0xD8, 0xFF, 0x00, 0x12, 0x34]) }
  }
}
