import AtrousCore
import _CKernels

/// Each supported op's gradient with respect to its inputs, given the
/// gradient of its output and the forward values: one rule per op, in
/// plain float32 loops over standard-layout (N, C, H, W) values.
struct GradientRules {
  /// A forward value in standard layout.
  struct Value {
    var shape: [Int]
    var values: [Float]
  }

  let values: [String: Value]
  let initializers: [String: NDArray]
  /// The values that depend on the input: the others get no gradient.
  let variable: Set<String>
  let threads: Int

  init(values: [String: Value], initializers: [String: NDArray], variable: Set<String>, threads: Int) {
    self.values = values
    self.initializers = initializers
    self.variable = variable
    self.threads = threads
  }

  /// The forward value (or constant) named by input `index` of `node`.
  func input(_ node: Node, _ index: Int) -> Value? {
    guard index < node.inputs.count, !node.inputs[index].isEmpty else { return nil }
    let name = node.inputs[index]
    if let value = values[name] { return value }
    if let constant = initializers[name] { return Value(shape: constant.shape, values: constant.floatValues()) }
    return nil
  }

  func output(_ node: Node) -> Value { values[node.outputs[0]]! }

  /// The gradient of each input (by index) that is not a constant.
  func inputGradients(_ node: Node, outputGradient gy: [Float]) throws -> [(Int, [Float])] {
    let x = input(node, 0)!
    switch node.opType {
    case "Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze":
      // The same elements in the same order.
      return [(0, gy)]
    case "HardSigmoid":
      var alpha: Float = 0.2, beta: Float = 0.5
      if case .float(let a)? = node.attributes["alpha"] { alpha = a }
      if case .float(let b)? = node.attributes["beta"] { beta = b }
      return [(0, zip(gy, x.values).map { alpha * $1 + beta > 0 && alpha * $1 + beta < 1 ? $0 * alpha : 0 })]
    case "Neg":
      return [(0, gy.map { -$0 })]
    case "Relu":
      return [(0, zip(gy, x.values).map { $1 > 0 ? $0 : 0 })]
    case "LeakyRelu":
      var alpha: Float = 0.01
      if case .float(let a)? = node.attributes["alpha"] { alpha = a }
      return [(0, zip(gy, x.values).map { $1 > 0 ? $0 : $0 * alpha })]
    case "Clip":
      var low = -Float.infinity, high = Float.infinity
      if let v = input(node, 1)?.values.first { low = v }
      if let v = input(node, 2)?.values.first { high = v }
      if case .float(let v)? = node.attributes["min"] { low = v }
      if case .float(let v)? = node.attributes["max"] { high = v }
      return [(0, zip(gy, x.values).map { $1 > low && $1 < high ? $0 : 0 })]
    case "Sigmoid":
      return [(0, zip(gy, output(node).values).map { $0 * $1 * (1 - $1) })]
    case "Tanh":
      return [(0, zip(gy, output(node).values).map { $0 * (1 - $1 * $1) })]
    case "Sqrt":
      return [(0, zip(gy, output(node).values).map { $1 > 0 ? $0 * 0.5 / $1 : 0 })]
    case "Add", "Sub", "Mul", "Div":
      return try binary(node, gy)
    case "BatchNormalization":
      let scale = input(node, 1)!.values, variance = input(node, 4)!.values
      var epsilon: Float = 1e-5
      if case .float(let e)? = node.attributes["epsilon"] { epsilon = e }
      let (c, plane) = (x.shape[1], x.shape.dropFirst(2).reduce(1, *))
      var gx = gy
      for n in 0..<x.shape[0] {
        for k in 0..<c {
          let factor = scale[k] / (variance[k] + epsilon).squareRoot()
          for i in 0..<plane { gx[(n * c + k) * plane + i] *= factor }
        }
      }
      return [(0, gx)]
    case "Concat":
      return try concat(node, gy)
    case "Conv":
      return [(0, try convolution(node, gy, transposed: false))]
    case "ConvTranspose":
      return [(0, try convolution(node, gy, transposed: true))]
    case "MaxPool", "AveragePool":
      return [(0, try pool(node, gy))]
    case "GlobalAveragePool", "GlobalMaxPool":
      let (planes, plane) = (x.shape[0] * x.shape[1], x.shape.dropFirst(2).reduce(1, *))
      var gx = [Float](repeating: 0, count: x.values.count)
      for p in 0..<planes {
        if node.opType == "GlobalAveragePool" {
          for i in 0..<plane { gx[p * plane + i] = gy[p] / Float(plane) }
        } else {
          let slice = x.values[(p * plane)..<((p + 1) * plane)]
          gx[slice.indices.max { x.values[$0] < x.values[$1] }!] = gy[p]
        }
      }
      return [(0, gx)]
    case "Pad":
      return [(0, try pad(node, gy))]
    case "Resize":
      return [(0, try resize(node, gy))]
    default:
      throw GradientError.unsupported(op: node.opType, node: node.name)
    }
  }

