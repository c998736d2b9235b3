import AtrousCore
import Foundation

/// Resize (opset 10 and later) and Upsample: nearest and linear, every
/// coordinate transformation mode except tf_crop_and_resize, applied one
/// axis at a time (both modes are separable).
enum Resize {
  static func register(_ table: inout [String: OpKernel]) {
    table["Resize"] = resize
    table["Upsample"] = upsample
  }

  enum Mode { case nearest, linear }

  struct Plan {
    var mode: Mode
    var coordinates: String
    var nearestMode: String
  }

  static func resize(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0).standard()
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
    let x = try c.input(0).standard()
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

  static func apply(_ x: NDArray, sizes: [Int], scales: [Double], plan: Plan, _ c: OpContext) throws -> NDArray {
    guard sizes.allSatisfy({ $0 > 0 }) else { throw c.mismatch("output size \(sizes)") }
    var shape = x.shape
    var values = x.floatValues()
    for axis in 0..<x.rank where sizes[axis] != shape[axis] || scales[axis] != 1 {
      let inLength = shape[axis], outLength = sizes[axis]
      // Two taps (index, weight) per output coordinate; nearest uses one.
      var taps: [(Int, Int, Float)] = []
      for i in 0..<outLength {
        let s = source(i, inLength: inLength, outLength: outLength, scale: scales[axis], mode: plan.coordinates)
        switch plan.mode {
        case .nearest:
          let j = min(max(nearest(s, mode: plan.nearestMode), 0), inLength - 1)
          taps.append((j, j, 0))
        case .linear:
          let clamped = min(max(s, 0), Double(inLength - 1))
          let low = Int(clamped.rounded(.down)), high = min(low + 1, inLength - 1)
          taps.append((low, high, Float(clamped - Double(low))))
        }
      }
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
