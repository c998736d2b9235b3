import AtrousCore
import _CKernels

/// Resize (opset 10 and later) and Upsample, applied one axis at a time
/// (every mode is separable). Nearest and linear run on fast paths; cubic,
/// antialiased and tf_crop_and_resize resizing run through weight lists
/// built as ONNX's reference builds them.
enum Resize {
  static func register(_ table: inout OperatorTable) {
    table["Resize"] = { c in try resize(c) }
    table["Upsample"] = { c in try upsample(c) }
    table.describe(["Resize", "Upsample"], floatData: true, spatiallyLocal: true, field: { base, t in
      guard let x = t.map(0), let y = t.outputShapes.first, y.count == 4 else { return base }
      let mode = t.string("mode")
      let linear = mode == "linear" || mode == "bilinear"
      var out = base
      for d in 0..<2 {
        let f = Double(y[d + 2]) / Double(x[d + 2])
        // Output pixel i is centred on input coordinate (i + 0.5) / f - 0.5.
        out.start[d] += (0.5 / f - 0.5) * base.jump[d]
        if linear { out.size[d] += base.jump[d] }
        out.jump[d] /= f
      }
      return out
    })
  }

  enum Mode { case nearest, linear, cubic }

  struct Plan {
    var mode: Mode
    var coordinates: String
    var nearestMode: String
    var antialias = false
    var cubicA: Double = -0.75
    var excludeOutside = false
    /// tf_crop_and_resize: per axis (start, end) as fractions of the input.
    var roi: [(Double, Double)] = []
    var extrapolation: Float = 0

    /// Whether the weight lists of `weights` are needed.
    var general: Bool { mode == .cubic || (antialias && mode == .linear) || coordinates == "tf_crop_and_resize" }
  }

