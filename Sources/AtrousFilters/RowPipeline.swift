import AtrousCore
import _CKernels

/// A stage of a filter chain that produces rows of an `(H, W, C)` image on
/// demand. Stages pull rows from the stage before them and keep only the
/// few they still need, so a chain over a large image holds a few row
/// bands per stage instead of a full-size image per stage.
protocol RowStage: AnyObject {
  var height: Int { get }
  var width: Int { get }
  var channels: Int { get }
  /// Declares that a consumer will ask for up to `count` rows at once.
  func reserve(simultaneousRows count: Int)
  /// Pointers to rows `ys` (each in 0..<height), all valid together until
  /// the next call.
  func rows(_ ys: [Int]) -> [UnsafePointer<Float>]
  /// Where row `y` already lies in memory, valid as long as what the
  /// stage holds does not change, for a consumer to read in place or to
  /// prefetch ahead of asking for it; nil for rows computed on demand or
  /// not held.
  func storedRow(_ y: Int) -> UnsafePointer<Float>?
}

extension RowStage {
  var rowLength: Int { width * channels }
  func storedRow(_ y: Int) -> UnsafePointer<Float>? { nil }
}

/// A fixed number of rows of equal length, each tagged with its row index;
/// asking for a batch keeps every row of the batch valid together.
final class RowCache {
  let rowLength: Int
  let capacity: Int
  /// Floats from one row's start to the next's: whole 64-byte lines, an
  /// odd number of them. A column filter reads the same columns of 20-odd
  /// rows at once; rows a multiple of 4 KiB apart (4096 floats) all fall
  /// in the same few sets of the level-1 cache, which holds 8 to 12 lines
  /// per set, and evict each other (the column pass of a 17-tap Gaussian
  /// on 4096 columns took 1.3 times as long).
  let rowStride: Int
  private let storage: AlignedStorage
  private var keys: [Int]
  /// The slot of each cached key: a large kernel asks for thousands of
  /// rows per output row, which a search of `keys` made quadratic
  /// (gaussian:sigma=1000 on a 512x512 image took 12.5 s).
  private var slotOf: [Int: Int] = [:]
  private var lastUse: [Int]
  private var clock = 0

  init(capacity: Int, rowLength: Int) {
    self.capacity = capacity
    self.rowLength = rowLength
    rowStride = ((rowLength + 15) / 16 | 1) * 16
    storage = AlignedStorage(byteCount: capacity * rowStride * MemoryLayout<Float>.stride, zeroed: false)
    keys = [Int](repeating: Int.min, count: capacity)
    lastUse = [Int](repeating: -1, count: capacity)
  }

  private func slot(_ index: Int) -> UnsafeMutablePointer<Float> {
    storage.pointer.assumingMemoryBound(to: Float.self) + index * rowStride
  }

  /// The rows tagged `wanted`, computing missing ones with `fill(key, row)`.
  /// Rows of this batch are never evicted by later misses of the same batch.
  func rows(_ wanted: [Int], fill: (Int, UnsafeMutablePointer<Float>) -> Void) -> [UnsafePointer<Float>] {
    clock += 1
    var result = [UnsafePointer<Float>]()
    result.reserveCapacity(wanted.count)
    for key in wanted {
      if let hit = slotOf[key] {
        lastUse[hit] = clock
        result.append(UnsafePointer(slot(hit)))
        continue
      }
      // Evict the least recently used row not pinned by this batch.
      var victim = -1
      for i in 0..<capacity where lastUse[i] < clock && (victim < 0 || lastUse[i] < lastUse[victim]) {
        victim = i
      }
      precondition(victim >= 0, "row cache of \(capacity) cannot hold a batch of \(wanted.count)")
      slotOf[keys[victim]] = nil
      keys[victim] = Int.min
      fill(key, slot(victim))
      keys[victim] = key
      slotOf[key] = victim
      lastUse[victim] = clock
      result.append(UnsafePointer(slot(victim)))
    }
    return result
  }
}

/// The input of a chain: rows of a tensor, read in place.
final class TensorSource: RowStage {
  let height: Int, width: Int, channels: Int
  private let tensor: Tensor
  private let base: UnsafePointer<Float>

