import AtrousCore
import AtrousIO
import AtrousNN
import FoundationEssentials

/// One self-contained HTML page that shows a model: per layer its op,
/// output shape, parameters, MACs, theoretical and effective receptive
/// field, and, with an image, a montage of its feature maps; with the
/// hypercolumn PCA preview of chosen layers. Pictures are embedded as PNG
/// data URIs, so the file opens in a browser with no server and no network.
public struct ModelReport {
  /// What goes into the report.
  public struct Options: Sendable {
    /// Layers whose effective field is measured (nil: every map, at most
    /// `maxEffectiveFields` of them spread over the depth).
    public var effectiveFieldLayers: [String]?
    public var maxEffectiveFields = 24
    /// Random inputs each effective field averages over, without an image.
    public var effectiveFieldSamples = 2
    public var uniformWeights = false
    /// Layers of the hypercolumn preview (with an image).
    public var hypercolumnLayers: [String] = []
    /// `hypercolumnLayers` are suggestions (a model's default layers):
    /// those that are not spatial maps are left out, and when none is, the
    /// deepest spatial map stands in.
    public var suggestedLayers = false
    /// Channels shown per montage: the first ones.
    public var montageChannels = 64
    public var threads = Parallel.coreCount
    public init() {}
  }

  public let title: String
  public let html: String

  /// - Parameters:
  ///   - input: the network input the maps and effective fields are taken
  ///     at (an image's, or zeros of the size asked for, with `image` nil).
  ///   - image: the picture shown beside the preview.
  /// - Throws: the model's errors.
  public init(title: String, graph: Graph, input: NDArray, image: Image?, guideColours: GuideColours,
              options: Options = Options()) throws {
    self.title = title
    let inputName = graph.inputs.first { graph.initializers[$0.name] == nil }!.name
    let summary = try NetworkSummary(graph: graph, inputShapes: [inputName: input.shape])
    // Every map is kept at once for the montages and the gradients.
    try InputGradient.checkMemory(summary, inputShape: input.shape, inputs: options.effectiveFieldSamples)
    let maps = summary.layers.filter { $0.outputShape.count == 4 && $0.outputShape[0] == 1 }
    let mapNames = Set(maps.map(\.name))

    // Effective fields: gradients at the image, or averaged over random inputs.
    let chosen: [String]
    if let asked = options.effectiveFieldLayers {
      chosen = asked.filter(mapNames.contains)
    } else {
      let supported = maps.filter { InputGradient.problem(graph: graph, layer: $0.name) == nil }
      let step = max(1, (supported.count + options.maxEffectiveFields - 1) / max(options.maxEffectiveFields, 1))
      chosen = stride(from: supported.count - 1, through: 0, by: -step).map { supported[$0].name }.reversed()
    }
    let fieldGraph = options.uniformWeights ? EffectiveReceptiveField.uniformWeights(graph) : graph
    let fieldInputs = image != nil ? [input]
      : EffectiveReceptiveField.randomInputs(shape: input.shape, count: options.effectiveFieldSamples, seed: 0)
    // One executor per graph: weights are prepared once for every layer.
    let executor = try Executor(graph: graph, threads: options.threads)
    let fieldExecutor = options.uniformWeights ? try Executor(graph: fieldGraph, threads: options.threads) : executor
    var fields: [String: EffectiveReceptiveField] = [:]
    let keep = try InputGradient.keptValues(graph: fieldGraph, layers: chosen)
    for name in chosen {
      fields[name] = try EffectiveReceptiveField.measure(executor: fieldExecutor, layer: name, inputs: fieldInputs, keep: keep,
                                                         threads: options.threads)
    }

    // Feature maps at the image.
    var montages: [String: Image] = [:]
    if image != nil {
      let values = try executor.run([inputName: input], outputs: maps.map(\.name), standardLayout: false)
      var renderer = FeatureMapRenderer()
      renderer.colormap = .viridis
      for layer in maps {
        guard let value = values[layer.name], let stored = value.toChannelsLast().storage else { continue }
        let (h, w, c) = (stored.shape[1], stored.shape[2], min(stored.shape[3], options.montageChannels))
        var map = stored.reshaped(Array(stored.shape.dropFirst()))  // (h, w, C)
        if c < stored.shape[3] { map = Self.firstChannels(map, c) }
        let ranges = renderer.ranges(map)
        montages[layer.name] = h * w == 1 ? renderer.bars(map, ranges: ranges)
          : renderer.montage(map, ranges: ranges, layout: MontageLayout(mapHeight: h, mapWidth: w, channels: c, minimumCell: 24,
                                                                       maxSide: 480))
      }
    }

    // The hypercolumn preview of the chosen layers.
    var preview: Image?
    var previewLayers = options.hypercolumnLayers
    if options.suggestedLayers {
      let spatial = maps.filter { $0.outputShape[2] * $0.outputShape[3] > 1 }
      previewLayers = previewLayers.filter { name in spatial.contains { $0.name == name } }
      if previewLayers.isEmpty, let deepest = spatial.last { previewLayers = [deepest.name] }
    }
    if image != nil, !previewLayers.isEmpty {
      var hypercolumnOptions = HypercolumnOptions()
      hypercolumnOptions.threads = options.threads
      hypercolumnOptions.guideColours = guideColours
      let extractor = try HypercolumnExtractor(graph: graph, layers: previewLayers, options: hypercolumnOptions)
      let (h, w) = (input.shape[2], input.shape[3])
      let plan = try extractor.plan(height: h, width: w, channels: input.shape[1])
      let all = (0..<(h * w)).map { (x: $0 % w, y: $0 / w) }
      let columns = try extractor.sample(input, plan: plan, pixels: all)  // (H W, C)
      let c = columns.shape[1]
      let picked = Array(stride(from: 0, to: h * w, by: max(1, h * w / 2048)).prefix(2048))
      let scalars = columns.scalars
      var chosenValues: [Float] = []
      for p in picked { chosenValues += scalars[(p * c)..<((p + 1) * c)] }
      let sampled = Tensor(shape: [picked.count, c], values: chosenValues)
      let picture = HypercolumnPreview(width: w, height: h, samples: sampled)
      columns.withUnsafeBufferPointer { values in
        for y in 0..<h {
          picture.observe(rows: y..<(y + 1), columns: 0..<w, values: UnsafeBufferPointer(rebasing: values[(y * w * c)..<((y + 1) * w * c)]))
        }
      }
      preview = picture.image()
    }

    html = try Self.page(title: title, summary: summary, inputShape: input.shape, image: image, preview: preview,
                         previewLayers: previewLayers, fields: fields, montages: montages,
                         fieldNote: image != nil ? "at the image" : "mean over \(fieldInputs.count) random inputs"
                           + (options.uniformWeights ? ", uniform weights" : ""))
  }

