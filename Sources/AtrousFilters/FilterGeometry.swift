import AtrousCore

/// Padding of a filter's input, per axis as (begin, end).
public enum Padding: Sendable, Equatable {
  /// TF/Keras/ONNX SAME_UPPER: the output has ceil(n / stride) samples; an
  /// odd extra pad goes at the end (bottom, right). For odd kernels at
  /// stride 1 this centres the kernel, as OpenCV does.
  case same
  /// SAME_LOWER: as `same`, the odd extra pad at the beginning. For even
  /// kernels at stride 1 this is OpenCV's default anchor (ksize / 2).
  case sameLower
  /// No padding: the kernel stays inside the image.
  case valid
  case explicit(top: Int, bottom: Int, left: Int, right: Int)
}

/// Where a filter's kernel visits the input: stride, dilation, padding and
/// the border mode that fills the padding.
public struct FilterGeometry: Sendable, Equatable {
  /// Step between output samples, in input samples (y, x). At least 1.
  public var stride: (y: Int, x: Int)
  /// Step between kernel taps, in input samples (y, x). At least 1.
  public var dilation: (y: Int, x: Int)
  public var padding: Padding
  public var border: BorderMode

  public init(stride: (y: Int, x: Int) = (1, 1), dilation: (y: Int, x: Int) = (1, 1),
              padding: Padding = .same, border: BorderMode = .reflect101) {
    self.stride = stride
    self.dilation = dilation
    self.padding = padding
    self.border = border
  }

  public static func == (a: FilterGeometry, b: FilterGeometry) -> Bool {
    a.stride == b.stride && a.dilation == b.dilation && a.padding == b.padding && a.border == b.border
  }

  /// The plan along one axis for a kernel of `taps` taps over `count` samples.
  /// - Throws: `FilterError` for a zero stride or dilation, or a kernel
  ///   that does not fit in the padded input.
  func plan(count: Int, taps: Int, vertical: Bool) throws -> AxisPlan {
    let s = vertical ? stride.y : stride.x
    let d = vertical ? dilation.y : dilation.x
    guard s >= 1 else { throw FilterError.invalidParameter(name: "stride", value: "\(s)", reason: "must be at least 1") }
    guard d >= 1 else { throw FilterError.invalidParameter(name: "dilation", value: "\(d)", reason: "must be at least 1") }
    for (name, value) in [("stride", s), ("dilation", d)] where value > Filter.maxTaps {
      throw FilterError.invalidParameter(name: name, value: "\(value)", reason: "must be at most \(Filter.maxTaps)")
    }
    let extent = Window.extent(taps: taps, dilation: d)
    let begin: Int, end: Int
    switch padding {
    case .same, .sameLower:
      (begin, end) = Window.samePadding(count: count, taps: taps, stride: s, dilation: d, lower: padding == .sameLower)
    case .valid:
      begin = 0
      end = 0
    case .explicit(let top, let bottom, let left, let right):
      begin = vertical ? top : left
      end = vertical ? bottom : right
      guard begin >= 0 && end >= 0, begin <= Filter.maxTaps, end <= Filter.maxTaps else {
        throw FilterError.invalidParameter(name: "padding", value: "\(begin):\(end)", reason: "must be 0 to \(Filter.maxTaps)")
      }
    }
    guard let output = Window.outputCount(count: count, taps: taps, stride: s, dilation: d, padBegin: begin, padEnd: end) else {
      throw FilterError.kernelTooLarge(extent: extent, paddedSize: count + begin + end, axis: vertical ? "height" : "width")
    }
    return AxisPlan(inputCount: count, outputCount: output, padBegin: begin, padEnd: end, stride: s, dilation: d)
  }
}

/// One axis of a filter: output sample i reads input samples
/// i * stride - padBegin + t * dilation for each tap t.
struct AxisPlan: Equatable {
  var inputCount: Int
  /// floor((n + padBegin + padEnd - dilation*(taps-1) - 1) / stride) + 1.
  var outputCount: Int
  var padBegin: Int
  var padEnd: Int
  var stride: Int
  var dilation: Int

  /// Input position of output sample `i`'s first tap.
  @inline(__always) func firstTap(_ i: Int) -> Int { i * stride - padBegin }
}
