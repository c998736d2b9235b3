import AtrousCore
import _CKernels

/// The guided filter (He et al. 2010) of a layer's bilinearly upsampled
/// map, with the image as guide, in the fast form of He and Sun (2015)
/// subsampled by the map's stride.
///
/// On the map's grid, with I the guide averaged over each cell's pixels
/// and p the map: over boxes of r cells (r = `radius` / stride, at least
/// one), `a = (cov(I, I) + epsilon U)^-1 cov(I, p)` and
/// `b = mean(p) - a . mean(I)` per channel; a and b are averaged over the
/// same boxes, upsampled bilinearly, and each pixel gets
/// `a(x) . I(x) + b(x)` with its own full-resolution colour I(x). Where
/// the guide is flat, a is 0 and the result is the box-smoothed map.
///
/// Boxes are clipped at the map's border and divide by the cells they
/// hold. Cost: on the map's grid, about (G^2 + 4 G) C operations per cell;
/// per pixel, bilinear blends of (G + 1) C coefficients and G C
/// multiply-adds, against bilinear's blend of C.
enum GuidedUpsampler {
  /// Box radius in map cells along an axis whose cells are `stride`
  /// pixels apart.
  static func boxRadius(radius: Double, stride: Double) -> Int {
    max(1, Int((radius / max(stride, 1)).rounded()))
  }

  /// The box-averaged coefficients of a tile's map, (mh, mw, (G + 1) C):
  /// per cell, a for guide channel 0 (C values), ..., a for channel
  /// G - 1, then b.
  /// - Parameters:
  ///   - map: (mh, mw, C).
  ///   - cells: the guide per cell, (mh, mw, G), from `CellGuide.colours(.cellMean, ...)`.
  ///   - radii: box radius in cells along rows and columns.
  static func coefficients(map: Tensor, cells: Tensor, radii: (rows: Int, columns: Int), epsilon: Double,
                           threads: Int) -> Tensor {
    let (mh, mw, c) = (map.shape[0], map.shape[1], map.shape[2])
    let g = cells.shape[2]
    let pairs = g * (g + 1) / 2
    // Statistics per cell: I (G), I_i I_j for i <= j, p (C), I_i p (G C).
    let k = g + pairs + c + g * c
    var stats = Tensor.uninitialized(shape: [mh, mw, k])  // (mh, mw, K)
    map.withUnsafeBufferPointer { m in
      cells.withUnsafeBufferPointer { colours in
        stats.withUnsafeMutableBufferPointer { s in
          for cell in 0..<(mh * mw) {
            let guide = colours.baseAddress! + cell * g, p = m.baseAddress! + cell * c
            let o = s.baseAddress! + cell * k
            var n = 0
            for i in 0..<g { o[i] = guide[i] }
            for i in 0..<g { for j in i..<g { o[g + n] = guide[i] * guide[j]; n += 1 } }
            (o + g + pairs).update(from: p, count: c)
            for i in 0..<g {
              let target = o + g + pairs + c + i * c, colour = guide[i]
              for channel in 0..<c { target[channel] = colour * p[channel] }
            }
          }
        }
      }
    }
    boxMean(&stats, radii: radii, threads: threads)

    var coefficients = Tensor.uninitialized(shape: [mh, mw, (g + 1) * c])  // (mh, mw, (G + 1) C)
    stats.withUnsafeBufferPointer { s in
      coefficients.withUnsafeMutableBufferPointer { out in
        let parts = Parallel.ranges(mh * mw, parts: min(threads, mh * mw))
        Parallel.run(parts.count) { part in
          // Per cell: Sigma + epsilon U, inverted once (G x G), then
          // applied to every channel's covariance in double precision:
          // E[I p] - E[I] E[p] cancels, and epsilon may be small.
          var inverse = [Double](repeating: 0, count: g * g), column = [Double](repeating: 0, count: g)
          var sigma = [Double](repeating: 0, count: g * g)
          var covariance = [Double](repeating: 0, count: g * c)  // (G, C)
          var sums = [Double](repeating: 0, count: c)  // (C)
          for cell in parts[part] {
            let st = s.baseAddress! + cell * k, o = out.baseAddress! + cell * (g + 1) * c
            let meanI = st, meanP = st + g + pairs, corrIP = st + g + pairs + c
            var n = 0
            for i in 0..<g {
              for j in i..<g {
                let v = Double(st[g + n]) - Double(meanI[i]) * Double(meanI[j]) + (i == j ? epsilon : 0)
                sigma[i * g + j] = v
                sigma[j * g + i] = v
                n += 1
              }
            }
            Self.choleskyFactor(&sigma, size: g)
            for j in 0..<g {
              for i in 0..<g { column[i] = i == j ? 1 : 0 }
              Self.choleskySolve(sigma, size: g, &column)
              for i in 0..<g { inverse[i * g + j] = column[i] }
            }
            covariance.withUnsafeMutableBufferPointer { cov in
              sums.withUnsafeMutableBufferPointer { acc in
                for j in 0..<g {
                  let mean = Double(meanI[j]), row = cov.baseAddress! + j * c, corr = corrIP + j * c
                  for channel in 0..<c { row[channel] = Double(corr[channel]) - mean * Double(meanP[channel]) }
                }
                let b = o + g * c
                for channel in 0..<c { b[channel] = meanP[channel] }
                // Loops over channels innermost, so that they vectorize.
                for i in 0..<g {
                  let a = o + i * c, mean = Double(meanI[i])
                  for channel in 0..<c { acc[channel] = 0 }
                  for j in 0..<g {
                    let weight = inverse[i * g + j], row = cov.baseAddress! + j * c
                    for channel in 0..<c { acc[channel] += weight * row[channel] }
                  }
                  for channel in 0..<c {
                    a[channel] = Float(acc[channel])
                    b[channel] = Float(Double(b[channel]) - acc[channel] * mean)
                  }
                }
              }
            }
          }
        }
      }
    }
    boxMean(&coefficients, radii: radii, threads: threads)
    return coefficients
  }

