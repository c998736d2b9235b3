import AtrousCore
import AtrousNN

/// What goes wrong while planning or making hypercolumns.
public enum HypercolumnError: Error, Equatable, CustomStringConvertible {
  /// A requested layer no node produces.
  case unknownLayer(String, known: [String])
  /// The model has no input to feed an image to, or more than one.
  case inputCount(Int)
  /// A layer is not a 4-D (N, C, H, W) map.
  case notAMap(layer: String, shape: [Int])
  /// A tile size was asked of a model whose features depend on the whole
  /// image (global pooling, fully connected layers).
  case notTileable(op: String)
  /// A tile size was asked of a model whose input size is fixed.
  case fixedInputSize(height: Int, width: Int)
  /// A pixel to sample lies outside the image.
  case pixelOutside(x: Int, y: Int, width: Int, height: Int)

  public var description: String {
    switch self {
    case .unknownLayer(let name, let known):
      let list = known.count > 12 ? known.prefix(12).joined(separator: ", ") + ", ..." : known.joined(separator: ", ")
      return "no layer named '\(name)'\(Spelling.suggestion(for: name, among: known)) (layers: \(list))"
    case .inputCount(let count): return "the model has \(count) inputs; hypercolumns need exactly one image input"
    case .notAMap(let layer, let shape): return "layer '\(layer)' has shape \(shape), not a feature map (N, C, H, W)"
    case .notTileable(let op): return "the model cannot run in tiles: its \(op) sees the whole image"
    case .fixedInputSize(let height, let width):
      return "the model cannot run in tiles: its input is fixed at \(width)x\(height)"
    case .pixelOutside(let x, let y, let width, let height):
      return "pixel (\(x), \(y)) is outside the \(width)x\(height) image"
    }
  }
}

/// Options for hypercolumn export.
public struct HypercolumnOptions: Sendable {
  /// Element order of the output: (H, W, C) or (C, H, W).
  public enum Layout: String, Sendable, CaseIterable { case hwc, chw }
  /// Element type of the output.
  public enum DType: String, Sendable, CaseIterable { case f32, f16 }

  public var alignment: BilinearResize.Alignment = .halfPixel
  /// How maps are brought to the image's size.
  public var upsampling = HypercolumnUpsampling.bilinear
  /// The guide's colours from the network input (for `jointBilateral`
  /// and `guided`): the preprocessing undone, so that they run from 0 to 1.
  public var guideColours = GuideColours.identity
  public var layout = Layout.hwc
  public var dtype = DType.f32
  /// Tile side in input pixels (rounded up to the model's total stride);
  /// nil chooses it from `memoryBudget`, or runs the whole image at once
  /// when that fits.
  public var tile: Int?
  /// Bytes the model's activations may take at once, for the automatic tile.
  public var memoryBudget = 768 << 20
  public var threads = Parallel.coreCount

  public init() {}
}

/// One layer's part of the hypercolumn.
public struct HypercolumnLayer: Sendable {
  public var name: String
  /// The layer's map for the whole image: height, width, channels.
  public var mapHeight: Int, mapWidth: Int, channels: Int
  /// Where its channels sit in each hypercolumn.
  public var channelRange: Range<Int>
  public var receptiveField: ReceptiveField
}

/// A region of the output and the input crop the model runs on to make it.
public struct HypercolumnTile: Sendable, Equatable {
  public var rows: Range<Int>, columns: Range<Int>
  public var cropRows: Range<Int>, cropColumns: Range<Int>
}

/// How an image of a given size is cut into tiles, and what each layer
/// contributes.
///
/// A tile's crop reaches past it by each layer's receptive field plus one
/// feature for the bilinear blend, so the features it uses see only real
/// image (or the image's own border); crops start at multiples of the
/// model's total stride, and their sizes keep the image's remainder, so
/// every layer's grid lines up with the whole-image grid. The result
/// equals a whole-image run.
public struct HypercolumnPlan: Sendable {
  public var height: Int, width: Int, inputChannels: Int
  public var layers: [HypercolumnLayer]
  public var tiles: [HypercolumnTile]