  init(_ tensor: Tensor) {
    precondition(tensor.rank == 3, "filters take (H, W, C) tensors")
    self.tensor = tensor
    height = tensor.shape[0]
    width = tensor.shape[1]
    channels = tensor.shape[2]
    // The tensor is held by this object and never written, so its storage
    // stays where it is for as long as the pointer is used.
    base = tensor.withUnsafeBufferPointer { $0.baseAddress! }
  }

  func reserve(simultaneousRows count: Int) {}

  func rows(_ ys: [Int]) -> [UnsafePointer<Float>] {
    ys.map { base + $0 * width * channels }
  }

  func storedRow(_ y: Int) -> UnsafePointer<Float>? { base + y * width * channels }
}

/// A stage that computes each output row from rows of the stage before it
/// and caches as many as its consumer asked for.
class ComputedStage: RowStage {
  let height: Int, width: Int, channels: Int
  private var reserved = 1
  private var cache: RowCache?

  init(height: Int, width: Int, channels: Int) {
    self.height = height
    self.width = width
    self.channels = channels
  }

  func reserve(simultaneousRows count: Int) { reserved = max(reserved, count) }

  /// Whether the rows this stage writes through `compute(rows:into:)` go
  /// past the caches: set on a chain's last stage when its output will
  /// have left the cache before anything reads it. Stages that stream
  /// their stores (separable, 3x3 Sobel magnitude) read it; the values
  /// are the same either way.
  var streamsOutput = false

  func rows(_ ys: [Int]) -> [UnsafePointer<Float>] {
    if cache == nil { cache = RowCache(capacity: reserved + 1, rowLength: rowLength) }
    return cache!.rows(ys) { y, out in compute(row: y, into: out) }
  }

  /// Writes output row `y` (`width * channels` floats) to `out`.
  func compute(row y: Int, into out: UnsafeMutablePointer<Float>) {
    fatalError("subclasses compute rows")
  }

  /// Output rows a stage computes best together (see `compute(rows:into:)`).
  var rowBatch: Int { 1 }

  /// Writes output rows `ys` one after another from `out`, (ys.count,
  /// width * channels): the rows a consumer writes in place, which a stage
  /// may compute together, reading its input once for all of them.
  func compute(rows ys: Range<Int>, into out: UnsafeMutablePointer<Float>) {
    for (i, y) in ys.enumerated() { compute(row: y, into: out + i * rowLength) }
  }

  /// Called before the rows of a new band, which may lie anywhere: a stage
  /// that carries state from row to row starts over, so that it reads only
  /// the rows the band's kernels cover (a stream holds no others).
  func startBand() {}
}

/// Reads rows of an upstream stage with the border rule applied in both
/// directions: vertically by mapping row indices, horizontally by copying
/// each row into a padded buffer.
final class PaddedRows {
  let upstream: RowStage
  let border: BorderMode
  let padLeft: Int, padRight: Int
  /// Floats in one padded row: (width + padLeft + padRight) * channels.
  let paddedLength: Int
  /// A padded row of the constant border value, for rows outside the image.
  private let constantRow: AlignedStorage
  private let cache: RowCache
  private let width: Int, channels: Int

  init(upstream: RowStage, border: BorderMode, padLeft: Int, padRight: Int, simultaneousRows: Int) {
    self.upstream = upstream
    self.border = border
    self.padLeft = padLeft
    self.padRight = padRight
    width = upstream.width
    channels = upstream.channels
    paddedLength = (upstream.width + padLeft + padRight) * upstream.channels
    constantRow = AlignedStorage(byteCount: paddedLength * MemoryLayout<Float>.stride)
    constantRow.pointer.assumingMemoryBound(to: Float.self).update(repeating: border.fillValue, count: paddedLength)
    cache = RowCache(capacity: simultaneousRows + 1, rowLength: paddedLength)
    upstream.reserve(simultaneousRows: 1)
  }

  /// The image row that position `y` (which may lie outside the image)
  /// reads under the border rule, or `PaddedRows.constant` for the
  /// constant border's row: the key under which a stage may keep what it
  /// made from that row, since rows outside the image repeat rows inside.
  func source(_ y: Int) -> Int { border.index(y, count: upstream.height) ?? Self.constant }

  /// The key `source` gives the constant border's row.
  static let constant = -1

  /// The padded row `source` gave.
  func row(source: Int) -> UnsafePointer<Float> {
    rows([source == Self.constant ? -1 - upstream.height : source])[0]
  }

