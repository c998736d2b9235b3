/// The named filters, built from the kernels in `NamedKernels` as OpenCV
/// (and, for the Laplacian of Gaussian, SciPy) compute them.
extension Filter {
  /// `cv2.Sobel(src, CV_32F, dx, dy, ksize, scale)`: derivative orders
  /// `dx` along x and `dy` along y with aperture 1, 3, 5 or 7.
  public static func sobel(dx: Int, dy: Int, ksize: Int = 3, scale: Float = 1,
                           geometry: FilterGeometry = FilterGeometry()) throws -> Filter {
    try checkAperture(ksize, name: "sobel")
    guard dx >= 0, dy >= 0, dx > 0 || dy > 0 else {
      throw FilterError.invalidParameter(name: "dx,dy", value: "\(dx),\(dy)", reason: "orders must be non-negative, not both 0")
    }
    let size = ksize
    guard (dx == 0 || max(size, 3) > dx), (dy == 0 || max(size, 3) > dy) else {
      throw FilterError.invalidParameter(name: "ksize", value: "\(ksize)", reason: "must exceed the derivative order")
    }
    let row = NamedKernels.derivative(order: dx, size: size)
    let column = NamedKernels.derivative(order: dy, size: size).map { $0 * scale }
    return Filter(.separable(row: row, column: column), geometry: geometry, name: "sobel")
  }

  /// `cv2.Scharr(src, CV_32F, dx, dy, scale)`: one first derivative.
  public static func scharr(dx: Int, dy: Int, scale: Float = 1, geometry: FilterGeometry = FilterGeometry()) throws -> Filter {
    guard (dx, dy) == (1, 0) || (dx, dy) == (0, 1) else {
      throw FilterError.invalidParameter(name: "dx,dy", value: "\(dx),\(dy)", reason: "Scharr takes dx=1 or dy=1")
    }
    let row = NamedKernels.scharr(order: dx), column = NamedKernels.scharr(order: dy).map { $0 * scale }
    return Filter(.separable(row: row, column: column), geometry: geometry, name: "scharr")
  }

  /// Prewitt's first derivative: [-1, 0, 1] across, [1, 1, 1] along.
  public static func prewitt(dx: Int, dy: Int, scale: Float = 1, geometry: FilterGeometry = FilterGeometry()) throws -> Filter {
    guard (dx, dy) == (1, 0) || (dx, dy) == (0, 1) else {
      throw FilterError.invalidParameter(name: "dx,dy", value: "\(dx),\(dy)", reason: "Prewitt takes dx=1 or dy=1")
    }
    let row = NamedKernels.prewitt(order: dx), column = NamedKernels.prewitt(order: dy).map { $0 * scale }
    return Filter(.separable(row: row, column: column), geometry: geometry, name: "prewitt")
  }

  /// Which pair of derivative kernels a gradient uses.
  public enum GradientOperator: String, Sendable, CaseIterable {
    case sobel, scharr, prewitt
  }

  /// Gradient magnitude sqrt(gx² + gy²) (`cv2.magnitude` of the two
  /// derivatives) or direction atan2(gy, gx) in [0, 2π) (`cv2.phase`).
  public static func gradient(_ op: GradientOperator, direction: Bool = false, ksize: Int = 3, scale: Float = 1,
                              geometry: FilterGeometry = FilterGeometry()) throws -> Filter {
    let derivative: [Float], smoothing: [Float]
    switch op {
    case .sobel:
      try checkAperture(ksize, name: "sobel")
      derivative = NamedKernels.derivative(order: 1, size: ksize)
      smoothing = NamedKernels.derivative(order: 0, size: ksize)
    case .scharr:
      derivative = NamedKernels.scharr(order: 1)
      smoothing = NamedKernels.scharr(order: 0)
    case .prewitt:
      derivative = NamedKernels.prewitt(order: 1)
      smoothing = NamedKernels.prewitt(order: 0)
    }
    let dx = Term(weight: scale, row: derivative, column: smoothing)
    let dy = Term(weight: scale, row: smoothing, column: derivative)
    let operation: Operation = direction ? .gradientDirection(dx: dx, dy: dy) : .gradientMagnitude(dx: dx, dy: dy)
    return Filter(operation, geometry: geometry, name: op.rawValue + (direction ? ":dir" : ":mag"))
  }

  /// Taps a kernel may have along an axis, and so the largest stride,
  /// dilation and padding: past this, sizes from the command line would
  /// overflow or ask for memory no machine has.
  public static let maxTaps = 1 << 20

  /// Refuses a kernel size past `maxTaps` (or below 1).
  static func checkTaps(_ taps: Int, name: String) throws {
    guard taps >= 1, taps <= maxTaps else {
      throw FilterError.invalidParameter(name: name, value: "\(taps)", reason: "must be 1 to \(maxTaps) taps")
    }
  }

  /// Refuses a sigma that is not positive or makes a Gaussian of more than
  /// `maxTaps` taps (8 sigma + 1, OpenCV's size).
  static func checkSigma(_ sigma: Double, name: String = "sigma") throws {
    guard sigma > 0, sigma.isFinite else {
      throw FilterError.invalidParameter(name: name, value: "\(sigma)", reason: "must be positive")
    }
    guard sigma * 8 + 1 <= Double(maxTaps) else {
      throw FilterError.invalidParameter(name: name, value: "\(sigma)",
                                         reason: "makes a kernel of more than \(maxTaps) taps (at most \((maxTaps - 1) / 8))")
    }
  }

