#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The built-in default model: a multi-scale bank of classic pixel
/// features written as a CNN, in the spirit of ilastik's pixel features.
///
/// Input `image`, (1, 1, H, W): gray values in 0...1. For each scale sigma
/// (in input pixels) one layer `sigma<s>` of six channels:
///
/// 0. Gaussian smoothing G_sigma,
/// 1. gradient magnitude sigma * |grad G_sigma|,
/// 2. Laplacian of Gaussian sigma^2 * (Gxx + Gyy),
/// 3. difference of Gaussians G_sigma - G_{1.6 sigma},
/// 4. and 5. the Hessian's eigenvalues sigma^2 * lambda, larger first.
///
/// Derivatives are scale-normalized (times sigma per order), so responses
/// at different scales are comparable. Scales 0.7, 1 and 1.6 run at full
/// resolution; the image is then average-pooled 2x2 and scales 3.5 and 5
/// run at half resolution, 5 as a dilated (atrous) Gaussian on top of the
/// 3.5 smoothing, so the layers have two resolutions. Every filter is a
/// separable Gaussian (a 1xK then a Kx1 convolution) or a 3x3 derivative
/// stencil, each after a reflect Pad (OpenCV's default border, REFLECT_101),
/// so borders carry no dark frame.
public enum FilterBankModel {
  /// The scales, in input pixels.
  public static let sigmas: [Double] = [0.7, 1.0, 1.6, 3.5, 5.0]
  /// Names of the per-scale layers, in the order of `sigmas`.
  public static var layerNames: [String] { sigmas.map(layerName) }
  /// Channel names of each layer.
  public static let channelNames = ["smoothed", "gradient_magnitude", "laplacian_of_gaussian", "difference_of_gaussians",
                                    "hessian_eigenvalue_1", "hessian_eigenvalue_2"]
  /// Ratio of the second Gaussian's sigma in the difference of Gaussians.
  public static let dogRatio = 1.6

  static func layerName(_ sigma: Double) -> String { String(printf: "sigma%.1f", sigma) }

  /// A sampled Gaussian of radius ceil(3 sigma), summing to 1.
  static func gaussian(_ sigma: Double) -> [Float] {
    let radius = max(1, Int((3 * sigma).rounded(.up)))
    let taps = (-radius...radius).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
    let total = taps.reduce(0, +)
    return taps.map { Float($0 / total) }
  }

  public static func graph() -> Graph {
    var b = GraphAssembler()
    let image = "image"
    // Scales at full resolution straight from the image.
    var layers: [String] = []
    for sigma in sigmas.prefix(3) {
      let smooth = b.gaussian(image, sigma: sigma, dilation: 1, name: "g\(sigma)")
      layers.append(b.features(smooth, sigma: sigma, levelSigma: sigma, name: layerName(sigma)))
    }
    // Half resolution: 2x2 average pool, then sigma / 2 in pooled pixels.
    // Pooling itself smooths by about half a pooled pixel; the filters
    // make up the rest.
    let pooled = b.node("AveragePool", [image], name: "pool",
                        attributes: ["kernel_shape": .ints([2, 2]), "strides": .ints([2, 2])])
    let pooledSigma = 0.5
    let s35 = 3.5 / 2, s50 = 5.0 / 2
    let smooth35 = b.gaussian(pooled, sigma: (s35 * s35 - pooledSigma * pooledSigma).squareRoot(), dilation: 1, name: "g3.5")
    layers.append(b.features(smooth35, sigma: 3.5, levelSigma: s35, name: layerName(3.5)))
    // Variances add: a dilation-2 Gaussian of sigma d adds (2 d)^2.
    let extra = (s50 * s50 - s35 * s35).squareRoot() / 2
    let smooth50 = b.gaussian(smooth35, sigma: extra, dilation: 2, name: "g5.0")
    layers.append(b.features(smooth50, sigma: 5.0, levelSigma: s50, name: layerName(5.0)))
    return Graph(nodes: b.nodes, initializers: b.initializers, inputs: [Graph.Input(name: image, shape: [1, 1, nil, nil])],
                 outputs: layers, opset: 17)
  }
}

/// Collects nodes and constants while the filter bank is written.
private struct GraphAssembler {
  var nodes: [Node] = []
  var initializers: [String: NDArray] = [:]

  mutating func node(_ op: String, _ inputs: [String], name: String, attributes: [String: Attribute] = [:]) -> String {
    nodes.append(Node(name: name, opType: op, inputs: inputs, outputs: [name], attributes: attributes))
    return name
  }

  mutating func constant(_ name: String, shape: [Int], _ values: [Float]) -> String {
    initializers[name] = NDArray(shape: shape, floats: values)
    return name
  }

  mutating func constantInts(_ name: String, _ values: [Int64]) -> String {
    initializers[name] = NDArray(shape: [values.count], int64s: values)
    return name
  }

