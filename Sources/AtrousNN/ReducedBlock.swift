import AtrousCore
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
/// general path's do; the order within a reduced run differs (eight
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

  /// The largest (or smallest) of `count` floats, NaN if any is NaN.
  static func extreme(_ x: UnsafePointer<Float>, count: Int, largest: Bool) -> Float {
    guard count > 0 else { return largest ? -.infinity : .infinity }
    var lanes = SIMD8<Float>(repeating: x[0]), nan = SIMDMask<SIMD8<Int32>>()
    var i = 0
    while i + 8 <= count {
      let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
      nan .|= v .!= v
      lanes = largest ? lanes.replacing(with: v, where: v .> lanes) : lanes.replacing(with: v, where: v .< lanes)
      i += 8
    }
    var m = largest ? lanes.max() : lanes.min()
    var anyNaN = any(nan)
    while i < count {
      let v = x[i]
      anyNaN = anyNaN || v.isNaN
      m = largest ? (v > m ? v : m) : (v < m ? v : m)
      i += 1
    }
    return anyNaN ? .nan : m
  }

  /// The sum (of squares, of magnitudes) of `count` floats in Double,
  /// as eight partial sums.
  static func sum(_ x: UnsafePointer<Float>, count: Int, square: Bool, absolute: Bool) -> Double {
    var lanes = SIMD8<Double>(repeating: 0)
    var i = 0
    while i + 8 <= count {
      var v = SIMD8<Double>(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
      if square { v *= v } else if absolute { v = v.replacing(with: -v, where: v .< 0) }
      lanes += v
      i += 8
    }
    var total = lanes.sum()
    while i < count {
      let v = Double(x[i])
      total += square ? v * v : absolute ? abs(v) : v
      i += 1
    }
    return total
  }
}
