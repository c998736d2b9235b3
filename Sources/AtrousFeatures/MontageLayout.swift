/// Where each channel of a layer goes in its montage: a grid of near-square
/// shape, channel k at column k % columns and row k / columns, cells `gap`
/// pixels apart. Cells are the map enlarged by a whole factor (nearest
/// neighbour) to at least `minimumCell` pixels on its longer side, then
/// shrunk (nearest neighbour, keeping the aspect) when the montage would be
/// wider or taller than `maxSide`.
public struct MontageLayout: Sendable, Equatable {
  public let columns: Int, rows: Int
  /// A cell's size in montage pixels.
  public let cellWidth: Int, cellHeight: Int
  public let gap: Int

  /// The longest side a montage gets by default, in pixels.
  public static let defaultMaxSide = 4096

  public init(mapHeight: Int, mapWidth: Int, channels: Int, minimumCell: Int = 64, maxSide: Int = defaultMaxSide,
              gap: Int = 2) {
    columns = max(1, Int(Double(channels).squareRoot().rounded(.up)))
    rows = max(1, (channels + columns - 1) / columns)
    self.gap = gap
    let zoom = max(1, (minimumCell + max(mapHeight, mapWidth) - 1) / max(mapHeight, mapWidth, 1))
    var (w, h) = (mapWidth * zoom, mapHeight * zoom)
    let room = (width: maxSide - (columns - 1) * gap, height: maxSide - (rows - 1) * gap)
    if columns * w > room.width || rows * h > room.height {
      let shrink = min(Double(max(room.width, columns)) / Double(columns * w), Double(max(room.height, rows)) / Double(rows * h))
      (w, h) = (max(1, Int(Double(w) * shrink)), max(1, Int(Double(h) * shrink)))
    }
    (cellWidth, cellHeight) = (w, h)
  }

  public var width: Int { columns * cellWidth + (columns - 1) * gap }
  public var height: Int { rows * cellHeight + (rows - 1) * gap }

  /// The top-left pixel of `channel`'s cell.
  public func origin(of channel: Int) -> (x: Int, y: Int) {
    (channel % columns * (cellWidth + gap), channel / columns * (cellHeight + gap))
  }

  /// The channel and the position inside its cell of montage pixel (x, y),
  /// or nil in a gap or past the last channel.
  func cell(at x: Int, _ y: Int, channels: Int) -> (channel: Int, x: Int, y: Int)? {
    let (column, inX) = x.quotientAndRemainder(dividingBy: cellWidth + gap)
    let (row, inY) = y.quotientAndRemainder(dividingBy: cellHeight + gap)
    let channel = row * columns + column
    guard inX < cellWidth, inY < cellHeight, channel < channels else { return nil }
    return (channel, inX, inY)
  }
}

/// Channel numbers drawn into montage cells: digits of a 3x5 pixel font,
/// white on a black box in the cell's top-left corner, doubled in cells
/// wide enough; none in cells too small to hold them.
struct CellLabel {
  /// Rows of each digit, 3 bits each (bit 2 the left column).
  private static let font: [[UInt8]] = [
    [7, 5, 5, 5, 7], [2, 6, 2, 2, 7], [7, 1, 7, 4, 7], [7, 1, 7, 1, 7], [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7], [7, 4, 7, 5, 7], [7, 1, 1, 1, 1], [7, 5, 7, 5, 7], [7, 5, 7, 1, 7],
  ]

  let digits: [Int]
  let scale: Int

  /// The label for `number` in a cell of the given size, or nil when it
  /// would cover more than half the cell's width or a third of its height.
  init?(_ number: Int, cellWidth: Int, cellHeight: Int) {
    digits = String(number).map { Int(String($0))! }
    scale = cellWidth >= 96 ? 2 : 1
    let (w, h) = (digits.count * 4 * scale + scale, 7 * scale)
    guard w * 2 <= cellWidth, h * 3 <= cellHeight else { return nil }
  }

  /// 255 for a text pixel, 0 for the box around it, nil outside, at (x, y)
  /// from the cell's corner.
  func level(x: Int, y: Int) -> UInt8? {
    let (bx, by) = (x / scale, y / scale)
    guard bx < digits.count * 4 + 1, by < 7 else { return nil }
    let (digit, column) = (bx - 1).quotientAndRemainder(dividingBy: 4)
    guard bx >= 1, by >= 1, by <= 5, column < 3, digit < digits.count else { return 0 }
    return Self.font[digits[digit]][by - 1] >> (2 - column) & 1 == 1 ? 255 : 0
  }
}
