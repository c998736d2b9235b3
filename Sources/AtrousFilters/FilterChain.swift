import AtrousCore

/// Filters applied one after another, left to right.
///
/// The chain streams: each thread takes a band of output rows and pulls
/// them through every stage, which keeps only the rows its kernel still
/// needs. Peak memory is the input, the output and a few rows per stage and
/// thread, whatever the image size and chain length.
public struct FilterChain: Sendable {
  public var filters: [Filter]

  public init(_ filters: [Filter]) {
    self.filters = filters
  }

  /// Pixels a stage's padded input may have, and so its output: 2^30, the
  /// limit images have when they are read, so that padding cannot ask for
  /// more memory or time than a machine has.
  public static let maxOutputPixels = 1 << 30

  /// Whether the last stage's stores skip the cache on the calling task,
  /// instead of the rule in `apply` (for tests on images smaller than the
  /// cache).
  @TaskLocal static var forcedStreaming: Bool? = nil

  /// Output shape `(H, W, C)` for an input of shape `(H, W, C)`.
  /// - Throws: `FilterError` when a kernel does not fit its input, a
  ///   stage's padded input would be larger than `maxOutputPixels`, or the
  ///   output would not fit `MemoryBudget.current`.
  public func outputShape(forInput shape: [Int]) throws -> [Int] {
    var (height, width) = (shape[0], shape[1])
    for filter in filters { (height, width) = try filter.outputSize(height: height, width: width) }
    // At most 2^30 pixels (the padded-input limit): the product cannot overflow.
    try MemoryBudget.check(height * width * shape[2], of: 4) {
      FilterError.exceedsMemoryBudget(height: height, width: width, bytes: $0, budget: $1)
    }
    return [height, width, shape[2]]
  }

  /// Runs the chain on an `(H, W, C)` tensor, each channel independently.
  /// - Parameters:
  ///   - threads: bands of rows computed at once (default: every core).
  ///   - passThrough: a channel (alpha, say) copied from the input instead
  ///     of filtered, sampled at each output pixel's kernel centre.
  ///   - progress: called with the number of output rows done as each
  ///     batch of them is, from the thread that made it.
  /// - Throws: `FilterError` when a kernel does not fit its input.
  public func apply(to input: Tensor, threads: Int = Parallel.coreCount, passThrough: Int? = nil,
                    progress: ((Int) -> Void)? = nil) throws -> Tensor {
    precondition(input.rank == 3, "filters take (H, W, C) tensors, not \(input.shape)")
    let shape = try outputShape(forInput: input.shape)
    if filters.isEmpty { return input }
    var output = Tensor.uninitialized(shape: shape, apartFrom: input)
    let bands = Parallel.ranges(shape[0], parts: threads)
    // Every band gets its own stages (their caches are not shared); they
    // are built here, where building may throw.
    let source = TensorSource(input)
    let pipelines = try bands.map { _ in try makePipeline(source).last! }
    let streams = Self.forcedStreaming
      ?? CPUCaches.passOutgrowsCache(bytes: (input.count + output.count) * MemoryLayout<Float>.stride)
    for last in pipelines { last.streamsOutput = streams }
    let rowLength = shape[1] * shape[2]
    output.withUnsafeMutableBufferPointer { out in
      let base = out.baseAddress!
      Parallel.run(bands.count) { band in
        let last = pipelines[band]
        for start in stride(from: bands[band].lowerBound, to: bands[band].upperBound, by: last.rowBatch) {
          let rows = start..<min(bands[band].upperBound, start + last.rowBatch)
          last.compute(rows: rows, into: base + start * rowLength)
          progress?(rows.count)
        }
      }
    }
    if let channel = passThrough { copyChannel(channel, from: input, to: &output) }
    return output
  }

  /// The stages of one thread, first to last, reading `input`.
  func makePipeline(_ input: RowStage) throws -> [ComputedStage] {
    var upstream = input
    var stages: [ComputedStage] = []
    for filter in filters {
      let stage = try filter.makeStage(upstream: upstream)
      upstream = stage
      stages.append(stage)
    }
    return stages
  }

  /// The input pixel under each output pixel's kernel centre, composed
  /// through the chain and clamped to the image: rows by output row,
  /// columns by output column.
  func kernelCentres(inputHeight: Int, inputWidth: Int) -> (rows: [Int], columns: [Int]) {
    // Sizes entering each filter, to compose centre positions backwards.
    var sizes = [(inputHeight, inputWidth)]
    for filter in filters {
      if let size = try? filter.outputSize(height: sizes.last!.0, width: sizes.last!.1) { sizes.append(size) }
    }
    func source(_ i: Int, vertical: Bool) -> Int {
      var p = i
      for (index, filter) in filters.enumerated().reversed() {
        p = filter.centre(of: p, count: vertical ? sizes[index].0 : sizes[index].1, vertical: vertical)
      }
      return min(max(p, 0), (vertical ? inputHeight : inputWidth) - 1)
    }
    let (outHeight, outWidth) = sizes.last!
    return ((0..<outHeight).map { source($0, vertical: true) }, (0..<outWidth).map { source($0, vertical: false) })
  }

  /// Copies `channel` from the input pixel under each output pixel's
  /// kernel centre.
  private func copyChannel(_ channel: Int, from input: Tensor, to output: inout Tensor) {
    let (inWidth, channels) = (input.shape[1], input.shape[2])
    let centres = kernelCentres(inputHeight: input.shape[0], inputWidth: inWidth)
    let outWidth = output.shape[1]
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        for (y, sy) in centres.rows.enumerated() {
          for (x, sx) in centres.columns.enumerated() {
            dst[(y * outWidth + x) * channels + channel] = src[(sy * inWidth + sx) * channels + channel]
          }
        }
      }
    }
  }
}