  /// Reflect-pads the spatial axes of a 1-channel map.
  mutating func pad(_ x: String, vertical: Int, horizontal: Int, name: String) -> String {
    let pads = constantInts(name + ".pads", [0, 0, Int64(vertical), Int64(horizontal), 0, 0, Int64(vertical), Int64(horizontal)])
    return node("Pad", [x, pads], name: name, attributes: ["mode": .string("reflect")])
  }

  /// 1-channel convolution with a (kh, kw) kernel over a pre-padded map.
  mutating func conv(_ x: String, kernel: [Float], height: Int, width: Int, outputs: Int = 1, dilation: Int = 1,
                     name: String) -> String {
    let w = constant(name + ".weight", shape: [outputs, 1, height, width], kernel)
    return node("Conv", [x, w], name: name,
                attributes: ["kernel_shape": .ints([height, width]), "dilations": .ints([dilation, dilation])])
  }

  /// Separable Gaussian smoothing, rows then columns.
  mutating func gaussian(_ x: String, sigma: Double, dilation: Int, name: String) -> String {
    let taps = FilterBankModel.gaussian(sigma)
    let reach = taps.count / 2 * dilation
    let across = conv(pad(x, vertical: 0, horizontal: reach, name: name + ".pad_x"), kernel: taps, height: 1,
                      width: taps.count, dilation: dilation, name: name + ".x")
    return conv(pad(across, vertical: reach, horizontal: 0, name: name + ".pad_y"), kernel: taps, height: taps.count,
                width: 1, dilation: dilation, name: name)
  }

  /// The six feature channels of one scale from its smoothed map.
  /// `levelSigma` is the scale in this map's own pixels.
  mutating func features(_ smooth: String, sigma: Double, levelSigma s: Double, name: String) -> String {
    let first = Float(s), second = Float(s * s)
    // Central differences: dx, dy, dxx, dyy, dxy, scale-normalized.
    let stencils: [[Float]] = [
      [0, 0, 0, -0.5, 0, 0.5, 0, 0, 0].map { $0 * first },
      [0, -0.5, 0, 0, 0, 0, 0, 0.5, 0].map { $0 * first },
      [0, 0, 0, 1, -2, 1, 0, 0, 0].map { $0 * second },
      [0, 1, 0, 0, -2, 0, 0, 1, 0].map { $0 * second },
      [0.25, 0, -0.25, 0, 0, 0, -0.25, 0, 0.25].map { $0 * second },
    ]
    let d = conv(pad(smooth, vertical: 1, horizontal: 1, name: name + ".pad_d"), kernel: stencils.flatMap { $0 }, height: 3,
                 width: 3, outputs: 5, name: name + ".derivatives")
    func pointwise(_ x: String, _ rows: [[Float]], _ suffix: String) -> String {
      let w = constant(name + "." + suffix + ".weight", shape: [rows.count, rows[0].count, 1, 1], rows.flatMap { $0 })
      return node("Conv", [x, w], name: name + "." + suffix)
    }
    let squares = node("Mul", [d, d], name: name + ".squares")
    let gradient = node("Sqrt", [pointwise(squares, [[1, 1, 0, 0, 0]], "gradient_squared")], name: name + ".gradient")
    let laplacian = pointwise(d, [[0, 0, 1, 1, 0]], "laplacian")
    // Hessian [[dxx, dxy], [dxy, dyy]]: eigenvalues m +- r with
    // m = (dxx + dyy) / 2, r = sqrt(((dxx - dyy) / 2)^2 + dxy^2).
    let parts = pointwise(d, [[0, 0, 0.5, 0.5, 0], [0, 0, 0.5, -0.5, 0], [0, 0, 0, 0, 1]], "hessian_parts")
    let partSquares = node("Mul", [parts, parts], name: name + ".hessian_part_squares")
    let radius = node("Sqrt", [pointwise(partSquares, [[0, 1, 1]], "hessian_radius_squared")], name: name + ".hessian_radius")
    let both = node("Concat", [parts, radius], name: name + ".hessian_terms", attributes: ["axis": .int(1)])
    let eigen = pointwise(both, [[1, 0, 0, 1], [1, 0, 0, -1]], "hessian_eigenvalues")
    // Difference of Gaussians: the smoothed map minus a further smoothing
    // to dogRatio * sigma (variances add).
    let extra = s * (FilterBankModel.dogRatio * FilterBankModel.dogRatio - 1).squareRoot()
    let wider = gaussian(smooth, sigma: extra, dilation: 1, name: name + ".wider")
    let dog = node("Sub", [smooth, wider], name: name + ".dog")
    return node("Concat", [smooth, gradient, laplacian, dog, eigen], name: name, attributes: ["axis": .int(1)])
  }
}
