import AtrousCore
@testable import AtrousFilters
import AtrousTestSupport
import Testing

/// The fast paths against the plain reference and against each other.
@Suite struct FilterEquivalenceTests {
  static let geometries: [FilterGeometry] = [
    FilterGeometry(),
    FilterGeometry(border: .constant(3)),
    FilterGeometry(border: .replicate),
    FilterGeometry(border: .reflect),
    FilterGeometry(border: .wrap),
    FilterGeometry(stride: (2, 2)),
    FilterGeometry(stride: (3, 2), padding: .valid),
    FilterGeometry(dilation: (2, 2)),
    FilterGeometry(stride: (2, 1), dilation: (1, 3), padding: .explicit(top: 0, bottom: 4, left: 2, right: 1), border: .wrap),
    FilterGeometry(padding: .sameLower),
  ]

  static let kernel = Kernel2D(rows: 3, columns: 4, values: [1, -2, 0.5, 3, 0, 1, -1, 2, 4, 0.25, -3, 1])

  @Test(arguments: geometries, InstructionSet.available)
  func twoDimensionalMatchesNaive(geometry: FilterGeometry, isa: InstructionSet) throws {
    let input = testTensor(height: 23, width: 19, channels: 3)
    let fast = try InstructionSet.with(isa) {
      try FilterChain([Filter.correlation(Self.kernel, geometry: geometry)]).apply(to: input)
    }
    let check = closeness(fast, NaiveFilter.correlate(input, Self.kernel, geometry), rtol: 1e-5, atol: 1e-4)
    #expect(check.isClose, "\(check)")
  }

  @Test(arguments: geometries, InstructionSet.available)
  func separableMatchesTwoDimensional(geometry: FilterGeometry, isa: InstructionSet) throws {
    let row: [Float] = [1, 4, 6, 4, 1], column: [Float] = [-1, -2, 0, 2, 1]
    let input = testTensor(height: 21, width: 26, channels: 2)
    let separable = try InstructionSet.with(isa) {
      try FilterChain([Filter(.separable(row: row, column: column), geometry: geometry, name: "s")]).apply(to: input)
    }
    let full = NaiveFilter.correlate(input, Kernel2D(column: column, row: row), geometry)
    let check = closeness(separable, full, rtol: 1e-5, atol: 1e-3)
    #expect(check.isClose, "\(check)")
  }

  /// The separable passes' vector loops (64 floats at a time with AVX-512,
  /// 32 with AVX2 and below, in chunks of 128 columns, 8 output rows at a
  /// time) and their ends: rows from 1 to 103 floats and heights that
  /// leave a short last batch, symmetric, antisymmetric, even-length and
  /// general taps, against the plain correlation on every instruction set.
  @Test(arguments: [FilterGeometry(), FilterGeometry(border: .constant(2)), FilterGeometry(dilation: (2, 3))],
        InstructionSet.available)
  func separablePassesMatchTheirVectorEnds(geometry: FilterGeometry, isa: InstructionSet) throws {
    let taps: [[Float]] = [NamedKernels.gaussian(size: 7, sigma: 1.5), [-1, -2, 0, 2, 1], [1, 3, 3, 1], [0.5, -1, 2, 0.25],
                           NamedKernels.gaussian(size: 17, sigma: 2)]
    for (width, channels) in [(1, 1), (5, 3), (37, 1), (34, 3), (83, 1), (150, 1)] {
      let input = testTensor(height: 19, width: width, channels: channels)
      for (row, column) in zip(taps, taps.reversed()) {
        let got = try InstructionSet.with(isa) {
          try FilterChain([Filter(.separable(row: row, column: column), geometry: geometry, name: "s")]).apply(to: input)
        }
        let want = NaiveFilter.correlate(input, Kernel2D(column: column, row: row), geometry)
        // Sums of values up to a few hundred: float32 rounds at 1e-4 and below.
        let check = closeness(got, want, rtol: 1e-5, atol: 1e-3)
        #expect(check.isClose, "\(width)x\(channels), \(row) x \(column): \(check)")
      }
    }
  }

  /// Boxes of more than 64 taps along an axis run as running sums; against
  /// the same kernel as one term of a combination, which takes the direct
  /// passes (themselves checked against the plain correlation above), for
  /// every border, with stride and padding, on 1 to 3 threads (bands start
  /// their sums afresh), with kernels taller and wider than the image (the
  /// border revisits rows many times).
  @Test(arguments: geometries.filter { $0.dilation == (1, 1) })
  func longBoxesMatchTheDirectPasses(geometry: FilterGeometry) throws {
    let input = testTensor(height: 83, width: 71, channels: 3)
    for (width, height) in [(65, 3), (3, 69), (97, 129)] where geometry.padding != .valid || height <= 83 && width <= 71 {
      let (row, column) = ([Float](repeating: 1 / Float(width), count: width), [Float](repeating: 0.5, count: height))
      let box = Filter(.separable(row: row, column: column), geometry: geometry, name: "box")
      let direct = Filter(.combination([Filter.Term(weight: 1, row: row, column: column)]), geometry: geometry, name: "direct")
      let want = try FilterChain([direct]).apply(to: input)
      for threads in 1...3 {
        let got = try FilterChain([box]).apply(to: input, threads: threads)
        let check = closeness(got, want, rtol: 1e-5, atol: 1e-4)
        #expect(check.isClose, "\(width)x\(height), \(threads) threads: \(check)")
      }
    }
  }

