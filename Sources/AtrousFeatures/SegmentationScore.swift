/// How well predicted label maps match the true ones, summed over a set of
/// images: mean intersection over union of the classes, and the boundary
/// F-score.
///
/// A pixel is on a boundary when one of its four neighbours has another
/// label. A predicted boundary pixel is matched when a true boundary pixel
/// lies within `tolerance` pixels (in both x and y), and a true one when a
/// predicted one does; precision and recall are the matched fractions,
/// summed over the images, and F their harmonic mean.
public struct SegmentationScore: Sendable {
  public let classes: Int
  public let tolerance: Int
  /// (truth, predicted) pixel counts.
  private var confusion: [Int]
  private var predictedBoundary = 0, matchedPredicted = 0, trueBoundary = 0, matchedTrue = 0

  public init(classes: Int, tolerance: Int = 2) {
    self.classes = classes
    self.tolerance = tolerance
    confusion = [Int](repeating: 0, count: classes * classes)
  }

  /// Adds one image's labels, row-major, `width` x `height`.
  public mutating func add(predicted: [Int], truth: [Int], width: Int, height: Int) {
    precondition(predicted.count == width * height && truth.count == width * height, "label maps of width x height")
    for (t, p) in zip(truth, predicted) { confusion[t * classes + p] += 1 }
    let ours = Self.boundary(predicted, width: width, height: height)
    let theirs = Self.boundary(truth, width: width, height: height)
    let nearTheirs = Self.dilate(theirs, width: width, height: height, by: tolerance)
    let nearOurs = Self.dilate(ours, width: width, height: height, by: tolerance)
    for i in 0..<(width * height) {
      if ours[i] { predictedBoundary += 1; if nearTheirs[i] { matchedPredicted += 1 } }
      if theirs[i] { trueBoundary += 1; if nearOurs[i] { matchedTrue += 1 } }
    }
  }

  /// Intersection over union per class (nil for a class in neither the
  /// truth nor the predictions).
  public var intersectionOverUnion: [Double?] {
    (0..<classes).map { c in
      let both = confusion[c * classes + c]
      let truth = (0..<classes).reduce(0) { $0 + confusion[c * classes + $1] }
      let predicted = (0..<classes).reduce(0) { $0 + confusion[$1 * classes + c] }
      let union = truth + predicted - both
      return union == 0 ? nil : Double(both) / Double(union)
    }
  }

  /// The mean over the classes present.
  public var meanIntersectionOverUnion: Double {
    let present = intersectionOverUnion.compactMap { $0 }
    return present.isEmpty ? 0 : present.reduce(0, +) / Double(present.count)
  }

  public var boundaryPrecision: Double { predictedBoundary == 0 ? 0 : Double(matchedPredicted) / Double(predictedBoundary) }
  public var boundaryRecall: Double { trueBoundary == 0 ? 0 : Double(matchedTrue) / Double(trueBoundary) }
  public var boundaryF: Double {
    let (p, r) = (boundaryPrecision, boundaryRecall)
    return p + r == 0 ? 0 : 2 * p * r / (p + r)
  }

  static func boundary(_ labels: [Int], width: Int, height: Int) -> [Bool] {
    var out = [Bool](repeating: false, count: labels.count)
    for y in 0..<height {
      for x in 0..<width {
        let v = labels[y * width + x]
        out[y * width + x] = (x > 0 && labels[y * width + x - 1] != v) || (x + 1 < width && labels[y * width + x + 1] != v)
          || (y > 0 && labels[(y - 1) * width + x] != v) || (y + 1 < height && labels[(y + 1) * width + x] != v)
      }
    }
    return out
  }

  /// Marks every pixel within `by` pixels (in both x and y) of a marked one.
  static func dilate(_ mask: [Bool], width: Int, height: Int, by radius: Int) -> [Bool] {
    var across = [Bool](repeating: false, count: mask.count), out = across
    for y in 0..<height {
      for x in 0..<width where mask[y * width + x] {
        for xx in max(0, x - radius)...min(width - 1, x + radius) { across[y * width + xx] = true }
      }
    }
    for y in 0..<height {
      for x in 0..<width where across[y * width + x] {
        for yy in max(0, y - radius)...min(height - 1, y + radius) { out[yy * width + x] = true }
      }
    }
    return out
  }
}
