import AtrousCore
import AtrousFilters

/// A deliberately plain reference: pad the whole image (with its own
/// periodic formulation of each border mode), then correlate every output
/// pixel with every tap. Nothing here is shared with the library.
enum NaiveFilter {
  static func source(_ p: Int, count n: Int, border: BorderMode) -> Int? {
    if p >= 0 && p < n { return p }
    func mod(_ a: Int, _ m: Int) -> Int { ((a % m) + m) % m }
    switch border {
    case .constant: return nil
    case .replicate: return min(max(p, 0), n - 1)
    case .wrap: return mod(p, n)
    case .reflect:
      let m = mod(p, 2 * n)
      return m < n ? m : 2 * n - 1 - m
    case .reflect101:
      if n == 1 { return 0 }
      let m = mod(p, 2 * n - 2)
      return m < n ? m : 2 * n - 2 - m
    }
  }

  /// (begin, end) padding along one axis, from the formulas written out.
  static func pads(n: Int, k: Int, s: Int, d: Int, padding: Padding, vertical: Bool) -> (Int, Int) {
    switch padding {
    case .valid: return (0, 0)
    case .explicit(let t, let b, let l, let r): return vertical ? (t, b) : (l, r)
    case .same, .sameLower:
      let outCount = Int((Double(n) / Double(s)).rounded(.up))
      let total = max((outCount - 1) * s + d * (k - 1) + 1 - n, 0)
      let small = total / 2, large = total - small
      return padding == .same ? (small, large) : (large, small)
    }
  }

  static func correlate(_ input: Tensor, _ kernel: Kernel2D, _ g: FilterGeometry) -> Tensor {
    let (h, w, c) = (input.shape[0], input.shape[1], input.shape[2])
    let (top, bottom) = pads(n: h, k: kernel.rows, s: g.stride.y, d: g.dilation.y, padding: g.padding, vertical: true)
    let (left, right) = pads(n: w, k: kernel.columns, s: g.stride.x, d: g.dilation.x, padding: g.padding, vertical: false)
    let outH = (h + top + bottom - g.dilation.y * (kernel.rows - 1) - 1) / g.stride.y + 1
    let outW = (w + left + right - g.dilation.x * (kernel.columns - 1) - 1) / g.stride.x + 1
    var out = Tensor(shape: [outH, outW, c])
    for y in 0..<outH {
      for x in 0..<outW {
        for ch in 0..<c {
          var sum: Double = 0
          for r in 0..<kernel.rows {
            for q in 0..<kernel.columns {
              let py = y * g.stride.y - top + r * g.dilation.y
              let px = x * g.stride.x - left + q * g.dilation.x
              let value: Float
              if let sy = source(py, count: h, border: g.border), let sx = source(px, count: w, border: g.border) {
                value = input[sy, sx, ch]
              } else {
                value = { if case .constant(let v) = g.border { return v } else { return 0 } }()
              }
              sum += Double(kernel[r, q]) * Double(value)
            }
          }
          out[y, x, ch] = Float(sum)
        }
      }
    }
    return out
  }
}

/// A deterministic test image with detail at every scale.
func testTensor(height: Int, width: Int, channels: Int, seed: UInt64 = 1) -> Tensor {
  var state = seed
  var values = [Float]()
  values.reserveCapacity(height * width * channels)
  for i in 0..<(height * width * channels) {
    state = state &* 6364136223846793005 &+ 1442695040888963407
    let noise = Float(state >> 40) / Float(1 << 24)
    values.append(Float(i % 17) * 7 + noise * 40)
  }
  return Tensor(shape: [height, width, channels], values: values)
}