  static func resize(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0)
    let modeName = try c.string("mode", default: "nearest")
    let mode: Mode
    switch modeName {
    case "nearest": mode = .nearest
    case "linear", "bilinear": mode = .linear
    case "cubic", "bicubic": mode = .cubic
    default: throw c.unsupported("mode", modeName)
    }
    var coordinates = try c.string("coordinate_transformation_mode", default: "half_pixel")
    if c.opset < 11 { coordinates = "asymmetric" }
    let known = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
                 "half_pixel_symmetric", "tf_crop_and_resize"]
    guard known.contains(coordinates) else { throw c.unsupported("coordinate_transformation_mode", coordinates) }
    let nearestMode = try c.string("nearest_mode", default: c.opset < 11 ? "floor" : "round_prefer_floor")
    guard ["floor", "ceil", "round_prefer_ceil", "round_prefer_floor"].contains(nearestMode) else {
      throw c.unsupported("nearest_mode", nearestMode)
    }
    let axes = try (c.ints("axes") ?? Array(0..<x.rank)).map { try c.axis($0, rank: x.rank, attribute: "axes") }
    var plan = Plan(mode: mode, coordinates: coordinates, nearestMode: nearestMode)
    plan.antialias = try c.int("antialias", default: 0) != 0
    plan.cubicA = Double(try c.float("cubic_coeff_a", default: -0.75))
    plan.excludeOutside = try c.int("exclude_outside", default: 0) != 0
    plan.extrapolation = try c.float("extrapolation_value", default: 0)
    if coordinates == "tf_crop_and_resize" {
      let roi = try c.opset >= 11 ? c.input(1).floatValues().map(Double.init) : []
      guard roi.count == 2 * axes.count else { throw c.mismatch("roi of \(roi.count) values for \(axes.count) axes") }
      plan.roi = [(Double, Double)](repeating: (0, 1), count: x.rank)
      for (k, a) in axes.enumerated() { plan.roi[a] = (roi[k], roi[k + axes.count]) }
    }
    // Inputs: opset 10 (X, scales); 11+ (X, roi, scales, sizes).
    let scalesInput = c.opset < 11 ? c.optionalInput(1) : c.optionalInput(2)
    let sizesInput = c.opset < 11 ? nil : c.optionalInput(3)
    var scales = [Double](repeating: 1, count: x.rank)
    var sizes = x.shape
    if let sizesInput, sizesInput.count > 0 {
      let given = sizesInput.intValues()
      guard given.count == axes.count else { throw c.mismatch("\(given.count) sizes for \(axes.count) axes") }
      let policy = try c.string("keep_aspect_ratio_policy", default: "stretch")
      if policy == "stretch" {
        for (k, a) in axes.enumerated() {
          sizes[a] = given[k]
          scales[a] = Double(given[k]) / Double(x.shape[a])
        }
      } else {
        let ratios = axes.enumerated().map { Double(given[$0.offset]) / Double(x.shape[$0.element]) }
        let scale: Double
        switch policy {
        case "not_larger": scale = ratios.min()!
        case "not_smaller": scale = ratios.max()!
        default: throw c.unsupported("keep_aspect_ratio_policy", policy)
        }
        for a in axes {
          scales[a] = scale
          sizes[a] = Int((scale * Double(x.shape[a])).rounded(.toNearestOrAwayFromZero))
        }
      }
    } else if let scalesInput, scalesInput.count > 0 {
      let given = scalesInput.floatValues()
      guard given.count == axes.count else { throw c.mismatch("\(given.count) scales for \(axes.count) axes") }
      for (k, a) in axes.enumerated() {
        guard given[k] > 0, given[k] < 1e6 else { throw c.invalid("scales", "\(given)") }
        scales[a] = Double(given[k])
        sizes[a] = Int((Double(x.shape[a]) * Double(given[k])).rounded(.down))
      }
    } else {
      throw c.invalid("scales", "neither scales nor sizes given")
    }
    try c.checkShape(sizes)
    return [try apply(x, sizes: sizes, scales: scales, plan: plan, c)]
  }

  static func upsample(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0)
    let scalesF = try c.opset >= 9 ? c.input(1).floatValues() : (c.floats("scales") ?? [])
    guard scalesF.count == x.rank else { throw c.mismatch("\(scalesF.count) scales for rank \(x.rank)") }
    let modeName = try c.string("mode", default: "nearest")
    let mode: Mode = modeName == "nearest" ? .nearest : .linear
    let scales = scalesF.map(Double.init)
    guard scales.allSatisfy({ $0 > 0 && $0 < 1e6 }) else { throw c.invalid("scales", "\(scalesF)") }
    let sizes = zip(x.shape, scales).map { Int((Double($0) * $1).rounded(.down)) }
    try c.checkShape(sizes)
    return [try apply(x, sizes: sizes, scales: scales, plan: Plan(mode: mode, coordinates: "asymmetric", nearestMode: "floor"), c)]
  }

  /// Input coordinate of output coordinate `i` along an axis.
  static func source(_ i: Int, inLength: Int, outLength: Int, scale: Double, mode: String) -> Double {
    let x = Double(i)
    switch mode {
    case "half_pixel": return (x + 0.5) / scale - 0.5
    case "pytorch_half_pixel": return outLength > 1 ? (x + 0.5) / scale - 0.5 : 0
    case "align_corners":
      // The resized length is input * scale, before rounding (ONNX).
      let resized = Double(inLength) * scale
      return resized <= 1 ? 0 : x * Double(inLength - 1) / (resized - 1)
    case "asymmetric": return x / scale
    case "tf_half_pixel_for_nn": return (x + 0.5) / scale
    case "half_pixel_symmetric":
      let adjustment = Double(outLength) / (scale * Double(inLength))
      let center = Double(inLength) / 2
      let offset = center * (1 - adjustment)
      return offset + (x + 0.5) / scale - 0.5
    default: return (x + 0.5) / scale - 0.5
    }
  }

  static func nearest(_ v: Double, mode: String) -> Int {
    switch mode {
    case "floor": return Int(v.rounded(.down))
    case "ceil": return Int(v.rounded(.up))
    case "round_prefer_ceil": return Int((v + 0.5).rounded(.down))
    default:  // round_prefer_floor
      return v == v.rounded(.down) + 0.5 ? Int(v.rounded(.down)) : Int(v.rounded())
    }
  }

  /// One output coordinate's input neighbours and the second's weight
  /// (nearest: both the same, weight 0).
  static func taps(inLength: Int, outLength: Int, scale: Double, plan: Plan) -> [(Int, Int, Float)] {
    (0..<outLength).map { i in
      let s = source(i, inLength: inLength, outLength: outLength, scale: scale, mode: plan.coordinates)
      switch plan.mode {
      case .nearest:
        let j = min(max(nearest(s, mode: plan.nearestMode), 0), inLength - 1)
        return (j, j, 0)
      case .linear, .cubic:
        let clamped = min(max(s, 0), Double(inLength - 1))
        let low = Int(clamped.rounded(.down))
        return (low, min(low + 1, inLength - 1), Float(clamped - Double(low)))
      }
    }
  }

  /// Keys' cubic convolution kernel at distance `x`, with coefficient `a`
  /// (ONNX's cubic_coeff_a; -0.75 as OpenCV and PyTorch).
  static func cubicKernel(_ x: Double, a: Double) -> Double {
    let x = Swift.abs(x)
    if x <= 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
    if x < 2 { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
    return 0
  }

  /// Each output coordinate's input taps and weights for cubic, antialiased
  /// or tf_crop_and_resize resizing (nil: outside the crop, the
  /// extrapolation value), as ONNX's reference computes them.
  static func weights(inLength: Int, outLength: Int, scale: Double, roi: (Double, Double)?, plan: Plan) -> [[(Int, Float)]?] {
    let a = plan.cubicA
    func cubic(_ x: Double) -> Double { cubicKernel(x, a: a) }
    return (0..<outLength).map { i -> [(Int, Float)]? in
      var s: Double
      if let (start, end) = roi {
        s = outLength == 1 ? (end - start) * Double(inLength - 1) / 2
          : Double(i) * (end - start) * Double(inLength - 1) / Double(outLength - 1)
        s += start * Double(inLength - 1)
        if s < 0 || s > Double(inLength - 1) { return nil }
      } else {
        s = source(i, inLength: inLength, outLength: outLength, scale: scale, mode: plan.coordinates)
        if plan.coordinates == "pytorch_half_pixel" && outLength == 1 { s = -0.5 }
      }
      // The tap just left of s (s itself when s is whole, with ratio 1).
      let base = Int(s.rounded(.up)) - 1
      let ratio = s - Double(base)
      var offsets: [Int], coefficients: [Double]
      let stretch = plan.antialias ? Swift.min(scale, 1) : 1
      switch plan.mode {
      case .nearest:
        return [(Swift.min(Swift.max(nearest(s, mode: plan.nearestMode), 0), inLength - 1), 1)]
      case .cubic:
        let first = plan.antialias ? Int((-2 / stretch).rounded(.down)) + 1 : -1
        offsets = Array(first...(1 - first))
        coefficients = offsets.map { cubic(stretch * (Double($0) - ratio)) }
      default:
        let first = plan.antialias ? Int((-1 / stretch).rounded(.down)) + 1 : 0
        offsets = Array(first...(1 - first))
        coefficients = offsets.map { Swift.max(0, 1 - Swift.abs(stretch * (Double($0) - ratio))) }
      }
      var taps = zip(offsets, coefficients).map { (base + $0, $1) }
      if plan.excludeOutside { taps = taps.map { ($0.0 < 0 || $0.0 >= inLength) ? ($0.0, 0) : $0 } }
      let total = taps.reduce(0) { $0 + $1.1 }
      let normalize = plan.antialias || plan.excludeOutside
      return taps.map { (Swift.min(Swift.max($0.0, 0), inLength - 1), Float(normalize && total != 0 ? $0.1 / total : $0.1)) }
    }
  }

  /// Height and width resized on channels-last storage: each output pixel
  /// blends up to four input channel vectors; rows split across threads.
  static func spatial(_ x: NDArray, height: Int, width: Int, scales: [Double], plan: Plan, threads: Int) -> NDArray {
    let input = x.toChannelsLast().storage!
    let (n, h, w, ch) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let rows = taps(inLength: h, outLength: height, scale: scales[2], plan: plan)
    let columns = taps(inLength: w, outLength: width, scale: scales[3], plan: plan)
    var output = Tensor.uninitialized(shape: [n, height, width, ch])
    let bands = Parallel.ranges(n * height, parts: threads)
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        let source = src.baseAddress!, target = dst.baseAddress!
        Parallel.run(bands.count) { band in
          for row in bands[band] {
            let b = row / height, (y0, y1, fy) = rows[row % height]
            let top = source + (b * h + y0) * w * ch, bottom = source + (b * h + y1) * w * ch
            for ox in 0..<width {
              let (x0, x1, fx) = columns[ox]
              let out = target + (row * width + ox) * ch
              if fx == 0 && fy == 0 {
                out.update(from: top + x0 * ch, count: ch)
                continue
              }
              let w00 = (1 - fy) * (1 - fx), w01 = (1 - fy) * fx, w10 = fy * (1 - fx), w11 = fy * fx
              let p00 = top + x0 * ch, p01 = top + x1 * ch, p10 = bottom + x0 * ch, p11 = bottom + x1 * ch
              for k in 0..<ch { out[k] = p00[k] * w00 + p01[k] * w01 + p10[k] * w10 + p11[k] * w11 }
            }
          }
        }
      }
    }
    return NDArray(channelsLast: output)
  }

  /// Height and width resized into (N, C, H, W) planes, for an output
  /// that leaves the graph in that layout (a segmentation model's last
  /// upsampling to the image's size): the values `spatial` makes, with no
  /// transpose of the whole output after. The input (the smaller side
  /// when upsampling) is made planes if it is not; rows of planes split
  /// across threads.
  static func planes(_ x: NDArray, height: Int, width: Int, scales: [Double], plan: Plan, threads: Int) -> NDArray {
    let input = x.standard().storage!  // (N, C, H, W)
    let (n, channels, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let rows = taps(inLength: h, outLength: height, scale: scales[2], plan: plan)
    let columns = taps(inLength: w, outLength: width, scale: scales[3], plan: plan)
    let (low, high, fx) = (columns.map(\.0), columns.map(\.1), columns.map(\.2))
    var output = Tensor.uninitialized(shape: [n, channels, height, width])  // (N, C, OH, OW)
    let bands = Parallel.ranges(n * channels * height, parts: threads)
    input.withUnsafeBufferPointer { src in output.withUnsafeMutableBufferPointer { dst in
      low.withUnsafeBufferPointer { low in high.withUnsafeBufferPointer { high in fx.withUnsafeBufferPointer { fx in
        Parallel.run(bands.count) { band in
          for row in bands[band] {
            let plane = src.baseAddress! + row / height * h * w, (y0, y1, fy) = rows[row % height]
            atr_bilinear_plane_row(dst.baseAddress! + row * width, plane + y0 * w, plane + y1 * w, low.baseAddress,
                                   high.baseAddress, fx.baseAddress, fy, width)
          }
        }
      } } }
    } }
    return NDArray(shape: output.shape, floats: output)
  }

  static func apply(_ x: NDArray, sizes: [Int], scales: [Double], plan: Plan, _ c: OpContext) throws -> NDArray {
    guard sizes.allSatisfy({ $0 > 0 }) else { throw c.mismatch("output size \(sizes)") }
    if plan.general { return general(x, sizes: sizes, scales: scales, plan: plan) }
    if x.rank == 4, x.isFloat, sizes[0] == x.shape[0], sizes[1] == x.shape[1], scales[0] == 1, scales[1] == 1 {
      if c.standardOutput { return planes(x, height: sizes[2], width: sizes[3], scales: scales, plan: plan, threads: c.threads) }
      return spatial(x, height: sizes[2], width: sizes[3], scales: scales, plan: plan, threads: c.threads)
    }
    var shape = x.shape
    var values = x.standard().floatValues()
    for axis in 0..<x.rank where sizes[axis] != shape[axis] || scales[axis] != 1 {
      let inLength = shape[axis], outLength = sizes[axis]
      let taps = Self.taps(inLength: inLength, outLength: outLength, scale: scales[axis], plan: plan)
      let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
      var out = [Float](repeating: 0, count: outer * outLength * inner)
      for o in 0..<outer {
        for (i, tap) in taps.enumerated() {
          let a = (o * inLength + tap.0) * inner, b = (o * inLength + tap.1) * inner, t = (o * outLength + i) * inner
          for k in 0..<inner { out[t + k] = values[a + k] + (values[b + k] - values[a + k]) * tap.2 }
        }
      }
      values = out
      shape[axis] = outLength
    }
    return NDArray(shape: shape, floats: values)
  }

  /// Resizing by weight lists, one axis at a time, in standard layout.
  static func general(_ x: NDArray, sizes: [Int], scales: [Double], plan: Plan) -> NDArray {
    var shape = x.shape
    var values = x.standard().floatValues()
    let crop = plan.coordinates == "tf_crop_and_resize"
    for axis in 0..<x.rank where sizes[axis] != shape[axis] || scales[axis] != 1 || crop {
      let inLength = shape[axis], outLength = sizes[axis]
      let lists = weights(inLength: inLength, outLength: outLength, scale: scales[axis],
                          roi: crop ? plan.roi[axis] : nil, plan: plan)
      let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
      var out = [Float](repeating: 0, count: outer * outLength * inner)
      for o in 0..<outer {
        for (i, list) in lists.enumerated() {
          let t = (o * outLength + i) * inner
          guard let list else {
            for k in 0..<inner { out[t + k] = plan.extrapolation }
            continue
          }
          for (j, weight) in list where weight != 0 {
            let a = (o * inLength + j) * inner
            for k in 0..<inner { out[t + k] += values[a + k] * weight }
          }
        }
      }
      values = out
      shape[axis] = outLength
    }
    return NDArray(shape: shape, floats: values)
  }
}
