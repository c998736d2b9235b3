import AtrousCore

/// The input of a streaming chain: the rows of a band of the image that
/// the current block of output rows reads, in a ring of `capacity` rows
/// (row y in slot y % capacity), filled top to bottom between blocks and
/// only read while a block is computed.
final class RowWindow: RowStage {
  let height: Int, width: Int, channels: Int
  let capacity: Int
  private let storage: AlignedStorage  // (capacity, W, C)
  /// Rows [first, end) are held.
  private(set) var first = 0, end = 0

  init(height: Int, width: Int, channels: Int, capacity: Int) {
    self.height = height
    self.width = width
    self.channels = channels
    self.capacity = capacity
    storage = AlignedStorage(byteCount: capacity * width * channels * MemoryLayout<Float>.stride, zeroed: false)
  }

  func reserve(simultaneousRows count: Int) {}

  func rows(_ ys: [Int]) -> [UnsafePointer<Float>] {
    ys.map { y in
      precondition(y >= first && y < end, "row \(y) is outside the window \(first)..<\(end)")
      return UnsafePointer(slot(y))
    }
  }

  func storedRow(_ y: Int) -> UnsafePointer<Float>? { y >= first && y < end ? UnsafePointer(slot(y)) : nil }

  /// The ring's first row, which an output is placed apart from.
  var start: UnsafeRawPointer { UnsafeRawPointer(storage.pointer) }

  private func slot(_ y: Int) -> UnsafeMutablePointer<Float> {
    storage.pointer.assumingMemoryBound(to: Float.self) + (y % capacity) * rowLength
  }

  /// Reads rows up to `limit` from `read` (runs of consecutive slots) and
  /// forgets rows before `keep`: the rows from `keep` to `limit` must fit.
  func advance(keeping keep: Int, to limit: Int,
               read: (UnsafeMutablePointer<Float>, Range<Int>) throws -> Void) throws {
    precondition(limit - max(keep, first) <= capacity, "window of \(capacity) rows cannot hold \(keep)..<\(limit)")
    first = max(first, keep)
    while end < limit {
      // Up to the end of the ring: its slots are contiguous.
      let run = min(limit, end + capacity - end % capacity)
      try read(slot(end), end..<run)
      end = run
      first = max(first, end - capacity)
    }
  }
}

extension FilterChain {
  /// Output (height, width) for an input of the given size, without the
  /// memory check of `outputShape` (a stream never holds its output).
  /// - Throws: `FilterError` when a kernel does not fit its input.
  public func outputSize(height: Int, width: Int) throws -> (height: Int, width: Int) {
    var size = (height: height, width: width)
    for filter in filters { size = try filter.outputSize(height: size.height, width: size.width) }
    return size
  }

  /// The input rows output rows `rows` read, through every filter and its
  /// border; nil when they read none (only a constant border).
  func inputRows(for rows: Range<Int>, inputHeight: Int) throws -> Range<Int>? {
    var heights = [inputHeight]
    for filter in filters {
      heights.append(try filter.geometry.plan(count: heights.last!, taps: filter.kernelSize.rows, vertical: true).outputCount)
    }
    var needed: Range<Int>? = rows
    for (index, filter) in filters.enumerated().reversed() {
      guard let range = needed else { return nil }
      needed = try filter.inputRows(for: range, inputHeight: heights[index])
    }
    return needed
  }

