import AtrousCore
import AtrousIO
import AtrousTestSupport
import Testing

@Suite struct PNGTests {
  /// Files of every colour type, depth and interlacing, cut at every byte.
  @Test(arguments: ["basn0g01.png", "basi0g02.png", "basn3p04.png", "basi6a08.png", "basn6a16.png",
                    "basi4a16.png", "tbwn3p08.png", "s01n3p01.png", "z09n2c08.png", "basn3p08.png"])
  func truncatedAtEveryByteFails(name: String) throws {
    let bytes = try Fixtures.bytes("pngsuite/valid/\(name)")
    for length in 0..<bytes.count {
      #expect(throws: PNGError.self, "cut at \(length) of \(bytes.count)") {
        try PNGCodec.decode(Array(bytes[0..<length]))
      }
    }
  }

  @Test func truncationIsReportedAsSuch() throws {
    let bytes = try Fixtures.bytes("pngsuite/valid/basn2c08.png")
    #expect(throws: PNGError.truncated) { try PNGCodec.decode(Array(bytes[0..<(bytes.count / 2)])) }
  }

  @Test func oversizedHeaderIsRefusedBeforeAllocating() {
    // Claims 100000 x 100000 RGB (30 GB decoded) and carries no pixel data.
    let file = PNGBuilder.signature + PNGBuilder.ihdr(width: 100_000, height: 100_000)
      + PNGBuilder.chunk("IDAT", [0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]) + PNGBuilder.chunk("IEND", [])
    #expect(throws: PNGError.tooLarge(width: 100_000, height: 100_000, limit: DecodeOptions.defaultMaxPixels)) {
      try PNGCodec.decode(file)
    }
    #expect(throws: PNGError.tooLarge(width: 100_000, height: 100_000, limit: DecodeOptions.defaultMaxPixels)) {
      try PNGCodec.info(file)
    }
  }

  @Test func pixelLimitIsOverridable() throws {
    let bytes = try Fixtures.bytes("pngsuite/valid/basn2c08.png")  // 32 x 32
    #expect(throws: PNGError.tooLarge(width: 32, height: 32, limit: 1023)) {
      try PNGCodec.decode(bytes, options: DecodeOptions(maxPixels: 1023))
    }
    #expect(try PNGCodec.decode(bytes, options: DecodeOptions(maxPixels: 1024)).width == 32)
  }

  @Test(arguments: Image.PixelFormat.allCases, Image.BitDepth.allCases)
  func encodeRoundTrips(format: Image.PixelFormat, depth: Image.BitDepth) throws {
    let width = 37, height = 23
    let count = width * height * format.channels
    let image: Image
    switch depth {
    case .eight:
      image = Image(width: width, height: height, format: format, samples: (0..<count).map { UInt8(($0 * 7919) % 256) })
    case .sixteen:
      image = Image(width: width, height: height, format: format, samples: (0..<count).map { UInt16(($0 * 7919) % 65536) })
    }
    for level in [0, 1, 6, 9] {
      let decoded = try PNGCodec.decode(PNGCodec.encode(image, compressionLevel: level))
      #expect(decoded == image, "level \(level)")
    }
  }

  @Test func higherCompressionIsSmaller() throws {
    let image = try ImageFile.read(Fixtures.repository + "/SampleImages/camera.png")
    let stored = try PNGCodec.encode(image, compressionLevel: 0)
    let packed = try PNGCodec.encode(image, compressionLevel: 9)
    #expect(packed.count < stored.count)
    #expect(stored.count > image.byteCount)
  }

  @Test func encoderRejectsBadArguments() {
    let image = Image(width: 2, height: 2, format: .gray, bitDepth: .eight)
    #expect(throws: PNGError.self) { try PNGCodec.encode(image, compressionLevel: 10) }
    #expect(throws: PNGError.self) { try PNGCodec.encode(Image(width: 0, height: 3, format: .rgb, bitDepth: .eight)) }
  }

  @Test func notAPNG() {
    #expect(throws: PNGError.notPNG) { try PNGCodec.decode(Array("hello, world".utf8)) }
    #expect(throws: PNGError.notPNG) { try PNGCodec.decode([]) }
  }
}

@Suite struct CorruptInputTests {
  /// Every valid PngSuite file cut at eight points must fail, never crash.
  @Test(arguments: PNGSuiteTests.valid)
  func everySuiteFileCutShortFails(name: String) throws {
    let bytes = try Fixtures.bytes("pngsuite/valid/\(name)")
    for step in 0..<8 {
      let length = bytes.count * step / 8
      #expect(throws: PNGError.self, "cut at \(length)") { try PNGCodec.decode(Array(bytes[0..<length])) }
    }
  }

  /// Random byte changes: the decoders may reject or accept the result, but
  /// must return (no crash, no hang, no exit from inside libjpeg).
  @Test(arguments: ["pngsuite/valid/basn2c08.png", "pngsuite/valid/basi3p04.png", "pngsuite/valid/basn6a16.png",
                    "jpeg/testorig.jpg", "jpeg/progressive.jpg", "jpeg/testimgari.jpg"])
  func randomCorruptionNeverCrashes(fixture: String) throws {
    let original = try Fixtures.bytes(fixture)
    var generator = SeededRandom(seed: 0x5EED)
    var rejected = 0
    for _ in 0..<300 {
      var bytes = original
      for _ in 0..<Int.random(in: 1...4, using: &generator) {
        let at = Int.random(in: 0..<bytes.count, using: &generator)
        bytes[at] = UInt8.random(in: 0...255, using: &generator)
      }
      do {
        let image = try ImageFile.decode(bytes, path: fixture)
        #expect(image.width > 0 && image.height > 0)
      } catch {
        rejected += 1
      }
    }
    #expect(rejected > 0, "no corruption was ever detected")
  }
}