  /// A Gaussian taller and wider than the image (its rows filtered once
  /// per image row, however often the border maps to them).
  @Test func kernelsLargerThanTheImageMatchNaive() throws {
    let input = testTensor(height: 13, width: 11, channels: 2)
    let row = NamedKernels.gaussian(size: 55, sigma: 9)
    for border in [BorderMode.reflect101, .reflect, .replicate, .constant(1), .wrap] {
      let geometry = FilterGeometry(border: border)
      let got = try FilterChain([Filter(.separable(row: row, column: row), geometry: geometry, name: "g")]).apply(to: input)
      let want = NaiveFilter.correlate(input, Kernel2D(column: row, row: row), geometry)
      let check = closeness(got, want, rtol: 1e-5, atol: 1e-4)
      #expect(check.isClose, "\(border): \(check)")
    }
  }

  @Test func rankOneKernelRunsSeparablyWithTheSameResult() throws {
    let sobel = try FilterSpec.parse("kernel:1,0,-1;2,0,-2;1,0,-1")
    guard case .separable(let row, let column) = sobel.operation else {
      Issue.record("a rank-1 kernel was not separated")
      return
    }
    #expect(Kernel2D(column: column, row: row).values == [1, 0, -1, 2, 0, -2, 1, 0, -1])
    let input = testTensor(height: 17, width: 15, channels: 1)
    let separated = try FilterChain([sobel]).apply(to: input)
    let full = try FilterChain([Filter(.kernel(Kernel2D(rows: 3, columns: 3, values: [1, 0, -1, 2, 0, -2, 1, 0, -1])),
                                       name: "k")]).apply(to: input)
    let check = closeness(separated, full, rtol: 1e-6, atol: 1e-4)
    #expect(check.isClose, "\(check)")
    // A kernel that is not rank 1 stays 2-D.
    guard case .kernel = try FilterSpec.parse("kernel:1,2;3,5").operation else {
      Issue.record("a rank-2 kernel was separated")
      return
    }
  }

  /// The fused stage against dx and dy made apart: widths 1 and 2 have no
  /// inside; heights 1 and 2 make a batch's rows repeat under the border;
  /// threads split the image into bands that start mid-batch; behind a
  /// stage the rows come from its cache.
  @Test(arguments: [BorderMode.reflect101, .reflect, .replicate, .constant(2), .wrap])
  func fusedSobelMagnitudeMatchesGeneralPath(border: BorderMode) throws {
    let geometry = FilterGeometry(border: border)
    for (height, width, channels) in [(29, 33, 3), (7, 1, 2), (5, 2, 1), (6, 3, 1), (9, 40, 1), (1, 5, 1), (2, 4, 3),
                                      (23, 150, 1)] {
      for (before, threads) in [([], 1), ([], 3), ([try Filter.gaussian(sigma: 1)], 2)] {
        let input = testTensor(height: height, width: width, channels: channels)
        let fused = try FilterChain(before + [.gradient(.sobel, geometry: geometry)]).apply(to: input, threads: threads)
        let dx = try FilterChain(before + [.sobel(dx: 1, dy: 0, geometry: geometry)]).apply(to: input).scalars
        let dy = try FilterChain(before + [.sobel(dx: 0, dy: 1, geometry: geometry)]).apply(to: input).scalars
        let general = zip(dx, dy).map { ($0 * $0 + $1 * $1).squareRoot() }
        let check = closeness(fused.scalars, general, rtol: 1e-6, atol: 1e-4)
        #expect(check.isClose, "\(height)x\(width)x\(channels), \(before.count) before, \(threads) threads: \(check)")
      }
    }
  }

