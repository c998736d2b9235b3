import AtrousCore
import AtrousIO
import AtrousONNX
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

  /// Bands fill half of L2, one row per thread at least, 16 rows at most.
  @Test func bandRowsFollowTheCache() {
    let l2 = CPUCaches.l2
    #expect(HypercolumnExtractor.bandRows(rowBytes: l2 / 8, threads: 1) == 4)
    #expect(HypercolumnExtractor.bandRows(rowBytes: l2, threads: 1) == 1)
    #expect(HypercolumnExtractor.bandRows(rowBytes: l2, threads: 3) == 3)
    #expect(HypercolumnExtractor.bandRows(rowBytes: 64, threads: 2) == 16)
  }

  /// Bilinear bands leave the writing thread a core of the job's; the
  /// costlier methods make their bands on every core.
  @Test func bilinearBandsLeaveTheWritesACore() {
    #expect([1, 2, 4].map { HypercolumnExtractor.fillThreads(upsampling: .bilinear, threads: $0) } == [1, 1, 3])
    for name in ["jbu", "guided"] {
      let method = HypercolumnUpsampling.named(name)!
      #expect([1, 2, 4].map { HypercolumnExtractor.fillThreads(upsampling: method, threads: $0) } == [1, 2, 4], "\(name)")
    }
  }

  /// The export is the same whatever the band height, down to one row,
  /// with more threads than a band has rows, in both layouts.
  @Test(arguments: [1, 2, 5, 47])
  func exportsDoNotDependOnTheBandHeight(rows: Int) throws {
    let graph = try ONNXModel.load(Fixtures.path(HypercolumnTests.folder + "/net.onnx"))
    let input = try HypercolumnTests.input()
    for layout in HypercolumnOptions.Layout.allCases {
      for threads in [1, 3] {
        var options = HypercolumnOptions()
        options.layout = layout
        options.threads = threads
        let expected = try HypercolumnTests.export(graph, layers: HypercolumnTests.layers, input: input, options: options)
        let banded = try HypercolumnExtractor.$forcedBandRows.withValue(rows) {
          try HypercolumnTests.export(graph, layers: HypercolumnTests.layers, input: input, options: options)
        }
        #expect(banded.shape == expected.shape)
        let same = banded.tensor().scalars == expected.tensor().scalars
        #expect(same, "bands of \(rows) rows, \(threads) threads, \(layout)")
      }
    }
  }

  /// The export is the same whatever the job's threads (1, 2, 4: more
  /// than this machine may have), with bands of 4 rows split across the
  /// threads that make them: 1, 1 and 3 for bilinear bands, every thread
  /// for joint bilateral and guided ones.
  @Test(arguments: ["bilinear", "jbu", "guided"])
  func exportsDoNotDependOnTheThreads(method: String) throws {
    let graph = try ONNXModel.load(Fixtures.path(HypercolumnTests.folder + "/net.onnx"))
    let input = try HypercolumnTests.input()
    var results: [NPYArray] = []
    for threads in [1, 2, 4] {
      var options = HypercolumnOptions()
      options.upsampling = HypercolumnUpsampling.named(method)!
      options.threads = threads
      results.append(try HypercolumnExtractor.$forcedBandRows.withValue(4) {
        try HypercolumnTests.export(graph, layers: HypercolumnTests.layers, input: input, options: options)
      })
    }
    for (threads, result) in zip([2, 4], results.dropFirst()) {
      let same = result.tensor().scalars == results[0].tensor().scalars
      #expect(same, "\(method), \(threads) threads against 1")
    }
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
