import AtrousCore
import AtrousIO
import AtrousNN
import _CKernels

/// Per-pixel hypercolumns (the seed note's recipe): the chosen layers' maps,
/// each resized to the input size (bilinearly, or guided by the image's
/// edges: `HypercolumnUpsampling`), concatenated per pixel in the order
/// given.
///
/// The model runs tile by tile (see `HypercolumnPlan`), and the output is
/// made in bands of rows from the tile's maps, so the full (H, W, C) array
/// never exists in memory; sampling single pixels blends the same four
/// features the full export would.
public final class HypercolumnExtractor: @unchecked Sendable {
  public let executor: Executor
  /// The graph input the image feeds.
  public let inputName: String
  public let layerNames: [String]
  public let options: HypercolumnOptions

  /// Output rows made at once per tile: as many as fill half of one
  /// core's L2 cache (`CPUCaches.l2`), so that the writer copies each band
  /// into the page cache from where it was just made, at least one per
  /// thread (the threads split a band's rows) and at most 16. Bands of 16
  /// rows of a 224-pixel, 192-channel export (2.75 MB) are written from
  /// memory, and each of the two first-touches 670 pages.
  static func bandRows(rowBytes: Int, threads: Int) -> Int {
    forcedBandRows ?? max(threads, 1, min(16, CPUCaches.l2 / 2 / max(1, rowBytes)))
  }

  /// Band rows on the calling task instead of the rule (for tests on
  /// images too small for the rule to cut bands thinner than 16 rows).
  @TaskLocal static var forcedBandRows: Int? = nil

  /// - Throws: `HypercolumnError.inputCount` or `.unknownLayer`, and the
  ///   executor's errors for an unsupported graph.
  public init(graph: Graph, layers: [String], options: HypercolumnOptions = HypercolumnOptions()) throws {
    executor = try Executor(graph: graph, threads: options.threads)
    let inputs = executor.inputNames
    guard inputs.count == 1 else { throw HypercolumnError.inputCount(inputs.count) }
    inputName = inputs[0]
    let known = graph.nodes.flatMap(\.outputs).filter { !$0.isEmpty }
    for name in layers where name != inputName && !known.contains(name) {
      throw HypercolumnError.unknownLayer(name, known: known)
    }
    layerNames = layers
    self.options = options
  }

  private let plans = PlanCache()

  /// The tiles and layer shapes for an input of this size (kept for the
  /// next image of the same size).
  public func plan(height: Int, width: Int, channels: Int) throws -> HypercolumnPlan {
    let key = [height, width, channels]
    if let known = plans.get(key) { return known }
    let made = try HypercolumnPlan(executor: executor, input: inputName, layerNames: layerNames, height: height, width: width,
                                   channels: channels, options: options)
    plans.set(key, made)
    return made
  }

  /// One tile's layer maps, (h, w, c) each, and the whole-image map index
  /// of each map's first row and column; for a guided upsampling, the
  /// crop's colours and what the method prepares per map.
  struct TileMaps {
    var tile: HypercolumnTile
    var maps: [Tensor]
    var origins: [(row: Int, column: Int)]
    /// The crop in guide colours, (h, w, G); nil for bilinear.
    var guide: Tensor? = nil
    /// Per layer: the guide per map cell (joint bilateral), or the
    /// filter's coefficients (guided).
    var prepared: [Tensor] = []
    var cropOrigin: (row: Int, column: Int) { (tile.cropRows.lowerBound, tile.cropColumns.lowerBound) }
  }

