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

  /// The reduction of `x` (standard order), `meanOver` elements per mean.
  func reduce(_ x: Tensor, _ kind: Reduce.Kind, meanOver n: Int) -> [Float] {
    if inner == 1 && kind != .prod { return reduceRuns(x, kind, meanOver: n) }
    var out = [Float](repeating: 0, count: outer * inner)
    var row = [Double](repeating: 0, count: inner)  // (inner) sums of one outer index
    x.withUnsafeBufferPointer { src in
      for o in 0..<outer {
        let base = src.baseAddress! + o * reduced * inner
        switch kind {
        case .max, .min:
          let largest = kind == .max
          out.withUnsafeMutableBufferPointer { dst in
            let target = dst.baseAddress! + o * inner
            if reduced == 0 || inner == 1 {
              // Nothing to read (the empty set's value), or one run.
              for i in 0..<inner { target[i] = Self.extreme(base + i, count: reduced, largest: largest) }
              return
            }
            target.update(from: base, count: inner)
            for r in 1..<reduced {
              let line = base + r * inner
              for i in 0..<inner {
                let (v, m) = (line[i], target[i])
                target[i] = v.isNaN || m.isNaN ? .nan : largest ? (v > m ? v : m) : (v < m ? v : m)
              }
            }
          }
        default:
          let square = kind == .l2 || kind == .sumSquare, absolute = kind == .l1, product = kind == .prod
          if inner == 1 && !product {
            row[0] = Self.sum(base, count: reduced, square: square, absolute: absolute)
          } else {
            for i in 0..<inner { row[i] = product ? 1 : 0 }
            for r in 0..<reduced {
              let line = base + r * inner
              if product {
                for i in 0..<inner { row[i] *= Double(line[i]) }
              } else if square {
                for i in 0..<inner { row[i] += Double(line[i]) * Double(line[i]) }
              } else if absolute {
                for i in 0..<inner { row[i] += Double(abs(line[i])) }
              } else {
                for i in 0..<inner { row[i] += Double(line[i]) }
              }
            }
          }
          for i in 0..<inner {
            var v = row[i]
            switch kind {
            case .mean: v = n == 0 || reduced == 0 ? .nan : v / Double(n)
            case .l2: v = v.squareRoot()
            case .logSum: v = log(v)
            default: break
            }
            out[o * inner + i] = Float(v)
          }
        }
      }
    }
    return out
  }

  /// `reduce` where each output reduces one contiguous run (`inner` is
  /// 1): a kernel call per run, nothing else per run but the finish (the
  /// reductions along the last axis run as many runs as the map has rows,
  /// 8192 of 128 over a (1, 64, 128, 128) map).
  private func reduceRuns(_ x: Tensor, _ kind: Reduce.Kind, meanOver n: Int) -> [Float] {
    let square = kind == .l2 || kind == .sumSquare, absolute = kind == .l1
    return [Float](unsafeUninitializedCapacity: outer) { out, initialized in
      x.withUnsafeBufferPointer { src in
        for o in 0..<outer {
          let run = src.baseAddress! + o * reduced
          switch kind {
          case .max, .min: out[o] = Self.extreme(run, count: reduced, largest: kind == .max)
          case .mean:
            out[o] = n == 0 || reduced == 0 ? .nan : Float(Self.sum(run, count: reduced, square: false, absolute: false) / Double(n))
          case .l2: out[o] = Float(Self.sum(run, count: reduced, square: true, absolute: false).squareRoot())
          case .logSum: out[o] = Float(log(Self.sum(run, count: reduced, square: false, absolute: false)))
          default: out[o] = Float(Self.sum(run, count: reduced, square: square, absolute: absolute))
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
