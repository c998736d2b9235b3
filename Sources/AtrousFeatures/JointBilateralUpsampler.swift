import AtrousCore
import _CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Joint bilateral upsampling of one layer's map (Kopf et al. 2007).
///
/// Output pixel p gets `sum_q w(p, q) F(q) / sum_q w(p, q)` over the map
/// cells q within `2 * spatialSigma` cells of p's position on the map
/// (always including its two bilinear neighbours per axis), with
/// `w = exp(-|p - q|^2 / (2 spatialSigma^2)) * exp(-|I(p) - I(q)|^2 / (2 rangeSigma^2))`:
/// |p - q| in map cells, I(p) the guide at p and I(q) the guide at the
/// image pixel nearest q's centre.
///
/// The weights depend on the guide alone, so each pixel's are computed
/// once and shared by all the layer's channels. Cost per pixel: K^2 colour
/// distances and exponentials, and K^2 * C multiply-adds, for K the
/// window's width in cells (8 or 9 at the default sigma of 2), against
/// bilinear's 4 * C.
enum JointBilateralUpsampler {
  /// The map cells one output coordinate reads along an axis, from
  /// `first`, with their spatial weights.
  struct Window: Sendable {
    var first: Int
    var weights: [Float]
  }

  /// The window of every output coordinate along an axis of `output`
  /// samples, from a map of `input` cells.
  static func windows(input: Int, output: Int, alignment: BilinearResize.Alignment, sigma: Double) -> [Window] {
    let radius = 2 * sigma
    return (0..<output).map { i in
      let x = BilinearResize.source(i, input: input, output: output, alignment: alignment)
      let first = max(0, min(Int(x.rounded(.down)), Int((x - radius).rounded(.up))))
      let last = min(input - 1, max(Int(x.rounded(.up)), Int((x + radius).rounded(.down))))
      let weights = (first...last).map { q -> Float in
        let d = Double(q) - x
        return Float(exp(-d * d / (2 * sigma * sigma)))
      }
      return Window(first: first, weights: weights)
    }
  }

  /// One output row's run of one layer's features: for each of
  /// `columns`, C values at `out + x * pixelStride`.
  ///
  /// - Parameters:
  ///   - map: the tile's map, (mh, mw, C), whose first cell is whole-map
  ///     cell `origin`.
  ///   - cells: the guide at each cell, (mh, mw, G), from `CellGuide.colours(.nearestPixel, ...)`.
  ///   - guide: the tile crop's colours, (h, w, G), first pixel `cropOrigin`.
  ///   - weights, rows: scratch for the window's weights and its cells'
  ///     features, grown once per thread.
  static func row(_ out: UnsafeMutablePointer<Float>, pixelStride: Int, y: Int, columns: Range<Int>, map: Tensor,
                  origin: (row: Int, column: Int), cells: Tensor, guide: Tensor, cropOrigin: (row: Int, column: Int),
                  rowWindow: Window, columnWindows: [Window], rangeSigma: Double, weights: inout [Float],
                  rows: inout [UnsafePointer<Float>?]) {
    let (mh, mw, c) = (map.shape[0], map.shape[1], map.shape[2])
    let (gw, g) = (guide.shape[1], guide.shape[2])
    let r0 = rowWindow.first - origin.row, ny = rowWindow.weights.count
    precondition(r0 >= 0 && r0 + ny <= mh, "tile crop misses map rows of the joint bilateral window")
    let inverse = Float(1 / (2 * rangeSigma * rangeSigma))
    map.withUnsafeBufferPointer { m in
      cells.withUnsafeBufferPointer { cellColours in
        guide.withUnsafeBufferPointer { pixels in
          for x in columns {
            let window = columnWindows[x]
            let c0 = window.first - origin.column, nx = window.weights.count
            precondition(c0 >= 0 && c0 + nx <= mw, "tile crop misses map columns of the joint bilateral window")
            if weights.count < ny * nx { weights = [Float](repeating: 0, count: ny * nx) }
            if rows.count < ny * nx { rows = [UnsafePointer<Float>?](repeating: nil, count: ny * nx) }
            let colour = pixels.baseAddress! + ((y - cropOrigin.row) * gw + (x - cropOrigin.column)) * g
            weights.withUnsafeMutableBufferPointer { wb in
              let w = wb.baseAddress!
              // Squared colour distances first: their least is subtracted
              // before the exponential, so that the nearest colour weighs
              // exp(0) and no sum underflows, whatever rangeSigma.
              var least = Float.infinity
              for a in 0..<ny {
                for b in 0..<nx {
                  let q = cellColours.baseAddress! + ((r0 + a) * mw + c0 + b) * g
                  var d: Float = 0
                  for k in 0..<g { let e = colour[k] - q[k]; d += e * e }
                  w[a * nx + b] = d
                  least = min(least, d)
                }
              }
              var total: Float = 0
              for a in 0..<ny {
                for b in 0..<nx {
                  let v = rowWindow.weights[a] * window.weights[b] * Glibc.exp(-(w[a * nx + b] - least) * inverse)
                  w[a * nx + b] = v
                  total += v
                }
              }
              let o = out + (x - columns.lowerBound) * pixelStride
              let scale = 1 / total
              rows.withUnsafeMutableBufferPointer { cells in
                for a in 0..<ny {
                  for b in 0..<nx {
                    w[a * nx + b] *= scale
                    cells[a * nx + b] = UnsafePointer(m.baseAddress! + ((r0 + a) * mw + c0 + b) * c)
                  }
                }
                atr_weighted_sum(o, cells.baseAddress!, w, ny * nx, c)
              }
            }
          }
        }
      }
    }
  }
}
