import AtrousIO
import AtrousTestSupport
@testable import AtrousFeatures
import Testing

@Suite struct BandWriterTests {
  /// Bands written while later ones are handed out land at their rows,
  /// whatever order the writing thread finishes in.
  @Test func bandsLandAtTheirRows() throws {
    let folder = Fixtures.scratchFolder()
    let path = folder + "/bands.bin"
    let (height, width, channels) = (9, 5, 3)
    let writer = try AtomicFileWriter(path: path)
    let layout = BandLayout(height: height, width: width, channels: channels, f16: false, hwc: true, base: 0)
    let bands = BandWriter(writer: writer, layout: layout, floats: 2 * width * channels)
    for y0 in stride(from: 0, to: height, by: 2) {
      let rows = y0..<min(height, y0 + 2)
      let band = try bands.next()  // (rows, W, C)
      for i in 0..<(rows.count * width * channels) { band[i] = Float(y0 * width * channels + i) }
      bands.submit(rows: rows, columns: 0..<width)
    }
    try bands.finish()
    try writer.commit()
    let bytes = try FileIO.readAll(path)
    let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    #expect(values == (0..<(height * width * channels)).map(Float.init))
  }

  /// A write that fails (here at an offset beyond the largest file the
  /// file system holds) makes `finish()` and every later `next()` throw.
  @Test func aFailedWriteIsReported() throws {
    let folder = Fixtures.scratchFolder()
    let writer = try AtomicFileWriter(path: folder + "/bands.bin")
    let layout = BandLayout(height: 2, width: 2, channels: 1, f16: false, hwc: true, base: 1 << 62)
    let bands = BandWriter(writer: writer, layout: layout, floats: 4)
    let band = try bands.next()
    for i in 0..<4 { band[i] = 1 }
    bands.submit(rows: 0..<2, columns: 0..<2)
    #expect(throws: FileError.self) { try bands.finish() }
    #expect(throws: FileError.self) { _ = try bands.next() }
    writer.discard()
  }
}