  /// The model's work over the plan against one run on the whole image:
  /// the tiles' crop areas over the image's area (1 for one tile; large
  /// when tiles are small against the margins their crops add).
  public var cropOverhead: Double {
    Double(tiles.reduce(0) { $0 + $1.cropRows.count * $1.cropColumns.count }) / Double(max(height * width, 1))
  }
  /// Activation bytes per input pixel the model needs, from a trace.
  public var bytesPerPixel: Double
  /// The stride every crop origin is a multiple of.
  public var stride: Int
  public var channels: Int { layers.last?.channelRange.upperBound ?? 0 }

  init(executor: Executor, input: String, layerNames: [String], height: Int, width: Int, channels: Int,
       options: HypercolumnOptions) throws {
    self.height = height
    self.width = width
    self.inputChannels = channels
    let graph = executor.graph
    // Why the model must see the whole image at once, if it must.
    var blocking = Self.wholeImageOp(in: graph, feeding: layerNames).map { HypercolumnError.notTileable(op: $0) }
    let declared = graph.inputs.first { $0.name == input }?.shape ?? []
    let fixed = declared.count == 4 && (declared[2] ?? 0) > 0 && (declared[3] ?? 0) > 0
    if fixed { blocking = .fixedInputSize(height: declared[2]!, width: declared[3]!) }

    // A first trace gives the fields and strides (which do not depend on
    // the size); the second, of the bottom-right corner from a multiple of
    // the stride, gives the whole image's map sizes by adding the offset.
    let probe = fixed ? (height, width) : (min(height, 256), min(width, 256))
    let first = try NetworkSummary(graph: graph, inputShapes: [input: [1, channels, probe.0, probe.1]])
    var stride = 1
    let feeding = Set(Self.ancestors(in: graph, of: layerNames).compactMap(\.outputs.first))
    for layer in first.layers where feeding.contains(layer.name) {
      for j in layer.receptiveField.jump where j >= 1 && j.rounded() == j { stride = lcm(stride, Int(j)) }
    }
    self.stride = stride
    let fields = Dictionary(first.layers.map { ($0.name, $0.receptiveField) }, uniquingKeysWith: { a, _ in a })
    let reach = layerNames.map { name -> Int in
      guard let f = fields[name] else { return 0 }
      let jump = f.jump.max()!
      return Int((f.size.max()! / 2 + Double(2 + options.upsampling.reach(stride: jump)) * jump).rounded(.up))
    }.max() ?? 0
    func corner(_ n: Int) -> Int {
      let want = max(256, 4 * stride + 2 * reach)
      return n > want && !fixed ? (n - want) / stride * stride : 0
    }
    let origin = (corner(height), corner(width))
    let second = origin == (0, 0) && probe == (height, width)
      ? first : try NetworkSummary(graph: graph, inputShapes: [input: [1, channels, height - origin.0, width - origin.1]])
    let shapes = Dictionary(second.layers.map { ($0.name, $0.outputShape) }, uniquingKeysWith: { a, _ in a })
    let probeArea = Double((height - origin.0) * (width - origin.1))
    var perPixel = Double(second.peakActivationBytes) / probeArea

    var layers: [HypercolumnLayer] = []
    var next = 0
    for name in layerNames {
      let field = fields[name] ?? .input
      let shape = name == input ? [1, channels, height - origin.0, width - origin.1] : shapes[name] ?? []
      guard shape.count == 4, shape[0] == 1 else { throw HypercolumnError.notAMap(layer: name, shape: shape) }
      let mapHeight = shape[2] + Int((Double(origin.0) / field.jump[0]).rounded())
      let mapWidth = shape[3] + Int((Double(origin.1) / field.jump[1]).rounded())
      layers.append(HypercolumnLayer(name: name, mapHeight: mapHeight, mapWidth: mapWidth, channels: shape[1],
                                     channelRange: next..<(next + shape[1]), receptiveField: field))
      next += shape[1]
      // Asked-for maps stay alive to the end of a run; the guided filter
      // adds its statistics and coefficients per cell.
      let guide = channels, c = shape[1]
      let extra: Int
      switch options.upsampling {
      case .bilinear: extra = 0
      case .jointBilateral: extra = guide
      case .guided: extra = 2 * (guide + guide * (guide + 1) / 2 + c + guide * c) + (guide + 1) * c
      }
      perPixel += Double((c + extra) * 4) / (field.jump[0] * field.jump[1])
    }
    self.layers = layers
    self.bytesPerPixel = perPixel

    // Tile side: as asked, or the largest whose crop fits the budget.
    var side = max(height, width)
    if let asked = options.tile {
      if let blocking { throw blocking }
      side = (max(asked, 1) + stride - 1) / stride * stride
    } else if blocking == nil, perPixel * Double(height * width) > Double(options.memoryBudget) {
      let crop = (Double(options.memoryBudget) / perPixel).squareRoot()
      side = max(stride, (Int(crop) - 2 * reach) / stride * stride, 2 * reach / stride * stride)
    }
    // An automatic side is evened out over each axis: tiles of one size
    // reuse each other's buffers, and no thin last tile pays a whole
    // crop's margins for a few rows.
    func step(_ size: Int) -> Int {
      guard options.tile == nil, side < size else { return side }
      let count = (size + side - 1) / side
      return ((size + count - 1) / count + stride - 1) / stride * stride
    }
    let single = side >= max(height, width)
    let (rowStep, columnStep) = (step(height), step(width))
    var tiles: [HypercolumnTile] = []
    for y0 in Swift.stride(from: 0, to: height, by: rowStep) {
      for x0 in Swift.stride(from: 0, to: width, by: columnStep) {
        let rows = y0..<min(height, y0 + rowStep), columns = x0..<min(width, x0 + columnStep)
        tiles.append(HypercolumnTile(
          rows: rows, columns: columns,
          cropRows: single ? 0..<height : Self.crop(rows, axis: 0, size: height, layers: layers, stride: stride,
                                                    options: options),
          cropColumns: single ? 0..<width : Self.crop(columns, axis: 1, size: width, layers: layers, stride: stride,
                                                      options: options)))
      }
    }
    self.tiles = tiles
  }

