/// How each layer's map is brought to the image's size.
///
/// `bilinear` blends the four nearest features, as cv2.resize does. The
/// other two use the image as a guide, so that features do not smear
/// across the image's edges; neither needs training.
public enum HypercolumnUpsampling: Sendable, Equatable, CustomStringConvertible {
  /// Bilinear, the alignment of `HypercolumnOptions.alignment`.
  case bilinear
  /// Joint bilateral upsampling (Kopf et al. 2007): each pixel's features
  /// are the mean of the map's features within `2 * spatialSigma` cells,
  /// weighted by a Gaussian of the distance in cells (`spatialSigma`, in
  /// units of the map's stride) and a Gaussian of the guide's colour
  /// difference between the pixel and the image pixel at the feature's
  /// centre (`rangeSigma`, on colours from 0 to 1, Euclidean over the
  /// guide's channels).
  case jointBilateral(spatialSigma: Double, rangeSigma: Double)
  /// The guided filter (He et al. 2010) of the bilinear result, with the
  /// image as guide, in its fast form (He and Sun 2015) subsampled by the
  /// map's own stride: the linear coefficients are solved on the map's grid
  /// over boxes of `radius` image pixels (at least one cell), regularized by
  /// `epsilon` (on colours from 0 to 1), then bilinearly upsampled and
  /// applied to the full-resolution guide.
  case guided(radius: Double, epsilon: Double)

  /// Two map cells (cells within 4 count): on the synthetic scenes of
  /// `atrous-bench upsample-quality` it scored better than one cell on both
  /// models measured, at about 3 times the cost (README, Benchmarks).
  public static let defaultSpatialSigma = 2.0
  /// A tenth of the colour range: edges of a few percent contrast count.
  public static let defaultRangeSigma = 0.1
  /// Radius of the guided filter's boxes in image pixels.
  public static let defaultRadius = 8.0
  /// About 0.03^2: colour changes of more than a few percent within a box
  /// are edges to follow (He et al. smooth with 0.1^2 to 0.4^2).
  public static let defaultEpsilon = 1e-3

  public static let names = ["bilinear", "jbu", "guided"]

  /// The method named `name` (`bilinear`, `jbu`, `guided`), with its
  /// settings or their defaults; nil for an unknown name.
  public static func named(_ name: String, spatialSigma: Double? = nil, rangeSigma: Double? = nil, radius: Double? = nil,
                           epsilon: Double? = nil) -> HypercolumnUpsampling? {
    switch name {
    case "bilinear": .bilinear
    case "jbu": .jointBilateral(spatialSigma: spatialSigma ?? defaultSpatialSigma, rangeSigma: rangeSigma ?? defaultRangeSigma)
    case "guided": .guided(radius: radius ?? defaultRadius, epsilon: epsilon ?? defaultEpsilon)
    default: nil
    }
  }

  /// The method and its settings, as the sidecar and fingerprint state it.
  public var description: String {
    switch self {
    case .bilinear: "bilinear"
    case .jointBilateral(let s, let r): "jbu spatial_sigma \(s) range_sigma \(r)"
    case .guided(let radius, let epsilon): "guided radius \(radius) epsilon \(epsilon)"
    }
  }

  /// How the guide's colour per map cell is taken.
  var cellSampling: CellGuide.Sampling {
    if case .guided = self { return .cellMean }
    return .nearestPixel
  }

  /// Map cells beyond the two bilinear neighbours that the method reads
  /// on each side, for a map whose cells are `stride` image pixels apart.
  func reach(stride: Double) -> Int {
    switch self {
    case .bilinear: 0
    case .jointBilateral(let sigma, _): Int((2 * sigma).rounded(.up))
    // Coefficients are box means of statistics that are box means.
    case .guided(let radius, _): 2 * GuidedUpsampler.boxRadius(radius: radius, stride: stride)
    }
  }
}

/// The guide's colours from a network input: `x * scale[c] + offset[c]`
/// per channel, which undoes the preprocessing so that colours run from 0
/// to 1 (one entry applies to every channel).
public struct GuideColours: Sendable, Equatable {
  public var scale: [Float]
  public var offset: [Float]

  public init(scale: [Float] = [1], offset: [Float] = [0]) {
    self.scale = scale
    self.offset = offset
  }

  /// The input as it is: for inputs already from 0 to 1.
  public static let identity = GuideColours()

  func scale(_ channel: Int) -> Float { scale.count == 1 ? scale[0] : scale[channel] }
  func offset(_ channel: Int) -> Float { offset.count == 1 ? offset[0] : offset[channel] }
}
