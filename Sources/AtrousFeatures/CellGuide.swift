import AtrousCore

/// The guide's colour at each cell of a tile's map, (mh, mw, G), for the
/// guided upsamplings: the image pixel nearest the cell's centre (joint
/// bilateral, as Kopf et al. sample it), or the mean over the pixels
/// nearer the cell's centre than any other's (the guided filter's
/// subsampled guide).
enum CellGuide {
  enum Sampling { case nearestPixel, cellMean }

  /// - Parameters:
  ///   - origin: the whole-image map index of the map's first row and column.
  ///   - guide: the tile crop's colours, (h, w, G), whose first pixel is
  ///     image pixel `cropOrigin`.
  static func colours(_ sampling: Sampling, mapHeight mh: Int, mapWidth mw: Int, origin: (row: Int, column: Int),
                      layer: HypercolumnLayer, imageHeight: Int, imageWidth: Int, guide: Tensor,
                      cropOrigin: (row: Int, column: Int), alignment: BilinearResize.Alignment) -> Tensor {
    let (h, w, g) = (guide.shape[0], guide.shape[1], guide.shape[2])
    // Crop-local pixel range of cell q along an axis.
    func span(_ q: Int, cells: Int, pixels: Int, crop: Int, size: Int) -> Range<Int> {
      let centre = BilinearResize.target(q, input: cells, output: pixels, alignment: alignment)
      let nearest = min(max(Int(centre.rounded()), 0), pixels - 1, crop + size - 1)
      guard sampling == .cellMean else {
        let p = max(0, nearest - crop)
        return p..<(p + 1)
      }
      let half = alignment == .alignCorners && cells > 1
        ? Double(pixels - 1) / Double(cells - 1) / 2 : Double(pixels) / Double(cells) / 2
      var low = max(Int((centre - half).rounded(.up)), crop), high = min(Int((centre + half).rounded(.up)), crop + size, pixels)
      if low >= high {
        low = max(nearest, crop)
        high = low + 1
      }
      return (low - crop)..<(high - crop)
    }
    let rows = (0..<mh).map { span(origin.row + $0, cells: layer.mapHeight, pixels: imageHeight, crop: cropOrigin.row, size: h) }
    let columns = (0..<mw).map {
      span(origin.column + $0, cells: layer.mapWidth, pixels: imageWidth, crop: cropOrigin.column, size: w)
    }
    var out = Tensor(shape: [mh, mw, g])  // (mh, mw, G)
    guide.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for i in 0..<mh {
          for j in 0..<mw {
            let o = dst.baseAddress! + (i * mw + j) * g
            for y in rows[i] {
              for x in columns[j] {
                let p = src.baseAddress! + (y * w + x) * g
                for k in 0..<g { o[k] += p[k] }
              }
            }
            let count = rows[i].count * columns[j].count
            if count > 1 {
              let scale = 1 / Float(count)
              for k in 0..<g { o[k] *= scale }
            }
          }
        }
      }
    }
    return out
  }
}
