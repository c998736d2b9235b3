import Foundation

/// Ops that read an image at computed positions: GridSample, AffineGrid
/// (the grids it reads) and RoiAlign, following ONNX's reference.
enum Sampling {
  static func register(_ table: inout OperatorTable) {
    table["GridSample"] = { c in [try gridSample(c)] }
    table["AffineGrid"] = { c in [try affineGrid(c)] }
    table["RoiAlign"] = { c in [try roiAlign(c)] }
  }

  /// Keys' cubic convolution weights of the four taps around a point
  /// `t` (0...1) past the second, with a = -0.75.
  static func cubicWeights(_ t: Double) -> [Double] {
    let a = -0.75
    func near(_ x: Double) -> Double { ((a + 2) * x - (a + 3)) * x * x + 1 }
    func far(_ x: Double) -> Double { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
    return [far(t + 1), near(t), near(1 - t), far(2 - t)]
  }

  /// Reflects `x` into [low, high] by the nearer border until it is inside.
  static func reflect(_ x: Double, _ low: Double, _ high: Double) -> Double {
    let range = high - low
    guard range > 0 else { return low }
    if x < low {
      let dx = low - x, n = (dx / range).rounded(.towardZero), r = dx - n * range
      return Int(n) % 2 == 0 ? low + r : high - r
    }
    if x > high {
      let dx = x - high, n = (dx / range).rounded(.towardZero), r = dx - n * range
      return Int(n) % 2 == 0 ? high - r : low + r
    }
    return x
  }

  static func gridSample(_ c: OpContext) throws -> NDArray {
    let x = try c.input(0).standard(), grid = try c.input(1).standard()
    let d = x.rank - 2
    guard d >= 1, grid.rank == x.rank, grid.shape[0] == x.shape[0], grid.shape[x.rank - 1] == d else {
      throw c.mismatch("grid \(grid.shape) for input \(x.shape)")
    }
    var mode = try c.string("mode", default: "linear")
    mode = ["bilinear": "linear", "bicubic": "cubic"][mode] ?? mode
    guard ["linear", "nearest", "cubic"].contains(mode) else { throw c.unsupported("mode", mode) }
    let padding = try c.string("padding_mode", default: "zeros")
    guard ["zeros", "border", "reflection"].contains(padding) else { throw c.unsupported("padding_mode", padding) }
    let alignCorners = try c.int("align_corners", default: 0) == 1
    let (n, channels) = (x.shape[0], x.shape[1])
    let dims = Array(x.shape[2...]), outSpatial = Array(grid.shape[1..<(x.rank - 1)])
    let shape = [n, channels] + outSpatial
    try c.checkShape(shape)
    let plane = dims.reduce(1, *), outPlane = outSpatial.reduce(1, *)
    let strides = NDArray.strides(dims)
    let values = x.floatValues(), coordinates = grid.floatValues()
    let low: [Double] = dims.map { _ in alignCorners ? 0 : -0.5 }
    let high: [Double] = dims.map { alignCorners ? Double($0 - 1) : Double($0) - 0.5 }
    var out = [Float](repeating: 0, count: shape.reduce(1, *))
    for b in 0..<n {
      for o in 0..<outPlane {
        // The grid's last axis lists x (the last spatial axis) first.
        var position = (0..<d).map { k -> Double in
          let v = Double(coordinates[(b * outPlane + o) * d + (d - 1 - k)])
          let length = Double(dims[k])
          return alignCorners ? (v + 1) / 2 * (length - 1) : ((v + 1) * length - 1) / 2
        }
        if mode == "nearest" { position = position.map { $0.rounded(.toNearestOrEven) } }
        for k in 0..<d where position[k] < low[k] || position[k] > high[k] {
          if padding == "border" { position[k] = Swift.min(Swift.max(position[k], 0), Double(dims[k] - 1)) }
          if padding == "reflection" { position[k] = reflect(position[k], low[k], high[k]) }
        }
        // Taps per axis: (index, weight).
        let taps: [[(Int, Double)]] = (0..<d).map { k in
          let p = position[k]
          switch mode {
          case "nearest": return [(Int(p), 1)]
          case "linear":
            let i = Int(p.rounded(.down)), t = p - Double(i)
            return [(i, 1 - t), (i + 1, t)]
          default:
            let i = Int(p.rounded(.down))
            return zip(-1...2, cubicWeights(p - Double(i))).map { (i + $0, $1) }
          }
        }
        // The offset of a tap index along axis k, nil for a zero pixel.
        func offset(_ i: Int, _ k: Int) -> Int? {
          var i = i
          if i < 0 || i >= dims[k] {
            switch padding {
            case "zeros": return nil
            case "border": i = Swift.min(Swift.max(i, 0), dims[k] - 1)
            default: i = Swift.min(Swift.max(Int(reflect(Double(i), low[k], high[k])), 0), dims[k] - 1)
            }
          }
          return i * strides[k]
        }
        var corners: [(Int, Double)] = [(0, 1)]
        for k in 0..<d {
          corners = corners.flatMap { base, weight in
            taps[k].compactMap { i, w in offset(i, k).map { (base + $0, weight * w) } }
          }
        }
        for ch in 0..<channels {
          let source = (b * channels + ch) * plane
          var sum = 0.0
          for (at, w) in corners { sum += w * Double(values[source + at]) }
          out[(b * channels + ch) * outPlane + o] = Float(sum)
        }
      }
    }
    return NDArray(shape: shape, floats: out)
  }

  static func affineGrid(_ c: OpContext) throws -> NDArray {
    let theta = try c.input(0).standard()
    let size = try c.shapeInput(1)
    let d = size.count - 2
    guard d == 2 || d == 3, theta.shape == [size[0], d, d + 1] else {
      throw c.mismatch("theta \(theta.shape) for size \(size)")
    }
    let alignCorners = try c.int("align_corners", default: 0) == 1
    let dims = Array(size[2...]), n = size[0]
    let shape = [n] + dims + [d]
    try c.checkShape(shape)
    // The base grid along each axis, in [-1, 1].
    let axes = dims.map { length in
      (0..<length).map { k -> Double in
        if !alignCorners { return -1 + (2 * Double(k) + 1) / Double(length) }
        return length == 1 ? -1 : -1 + 2 * Double(k) / Double(length - 1)
      }
    }
    let t = theta.floatValues().map(Double.init)
    let points = dims.reduce(1, *)
    var out = [Float](repeating: 0, count: n * points * d)
    var index = [Int](repeating: 0, count: d)
    for p in 0..<points {
      // Homogeneous (x, y[, z], 1), x along the last axis.
      let homogeneous = (0..<d).map { axes[d - 1 - $0][index[d - 1 - $0]] } + [1]
      for b in 0..<n {
        for r in 0..<d {
          var sum = 0.0
          for k in 0...d { sum += t[(b * d + r) * (d + 1) + k] * homogeneous[k] }
          out[(b * points + p) * d + r] = Float(sum)
        }
      }
      advance(&index, within: dims)
    }
    return NDArray(shape: shape, floats: out)
  }

  static func roiAlign(_ c: OpContext) throws -> NDArray {
    let x = try c.input(0).standard(), rois = try c.input(1).standard(), batches = try c.input(2).intValues()
    guard x.rank == 4, rois.rank == 2, rois.shape[1] == 4, batches.count == rois.shape[0] else {
      throw c.mismatch("rois \(rois.shape) and batch indices of \(batches.count) for input \(x.shape)")
    }
    let halfPixel = try c.string("coordinate_transformation_mode", default: c.opset >= 16 ? "half_pixel" : "output_half_pixel")
      == "half_pixel"
    let maxMode = try c.string("mode", default: "avg") == "max"
    let (oh, ow) = (try c.int("output_height", default: 1), try c.int("output_width", default: 1))
    let ratio = try c.int("sampling_ratio", default: 0)
    guard ratio >= 0 && ratio <= 1024 else { throw c.invalid("sampling_ratio", "\(ratio)") }
    let scale = Double(try c.float("spatial_scale", default: 1))
    let (channels, height, width) = (x.shape[1], x.shape[2], x.shape[3])
    let shape = [rois.shape[0], channels, oh, ow]
    guard oh >= 1, ow >= 1, scale.isFinite else { throw c.invalid("output_height", "\(oh)x\(ow)") }
    try c.checkShape(shape)
    let values = x.floatValues().map(Double.init), boxes = rois.floatValues().map(Double.init)
    var out = [Float](repeating: 0, count: shape.reduce(1, *))
    for r in 0..<rois.shape[0] {
      let batch = batches[r]
      guard batch >= 0 && batch < x.shape[0] else { throw c.mismatch("batch index \(batch) for \(x.shape[0]) images") }
      let offset = halfPixel ? 0.5 : 0
      let (x0, y0) = (boxes[r * 4] * scale - offset, boxes[r * 4 + 1] * scale - offset)
      var (roiW, roiH) = (boxes[r * 4 + 2] * scale - offset - x0, boxes[r * 4 + 3] * scale - offset - y0)
      if !halfPixel { (roiW, roiH) = (Swift.max(roiW, 1), Swift.max(roiH, 1)) }
      let (binH, binW) = (roiH / Double(oh), roiW / Double(ow))
      // Samples per bin: sampling_ratio, or as many as the bin is wide;
      // refused past 2^10 a side (a box of a million pixels per bin).
      func samples(_ bin: Double) throws -> Int {
        if ratio > 0 { return ratio }
        guard bin.isFinite, bin <= 1024 else { throw c.mismatch("a box of \(roiW)x\(roiH) pixels for \(oh)x\(ow) bins") }
        return Swift.max(0, Int(bin.rounded(.up)))
      }
      let gridH = try samples(binH), gridW = try samples(binW)
      let count = Double(Swift.max(gridH * gridW, 1))
      for ch in 0..<channels {
        let source = (batch * channels + ch) * height * width
        for ph in 0..<oh {
          for pw in 0..<ow {
            var total = 0.0, best = -Double.infinity, any = false
            for iy in 0..<Swift.max(gridH, 0) {
              for ix in 0..<Swift.max(gridW, 0) {
                var y = y0 + Double(ph) * binH + (Double(iy) + 0.5) * binH / Double(gridH)
                var xx = x0 + Double(pw) * binW + (Double(ix) + 0.5) * binW / Double(gridW)
                var terms = [0.0, 0, 0, 0]
                if !(y < -1 || y > Double(height) || xx < -1 || xx > Double(width)) {
                  y = Swift.max(y, 0)
                  xx = Swift.max(xx, 0)
                  var (yLow, xLow) = (Int(y), Int(xx))
                  var yHigh = yLow + 1, xHigh = xLow + 1
                  if yLow >= height - 1 { yLow = height - 1; yHigh = yLow; y = Double(yLow) }
                  if xLow >= width - 1 { xLow = width - 1; xHigh = xLow; xx = Double(xLow) }
                  let (ly, lx) = (y - Double(yLow), xx - Double(xLow))
                  let (hy, hx) = (1 - ly, 1 - lx)
                  terms = [hy * hx * values[source + yLow * width + xLow], hy * lx * values[source + yLow * width + xHigh],
                           ly * hx * values[source + yHigh * width + xLow], ly * lx * values[source + yHigh * width + xHigh]]
                }
                total += terms.reduce(0, +)
                // Max mode takes the largest weighted corner, as ONNX Runtime does.
                best = any ? Swift.max(best, terms.max()!) : terms.max()!
                any = true
              }
            }
            out[((r * channels + ch) * oh + ph) * ow + pw] = Float(maxMode ? (any ? best : 0) : total / count)
          }
        }
      }
    }
    return NDArray(shape: shape, floats: out)
  }
}
