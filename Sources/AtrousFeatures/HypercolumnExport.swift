import AtrousCore
import AtrousIO
import AtrousNN

extension HypercolumnExtractor {
  /// Streams the hypercolumns of `input` ((1, C, H, W)) into an `.npy` at
  /// `path`: (H, W, C) or (C, H, W), float32 or float16, as `options` say.
  /// Bands of rows are made from each tile's maps and written in place in
  /// the file, which appears only when complete.
  ///
  /// - Parameter observe: sees every band as it is made: its output rows
  ///   and columns and its values, (rows, columns, C) float32.
  /// - Throws: `FileError` and the model's errors; nothing is left at `path`.
  public func export(_ input: NDArray, plan: HypercolumnPlan, to path: String,
                     observe: ((Range<Int>, Range<Int>, UnsafeBufferPointer<Float>) -> Void)? = nil) throws {
    _ = try exportTimed(HypercolumnInput(input), plan: plan, to: path, observe: observe)
  }

  /// `export`, with the time spent in each stage.
  public func exportTimed(_ input: NDArray, plan: HypercolumnPlan, to path: String,
                          observe: ((Range<Int>, Range<Int>, UnsafeBufferPointer<Float>) -> Void)? = nil) throws
    -> HypercolumnTimings
  {
    try exportTimed(HypercolumnInput(input), plan: plan, to: path, observe: observe)
  }

  /// The threads that make the bands when the job has `threads` and its
  /// bands are written on a thread of their own. A bilinear band costs
  /// about as much to make as to write, so the writing thread gets a core
  /// of the job's and the bands are made on the others: sharing every
  /// core, the two slowed each other and the pool's workers spun between
  /// bands on the writes' core (VGG16 blocks 1-2, 224x224, 2 threads, AMD
  /// EPYC: 0.95 of the process's time and 0.91 of the in-process time,
  /// over alternating runs). A joint bilateral or guided band costs
  /// several times its write and keeps every core (with one fewer, the
  /// same job took 1.15 times as long).
  static func fillThreads(upsampling: HypercolumnUpsampling, threads: Int) -> Int {
    upsampling == .bilinear ? max(1, threads - 1) : max(1, threads)
  }

  /// `export` of an input that may be streamed from its file.
  ///
  /// Bands are written on a thread of their own while the next band (or
  /// the next tile's model) is computed: two band buffers take turns, so
  /// converting and writing one overlaps making the other. The write
  /// timing is that thread's time, overlapping the others.
  public func exportTimed(_ input: HypercolumnInput, plan: HypercolumnPlan, to path: String,
                          observe: ((Range<Int>, Range<Int>, UnsafeBufferPointer<Float>) -> Void)? = nil) throws
    -> HypercolumnTimings
  {
    var timings = HypercolumnTimings(), stages = HypercolumnTimings()
    let clock = ContinuousClock()
    let (height, width, channels) = (plan.height, plan.width, plan.channels)
    let dtype: NPYDType = options.dtype == .f16 ? .float16 : .float32
    let shape = options.layout == .hwc ? [height, width, channels] : [channels, height, width]
    let header = NPY.header(dtype: dtype, shape: shape)
    let writer = try AtomicFileWriter(path: path)
    try writer.reserve(header.count + height * width * channels * dtype.itemSize)
    try header.withUnsafeBytes { try writer.write($0, at: 0) }
    let taps = Taps(plan: plan, options: options)
    let widest = plan.tiles.map(\.columns.count).max() ?? 0
    let layout = BandLayout(height: height, width: width, channels: channels, f16: dtype == .float16,
                            hwc: options.layout == .hwc, base: header.count)
    // Working memory, allocated once: two bands of hypercolumns and their
    // converted or reordered bytes.
    let bandRows = Self.bandRows(rowBytes: widest * channels * MemoryLayout<Float>.stride, threads: options.threads)
    let bands = BandWriter(writer: writer, layout: layout, floats: bandRows * widest * channels)
    let fillThreads = Self.fillThreads(upsampling: options.upsampling, threads: options.threads)
    do {
      try forEachTile(input, plan: plan, timings: &stages) { maps in
        let tile = maps.tile
        for y0 in stride(from: tile.rows.lowerBound, to: tile.rows.upperBound, by: bandRows) {
          let rows = y0..<min(tile.rows.upperBound, y0 + bandRows)
          let count = rows.count * tile.columns.count * channels
          let band = try bands.next()  // (rows, columns, C)
          let start = clock.now
          Self.fill(band, rows: rows, columns: tile.columns, maps: maps, plan: plan, taps: taps, threads: fillThreads)
          observe?(rows, tile.columns, UnsafeBufferPointer(start: band, count: count))
          timings.upsample += (clock.now - start).milliseconds
          bands.submit(rows: rows, columns: tile.columns)
        }
      }
      try bands.finish()
      let start = clock.now
      try writer.commit()
      timings.write += (clock.now - start).milliseconds
    } catch {
      try? bands.finish()
      writer.discard()
      throw error
    }
    timings.model = stages.model
    timings.upsample += stages.upsample
    timings.write += bands.milliseconds
    timings.float16Overflows = bands.overflows
    return timings
  }
}