  /// Runs the model on each tile's crop of `input`, in order, adding the
  /// model's time to `timings.model` and the upsampler's preparation to
  /// `timings.upsample`.
  func forEachTile(_ input: HypercolumnInput, plan: HypercolumnPlan, tiles: [HypercolumnTile]? = nil,
                   timings: inout HypercolumnTimings, _ body: (TileMaps) throws -> Void) throws {
    let clock = ContinuousClock()
    input.rewind()
    for tile in tiles ?? plan.tiles {
      let crop = try input.crop(rows: tile.cropRows, columns: tile.cropColumns)  // (1, h, w, C)
      let start = clock.now
      let results = try executor.run([inputName: NDArray(channelsLast: crop)], outputs: layerNames, standardLayout: false)
      timings.model += (clock.now - start).milliseconds
      var maps: [Tensor] = [], origins: [(Int, Int)] = []
      for layer in plan.layers {
        let value = layer.name == inputName ? NDArray(channelsLast: crop) : results[layer.name]!
        guard value.rank == 4, value.shape[0] == 1 else { throw HypercolumnError.notAMap(layer: layer.name, shape: value.shape) }
        let stored = value.toChannelsLast().storage!
        maps.append(stored.reshaped(Array(stored.shape.dropFirst())))
        let f = layer.receptiveField
        origins.append((Int((Double(tile.cropRows.lowerBound) / f.jump[0]).rounded()),
                        Int((Double(tile.cropColumns.lowerBound) / f.jump[1]).rounded())))
      }
      var tileMaps = TileMaps(tile: tile, maps: maps, origins: origins)
      if options.upsampling != .bilinear {
        let prepared = clock.now
        prepare(&tileMaps, crop: crop, plan: plan)
        timings.upsample += (clock.now - prepared).milliseconds
      }
      try body(tileMaps)
    }
  }

  /// The crop's guide colours, and per layer what the guided methods need.
  private func prepare(_ tile: inout TileMaps, crop: Tensor, plan: HypercolumnPlan) {
    let (h, w, g) = (crop.shape[1], crop.shape[2], crop.shape[3])
    var guide = Tensor.uninitialized(shape: [h, w, g])  // (h, w, G), colours from 0 to 1
    let colours = options.guideColours
    let scale = (0..<g).map { colours.scale($0) }, offset = (0..<g).map { colours.offset($0) }
    crop.withUnsafeBufferPointer { src in
      guide.withUnsafeMutableBufferPointer { dst in
        for i in 0..<(h * w) {
          for k in 0..<g { dst[i * g + k] = src[i * g + k] * scale[k] + offset[k] }
        }
      }
    }
    tile.guide = guide
    let cropOrigin = tile.cropOrigin
    tile.prepared = plan.layers.enumerated().map { l, layer in
      let map = tile.maps[l]
      let (mh, mw, origin) = (map.shape[0], map.shape[1], tile.origins[l])
      let cells = CellGuide.colours(options.upsampling.cellSampling, mapHeight: mh, mapWidth: mw, origin: origin, layer: layer,
                                    imageHeight: plan.height, imageWidth: plan.width, guide: guide, cropOrigin: cropOrigin,
                                    alignment: options.alignment)
      switch options.upsampling {
      case .bilinear, .jointBilateral:
        return cells
      case .guided(let radius, let epsilon):
        let radii = (GuidedUpsampler.boxRadius(radius: radius, stride: Double(plan.height) / Double(layer.mapHeight)),
                     GuidedUpsampler.boxRadius(radius: radius, stride: Double(plan.width) / Double(layer.mapWidth)))
        return GuidedUpsampler.coefficients(map: map, cells: cells, radii: radii, epsilon: epsilon, threads: options.threads)
      }
    }
  }

  /// What every layer reads along both axes for each output coordinate,
  /// whole-image coordinates: bilinear taps, and the joint bilateral
  /// windows when that is the method.
  struct Taps {
    var upsampling: HypercolumnUpsampling
    var rows: [[BilinearResize.Tap]]
    var columns: [BilinearResize.TapTable]
    var rowWindows: [[JointBilateralUpsampler.Window]] = []
    var columnWindows: [[JointBilateralUpsampler.Window]] = []

    init(plan: HypercolumnPlan, options: HypercolumnOptions) {
      let alignment = options.alignment
      upsampling = options.upsampling
      rows = plan.layers.map { BilinearResize.taps(input: $0.mapHeight, output: plan.height, alignment: alignment) }
      columns = plan.layers.map {
        BilinearResize.TapTable(BilinearResize.taps(input: $0.mapWidth, output: plan.width, alignment: alignment))
      }
      if case .jointBilateral(let sigma, _) = upsampling {
        rowWindows = plan.layers.map {
          JointBilateralUpsampler.windows(input: $0.mapHeight, output: plan.height, alignment: alignment, sigma: sigma)
        }
        columnWindows = plan.layers.map {
          JointBilateralUpsampler.windows(input: $0.mapWidth, output: plan.width, alignment: alignment, sigma: sigma)
        }
      }
    }
  }

