import AtrousCore

/// Conv and ConvTranspose over one or three and more spatial axes.
///
/// One axis (N, C, L) runs on the 2-D kernels as (N, C, 1, L): every
/// window attribute gains a leading axis of size 1. Three and more run as
/// plain loops in standard layout (correct, not fast).
enum ConvolutionND {
  /// The offset, in a row-major array of `sizes` with `strides`, of tap
  /// `tap` of the window at `position`: position * stride - pad + tap *
  /// dilation on each axis (pads: the begin of each axis first). -1 where
  /// that falls outside the array.
  @inline(__always)
  static func windowOffset(_ position: [Int], _ tap: [Int], stride: [Int], pad: [Int], dilation: [Int], sizes: [Int],
                           strides: [Int]) -> Int {
    var offset = 0
    for k in 0..<sizes.count {
      let i = position[k] * stride[k] - pad[k] + tap[k] * dilation[k]
      if i < 0 || i >= sizes[k] { return -1 }
      offset += i * strides[k]
    }
    return offset
  }

  /// ConvTranspose's output size and pads (begin, end) along one axis, as
  /// ONNX defines them: the natural size (input - 1) * stride +
  /// output_padding + extent less the pads; or, given an output size
  /// (`target`, output_shape) or SAME padding (input * stride), the
  /// difference from the natural size split into pads, floor-divided as
  /// ONNX's reference does, so an output larger than natural grows at the
  /// end, not the start.
  static func transposedAxis(input: Int, kernel: Int, stride: Int, dilation: Int, outputPadding: Int, pads: (Int, Int),
                             autoPad: String, target: Int?) -> (output: Int, begin: Int, end: Int) {
    let natural = stride * (input - 1) + outputPadding + (kernel - 1) * dilation + 1
    guard target != nil || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" else {
      return (natural - pads.0 - pads.1, pads.0, pads.1)
    }
    let size = target ?? input * stride
    let total = natural - size
    let half = total >= 0 ? total / 2 : -((-total + 1) / 2)
    return autoPad == "SAME_UPPER" ? (size, half, total - half) : (size, total - half, half)
  }

  /// Checks ConvTranspose's window attributes: strides and dilations from
  /// 1, pads and output padding from 0, kernel sizes from 1, each at most
  /// 2^20, and any output_shape within the element limit.
  static func checkTransposed(_ c: OpContext, kernel: [Int], strides: [Int], dilations: [Int], pads: [Int],
                              outputPadding: [Int], outputShape: [Int]?) throws {
    let limit = 1 << 20
    for (name, values, low) in [("kernel_shape", kernel, 1), ("strides", strides, 1), ("dilations", dilations, 1),
                                ("pads", pads, 0), ("output_padding", outputPadding, 0)]
    where !values.allSatisfy({ $0 >= low && $0 <= limit }) {
      throw c.invalid(name, "\(values): each must be from \(low) to \(limit)")
    }
    if let outputShape {
      // The spatial sizes, possibly after N and C: one per kernel axis at least.
      guard outputShape.count >= kernel.count, outputShape.allSatisfy({ $0 >= 1 }) else {
        throw c.invalid("output_shape", "\(outputShape)")
      }
      try c.checkShape(outputShape, what: "output_shape")
    }
  }

  /// `body` on the input, weights and attributes lifted from one spatial
  /// axis to two; its results brought back to one.
  static func lifted(_ c: OpContext, _ body: (inout OpContext) throws -> [NDArray]) throws -> [NDArray] {
    var node = c.node
    func lift(_ name: String, pad: Int, halves: Bool = false) {
      guard case .ints(let v)? = node.attributes[name] else { return }
      node.attributes[name] = .ints(halves && v.count == 2 ? [pad, v[0], pad, v[1]] : [pad] + v)
    }
    lift("kernel_shape", pad: 1)
    lift("strides", pad: 1)
    lift("dilations", pad: 1)
    lift("pads", pad: 0, halves: true)
    lift("output_padding", pad: 0)
    lift("output_shape", pad: 1)
    var inputs = c.inputs
    for k in 0..<Swift.min(2, inputs.count) {
      if let v = inputs[k], v.rank == 3 { inputs[k] = v.reshaped([v.shape[0], v.shape[1], 1, v.shape[2]]) }
    }
    var inner = c.nested(node, inputs: inputs)
    inner.cache = c.cache
    inner.constant = c.constant
    return try body(&inner).map { y in
      guard y.rank == 4 else { return y }
      // Weights of another rank (or an output_shape of two values) give a
      // 2-D result that is not a lifted 1-D one.
      guard y.shape[2] == 1 else { throw c.mismatch("a 1-D convolution whose weights or output_shape are not 1-D") }
      return y.reshaped([y.shape[0], y.shape[1], y.shape[3]])
    }
  }

  /// The output shape checked against the element limit; then, unless the
  /// run is shape-only (nil), the bias (zeros when omitted), input and
  /// weights as floats in standard order.
  static func operands(_ c: OpContext, _ x: NDArray, _ w: NDArray, shape: [Int]) throws
    -> (bias: [Float], x: [Float], w: [Float])?
  {
    try c.checkShape(shape)
    if c.shapesOnly { return nil }
    let cout = shape[1]
    let bias = c.optionalInput(2)?.floatValues() ?? [Float](repeating: 0, count: cout)
    guard bias.count == cout else { throw c.mismatch("bias of \(bias.count) for \(cout) output channels") }
    return (bias, x.floatValues(), w.floatValues())
  }

  /// Conv in plain loops, any number of spatial axes.
  static func conv(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0).standard(), w = try c.input(1).standard()
    let d = x.rank - 2
    guard d >= 1, w.rank == x.rank else { throw c.mismatch("weights \(w.shape) for input \(x.shape)") }
    let group = try c.int("group", default: 1)
    let (n, cin, cout, cinG) = (x.shape[0], x.shape[1], w.shape[0], w.shape[1])
    guard group >= 1, cin % group == 0, cout % group == 0, cin / group == cinG else {
      throw c.mismatch("input channels \(cin), group \(group) and weights \(w.shape) do not agree")
    }
    let kernel = Array(w.shape[2...])
    let axes = try windowAxes(c, sizes: Array(x.shape[2...]), kernel: try c.ints("kernel_shape") ?? kernel)
    let outSpatial = axes.map(\.output)
    let shape = [n, cout] + outSpatial
    guard let (bias, xv, wv) = try operands(c, x, w, shape: shape) else {
      return [NDArray(shape: shape, floats: Tensor.uninitialized(shape: shape))]
    }
    let spatial = Array(x.shape[2...]), inStrides = NDArray.strides(spatial), plane = spatial.reduce(1, *)
    let taps = kernel.reduce(1, *), outPlane = outSpatial.reduce(1, *), coutG = cout / group
    var out = [Float](repeating: 0, count: shape.reduce(1, *))
    var offsets = [Int](repeating: 0, count: taps)  // input offset of each tap, -1 outside
    let (steps, pads, dilations) = (axes.map(\.stride), axes.map(\.padBegin), axes.map(\.dilation))
    // Odometers that wrap back to zeros after their last step: made once.
    var position = [Int](repeating: 0, count: d), tap = position
    for o in 0..<outPlane {
      for t in 0..<taps {
        offsets[t] = Self.windowOffset(position, tap, stride: steps, pad: pads, dilation: dilations, sizes: spatial,
                                       strides: inStrides)
        advance(&tap, within: kernel)
      }
      for b in 0..<n {
        for co in 0..<cout {
          let g = co / coutG
          var sum = Double(bias[co])
          for ci in 0..<cinG {
            let input = (b * cin + g * cinG + ci) * plane, weights = (co * cinG + ci) * taps
            for t in 0..<taps where offsets[t] >= 0 { sum += Double(xv[input + offsets[t]]) * Double(wv[weights + t]) }
          }
          out[(b * cout + co) * outPlane + o] = Float(sum)
        }
      }
      advance(&position, within: outSpatial)
    }
    return [NDArray(shape: shape, floats: out)]
  }

  /// ConvTranspose in plain loops, any number of spatial axes: every input
  /// value scattered through the kernel.
  static func convTranspose(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0).standard(), w = try c.input(1).standard()
    let d = x.rank - 2
    guard d >= 1, w.rank == x.rank else { throw c.mismatch("weights \(w.shape) for input \(x.shape)") }
    let group = try c.int("group", default: 1)
    let (n, cin) = (x.shape[0], x.shape[1])
    guard group >= 1, w.shape[0] == cin, cin % group == 0 else {
      throw c.mismatch("input channels \(cin), group \(group) and weights \(w.shape) do not agree")
    }
    let coutG = w.shape[1], cout = coutG * group, cinG = cin / group
    let kernel = try c.ints("kernel_shape") ?? Array(w.shape[2...])
    let one = [Int](repeating: 1, count: d), zero = [Int](repeating: 0, count: d)
    let strides = try c.ints("strides") ?? one, dilations = try c.ints("dilations") ?? one
    let outputPadding = try c.ints("output_padding") ?? zero
    var pads = try c.ints("pads") ?? zero + zero
    guard kernel.count == d, strides.count == d, dilations.count == d, outputPadding.count == d, pads.count == 2 * d
    else { throw c.invalid("kernel_shape", "window attributes do not fit \(d) spatial axes") }
    try checkTransposed(c, kernel: kernel, strides: strides, dilations: dilations, pads: pads, outputPadding: outputPadding,
                        outputShape: try c.ints("output_shape"))
    let autoPad = try c.string("auto_pad", default: "NOTSET")
    let spatial = Array(x.shape[2...])
    let requested = try c.ints("output_shape").map { Array($0.suffix(d)) }
    var outSpatial = zero
    for k in 0..<d {
      (outSpatial[k], pads[k], pads[k + d]) = transposedAxis(
        input: spatial[k], kernel: kernel[k], stride: strides[k], dilation: dilations[k], outputPadding: outputPadding[k],
        pads: (pads[k], pads[k + d]), autoPad: autoPad, target: requested?[k])
      guard outSpatial[k] > 0 else { throw c.mismatch("output size \(outSpatial[k]) along axis \(k + 2)") }
    }
    let shape = [n, cout] + outSpatial
    guard let (bias, xv, wv) = try operands(c, x, w, shape: shape) else {
      return [NDArray(shape: shape, floats: Tensor.uninitialized(shape: shape))]
    }
    let plane = spatial.reduce(1, *), outPlane = outSpatial.reduce(1, *), taps = kernel.reduce(1, *)
    let outStrides = NDArray.strides(outSpatial)
    var out = [Double](repeating: 0, count: shape.reduce(1, *))
    for b in 0..<n {
      for co in 0..<cout { for o in 0..<outPlane { out[(b * cout + co) * outPlane + o] = Double(bias[co]) } }
    }
    var position = zero, tap = zero  // odometers, back to zeros after their last step
    for p in 0..<plane {
      for t in 0..<taps {
        let offset = windowOffset(position, tap, stride: strides, pad: pads, dilation: dilations, sizes: outSpatial,
                                  strides: outStrides)
        if offset >= 0 {
          for b in 0..<n {
            for ci in 0..<cin {
              let g = ci / cinG, v = Double(xv[(b * cin + ci) * plane + p])
              for m in 0..<coutG {
                let co = g * coutG + m
                out[(b * cout + co) * outPlane + offset] += v * Double(wv[(ci * coutG + m) * taps + t])
              }
            }
          }
        }
        advance(&tap, within: kernel)
      }
      advance(&position, within: spatial)
    }
    return [NDArray(shape: shape, floats: out.map { Float($0) })]
  }

  /// Col2Im: the columns of an im2col (N, C * block, L) added back into an
  /// image (N, C, image...), overlapping blocks summed.
  static func col2im(_ c: OpContext) throws -> NDArray {
    let x = try c.input(0).standard()
    let image = try c.shapeInput(1), block = try c.shapeInput(2)
    let d = image.count
    guard x.rank == 3, block.count == d, d >= 1, block.allSatisfy({ $0 >= 1 }) else {
      throw c.mismatch("input \(x.shape), image \(image) and block \(block)")
    }
    let one = [Int](repeating: 1, count: d)
    let strides = try c.ints("strides") ?? one, dilations = try c.ints("dilations") ?? one
    let pads = try c.ints("pads") ?? one.map { _ in 0 } + one.map { _ in 0 }
    guard strides.count == d, dilations.count == d, pads.count == 2 * d, strides.allSatisfy({ $0 >= 1 }),
      dilations.allSatisfy({ $0 >= 1 })
    else { throw c.invalid("strides", "window attributes do not fit \(d) axes") }
    let taps = block.reduce(1, *)
    guard x.shape[1] % taps == 0 else { throw c.mismatch("\(x.shape[1]) rows for blocks of \(taps)") }
    let channels = x.shape[1] / taps, n = x.shape[0]
    let counts = (0..<d).map { k -> Int in
      let extent = dilations[k] * (block[k] - 1) + 1
      return (image[k] + pads[k] + pads[k + d] - extent) / strides[k] + 1
    }
    guard counts.reduce(1, *) == x.shape[2] else { throw c.mismatch("\(x.shape[2]) blocks where \(counts) fit the image") }
    let shape = [n, channels] + image
    try c.checkShape(shape)
    let values = x.floatValues(), plane = image.reduce(1, *), imageStrides = NDArray.strides(image), length = x.shape[2]
    var out = [Float](repeating: 0, count: shape.reduce(1, *))
    var position = [Int](repeating: 0, count: d), tap = position  // odometers, back to zeros after their last step
    for l in 0..<length {
      for t in 0..<taps {
        let offset = windowOffset(position, tap, stride: strides, pad: pads, dilation: dilations, sizes: image,
                                  strides: imageStrides)
        if offset >= 0 {
          for b in 0..<n {
            for ch in 0..<channels { out[(b * channels + ch) * plane + offset] += values[((b * channels + ch) * taps + t) * length + l] }
          }
        }
        advance(&tap, within: block)
      }
      advance(&position, within: counts)
    }
    return NDArray(shape: shape, floats: out)
  }
}