  /// The first op among those the layers depend on that is not spatially
  /// local: one that may reduce, reorder, select or resample across the
  /// image (a classifier head elsewhere in the graph does not count).
  static func wholeImageOp(in graph: Graph, feeding layers: [String]) -> String? {
    ancestors(in: graph, of: layers).first { !Operators.isSpatiallyLocal($0.opType) }?.opType
  }

  /// The nodes the layers depend on, nearest first.
  static func ancestors(in graph: Graph, of layers: [String]) -> [Node] {
    var producer: [String: Node] = [:]
    for node in graph.nodes { for output in node.outputs { producer[output] = node } }
    var pending = layers, seen = Set<String>(), found: [Node] = []
    while !pending.isEmpty {
      let name = pending.removeFirst()
      guard seen.insert(name).inserted, let node = producer[name] else { continue }
      found.append(node)
      pending += node.inputs.filter { !$0.isEmpty && graph.initializers[$0] == nil }
    }
    return found
  }

  /// The input range along one axis whose features cover output range `out`.
  /// The features it reads are the bilinear taps and the cells the
  /// upsampling method reaches beyond them.
  static func crop(_ out: Range<Int>, axis: Int, size: Int, layers: [HypercolumnLayer], stride: Int,
                   options: HypercolumnOptions) -> Range<Int> {
    var low = size, high = 0
    for layer in layers {
      let mapSize = axis == 0 ? layer.mapHeight : layer.mapWidth
      let taps = BilinearResize.taps(input: mapSize, output: size, alignment: options.alignment)
      let reach = options.upsampling.reach(stride: Double(size) / Double(mapSize))
      let (lowCell, highCell) = (max(0, taps[out.lowerBound].low - reach), min(mapSize - 1, taps[out.upperBound - 1].high + reach))
      let f = layer.receptiveField
      let first = f.start[axis] + Double(lowCell) * f.jump[axis] - f.size[axis] / 2
      let last = f.start[axis] + Double(highCell) * f.jump[axis] + f.size[axis] / 2
      low = min(low, Int(first.rounded(.down)) - 1)
      high = max(high, Int(last.rounded(.up)) + 1)
    }
    let begin = max(0, low) / stride * stride
    // Same remainder modulo the stride as the whole axis, so padding that
    // depends on the size (SAME) comes out the same.
    let span = max(0, high - begin)
    let end = begin + (span + stride - 1) / stride * stride + size % stride
    return begin..<min(size, end)
  }
}

private func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
private func lcm(_ a: Int, _ b: Int) -> Int { a / gcd(a, b) * b }