  // MARK: Element-wise

  /// Add, Sub, Mul and Div with NumPy broadcasting: the output's gradient
  /// times the partial derivative, summed over the axes an input was
  /// broadcast along.
  func binary(_ node: Node, _ gy: [Float]) throws -> [(Int, [Float])] {
    let a = input(node, 0)!, b = input(node, 1)!
    let shape = output(node).shape
    var out: [(Int, [Float])] = []
    for index in 0..<2 where variable.contains(node.inputs[index]) {
      let partial: [Float]
      switch (node.opType, index) {
      case ("Add", _), ("Sub", 0): partial = gy
      case ("Sub", _): partial = gy.map { -$0 }
      case ("Mul", 0): partial = zip(gy, Self.expand(b, to: shape)).map { $0 * $1 }
      case ("Mul", _): partial = zip(gy, Self.expand(a, to: shape)).map { $0 * $1 }
      case ("Div", 0): partial = zip(gy, Self.expand(b, to: shape)).map { $0 / $1 }
      default:
        let (ea, eb) = (Self.expand(a, to: shape), Self.expand(b, to: shape))
        partial = (0..<gy.count).map { -gy[$0] * ea[$0] / (eb[$0] * eb[$0]) }
      }
      out.append((index, Self.reduce(partial, from: shape, to: index == 0 ? a.shape : b.shape)))
    }
    return out
  }

  /// The value's elements read as the broadcast `shape`.
  static func expand(_ value: Value, to shape: [Int]) -> [Float] {
    if value.shape == shape { return value.values }
    return NDArray.broadcastOffsets(value.shape, to: shape).map { value.values[$0] }
  }

  /// `g` ((shape)) summed over the axes `target` was broadcast along.
  static func reduce(_ g: [Float], from shape: [Int], to target: [Int]) -> [Float] {
    if shape == target { return g }
    var out = [Float](repeating: 0, count: target.reduce(1, *))
    for (i, offset) in NDArray.broadcastOffsets(target, to: shape).enumerated() { out[offset] += g[i] }
    return out
  }

  func concat(_ node: Node, _ gy: [Float]) throws -> [(Int, [Float])] {
    let shape = output(node).shape
    var axis = 0
    if case .int(let a)? = node.attributes["axis"] { axis = a < 0 ? a + shape.count : a }
    let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
    var offset = 0, out: [(Int, [Float])] = []
    for index in node.inputs.indices {
      guard let part = input(node, index) else { continue }
      let size = part.shape[axis]
      if variable.contains(node.inputs[index]) {
        var g = [Float](repeating: 0, count: part.values.count)
        for o in 0..<outer {
          let from = (o * shape[axis] + offset) * inner, to = o * size * inner
          for i in 0..<(size * inner) { g[to + i] = gy[from + i] }
        }
        out.append((index, g))
      }
      offset += size
    }
    return out
  }

  // MARK: Windows

  /// Kernel, strides, dilations and begin pads of a 2-D window op, for an
  /// input of `size` (height, width).
  func window(_ node: Node, kernel: [Int], size: [Int]) throws -> (stride: [Int], dilation: [Int], pad: [Int]) {
    func ints(_ name: String, _ fallback: [Int]) -> [Int] {
      if case .ints(let v)? = node.attributes[name] { return v }
      return fallback
    }
    let stride = ints("strides", [1, 1]), dilation = ints("dilations", [1, 1])
    var pad = Array(ints("pads", [0, 0, 0, 0]).prefix(2))
    guard kernel.count == 2, stride.count == 2, dilation.count == 2 else {
      throw GradientError.unsupportedAttribute(node: node.name, attribute: "kernel_shape", value: "\(kernel) (2-D windows only)")
    }
    if case .string(let mode)? = node.attributes["auto_pad"], mode.hasPrefix("SAME") {
      pad = (0..<2).map {
        Window.samePadding(count: size[$0], taps: kernel[$0], stride: stride[$0], dilation: dilation[$0],
                           lower: mode == "SAME_LOWER").begin
      }
    } else if case .string("VALID")? = node.attributes["auto_pad"] {
      pad = [0, 0]
    }
    return (stride, dilation, pad)
  }

