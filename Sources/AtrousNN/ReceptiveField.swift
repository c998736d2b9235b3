import AtrousCore

/// The receptive field of a layer's features in input pixels, per axis
/// (height, width), from the arithmetic of the seed notes:
/// `j_out = j_in * s`, `r_out = r_in + (k_eff - 1) * j_in`,
/// `start_out = start_in + ((k_eff - 1) / 2 - p_begin) * j_in`, with input
/// pixel centres at 0.5, 1.5, ...
public struct ReceptiveField: Sendable, Equatable {
  /// Input pixels one feature sees.
  public var size: [Double]
  /// Input pixels between neighbouring features.
  public var jump: [Double]
  /// Input coordinate of the centre of the first feature's field.
  public var start: [Double]

  public static let input = ReceptiveField(size: [1, 1], jump: [1, 1], start: [0.5, 0.5])

  public init(size: [Double], jump: [Double], start: [Double]) {
    self.size = size
    self.jump = jump
    self.start = start
  }

  /// The field through a window (convolution or pooling) along each axis.
  func window(kernel: [Int], stride: [Int], dilation: [Int], padBegin: [Int]) -> ReceptiveField {
    var out = self
    for d in 0..<2 {
      let extent = Double(dilation[d] * (kernel[d] - 1) + 1)
      out.size[d] = size[d] + (extent - 1) * jump[d]
      out.start[d] = start[d] + ((extent - 1) / 2 - Double(padBegin[d])) * jump[d]
      out.jump[d] = jump[d] * Double(stride[d])
    }
    return out
  }

  /// Centre and box (x0, y0, x1, y1) of the input region feature (x, y) sees.
  public func region(x: Int, y: Int) -> (centre: (x: Double, y: Double), box: (Double, Double, Double, Double)) {
    let cx = start[1] + Double(x) * jump[1], cy = start[0] + Double(y) * jump[0]
    return ((cx, cy), (cx - size[1] / 2, cy - size[0] / 2, cx + size[1] / 2, cy + size[0] / 2))
  }

  /// Convolution and pooling windows, from the node's kernel (attribute or
  /// weight shape), strides, dilations and pads (or `auto_pad`).
  static let windowRule: FieldRule = { base, t in
    var kernel = t.ints("kernel_shape") ?? []
    if kernel.isEmpty, t.inputShapes.count > 1, let w = t.map(1) { kernel = [w[2], w[3]] }
    guard kernel.count == 2 else { return base }
    let stride = t.ints("strides") ?? [1, 1], dilation = t.ints("dilations") ?? [1, 1]
    var pads = t.ints("pads") ?? [0, 0, 0, 0]
    if let mode = t.string("auto_pad"), mode.hasPrefix("SAME"), let x = t.map(0) {
      for d in 0..<2 {
        pads[d] = Window.samePadding(count: x[d + 2], taps: kernel[d], stride: stride[d], dilation: dilation[d],
                                     lower: mode == "SAME_LOWER").begin
      }
    } else if t.string("auto_pad") == "VALID" {
      pads = [0, 0, 0, 0]
    }
    return base.window(kernel: kernel, stride: stride, dilation: dilation, padBegin: [pads[0], pads[1]])
  }

  /// The field of a feature that sees a whole (N, C, H, W) map: a global
  /// pool, or a flattening of the map.
  static let wholeMapRule: FieldRule = { base, t in
    guard let x = t.map(0) else { return base }
    var out = base
    for d in 0..<2 {
      let n = Double(x[d + 2])
      out.size[d] += (n - 1) * base.jump[d]
      out.start[d] += (n - 1) / 2 * base.jump[d]
      out.jump[d] *= n
    }
    return out
  }
}
