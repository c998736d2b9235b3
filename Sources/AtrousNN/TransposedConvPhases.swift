import AtrousCore
import _CKernels

/// A transposed convolution whose kernel sides are whole multiples of its
/// strides (a U-Net's or a decoder's 2x2 and 4x4 at stride 2), run as one
/// ordinary convolution per phase of the output: output pixels whose
/// coordinates leave the same remainders (ry, rx) by the strides take
/// their taps from the same (kH/sH) x (kW/sW) sub-kernel, each over the
/// input pixels next to one another. Each phase's output row is one
/// packed product, (W', K) gathered input pixels times (K, Cout) weights,
/// K = (kH/sH)(kW/sW) Cin, written straight to its pixels of the output
/// (every sW-th); every output pixel belongs to exactly one phase. The
/// general way (`TransposedConvKernel.run`) writes every input pixel's
/// products for all taps (16 times the output's channels for a 4x4) and
/// gathers them after: 64 -> 32 at 4x4, stride 2, from 56x56 took 5.7 ms
/// there at 1 thread (AMD EPYC, AVX2).
extension TransposedConvKernel {
  /// Whether the phases apply: one group, no dilation, strides above 1
  /// that divide the kernel's sides.
  var phased: Bool {
    group == 1 && dilations == [1, 1] && strides.contains { $0 > 1 }
      && kernel[0] % strides[0] == 0 && kernel[1] % strides[1] == 0 && !TransposedConvKernel.forcedGather
  }

  /// Tests run the general way on the calling task, to compare the two.
  @TaskLocal static var forcedGather = false

  /// Taps of a phase's sub-kernel along each axis.
  private var phaseTaps: (Int, Int) { (kernel[0] / strides[0], kernel[1] / strides[1]) }

  /// Per phase (ry, rx), row-major, the weights (Cin, Cout, kH, kW) of its
  /// taps ky = ry + sH jy, kx = rx + sW jx as a packed (K, Cout) matrix,
  /// K's index (jy, jx, ci).
  func phasePanels(_ weights: [Float]) -> [[Float]] {
    let (ty, tx) = phaseTaps
    let k = ty * tx * cin, kernelTaps = kernel[0] * kernel[1]
    var result: [[Float]] = []
    for ry in 0..<strides[0] {
      for rx in 0..<strides[1] {
        var matrix = [Float](repeating: 0, count: k * cout)  // (K, Cout)
        for jy in 0..<ty {
          for jx in 0..<tx {
            let tap = (ry + strides[0] * jy) * kernel[1] + rx + strides[1] * jx
            for ci in 0..<cin {
              let row = ((jy * tx + jx) * cin + ci) * cout
              for co in 0..<cout { matrix[row + co] = weights[(ci * cout + co) * kernelTaps + tap] }
            }
          }
        }
        var panels = [Float](repeating: 0, count: atr_packed_b_size(k, cout))
        panels.withUnsafeMutableBufferPointer { atr_pack_b($0.baseAddress!, matrix, k, cout, cout) }
        result.append(panels)
      }
    }
    return result
  }

  /// The smallest q with s q - pad + r >= `from`: the first of a phase's
  /// positions along an axis at or after output index `from`.
  private static func firstPosition(_ from: Int, stride s: Int, pad: Int, phase r: Int) -> Int {
    let a = from + pad - r
    return a >= 0 ? (a + s - 1) / s : -((-a) / s)
  }

  /// The transposed convolution of (N, H, W, Cin) `input` by phases;
  /// `panels` from `phasePanels`.
  func runPhased(_ input: Tensor, panels: [[Float]], threads: Int) -> Tensor {
    let (oh, ow) = (outputSize[0], outputSize[1])
    let (sy, sx) = (strides[0], strides[1]), (ty, tx) = phaseTaps
    let k = ty * tx * cin
    var output = Tensor.uninitialized(shape: [n, oh, ow, cout])  // (N, OH, OW, Cout)
    // Each phase's positions along x: [first, end), at most `widest`.
    let columns = (0..<sx).map { rx in
      Self.firstPosition(0, stride: sx, pad: padBegin[1], phase: rx)..<Self.firstPosition(ow, stride: sx, pad: padBegin[1], phase: rx)
    }
    let widest = columns.map(\.count).max() ?? 0
    // Work items: (image, ry, q) for every phase row; each does every rx.
    let rowRanges = (0..<sy).map { ry in
      Self.firstPosition(0, stride: sy, pad: padBegin[0], phase: ry)..<Self.firstPosition(oh, stride: sy, pad: padBegin[0], phase: ry)
    }
    let items = (0..<n).flatMap { b in (0..<sy).flatMap { ry in rowRanges[ry].map { (b, ry, $0) } } }
    let workers = max(1, min(threads, items.count))
    let scratch = ConvKernel.scratch(workers, floats: max(1, widest * k))  // (W', K) gathered pixels each
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        (bias ?? []).withUnsafeBufferPointer { biasValues in
          let source = src.baseAddress!, target = dst.baseAddress!
          let start = bias == nil ? ATR_START_ZERO : ATR_START_COLUMN_BIAS
          Parallel.dynamic(items.count, workers: workers) { worker, index in
            let (b, ry, q) = items[index]
            let oy = sy * q - padBegin[0] + ry
            let gathered = scratch[worker].pointer.assumingMemoryBound(to: Float.self)
            for rx in 0..<sx where !columns[rx].isEmpty {
              let span = columns[rx]
              let ox = sx * span.lowerBound - padBegin[1] + rx
              let out = target + ((b * oh + oy) * ow + ox) * cout
              if ty * tx == 1 && q >= 0 && q < height && span.lowerBound >= 0 && span.upperBound <= width {
                // One tap a phase (a 2x2 at stride 2) over pixels all inside
                // the input: its row is the product's rows as they are.
                atr_sgemm_packed(span.count, cout, k, source + ((b * height + q) * width + span.lowerBound) * cin, cin,
                                 panels[ry * sx + rx], out, sx * cout, start, biasValues.baseAddress)
                continue
              }
              // Row p of the gathered matrix: input pixels (q - jy, qx - jx)
              // for qx = span.lowerBound + p, zeros outside the input.
              for (p, qx) in span.enumerated() {
                for jy in 0..<ty {
                  let iy = q - jy
                  for jx in 0..<tx {
                    let ix = qx - jx
                    let to = gathered + p * k + (jy * tx + jx) * cin
                    if iy >= 0 && iy < height && ix >= 0 && ix < width {
                      to.update(from: source + ((b * height + iy) * width + ix) * cin, count: cin)
                    } else {
                      to.update(repeating: 0, count: cin)
                    }
                  }
                }
              }
              atr_sgemm_packed(span.count, cout, k, gathered, k, panels[ry * sx + rx], out, sx * cout, start,
                               biasValues.baseAddress)
            }
          }
        }
      }
    }
    return output
  }
}
