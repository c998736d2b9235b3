import _CKernels

/// Bilinear resizing of `(H, W, C)` tensors, as OpenCV's `cv2.resize`
/// with INTER_LINEAR computes it for float images (no antialiasing), and as
/// PyTorch's `interpolate(mode="bilinear")` and ONNX Resize do.
public enum BilinearResize {
  /// How output pixel centres map to input coordinates.
  public enum Alignment: Sendable {
    /// Half-pixel centres: x_in = (x_out + 0.5) * in / out - 0.5 (cv2,
    /// align_corners=False, ONNX half_pixel). The default.
    case halfPixel
    /// Corner pixels aligned: x_in = x_out * (in - 1) / (out - 1).
    case alignCorners
  }

  /// One output coordinate's two input neighbours and the second's weight.
  public struct Tap: Sendable {
    public var low: Int
    public var high: Int
    public var weight: Float

    /// The rows `low` and `high` (`first` and `second`, `count` floats
    /// each) blended into `scratch`, or `first` itself where the second
    /// weighs nothing (an output row on an input row: every row of a map
    /// resized to its own size), as `atr_lerp_pixels` copies such a pixel.
    public func blend(_ first: UnsafePointer<Float>, _ second: UnsafePointer<Float>,
                      into scratch: UnsafeMutablePointer<Float>, count: Int) -> UnsafePointer<Float> {
      guard weight != 0 else { return first }
      atr_lerp(scratch, first, second, weight, count)
      return UnsafePointer(scratch)
    }
  }

  /// Taps as the three arrays `atr_lerp_pixels` reads.
  public struct TapTable: Sendable {
    public var low: [Int]
    public var high: [Int]
    public var weight: [Float]

    public init(_ taps: [Tap]) {
      low = taps.map(\.low)
      high = taps.map(\.high)
      weight = taps.map(\.weight)
    }

    /// Output pixels `range`, `channels` floats each at out + i *
    /// `pixelStride` for the i-th, blended from the pixels of `row`
    /// ((pixels, channels)) whose first is input pixel `first`.
    public func blend(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>, pixelStride: Int,
                      row: UnsafePointer<Float>, first: Int, channels: Int) {
      low.withUnsafeBufferPointer { l in
        high.withUnsafeBufferPointer { h in
          weight.withUnsafeBufferPointer { w in
            atr_lerp_pixels(out, pixelStride, row, first, l.baseAddress! + range.lowerBound,
                            h.baseAddress! + range.lowerBound, w.baseAddress! + range.lowerBound, range.count, channels)
          }
        }
      }
    }
  }

  /// For each of `output` coordinates, the two of `input` coordinates it
  /// blends (clamped at the edges) and the weight of the second.
  public static func taps(input: Int, output: Int, alignment: Alignment) -> [Tap] {
    (0..<output).map { i in
      let clamped = source(i, input: input, output: output, alignment: alignment)
      let low = Int(clamped.rounded(.down))
      return Tap(low: low, high: min(low + 1, input - 1), weight: Float(clamped - Double(low)))
    }
  }

  /// The input coordinate (in input samples, clamped to the input) that
  /// output coordinate `i` samples.
  public static func source(_ i: Int, input: Int, output: Int, alignment: Alignment) -> Double {
    let x: Double
    switch alignment {
    case .halfPixel: x = (Double(i) + 0.5) * Double(input) / Double(output) - 0.5
    case .alignCorners: x = output == 1 ? 0 : Double(i) * Double(input - 1) / Double(output - 1)
    }
    return min(max(x, 0), Double(input - 1))
  }

  /// The output coordinate where input sample `j` sits: the inverse of
  /// `source`, unclamped.
  public static func target(_ j: Int, input: Int, output: Int, alignment: Alignment) -> Double {
    switch alignment {
    case .halfPixel: (Double(j) + 0.5) * Double(output) / Double(input) - 0.5
    case .alignCorners: input == 1 ? 0 : Double(j) * Double(output - 1) / Double(input - 1)
    }
  }

  /// The tensor resized to `height` x `width`, rows split across threads.
  public static func resize(_ input: Tensor, height: Int, width: Int, alignment: Alignment = .halfPixel,
                            threads: Int = Parallel.coreCount) -> Tensor {
    precondition(input.rank == 3 && height > 0 && width > 0, "resize takes (H, W, C) to a positive size")
    let (inH, inW, c) = (input.shape[0], input.shape[1], input.shape[2])
    let rows = taps(input: inH, output: height, alignment: alignment)
    let columns = TapTable(taps(input: inW, output: width, alignment: alignment))
    var output = Tensor.uninitialized(shape: [height, width, c])
    let bands = Parallel.ranges(height, parts: threads)
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        let source = src.baseAddress!, target = dst.baseAddress!
        Parallel.run(bands.count) { band in
          // One vertically interpolated input row, reused for the whole output row.
          let blended = UnsafeMutablePointer<Float>.allocate(capacity: inW * c)
          defer { blended.deallocate() }
          for y in bands[band] {
            let tap = rows[y]
            let row = tap.blend(source + tap.low * inW * c, source + tap.high * inW * c, into: blended, count: inW * c)
            columns.blend(0..<width, into: target + y * width * c, pixelStride: c, row: row, first: 0, channels: c)
          }
        }
      }
    }
    return output
  }
}
