import AtrousCore
@testable import AtrousFeatures
import Foundation
import Testing

/// The classifier's gradient against finite differences of its loss, its
/// fit on separable data, and the segmentation scores on a hand-counted
/// example.
@Suite struct PixelClassifierTests {
  /// Three Gaussian blobs in 5 dimensions, `count` samples each.
  static func blobs(count: Int, seed: UInt64) -> (Tensor, [Int]) {
    var random = SeededRandom(seed: seed)
    let centres: [[Float]] = [[3, 0, 0, 1, 0], [0, 3, 0, -1, 0], [0, 0, 3, 0, 2]]
    var values: [Float] = [], labels: [Int] = []
    for (k, centre) in centres.enumerated() {
      for _ in 0..<count {
        values += centre.map { $0 + Float.random(in: -0.8...0.8, using: &random) }
        labels.append(k)
      }
    }
    return (Tensor(shape: [labels.count, 5], values: values), labels)
  }

  @Test func gradientMatchesFiniteDifferences() {
    let (x, labels) = Self.blobs(count: 20, seed: 1)
    var random = SeededRandom(seed: 2)
    let weights = (0..<(6 * 3)).map { _ in Float.random(in: -0.5...0.5, using: &random) }
    let (_, gradient) = PixelClassifier.lossAndGradient(weights: weights, samples: x, labels: labels, classes: 3, l2: 0.1, threads: 2)
    for i in weights.indices {
      var up = weights, down = weights
      up[i] += 1e-2
      down[i] -= 1e-2
      let (a, _) = PixelClassifier.lossAndGradient(weights: up, samples: x, labels: labels, classes: 3, l2: 0.1, threads: 1)
      let (b, _) = PixelClassifier.lossAndGradient(weights: down, samples: x, labels: labels, classes: 3, l2: 0.1, threads: 1)
      #expect(abs((a - b) / 2e-2 - Double(gradient[i])) < 1e-3, "weight \(i)")
    }
  }

  @Test func separatesSeparableClasses() {
    let (train, labels) = Self.blobs(count: 50, seed: 3)
    let (test, truth) = Self.blobs(count: 30, seed: 4)
    let classifier = PixelClassifier(samples: train, labels: labels, classes: 3)
    #expect(classifier.predict(train) == labels)
    #expect(classifier.predict(test) == truth)
    let p = classifier.probabilities(test).scalars
    for i in 0..<truth.count { #expect(abs(p[(3 * i)..<(3 * i + 3)].reduce(0, +) - 1) < 1e-5) }
  }

  /// Left half class 0, right half class 1 on 4x4; the prediction moves
  /// the edge one column left.
  @Test func scoresOfAShiftedEdge() {
    let truth = (0..<16).map { $0 % 4 < 2 ? 0 : 1 }, predicted = (0..<16).map { $0 % 4 < 1 ? 0 : 1 }
    var exact = SegmentationScore(classes: 2, tolerance: 0)
    exact.add(predicted: predicted, truth: truth, width: 4, height: 4)
    #expect(exact.intersectionOverUnion.map { $0! } == [0.5, 8.0 / 12])
    #expect(abs(exact.meanIntersectionOverUnion - (0.5 + 8.0 / 12) / 2) < 1e-12)
    #expect(exact.boundaryPrecision == 0.5 && exact.boundaryRecall == 0.5 && exact.boundaryF == 0.5)
    var loose = SegmentationScore(classes: 2, tolerance: 1)
    loose.add(predicted: predicted, truth: truth, width: 4, height: 4)
    #expect(loose.boundaryF == 1)
  }
}