  /// Fills `out` ((rows.count, columns.count, C)) with the hypercolumns of
  /// output rows `rows` and columns `columns`, rows across threads.
  static func fill(_ out: UnsafeMutablePointer<Float>, rows: Range<Int>, columns: Range<Int>, maps: TileMaps,
                   plan: HypercolumnPlan, taps: Taps, threads: Int) {
    let parts = Parallel.ranges(rows.count, parts: min(threads, rows.count))
    Parallel.run(parts.count) { part in
      var scratch = Scratch()
      for i in parts[part] {
        fillRow(out + i * columns.count * plan.channels, y: rows.lowerBound + i, columns: columns, maps: maps, plan: plan,
                taps: taps, scratch: &scratch)
      }
    }
  }

  /// One output row's run of hypercolumns, (columns.count, C), using
  /// `scratch` for the vertically blended map rows and the method's
  /// weights or coefficients.
  static func fillRow(_ row: UnsafeMutablePointer<Float>, y: Int, columns: Range<Int>, maps: TileMaps, plan: HypercolumnPlan,
                      taps: Taps, scratch: inout Scratch) {
    let channels = plan.channels
    for (l, layer) in plan.layers.enumerated() {
      let start = row + layer.channelRange.lowerBound
      switch taps.upsampling {
      case .bilinear:
        bilinearRow(start, pixelStride: channels, y: y, columns: columns, map: maps.maps[l], origin: maps.origins[l],
                    rowTap: taps.rows[l][y], columnTaps: taps.columns[l], blended: &scratch.blended)
      case .jointBilateral(_, let rangeSigma):
        JointBilateralUpsampler.row(start, pixelStride: channels, y: y, columns: columns, map: maps.maps[l],
                                    origin: maps.origins[l], cells: maps.prepared[l], guide: maps.guide!,
                                    cropOrigin: maps.cropOrigin, rowWindow: taps.rowWindows[l][y],
                                    columnWindows: taps.columnWindows[l], rangeSigma: rangeSigma, weights: &scratch.weights,
                                    rows: &scratch.cells)
      case .guided:
        let coefficients = maps.prepared[l], width = coefficients.shape[2]
        if scratch.coefficients.count < columns.count * width {
          scratch.coefficients = [Float](repeating: 0, count: columns.count * width)
        }
        var blendedCoefficients = scratch.coefficients
        scratch.coefficients = []
        blendedCoefficients.withUnsafeMutableBufferPointer { b in
          bilinearRow(b.baseAddress!, pixelStride: width, y: y, columns: columns, map: coefficients,
                      origin: maps.origins[l], rowTap: taps.rows[l][y], columnTaps: taps.columns[l],
                      blended: &scratch.blended)
          GuidedUpsampler.apply(start, pixelStride: channels, y: y, columns: columns, channels: layer.channels,
                                blended: b.baseAddress!, guide: maps.guide!, cropOrigin: maps.cropOrigin)
        }
        scratch.coefficients = blendedCoefficients
      }
    }
  }

  /// Working memory of one thread's rows, grown once and reused for
  /// every row and layer.
  struct Scratch {
    /// Two map rows blended vertically, (span, C).
    var blended: [Float] = []
    /// Joint bilateral weights of one pixel's window, and its cells' features.
    var weights: [Float] = []
    var cells: [UnsafePointer<Float>?] = []
    /// Guided coefficients blended for a row's columns, (columns, (G + 1) C).
    var coefficients: [Float] = []
  }

  /// One output row's run of a map bilinearly resized: for each of
  /// `columns`, the map's C values at `out + x * pixelStride`.
  /// - Parameters:
  ///   - map: the tile's map, (mh, mw, C), whose first cell is whole-map
  ///     cell `origin`.
  ///   - blended: scratch for the two map rows blended, (span, C).
  static func bilinearRow(_ out: UnsafeMutablePointer<Float>, pixelStride: Int, y: Int, columns: Range<Int>, map: Tensor,
                          origin: (row: Int, column: Int), rowTap t: BilinearResize.Tap,
                          columnTaps: BilinearResize.TapTable, blended: inout [Float]) {
    let (mh, mw, c) = (map.shape[0], map.shape[1], map.shape[2])
    let (originRow, originColumn) = origin
    let r0 = t.low - originRow, r1 = t.high - originRow
    precondition(r0 >= 0 && r1 < mh, "tile crop misses map rows \(t.low)...\(t.high)")
    let first = columnTaps.low[columns.lowerBound] - originColumn
    let last = columnTaps.high[columns.upperBound - 1] - originColumn
    precondition(first >= 0 && last < mw, "tile crop misses map columns \(first)...\(last)")
    let span = (last - first + 1) * c
    if blended.count < span { blended = [Float](repeating: 0, count: span) }
    map.withUnsafeBufferPointer { m in
      blended.withUnsafeMutableBufferPointer { b in
        // The two map rows blended once, then read per output column.
        let row = t.blend(m.baseAddress! + (r0 * mw + first) * c, m.baseAddress! + (r1 * mw + first) * c,
                          into: b.baseAddress!, count: span)
        columnTaps.blend(columns, into: out, pixelStride: pixelStride, row: row, first: originColumn + first, channels: c)
      }
    }
  }