  static func firstChannels(_ map: Tensor, _ count: Int) -> Tensor {
    let (h, w, c) = (map.shape[0], map.shape[1], map.shape[2])
    let values = map.scalars
    return Tensor(shape: [h, w, count], values: (0..<(h * w)).flatMap { values[($0 * c)..<($0 * c + count)] })
  }

  /// A PNG data URI.
  static func dataURI(_ image: Image) throws -> String {
    "data:image/png;base64," + Data(try PNGCodec.encode(image)).base64EncodedString()
  }

  static func escape(_ text: String) -> String {
    text.replacing("&", with: "&amp;").replacing("<", with: "&lt;")
      .replacing(">", with: "&gt;").replacing("\"", with: "&quot;")
  }

  static func number(_ n: Int) -> String {
    switch n {
    case 1_000_000_000...: String(printf: "%.2f G", Double(n) / 1e9)
    case 1_000_000...: String(printf: "%.2f M", Double(n) / 1e6)
    case 10_000...: String(printf: "%.1f k", Double(n) / 1e3)
    default: String(n)
    }
  }

  static func size(_ values: [Double]) -> String {
    values.map { $0 == $0.rounded() ? String(Int($0)) : String(printf: "%.1f", $0) }.joined(separator: "x")
  }

  /// The page's colours; the header's is what a screenshot test finds.
  static let style = """
    body { font: 14px/1.4 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #1b1f24; background: #ffffff; }
    h1 { font-size: 22px; margin: 0 0 4px; }
    p.totals { color: #4a5563; margin: 0 0 16px; }
    section.pictures { display: flex; gap: 16px; margin-bottom: 20px; flex-wrap: wrap; }
    figure { margin: 0; }
    figcaption { color: #4a5563; font-size: 12px; }
    table { border-collapse: collapse; }
    th { background: #1f3b63; color: #ffffff; text-align: left; padding: 6px 8px; position: sticky; top: 0; }
    td { padding: 4px 8px; border-bottom: 1px solid #dde3ea; vertical-align: middle; }
    tr:nth-child(even) td { background: #f3f6fa; }
    td.n { text-align: right; font-variant-numeric: tabular-nums; }
    img.erf { width: 96px; height: 96px; image-rendering: pixelated; }
    img.maps { max-width: 360px; max-height: 240px; image-rendering: pixelated; }
    img.big { width: 320px; image-rendering: pixelated; }
    """

