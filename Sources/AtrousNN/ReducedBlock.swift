import AtrousCore
import _CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A reduction whose reduced axes, once axes of length 1 are dropped, sit
/// next to each other: the input read as (outer, reduced, inner), the
/// output as (outer, inner). Reducing all axes, the last, or the channels
/// of an NCHW map are all of this kind. `Reduce` runs these a row at a
/// time, each row's loop vectorized, instead of visiting element by element
/// with the output offset of each, which took 50 to 70 times as long as
/// ONNX Runtime over a 4M-element map. Sums accumulate in Double, as the
/// general path's do; the order within a reduced run differs (sixteen
/// partial sums), which a float result does not show but in its last bit
/// at the very most.
struct ReducedBlock {
  let outer: Int, reduced: Int, inner: Int

  /// nil when the reduced axes are not one block.
  init?(_ shape: [Int], kept: [Bool]) {
    var groups: [(kept: Bool, length: Int)] = []
    for (length, keep) in zip(shape, kept) where length != 1 {
      if let last = groups.last, last.kept == keep {
        groups[groups.count - 1].length *= length
      } else {
        groups.append((keep, length))
      }
    }
    let reducedGroups = groups.indices.filter { !groups[$0].kept }
    guard reducedGroups.count <= 1 else { return nil }
    guard let r = reducedGroups.first else {
      (outer, reduced, inner) = (groups.first?.length ?? 1, 1, 1)
      return
    }
    outer = r > 0 ? groups[0].length : 1
    reduced = groups[r].length
    inner = r + 1 < groups.count ? groups[r + 1].length : 1
  }

  /// Columns per block of a reduction across rows (`inner` > 1): a block's
  /// accumulators (8 KiB of doubles) stay in L1 while its rows pass.
  static let columns = 1024

  /// The reduction of `x` (standard order), `meanOver` elements per mean,
  /// on up to `threads` threads: runs (`inner` 1) split by rows, else
  /// blocks of `columns` adjacent outputs, each accumulating its rows.
  func reduce(_ x: Tensor, _ kind: Reduce.Kind, meanOver n: Int, threads: Int = 1) -> [Float] {
    if inner == 1 && kind != .prod {
      return reduceRuns(x, kind, meanOver: n, threads: x.count >= Elementwise.parallelThreshold ? threads : 1)
    }
    let blocks = ColumnBlocks(outer: outer, inner: inner, width: Self.columns)
    let square = kind == .l2 || kind == .sumSquare, absolute = kind == .l1
    return [Float](unsafeUninitializedCapacity: outer * inner) { out, initialized in
      x.withUnsafeBufferPointer { src in
        // Scratch: (columns) doubles of sums.
        blocks.forEach(elements: x.count, threads: threads, scratchFloats: 2 * Self.columns) { scratch, o, columns in
          let (first, cols) = (columns.lowerBound, columns.count)
          let base = src.baseAddress! + o * reduced * inner + first  // rows `inner` apart
          let target = out.baseAddress! + o * inner + first
          switch kind {
          case .max, .min:
            let largest = kind == .max
            guard reduced > 0 else {
              target.initialize(repeating: largest ? -.infinity : .infinity, count: cols)
              return
            }
            target.initialize(from: base, count: cols)
            for r in 1..<reduced { atr_reduce_extreme_into(target, base + r * inner, cols, largest ? 1 : 0) }
          default:
            let sums = scratch.assumingMemoryBound(to: Double.self)  // (cols)
            sums.update(repeating: kind == .prod ? 1 : 0, count: cols)
            for r in 0..<reduced {
              let line = base + r * inner
              if kind == .prod {
                for i in 0..<cols { sums[i] *= Double(line[i]) }
              } else {
                atr_reduce_sum_into(sums, line, cols, square ? 1 : 0, absolute ? 1 : 0)
              }
            }
            for i in 0..<cols { target[i] = Self.finish(sums[i], kind, count: reduced, meanOver: n) }
          }
        }
      }
      initialized = outer * inner
    }
  }

  /// An output from its sum (or product): the mean's quotient (NaN for
  /// none), L2's root, LogSum's logarithm, as a float.
  static func finish(_ sum: Double, _ kind: Reduce.Kind, count: Int, meanOver n: Int) -> Float {
    switch kind {
    case .mean: n == 0 || count == 0 ? .nan : Float(sum / Double(n))
    case .l2: Float(sum.squareRoot())
    case .logSum: Float(log(sum))
    default: Float(sum)
    }
  }

  /// `reduce` where each output reduces one contiguous run (`inner` is
  /// 1): a kernel call per run, nothing else per run but the finish (the
  /// reductions along the last axis run as many runs as the map has rows,
  /// 8192 of 128 over a (1, 64, 128, 128) map).
  private func reduceRuns(_ x: Tensor, _ kind: Reduce.Kind, meanOver n: Int, threads: Int) -> [Float] {
    let square = kind == .l2 || kind == .sumSquare, absolute = kind == .l1
    let parts = Parallel.ranges(outer, parts: threads)
    return [Float](unsafeUninitializedCapacity: outer) { out, initialized in
      x.withUnsafeBufferPointer { src in
        Parallel.run(parts.count) { part in
          for o in parts[part] {
            let run = src.baseAddress! + o * reduced
            switch kind {
            case .max, .min: out[o] = Self.extreme(run, count: reduced, largest: kind == .max)
            default:
              out[o] = Self.finish(Self.sum(run, count: reduced, square: square, absolute: absolute), kind, count: reduced,
                                   meanOver: n)
            }
          }
        }
      }
      initialized = outer
    }
  }

  /// The largest (or smallest) of `count` floats, NaN if any is NaN.
  static func extreme(_ x: UnsafePointer<Float>, count: Int, largest: Bool) -> Float {
    atr_reduce_extreme(x, count, largest ? 1 : 0)
  }

  /// The sum (of squares, of magnitudes) of `count` floats in Double, as
  /// sixteen partial sums.
  static func sum(_ x: UnsafePointer<Float>, count: Int, square: Bool, absolute: Bool) -> Double {
    atr_reduce_sum(x, count, square ? 1 : 0, absolute ? 1 : 0)
  }
}
