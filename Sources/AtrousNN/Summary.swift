import AtrousCore

/// The receptive field of a layer's features in input pixels, per axis
/// (height, width), from the arithmetic of the seed notes:
/// `j_out = j_in * s`, `r_out = r_in + (k_eff - 1) * j_in`,
/// `start_out = start_in + ((k_eff - 1) / 2 - p_begin) * j_in`, with input
/// pixel centres at 0.5, 1.5, ...
public struct ReceptiveField: Sendable, Equatable {
  /// Input pixels one feature sees.
  public var size: [Double]
  /// Input pixels between neighbouring features.
  public var jump: [Double]
  /// Input coordinate of the centre of the first feature's field.
  public var start: [Double]

  public static let input = ReceptiveField(size: [1, 1], jump: [1, 1], start: [0.5, 0.5])

  public init(size: [Double], jump: [Double], start: [Double]) {
    self.size = size
    self.jump = jump
    self.start = start
  }

  /// The field through a window (convolution or pooling) along each axis.
  func window(kernel: [Int], stride: [Int], dilation: [Int], padBegin: [Int]) -> ReceptiveField {
    var out = self
    for d in 0..<2 {
      let extent = Double(dilation[d] * (kernel[d] - 1) + 1)
      out.size[d] = size[d] + (extent - 1) * jump[d]
      out.start[d] = start[d] + ((extent - 1) / 2 - Double(padBegin[d])) * jump[d]
      out.jump[d] = jump[d] * Double(stride[d])
    }
    return out
  }

  /// Centre and box (x0, y0, x1, y1) of the input region feature (x, y) sees.
  public func region(x: Int, y: Int) -> (centre: (x: Double, y: Double), box: (Double, Double, Double, Double)) {
    let cx = start[1] + Double(x) * jump[1], cy = start[0] + Double(y) * jump[0]
    return ((cx, cy), (cx - size[1] / 2, cy - size[0] / 2, cx + size[1] / 2, cy + size[0] / 2))
  }
}

/// One row of a network summary: a node, its first output and what it costs.
public struct LayerSummary: Sendable {
  /// The node's first output: the name `--outputs` and hypercolumn layers use.
  public var name: String
  public var node: String
  public var op: String
  public var outputShape: [Int]
  /// Weights the node reads (float initializer elements, each counted once per graph).
  public var parameters: Int
  /// Multiply-accumulates of one run.
  public var macs: Int
  public var receptiveField: ReceptiveField
}

/// Shapes, parameters, cost and receptive fields of every layer, found by
/// running the graph in shape-only mode (convolutions and matrix products
/// allocate their outputs but compute nothing).
public struct NetworkSummary: Sendable {
  public var layers: [LayerSummary]
  /// Largest total size of the values alive at once, in bytes.
  public var peakActivationBytes: Int
  public var totalParameters: Int { layers.map(\.parameters).reduce(0, +) }
  public var totalMACs: Int { layers.map(\.macs).reduce(0, +) }

  /// - Parameter inputs: a zero input of each graph input's shape will do.
  public init(graph: Graph, inputShapes: [String: [Int]]) throws {
    let executor = try Executor(graph: graph)
    var inputs: [String: NDArray] = [:]
    for name in executor.inputNames {
      guard let shape = inputShapes[name] ?? graph.inputs.first(where: { $0.name == name }).flatMap({ s in
        s.shape.allSatisfy({ $0 != nil }) ? s.shape.map { $0! } : nil
      }) else {
        throw NNError.badGraphInput(name: name, reason: "its shape is not fixed; give an input size")
      }
      let type = graph.inputs.first(where: { $0.name == name })?.dtype ?? .float32
      inputs[name] = NDArray(shape: shape, floats: Tensor(shape: shape)).cast(to: type)
    }
    var fields: [String: ReceptiveField] = [:]
    for name in inputs.keys { fields[name] = .input }
    var counted = Set<String>()
    var layers: [LayerSummary] = []
    let trace = try executor.trace(inputs)
    peakActivationBytes = trace.peakBytes
    for step in trace.steps {
      let node = step.node
      let field = Self.field(node, fields: fields, inputShapes: step.inputShapes, outputShapes: step.outputShapes,
                             constants: graph.initializers)
      for output in node.outputs where !output.isEmpty { fields[output] = field }
      var parameters = 0
      // Weights only: integer constants (pads, shapes, axes) are not parameters.
      for name in node.inputs where graph.initializers[name]?.isFloat == true && !counted.contains(name) {
        counted.insert(name)
        parameters += graph.initializers[name]!.count
      }
      layers.append(LayerSummary(name: node.outputs.first ?? node.name, node: node.name, op: node.opType,
                                 outputShape: step.outputShapes.first ?? [], parameters: parameters,
                                 macs: Self.macs(node, step), receptiveField: field))
    }
    self.layers = layers
  }

