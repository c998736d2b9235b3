#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The kernels of OpenCV's and SciPy's named filters, computed as they
/// compute them.
public enum NamedKernels {
  /// OpenCV's `getDerivKernels` taps for one axis: the derivative of
  /// `order` with aperture `size` (1, 3, 5 or 7; an aperture of 1 with a
  /// derivative becomes 3, as in OpenCV). Unnormalised integers.
  public static func derivative(order: Int, size: Int) -> [Float] {
    let size = size == 1 && order > 0 ? 3 : size
    if size == 1 { return [1] }
    if size == 3 {
      switch order {
      case 0: return [1, 2, 1]
      case 1: return [-1, 0, 1]
      default: return [1, -2, 1]
      }
    }
    // Binomial smoothing, then repeated differencing (OpenCV's recurrence).
    var k = [Int](repeating: 0, count: size + 1)
    k[0] = 1
    for _ in 0..<(size - order - 1) {
      var old = k[0]
      for j in 1...size {
        let new = k[j] + k[j - 1]
        k[j - 1] = old
        old = new
      }
    }
    for _ in 0..<order {
      var old = -k[0]
      for j in 1...size {
        let new = k[j - 1] - k[j]
        k[j - 1] = old
        old = new
      }
    }
    return k[0..<size].map(Float.init)
  }

  /// Scharr's 3-tap pair: derivative [-1, 0, 1] or smoothing [3, 10, 3].
  public static func scharr(order: Int) -> [Float] { order == 1 ? [-1, 0, 1] : [3, 10, 3] }

  /// Prewitt's 3-tap pair: derivative [-1, 0, 1] or smoothing [1, 1, 1].
  public static func prewitt(order: Int) -> [Float] { order == 1 ? [-1, 0, 1] : [1, 1, 1] }

  /// OpenCV's aperture from sigma for float images: round(8 sigma + 1), odd.
  public static func gaussianSize(sigma: Double) -> Int {
    Int((sigma * 8 + 1).rounded(.toNearestOrEven)) | 1
  }

  /// OpenCV's `getGaussianKernel(size, sigma)`: sampled in double,
  /// normalised to sum 1, then rounded to float. A sigma of 0 or less is
  /// derived from the size, and sizes up to 7 then use OpenCV's fixed table.
  public static func gaussian(size: Int, sigma: Double) -> [Float] {
    let table: [[Double]] = [
      [1], [0.25, 0.5, 0.25], [0.0625, 0.25, 0.375, 0.25, 0.0625],
      [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
    ]
    if sigma <= 0 && size % 2 == 1 && size <= 7 { return table[size / 2].map(Float.init) }
    let s = sigma > 0 ? sigma : ((Double(size) - 1) * 0.5 - 1) * 0.3 + 0.8
    let scale = -0.5 / (s * s)
    let values = (0..<size).map { i -> Double in
      let x = Double(i) - Double(size - 1) * 0.5
      return exp(scale * x * x)
    }
    let sum = values.reduce(0, +)
    return values.map { Float($0 / sum) }
  }

  /// SciPy's `_gaussian_kernel1d(sigma, order, radius)` for order 0 or 2,
  /// with radius = int(truncate * sigma + 0.5).
  public static func scipyGaussian(sigma: Double, order: Int, truncate: Double = 4) -> [Float] {
    let radius = Int(truncate * sigma + 0.5)
    let xs = (-radius...radius).map(Double.init)
    let phi = xs.map { exp(-0.5 / (sigma * sigma) * $0 * $0) }
    let sum = phi.reduce(0, +)
    let normalised = phi.map { $0 / sum }
    switch order {
    case 0: return normalised.map(Float.init)
    case 2:
      // q(x) = x^2 / sigma^4 - 1 / sigma^2, SciPy's polynomial for order 2.
      let s2 = sigma * sigma
      return zip(xs, normalised).map { x, p in Float((x * x / (s2 * s2) - 1 / s2) * p) }
    default: preconditionFailure("only orders 0 and 2 are used")
    }
  }

  /// A normalised box of `size` taps.
  public static func box(size: Int) -> [Float] {
    [Float](repeating: 1 / Float(size), count: size)
  }
}
