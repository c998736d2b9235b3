import AtrousCore
import AtrousIO
import Foundation

/// Seeded scenes of textured shapes with exact masks, for judging how well
/// hypercolumns locate boundaries.
///
/// Each scene is a square RGB image: a textured background (class 0) and
/// 3 to 5 shapes (discs, rotated rectangles, triangles) drawn over each
/// other, striped and bright (class 1) or checkered and dark (class 2),
/// each with a random period, angle, tint and contrast. The stripes' and
/// checks' contrast is larger than the gap between the classes' mean
/// brightness, so single pixels overlap across classes and a classifier
/// needs context (smoothed or deeper features, which are coarse); Gaussian
/// noise of 0.02 is added. The label of a pixel is the class of the last
/// shape covering its centre.
struct SyntheticScene {
  static let classes = 3
  static let classNames = ["background", "stripes", "checks"]

  var image: Image
  /// Row-major class labels.
  var labels: [Int]

  init(seed: UInt64, size: Int) {
    var random = SeededRandom(seed: seed)
    func uniform(_ range: ClosedRange<Double>) -> Double { Double.random(in: range, using: &random) }
    var colour = [Double](repeating: 0, count: size * size * 3)
    var labels = [Int](repeating: 0, count: size * size)
    // Background: middle brightness, a faint tint, three long sinusoids
    // and fine stripes of random angle.
    let tint = (0..<3).map { _ in uniform(-0.05...0.05) }
    let level = uniform(0.44...0.56)
    let waves = (0..<3).map { _ in (uniform(0...(2 * .pi)), uniform(40...90), uniform(0...(2 * .pi)), uniform(0.02...0.05)) }
    let fine = (uniform(0...(2 * .pi)), uniform(5...12), uniform(0.06...0.16))
    for y in 0..<size {
      for x in 0..<size {
        var shade = fine.2 * (sin(2 * .pi * (Double(x) * cos(fine.0) + Double(y) * sin(fine.0)) / fine.1) >= 0 ? 1 : -1)
        for (angle, period, phase, amplitude) in waves {
          shade += amplitude * sin(2 * .pi * (Double(x) * cos(angle) + Double(y) * sin(angle)) / period + phase)
        }
        for c in 0..<3 { colour[(y * size + x) * 3 + c] = level + tint[c] + shade }
      }
    }
    let side = Double(size)
    for _ in 0..<Int(uniform(3...5.99)) {
      let kind = Int(uniform(1...2.99))
      let centre = (uniform(0.15...0.85) * side, uniform(0.15...0.85) * side)
      let extent = uniform(0.1...0.22) * side
      let rotation = uniform(0...(2 * .pi))
      let shape = Int(uniform(0...2.99))
      let corners = (0..<3).map { i -> (Double, Double) in
        let a = rotation + Double(i) * 2 * .pi / 3 + uniform(-0.3...0.3)
        return (centre.0 + extent * 1.3 * cos(a), centre.1 + extent * 1.3 * sin(a))
      }
      let aspect = uniform(0.5...1)
      func inside(_ x: Double, _ y: Double) -> Bool {
        let (dx, dy) = (x - centre.0, y - centre.1)
        switch shape {
        case 0: return dx * dx + dy * dy <= extent * extent
        case 1:
          let u = dx * cos(rotation) + dy * sin(rotation), v = -dx * sin(rotation) + dy * cos(rotation)
          return abs(u) <= extent && abs(v) <= extent * aspect
        default:
          var sign = 0.0
          for i in 0..<3 {
            let (a, b) = (corners[i], corners[(i + 1) % 3])
            let cross = (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0)
            if sign == 0 { sign = cross } else if sign * cross < 0 { return false }
          }
          return true
        }
      }
      // Two colours either side of the class's brightness, tinted, along
      // a random colour direction.
      let brightness = kind == 1 ? uniform(0.6...0.72) : uniform(0.28...0.4)
      let middle = (0..<3).map { _ in brightness + uniform(-0.06...0.06) }
      let direction = (0..<3).map { _ in uniform(0.3...1) }
      let norm = direction.map { $0 * $0 }.reduce(0, +).squareRoot() / 3.squareRoot()
      let contrast = uniform(0.14...0.26)
      let period = kind == 1 ? uniform(6...11) : uniform(8...14)
      let angle = uniform(0...(2 * .pi))
      for y in 0..<size {
        for x in 0..<size where inside(Double(x) + 0.5, Double(y) + 0.5) {
          let u = Double(x) * cos(angle) + Double(y) * sin(angle), v = -Double(x) * sin(angle) + Double(y) * cos(angle)
          let wave = kind == 1 ? sin(2 * .pi * u / period) : sin(2 * .pi * u / period) * sin(2 * .pi * v / period)
          let side = wave >= 0 ? 1.0 : -1.0
          for c in 0..<3 { colour[(y * size + x) * 3 + c] = middle[c] + side * contrast * direction[c] / norm }
          labels[y * size + x] = kind
        }
      }
    }
    var samples = [UInt8](repeating: 0, count: size * size * 3)
    for i in samples.indices {
      // Box-Muller noise.
      let noise = 0.02 * (-2 * log(max(uniform(0...1), 1e-12))).squareRoot() * cos(2 * .pi * uniform(0...1))
      samples[i] = UInt8(max(0, min(255, ((colour[i] + noise) * 255).rounded())))
    }
    image = Image(width: size, height: size, format: .rgb, samples: samples)
    self.labels = labels
  }
}