  static func macs(_ node: Node, _ step: Executor.TraceStep) -> Int {
    let out = step.outputShapes.first ?? []
    switch node.opType {
    case "Conv":
      guard step.inputShapes.count > 1, let w = step.inputShapes[1], w.count == 4 else { return 0 }
      return out.reduce(1, *) * w[1] * w[2] * w[3]
    case "ConvTranspose":
      guard let x = step.inputShapes[0], let w = step.inputShapes[1], w.count == 4 else { return 0 }
      return x.reduce(1, *) * w[1] * w[2] * w[3]
    case "Gemm", "MatMul":
      guard let a = step.inputShapes[0], let last = a.last else { return 0 }
      let transA = node.attributes["transA"].map { if case .int(1) = $0 { true } else { false } } ?? false
      return out.reduce(1, *) * (transA ? a[0] : last)
    default:
      return 0
    }
  }

  /// Propagates receptive fields. Windows follow the arithmetic above;
  /// ops that merge branches take the largest incoming field; resizing
  /// divides the jump; global pooling and flattening see everything.
  static func field(_ node: Node, fields: [String: ReceptiveField], inputShapes: [[Int]?], outputShapes: [[Int]],
                    constants: [String: NDArray] = [:]) -> ReceptiveField {
    let incoming = node.inputs.compactMap { fields[$0] }
    guard var base = incoming.max(by: { $0.size[0] * $0.size[1] < $1.size[0] * $1.size[1] }) else { return .input }
    // Merging branches: the largest field, but the grid (jump and start) of
    // an input with the output's spatial size (a broadcast 1x1 map, as in
    // squeeze-and-excite, has no grid of its own).
    if incoming.count > 1, let out = outputShapes.first, out.count == 4 {
      let aligned = node.inputs.indices.filter { i in
        guard i < inputShapes.count, let shape = inputShapes[i], shape.count == 4, fields[node.inputs[i]] != nil else { return false }
        return shape[2] == out[2] && shape[3] == out[3]
      }.compactMap { fields[node.inputs[$0]] }
      if let grid = aligned.max(by: { $0.size[0] * $0.size[1] < $1.size[0] * $1.size[1] }) {
        base.jump = grid.jump
        base.start = grid.start
      }
    }
    func ints(_ key: String, _ fallback: [Int]) -> [Int] {
      if case .ints(let v)? = node.attributes[key] { return v }
      return fallback
    }
    let x = inputShapes.first ?? nil
    switch node.opType {
    case "Conv", "MaxPool", "AveragePool":
      var kernel = ints("kernel_shape", [])
      if kernel.isEmpty, inputShapes.count > 1, let w = inputShapes[1], w.count == 4 { kernel = [w[2], w[3]] }
      guard kernel.count == 2 else { return base }
      let stride = ints("strides", [1, 1]), dilation = ints("dilations", [1, 1])
      var pads = ints("pads", [0, 0, 0, 0])
      if case .string(let mode)? = node.attributes["auto_pad"], mode.hasPrefix("SAME"), let x, x.count == 4 {
        for d in 0..<2 {
          pads[d] = Window.samePadding(count: x[d + 2], taps: kernel[d], stride: stride[d], dilation: dilation[d],
                                       lower: mode == "SAME_LOWER").begin
        }
      } else if case .string("VALID")? = node.attributes["auto_pad"] {
        pads = [0, 0, 0, 0]
      }
      return base.window(kernel: kernel, stride: stride, dilation: dilation, padBegin: [pads[0], pads[1]])
    case "ConvTranspose":
      var kernel = ints("kernel_shape", [])
      if kernel.isEmpty, inputShapes.count > 1, let w = inputShapes[1], w.count == 4 { kernel = [w[2], w[3]] }
      guard kernel.count == 2 else { return base }
      let stride = ints("strides", [1, 1]), dilation = ints("dilations", [1, 1]), pads = ints("pads", [0, 0, 0, 0])
      for d in 0..<2 {
        let extent = Double(dilation[d] * (kernel[d] - 1) + 1), s = Double(stride[d])
        base.size[d] += ((extent / s).rounded(.up) - 1) * base.jump[d]
        base.start[d] += (Double(pads[d]) - (extent - 1) / 2) / s * base.jump[d]
        base.jump[d] /= s
      }
      return base
    case "GlobalAveragePool", "GlobalMaxPool", "Flatten":
      guard let x, x.count == 4 else { return base }
      for d in 0..<2 {
        let n = Double(x[d + 2])
        base.size[d] += (n - 1) * base.jump[d]
        base.start[d] += (n - 1) / 2 * base.jump[d]
        base.jump[d] *= n
      }
      return base
    case "Resize", "Upsample":
      guard let x, x.count == 4, let y = outputShapes.first, y.count == 4 else { return base }
      var linear = false
      if case .string(let mode)? = node.attributes["mode"] { linear = mode == "linear" || mode == "bilinear" }
      for d in 0..<2 {
        let f = Double(y[d + 2]) / Double(x[d + 2])
        // Output pixel i is centred on input coordinate (i + 0.5) / f - 0.5.
        base.start[d] += (0.5 / f - 0.5) * base.jump[d]
        if linear { base.size[d] += base.jump[d] }
        base.jump[d] /= f
      }
      return base
    case "Pad":
      // Spatial begin pads from the attribute (before opset 11) or the constant input.
      var pads = ints("pads", [])
      if pads.isEmpty, node.inputs.count > 1, let value = constants[node.inputs[1]] { pads = value.intValues() }
      guard pads.count == 8 else { return base }
      for d in 0..<2 { base.start[d] -= Double(pads[d + 2]) * base.jump[d] }
      return base
    default:
      return base
    }
  }
}