  /// Padded rows at positions `ys`, which may lie outside the image.
  func rows(_ ys: [Int]) -> [UnsafePointer<Float>] {
    let mapped = ys.map { border.index($0, count: upstream.height) }
    let inside = mapped.compactMap { $0 }
    var fetched = cache.rows(inside) { y, out in pad(row: y, into: out) }.makeIterator()
    let constant = UnsafePointer(constantRow.pointer.assumingMemoryBound(to: Float.self))
    return mapped.map { $0 == nil ? constant : fetched.next()! }
  }

  /// The image row `source` gave, unpadded (width * channels floats), or
  /// nil for the constant border's row.
  func unpadded(source: Int) -> UnsafePointer<Float>? {
    source == Self.constant ? nil : upstream.rows([source])[0]
  }

  /// Elements `range` of the padded row `source` gave, which may reach
  /// into the padding on either side, written to `out`.
  func padded(source: Int, elements range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
    guard let row = unpadded(source: source) else {
      out.update(repeating: border.fillValue, count: range.count)
      return
    }
    padded(row: row, elements: range, into: out)
  }

  /// Elements `range` of `row` (an image row, unpadded) padded.
  func padded(row: UnsafePointer<Float>, elements range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
    // One division for the range and a pixel's border rule once for its
    // channels, not both for every element.
    let c = channels
    var e = range.lowerBound
    var (pixel, channel) = e.quotientAndRemainder(dividingBy: c)
    while e < range.upperBound {
      defer { (pixel, channel) = (pixel + 1, 0) }
      let n = min(c - channel, range.upperBound - e)
      let target = out + (e - range.lowerBound)
      // Element by element: a pixel is a few floats, too few for a copy call.
      if let x = border.index(pixel - padLeft, count: width) {
        let source = row + x * c + channel
        for k in 0..<n { target[k] = source[k] }
      } else {
        for k in 0..<n { target[k] = border.fillValue }
      }
      e += n
    }
  }

  /// Writes the padded row `source` gave, the constant border's row
  /// included, to `out` (`paddedLength` floats): for a stage that keeps
  /// padded rows of its own.
  func write(source: Int, into out: UnsafeMutablePointer<Float>) {
    if source == Self.constant {
      out.update(repeating: border.fillValue, count: paddedLength)
    } else {
      pad(row: source, into: out)
    }
  }

  private func pad(row y: Int, into out: UnsafeMutablePointer<Float>) {
    let source = upstream.storedRow(y) ?? upstream.rows([y])[0]
    let c = channels
    (out + padLeft * c).update(from: source, count: width * c)
    for p in -padLeft..<0 {
      copyPixel(to: out + (p + padLeft) * c, from: source, position: p)
    }
    for p in width..<(width + padRight) {
      copyPixel(to: out + (p + padLeft) * c, from: source, position: p)
    }
  }

  @inline(__always)
  private func copyPixel(to target: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, position p: Int) {
    if let x = border.index(p, count: width) {
      target.update(from: source + x * channels, count: channels)
    } else {
      target.update(repeating: border.fillValue, count: channels)
    }
  }
}

/// Correlation with a separable kernel: a horizontal pass on each input row
/// (cached, so each row is filtered once), then a vertical pass.
final class SeparableStage: ComputedStage {
  private let input: PaddedRows
  private let rowTaps: [Float], columnTaps: [Float]
  private let rowSymmetry: atr_taps_symmetry
  private let vertical: AxisPlan, horizontal: AxisPlan
  /// Horizontally filtered input rows, keyed by `PaddedRows.source`.
  private let filtered: RowCache
  /// The padded elements the outputs at either end of a row read.
  private let edgeScratch: AlignedStorage

  init(upstream: RowStage, row: [Float], column: [Float], geometry: FilterGeometry) throws {
    horizontal = try geometry.plan(count: upstream.width, taps: row.count, vertical: false)
    vertical = try geometry.plan(count: upstream.height, taps: column.count, vertical: true)
    rowTaps = row
    columnTaps = column
    rowSymmetry = symmetry(of: row)
    input = PaddedRows(upstream: upstream, border: geometry.border, padLeft: horizontal.padBegin,
                       padRight: horizontal.padEnd, simultaneousRows: 1)
    edgeScratch = AlignedStorage(byteCount: input.paddedLength * MemoryLayout<Float>.stride, zeroed: false)
    batch = vertical.stride == 1 && vertical.dilation == 1 ? Self.batchRows : 1
    filtered = RowCache(capacity: min(column.count + batch - 1, upstream.height + 1) + 1,
                        rowLength: horizontal.outputCount * upstream.channels)
    super.init(height: vertical.outputCount, width: horizontal.outputCount, channels: upstream.channels)
  }

