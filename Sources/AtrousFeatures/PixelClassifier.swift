import AtrousCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A linear pixel classifier on hypercolumns: multinomial logistic
/// regression (softmax over the classes) on features standardized with
/// the training set's mean and standard deviation.
///
/// Training minimizes the mean cross-entropy plus `l2 / 2` times the
/// squared weights (biases unpenalized) by full-batch gradient descent with
/// Adam's step sizes (Kingma and Ba 2015: beta 0.9 and 0.999).
public struct PixelClassifier: Sendable {
  public let classes: Int
  public let features: Int
  /// Per feature: the training mean, and 1 / standard deviation (1 where
  /// the feature is constant).
  let mean: [Float], inverseDeviation: [Float]
  /// (features + 1, classes): a row per standardized feature, then the biases.
  var weights: [Float]

  /// Training settings.
  public struct Training: Sendable {
    public var l2: Float = 1e-4
    public var iterations = 300
    public var learningRate: Float = 0.05
    public var threads = Parallel.coreCount
    public init() {}
  }

  /// Trains on `samples` ((N, F)) with `labels` (N values in 0..<classes).
  public init(samples: Tensor, labels: [Int], classes: Int, training: Training = Training()) {
    precondition(samples.rank == 2 && samples.shape[0] == labels.count && labels.allSatisfy { (0..<classes).contains($0) },
                 "samples (N, F) and N labels below the class count")
    let (n, f) = (samples.shape[0], samples.shape[1])
    self.classes = classes
    features = f
    var mean = [Float](repeating: 0, count: f), deviation = [Float](repeating: 0, count: f)
    samples.withUnsafeBufferPointer { x in
      var sum = [Double](repeating: 0, count: f), squares = [Double](repeating: 0, count: f)
      for i in 0..<n {
        for j in 0..<f {
          let v = Double(x[i * f + j])
          sum[j] += v
          squares[j] += v * v
        }
      }
      for j in 0..<f {
        let m = sum[j] / Double(max(n, 1))
        mean[j] = Float(m)
        let variance = max(0, squares[j] / Double(max(n, 1)) - m * m)
        deviation[j] = variance > 1e-20 ? Float(1 / variance.squareRoot()) : 1
      }
    }
    self.mean = mean
    inverseDeviation = deviation
    weights = [Float](repeating: 0, count: (f + 1) * classes)
    let standardized = standardize(samples)
    // Adam's moments, allocated once for the whole training.
    var first = [Float](repeating: 0, count: weights.count), second = first
    for step in 1...max(training.iterations, 1) {
      let (_, gradient) = Self.lossAndGradient(weights: weights, samples: standardized, labels: labels, classes: classes,
                                               l2: training.l2, threads: training.threads)
      let (b1, b2): (Float, Float) = (0.9, 0.999)
      let correction1 = 1 - Glibc.pow(b1, Float(step)), correction2 = 1 - Glibc.pow(b2, Float(step))
      for i in weights.indices {
        first[i] = b1 * first[i] + (1 - b1) * gradient[i]
        second[i] = b2 * second[i] + (1 - b2) * gradient[i] * gradient[i]
        weights[i] -= training.learningRate * (first[i] / correction1) / ((second[i] / correction2).squareRoot() + 1e-8)
      }
    }
  }

  /// Samples ((N, F)) less the training mean, over the training deviation.
  func standardize(_ samples: Tensor) -> Tensor {
    precondition(samples.rank == 2 && samples.shape[1] == features, "samples must be (N, \(features))")
    var out = Tensor.uninitialized(shape: samples.shape)  // (N, F)
    let f = features
    samples.withUnsafeBufferPointer { x in
      out.withUnsafeMutableBufferPointer { o in
        for i in 0..<samples.shape[0] {
          for j in 0..<f { o[i * f + j] = (x[i * f + j] - mean[j]) * inverseDeviation[j] }
        }
      }
    }
    return out
  }

  /// The mean cross-entropy plus the L2 penalty, and its gradient with
  /// respect to `weights` ((F + 1, K)), for standardized samples.
  static func lossAndGradient(weights: [Float], samples: Tensor, labels: [Int], classes k: Int, l2: Float, threads: Int)
    -> (loss: Double, gradient: [Float])
  {
    let (n, f) = (samples.shape[0], samples.shape[1])
    let parts = Parallel.ranges(n, parts: max(1, min(threads, n / 256)))
    var partial = [(Double, [Float])](repeating: (0, []), count: parts.count)
    partial.withUnsafeMutableBufferPointer { results in
      samples.withUnsafeBufferPointer { x in
        Parallel.run(parts.count) { part in
          var gradient = [Float](repeating: 0, count: (f + 1) * k)
          var logits = [Float](repeating: 0, count: k)
          var loss = 0.0
          for i in parts[part] {
            let row = x.baseAddress! + i * f
            logits.withUnsafeMutableBufferPointer { Self.softmax(row, weights: weights, features: f, classes: k, into: $0.baseAddress!) }
            loss -= Double(Glibc.log(logits[labels[i]]))
            for c in 0..<k { logits[c] -= c == labels[i] ? 1 : 0 }
            for j in 0..<f {
              let v = row[j]
              for c in 0..<k { gradient[j * k + c] += v * logits[c] }
            }
            for c in 0..<k { gradient[f * k + c] += logits[c] }
          }
          results[part] = (loss, gradient)
        }
      }
    }
    var loss = 0.0, gradient = [Float](repeating: 0, count: (f + 1) * k)
    for (l, g) in partial {
      loss += l
      for i in gradient.indices { gradient[i] += g[i] }
    }
    let scale = 1 / Float(max(n, 1))
    loss /= Double(max(n, 1))
    for i in gradient.indices {
      gradient[i] *= scale
      if i < f * k {
        gradient[i] += l2 * weights[i]
        loss += Double(l2 / 2 * weights[i] * weights[i])
      }
    }
    return (loss, gradient)
  }

  /// Class probabilities of samples ((N, F)): (N, K).
  public func probabilities(_ samples: Tensor) -> Tensor {
    let x = standardize(samples)
    let (n, f, k) = (samples.shape[0], features, classes)
    var out = Tensor.uninitialized(shape: [n, k])  // (N, K)
    x.withUnsafeBufferPointer { v in
      out.withUnsafeMutableBufferPointer { o in
        for i in 0..<n {
          Self.softmax(v.baseAddress! + i * f, weights: weights, features: f, classes: k, into: o.baseAddress! + i * k)
        }
      }
    }
    return out
  }

  /// The class probabilities of one standardized sample, `classes`
  /// values at `p`: the softmax of its logits, the largest subtracted.
  static func softmax(_ sample: UnsafePointer<Float>, weights: [Float], features f: Int, classes k: Int,
                      into p: UnsafeMutablePointer<Float>) {
    for c in 0..<k { p[c] = weights[f * k + c] }
    for j in 0..<f {
      let v = sample[j]
      for c in 0..<k { p[c] += v * weights[j * k + c] }
    }
    var top = -Float.infinity
    for c in 0..<k { top = max(top, p[c]) }
    var total: Float = 0
    for c in 0..<k {
      p[c] = Glibc.exp(p[c] - top)
      total += p[c]
    }
    for c in 0..<k { p[c] /= total }
  }

  /// The most probable class of each sample ((N, F)).
  public func predict(_ samples: Tensor) -> [Int] {
    let p = probabilities(samples).scalars
    let k = classes
    return (0..<samples.shape[0]).map { i in
      (0..<k).max { p[i * k + $0] < p[i * k + $1] }!
    }
  }
}
