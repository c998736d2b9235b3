import AtrousCore
@testable import AtrousFeatures
import AtrousIO
import AtrousNN
import AtrousONNX
import AtrousTestSupport
import Foundation
import Testing

/// Joint bilateral and guided upsampling against plain double-precision
/// implementations of their definitions (Kopf et al. 2007; He et al. 2010
/// in He and Sun's fast form), and the tiled and sampled forms against the
/// whole-image export.
@Suite struct GuidedUpsamplingTests {
  static let layers = ["block1", "block3", "block2"]
  static let jbu = HypercolumnUpsampling.jointBilateral(spatialSigma: 1, rangeSigma: 0.1)
  static let guided = HypercolumnUpsampling.guided(radius: 4, epsilon: 1e-3)

  static func graph() throws -> Graph { try ONNXModel.load(Fixtures.path(HypercolumnTests.folder + "/net.onnx")) }

  static func options(_ upsampling: HypercolumnUpsampling) -> HypercolumnOptions {
    var options = HypercolumnOptions()
    options.upsampling = upsampling
    return options
  }

  /// The model's maps for the whole input, (h, w, c) each, as doubles.
  static func maps(_ graph: Graph, input: NDArray, layers: [String] = layers) throws -> [Grid] {
    let results = try Executor(graph: graph).run([graph.inputs[0].name: input], outputs: layers)
    return layers.map { name in
      let value = results[name]!.toChannelsLast().storage!
      return Grid(height: value.shape[1], width: value.shape[2], channels: value.shape[3], values: value.scalars.map(Double.init))
    }
  }

  /// An (h, w, c) array of doubles.
  struct Grid {
    var height: Int, width: Int, channels: Int
    var values: [Double]
    subscript(y: Int, x: Int) -> ArraySlice<Double> {
      values[((y * width + x) * channels)..<((y * width + x + 1) * channels)]
    }
  }

  /// Half-pixel source coordinate of output i, clamped.
  static func source(_ i: Int, cells: Int, pixels: Int) -> Double {
    min(max((Double(i) + 0.5) * Double(cells) / Double(pixels) - 0.5, 0), Double(cells - 1))
  }

  /// Image coordinate of cell q's centre.
  static func centre(_ q: Int, cells: Int, pixels: Int) -> Double { (Double(q) + 0.5) * Double(pixels) / Double(cells) - 0.5 }

  /// Joint bilateral upsampling of one map, straight from its definition.
  static func jointBilateral(_ map: Grid, guide: Grid, sigma: Double, range: Double) -> Grid {
    let (h, w) = (guide.height, guide.width)
    var out = Grid(height: h, width: w, channels: map.channels, values: [])
    func window(_ x: Double, cells: Int) -> [Int] {
      (0..<cells).filter { q in abs(Double(q) - x) <= 2 * sigma || q == Int(x.rounded(.down)) || q == Int(x.rounded(.up)) }
    }
    func pixel(_ q: Int, cells: Int, pixels: Int) -> Int { min(max(Int(centre(q, cells: cells, pixels: pixels).rounded()), 0), pixels - 1) }
    for y in 0..<h {
      let sy = source(y, cells: map.height, pixels: h)
      for x in 0..<w {
        let sx = source(x, cells: map.width, pixels: w)
        let colour = Array(guide[y, x])
        var sum = [Double](repeating: 0, count: map.channels), total = 0.0
        for qy in window(sy, cells: map.height) {
          for qx in window(sx, cells: map.width) {
            let other = Array(guide[pixel(qy, cells: map.height, pixels: h), pixel(qx, cells: map.width, pixels: w)])
            let d2 = zip(colour, other).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
            let spatial = exp(-((Double(qy) - sy) * (Double(qy) - sy) + (Double(qx) - sx) * (Double(qx) - sx)) / (2 * sigma * sigma))
            let weight = spatial * exp(-d2 / (2 * range * range))
            total += weight
            for (k, v) in map[qy, qx].enumerated() { sum[k] += weight * v }
          }
        }
        out.values += sum.map { $0 / total }
      }
    }
    return out
  }

  /// Means over boxes of (2r + 1) cells clipped at the border.
  static func boxMean(_ grid: Grid, radii: (Int, Int)) -> Grid {
    var out = grid
    for y in 0..<grid.height {
      for x in 0..<grid.width {
        var sum = [Double](repeating: 0, count: grid.channels), n = 0.0
        for yy in max(0, y - radii.0)...min(grid.height - 1, y + radii.0) {
          for xx in max(0, x - radii.1)...min(grid.width - 1, x + radii.1) {
            for (k, v) in grid[yy, xx].enumerated() { sum[k] += v }
            n += 1
          }
        }
        for k in 0..<grid.channels { out.values[(y * grid.width + x) * grid.channels + k] = sum[k] / n }
      }
    }
    return out
  }