  /// Output rows made together when the kernel moves down one row per
  /// output row: 8 share all but 7 of their 8 + taps - 1 input rows, and
  /// read them from L1 instead of L2.
  static let batchRows = 8
  private let batch: Int
  override var rowBatch: Int { batch }

  override func compute(rows ys: Range<Int>, into out: UnsafeMutablePointer<Float>) {
    for start in stride(from: ys.lowerBound, to: ys.upperBound, by: batch) {
      compute(rows: start, count: min(batch, ys.upperBound - start), into: out + (start - ys.lowerBound) * rowLength)
    }
  }

  override func compute(row y: Int, into out: UnsafeMutablePointer<Float>) {
    compute(rows: y, count: 1, into: out)
  }

  /// Output rows `first..<first + count`, one after another from `out`:
  /// the column pass over the filtered input rows they read (`count` is 1
  /// unless the kernel moves down one row per output row, so that the
  /// rows of consecutive outputs are consecutive).
  private func compute(rows first: Int, count: Int, into out: UnsafeMutablePointer<Float>) {
    let top = vertical.firstTap(first)
    // Rows are filtered once per image row they come from: filtering
    // along the row commutes with the border's mapping of rows, and a
    // kernel taller than the image revisits each row many times.
    let sources = (0..<(columnTaps.count + count - 1)).map { input.source(top + $0 * vertical.dilation) }
    let rows = filtered.rows(sources) { source, target in filterRow(source: source, into: target) }
    let targets = (0..<count).map { Optional(out + $0 * rowLength) }
    rows.withUnsafeBufferPointer { pointers in
      columnTaps.withUnsafeBufferPointer { taps in
        pointers.withMemoryRebound(to: Optional<UnsafePointer<Float>>.self) { rowPointers in
          targets.withUnsafeBufferPointer { outputs in
            atr_filter_columns_rows(outputs.baseAddress, Int32(count), rowPointers.baseAddress, taps.baseAddress,
                                    Int32(taps.count), rowLength, streamsOutput ? 1 : 0)
          }
        }
      }
    }
  }

  /// Filters the image row `source` gave along the row. With stride 1,
  /// the outputs whose taps all fall inside the image read it in place;
  /// only those at either end read a padded copy of the few elements they
  /// need (a padded copy of every row cost as much as filtering it).
  private func filterRow(source: Int, into target: UnsafeMutablePointer<Float>) {
    guard horizontal.stride == 1, let row = input.unpadded(source: source) else {
      return filterRow(input.row(source: source), into: target)
    }
    let step = horizontal.dilation * channels
    let reach = (rowTaps.count - 1) * step, left = horizontal.padBegin * channels
    // Output j reads padded element j + t * step: image element j - left + t * step.
    let inside = min(left, rowLength)..<max(min(left, rowLength), min(rowLength, input.upstream.width * channels + left - reach))
    if !inside.isEmpty { filterRow(row + (inside.lowerBound - left), into: target + inside.lowerBound, count: inside.count) }
    let edge = edgeScratch.pointer.assumingMemoryBound(to: Float.self)
    for part in [0..<inside.lowerBound, inside.upperBound..<rowLength] where !part.isEmpty {
      input.padded(source: source, elements: part.lowerBound..<(part.upperBound + reach), into: edge)
      filterRow(edge, into: target + part.lowerBound, count: part.count)
    }
  }

  /// Filters a padded row along it: `count` outputs (stride 1), else the
  /// whole row.
  private func filterRow(_ padded: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, count: Int? = nil) {
    rowTaps.withUnsafeBufferPointer { taps in
      if horizontal.stride == 1 {
        atr_filter_row(target, padded, count ?? rowLength, taps.baseAddress, Int32(taps.count),
                       horizontal.dilation * channels, rowSymmetry)
      } else {
        atr_filter_row_strided(target, padded, width, channels, taps.baseAddress, Int32(taps.count),
                               horizontal.stride, horizontal.dilation)
      }
    }
  }
}

