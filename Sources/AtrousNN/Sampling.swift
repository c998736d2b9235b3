
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
  static func cubicWeights(_ t: Double) -> (Double, Double, Double, Double) {
    func k(_ x: Double) -> Double { Resize.cubicKernel(x, a: -0.75) }
    return (k(t + 1), k(t), k(1 - t), k(2 - t))
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
    // Made once and refilled for every output point: the taps along each
    // axis (index, weight) and the corners they span (offset, weight).
    var taps = [[(Int, Double)]](repeating: [], count: d)
    var corners: [(Int, Double)] = [], spread: [(Int, Double)] = []
    for b in 0..<n {
      for o in 0..<outPlane {
        for k in 0..<d {
          // The grid's last axis lists x (the last spatial axis) first.
          let v = Double(coordinates[(b * outPlane + o) * d + (d - 1 - k)])
          let length = Double(dims[k])
          var p = alignCorners ? (v + 1) / 2 * (length - 1) : ((v + 1) * length - 1) / 2
          if mode == "nearest" { p = p.rounded(.toNearestOrEven) }
          if p < low[k] || p > high[k] {
            if padding == "border" { p = Swift.min(Swift.max(p, 0), length - 1) }
            if padding == "reflection" { p = reflect(p, low[k], high[k]) }
          }
          taps[k].removeAll(keepingCapacity: true)
          let i = Int(p.rounded(.down)), t = p - Double(i)
          switch mode {
          case "nearest": taps[k].append((Int(p), 1))
          case "linear":
            taps[k].append((i, 1 - t))
            taps[k].append((i + 1, t))
          default:
            let (w0, w1, w2, w3) = cubicWeights(t)
            taps[k].append((i - 1, w0))
            taps[k].append((i, w1))
            taps[k].append((i + 1, w2))
            taps[k].append((i + 2, w3))
          }
        }
        corners.removeAll(keepingCapacity: true)
        corners.append((0, 1))
        for k in 0..<d {
          spread.removeAll(keepingCapacity: true)
          for (base, weight) in corners {
            for (i, w) in taps[k] { if let at = offset(i, k) { spread.append((base + at, weight * w)) } }
          }
          swap(&corners, &spread)
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