  /// Conv's gradient is the transposed convolution of the output's
  /// gradient with the same weights, and ConvTranspose's the convolution.
  /// Both are a matrix product per group on the packed product kernel
  /// (rows of the product split across threads) and a scatter or gather
  /// of its columns: for Conv, cols = W^T gy, then each column's taps are
  /// added into gx (col2im); for ConvTranspose, gy's taps are gathered
  /// into cols (im2col), then gx = W cols.
  func convolution(_ node: Node, _ gy: [Float], transposed: Bool) throws -> [Float] {
    let x = input(node, 0)!, w = input(node, 1)!, y = output(node)
    guard x.shape.count == 4, w.shape.count == 4 else {
      throw GradientError.unsupportedAttribute(node: node.name, attribute: "rank", value: "\(x.shape.count - 2)-D (2-D only)")
    }
    if transposed, case .string(let mode)? = node.attributes["auto_pad"], mode != "NOTSET" {
      throw GradientError.unsupportedAttribute(node: node.name, attribute: "auto_pad", value: mode)
    }
    var groups = 1
    if case .int(let g)? = node.attributes["group"] { groups = g }
    let (kh, kw) = (w.shape[2], w.shape[3])
    // The window runs over the convolution's input: x for Conv, y for
    // ConvTranspose (whose forward scatters x over y).
    let (small, large) = transposed ? (x, y) : (y, x)
    let geometry = try window(node, kernel: [kh, kw], size: [large.shape[2], large.shape[3]])
    let (n, lh, lw, sh, sw) = (x.shape[0], large.shape[2], large.shape[3], small.shape[2], small.shape[3])
    let (largePerGroup, smallPerGroup) = (large.shape[1] / groups, small.shape[1] / groups)
    // Rows of the product: (large-side channel, ky, kx) of a group.
    let taps = largePerGroup * kh * kw, positions = sh * sw
    var columns = [Float](repeating: 0, count: taps * positions)  // (taps, sh * sw)
    // Conv: W^T per group, (taps, smallPerGroup); ConvTranspose reads W as it is.
    var weights = w.values
    if !transposed {
      var t = [Float](repeating: 0, count: weights.count)
      for g in 0..<groups {
        for o in 0..<smallPerGroup {
          for r in 0..<taps { t[g * taps * smallPerGroup + r * smallPerGroup + o] = weights[(g * smallPerGroup + o) * taps + r] }
        }
      }
      weights = t
    }
    let (stride0, stride1) = (geometry.stride[0], geometry.stride[1])
    func offsets(_ r: Int) -> (channel: Int, dy: Int, dx: Int) {
      (r / (kh * kw), (r / kw % kh) * geometry.dilation[0] - geometry.pad[0], (r % kw) * geometry.dilation[1] - geometry.pad[1])
    }
    var gx = [Float](repeating: 0, count: x.values.count)
    let parts = Parallel.ranges(taps, parts: min(threads, taps))
    gx.withUnsafeMutableBufferPointer { out in
      gy.withUnsafeBufferPointer { g in
        weights.withUnsafeBufferPointer { weight in
          columns.withUnsafeMutableBufferPointer { cols in
            for b in 0..<n {
              for group in 0..<groups {
                if transposed {
                  // im2col of gy over the group's output channels, rows split across threads.
                  let source = g.baseAddress! + (b * large.shape[1] + group * largePerGroup) * lh * lw
                  Parallel.run(parts.count) { part in
                    for r in parts[part] {
                      let (c, dy, dx) = offsets(r)
                      let row = cols.baseAddress! + r * positions
                      row.update(repeating: 0, count: positions)
                      let rows = Self.valid(offset: dy, stride: stride0, small: sh, large: lh)
                      let across = Self.valid(offset: dx, stride: stride1, small: sw, large: lw)
                      for i in rows {
                        let from = source + c * lh * lw + (i * stride0 + dy) * lw + dx, to = row + i * sw
                        for j in across { to[j] = from[j * stride1] }
                      }
                    }
                  }
                  // gx (smallPerGroup... the group's input channels, positions) = W_g (cin_g, taps) cols.
                  let inputs = Parallel.ranges(smallPerGroup, parts: min(threads, smallPerGroup))
                  Parallel.run(inputs.count) { part in
                    let rows = inputs[part]
                    guard !rows.isEmpty else { return }
                    atr_sgemm(rows.count, positions, taps, weight.baseAddress! + (group * smallPerGroup + rows.lowerBound) * taps, taps,
                              cols.baseAddress!, positions,
                              out.baseAddress! + ((b * small.shape[1]) + group * smallPerGroup + rows.lowerBound) * positions,
                              positions, 0)
                  }
                } else {
                  // cols = W_g^T (taps, cout_g) gy_g (cout_g, positions), rows split across threads.
                  let source = g.baseAddress! + (b * small.shape[1] + group * smallPerGroup) * positions
                  Parallel.run(parts.count) { part in
                    let rows = parts[part]
                    guard !rows.isEmpty else { return }
                    atr_sgemm(rows.count, positions, smallPerGroup,
                              weight.baseAddress! + group * taps * smallPerGroup + rows.lowerBound * smallPerGroup, smallPerGroup,
                              source, positions, cols.baseAddress! + rows.lowerBound * positions, positions, 0)
                  }
                  // col2im: each input channel's taps added into its plane, channels split across threads.
                  let channels = Parallel.ranges(largePerGroup, parts: min(threads, largePerGroup))
                  Parallel.run(channels.count) { part in
                    for c in channels[part] {
                      let plane = out.baseAddress! + (b * large.shape[1] + group * largePerGroup + c) * lh * lw
                      for r in (c * kh * kw)..<((c + 1) * kh * kw) {
                        let (_, dy, dx) = offsets(r)
                        let row = cols.baseAddress! + r * positions
                        let rows = Self.valid(offset: dy, stride: stride0, small: sh, large: lh)
                        let across = Self.valid(offset: dx, stride: stride1, small: sw, large: lw)
                        for i in rows {
                          let to = plane + (i * stride0 + dy) * lw + dx, from = row + i * sw
                          for j in across { to[j * stride1] += from[j] }
                        }
                      }
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return gx
  }

  /// Small-side indices i with 0 <= i * stride + offset < large.
  static func valid(offset: Int, stride: Int, small: Int, large: Int) -> Range<Int> {
    let first = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    let last = large - 1 - offset < 0 ? -1 : (large - 1 - offset) / stride
    return first..<max(first, min(small, last + 1))
  }

  /// MaxPool sends each output's gradient to the first largest input of
  /// its window; AveragePool spreads it over the window, divided by the
  /// taps counted (padding included with count_include_pad).
  func pool(_ node: Node, _ gy: [Float]) throws -> [Float] {
    let x = input(node, 0)!, y = output(node)
    guard case .ints(let kernel)? = node.attributes["kernel_shape"], x.shape.count == 4 else {
      throw GradientError.unsupportedAttribute(node: node.name, attribute: "kernel_shape", value: "missing or not 2-D")
    }
    let geometry = try window(node, kernel: kernel, size: [x.shape[2], x.shape[3]])
    var includePad = false
    if case .int(let v)? = node.attributes["count_include_pad"] { includePad = v != 0 }
    let (h, w, oh, ow) = (x.shape[2], x.shape[3], y.shape[2], y.shape[3])
    let planes = x.shape[0] * x.shape[1]
    var gx = [Float](repeating: 0, count: x.values.count)
    for p in 0..<planes {
      for i in 0..<oh {
        for j in 0..<ow {
          let g = gy[(p * oh + i) * ow + j]
          var taps: [Int] = [], padded = 0
          for ky in 0..<kernel[0] {
            let yy = i * geometry.stride[0] - geometry.pad[0] + ky * geometry.dilation[0]
            for kx in 0..<kernel[1] {
              let xx = j * geometry.stride[1] - geometry.pad[1] + kx * geometry.dilation[1]
              if yy >= 0 && yy < h && xx >= 0 && xx < w {
                taps.append((p * h + yy) * w + xx)
              } else if yy < h + geometry.pad[0] && xx < w + geometry.pad[1] {
                padded += 1
              }
            }
          }
          if taps.isEmpty { continue }
          if node.opType == "MaxPool" {
            gx[taps.max { x.values[$0] < x.values[$1] || (x.values[$0] == x.values[$1] && $0 > $1) }!] += g
          } else {
            let share = g / Float(taps.count + (includePad ? padded : 0))
            for t in taps { gx[t] += share }
          }
        }
      }
    }
    return gx
  }

  /// Pad's gradient: each output position's gradient goes back to the
  /// input position it was copied from (none for constant padding).
  func pad(_ node: Node, _ gy: [Float]) throws -> [Float] {
    let x = input(node, 0)!, y = output(node)
    var pads: [Int] = []
    if let given = input(node, 1) { pads = given.values.map { Int($0) } }
    if case .ints(let v)? = node.attributes["pads"] { pads = v }
    var mode = "constant"
    if case .string(let m)? = node.attributes["mode"] { mode = m }
    let rank = x.shape.count
    guard rank == 4, pads.count == 8, pads[0] == 0, pads[1] == 0, pads[4] == 0, pads[5] == 0, pads.allSatisfy({ $0 >= 0 }),
          ["constant", "reflect", "edge"].contains(mode) else {
      throw GradientError.unsupportedAttribute(node: node.name, attribute: "pads", value: "\(pads) \(mode)")
    }
    let (h, w, oh, ow) = (x.shape[2], x.shape[3], y.shape[2], y.shape[3])
    func source(_ i: Int, _ n: Int) -> Int? {
      if i >= 0 && i < n { return i }
      switch mode {
      case "edge": return min(max(i, 0), n - 1)
      case "reflect":
        guard n > 1 else { return 0 }
        let period = 2 * (n - 1)
        var r = i % period
        if r < 0 { r += period }
        return r < n ? r : period - r
      default: return nil
      }
    }
    var gx = [Float](repeating: 0, count: x.values.count)
    for p in 0..<(x.shape[0] * x.shape[1]) {
      for i in 0..<oh {
        guard let yy = source(i - pads[2], h) else { continue }
        for j in 0..<ow {
          guard let xx = source(j - pads[3], w) else { continue }
          gx[(p * h + yy) * w + xx] += gy[(p * oh + i) * ow + j]
        }
      }
    }
    return gx
  }

  /// Resize's gradient: each output's gradient spread back over the input
  /// samples it interpolated, with their weights (nearest and linear over
  /// the last two axes).
  func resize(_ node: Node, _ gy: [Float]) throws -> [Float] {
    let x = input(node, 0)!, y = output(node)
    var mode = "nearest", transform = "half_pixel", nearest = "round_prefer_floor"
    if case .string(let m)? = node.attributes["mode"] { mode = m }
    if case .string(let t)? = node.attributes["coordinate_transformation_mode"] { transform = t }
    if case .string(let r)? = node.attributes["nearest_mode"] { nearest = r }
    guard x.shape.count == 4, x.shape[0] == y.shape[0], x.shape[1] == y.shape[1], ["nearest", "linear"].contains(mode),
          ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"].contains(transform) else {
      throw GradientError.unsupportedAttribute(node: node.name, attribute: "mode", value: "\(mode) \(transform)")
    }
    // Explicit scales, when given, set the mapping (ONNX uses them, not
    // the rounded sizes).
    let scales = input(node, node.inputs.count == 2 ? 1 : 2).flatMap { $0.values.count == 4 ? $0.values : nil }
    func taps(_ axis: Int) -> [[(Int, Float)]] {
      let (n, m) = (x.shape[axis], y.shape[axis])
      let scale = Double(scales?[axis] ?? Float(Double(m) / Double(n)))
      return (0..<m).map { i -> [(Int, Float)] in
        let c: Double
        switch transform {
        case "align_corners": c = m == 1 ? 0 : Double(i) * Double(n - 1) / Double(m - 1)
        case "asymmetric": c = Double(i) / scale
        case "pytorch_half_pixel": c = m > 1 ? (Double(i) + 0.5) / scale - 0.5 : 0
        default: c = (Double(i) + 0.5) / scale - 0.5
        }
        if mode == "nearest" {
          let r: Double
          switch nearest {
          case "floor": r = c.rounded(.down)
          case "ceil": r = c.rounded(.up)
          case "round_prefer_ceil": r = (c + 0.5).rounded(.down)
          default: r = c == c.rounded(.down) + 0.5 ? c.rounded(.down) : c.rounded()
          }
          return [(min(max(Int(r), 0), n - 1), 1)]
        }
        let clamped = min(max(c, 0), Double(n - 1))
        let low = Int(clamped.rounded(.down)), high = min(low + 1, n - 1), f = Float(clamped - Double(low))
        return [(low, 1 - f), (high, f)]
      }
    }
    let (rows, columns) = (taps(2), taps(3))
    let (h, w, oh, ow) = (x.shape[2], x.shape[3], y.shape[2], y.shape[3])
    var gx = [Float](repeating: 0, count: x.values.count)
    for p in 0..<(x.shape[0] * x.shape[1]) {
      for i in 0..<oh {
        for j in 0..<ow {
          let g = gy[(p * oh + i) * ow + j]
          for (r, a) in rows[i] { for (c, b) in columns[j] { gx[(p * h + r) * w + c] += g * a * b } }
        }
      }
    }
    return gx
  }
}