  /// One output row's run of one layer's features: for each of `columns`,
  /// C values at `out + x * pixelStride`, from `blended`, the coefficients
  /// bilinearly blended for those columns ((columns, (G + 1) C)), and the
  /// guide's crop (h, w, G), first pixel `cropOrigin`.
  static func apply(_ out: UnsafeMutablePointer<Float>, pixelStride: Int, y: Int, columns: Range<Int>, channels c: Int,
                    blended: UnsafePointer<Float>, guide: Tensor, cropOrigin: (row: Int, column: Int)) {
    let (gw, g) = (guide.shape[1], guide.shape[2])
    guide.withUnsafeBufferPointer { pixels in
      for (i, x) in columns.enumerated() {
        let colour = pixels.baseAddress! + ((y - cropOrigin.row) * gw + (x - cropOrigin.column)) * g
        let coefficients = blended + i * (g + 1) * c, o = out + i * pixelStride
        o.update(from: coefficients + g * c, count: c)
        for j in 0..<g { atr_scale_add(o, 1, coefficients + j * c, colour[j], c) }
      }
    }
  }

  /// Replaces `x` ((H, W, K)) by its means over boxes of (2 r + 1) cells
  /// each way, clipped at the border: a pass along rows, then one along
  /// columns, each with running sums in double precision.
  static func boxMean(_ x: inout Tensor, radii: (rows: Int, columns: Int), threads: Int) {
    let (h, w, k) = (x.shape[0], x.shape[1], x.shape[2])
    var across = Tensor.uninitialized(shape: x.shape)  // (H, W, K)
    x.withUnsafeMutableBufferPointer { values in
      across.withUnsafeMutableBufferPointer { temporary in
        let source = values.baseAddress!, middle = temporary.baseAddress!
        // Along each row: elements of K values, one per column.
        let rowParts = Parallel.ranges(h, parts: min(threads, h))
        Parallel.run(rowParts.count) { part in
          var sums = [Double](repeating: 0, count: k)
          for i in rowParts[part] {
            atr_box_mean_pass(middle + i * w * k, source + i * w * k, w, k, k, radii.columns, &sums)
          }
        }
        // Along columns: elements of W K values, one per row, split by
        // position across threads.
        let spans = Parallel.ranges(w * k, parts: min(threads, w * k))
        Parallel.run(spans.count) { part in
          let span = spans[part]
          var sums = [Double](repeating: 0, count: span.count)
          atr_box_mean_pass(source + span.lowerBound, middle + span.lowerBound, h, span.count, w * k, radii.rows, &sums)
        }
      }
    }
  }

  /// Overwrites the lower triangle of the symmetric positive definite
  /// `size` x `size` matrix `a` (row-major) with its Cholesky factor L.
  static func choleskyFactor(_ a: inout [Double], size n: Int) {
    for j in 0..<n {
      var d = a[j * n + j]
      for k in 0..<j { d -= a[j * n + k] * a[j * n + k] }
      let l = d.squareRoot()
      a[j * n + j] = l
      for i in (j + 1)..<max(j + 1, n) {
        var v = a[i * n + j]
        for k in 0..<j { v -= a[i * n + k] * a[j * n + k] }
        a[i * n + j] = v / l
      }
    }
  }

  /// Solves L L^T x = b in place, for L from `choleskyFactor`.
  static func choleskySolve(_ l: [Double], size n: Int, _ b: inout [Double]) {
    for i in 0..<n {
      var v = b[i]
      for k in 0..<i { v -= l[i * n + k] * b[k] }
      b[i] = v / l[i * n + i]
    }
    for i in stride(from: n - 1, through: 0, by: -1) {
      var v = b[i]
      for k in (i + 1)..<max(i + 1, n) { v -= l[k * n + i] * b[k] }
      b[i] = v / l[i * n + i]
    }
  }
}