  /// The fused stage reads a stored input in place, and the same rows
  /// behind another stage from padded copies: the same bits either way, at
  /// every border, at widths with no inside (1 and 2 pixels) and at rows a
  /// multiple of 4 KiB long, whole and in bands.
  @Test(arguments: [BorderMode.reflect101, .reflect, .replicate, .constant(2), .wrap])
  func fusedSobelInPlaceEqualsCopies(border: BorderMode) throws {
    let gaussian = try Filter.gaussian(sigma: 1)
    let sobel = try Filter.gradient(.sobel, geometry: FilterGeometry(border: border))
    for (height, width, channels) in [(29, 33, 3), (5, 2, 1), (7, 1, 2), (6, 3, 1), (9, 40, 1), (23, 150, 1),
                                      (13, 1024, 1), (10, 512, 2)] {
      let input = testTensor(height: height, width: width, channels: channels)
      let smoothed = try FilterChain([gaussian]).apply(to: input)
      for threads in [1, 3] {
        let inPlace = try FilterChain([sobel]).apply(to: smoothed, threads: threads)
        let copies = try FilterChain([gaussian, sobel]).apply(to: input, threads: threads)
        #expect(inPlace.scalars.map(\.bitPattern) == copies.scalars.map(\.bitPattern),
                "\(height)x\(width)x\(channels), \(threads) threads")
      }
    }
  }

  /// An output whose rows alias the input's in the low 12 address bits
  /// (placed at the same offset in a 4 KiB span; rows of 4 KiB, or not)
  /// is made from copies, with the same bits as one placed apart, at
  /// borders whose first and last rows are the image's or constant.
  @Test(arguments: [BorderMode.reflect101, .constant(2), .wrap])
  func fusedSobelWritesAnAliasedOutputAsAnotherOne(border: BorderMode) throws {
    let span = AlignedStorage.aliasSpan
    for (height, width, channels) in [(12, 1024, 1), (9, 512, 2), (7, 1030, 1), (6, 341, 3)] {
      let input = testTensor(height: height, width: width, channels: channels)
      let count = height * width * channels
      let buffer = AlignedStorage(byteCount: count * 4 + span, zeroed: false)
      let apart = AlignedStorage(byteCount: count * 4, zeroed: false,
                                 apartFrom: input.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress!) })
      let whole = try FilterChain([try .gradient(.sobel, geometry: FilterGeometry(border: border))]).apply(to: input)
        .scalars.map(\.bitPattern)
      input.withUnsafeBufferPointer { source in
        let first = UnsafeRawPointer(source.baseAddress!)
        let shift = (Int(bitPattern: first) - Int(bitPattern: buffer.pointer)) & (span - 1)
        let aliased = (buffer.pointer + shift).assumingMemoryBound(to: Float.self)
        let label = "\(height)x\(width)x\(channels) \(border)"
        #expect(Sobel3MagnitudeStage.aliases(UnsafeRawPointer(aliased), first), "\(label)")
        #expect(!Sobel3MagnitudeStage.aliases(UnsafeRawPointer(apart.pointer), first), "\(label)")
        for out in [aliased, apart.pointer.assumingMemoryBound(to: Float.self)] {
          Sobel3MagnitudeStage(upstream: TensorSource(input), border: border).compute(rows: 0..<height, into: out)
        }
        #expect(UnsafeBufferPointer(start: aliased, count: count).map(\.bitPattern) == whole, "\(label)")
        #expect(UnsafeBufferPointer(start: apart.pointer.assumingMemoryBound(to: Float.self), count: count)
                  .map(\.bitPattern) == whole, "\(label)")
      }
    }
  }

  @Test func threadsDoNotChangeTheResult() throws {
    let input = testTensor(height: 64, width: 40, channels: 3)
    let chain = FilterChain([try .gaussian(sigma: 1.5), try .gradient(.sobel), try .laplacian(ksize: 3)])
    let one = try chain.apply(to: input, threads: 1)
    for threads in [2, 3, 7] { #expect(try chain.apply(to: input, threads: threads) == one) }
  }

  @Test func chainEqualsFiltersOneByOne() throws {
    let input = testTensor(height: 31, width: 27, channels: 2)
    let a = try Filter.gaussian(sigma: 2, geometry: FilterGeometry(border: .reflect))
    let b = try Filter.sobel(dx: 1, dy: 0, geometry: FilterGeometry(stride: (2, 2), border: .wrap))
    let chained = try FilterChain([a, b]).apply(to: input)
    let stepwise = try FilterChain([b]).apply(to: FilterChain([a]).apply(to: input))
    #expect(chained == stepwise)
  }

  @Test func convolutionFlipsTheKernel() throws {
    let input = testTensor(height: 12, width: 14, channels: 1)
    let convolved = try FilterChain([Filter.correlation(Self.kernel).flipped]).apply(to: input)
    let reference = NaiveFilter.correlate(input, Self.kernel.flipped, FilterGeometry())
    #expect(closeness(convolved, reference, rtol: 1e-5, atol: 1e-4).isClose)
  }

  @Test func passThroughChannelKeepsAlphaAtKernelCentres() throws {
    let input = testTensor(height: 20, width: 18, channels: 4)
    let strided = FilterGeometry(stride: (2, 2), padding: .valid)
    let out = try FilterChain([.box(width: 3, height: 3, geometry: strided)]).apply(to: input, passThrough: 3)
    #expect(out.shape == [9, 8, 4])
    for y in 0..<9 { for x in 0..<8 { #expect(out[y, x, 3] == input[2 * y + 1, 2 * x + 1, 3]) } }
    let same = try FilterChain([.gaussian(sigma: 2)]).apply(to: input, passThrough: 3)
    for y in 0..<20 { for x in 0..<18 { #expect(same[y, x, 3] == input[y, x, 3]) } }
  }
}

extension FilterGeometry: CustomTestStringConvertible {
  public var testDescription: String {
    "stride \(stride) dilation \(dilation) \(padding) \(border)"
  }
}
extension BorderMode: CustomTestStringConvertible {
  public var testDescription: String { description }
}
