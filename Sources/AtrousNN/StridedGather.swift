import AtrousCore
import _CKernels

/// The internal op `_StridedGather` (made by
/// `GraphOptimizer.recognizeStridedGather`, never found in a model file):
/// blocks of channels sampled from the image on a grid, output channel
/// k * C + j at (y, x) being input channel j at (y * stride + row_k,
/// x * stride + col_k). It is a YOLO Focus block (strided Slices and their
/// Concat) in one pass, written channels-last as the convolution after it
/// reads it.
enum StridedGather {
  static let opType = "_StridedGather"
  static let strideAttribute = "stride"
  /// (row, column) of each block's first sample, block by block.
  static let offsetsAttribute = "offsets"

  static func register(_ table: inout OperatorTable) {
    table[opType] = { c in [try gather(c)] }
    table.describe([opType], floatData: true, tracesShapes: true)
  }

  static func gather(_ c: OpContext) throws -> NDArray {
    let x = try c.input(0)
    let step = try c.int(strideAttribute) ?? 0
    guard let offsets = try c.ints(offsetsAttribute), offsets.count >= 2, offsets.count % 2 == 0, step >= 1,
      offsets.allSatisfy({ $0 >= 0 && $0 < step })
    else { throw c.invalid(offsetsAttribute, "expected (row, column) pairs below the stride") }
    guard x.rank == 4 else { throw c.unsupported("input rank", x.rank) }
    let (n, channels, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let blocks = offsets.count / 2
    // Every block must sample the same grid size, as the Concat required.
    let sizes = (0..<blocks).map { k in ((h - offsets[2 * k] + step - 1) / step, (w - offsets[2 * k + 1] + step - 1) / step) }
    guard let (oh, ow) = sizes.first, sizes.allSatisfy({ $0 == (oh, ow) }), oh > 0, ow > 0 else {
      throw c.mismatch("strided samples of \(x.shape) differ in size")
    }
    let shape = [n, oh, ow, blocks * channels]  // (N, OH, OW, blocks * C)
    if c.shapesOnly { return NDArray(channelsLast: Tensor.uninitialized(shape: shape)) }
    var output = Tensor.uninitialized(shape: shape)
    let pixels = blocks * channels
    if x.channelsLast {
      // (N, H, W, C): each sample is C contiguous values.
      let input = x.storage!
      input.withUnsafeBufferPointer { src in
        output.withUnsafeMutableBufferPointer { dst in
          for p in 0..<(n * oh * ow) {
            let (b, y, column) = (p / (oh * ow), p / ow % oh, p % ow)
            for k in 0..<blocks {
              let row = (b * h + y * step + offsets[2 * k]) * w + column * step + offsets[2 * k + 1]
              (dst.baseAddress! + p * pixels + k * channels).update(from: src.baseAddress! + row * channels, count: channels)
            }
          }
        }
      }
      return NDArray(channelsLast: output)
    }
    let planes = x.standard().storage!  // (N, C, H, W)
    // Bands of output rows across threads when there is enough to copy.
    let bands = Parallel.ranges(oh, parts: output.count >= Elementwise.parallelCopyThreshold ? c.threads : 1)
    planes.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        offsets.withUnsafeBufferPointer { first in
          for b in 0..<n {
            Parallel.run(bands.count) { band in
              atr_gather_planes_strided(dst.baseAddress! + b * oh * ow * pixels, src.baseAddress! + b * channels * h * w,
                                        channels, h, w, step, first.baseAddress!, blocks, ow, bands[band].lowerBound,
                                        bands[band].upperBound)
            }
          }
        }
      }
    }
    return NDArray(channelsLast: output)
  }
}