/// Correlation with a general 2-D kernel, one kernel row at a time.
final class Kernel2DStage: ComputedStage {
  private let input: PaddedRows
  private let kernel: Kernel2D
  private let vertical: AxisPlan, horizontal: AxisPlan
  private let scratch: AlignedStorage

  init(upstream: RowStage, kernel: Kernel2D, geometry: FilterGeometry) throws {
    horizontal = try geometry.plan(count: upstream.width, taps: kernel.columns, vertical: false)
    vertical = try geometry.plan(count: upstream.height, taps: kernel.rows, vertical: true)
    self.kernel = kernel
    input = PaddedRows(upstream: upstream, border: geometry.border, padLeft: horizontal.padBegin,
                       padRight: horizontal.padEnd, simultaneousRows: kernel.rows)
    scratch = AlignedStorage(byteCount: horizontal.outputCount * upstream.channels * MemoryLayout<Float>.stride)
    super.init(height: vertical.outputCount, width: horizontal.outputCount, channels: upstream.channels)
  }

  override func compute(row y: Int, into out: UnsafeMutablePointer<Float>) {
    let first = vertical.firstTap(y)
    let rows = input.rows((0..<kernel.rows).map { first + $0 * vertical.dilation })
    out.update(repeating: 0, count: rowLength)
    let temp = scratch.pointer.assumingMemoryBound(to: Float.self)
    kernel.values.withUnsafeBufferPointer { values in
      for r in 0..<kernel.rows {
        let taps = values.baseAddress! + r * kernel.columns
        if horizontal.stride == 1 {
          atr_filter_row_accumulate(out, rows[r], rowLength, taps, Int32(kernel.columns),
                                    horizontal.dilation * channels)
        } else {
          atr_filter_row_strided(temp, rows[r], width, channels, taps, Int32(kernel.columns),
                                 horizontal.stride, horizontal.dilation)
          atr_scale_add(out, 1, temp, 1, rowLength)
        }
      }
    }
  }
}

/// A weighted sum of separable filters over the same input, all of one
/// size (Laplacian, Laplacian of Gaussian, difference of Gaussians, unsharp
/// masking).
final class CombinationStage: ComputedStage {
  private let terms: [(weight: Float, stage: SeparableStage)]
  private let scratch: AlignedStorage

  init(upstream: RowStage, terms: [(weight: Float, row: [Float], column: [Float])], geometry: FilterGeometry) throws {
    self.terms = try terms.map {
      ($0.weight, try SeparableStage(upstream: upstream, row: $0.row, column: $0.column, geometry: geometry))
    }
    let first = self.terms[0].stage
    scratch = AlignedStorage(byteCount: first.rowLength * MemoryLayout<Float>.stride)
    super.init(height: first.height, width: first.width, channels: first.channels)
  }

  override func compute(row y: Int, into out: UnsafeMutablePointer<Float>) {
    let temp = scratch.pointer.assumingMemoryBound(to: Float.self)
    terms[0].stage.compute(row: y, into: out)
    if terms[0].weight != 1 { atr_scale(out, terms[0].weight, rowLength) }
    for term in terms.dropFirst() {
      term.stage.compute(row: y, into: temp)
      atr_scale_add(out, 1, temp, term.weight, rowLength)
    }
  }
}

/// Gradient magnitude or direction from a pair of separable derivative
/// filters (x derivative, y derivative).
final class GradientStage: ComputedStage {
  enum Output { case magnitude, direction }

  private let dx: SeparableStage, dy: SeparableStage
  private let output: Output
  private let scratch: AlignedStorage

  init(upstream: RowStage, dx: (row: [Float], column: [Float]), dy: (row: [Float], column: [Float]),
       output: Output, geometry: FilterGeometry) throws {
    self.dx = try SeparableStage(upstream: upstream, row: dx.row, column: dx.column, geometry: geometry)
    self.dy = try SeparableStage(upstream: upstream, row: dy.row, column: dy.column, geometry: geometry)
    self.output = output
    scratch = AlignedStorage(byteCount: 2 * self.dx.rowLength * MemoryLayout<Float>.stride)
    super.init(height: self.dx.height, width: self.dx.width, channels: upstream.channels)
  }

