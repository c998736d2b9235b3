import AtrousCore
import AtrousIO

/// Pictures of a layer's feature maps: one image per channel, or a montage
/// of every channel in a grid.
public struct FeatureMapRenderer: Sendable {
  public var colormap = Colormap.gray
  /// 8 or 16 bits per sample (16 only for gray; colour maps are 8-bit).
  public var bitDepth = Image.BitDepth.eight
  /// One value range for all channels of a layer instead of one per channel.
  public var sharedScale = false

  public init() {}

  /// Value ranges of each channel of an (H, W, C) map, or the shared one
  /// repeated, as `sharedScale` says.
  public func ranges(_ map: Tensor) -> [ValueRange] {
    let (h, w, c) = (map.shape[0], map.shape[1], map.shape[2])
    var ranges = map.withUnsafeBufferPointer { m in
      (0..<c).map { ValueRange.of(m.baseAddress! + $0, count: h * w, stride: c) }
    }
    if sharedScale, let first = ranges.first {
      let all = ranges.dropFirst().reduce(first) { $0.union($1) }
      ranges = [ValueRange](repeating: all, count: c)
    }
    return ranges
  }

  /// Channel `channel` of an (H, W, C) map as an image.
  public func render(_ map: Tensor, channel: Int, range: ValueRange) -> Image {
    let (h, w, c) = (map.shape[0], map.shape[1], map.shape[2])
    return map.withUnsafeBufferPointer { m in
      picture(width: w, height: h) { x, y in range.unit(m[(y * w + x) * c + channel]) }
    }
  }

  /// Every channel in a grid of near-square shape, each cell enlarged by
  /// an integer factor (nearest neighbour) to at least `minimumCell`
  /// pixels on its longer side, cells `gap` pixels apart on a dark ground.
  public func montage(_ map: Tensor, ranges: [ValueRange], minimumCell: Int = 64, gap: Int = 2) -> Image {
    let (h, w, c) = (map.shape[0], map.shape[1], map.shape[2])
    let columns = Int(Double(c).squareRoot().rounded(.up)), rows = (c + columns - 1) / columns
    let zoom = max(1, (minimumCell + max(h, w) - 1) / max(h, w))
    let (cellH, cellW) = (h * zoom, w * zoom)
    let width = columns * cellW + (columns - 1) * gap, height = rows * cellH + (rows - 1) * gap
    return map.withUnsafeBufferPointer { m in
      picture(width: width, height: height) { x, y in
        let (col, inX) = x.quotientAndRemainder(dividingBy: cellW + gap)
        let (row, inY) = y.quotientAndRemainder(dividingBy: cellH + gap)
        let channel = row * columns + col
        guard inX < cellW, inY < cellH, channel < c else { return nil }
        return ranges[channel].unit(m[((inY / zoom) * w + inX / zoom) * c + channel])
      }
    }
  }

  /// An image whose pixel (x, y) is the colormap at `value(x, y)`, or the
  /// background (black) where it is nil.
  func picture(width: Int, height: Int, _ value: (Int, Int) -> Float?) -> Image {
    if colormap == .gray && bitDepth == .sixteen {
      var samples = [UInt16](repeating: 0, count: width * height)
      for y in 0..<height {
        for x in 0..<width {
          if let v = value(x, y) { samples[y * width + x] = UInt16((v * 65535).rounded()) }
        }
      }
      return Image(width: width, height: height, format: .gray, samples: samples)
    }
    let table = colormap.table, channels = colormap.channels
    var samples = [UInt8](repeating: 0, count: width * height * channels)
    for y in 0..<height {
      for x in 0..<width {
        guard let v = value(x, y) else { continue }
        let level = Int((v * 255).rounded()) * 3
        for k in 0..<channels { samples[(y * width + x) * channels + k] = table[level + k] }
      }
    }
    return Image(width: width, height: height, format: channels == 1 ? .gray : .rgb, samples: samples)
  }
}