  /// Solves the small dense system a x = b by Gaussian elimination.
  static func solve(_ a: [[Double]], _ b: [Double]) -> [Double] {
    var m = a, v = b
    let n = b.count
    for i in 0..<n {
      for j in (i + 1)..<max(i + 1, n) {
        let f = m[j][i] / m[i][i]
        for k in i..<n { m[j][k] -= f * m[i][k] }
        v[j] -= f * v[i]
      }
    }
    var x = [Double](repeating: 0, count: n)
    for i in stride(from: n - 1, through: 0, by: -1) {
      x[i] = (v[i] - ((i + 1)..<max(i + 1, n)).map { m[i][$0] * x[$0] }.reduce(0, +)) / m[i][i]
    }
    return x
  }

  /// Bilinear (half-pixel) resize of a grid to h x w.
  static func bilinear(_ grid: Grid, height h: Int, width w: Int) -> Grid {
    var out = Grid(height: h, width: w, channels: grid.channels, values: [])
    for y in 0..<h {
      let sy = source(y, cells: grid.height, pixels: h), y0 = Int(sy), y1 = min(y0 + 1, grid.height - 1), fy = sy - Double(y0)
      for x in 0..<w {
        let sx = source(x, cells: grid.width, pixels: w), x0 = Int(sx), x1 = min(x0 + 1, grid.width - 1), fx = sx - Double(x0)
        for k in 0..<grid.channels {
          let top = grid[y0, x0][grid[y0, x0].startIndex + k] * (1 - fx) + grid[y0, x1][grid[y0, x1].startIndex + k] * fx
          let bottom = grid[y1, x0][grid[y1, x0].startIndex + k] * (1 - fx) + grid[y1, x1][grid[y1, x1].startIndex + k] * fx
          out.values.append(top * (1 - fy) + bottom * fy)
        }
      }
    }
    return out
  }

  /// The fast guided filter of one map, from its definition.
  static func guidedFilter(_ map: Grid, guide: Grid, radius: Double, epsilon: Double) -> Grid {
    let (h, w, g, c) = (guide.height, guide.width, guide.channels, map.channels)
    // The guide averaged over each cell's pixels.
    var cells = Grid(height: map.height, width: map.width, channels: g, values: [])
    func pixels(_ q: Int, cells n: Int, pixels size: Int) -> [Int] {
      let middle = centre(q, cells: n, pixels: size), half = Double(size) / Double(n) / 2
      return (0..<size).filter { Double($0) >= middle - half && Double($0) < middle + half }
    }
    for qy in 0..<map.height {
      for qx in 0..<map.width {
        let ys = pixels(qy, cells: map.height, pixels: h), xs = pixels(qx, cells: map.width, pixels: w)
        var sum = [Double](repeating: 0, count: g)
        for y in ys { for x in xs { for (k, v) in guide[y, x].enumerated() { sum[k] += v } } }
        cells.values += sum.map { $0 / Double(ys.count * xs.count) }
      }
    }
    let radii = (max(1, Int((radius / (Double(h) / Double(map.height))).rounded())),
                 max(1, Int((radius / (Double(w) / Double(map.width))).rounded())))
    // Statistics: I, I I^T, p, I p^T, box-averaged.
    var stats = Grid(height: map.height, width: map.width, channels: g + g * g + c + g * c, values: [])
    for q in 0..<(map.height * map.width) {
      let colour = Array(cells.values[(q * g)..<((q + 1) * g)]), p = Array(map.values[(q * c)..<((q + 1) * c)])
      stats.values += colour
      for i in 0..<g { for j in 0..<g { stats.values.append(colour[i] * colour[j]) } }
      stats.values += p
      for i in 0..<g { stats.values += p.map { colour[i] * $0 } }
    }
    let means = boxMean(stats, radii: radii)
    var coefficients = Grid(height: map.height, width: map.width, channels: (g + 1) * c, values: [])
    for q in 0..<(map.height * map.width) {
      let s = Array(means.values[(q * stats.channels)..<((q + 1) * stats.channels)])
      let meanI = Array(s[0..<g]), meanP = Array(s[(g + g * g)..<(g + g * g + c)])
      let sigma = (0..<g).map { i in (0..<g).map { j in s[g + i * g + j] - meanI[i] * meanI[j] + (i == j ? epsilon : 0) } }
      var a = [[Double]](repeating: [], count: g), b = [Double]()
      for channel in 0..<c {
        let cov = (0..<g).map { i in s[g + g * g + c + i * c + channel] - meanI[i] * meanP[channel] }
        let x = solve(sigma, cov)
        for i in 0..<g { a[i].append(x[i]) }
        b.append(meanP[channel] - zip(x, meanI).map { $0 * $1 }.reduce(0, +))
      }
      coefficients.values += a.flatMap { $0 } + b
    }
    let smooth = bilinear(boxMean(coefficients, radii: radii), height: h, width: w)
    var out = Grid(height: h, width: w, channels: c, values: [])
    for y in 0..<h {
      for x in 0..<w {
        let k = Array(smooth[y, x]), colour = Array(guide[y, x])
        out.values += (0..<c).map { channel in k[g * c + channel] + (0..<g).map { k[$0 * c + channel] * colour[$0] }.reduce(0, +) }
      }
    }
    return out
  }

