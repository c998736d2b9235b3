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

  /// `export` of an input that may be streamed from its file.
  public func exportTimed(_ input: HypercolumnInput, plan: HypercolumnPlan, to path: String,
                          observe: ((Range<Int>, Range<Int>, UnsafeBufferPointer<Float>) -> Void)? = nil) throws
    -> HypercolumnTimings
  {
    var timings = HypercolumnTimings()
    var modelTime = 0.0
    let clock = ContinuousClock()
    let (height, width, channels) = (plan.height, plan.width, plan.channels)
    let dtype: NPYDType = options.dtype == .f16 ? .float16 : .float32
    let shape = options.layout == .hwc ? [height, width, channels] : [channels, height, width]
    let header = NPY.header(dtype: dtype, shape: shape)
    let writer = try AtomicFileWriter(path: path)
    try header.withUnsafeBytes { try writer.write($0, at: 0) }
    let taps = Taps(plan: plan, alignment: options.alignment)
    let item = dtype.itemSize, base = header.count
    let widest = plan.tiles.map(\.columns.count).max() ?? 0
    // Working memory, allocated once: one band of hypercolumns and its
    // converted or reordered bytes.
    var band = [Float](repeating: 0, count: Self.bandRows * widest * channels)  // (rows, columns, C)
    var bytes = [UInt8](repeating: 0, count: Self.bandRows * widest * channels * item)
    do {
      try forEachTile(input, plan: plan, modelMilliseconds: &modelTime) { maps in
        let tile = maps.tile
        for y0 in stride(from: tile.rows.lowerBound, to: tile.rows.upperBound, by: Self.bandRows) {
          let rows = y0..<min(tile.rows.upperBound, y0 + Self.bandRows)
          let count = rows.count * tile.columns.count * channels
          let start = clock.now
          band.withUnsafeMutableBufferPointer { b in
            Self.fill(b.baseAddress!, rows: rows, columns: tile.columns, maps: maps, plan: plan, taps: taps,
                      threads: options.threads)
            observe?(rows, tile.columns, UnsafeBufferPointer(rebasing: b[0..<count]))
          }
          let written = clock.now
          timings.upsample += (written - start).milliseconds
          try write(band, rows: rows, columns: tile.columns, plan: plan, into: &bytes, writer: writer, base: base,
                    overflows: &timings.float16Overflows)
          timings.write += (clock.now - written).milliseconds
        }
      }
      let start = clock.now
      try writer.commit()
      timings.write += (clock.now - start).milliseconds
    } catch {
      writer.discard()
      throw error
    }
    timings.model = modelTime
    return timings
  }

  /// Writes one band at its places in the file; adds the values that
  /// overflowed float16 to `overflows`.
  private func write(_ band: [Float], rows: Range<Int>, columns: Range<Int>, plan: HypercolumnPlan, into bytes: inout [UInt8],
                     writer: AtomicFileWriter, base: Int, overflows: inout Int) throws {
    let (height, width, channels) = (plan.height, plan.width, plan.channels)
    let f16 = options.dtype == .f16, item = f16 ? 2 : 4
    let w = columns.count
    try band.withUnsafeBufferPointer { b in
      try bytes.withUnsafeMutableBytes { raw in
        switch options.layout {
        case .hwc:
          // Each row's run of pixels is contiguous in the file.
          let count = rows.count * w * channels
          overflows += Self.convert(b.baseAddress!, count: count, f16: f16, into: raw.baseAddress!)
          let rowBytes = w * channels * item
          if w == width {
            try writer.write(UnsafeRawBufferPointer(start: raw.baseAddress!, count: count * item),
                             at: base + rows.lowerBound * width * channels * item)
          } else {
            for (i, y) in rows.enumerated() {
              try writer.write(UnsafeRawBufferPointer(start: raw.baseAddress! + i * rowBytes, count: rowBytes),
                               at: base + (y * width + columns.lowerBound) * channels * item)
            }
          }
        case .chw:
          // Gather each channel's rows, then write each row's run.
          let plane = raw.baseAddress!.assumingMemoryBound(to: Float.self)
          var single = [Float](repeating: 0, count: w)
          for c in 0..<channels {
            for (i, y) in rows.enumerated() {
              for x in 0..<w { single[x] = b[(i * w + x) * channels + c] }
              let runBytes = w * item
              overflows += single.withUnsafeBufferPointer { s in
                Self.convert(s.baseAddress!, count: w, f16: f16, into: UnsafeMutableRawPointer(plane))
              }
              try writer.write(UnsafeRawBufferPointer(start: UnsafeRawPointer(plane), count: runBytes),
                               at: base + ((c * height + y) * width + columns.lowerBound) * item)
            }
          }
        }
      }
    }
  }

  /// Float32 values as little-endian float32 or float16 bytes. Returns
  /// how many finite values became infinity in float16.
  @discardableResult
  static func convert(_ values: UnsafePointer<Float>, count: Int, f16: Bool, into out: UnsafeMutableRawPointer) -> Int {
    guard f16 else {
      out.copyMemory(from: values, byteCount: count * 4)
      return 0
    }
    let halves = out.assumingMemoryBound(to: UInt16.self)
    var overflows = 0
    for i in 0..<count {
      let half = Float16Bits.from(values[i])
      if Float16Bits.overflowed(half, from: values[i]) { overflows += 1 }
      halves[i] = half.littleEndian
    }
    return overflows
  }
}
