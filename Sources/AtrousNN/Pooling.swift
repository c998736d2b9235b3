import AtrousCore
import _CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// MaxPool, AveragePool and the global pools on channels-last storage;
/// pooling of other ranks, MaxPool's Indices, LpPool and MaxUnpool in
/// plain loops on standard layout.
enum Pooling {
  enum Kind {
    case max, average, lp(Float)
  }

  static func register(_ table: inout OperatorTable) {
    table.add("MaxPool", outputs: [.input(0), .fixed(.int64)]) { c in try maxPool(c) }
    table["AveragePool"] = { c in try c.input(0).rank == 4 ? [try pool(c, max: false)] : poolND(c, .average) }
    table["LpPool"] = { c in try poolND(c, .lp(Float(try c.int("p", default: 2)))) }
    table["GlobalAveragePool"] = { c in try c.input(0).rank == 4 ? [try global(c, max: false)] : globalND(c, .average) }
    table["GlobalMaxPool"] = { c in try c.input(0).rank == 4 ? [try global(c, max: true)] : globalND(c, .max) }
    table["GlobalLpPool"] = { c in try globalND(c, .lp(Float(try c.int("p", default: 2)))) }
    table["MaxUnpool"] = { c in try [maxUnpool(c)] }
    let windows = ["MaxPool", "AveragePool", "LpPool"], globals = ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"]
    table.describe(windows + globals + ["MaxUnpool"], floatData: true)
    table.describe(windows + globals, tracesShapes: true)
    table.describe(windows, spatiallyLocal: true, field: ReceptiveField.windowRule)
    table.describe(globals, field: ReceptiveField.wholeMapRule)
  }

