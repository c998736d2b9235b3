import AtrousCore
@testable import AtrousFilters
import AtrousTestSupport
import Testing

/// Streaming (input rows arriving top to bottom, a window of them held)
/// against the whole-image path.
@Suite struct FilterStreamTests {
  /// Runs `chain.stream` over `input`, checking that rows are asked for and
  /// handed over in order, and returns the output with the most input rows
  /// the stream held at once.
  static func streamed(_ chain: FilterChain, _ input: Tensor, threads: Int, passThrough: Int? = nil) throws -> Tensor {
    let (height, width, channels) = (input.shape[0], input.shape[1], input.shape[2])
    let size = try chain.outputSize(height: height, width: width)
    var output = Tensor(height: size.height, width: size.width, channels: channels)
    var nextIn = 0, nextOut = 0
    let rowIn = width * channels, rowOut = size.width * channels
    try input.withUnsafeBufferPointer { src in
      try output.withUnsafeMutableBufferPointer { dst in
        try chain.stream(height: height, width: width, channels: channels, threads: threads, passThrough: passThrough,
          read: { target, rows in
            #expect(rows.lowerBound == nextIn && rows.upperBound <= height)
            nextIn = rows.upperBound
            target.update(from: src.baseAddress! + rows.lowerBound * rowIn, count: rows.count * rowIn)
          },
          write: { rows, range in
            #expect(range.lowerBound == nextOut)
            nextOut = range.upperBound
            (dst.baseAddress! + range.lowerBound * rowOut).update(from: rows, count: range.count * rowOut)
          })
      }
    }
    #expect(nextOut == size.height)
    return output
  }

  static let chains: [(String, FilterChain)] = {
    let kernel = Kernel2D(rows: 3, columns: 4, values: [1, -2, 0.5, 3, 0, 1, -1, 2, 4, 0.25, -3, 1])
    var chains: [(String, FilterChain)] = []
    for geometry in FilterEquivalenceTests.geometries {
      chains.append(("kernel, \(geometry.testDescription)", FilterChain([Filter.correlation(kernel, geometry: geometry)])))
      chains.append(("separable, \(geometry.testDescription)",
                     FilterChain([Filter(.separable(row: [1, 4, 6, 4, 1], column: [-1, -2, 0, 2, 1]), geometry: geometry, name: "s")])))
    }
    chains.append(("sobel magnitude", FilterChain([try! .gradient(.sobel)])))
    chains.append(("gaussian, sobel, laplacian", FilterChain([try! .gaussian(sigma: 1.5), try! .gradient(.sobel), try! .laplacian(ksize: 3)])))
    chains.append(("gaussian sigma 9, strided sobel dx",
                   FilterChain([try! .gaussian(sigma: 9), try! .sobel(dx: 1, dy: 0, geometry: FilterGeometry(stride: (2, 3), border: .wrap))])))
    chains.append(("log, dog, unsharp", FilterChain([try! .laplacianOfGaussian(sigma: 2), try! .differenceOfGaussians(sigma: 1, sigma2: 1.6),
                                                    try! .unsharp(sigma: 1.5, amount: 1)])))
    return chains
  }()

  @Test(arguments: 0..<chains.count)
  func streamEqualsWholeImage(index: Int) throws {
    let (name, chain) = Self.chains[index]
    let input = testTensor(height: 157, width: 23, channels: 2)
    let whole = try chain.apply(to: input)
    for threads in [1, 2, 3] {
      let streamed = try Self.streamed(chain, input, threads: threads)
      #expect(streamed == whole, "\(name), \(threads) threads")
    }
  }

  /// Running sums start again in each band, so the sums round differently.
  @Test(arguments: [(65, 3), (3, 69), (97, 229), (5, 301)])
  func longBoxesStreamAsTheyRunWhole(width: Int, height: Int) throws {
    let input = testTensor(height: 211, width: 41, channels: 3)
    for border in [BorderMode.reflect101, .constant(1), .wrap, .replicate] {
      let box = try Filter.box(width: width, height: height, geometry: FilterGeometry(border: border))
      let chain = FilterChain([box, box])
      let whole = try chain.apply(to: input, threads: 1)
      for threads in [1, 2] {
        let check = closeness(try Self.streamed(chain, input, threads: threads), whole, rtol: 1e-5, atol: 1e-5)
        #expect(check.isClose, "\(width)x\(height) \(border), \(threads) threads: \(check)")
      }
    }
  }

  @Test func passThroughChannelStreamsAsWhole() throws {
    let input = testTensor(height: 90, width: 18, channels: 4)
    let chain = FilterChain([try .box(width: 3, height: 3, geometry: FilterGeometry(stride: (2, 2), padding: .valid)),
                             try .gaussian(sigma: 2)])
    #expect(try Self.streamed(chain, input, threads: 2, passThrough: 3) == chain.apply(to: input, passThrough: 3))
  }

  /// The point of streaming: the rows held depend on the kernels and the
  /// threads, not on the image's height; a wrapping border needs them all.
  @Test func windowHoldsKernelHeightsNotTheImage() throws {
    let sobel = FilterChain([try .gradient(.sobel)])
    let gaussian = FilterChain([try .gaussian(sigma: 4), try .gaussian(sigma: 4)])
    for height in [3000, 30000] {
      let plan = try StreamPlan(chain: sobel, inputHeight: height, outputHeight: height, threads: 2, inputRowBytes: 4)
      #expect(plan.windowRows == 2 * 32 + 2)
      let tall = try StreamPlan(chain: gaussian, inputHeight: height, outputHeight: height, threads: 2, inputRowBytes: 4)
      // Two 33-tap kernels: 64 rows of overlap, bands of four times that.
      #expect(tall.windowRows == 2 * 4 * 64 + 64)
    }
    let wrap = FilterChain([try .gaussian(sigma: 1, geometry: FilterGeometry(border: .wrap))])
    let plan = try StreamPlan(chain: wrap, inputHeight: 5000, outputHeight: 5000, threads: 2, inputRowBytes: 4)
    #expect(plan.windowRows == 5000)
  }
}