  /// `cv2.GaussianBlur(src, (kx, ky), sigmaX, sigmaY)` on a float image: a
  /// missing size comes from sigma (round(8 sigma + 1), odd), a missing or
  /// zero sigma from the size, and sigmaY defaults to sigmaX.
  public static func gaussian(sigma: Double, sigmaY: Double? = nil, ksize: Int? = nil, ksizeY: Int? = nil,
                              geometry: FilterGeometry = FilterGeometry()) throws -> Filter {
    let sy = sigmaY ?? sigma
    guard sigma > 0 || ksize != nil else {
      throw FilterError.invalidParameter(name: "sigma", value: "\(sigma)", reason: "must be positive (or give ksize)")
    }
    for (value, name) in [(sigma, "sigma"), (sy, "sigma_y")] where value > 0 || !value.isFinite { try checkSigma(value, name: name) }
    for k in [ksize, ksizeY].compactMap({ $0 }) { try checkTaps(k, name: "ksize") }
    let kx = ksize ?? NamedKernels.gaussianSize(sigma: sigma)
    let ky = ksizeY ?? ksize ?? (sy > 0 ? NamedKernels.gaussianSize(sigma: sy) : kx)
    for k in [kx, ky] where k < 1 || k % 2 == 0 {
      throw FilterError.invalidParameter(name: "ksize", value: "\(k)", reason: "must be odd and positive")
    }
    return Filter(.separable(row: NamedKernels.gaussian(size: kx, sigma: sigma),
                             column: NamedKernels.gaussian(size: ky, sigma: sy)),
                  geometry: geometry, name: "gaussian")
  }

  /// `cv2.blur(src, (width, height))`: the mean over a box.
  public static func box(width: Int, height: Int, geometry: FilterGeometry = FilterGeometry()) throws -> Filter {
    try checkTaps(width, name: "width")
    try checkTaps(height, name: "height")
    return Filter(.separable(row: NamedKernels.box(size: width), column: NamedKernels.box(size: height)),
                  geometry: geometry, name: "box")
  }

  /// `cv2.Laplacian(src, CV_32F, ksize, scale)`: d²/dx² + d²/dy², with the
  /// [1, -2, 1] cross for ksize 1 and Sobel second derivatives above.
  public static func laplacian(ksize: Int = 1, scale: Float = 1, geometry: FilterGeometry = FilterGeometry()) throws -> Filter {
    try checkAperture(ksize, name: "laplacian")
    let second: [Float], smooth: [Float]
    if ksize == 1 {
      second = [1, -2, 1]
      smooth = [0, 1, 0]
    } else {
      second = NamedKernels.derivative(order: 2, size: ksize)
      smooth = NamedKernels.derivative(order: 0, size: ksize)
    }
    return Filter(.combination([Term(weight: scale, row: second, column: smooth),
                                Term(weight: scale, row: smooth, column: second)]),
                  geometry: geometry, name: "laplacian")
  }

  /// The Laplacian of Gaussian as `scipy.ndimage.gaussian_laplace`
  /// computes it: the sum over both axes of a second-derivative Gaussian
  /// along one axis and a Gaussian along the other (truncated at 4 sigma).
  public static func laplacianOfGaussian(sigma: Double, geometry: FilterGeometry = FilterGeometry()) throws -> Filter {
    try checkSigma(sigma)
    let g = NamedKernels.scipyGaussian(sigma: sigma, order: 0), d2 = NamedKernels.scipyGaussian(sigma: sigma, order: 2)
    return Filter(.combination([Term(weight: 1, row: d2, column: g), Term(weight: 1, row: g, column: d2)]),
                  geometry: geometry, name: "log")
  }

  /// Difference of Gaussians: GaussianBlur(sigma) - GaussianBlur(sigma2).
  public static func differenceOfGaussians(sigma: Double, sigma2: Double,
                                           geometry: FilterGeometry = FilterGeometry()) throws -> Filter {
    try checkSigma(sigma)
    try checkSigma(sigma2, name: "sigma2")
    let a = NamedKernels.gaussian(size: NamedKernels.gaussianSize(sigma: sigma), sigma: sigma)
    let b = NamedKernels.gaussian(size: NamedKernels.gaussianSize(sigma: sigma2), sigma: sigma2)
    return Filter(.combination([Term(weight: 1, row: a, column: a), Term(weight: -1, row: b, column: b)]),
                  geometry: geometry, name: "dog")
  }

  /// Unsharp masking: src + amount * (src - GaussianBlur(sigma)).
  public static func unsharp(sigma: Double, amount: Float, geometry: FilterGeometry = FilterGeometry()) throws -> Filter {
    try checkSigma(sigma)
    let g = NamedKernels.gaussian(size: NamedKernels.gaussianSize(sigma: sigma), sigma: sigma)
    return Filter(.combination([Term(weight: 1 + amount, row: [1], column: [1]), Term(weight: -amount, row: g, column: g)]),
                  geometry: geometry, name: "unsharp")
  }

  private static func checkAperture(_ ksize: Int, name: String) throws {
    guard [1, 3, 5, 7].contains(ksize) else {
      throw FilterError.invalidParameter(name: "ksize", value: "\(ksize)", reason: "\(name) takes 1, 3, 5 or 7")
    }
  }
}