  /// The reference's hypercolumns: each layer upsampled by `method`, concatenated.
  static func reference(_ upsampling: HypercolumnUpsampling, graph: Graph, input: NDArray, layers: [String] = layers) throws
    -> [Double]
  {
    let image = input.toChannelsLast().storage!
    let guide = Grid(height: image.shape[1], width: image.shape[2], channels: image.shape[3], values: image.scalars.map(Double.init))
    let upsampled = try maps(graph, input: input, layers: layers).map { map -> Grid in
      switch upsampling {
      case .jointBilateral(let sigma, let range): return jointBilateral(map, guide: guide, sigma: sigma, range: range)
      case .guided(let radius, let epsilon): return guidedFilter(map, guide: guide, radius: radius, epsilon: epsilon)
      case .bilinear: return bilinear(map, height: guide.height, width: guide.width)
      }
    }
    var out: [Double] = []
    for p in 0..<(guide.height * guide.width) {
      for grid in upsampled { out += grid.values[(p * grid.channels)..<((p + 1) * grid.channels)] }
    }
    return out
  }

  @Test(arguments: [jbu, guided, HypercolumnUpsampling.bilinear])
  func exportMatchesTheDefinition(_ upsampling: HypercolumnUpsampling) throws {
    let graph = try Self.graph(), input = try HypercolumnTests.input()
    let expected = try Self.reference(upsampling, graph: graph, input: input)
    let scale = expected.map(abs).max()!
    // Each instruction set's kernels (box means, multiply-adds).
    for isa in InstructionSet.available {
      let ours = try InstructionSet.with(isa) {
        try HypercolumnTests.export(graph, layers: Self.layers, input: input, options: Self.options(upsampling))
      }
      let values = ours.tensor().scalars
      #expect(values.count == expected.count)
      let worst = zip(values, expected).map { abs(Double($0) - $1) }.max()!
      #expect(worst <= 1e-5 * scale, "\(upsampling), \(isa): worst difference \(worst) of values up to \(scale)")
    }
  }

  @Test(arguments: [jbu, guided])
  func tilesAndSamplesEqualTheWholeImage(_ upsampling: HypercolumnUpsampling) throws {
    let graph = try Self.graph(), input = try HypercolumnTests.input()
    let whole = try HypercolumnTests.export(graph, layers: Self.layers, input: input, options: Self.options(upsampling)).tensor()
    var options = Self.options(upsampling)
    options.tile = 12
    let extractor = try HypercolumnExtractor(graph: graph, layers: Self.layers, options: options)
    let plan = try extractor.plan(height: 47, width: 61, channels: 3)
    #expect(plan.tiles.count > 4)
    let tiled = try HypercolumnTests.export(graph, layers: Self.layers, input: input, options: options).tensor()
    #expect(closeness(tiled.scalars, whole.scalars, rtol: 0, atol: 1e-5).isClose)
    let pixels = [(x: 0, y: 0), (x: 60, y: 46), (x: 17, y: 33), (x: 60, y: 0), (x: 31, y: 12)]
    let sampled = try extractor.sample(input, plan: plan, pixels: pixels)
    let c = plan.channels
    for (n, p) in pixels.enumerated() {
      let row = Array(whole.scalars[((p.y * 61 + p.x) * c)..<((p.y * 61 + p.x + 1) * c)])
      #expect(closeness(Array(sampled.scalars[(n * c)..<((n + 1) * c)]), row, rtol: 0, atol: 1e-5).isClose, "pixel \(p)")
    }
  }