  override func compute(row y: Int, into out: UnsafeMutablePointer<Float>) {
    let gx = scratch.pointer.assumingMemoryBound(to: Float.self), gy = gx + rowLength
    dx.compute(row: y, into: gx)
    dy.compute(row: y, into: gy)
    switch output {
    case .magnitude:
      atr_magnitude(out, gx, gy, rowLength)
    case .direction:
      // cv2.phase's range: [0, 2 pi).
      for j in 0..<rowLength {
        let angle = atan2f(gy[j], gx[j])
        out[j] = angle < 0 ? angle + 2 * Float.pi : angle
      }
    }
  }
}

/// The 3x3 Sobel gradient magnitude in one pass over the input: the fast
/// path of `GradientStage` for the common case (stride 1, no dilation,
/// same padding).
///
/// It reads the rows of a stored input in place, all but the pixels at
/// either end, whose windows it reads from padded copies of the few
/// elements they need. Otherwise (rows computed on demand, the constant
/// border's row, an image narrower than 3 pixels, or output rows whose
/// addresses alias the input's in their low 12 bits) it reads padded
/// copies of whole rows, kept in slots tagged with their source rows, an
/// odd number of lines apart. On 4096 x 4096 (AMD EPYC family 23 model
/// 1) the kernel alone took 15.9 ms over aliased rows in place against
/// 11.1 apart, as a load waits on an earlier store with the same low
/// address bits; the stage took 15.5 to 17.2 ms with copies and 12.8 to
/// 13.3 in place. `FilterChain` places its output apart from its input.
/// The slots are not a `RowCache`: a cache's lookups and arrays, paid once
/// per output row, were 15% of the time of a 4096 x 4096 image.
final class Sobel3MagnitudeStage: ComputedStage {
  private let input: PaddedRows
  /// Output rows made together, as the kernel groups them, and the padded
  /// rows they read.
  static let batchRows = 4
  static let slotCount = batchRows + 2
  override var rowBatch: Int { Self.batchRows }
  /// `slotCount` padded rows, `slotStride` floats apart.
  private let slots: AlignedStorage
  /// An odd number of 64-byte lines, as in `RowCache`.
  private let slotStride: Int
  /// `slotCount` windows of 3 pixels, the padded elements an end pixel
  /// reads from each row (`3 * channels` floats apart).
  private let ends: AlignedStorage
  /// The `PaddedRows.source` each slot holds (`Int.min`: none yet), then
  /// the sources of the rows a batch reads, where they are stored (read in
  /// place), pointers to the rows the kernel reads and to its output rows:
  /// allocated once, not per batch.
  private let held: UnsafeMutablePointer<Int>, wanted: UnsafeMutablePointer<Int>
  private let stored: UnsafeMutablePointer<UnsafePointer<Float>>
  private let inputs: UnsafeMutablePointer<UnsafePointer<Float>?>, outputs: UnsafeMutablePointer<UnsafeMutablePointer<Float>?>

  init(upstream: RowStage, border: BorderMode) {
    input = PaddedRows(upstream: upstream, border: border, padLeft: 1, padRight: 1, simultaneousRows: 0)
    slotStride = ((input.paddedLength + 15) / 16 | 1) * 16
    slots = AlignedStorage(byteCount: Self.slotCount * slotStride * MemoryLayout<Float>.stride, zeroed: false)
    ends = AlignedStorage(byteCount: Self.slotCount * 3 * upstream.channels * MemoryLayout<Float>.stride, zeroed: false)
    held = .allocate(capacity: Self.slotCount)
    held.initialize(repeating: Int.min, count: Self.slotCount)
    wanted = .allocate(capacity: Self.slotCount)
    stored = .allocate(capacity: Self.slotCount)
    inputs = .allocate(capacity: Self.slotCount)
    outputs = .allocate(capacity: Self.batchRows)
    super.init(height: upstream.height, width: upstream.width, channels: upstream.channels)
  }

  deinit {
    held.deallocate()
    wanted.deallocate()
    stored.deallocate()
    inputs.deallocate()
    outputs.deallocate()
  }

  override func compute(row y: Int, into out: UnsafeMutablePointer<Float>) {
    compute(rows: y..<(y + 1), into: out)
  }