  /// MaxPool: on channels-last storage for 2-D windows without the
  /// Indices output, else in plain loops.
  static func maxPool(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0)
    let indices = c.node.outputs.count > 1 && !c.node.outputs[1].isEmpty
    if x.rank != 4 || indices { return try poolND(c, .max) }
    return [try pool(c, max: true)]
  }

  /// The window of a 2-D pooling node over a map of `height` x `width`.
  static func window(_ c: OpContext, height: Int, width: Int) throws -> [WindowAxis] {
    guard let kernel = try c.ints("kernel_shape") else { throw c.invalid("kernel_shape", "required") }
    return try windowAxes(c, height: height, width: width, kernel: kernel, ceilMode: try c.int("ceil_mode", default: 0) == 1)
  }

  /// Output row `oy` of 2-D pooling over channels-last rows of `channels`
  /// floats a pixel into `out`: `row(iy)` is input row iy, for iy inside
  /// the map. `rows` (one per window row) and `geometry` (of `axes`) are
  /// the caller's, made once.
  static func poolRow(_ out: UnsafeMutablePointer<Float>, _ oy: Int, axes: [WindowAxis], channels: Int, mode: atr_pool_mode,
                      geometry: inout atr_conv_geometry, rows: inout [UnsafePointer<Float>?],
                      row: (Int) -> UnsafePointer<Float>) {
    let h = axes[0].input
    var padded = 0
    for ky in 0..<axes[0].kernel {
      let iy = oy * axes[0].stride - axes[0].padBegin + ky * axes[0].dilation
      if iy >= -axes[0].padBegin && iy < h + axes[0].padEnd { padded += 1 }
      rows[ky] = iy >= 0 && iy < h ? row(iy) : nil
    }
    atr_pool_row(out, rows, &geometry, channels, mode, padded, axes[1].padEnd)
  }

  /// Pooling over every spatial axis of an (N, C, ...) input as a
  /// window the size of the input.
  static func globalND(_ c: OpContext, _ kind: Kind) throws -> [NDArray] {
    let x = try c.input(0).standard()
    guard x.rank >= 3 else { throw c.mismatch("input of rank \(x.rank)") }
    let spatial = Array(x.shape[2...])
    var node = c.node
    node.attributes = ["kernel_shape": .ints(spatial)]
    return [try poolND(c.nested(node, inputs: [x]), kind)[0]]
  }

  /// Pooling in plain loops over (N, C, spatial...) in standard layout,
  /// any number of spatial axes. MaxPool's second output holds the flat
  /// index of each maximum in the input (row-major, or with
  /// storage_order = 1 column-major within each plane).
  static func poolND(_ c: OpContext, _ kind: Kind) throws -> [NDArray] {
    let x = try c.input(0).standard()
    guard x.rank >= 3 else { throw c.mismatch("input of rank \(x.rank)") }
    guard let kernel = try c.ints("kernel_shape") else { throw c.invalid("kernel_shape", "required") }
    let spatial = Array(x.shape[2...])
    let ceilMode = try c.int("ceil_mode", default: 0) == 1
    let includePad = try c.int("count_include_pad", default: 0) == 1
    let columnMajor = try c.int("storage_order", default: 0) == 1
    let axes = try windowAxes(c, sizes: spatial, kernel: kernel, ceilMode: ceilMode)
    let outSpatial = axes.map(\.output)
    let shape = Array(x.shape[..<2]) + outSpatial
    try c.checkShape(shape)
    let planes = x.shape[0] * x.shape[1], planeSize = spatial.reduce(1, *), outPlane = outSpatial.reduce(1, *)
    let values = c.shapesOnly ? [] : x.floatValues()
    var out = [Float](repeating: 0, count: c.shapesOnly ? 0 : planes * outPlane)
    var argmax = [Int64](repeating: 0, count: out.count)
    let inStrides = NDArray.strides(spatial)
    let d = spatial.count
    var columnStrides = [Int](repeating: 1, count: d)  // strides of a column-major plane
    for k in 1..<Swift.max(d, 1) { columnStrides[k] = columnStrides[k - 1] * spatial[k - 1] }
    if !c.shapesOnly {
      let taps = kernel.reduce(1, *)
      // Odometers over output positions and kernel taps; each wraps back to
      // zeros after its last step, so they are made once.
      var position = [Int](repeating: 0, count: d), tap = [Int](repeating: 0, count: d)
      for p in 0..<planes {
        for o in 0..<outPlane {
          var best = -Float.infinity, bestAt = -1, sum: Float = 0, valid = 0, padded = 0
          for _ in 0..<taps {
            var offset = 0, column = 0, inside = true, inPadded = true
            for k in 0..<d {
              let i = position[k] * axes[k].stride - axes[k].padBegin + tap[k] * axes[k].dilation
              if i < 0 || i >= spatial[k] { inside = false }
              if i < -axes[k].padBegin || i >= spatial[k] + axes[k].padEnd { inPadded = false }
              offset += i * inStrides[k]
              column += i * columnStrides[k]
            }
            if inPadded { padded += 1 }
            if inside {
              valid += 1
              let v = values[p * planeSize + offset]
              switch kind {
              case .max: if v > best || bestAt < 0 || v.isNaN { best = v; bestAt = columnMajor ? column : offset }
              case .average: sum += v
              case .lp(let power): sum += Glibc.pow(Swift.abs(v), power)
              }
            }
            advance(&tap, within: kernel)
          }
          switch kind {
          case .max:
            out[p * outPlane + o] = best
            argmax[p * outPlane + o] = Int64(p * planeSize + Swift.max(bestAt, 0))
          case .average: out[p * outPlane + o] = sum / Float(Swift.max(includePad ? padded : valid, 1))
          case .lp(let power): out[p * outPlane + o] = Glibc.pow(sum, 1 / power)
          }
          advance(&position, within: outSpatial)
        }
      }
    }
    if c.shapesOnly { return [NDArray(shape: shape, floats: Tensor.uninitialized(shape: shape))] }
    return [NDArray(shape: shape, floats: out), NDArray(shape: shape, int64s: argmax)]
  }

  /// MaxUnpool: each value written at its index in a zero output of the
  /// size MaxPool's input had (or output_shape).
  static func maxUnpool(_ c: OpContext) throws -> NDArray {
    let x = try c.input(0).standard(), indices = try c.input(1).standard()
    guard x.rank >= 3, indices.shape == x.shape else { throw c.mismatch("indices \(indices.shape) for input \(x.shape)") }
    guard let kernel = try c.ints("kernel_shape"), kernel.count == x.rank - 2 else { throw c.invalid("kernel_shape", "required") }
    let d = kernel.count
    let strides = try c.ints("strides") ?? [Int](repeating: 1, count: d)
    let pads = try c.ints("pads") ?? [Int](repeating: 0, count: 2 * d)
    guard strides.count == d, pads.count == 2 * d else { throw c.invalid("pads", "\(pads)") }
    // Indices count in the size MaxPool's input had; an output_shape
    // larger than that keeps each value at its coordinates.
    let natural = Array(x.shape[..<2]) + (0..<d).map { (x.shape[$0 + 2] - 1) * strides[$0] + kernel[$0] - pads[$0] - pads[$0 + d] }
    let shape = c.optionalInput(2)?.intValues() ?? natural
    guard shape.count == x.rank, zip(shape, natural).allSatisfy({ $0 >= $1 }) else {
      throw c.mismatch("output shape \(shape) for input \(x.shape)")
    }
    try c.checkShape(shape)
    let (from, to) = (NDArray.strides(natural), NDArray.strides(shape))
    var out = [Float](repeating: 0, count: shape.reduce(1, *))
    for (v, i) in zip(x.floatValues(), indices.intValues()) {
      guard i >= 0 && i < natural.reduce(1, *) else { throw c.mismatch("index \(i) is outside the input size \(natural)") }
      var target = 0
      for k in 0..<x.rank { target += (i / from[k]) % natural[k] * to[k] }
      out[target] = v
    }
    return NDArray(shape: shape, floats: out)
  }

  static func pool(_ c: OpContext, max: Bool) throws -> NDArray {
    let x = try c.input(0)
    guard x.rank == 4 else { throw c.unsupported("input rank", x.rank) }
    let includePad = try c.int("count_include_pad", default: 0) == 1
    let axes = try window(c, height: x.shape[2], width: x.shape[3])
    if c.shapesOnly {
      return NDArray(channelsLast: Tensor.uninitialized(shape: [x.shape[0], axes[0].output, axes[1].output, x.shape[1]]))
    }
    let input = x.toChannelsLast().storage!
    let (n, h, w, ch) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let (oh, ow) = (axes[0].output, axes[1].output)
    var output = Tensor.uninitialized(shape: [n, oh, ow, ch])
    // Bands of output rows across threads, once the input is big enough to
    // pay for them (it is what a pool reads; a strided pool's output is a
    // fraction of it).
    let bands = Parallel.ranges(n * oh, parts: input.count >= Elementwise.parallelThreshold ? c.threads : 1)
    let mode = max ? ATR_POOL_MAX : includePad ? ATR_POOL_AVERAGE_PADDED : ATR_POOL_AVERAGE
    let window = atr_conv_geometry(axes, pixelStride: ch)
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        Parallel.run(bands.count) { band in
          var rows = [UnsafePointer<Float>?](repeating: nil, count: axes[0].kernel), geometry = window
          for row in bands[band] {
            let b = row / oh
            poolRow(dst.baseAddress! + row * ow * ch, row % oh, axes: axes, channels: ch, mode: mode, geometry: &geometry,
                    rows: &rows) { src.baseAddress! + (b * h + $0) * w * ch }
          }
        }
      }
    }
    return NDArray(channelsLast: output)
  }

  static func global(_ c: OpContext, max: Bool) throws -> NDArray {
    let x = try c.input(0)
    guard x.rank == 4 else { throw c.unsupported("input rank", x.rank) }
    if c.shapesOnly { return NDArray(channelsLast: Tensor.uninitialized(shape: [x.shape[0], 1, 1, x.shape[1]])) }
    return NDArray(channelsLast: overSpace(x, max ? .max : .mean, threads: c.threads))
  }

  enum Spatial { case max, sum, mean }

  /// The max, sum or mean over H and W of a rank-4 float array, (N, 1, 1,
  /// C), from channels-last storage, a run of channels over all pixels at
  /// a time (`atr_pixels_into`). With threads to share and at least
  /// `Elementwise.parallelThreshold` elements, each thread takes a band of
  /// each image's rows into a partial of its own, and the partials are
  /// combined after: the bands are those the convolution before most
  /// often wrote from the same thread, so the rows come from that core's
  /// cache (the whole pool on one thread read half of them from the
  /// other's, and took longer at 2 threads than at 1).
  static func overSpace(_ x: NDArray, _ kind: Spatial, threads: Int = 1) -> Tensor {
    let input = x.toChannelsLast().storage!
    let (n, h, w, ch) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let start: Float = kind == .max ? -.infinity : 0
    var output = Tensor(shape: [n, 1, 1, ch], repeating: start)
    guard n * ch > 0 else { return output }
    let bands = Parallel.ranges(h, parts: input.count >= Elementwise.parallelThreshold ? threads : 1)
    var partials = [Float](repeating: start, count: bands.count * n * ch)  // (bands, N, C)
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in partials.withUnsafeMutableBufferPointer { parts in
        let (source, target, partial) = (src.baseAddress!, dst.baseAddress!, parts.baseAddress!)
        Parallel.run(bands.count) { band in
          let rows = bands[band]
          for b in 0..<n {
            atr_pixels_into(partial + (band * n + b) * ch, source + (b * h + rows.lowerBound) * w * ch, rows.count * w, ch,
                            kind == .max ? 1 : 0)
          }
        }
        for band in bands.indices {
          let part = partial + band * n * ch
          if kind == .max { atr_max_into(target, part, n * ch) } else { atr_add_into(target, part, n * ch) }
        }
        if kind == .mean && h * w > 0 { atr_scale(target, 1 / Float(h * w), n * ch) }
      } }
    }
    return output
  }
}
