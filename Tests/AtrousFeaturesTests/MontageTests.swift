import AtrousCore
@testable import AtrousFeatures
import AtrousIO
import Testing

/// Montages: the layout's size cap, cells equal to the channel pictures,
/// numbers in the cells, and bars for 1x1 maps.
@Suite struct MontageTests {
  /// A (H, W, C) map whose channel k holds k + (y * W + x) / (H * W).
  static func map(_ h: Int, _ w: Int, _ c: Int) -> Tensor {
    Tensor(shape: [h, w, c], values: (0..<(h * w * c)).map { i in Float(i % c) + Float(i / c) / Float(h * w) })
  }

  @Test func largeLayersStayWithinTheCap() {
    // 64 channels of 768x1024 would make an 8206x6158 montage.
    let layout = MontageLayout(mapHeight: 768, mapWidth: 1024, channels: 64)
    #expect(layout.columns == 8 && layout.rows == 8)
    #expect(layout.width <= 4096 && layout.height <= 4096 && layout.width > 4000)
    #expect(abs(Double(layout.cellWidth) / Double(layout.cellHeight) - 1024.0 / 768.0) < 0.01)
    let small = MontageLayout(mapHeight: 7, mapWidth: 7, channels: 10, maxSide: 100)
    #expect(small.columns == 4 && small.rows == 3 && small.width <= 100)
    // Small maps are enlarged by a whole factor to 64 pixels or more.
    let zoomed = MontageLayout(mapHeight: 12, mapWidth: 15, channels: 16)
    #expect(zoomed.cellWidth == 75 && zoomed.cellHeight == 60 && zoomed.width == 4 * 75 + 3 * 2)
    #expect(zoomed.origin(of: 5) == (x: 77, y: 62))
  }

  /// Outside the number in its corner, each cell is the channel's own
  /// picture (scaled by the layout); the number's pixels spell it.
  @Test func cellsAreTheChannelsWithTheirNumbers() {
    var renderer = FeatureMapRenderer()
    renderer.colormap = .viridis
    let m = Self.map(50, 40, 12)
    let ranges = renderer.ranges(m)
    for layout in [MontageLayout(mapHeight: 50, mapWidth: 40, channels: 12, minimumCell: 100),
                   MontageLayout(mapHeight: 50, mapWidth: 40, channels: 12, minimumCell: 100, maxSide: 150)] {
      let montage = renderer.montage(m, ranges: ranges, layout: layout)
      #expect(montage.width == layout.width && montage.height == layout.height)
      for channel in [0, 7, 11] {
        let own = renderer.render(m, channel: channel, range: ranges[channel]), (ox, oy) = layout.origin(of: channel)
        let label = CellLabel(channel, cellWidth: layout.cellWidth, cellHeight: layout.cellHeight)
        for y in stride(from: 0, to: layout.cellHeight, by: 3) {
          for x in stride(from: 0, to: layout.cellWidth, by: 3) where label?.level(x: x, y: y) == nil {
            let (sx, sy) = (x * 40 / layout.cellWidth, y * 50 / layout.cellHeight)
            #expect(montage[ox + x, oy + y, 1] == own[sx, sy, 1], "channel \(channel) (\(x), \(y))")
          }
        }
      }
      // "7" in the 3x5 font: a full top row, then the right column.
      let (ox, oy) = layout.origin(of: 7), scale = layout.cellWidth >= 96 ? 2 : 1
      #expect((0..<3).allSatisfy { montage[ox + (1 + $0) * scale, oy + scale, 0] == 255 })
      #expect(montage[ox + scale, oy + 2 * scale, 0] == 0 && montage[ox + 3 * scale, oy + 2 * scale, 0] == 255)
    }
  }

  /// 1x1 maps: a bar per channel, as tall as its value within the layer.
  @Test func onePixelMapsAreBars() {
    let values: [Float] = [0, 1, 0.5, 0.25]
    let m = Tensor(shape: [1, 1, 4], values: values)
    let renderer = FeatureMapRenderer()
    let bars = renderer.bars(m, ranges: renderer.ranges(m))
    let width = FeatureMapRenderer.barWidth(channels: 4)
    #expect(bars.width == 4 * width && bars.height == 256)
    for (k, v) in values.enumerated() {
      let lit = (0..<256).filter { bars[k * width, $0, 0] > 0 }.count
      #expect(abs(lit - max(1, Int(v * 256))) <= 1, "channel \(k): \(lit)")
    }
  }
}