  /// The hypercolumns of single pixels, (N, C), blended from the same four
  /// features as the full export, without making full-size maps.
  /// - Throws: `HypercolumnError.pixelOutside` and the model's errors.
  public func sample(_ input: NDArray, plan: HypercolumnPlan, pixels: [(x: Int, y: Int)]) throws -> Tensor {
    try sampleTimed(HypercolumnInput(input), plan: plan, pixels: pixels).values
  }

  public func sample(_ input: HypercolumnInput, plan: HypercolumnPlan, pixels: [(x: Int, y: Int)]) throws -> Tensor {
    try sampleTimed(input, plan: plan, pixels: pixels).values
  }

  /// `sample`, with the time spent in each stage.
  public func sampleTimed(_ input: NDArray, plan: HypercolumnPlan, pixels: [(x: Int, y: Int)]) throws
    -> (values: Tensor, timings: HypercolumnTimings)
  {
    try sampleTimed(HypercolumnInput(input), plan: plan, pixels: pixels)
  }

  public func sampleTimed(_ input: HypercolumnInput, plan: HypercolumnPlan, pixels: [(x: Int, y: Int)]) throws
    -> (values: Tensor, timings: HypercolumnTimings)
  {
    var timings = HypercolumnTimings()
    let clock = ContinuousClock()
    for p in pixels where p.x < 0 || p.y < 0 || p.x >= plan.width || p.y >= plan.height {
      throw HypercolumnError.pixelOutside(x: p.x, y: p.y, width: plan.width, height: plan.height)
    }
    let taps = Taps(plan: plan, options: options)
    var out = Tensor.uninitialized(shape: [pixels.count, plan.channels])  // (N, C)
    // Only tiles holding a requested pixel run the model.
    let needed = plan.tiles.filter { tile in pixels.contains { tile.rows.contains($0.y) && tile.columns.contains($0.x) } }
    var scratch = Scratch()
    var stages = HypercolumnTimings()
    try forEachTile(input, plan: plan, tiles: needed, timings: &stages) { maps in
      let start = clock.now
      defer { timings.upsample += (clock.now - start).milliseconds }
      out.withUnsafeMutableBufferPointer { o in
        for (n, p) in pixels.enumerated() where maps.tile.rows.contains(p.y) && maps.tile.columns.contains(p.x) {
          Self.fillRow(o.baseAddress! + n * plan.channels, y: p.y, columns: p.x..<(p.x + 1), maps: maps, plan: plan,
                       taps: taps, scratch: &scratch)
        }
      }
    }
    timings.model = stages.model
    timings.upsample += stages.upsample
    return (out, timings)
  }
}

/// What a hypercolumn run measured: milliseconds in each stage, and the
/// values float16 could not hold.
public struct HypercolumnTimings: Sendable {
  public var model = 0.0
  /// Upsampling (the guided methods' preparation included) and concatenation.
  public var upsample = 0.0
  public var write = 0.0
  /// Finite values written as infinity because they are beyond float16's
  /// range (with `dtype` f16; always 0 for f32).
  public var float16Overflows = 0

  public init() {}
}

/// Plans by input size, shared by the threads of a batch.
private final class PlanCache: @unchecked Sendable {
  private let lock = Lock()
  private var plans: [[Int]: HypercolumnPlan] = [:]

  func get(_ key: [Int]) -> HypercolumnPlan? {
    lock.lock()
    defer { lock.unlock() }
    return plans[key]
  }

  func set(_ key: [Int], _ plan: HypercolumnPlan) {
    lock.lock()
    defer { lock.unlock() }
    plans[key] = plan
  }
}