  /// Runs the chain over an `(H, W, C)` input that arrives top to bottom
  /// and hands the output over top to bottom, holding only the input rows
  /// the current block of output rows reads (a few kernel heights, or the
  /// whole image when the border wraps) and one block of output.
  ///
  /// The output equals `apply`'s.
  /// - Parameters:
  ///   - read: fills rows `range` of the input, `W * C` floats each, one
  ///     after another; called for consecutive ranges from row 0.
  ///   - write: takes output rows `range`, one after another; called for
  ///     consecutive ranges from row 0.
  ///   - passThrough: a channel copied from the input at each output
  ///     pixel's kernel centre instead of filtered (alpha).
  ///   - progress: called with the number of output rows done.
  /// - Throws: `FilterError` (a kernel that does not fit, a window over
  ///   the memory budget) or what `read` and `write` throw.
  public func stream(height: Int, width: Int, channels: Int, threads: Int = Parallel.coreCount,
                     passThrough: Int? = nil,
                     read: (UnsafeMutablePointer<Float>, Range<Int>) throws -> Void,
                     write: (UnsafePointer<Float>, Range<Int>) throws -> Void,
                     progress: ((Int) -> Void)? = nil) throws {
    let output = try outputSize(height: height, width: width)
    let inputLength = width * channels, outputLength = output.width * channels
    let threads = max(1, min(threads, output.height))
    let plan = try StreamPlan(chain: self, inputHeight: height, outputHeight: output.height, threads: threads,
                              inputRowBytes: inputLength * 4)
    try MemoryBudget.check(plan.windowRows * inputLength + plan.blockRows * outputLength, of: 4) {
      FilterError.windowExceedsMemoryBudget(rows: plan.windowRows, width: width, bytes: $0, budget: $1)
    }
    let window = RowWindow(height: height, width: width, channels: channels, capacity: plan.windowRows)
    let pipelines = try (0..<threads).map { _ in try makePipeline(window) }
    let block = AlignedStorage(byteCount: plan.blockRows * outputLength * MemoryLayout<Float>.stride, zeroed: false,
                               apartFrom: window.start)
    let out = block.pointer.assumingMemoryBound(to: Float.self)  // (blockRows, OW, C)
    let centres = passThrough.map { _ in kernelCentres(inputHeight: height, inputWidth: width) }
    for (k, rows) in plan.blocks.enumerated() {
      try window.advance(keeping: plan.keep[k], to: plan.limit[k], read: read)
      let bands = Parallel.ranges(rows.count, parts: threads)
      Parallel.run(bands.count) { band in
        let pipeline = pipelines[band]
        pipeline.forEach { $0.startBand() }
        pipeline.last!.compute(rows: (rows.lowerBound + bands[band].lowerBound)..<(rows.lowerBound + bands[band].upperBound),
                               into: out + bands[band].lowerBound * outputLength)
      }
      if let channel = passThrough, let centres {
        for (i, y) in rows.enumerated() {
          let source = window.rows([centres.rows[y]])[0]
          let target = out + i * outputLength
          for x in 0..<output.width { target[x * channels + channel] = source[centres.columns[x] * channels + channel] }
        }
      }
      try write(UnsafePointer(out), rows)
      progress?(rows.count)
    }
  }
}

/// Which output rows a stream computes together and which input rows it
/// holds for each block.
struct StreamPlan {
  /// Output rows computed in parallel between two reads of the input.
  var blocks: [Range<Int>] = []
  /// Input rows before `keep[k]` are no longer read from block k on.
  var keep: [Int] = []
  /// Input rows up to `limit[k]` are read before block k.
  var limit: [Int] = []
  var windowRows = 1
  var blockRows = 1

  /// Input bytes the window may take before blocks shrink: 256 MiB.
  static let windowTarget = 1 << 28

  init(chain: FilterChain, inputHeight: Int, outputHeight: Int, threads: Int, inputRowBytes: Int) throws {
    // Each band recomputes the rows its kernels overlap with the band
    // before it: bands four times that overlap keep the extra work small.
    let middle = outputHeight / 2
    let overlap = (try chain.inputRows(for: middle..<(middle + 1), inputHeight: inputHeight)?.count ?? 1) - 1
    var perThread = max(32, 4 * overlap)
    while perThread > 8 && (threads * perThread + overlap) * inputRowBytes > Self.windowTarget { perThread /= 2 }
    blockRows = min(outputHeight, threads * perThread)
    var start = 0
    var needs: [Range<Int>?] = []
    while start < outputHeight {
      let rows = start..<min(outputHeight, start + blockRows)
      blocks.append(rows)
      needs.append(try chain.inputRows(for: rows, inputHeight: inputHeight))
      start = rows.upperBound
    }
    // Rows are read in order and never again: by block k every row any
    // earlier block read is in, and a row stays while a later block reads it.
    var reached = 0
    limit = needs.map { need in
      reached = max(reached, need?.upperBound ?? 0)
      return reached
    }
    var lowest = inputHeight
    keep = needs.reversed().map { need in
      lowest = min(lowest, need?.lowerBound ?? lowest)
      return lowest
    }.reversed()
    windowRows = max(1, zip(keep, limit).map { $1 - $0 }.max() ?? 1)
  }
}
