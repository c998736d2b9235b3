import AtrousCore
import Foundation

/// Resize (opset 10 and later) and Upsample: nearest and linear, every
/// coordinate transformation mode except tf_crop_and_resize, applied one
/// axis at a time (both modes are separable).
enum Resize {
  static func register(_ table: inout OperatorTable) {
    table["Resize"] = { c in try resize(c) }
    table["Upsample"] = { c in try upsample(c) }
  }

  enum Mode { case nearest, linear }

  struct Plan {
    var mode: Mode
    var coordinates: String
    var nearestMode: String
  }

  static func resize(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0)
    let modeName = try c.string("mode", default: "nearest")
    let mode: Mode
    switch modeName {
    case "nearest": mode = .nearest
    case "linear", "bilinear": mode = .linear
    default: throw c.unsupported("mode", modeName)
    }
    var coordinates = try c.string("coordinate_transformation_mode", default: "half_pixel")
    if c.opset < 11 { coordinates = "asymmetric" }
    guard coordinates != "tf_crop_and_resize" else { throw c.unsupported("coordinate_transformation_mode", coordinates) }
    if try c.int("antialias", default: 0) != 0 { throw c.unsupported("antialias", 1) }
    let nearestMode = try c.string("nearest_mode", default: c.opset < 11 ? "floor" : "round_prefer_floor")
    let axes = try (c.ints("axes") ?? Array(0..<x.rank)).map { try c.axis($0, rank: x.rank, attribute: "axes") }
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
        scales[a] = Double(given[k])
        sizes[a] = Int((Double(x.shape[a]) * Double(given[k])).rounded(.down))
      }
    } else {
      throw c.invalid("scales", "neither scales nor sizes given")
    }
    return [try apply(x, sizes: sizes, scales: scales, plan: Plan(mode: mode, coordinates: coordinates, nearestMode: nearestMode), c)]
  }

  static func upsample(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0)
    let scalesF = try c.opset >= 9 ? c.input(1).floatValues() : (c.floats("scales") ?? [])
    guard scalesF.count == x.rank else { throw c.mismatch("\(scalesF.count) scales for rank \(x.rank)") }
    let modeName = try c.string("mode", default: "nearest")
    let mode: Mode = modeName == "nearest" ? .nearest : .linear
    let scales = scalesF.map(Double.init)
    let sizes = zip(x.shape, scales).map { Int((Double($0) * $1).rounded(.down)) }
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
      case .linear:
        let clamped = min(max(s, 0), Double(inLength - 1))
        let low = Int(clamped.rounded(.down))
        return (low, min(low + 1, inLength - 1), Float(clamped - Double(low)))
      }
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

  static func apply(_ x: NDArray, sizes: [Int], scales: [Double], plan: Plan, _ c: OpContext) throws -> NDArray {
    guard sizes.allSatisfy({ $0 > 0 }) else { throw c.mismatch("output size \(sizes)") }
    if x.rank == 4, x.isFloat, sizes[0] == x.shape[0], sizes[1] == x.shape[1], scales[0] == 1, scales[1] == 1 {
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
}