  override func compute(rows ys: Range<Int>, into out: UnsafeMutablePointer<Float>) {
    for first in stride(from: ys.lowerBound, to: ys.upperBound, by: Self.batchRows) {
      let count = min(Self.batchRows, ys.upperBound - first)
      let reads = count + 2
      for i in 0..<reads { wanted[i] = input.source(first - 1 + i) }
      // Output element `start` of the batch's rows.
      func pointOutputs(at start: Int) {
        for i in 0..<count { outputs[i] = out + (first - ys.lowerBound + i) * rowLength + start }
      }
      pointOutputs(at: 0)
      let stream: Int32 = streamsOutput ? 1 : 0
      guard readsInPlace(reads: reads, count: count) else {
        for i in 0..<reads { inputs[i] = slot(wanted[i], window: reads) + channels }
        // The image rows the next batch pads, where they lie one after
        // another in memory: fetched while this batch's square roots run
        // rather than by the copies, which otherwise wait on memory with
        // nothing to overlap.
        let next = input.source(first + count + 1)
        var aheadRows = 0
        while aheadRows < Self.batchRows && next != PaddedRows.constant
                && input.source(first + count + 1 + aheadRows) == next + aheadRows {
          aheadRows += 1
        }
        let ahead = aheadRows == 0 ? nil : input.upstream.storedRow(next)
        atr_sobel3_magnitude(outputs, Int32(count), inputs, rowLength, channels, ahead, Int32(aheadRows), stream)
        continue
      }
      // Rows read in place need no prefetch: the hardware's follows them
      // (with one, 4096 x 4096 took 14.3 to 15.4 ms against 12.8 to 13.3).
      let c = channels
      for i in 0..<reads { inputs[i] = stored[i] + c }
      pointOutputs(at: c)
      atr_sobel3_magnitude(outputs, Int32(count), inputs, rowLength - 2 * c, c, nil, 0, stream)
      // The end pixels, output elements `start..<start + c`, from padded
      // elements `start..<start + 3c` (padded element e is image element
      // e - c).
      let window = ends.pointer.assumingMemoryBound(to: Float.self)
      for start in stride(from: 0, through: rowLength - c, by: rowLength - c) {
        for i in 0..<reads {
          input.padded(row: stored[i], elements: start..<(start + 3 * c), into: window + i * 3 * c)
          inputs[i] = UnsafePointer(window + i * 3 * c + c)
        }
        pointOutputs(at: start)
        atr_sobel3_magnitude(outputs, Int32(count), inputs, c, c, nil, 0, 0)
      }
    }
  }

  /// Whether a batch reads its rows in place (see the type's comment):
  /// all stored (where, in `stored`), the image at least 3 pixels wide,
  /// and no output row aliasing an input row.
  private func readsInPlace(reads: Int, count: Int) -> Bool {
    guard width >= 3 else { return false }
    for i in 0..<reads {
      guard wanted[i] != PaddedRows.constant, let row = input.upstream.storedRow(wanted[i]) else { return false }
      for r in 0..<count where Self.aliases(UnsafeRawPointer(outputs[r]!), UnsafeRawPointer(row)) { return false }
      stored[i] = row
    }
    return true
  }

  /// Whether stores to `output` and loads from `input` at the same offsets
  /// come within 256 bytes of each other in the low address bits a CPU
  /// compares (`AlignedStorage.aliasSpan`): 64 bytes measured, with room
  /// for a CPU whose loads run further ahead of its stores.
  static func aliases(_ output: UnsafeRawPointer, _ input: UnsafeRawPointer) -> Bool {
    let span = AlignedStorage.aliasSpan, near = 256
    let apart = (Int(bitPattern: output) - Int(bitPattern: input)) & (span - 1)
    return apart < near || apart > span - near
  }

  /// The padded row `source` gave, written into a slot holding none of the
  /// batch's rows (`wanted[0..<window]`) if no slot holds it: a batch
  /// reads at most `slotCount` rows, one of them this missing one, so
  /// some slot holds none of the others.
  private func slot(_ source: Int, window: Int) -> UnsafePointer<Float> {
    let base = slots.pointer.assumingMemoryBound(to: Float.self)
    let all = 0..<Self.slotCount
    if let i = all.first(where: { held[$0] == source }) { return UnsafePointer(base + i * slotStride) }
    let free = all.first { k in !(0..<window).contains { wanted[$0] == held[k] } }!
    input.write(source: source, into: base + free * slotStride)
    held[free] = source
    return UnsafePointer(base + free * slotStride)
  }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