  static func page(title: String, summary: NetworkSummary, inputShape: [Int], image: Image?, preview: Image?,
                   previewLayers: [String], fields: [String: EffectiveReceptiveField], montages: [String: Image],
                   fieldNote: String) throws -> String {
    var html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    html += "<title>\(escape(title))</title>\n<style>\n\(style)\n</style>\n</head>\n<body>\n"
    html += "<h1>\(escape(title))</h1>\n"
    html += "<p class=\"totals\">input (\(inputShape.map(String.init).joined(separator: ", "))) &middot; \(summary.layers.count) layers"
      + " &middot; \(number(summary.totalParameters)) parameters &middot; \(number(summary.totalMACs)) MACs"
      + " &middot; effective fields \(escape(fieldNote))</p>\n"
    if image != nil || preview != nil {
      html += "<section class=\"pictures\">\n"
      if let image {
        html += "<figure><img class=\"big\" src=\"\(try dataURI(image))\" alt=\"input\"><figcaption>input</figcaption></figure>\n"
      }
      if let preview {
        html += "<figure><img class=\"big\" style=\"width: 640px\" src=\"\(try dataURI(preview))\" alt=\"hypercolumn preview\">"
          + "<figcaption>hypercolumns of \(escape(previewLayers.joined(separator: ", "))): mean activation, and the first "
          + "three principal components as red, green, blue</figcaption></figure>\n"
      }
      html += "</section>\n"
    }
    html += "<table>\n<thead><tr><th>#</th><th>layer</th><th>op</th><th>output shape</th><th>params</th><th>MACs</th>"
      + "<th>theoretical field</th><th>jump</th><th>effective field r50 / r90</th><th>effective field</th>"
      + (montages.isEmpty ? "" : "<th>feature maps</th>") + "</tr></thead>\n<tbody>\n"
    for (i, layer) in summary.layers.enumerated() {
      let rf = layer.receptiveField
      var row = "<tr><td class=\"n\">\(i + 1)</td><td>\(escape(layer.name))</td><td>\(escape(layer.op))</td>"
        + "<td>(\(layer.outputShape.map(String.init).joined(separator: ", ")))</td>"
        + "<td class=\"n\">\(number(layer.parameters))</td><td class=\"n\">\(number(layer.macs))</td>"
        + "<td>\(size(rf.size))</td><td>\(size(rf.jump))</td>"
      if let field = fields[layer.name] {
        // The window around the theoretical field, so that small fields show.
        let window = field.window
        let scale = max(1, 96 / max(window.rows.count, window.columns.count))
        let picture = field.picture(scale: scale, rows: window.rows, columns: window.columns)
        row += "<td class=\"n\">\(String(printf: "%.1f / %.1f", field.radius(holding: 0.5), field.radius(holding: 0.9)))</td>"
          + "<td><img class=\"erf\" src=\"\(try dataURI(picture))\" alt=\"effective field\"></td>"
      } else {
        row += "<td></td><td></td>"
      }
      if !montages.isEmpty {
        row += "<td>" + (try montages[layer.name].map { "<img class=\"maps\" src=\"\(try dataURI($0))\" alt=\"maps\">" } ?? "") + "</td>"
      }
      html += row + "</tr>\n"
    }
    html += "</tbody>\n</table>\n</body>\n</html>\n"
    return html
  }
}
