/// Sliding-window arithmetic along one axis, shared by filters,
/// convolution, pooling and receptive fields.
public enum Window {
  /// Input samples a kernel of `taps` taps spans: d (k - 1) + 1.
  public static func extent(taps: Int, dilation: Int) -> Int { dilation * (taps - 1) + 1 }

  /// TF/Keras/ONNX SAME padding (begin, end): the output has ceil(n / s)
  /// samples; an odd extra goes at the end (SAME_UPPER) or, with `lower`,
  /// at the beginning (SAME_LOWER).
  public static func samePadding(count n: Int, taps: Int, stride s: Int, dilation d: Int,
                                 lower: Bool = false) -> (begin: Int, end: Int) {
    let out = (n + s - 1) / s
    let total = max((out - 1) * s + extent(taps: taps, dilation: d) - n, 0)
    let begin = lower ? total - total / 2 : total / 2
    return (begin, total - begin)
  }

  /// floor((n + pb + pe - d (k - 1) - 1) / s) + 1, or nil when the kernel
  /// does not fit in the padded input.
  public static func outputCount(count n: Int, taps: Int, stride s: Int, dilation d: Int,
                                 padBegin: Int, padEnd: Int) -> Int? {
    let span = n + padBegin + padEnd - extent(taps: taps, dilation: d)
    return span >= 0 ? span / s + 1 : nil
  }
}