  /// A gray guide (one channel, as the built-in model takes) and maps of
  /// strides 2 and 3 whose sizes do not divide the image's (31x40), with
  /// other settings: the same definitions.
  @Test(arguments: [HypercolumnUpsampling.jointBilateral(spatialSigma: 2, rangeSigma: 0.05),
                    HypercolumnUpsampling.guided(radius: 3, epsilon: 1e-2)])
  func grayGuideAndUnevenStridesMatchTheDefinition(_ upsampling: HypercolumnUpsampling) throws {
    var net = NetworkBuilder(channels: 1, seed: 12)
    let half = net.relu(net.conv2D(net.input, filters: 5, kernel: 3, stride: 2, padding: .same), name: "half")
    let third = net.averagePool(net.conv2D(net.input, filters: 4, kernel: 3, padding: .same), size: 3, name: "third")
    let graph = net.graph(outputs: [half, third])
    let gray = try ImagePreprocessing.preset("default")!.tensor(ImageFile.read(Fixtures.path(HypercolumnTests.folder + "/input.png")))
    let input = NDArray(channelsLast: HypercolumnInput.crop(gray.toChannelsLast().storage!, rows: 0..<31, columns: 0..<40))
    let expected = try Self.reference(upsampling, graph: graph, input: input, layers: [half, third])
    let ours = try HypercolumnTests.export(graph, layers: [half, third], input: input, options: Self.options(upsampling))
    let scale = expected.map(abs).max()!
    let worst = zip(ours.tensor().scalars, expected).map { abs(Double($0) - $1) }.max()!
    #expect(ours.shape == [31, 40, 9] && worst <= 1e-5 * scale, "\(upsampling): worst \(worst) of \(scale)")
  }

  /// Corners aligned: tiles still equal the whole image.
  @Test(arguments: [jbu, guided])
  func alignedCornersTileAsWhole(_ upsampling: HypercolumnUpsampling) throws {
    let graph = try Self.graph(), input = try HypercolumnTests.input()
    var options = Self.options(upsampling)
    options.alignment = .alignCorners
    let whole = try HypercolumnTests.export(graph, layers: Self.layers, input: input, options: options).tensor()
    options.tile = 16
    let tiled = try HypercolumnTests.export(graph, layers: Self.layers, input: input, options: options).tensor()
    #expect(closeness(tiled.scalars, whole.scalars, rtol: 0, atol: 1e-5).isClose)
  }

  /// A bright square on a dark ground, and as the layer the image
  /// average-pooled by 8: bilinear smears the square's edge over the
  /// pooled cells' width; both guided methods keep the pixels near the
  /// edge closer to their own side's value. (Joint bilateral can only
  /// choose among the cells' values, and cells across the edge hold
  /// blends: it gains less.)
  @Test func guidedMethodsKeepEdgesThatBilinearSmears() throws {
    var net = NetworkBuilder(channels: 3)
    let pooled = net.averagePool(net.input, size: 8, name: "pooled")
    let graph = net.graph(outputs: [pooled])
    let (h, w) = (64, 64)
    var values: [Float] = []
    for y in 0..<h { for x in 0..<w { values += Array(repeating: (19..<45).contains(y) && (21..<43).contains(x) ? 0.9 : 0.1, count: 3) } }
    let input = NDArray(channelsLast: Tensor(shape: [1, h, w, 3], values: values))
    func error(_ upsampling: HypercolumnUpsampling) throws -> Double {
      let out = try HypercolumnTests.export(graph, layers: [pooled], input: input, options: Self.options(upsampling)).tensor().scalars
      return zip(out, values).map { abs(Double($0 - $1)) }.reduce(0, +) / Double(values.count)
    }
    let (bilinear, jbu, guided) = (try error(.bilinear), try error(Self.jbu), try error(Self.guided))
    #expect(jbu < 0.8 * bilinear, "joint bilateral \(jbu) against bilinear \(bilinear)")
    #expect(guided < bilinear / 2, "guided \(guided) against bilinear \(bilinear)")
  }

  @Test func guideColoursUndoThePreprocessing() throws {
    var preparation = ImagePreprocessing()
    preparation.mean = [0.485, 0.456, 0.406]
    preparation.std = [0.229, 0.224, 0.225]
    let colours = preparation.guideColours
    let image = try ImageFile.read(Fixtures.path(HypercolumnTests.folder + "/input.png"))
    let raw = try ImagePreprocessing().tensor(image).toChannelsLast().storage!.scalars
    let prepared = try preparation.tensor(image).toChannelsLast().storage!.scalars
    let undone = prepared.enumerated().map { i, v in v * colours.scale[i % 3] + colours.offset[i % 3] }
    #expect(closeness(undone, raw, rtol: 0, atol: 1e-6).isClose)
  }
}
