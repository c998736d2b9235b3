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

  /// Every channel in a grid (`layout`), each cell numbered with its
  /// channel where it has room, on a dark ground.
  public func montage(_ map: Tensor, ranges: [ValueRange], layout: MontageLayout) -> Image {
    let (h, w, c) = (map.shape[0], map.shape[1], map.shape[2])
    let labels = (0..<c).map { CellLabel($0, cellWidth: layout.cellWidth, cellHeight: layout.cellHeight) }
    return map.withUnsafeBufferPointer { m in
      shaded(width: layout.width, height: layout.height) { x, y in
        guard let cell = layout.cell(at: x, y, channels: c) else { return .ground }
        if let level = labels[cell.channel]?.level(x: cell.x, y: cell.y) { return .level(level) }
        return .value(ranges[cell.channel].unit(m[((cell.y * h / layout.cellHeight) * w + cell.x * w / layout.cellWidth) * c + cell.channel]))
      }
    }
  }

  /// Pixels across each bar of `bars` for `channels` bars: 16 for few,
  /// down to 1 so that the chart stays within 2048 pixels where it can.
  public static func barWidth(channels: Int) -> Int { max(1, min(16, 2048 / max(channels, 1))) }

  /// A layer of 1x1 maps (after global pooling) as a bar chart: one bar
  /// per channel, left to right, its height the value within the union of
  /// `ranges` (at least a pixel), coloured by the colormap from a fifth of
  /// the way up (so that the lowest bars do not vanish into the black
  /// ground); 256 pixels tall.
  public func bars(_ map: Tensor, ranges: [ValueRange]) -> Image {
    let c = map.shape[2], barWidth = Self.barWidth(channels: c), height = 256
    let range = ranges.dropFirst().reduce(ranges[0]) { $0.union($1) }
    return map.withUnsafeBufferPointer { m in
      picture(width: c * barWidth, height: height) { x, y in
        let v = range.unit(m[x / barWidth])
        return Float(height - y) <= max(1, v * Float(height)) ? 0.2 + 0.8 * v : nil
      }
    }
  }

  /// What one pixel of a picture shows.
  enum Shade {
    /// The background (black).
    case ground
    /// The colormap at a value in 0...1.
    case value(Float)
    /// This level in every channel, whatever the colormap (labels).
    case level(UInt8)
  }

  /// An image whose pixel (x, y) is the colormap at `value(x, y)`, or the
  /// background (black) where it is nil.
  func picture(width: Int, height: Int, _ value: (Int, Int) -> Float?) -> Image {
    shaded(width: width, height: height) { x, y in value(x, y).map(Shade.value) ?? .ground }
  }

  /// An image whose pixel (x, y) shows `shade(x, y)`.
  func shaded(width: Int, height: Int, _ shade: (Int, Int) -> Shade) -> Image {
    if colormap == .gray && bitDepth == .sixteen {
      var samples = [UInt16](repeating: 0, count: width * height)
      for y in 0..<height {
        for x in 0..<width {
          switch shade(x, y) {
          case .ground: break
          case .value(let v): samples[y * width + x] = UInt16((v * 65535).rounded())
          case .level(let level): samples[y * width + x] = UInt16(level) * 257
          }
        }
      }
      return Image(width: width, height: height, format: .gray, samples: samples)
    }
    let table = colormap.table, channels = colormap.channels
    var samples = [UInt8](repeating: 0, count: width * height * channels)
    for y in 0..<height {
      for x in 0..<width {
        let pixel = (y * width + x) * channels
        switch shade(x, y) {
        case .ground: break
        case .value(let v):
          let level = Int((v * 255).rounded()) * 3
          for k in 0..<channels { samples[pixel + k] = table[level + k] }
        case .level(let level):
          for k in 0..<channels { samples[pixel + k] = level }
        }
      }
    }
    return Image(width: width, height: height, format: channels == 1 ? .gray : .rgb, samples: samples)
  }
}
