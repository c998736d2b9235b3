import AtrousCore
import AtrousIO
import AtrousTestSupport
import Testing

@Suite struct ConversionTests {
  @Test(arguments: ["8", "16"])
  func grayscaleMatchesOpenCV(depth: String) throws {
    let rgb = try Image(NPY.read(Fixtures.path("conversion/coffee-rgb\(depth).npy")))
    let expected = try NPY.read(Fixtures.path("conversion/coffee-gray\(depth).npy"))
    #expect(difference(NPYArray(rgb.grayscale()), expected) == nil)
  }

  @Test func floatGrayscaleMatchesOpenCV() throws {
    let rgb = try Image(NPY.read(Fixtures.path("conversion/coffee-rgb8.npy")))
    let expected = try NPY.read(Fixtures.path("conversion/coffee-grayf.npy")).tensor()
    let gray = Tensor(rgb, scale: .unit, gray: true)
    let result = closeness(gray, expected, rtol: 1e-6, atol: 1e-7)
    #expect(result.isClose, "\(result)")
  }

  @Test func scalesMapSamplesAsDocumented() {
    let eight = Image(width: 1, height: 1, format: .gray, samples: [UInt8(255)])
    let sixteen = Image(width: 1, height: 1, format: .gray, samples: [UInt16(65535)])
    #expect(Tensor(eight, scale: .unit).scalars == [1])
    #expect(Tensor(sixteen, scale: .unit).scalars == [1])
    #expect(Tensor(eight, scale: .byte).scalars == [255])
    #expect(Tensor(sixteen, scale: .byte).scalars == [255])
    #expect(Tensor(sixteen, scale: .factor(1)).scalars == [65535])
    #expect(Tensor(eight, scale: .factor(0.5)).scalars == [127.5])
  }

  @Test func channelOrderSwapsRedAndBlueOnly() throws {
    let image = Image(width: 1, height: 1, format: .rgba, samples: [UInt8(10), 20, 30, 40])
    let bgr = Tensor(image, scale: .factor(1), order: .bgr)
    #expect(bgr.scalars == [30, 20, 10, 40])
    #expect(try Image(bgr, bitDepth: .eight, scale: .factor(1), order: .bgr) == image)
  }

  @Test(arguments: Image.PixelFormat.allCases, Image.BitDepth.allCases)
  func imageTensorImageIsLossless(format: Image.PixelFormat, depth: Image.BitDepth) throws {
    let count = 13 * 7 * format.channels
    let image = depth == .eight
      ? Image(width: 13, height: 7, format: format, samples: (0..<count).map { UInt8($0 * 37 % 256) })
      : Image(width: 13, height: 7, format: format, samples: (0..<count).map { UInt16($0 * 7919 % 65536) })
    for scale in [PixelScale.unit, .byte, .factor(1)] {
      #expect(try Image(Tensor(image, scale: scale), bitDepth: depth, scale: scale) == image, "\(scale)")
    }
  }

  @Test func roundingIsHalfToEvenAndClamped() throws {
    let tensor = Tensor(shape: [1, 7, 1], values: [0.5, 1.5, 2.5, -3, 300, .nan, 254.5])
    let image = try Image(tensor, bitDepth: .eight, scale: .factor(1))
    #expect(image.samples == [0, 2, 2, 0, 255, 0, 254])
  }

  @Test func bitDepthConversion() {
    let eight = Image(width: 4, height: 1, format: .gray, samples: [UInt8(0), 1, 128, 255])
    let sixteen = eight.converted(to: .sixteen)
    #expect(sixteen.samples == [0, 257, 32896, 65535])
    #expect(sixteen.converted(to: .eight) == eight)
    let odd = Image(width: 3, height: 1, format: .gray, samples: [UInt16(128), 129, 65406])
    #expect(odd.converted(to: .eight).samples == [0, 1, 254])
  }

  @Test func npyArraysBecomeImages() throws {
    let floats = NPYArray(shape: [1, 3], floats: [-1, 127.5, 1000])
    #expect(try Image(floats).samples == [0, 128, 255])
    #expect(try Image(floats).format == .gray)
    let wide = NPYArray(shape: [1, 1, 5], floats: [1, 2, 3, 4, 5])
    #expect(throws: ImageConversionError.unsupportedShape([1, 1, 5])) { try Image(wide) }
  }

  @Test func droppingAlphaKeepsColour() {
    let image = Image(width: 2, height: 1, format: .rgba, samples: [UInt8(1), 2, 3, 4, 5, 6, 7, 8])
    #expect(image.droppingAlpha().samples == [1, 2, 3, 5, 6, 7])
    #expect(image.droppingAlpha().format == .rgb)
  }
}
