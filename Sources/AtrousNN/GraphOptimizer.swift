import AtrousCore
import _CKernels

/// Rewrites that leave a graph's results unchanged (within float rounding)
/// and make it cheaper to run.
///
/// Each rewrite takes the values that must survive it (`keep`: the graph's
/// outputs and any value a caller asks for): they count as read once more,
/// so no rewrite removes them.
enum GraphOptimizer {
  /// Every rewrite, in order, keeping `keep`.
  static func optimize(_ graph: Graph, keep: Set<String>) -> Graph {
    let keep = Array(keep.union(graph.outputs))
    // Activations are recognized before a MatMul takes in the scale of its
    // input: exact GELU's closing Mul(., 0.5) would otherwise become the
    // next MatMul's (as in ConvNeXt), and the rest stay separate nodes.
    let constants = foldMatMulScales(recognizeActivations(foldConstants(graph), keep: keep), keep: keep)
    let folded = averageBeforePointwise(
      foldMatMulBias(foldConvBias(foldBatchNorm(foldConstantIdentities(constants), keep: keep), keep: keep), keep: keep),
      keep: keep)
    let shuffles = fuseShuffledConcat(recognizeChannelShuffle(folded, keep: keep), keep: keep)
    let fused = fuseConcatBatchNorm(fusePointwise(recognizeStridedGather(shuffles, keep: keep), keep: keep), keep: keep)
    let blocks = fuseDepthwiseBlocks(foldLeadingAffine(fused), keep: keep)
    let chains = fuseConvolutionChains(fuseResidualAdd(fuseMaxPool(blocks, keep: keep), keep: keep), keep: keep)
    return fuseConcatConvolution(fuseChannelScale(chains, keep: keep), keep: keep)
  }

  /// A Mul of a map by gates made from its global average (a squeeze and
  /// excitation: one operand made within four nodes of a
  /// GlobalAveragePool or ReduceMean, the other not) whose output only a
  /// 1x1 Conv reads, as its data, becomes part of the Conv
  /// (`ScaledConvolution`): the Conv, with constant weights, one group,
  /// stride 1 and no padding, not a chain's or a pool's, then reads the
  /// map and the gates. Whether the gates scale the weights or the map is
  /// settled when the shapes are known.
  static func fuseChannelScale(_ graph: Graph, keep: [String]) -> Graph {
    guard has("Mul", in: graph) else { return graph }
    let consumers = readers(of: graph.nodes, outputs: keep), reader = lastReaders(of: graph.nodes)
    let producer = producers(of: graph.nodes)
    func isGate(_ value: String) -> Bool {
      var value = value
      for _ in 0..<4 {
        guard let p = producer[value], let first = graph.nodes[p].inputs.first else { return false }
        if ["GlobalAveragePool", "ReduceMean"].contains(graph.nodes[p].opType) { return true }
        value = first
      }
      return false
    }
    var nodes: [Node?] = graph.nodes
    for (index, mul) in graph.nodes.enumerated() where mul.opType == "Mul" && mul.inputs.count == 2 && mul.outputs.count == 1 {
      guard consumers[mul.outputs[0]] == 1, let at = reader[mul.outputs[0]], let conv = nodes[at], conv.opType == "Conv",
        conv.inputs.first == mul.outputs[0], !conv.inputs.dropFirst().contains(mul.outputs[0]),
        conv.inputs.count <= ResidualConvolution.input + 1, pointwiseOutputs(conv, in: graph) != nil,
        ChainedConvolution.parts(of: conv) == nil, PooledConvolution.pool(of: conv) == nil,
        mul.attributes.isEmpty else { continue }
      let gates = mul.inputs.map(isGate)
      guard gates[0] != gates[1] else { continue }
      let (map, gate) = gates[1] ? (mul.inputs[0], mul.inputs[1]) : (mul.inputs[1], mul.inputs[0])
      nodes[at] = ScaledConvolution.fusing(mul, map: map, gates: gate, into: conv)
      nodes[index] = nil
    }
    return dropping(nodes, from: graph)
  }

  /// A Conv whose output only a second Conv reads becomes part of the
  /// second (`ChainedConvolution`), which may then run the two in bands of
  /// rows: the first with constant weights, one group and nothing fused
  /// into it but steps; the second a 3x3 at stride 1 without dilation, one
  /// group, constant weights, its input the first's output, and no pool or
  /// sum fused into it (what Winograd runs). Whether bands pay is settled
  /// when the shapes are known.
  static func fuseConvolutionChains(_ graph: Graph, keep: [String]) -> Graph {
    guard has("Conv", in: graph) else { return graph }
    func plain(_ conv: Node) -> Bool {
      conv.opType == "Conv" && conv.outputs.count == 1 && (2...3).contains(conv.inputs.count) && unit(conv, "group")
        && graph.initializers[conv.inputs[1]]?.rank == 4 && PooledConvolution.pool(of: conv) == nil
    }
    let consumers = readers(of: graph.nodes, outputs: keep), reader = lastReaders(of: graph.nodes)
    var nodes: [Node?] = graph.nodes
    for index in graph.nodes.indices {
      guard let conv = nodes[index], plain(conv), consumers[conv.outputs[0]] == 1, let at = reader[conv.outputs[0]],
        let next = nodes[at], plain(next), next.inputs[0] == conv.outputs[0], !next.inputs.dropFirst().contains(conv.outputs[0]),
        let w = graph.initializers[next.inputs[1]], w.shape[2] == 3, w.shape[3] == 3, unit(next, "strides"),
        unit(next, "dilations") else { continue }
      nodes[at] = ChainedConvolution.fusing(conv, into: next)
      nodes[index] = nil
    }
    return dropping(nodes, from: graph)
  }

  /// Whether `node`'s integer attribute `name` is absent or all ones (a
  /// unit stride, dilation or group).
  static func unit(_ node: Node, _ name: String) -> Bool {
    guard let value = node.attributes[name] else { return true }
    if case .ints(let values) = value { return values.allSatisfy { $0 == 1 } }
    if case .int(let value) = value { return value == 1 }
    return false
  }

  /// An Add of two values, one of them the output of a Conv that can add
  /// it as it makes its output, that nothing else reads and that has no
  /// fused steps of its own, becomes part of the Conv
  /// (`ResidualConvolution`), with the Add's steps: a Conv Winograd can run
  /// (one group, constant weights; 3x3 at stride 1, and undilated 3x3 at
  /// stride 2, 4x4 at stride 1 and 7x7 at stride 2), a 1x1
  /// product (stride 1, no padding, one group), or a `_DepthwiseBlock`
  /// with a projection (adding to each projected row). The Conv takes the
  /// Add's place: the other operand may be made after the Conv (ResNet's
  /// downsampling branch). Other convolutions would only add after, as the
  /// Add does.
  static func fuseResidualAdd(_ graph: Graph, keep: [String]) -> Graph {
    guard has("Add", in: graph) else { return graph }
    func addsInPlace(_ conv: Node) -> Bool {
      if pointwiseOutputs(conv, in: graph) != nil { return true }
      guard let w = graph.initializers[conv.inputs[1]], w.rank == 4, w.shape[2] == w.shape[3], unit(conv, "group") else {
        return false
      }
      let strided: Bool
      switch conv.attributes["strides"] {
      case nil: strided = false
      case .ints(let values)? where values == [2, 2]: strided = true
      default: guard unit(conv, "strides") else { return false }; strided = false
      }
      switch (w.shape[2], strided) {
      case (3, false): return true
      case (3, true), (4, false), (7, true): return unit(conv, "dilations")
      default: return false
      }
    }
    let consumers = readers(of: graph.nodes, outputs: keep)
    let producer = producers(of: graph.nodes)
    var nodes: [Node?] = graph.nodes
    for (index, add) in graph.nodes.enumerated() where add.opType == "Add" && add.inputs.count == 2 && add.outputs.count == 1 {
      for side in 0..<2 {
        let name = add.inputs[side], other = add.inputs[1 - side]
        guard !other.isEmpty, name != other, consumers[name] == 1, let from = producer[name], let conv = nodes[from],
          conv.outputs.count == 1 else { continue }
        let position: Int
        if conv.opType == DepthwiseBlock.opType {
          // A block whose projection makes its output adds to each
          // projected row.
          guard conv.inputs.count == DepthwiseBlock.residualInput, !conv.inputs[DepthwiseBlock.projectInput].isEmpty,
            conv.attributes[DepthwiseBlock.projectStepsAttribute] == nil else { continue }
          position = DepthwiseBlock.residualInput
        } else {
          guard conv.opType == "Conv", (2...3).contains(conv.inputs.count), addsInPlace(conv),
            conv.attributes[Pointwise.epilogueAttribute] == nil,
            PooledConvolution.pool(of: conv) == nil else { continue }
          position = ResidualConvolution.input
        }
        nodes[index] = ResidualConvolution.fusing(add, residual: other, into: conv, at: position)
        nodes[from] = nil
        break
      }
    }
    return dropping(nodes, from: graph)
  }

  /// A Concat along the channels (axis 1) that only a BatchNormalization
  /// reads, as its data, becomes part of it (`ConcatBatchNorm`), after the
  /// steps fused into the BatchNormalization: DenseNet's layers. The
  /// BatchNormalization must not train: its statistics outputs are unused
  /// and training_mode is absent or 0.
  static func fuseConcatBatchNorm(_ graph: Graph, keep: [String]) -> Graph {
    guard has("Concat", in: graph) else { return graph }
    var nodes: [Node?] = graph.nodes
    for (index, at) in channelConcatsReadOnce(graph, keep: keep) {
      let concat = graph.nodes[index], bn = graph.nodes[at]
      guard bn.opType == "BatchNormalization", bn.inputs.count == 5, bn.inputs[0] == concat.outputs[0],
        bn.outputs.dropFirst().allSatisfy(\.isEmpty)
      else { continue }
      if let training = bn.attributes["training_mode"] { guard case .int(0) = training else { continue } }
      nodes[at] = ConcatBatchNorm.fusing(concat, into: bn)
      nodes[index] = nil
    }
    return dropping(nodes, from: graph)
  }

  /// A channel Concat that nothing else reads, read by a plain 1x1 Conv
  /// (`pointwiseOutputs`, nothing fused into it but steps), becomes part
  /// of the Conv (`ConcatConvolution`): the product reads the parts. Last
  /// of the fusions, so the Conv is one no other fusion took.
  static func fuseConcatConvolution(_ graph: Graph, keep: [String]) -> Graph {
    guard has("Concat", in: graph) else { return graph }
    var nodes: [Node?] = graph.nodes
    for (index, at) in channelConcatsReadOnce(graph, keep: keep) {
      let concat = graph.nodes[index], conv = graph.nodes[at]
      guard conv.inputs.first == concat.outputs[0], conv.inputs.count <= 3, conv.outputs.count == 1,
        pointwiseOutputs(conv, in: graph) != nil, ChainedConvolution.parts(of: conv) == nil,
        PooledConvolution.pool(of: conv) == nil, conv.inputs.count < 3 || graph.initializers[conv.inputs[2]] != nil
      else { continue }
      nodes[at] = ConcatConvolution.fusing(concat, into: conv)
      nodes[index] = nil
    }
    return dropping(nodes, from: graph)
  }

  /// The Concats along axis 1 of parts all given whose output one node
  /// reads once and nothing else (no graph output): (the Concat's index,
  /// the reader's), for fusions that make the reader take the parts.
  static func channelConcatsReadOnce(_ graph: Graph, keep: [String]) -> [(Int, Int)] {
    let consumers = readers(of: graph.nodes, outputs: keep), reader = lastReaders(of: graph.nodes)
    return graph.nodes.indices.compactMap { index in
      let concat = graph.nodes[index]
      guard concat.opType == "Concat", concat.outputs.count == 1, case .int(1)? = concat.attributes["axis"],
        !concat.inputs.isEmpty, !concat.inputs.contains(where: \.isEmpty), consumers[concat.outputs[0]] == 1,
        let at = reader[concat.outputs[0]] else { return nil }
      return (index, at)
    }
  }

  /// A 2-D MaxPool (without its Indices output) that alone reads a 2-D
  /// Conv's output, the Conv's weights constant, becomes part of the Conv
  /// (`PooledConvolution`), after the steps fused into it.
  static func fuseMaxPool(_ graph: Graph, keep: [String]) -> Graph {
    guard has("MaxPool", in: graph) else { return graph }
    let consumers = readers(of: graph.nodes, outputs: keep), reader = lastReaders(of: graph.nodes)
    var nodes: [Node?] = graph.nodes
    for (index, conv) in graph.nodes.enumerated() where conv.opType == "Conv" && conv.outputs.count == 1 {
      guard conv.inputs.count > 1, graph.initializers[conv.inputs[1]]?.rank == 4, PooledConvolution.pool(of: conv) == nil,
        consumers[conv.outputs[0]] == 1, let at = reader[conv.outputs[0]] else { continue }
      let pool = graph.nodes[at]
      guard pool.opType == "MaxPool", pool.inputs.first == conv.outputs[0], pool.outputs.first?.isEmpty == false,
        pool.outputs.dropFirst().allSatisfy(\.isEmpty),
        case .ints(let kernel)? = pool.attributes["kernel_shape"], kernel.count == 2 else { continue }
      nodes[index] = PooledConvolution.fusing(pool, into: conv)
      nodes[at] = nil
    }
    return dropping(nodes, from: graph)
  }

  /// A 1x1 Conv (stride 1, no padding, constant weights) whose output only
  /// an average pool reads, with no step between them, runs after the pool
  /// instead: both are linear per pixel, and a pool without padding or
  /// ceil mode averages each window with weights that sum to one, so the
  /// bias comes through unchanged. The product then runs on the pooled
  /// map: DenseNet's transitions (a 1x1 Conv, then a 2x2 pool of stride
  /// 2) on a quarter of the pixels. The Conv keeps its name and makes the
  /// pool's output; the pool takes the Conv's place and input.
  static func averageBeforePointwise(_ graph: Graph, keep: [String]) -> Graph {
    guard has("AveragePool", "GlobalAveragePool", in: graph) else { return graph }
    let consumers = readers(of: graph.nodes, outputs: keep), reader = lastReaders(of: graph.nodes)
    var nodes = graph.nodes
    for (index, conv) in graph.nodes.enumerated() where conv.outputs.count == 1 && perPixel(conv, in: graph) {
      guard let at = soleReader(of: conv.outputs[0], op: "AveragePool", graph, consumers, reader)
        ?? soleReader(of: conv.outputs[0], op: "GlobalAveragePool", graph, consumers, reader) else { continue }
      var pool = graph.nodes[at]
      if pool.opType == "AveragePool" {
        guard case .ints(let kernel)? = pool.attributes["kernel_shape"], kernel.count == 2, unpadded(pool) else { continue }
        if case .int(let ceil)? = pool.attributes["ceil_mode"], ceil != 0 { continue }
      }
      var moved = conv
      // Named after the pool's output, which ONNX makes unique.
      let pooled = pool.outputs[0] + "\u{0}before-pointwise"
      (moved.inputs[0], moved.outputs[0]) = (pooled, pool.outputs[0])
      (pool.inputs[0], pool.outputs[0]) = (conv.inputs[0], pooled)
      (nodes[index], nodes[at]) = (pool, moved)
    }
    return Graph(nodes: nodes, initializers: graph.initializers, inputs: graph.inputs, outputs: graph.outputs, opset: graph.opset)
  }

  /// Conv followed by BatchNormalization becomes one Conv with
  /// W' = W * a and b' = b * a + (B - mean * a), a = scale / sqrt(var + eps),
  /// when the convolution's output feeds only the BatchNormalization, the
  /// values they use are constants, and the BatchNormalization's extra
  /// (training) outputs are unused.
  static func foldBatchNorm(_ graph: Graph, keep: [String]) -> Graph {
    guard has("BatchNormalization", in: graph) else { return graph }
    return foldIntoConv(graph, keep: keep, named: "\u{0}folded") { bn, k, w, initializers in
      guard bn.opType == "BatchNormalization", k == 0, bn.inputs.count == 5, bn.outputs.dropFirst().allSatisfy({ $0.isEmpty }),
        w.rank == 4, let scale = initializers[bn.inputs[1]], let shift = initializers[bn.inputs[2]],
        let mean = initializers[bn.inputs[3]], let variance = initializers[bn.inputs[4]]
      else { return nil }
      let cout = w.shape[0]
      let (s, b, m, v) = (scale.floatValues(), shift.floatValues(), mean.floatValues(), variance.floatValues())
      guard [s, b, m, v].allSatisfy({ $0.count == cout }) else { return nil }
      var epsilon: Float = 1e-5
      if case .float(let e)? = bn.attributes["epsilon"] { epsilon = e }
      let a = (0..<cout).map { s[$0] / (v[$0] + epsilon).squareRoot() }
      return ({ a[$0] }, { b[$0] - m[$0] * a[$0] })
    }
  }

  /// Conv followed by an Add of a constant per output channel (a bias kept
  /// apart, as exporters of frameworks whose convolutions carry none write
  /// it: Add(Conv(x, W), Reshape(b, [1, C, 1, 1])) once constants are
  /// folded) becomes one Conv with b' = b + that constant, when the
  /// convolution's output feeds only the Add.
  static func foldConvBias(_ graph: Graph, keep: [String]) -> Graph {
    guard has("Add", in: graph) else { return graph }
    return foldIntoConv(graph, keep: keep, named: "\u{0}bias") { add, k, w, initializers in
      guard add.opType == "Add", add.inputs.count == 2, let shift = initializers[add.inputs[1 - k]], shift.isFloat,
        w.rank >= 3, shift.rank <= w.rank
      else { return nil }
      // The constant's shape, aligned to the output's (N, C, spatial...),
      // must be 1 everywhere but the channel axis.
      let aligned = [Int](repeating: 1, count: w.rank - shift.rank) + shift.shape
      guard aligned[1] == w.shape[0], aligned.enumerated().allSatisfy({ $0.offset == 1 || $0.element == 1 }) else { return nil }
      let b = shift.floatValues()
      return ({ _ in 1 }, { b[$0] })
    }
  }

  /// The per-output-channel step `affine` recognizes, folded into the Conv
  /// it reads (`rescaled`) where that Conv's output feeds it alone: the
  /// Conv takes the step's output name, the step leaves the graph.
  /// `affine(node, k, weights, initializers)` gives the scale and shift per
  /// channel for a node reading such a Conv (of `weights`) at input k, nil
  /// where the node is no such step. The new weights are named after the
  /// step's output, which ONNX makes unique, and `suffix`.
  private static func foldIntoConv(
    _ graph: Graph, keep: [String], named suffix: String,
    _ affine: (Node, Int, NDArray, [String: NDArray]) -> (scale: (Int) -> Float, shift: (Int) -> Float)?
  ) -> Graph {
    let consumers = readers(of: graph.nodes, outputs: keep)
    let producer = producers(of: graph.nodes)
    var nodes = graph.nodes
    var initializers = graph.initializers
    var removed = Set<Int>()
    for (index, node) in graph.nodes.enumerated() {
      for (k, input) in node.inputs.enumerated() {
        guard let convIndex = producer[input], graph.nodes[convIndex].opType == "Conv", consumers[input] == 1,
          !removed.contains(convIndex), let w = initializers[nodes[convIndex].inputs.dropFirst().first ?? ""],
          let step = affine(node, k, w, initializers),
          var fused = rescaled(nodes[convIndex], scale: step.scale, shift: step.shift, named: node.outputs[0] + suffix,
                               &initializers)
        else { continue }
        fused.outputs = [node.outputs[0]]
        nodes[convIndex] = fused
        removed.insert(index)
        break
      }
    }
    guard !removed.isEmpty else { return graph }
    let kept = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    return Graph(nodes: kept, initializers: initializers, inputs: graph.inputs, outputs: graph.outputs, opset: graph.opset)
  }

  /// Element-wise ops with one varying input become steps run in one pass:
  /// appended to the epilogue of the Conv or the `_Pointwise` node that
  /// produces their input when nothing else reads it, or else a new
  /// `_Pointwise` node that later steps can join. The exported form of
  /// HardSwish, x * Clip(x + 3, 0, 6) / 6, is recognized first.
  /// Identity of a constant (exporters pass shared weights through one)
  /// becomes a constant of its own, so the rewrites after see weights.
  static func foldConstantIdentities(_ graph: Graph) -> Graph {
    var initializers = graph.initializers
    let nodes = graph.nodes.filter { node in
      guard node.opType == "Identity", node.inputs.count == 1, node.outputs.count == 1,
        let value = initializers[node.inputs[0]]
      else { return true }
      initializers[node.outputs[0]] = value
      return false
    }
    guard nodes.count < graph.nodes.count else { return graph }
    return Graph(nodes: nodes, initializers: initializers, inputs: graph.inputs, outputs: graph.outputs, opset: graph.opset)
  }

  /// Values computed from constants alone become constants: a node whose
  /// inputs are all constants, or a Shape of a value whose shape the
  /// graph's fixed input shapes decide, is run once here (each output at
  /// most `foldedElements` elements, so no large constant is made), in
  /// turn, so chains such as Shape -> Cast -> Sqrt -> Div (a scale computed
  /// from a head size) or Shape -> Gather -> Div -> Slice (ShuffleNet's
  /// channel split) fold whole. A node that fails is left to fail at run
  /// time.
  static func foldConstants(_ graph: Graph) -> Graph {
    var initializers = graph.initializers
    var fixed: [String: [Int]] = [:]  // values whose shape is known before the run
    for input in graph.inputs where initializers[input.name] == nil && !input.shape.isEmpty
      && input.shape.allSatisfy({ ($0 ?? 0) > 0 }) {
      fixed[input.name] = input.shape.map { $0! }
    }
    // Values whose shapes no input's values change (`staticShapes`), their
    // shapes from one shapes-only run, made when a Shape node first reads
    // one whose shape is not declared.
    var known = Set(fixed.keys)
    var traced: [String: [Int]]? = nil
    var nodes: [Node] = []
    for node in graph.nodes {
      let inputs = node.inputs.filter { !$0.isEmpty }
      // Identity and one-input ops that keep their input's shape pass a
      // fixed shape on (the Shape nodes of attention read Identity copies).
      if inputs.count == 1, node.outputs.count == 1, let shape = fixed[inputs[0]],
        node.opType == "Identity" || Operators.named(node.opType)?.keepsShape == true {
        fixed[node.outputs[0]] = shape
      }
      if node.opType == "Shape", inputs.count == 1, fixed[inputs[0]] == nil, known.contains(inputs[0]) {
        if traced == nil { traced = tracedShapes(graph, inputs: fixed) }
        fixed[inputs[0]] = traced?[inputs[0]]
      }
      let computable = node.opType == "Shape" ? inputs.count == 1 && (fixed[inputs[0]] != nil || initializers[inputs[0]] != nil)
        : !inputs.isEmpty && inputs.allSatisfy { initializers[$0] != nil } || (inputs.isEmpty && node.opType == "Constant")
      guard computable, node.outputs.allSatisfy({ !$0.isEmpty }), let values = evaluate(node, initializers, fixed, graph.opset),
        values.values.allSatisfy({ $0.count <= foldedElements })
      else {
        if staticShapes(node, known: known, constants: initializers) { known.formUnion(node.outputs) }
        nodes.append(node)
        continue
      }
      for (name, value) in values { initializers[name] = value }
    }
    guard nodes.count < graph.nodes.count else { return graph }
    return Graph(nodes: nodes, initializers: initializers, inputs: graph.inputs, outputs: graph.outputs, opset: graph.opset)
  }

  /// Elements up to which a computed constant is kept as one.
  static let foldedElements = 1 << 16

  /// Elements of the graph's inputs up to which `tracedShapes` runs the
  /// graph: a zero input that size is made for it.
  static let tracedElements = 1 << 24

  /// Ops whose outputs' shapes follow from their inputs' shapes and their
  /// attributes, whatever the inputs hold.
  static let shapesFromShapes: Set<String> = [
    "Abs", "Add", "And", "AveragePool", "BatchNormalization", "Cast", "Ceil", "Clip", "Concat", "Conv", "ConvTranspose",
    "DepthToSpace", "Div", "Dropout", "Elu", "Equal", "Erf", "Exp", "Flatten", "Floor", "Gather", "Gelu", "Gemm",
    "GlobalAveragePool", "GlobalMaxPool", "Greater", "HardSigmoid", "HardSwish", "Identity", "InstanceNormalization",
    "LayerNormalization", "LeakyRelu", "Less", "Log", "LogSoftmax", "LRN", "MatMul", "Max", "MaxPool", "Mean", "Min",
    "Mish", "Mul", "Neg", "Not", "Or", "Pow", "PRelu", "Reciprocal", "Relu", "Round", "Shape", "Sigmoid", "Sign", "Sin",
    "Cos", "Softmax", "Softplus", "SpaceToDepth", "Sqrt", "Sub", "Sum", "Tanh", "Transpose", "Where",
  ]
  /// Ops whose outputs' shapes follow from their first input's shape,
  /// their attributes and the values of their other inputs, when those are
  /// constants.
  static let shapesFromFirst: Set<String> = [
    "Expand", "Pad", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
    "ReduceProd", "ReduceSum", "ReduceSumSquare", "Reshape", "Resize", "Slice", "Split", "Squeeze", "Tile", "Unsqueeze",
    "Upsample",
  ]

  /// Whether `node`'s outputs have shapes no run's input values change,
  /// given the values `known` to have such shapes and the `constants`.
  static func staticShapes(_ node: Node, known: Set<String>, constants: [String: NDArray]) -> Bool {
    let inputs = node.inputs.filter { !$0.isEmpty }
    func fixed(_ name: String) -> Bool { known.contains(name) || constants[name] != nil }
    if shapesFromShapes.contains(node.opType) { return !inputs.isEmpty && inputs.allSatisfy(fixed) }
    guard shapesFromFirst.contains(node.opType), let first = inputs.first, fixed(first) else { return false }
    return node.inputs.dropFirst().allSatisfy { $0.isEmpty || constants[$0] != nil }
  }

  /// Every value's shape from a shapes-only run on zeros of the graph
  /// inputs' fixed shapes, read from `inputs` (rejected at run time when a given
  /// input differs); a value's shape holds for every run where
  /// `staticShapes` says so. None when an input is not fixed, the inputs
  /// are larger than `tracedElements` or the run fails.
  static func tracedShapes(_ graph: Graph, inputs fixed: [String: [Int]]) -> [String: [Int]] {
    var inputs: [String: NDArray] = [:]
    var elements = 0
    for input in graph.inputs where graph.initializers[input.name] == nil {
      guard let shape = fixed[input.name] else { return [:] }
      elements += shape.reduce(1, *)
      guard elements <= tracedElements else { return [:] }
      inputs[input.name] = NDArray(shape: shape, floats: Tensor(shape: shape)).cast(to: input.dtype ?? .float32)
    }
    guard let executor = try? Executor(graph: graph, threads: 1, optimize: false),
      let trace = try? executor.trace(inputs)
    else { return [:] }
    var shapes: [String: [Int]] = [:]
    for step in trace.steps {
      for (name, shape) in zip(step.node.outputs, step.outputShapes) where !name.isEmpty { shapes[name] = shape }
    }
    return shapes
  }

  /// `node`'s outputs from constant inputs (a Shape of a fixed input from
  /// the declared shape alone).
  private static func evaluate(_ node: Node, _ constants: [String: NDArray], _ fixed: [String: [Int]], _ opset: Int)
    -> [String: NDArray]?
  {
    var node = node
    var used: [String: NDArray] = [:]
    if node.opType == "Shape", let shape = fixed[node.inputs[0]] {
      func attribute(_ name: String) -> Int? { if case .int(let v)? = node.attributes[name] { v } else { nil } }
      return [node.outputs[0]: ShapeOps.shapeValue(shape, start: attribute("start") ?? 0, end: attribute("end") ?? shape.count)]
    }
    for name in node.inputs where !name.isEmpty { used[name] = constants[name] }
    node.name = node.name.isEmpty ? "fold" : node.name
    let graph = Graph(nodes: [node], initializers: used, inputs: [], outputs: node.outputs, opset: opset)
    guard let executor = try? Executor(graph: graph, threads: 1, optimize: false),
      let values = try? executor.run([:]), values.count == node.outputs.count
    else { return nil }
    return values
  }

  /// A Mul by a constant scalar whose result only a MatMul reads (on
  /// either side) moves into the MatMul as a scale of its product, applied
  /// to the float32 sums: MatMul(a x, b y) = a b MatMul(x, y). That is
  /// ONNX Runtime's MatMulScaleFusion, so attention scores round as its
  /// do. Only for a MatMul of two
  /// inputs with no steps yet (a bias would be scaled too).
  static func foldMatMulScales(_ graph: Graph, keep: [String]) -> Graph {
    guard has("MatMul", in: graph) else { return graph }
    let consumers = readers(of: graph.nodes, outputs: keep)
    let producer = producers(of: graph.nodes)
    var nodes: [Node?] = graph.nodes
    for (index, matmul) in graph.nodes.enumerated() where matmul.opType == "MatMul" && matmul.inputs.count == 2
      && matmul.inputs[0] != matmul.inputs[1] && matmul.attributes[Pointwise.epilogueAttribute] == nil {
      var fused = matmul, scale: Float = 1
      for side in 0..<2 {
        // The Mul as the step it amounts to: a x, with x its varying input.
        guard let from = producer[matmul.inputs[side]], let mul = nodes[from], mul.opType == "Mul",
          consumers[matmul.inputs[side]] == 1, let (x, step, rank) = pointwiseStep(mul, graph), rank <= 1
        else { continue }
        scale *= step.a
        fused.inputs[side] = x
        nodes[from] = nil
      }
      guard fused.inputs != matmul.inputs else { continue }
      fused.attributes[Pointwise.epilogueAttribute] = .floats(Pointwise.encode([atr_pointwise_step(op: ATR_PW_AFFINE, a: scale, b: 0)]))
      nodes[index] = fused
    }
    return dropping(nodes, from: graph)
  }

  /// MatMul(A, B) with B a constant matrix (n columns), read only by
  /// Add(., bias) with a constant bias of n values along the last axis,
  /// becomes MatMul(A, B, bias): the bias seeds the product's accumulators
  /// (a third input ONNX's MatMul does not have, so only this rewrite makes it).
  /// Not where `foldMatMulScales` left a scale in the epilogue: the scale
  /// would apply to the bias too.
  static func foldMatMulBias(_ graph: Graph, keep: [String]) -> Graph {
    guard has("MatMul", in: graph) else { return graph }
    let consumers = readers(of: graph.nodes, outputs: keep)
    let reader = lastReaders(of: graph.nodes)
    var nodes: [Node?] = graph.nodes
    for (index, matmul) in graph.nodes.enumerated() where matmul.opType == "MatMul" && matmul.inputs.count == 2
      && matmul.attributes[Pointwise.epilogueAttribute] == nil {
      guard let b = graph.initializers[matmul.inputs[1]], b.rank == 2, b.isFloat, graph.initializers[matmul.inputs[0]] == nil,
        consumers[matmul.outputs[0]] == 1, let addIndex = reader[matmul.outputs[0]],
        case let add = graph.nodes[addIndex], add.opType == "Add", add.inputs.count == 2, add.outputs.count == 1
      else { continue }
      let other = add.inputs[0] == matmul.outputs[0] ? add.inputs[1] : add.inputs[0]
      guard let bias = graph.initializers[other], bias.isFloat, bias.count == b.shape[1], bias.shape.last == b.shape[1],
        bias.rank <= 2
      else { continue }
      var fused = matmul
      fused.inputs.append(other)
      fused.outputs = add.outputs
      nodes[index] = fused
      nodes[addIndex] = nil
    }
    return dropping(nodes, from: graph)
  }

  /// Reshape(x, [N, g, C/g, H, W]) -> Transpose(0, 2, 1, 3, 4) ->
  /// Reshape([N, C, H, W]), each read only by the next (ShuffleNet's channel
  /// shuffle), becomes one `_ChannelShuffle` node that permutes channels in
  /// the layout the data has.
  static func recognizeChannelShuffle(_ graph: Graph, keep: [String]) -> Graph {
    guard has("Reshape", in: graph) else { return graph }
    let consumers = readers(of: graph.nodes, outputs: keep)
    let reader = lastReaders(of: graph.nodes)
    var nodes: [Node?] = graph.nodes
    func constantShape(_ node: Node) -> [Int]? {
      guard node.inputs.count == 2, let shape = graph.initializers[node.inputs[1]], !shape.isFloat else { return nil }
      return shape.intValues()
    }
    for (first, reshape) in graph.nodes.enumerated() where reshape.opType == "Reshape" && graph.opset >= 5 {
      guard let split = constantShape(reshape), split.count == 5, split.allSatisfy({ $0 > 0 }),
        consumers[reshape.outputs[0]] == 1, let second = reader[reshape.outputs[0]],
        case let transpose = graph.nodes[second], transpose.opType == "Transpose",
        case .ints([0, 2, 1, 3, 4])? = transpose.attributes["perm"],
        consumers[transpose.outputs[0]] == 1, let third = reader[transpose.outputs[0]],
        case let merge = graph.nodes[third], merge.opType == "Reshape", let merged = constantShape(merge),
        merged == [split[0], split[1] * split[2], split[3], split[4]]
      else { continue }
      nodes[first] = nil
      nodes[second] = nil
      nodes[third] = Node(name: merge.name, opType: ChannelShuffle.opType, inputs: [reshape.inputs[0]], outputs: merge.outputs,
                          attributes: [ChannelShuffle.splitAttribute: .ints(split)])
    }
    return dropping(nodes, from: graph)
  }

  /// A channel shuffle of two groups whose input is a Concat along
  /// channels of two values, read by nothing else, becomes one
  /// `_InterleaveChannels` node; a part that is a Slice of one run of
  /// channels (constant bounds, step 1) read only by the Concat is read
  /// where it is (ShuffleNet's units: Slice, Concat and shuffle, three
  /// copies of the map, in one pass).
  static func fuseShuffledConcat(_ graph: Graph, keep: [String]) -> Graph {
    guard has(ChannelShuffle.opType, in: graph) else { return graph }
    let consumers = readers(of: graph.nodes, outputs: keep)
    let producer = producers(of: graph.nodes)
    // (data, first channel, end) of a Slice of channels alone.
    func channelRun(_ node: Node) -> (String, Int, Int)? {
      guard node.opType == "Slice", graph.opset >= 10, node.inputs.count >= 4, node.outputs.count == 1 else { return nil }
      func constant(_ k: Int) -> [Int]? {
        guard k < node.inputs.count, let value = graph.initializers[node.inputs[k]], !value.isFloat else { return nil }
        return value.intValues()
      }
      guard let starts = constant(1), let ends = constant(2), let axes = constant(3), axes == [1], starts.count == 1,
        ends.count == 1, node.inputs.count == 4 || constant(4) == [1], starts[0] >= 0, ends[0] > starts[0]
      else { return nil }
      return (node.inputs[0], starts[0], ends[0])
    }
    var nodes: [Node?] = graph.nodes
    for (index, shuffle) in graph.nodes.enumerated() where shuffle.opType == ChannelShuffle.opType {
      guard case .ints(let split)? = shuffle.attributes[ChannelShuffle.splitAttribute], split.count == 5, split[1] == 2,
        let p = producer[shuffle.inputs[0]], case let concat = graph.nodes[p], concat.opType == "Concat",
        concat.inputs.count == 2, concat.outputs.count == 1, consumers[concat.outputs[0]] == 1
      else { continue }
      guard case .int(let axis)? = concat.attributes["axis"], axis == 1 || axis == -3 else { continue }
      let width = split[2]
      var inputs = concat.inputs, starts = [InterleaveChannels.wholeInput, InterleaveChannels.wholeInput]
      for k in 0..<2 {
        guard inputs[0] != inputs[1], let q = producer[inputs[k]], let (data, start, end) = channelRun(graph.nodes[q]),
          end - start == width, consumers[inputs[k]] == 1
        else { continue }
        nodes[q] = nil
        (inputs[k], starts[k]) = (data, start)
      }
      nodes[p] = nil
      nodes[index] = Node(name: shuffle.name, opType: InterleaveChannels.opType, inputs: inputs, outputs: shuffle.outputs,
                          attributes: [InterleaveChannels.widthAttribute: .int(width),
                                       InterleaveChannels.startsAttribute: .ints(starts)])
    }
    return dropping(nodes, from: graph)
  }

  /// The exported forms of activations (HardSwish, SiLU, Mish, GELU)
  /// become one node each, in turn.
  static func recognizeActivations(_ graph: Graph, keep: [String]) -> Graph {
    var rewritten = graph
    for (anchor, recognize) in [("Add", recognizeHardSwish), ("Sigmoid", recognizeSiLU), ("Softplus", recognizeMish),
                                ("Div", recognizeGELU)] where has(anchor, in: rewritten) {
      rewritten.nodes = recognize(rewritten, readers(of: rewritten.nodes, outputs: keep)).compactMap { $0 }
    }
    return rewritten
  }

  static func fusePointwise(_ graph: Graph, keep: [String]) -> Graph {
    // Again, for forms that the folds before made whole.
    let rewritten = recognizeActivations(graph, keep: keep)
    var changed = rewritten.nodes.count != graph.nodes.count
    var nodes: [Node?] = rewritten.nodes
    let consumers = readers(of: rewritten.nodes, outputs: keep)
    var producer = producers(of: rewritten.nodes)

    for index in nodes.indices {
      guard let node = nodes[index], let (input, step, rank) = pointwiseStep(node, graph) else { continue }
      if let from = producer[input], var previous = nodes[from], consumers[input] == 1, previous.outputs.count == 1 {
        // A Conv's output has rank 4, so a constant of rank up to 4 leaves
        // its shape alone; a BatchNormalization's, MatMul's or Add's may
        // have any rank. A MatMul hosts steps once it has its bias (constant
        // weights); an Add of two values (a residual sum) runs them on each
        // chunk of its sum while in cache, instead of a pass of their own.
        let host = (previous.opType == "Conv" && rank <= 4) || (previous.opType == "BatchNormalization" && rank == 0)
          || (previous.opType == "MatMul" && previous.inputs.count == 3 && rank == 0)
          || (previous.opType == "Add" && previous.inputs.count == 2 && rank == 0)
        let attribute = host ? Pointwise.epilogueAttribute
          : previous.opType == Pointwise.opType ? Pointwise.stepsAttribute : nil
        if let attribute {
          if case .int(let old)? = previous.attributes[Pointwise.rankAttribute], rank > old {
            previous.attributes[Pointwise.rankAttribute] = .int(rank)
          }
          var steps: [Float] = []
          if case .floats(let old)? = previous.attributes[attribute] { steps = old }
          previous.attributes[attribute] = .floats(Pointwise.appending(step, to: steps))
          previous.outputs = node.outputs
          nodes[from] = previous
          nodes[index] = nil
          producer[node.outputs[0]] = from
          changed = true
          continue
        }
      }
      nodes[index] = Node(name: node.name, opType: Pointwise.opType, inputs: [input], outputs: node.outputs,
                          attributes: [Pointwise.stepsAttribute: .floats(Pointwise.encode([step])),
                                       Pointwise.rankAttribute: .int(rank)])
      changed = true
    }
    guard changed else { return graph }
    return Graph(nodes: nodes.compactMap { $0 }, initializers: graph.initializers, inputs: graph.inputs,
                 outputs: graph.outputs, opset: graph.opset)
  }

  /// A Conv whose epilogue starts with an affine step a x + b (a scalar
  /// Mul and Add after it, as PaddleOCR's learnable affine blocks export)
  /// takes it into its constant weights and bias: W' = a W, bias' = a bias + b.
  static func foldLeadingAffine(_ graph: Graph) -> Graph {
    var nodes = graph.nodes, initializers = graph.initializers, changed = false
    for (index, conv) in graph.nodes.enumerated() where conv.opType == "Conv" && conv.inputs.count >= 2 {
      guard case .floats(let encoded)? = conv.attributes[Pointwise.epilogueAttribute],
        let steps = try? Pointwise.decode(encoded), let first = steps.first, first.op == ATR_PW_AFFINE
      else { continue }
      // Named after the Conv's output, which ONNX makes unique.
      guard var folded = rescaled(conv, scale: { _ in first.a }, shift: { _ in first.b },
                                  named: conv.outputs[0] + "\u{0}affine", &initializers)
      else { continue }
      folded.attributes[Pointwise.epilogueAttribute] = steps.count > 1 ? .floats(Pointwise.encode(Array(steps.dropFirst()))) : nil
      nodes[index] = folded
      changed = true
    }
    guard changed else { return graph }
    return Graph(nodes: nodes, initializers: initializers, inputs: graph.inputs, outputs: graph.outputs, opset: graph.opset)
  }

  /// `conv` with output channel co scaled by `scale(co)` and shifted by
  /// `shift(co)`: W' = scale W, bias' = scale bias + shift, stored as new
  /// initializers named `name` + ".weight" and ".bias"; nil when its
  /// weights or bias are not float constants of matching sizes.
  static func rescaled(_ conv: Node, scale: (Int) -> Float, shift: (Int) -> Float, named name: String,
                       _ initializers: inout [String: NDArray]) -> Node? {
    guard conv.inputs.count >= 2, let w = initializers[conv.inputs[1]], w.isFloat, w.rank >= 3 else { return nil }
    let cout = w.shape[0]
    let hasBias = conv.inputs.count > 2 && !conv.inputs[2].isEmpty
    let oldBias = hasBias ? initializers[conv.inputs[2]]?.floatValues() : [Float](repeating: 0, count: cout)
    guard let oldBias, oldBias.count == cout else { return nil }
    var weights = w.floatValues()
    let perFilter = weights.count / cout
    for co in 0..<cout {
      let a = scale(co)
      for i in 0..<perFilter { weights[co * perFilter + i] *= a }
    }
    initializers[name + ".weight"] = NDArray(shape: w.shape, floats: weights)
    initializers[name + ".bias"] = NDArray(shape: [cout], floats: (0..<cout).map { oldBias[$0] * scale($0) + shift($0) })
    var result = conv
    result.inputs = [conv.inputs[0], name + ".weight", name + ".bias"]
    return result
  }

  /// `graph` without the nodes set to nil (itself when there are none).
  static func dropping(_ nodes: [Node?], from graph: Graph) -> Graph {
    guard nodes.contains(where: { $0 == nil }) else { return graph }
    var result = graph
    result.nodes = nodes.compactMap { $0 }
    return result
  }

  /// A Concat along channels of strided Slices of one (N, C, H, W) value,
  /// each part a chain of Slices that together take every `s`-th row and
  /// column from offsets below `s` to the end (YOLO's Focus block), becomes
  /// one `_StridedGather` node, when the Slices feed nothing else.
  static func recognizeStridedGather(_ graph: Graph, keep: [String]) -> Graph {
    guard has("Concat", in: graph) else { return graph }
    let consumers = readers(of: graph.nodes, outputs: keep)
    let producer = producers(of: graph.nodes)
    // (start, step) per spatial axis of a Slice with constant arguments
    // that runs each axis it slices to the end.
    func spatialSlice(_ node: Node) -> [Int: (start: Int, step: Int)]? {
      guard node.opType == "Slice", graph.opset >= 10, node.inputs.count >= 4, node.outputs.count == 1 else { return nil }
      func constant(_ k: Int) -> [Int]? {
        guard k < node.inputs.count, let value = graph.initializers[node.inputs[k]], !value.isFloat else { return nil }
        return value.intValues()
      }
      guard let starts = constant(1), let ends = constant(2), let axes = constant(3) else { return nil }
      let steps = node.inputs.count > 4 ? constant(4) : [Int](repeating: 1, count: axes.count)
      guard let steps, starts.count == axes.count, ends.count == axes.count, steps.count == axes.count else { return nil }
      var spec: [Int: (start: Int, step: Int)] = [:]
      for k in axes.indices {
        guard axes[k] == 2 || axes[k] == 3, spec[axes[k]] == nil, steps[k] >= 1, starts[k] >= 0, starts[k] < steps[k],
          ends[k] >= 1 << 30 else { return nil }
        spec[axes[k]] = (starts[k], steps[k])
      }
      return spec
    }
    var nodes: [Node?] = graph.nodes
    for (index, concat) in graph.nodes.enumerated() where concat.opType == "Concat" && concat.inputs.count >= 2 {
      guard case .int(1)? = concat.attributes["axis"] else { continue }
      var source: String? = nil, stride = 0, offsets: [Int] = [], slices = Set<Int>(), matched = true
      for part in concat.inputs {
        // Walk the chain of Slices back to the value it samples.
        var value = part, spec: [Int: (start: Int, step: Int)] = [:]
        while let p = producer[value], let slice = spatialSlice(graph.nodes[p]),
          slice.keys.allSatisfy({ spec[$0] == nil })
        {
          spec.merge(slice) { a, _ in a }
          slices.insert(p)
          value = graph.nodes[p].inputs[0]
        }
        guard let row = spec[2], let column = spec[3], row.step == column.step, row.step >= 2,
          stride == 0 || stride == row.step, source == nil || source == value
        else { matched = false; break }
        (source, stride) = (value, row.step)
        offsets += [row.start, column.start]
      }
      guard matched, let source else { continue }
      // Every Slice must be read only inside the pattern.
      let inside = slices.map { graph.nodes[$0] } + [concat]
      guard slices.allSatisfy({ p in
        let output = graph.nodes[p].outputs[0]
        return consumers[output] == inside.reduce(0) { $0 + $1.inputs.filter { $0 == output }.count }
      }) else { continue }
      for p in slices { nodes[p] = nil }
      nodes[index] = Node(name: concat.name, opType: StridedGather.opType, inputs: [source], outputs: concat.outputs,
                          attributes: [StridedGather.strideAttribute: .int(stride),
                                       StridedGather.offsetsAttribute: .ints(offsets)])
    }
    return dropping(nodes, from: graph)
  }

  /// A depthwise convolution with constant weights and bias, with the 1x1
  /// convolution that alone feeds it (an inverted-residual block's
  /// expansion), the 1x1 convolution that alone reads it (the block's
  /// projection), or both, becomes one `_DepthwiseBlock` node in the last
  /// one's place, unless the block would read a graph input. The 1x1
  /// convolutions have one group, stride 1, no padding, and constant
  /// weights and bias.
  static func fuseDepthwiseBlocks(_ graph: Graph, keep: [String]) -> Graph {
    guard has("Conv", in: graph) else { return graph }
    let consumers = readers(of: graph.nodes, outputs: keep)
    let reader = lastReaders(of: graph.nodes)
    let producer = producers(of: graph.nodes)
    /// The shape of a float constant at input k of `node` of rank 4.
    func weights(_ node: Node, _ k: Int) -> [Int]? {
      guard k < node.inputs.count, let value = graph.initializers[node.inputs[k]], value.isFloat, value.rank == 4 else {
        return nil
      }
      return value.shape
    }
    /// A Conv whose weights and bias (absent or constant) are its only
    /// other inputs.
    func constantConv(_ node: Node) -> Bool {
      node.opType == "Conv" && node.outputs.count == 1 && (2...3).contains(node.inputs.count)
        && (node.inputs.count < 3 || node.inputs[2].isEmpty || graph.initializers[node.inputs[2]]?.isFloat == true)
    }
    /// Input k of `node`, "" when it has none.
    func input(_ node: Node, _ k: Int) -> String { k < node.inputs.count ? node.inputs[k] : "" }
    /// A 1x1 convolution with constant weights and bias: C.
    func pointwiseChannels(_ node: Node) -> Int? { constantConv(node) ? pointwiseOutputs(node, in: graph) : nil }
    let graphInputs = Set(graph.inputs.map(\.name))
    var nodes: [Node?] = graph.nodes
    var taken = Set<Int>()
    for (index, depthwise) in graph.nodes.enumerated() where constantConv(depthwise) && !taken.contains(index) {
      guard let wd = weights(depthwise, 1), wd[1] == 1, case .int(wd[0])? = depthwise.attributes["group"] else { continue }
      var expandIndex: Int? = nil, projectIndex: Int? = nil
      if let from = producer[depthwise.inputs[0]], !taken.contains(from), consumers[depthwise.inputs[0]] == 1,
        pointwiseChannels(graph.nodes[from]) == wd[0], graph.initializers[graph.nodes[from].inputs[0]] == nil
      {
        expandIndex = from
      }
      if let to = soleReader(of: depthwise.outputs[0], op: "Conv", graph, consumers, reader),
        graph.nodes[to].inputs[0] == depthwise.outputs[0], pointwiseChannels(graph.nodes[to]) != nil,
        weights(graph.nodes[to], 1)?[1] == wd[0]
      {
        projectIndex = to
      }
      let expand = expandIndex.map { graph.nodes[$0] }, project = projectIndex.map { graph.nodes[$0] }
      // A graph input comes as planes, which the convolutions on their own
      // read as they are and the block would first turn channels-last.
      guard expandIndex != nil || projectIndex != nil, !graphInputs.contains((expand ?? depthwise).inputs[0]) else { continue }
      var attributes = depthwise.attributes
      attributes[DepthwiseBlock.expandStepsAttribute] = expand?.attributes[Pointwise.epilogueAttribute]
      attributes[DepthwiseBlock.projectStepsAttribute] = project?.attributes[Pointwise.epilogueAttribute]
      let block = Node(name: depthwise.name, opType: DepthwiseBlock.opType,
                       inputs: [expand?.inputs[0] ?? depthwise.inputs[0], depthwise.inputs[1], input(depthwise, 2),
                                expand.map { $0.inputs[1] } ?? "", expand.map { input($0, 2) } ?? "",
                                project.map { $0.inputs[1] } ?? "", project.map { input($0, 2) } ?? ""],
                       outputs: (project ?? depthwise).outputs, attributes: attributes)
      for fused in [expandIndex, index, projectIndex].compactMap({ $0 }) { nodes[fused] = nil }
      nodes[projectIndex ?? index] = block
      taken.formUnion([expandIndex, index, projectIndex].compactMap { $0 })
    }
    return dropping(nodes, from: graph)
  }

  /// Whether `node` pads nothing: its pads absent or zeros, its auto_pad
  /// absent, NOTSET or VALID.
  static func unpadded(_ node: Node) -> Bool {
    if case .ints(let pads)? = node.attributes["pads"], pads.contains(where: { $0 != 0 }) { return false }
    switch node.attributes["auto_pad"] {
    case nil, .string("NOTSET")?, .string("VALID")?: return true
    default: return false
    }
  }

  /// Whether `node` is a Conv that makes each pixel from that pixel's
  /// channels alone: constant float (C, Cin/group, 1, 1) weights, stride
  /// 1, no padding.
  static func perPixel(_ node: Node, in graph: Graph) -> Bool {
    guard node.opType == "Conv", node.inputs.count > 1, let w = graph.initializers[node.inputs[1]], w.isFloat, w.rank == 4
    else { return false }
    return w.shape[2] == 1 && w.shape[3] == 1 && unit(node, "strides") && unpadded(node)
  }

  /// A Conv that multiplies each pixel's channels by constant (C, Cin, 1,
  /// 1) float weights (stride 1, no padding, one group): C, else nil. The
  /// shape both a depthwise block's 1x1 convolutions and a product that
  /// adds a residual in place take.
  static func pointwiseOutputs(_ node: Node, in graph: Graph) -> Int? {
    guard perPixel(node, in: graph), unit(node, "group") else { return nil }
    return graph.initializers[node.inputs[1]]?.shape[0]
  }

  /// Whether the graph has a node of one of `ops`: a rewrite anchored on
  /// such a node returns a graph without one as it is, before hashing
  /// every value's name into its tables of readers and producers (about
  /// 0.1 ms a table on a graph of 200 nodes, 22 tables; 3.7 ms of
  /// RegNet-Y-400MF's rewrites, AMD EPYC family 25).
  static func has(_ ops: String..., in graph: Graph) -> Bool { graph.nodes.contains { ops.contains($0.opType) } }

  /// The node that makes each value, by index.
  static func producers(of nodes: [Node]) -> [String: Int] {
    var producer: [String: Int] = [:]
    producer.reserveCapacity(nodes.count)
    for (index, node) in nodes.enumerated() { for output in node.outputs { producer[output] = index } }
    return producer
  }

  /// The last node that reads each value, by index.
  static func lastReaders(of nodes: [Node]) -> [String: Int] {
    var reader: [String: Int] = [:]
    reader.reserveCapacity(3 * nodes.count)
    for (index, node) in nodes.enumerated() { for input in node.inputs where !input.isEmpty { reader[input] = index } }
    return reader
  }

  /// The node that alone reads `name` (`reader` from `lastReaders`), when
  /// it is an `op` with one output.
  static func soleReader(of name: String, op: String, _ graph: Graph, _ consumers: [String: Int], _ reader: [String: Int])
    -> Int?
  {
    guard consumers[name] == 1, let index = reader[name], graph.nodes[index].opType == op,
      graph.nodes[index].outputs.count == 1 else { return nil }
    return index
  }

  /// How many times each value is read: by the nodes' inputs, and once
  /// more if it is a graph output.
  static func readers(of nodes: [Node], outputs: [String]) -> [String: Int] {
    var count: [String: Int] = [:]
    count.reserveCapacity(3 * nodes.count + outputs.count)
    for node in nodes { for input in node.inputs where !input.isEmpty { count[input, default: 0] += 1 } }
    for output in outputs { count[output, default: 0] += 1 }
    return count
  }

  /// A float scalar constant: its value and rank.
  private static func scalar(_ name: String, _ graph: Graph) -> (value: Float, rank: Int)? {
    guard let value = graph.initializers[name], value.isFloat, value.count == 1 else { return nil }
    return (value.floatValues()[0], value.rank)
  }

  /// The step a node amounts to, with its varying input and the rank of its
  /// constant operand (0 if none), or nil when it is not such an op.
  private static func pointwiseStep(_ node: Node, _ graph: Graph) -> (String, atr_pointwise_step, Int)? {
    guard node.outputs.count == 1, let input = node.inputs.first, !input.isEmpty,
      graph.initializers[input] == nil || node.inputs.count == 2
    else { return nil }
    func step(_ op: atr_pointwise_op, _ a: Float = 0, _ b: Float = 0) -> atr_pointwise_step {
      atr_pointwise_step(op: op, a: a, b: b)
    }
    func float(_ name: String, _ fallback: Float) -> Float? {
      switch node.attributes[name] {
      case nil: fallback
      case .float(let v)?: v
      default: nil
      }
    }
    switch node.opType {
    case "Relu" where node.inputs.count == 1: return (input, step(ATR_PW_RELU), 0)
    case "Sigmoid" where node.inputs.count == 1: return (input, step(ATR_PW_SIGMOID), 0)
    case "HardSwish" where node.inputs.count == 1: return (input, step(ATR_PW_HARDSWISH), 0)
    case "Mish" where node.inputs.count == 1: return (input, step(ATR_PW_MISH), 0)
    case "Tanh" where node.inputs.count == 1: return (input, step(ATR_PW_TANH), 0)
    case "Exp" where node.inputs.count == 1: return (input, step(ATR_PW_EXP), 0)
    case "Gelu" where node.inputs.count == 1:
      switch node.attributes["approximate"] {
      case nil, .string("none")?: return (input, step(ATR_PW_GELU), 0)
      case .string("tanh")?: return (input, step(ATR_PW_GELU_TANH), 0)
      default: return nil
      }
    case "Swish" where node.inputs.count == 1:
      return float("alpha", 1).flatMap { $0 == 1 ? (input, step(ATR_PW_SILU), 0) : nil }
    case "LeakyRelu" where node.inputs.count == 1:
      return float("alpha", 0.01).map { (input, step(ATR_PW_LEAKYRELU, $0), 0) }
    case "HardSigmoid" where node.inputs.count == 1:
      guard let alpha = float("alpha", 0.2), let beta = float("beta", 0.5) else { return nil }
      return (input, step(ATR_PW_HARDSIGMOID, alpha, beta), 0)
    case "Clip":
      if graph.opset < 11 {
        guard node.inputs.count == 1, let low = float("min", -.infinity), let high = float("max", .infinity) else { return nil }
        return (input, step(ATR_PW_CLIP, low, high), 0)
      }
      var bounds: [Float] = [-.infinity, .infinity]
      for k in 1..<min(3, node.inputs.count) where !node.inputs[k].isEmpty {
        guard let bound = scalar(node.inputs[k], graph) else { return nil }
        bounds[k - 1] = bound.value
      }
      guard node.inputs.count <= 3 else { return nil }
      return (input, step(ATR_PW_CLIP, bounds[0], bounds[1]), 0)
    case "Add", "Sub", "Mul", "Div":
      guard node.inputs.count == 2 else { return nil }
      let (a, b) = (node.inputs[0], node.inputs[1])
      if let k = scalar(b, graph), graph.initializers[a] == nil {
        switch node.opType {
        case "Add": return (a, step(ATR_PW_AFFINE, 1, k.value), k.rank)
        case "Sub": return (a, step(ATR_PW_AFFINE, 1, -k.value), k.rank)
        case "Mul": return (a, step(ATR_PW_AFFINE, k.value, 0), k.rank)
        default: return k.value == 0 ? nil : (a, step(ATR_PW_AFFINE, 1 / k.value, 0), k.rank)
        }
      }
      if let k = scalar(a, graph), graph.initializers[b] == nil {
        switch node.opType {
        case "Add": return (b, step(ATR_PW_AFFINE, 1, k.value), k.rank)
        case "Sub": return (b, step(ATR_PW_AFFINE, -1, k.value), k.rank)
        case "Mul": return (b, step(ATR_PW_AFFINE, k.value, 0), k.rank)
        default: return nil
        }
      }
      return nil
    default: return nil
    }
  }

  /// Replaces Sigmoid(x) read only by Mul(x, Sigmoid(x)), the exported form
  /// of SiLU, with one Swish node (ONNX's x * sigmoid(alpha x), alpha 1)
  /// in the Mul's place; the Sigmoid becomes nil.
  private static func recognizeSiLU(_ graph: Graph, consumers: [String: Int]) -> [Node?] {
    var nodes: [Node?] = graph.nodes
    let reader = lastReaders(of: graph.nodes)
    for (sigmoidIndex, sigmoid) in graph.nodes.enumerated() where sigmoid.opType == "Sigmoid" && sigmoid.inputs.count == 1 {
      let x = sigmoid.inputs[0], gate = sigmoid.outputs[0]
      guard graph.initializers[x] == nil, consumers[gate] == 1, let mulIndex = reader[gate], mulIndex > sigmoidIndex,
        case let mul = graph.nodes[mulIndex], mul.opType == "Mul", mul.outputs.count == 1,
        mul.inputs.count == 2, Set(mul.inputs) == [x, gate]
      else { continue }
      nodes[sigmoidIndex] = nil
      nodes[mulIndex] = Node(name: mul.name, opType: "Swish", inputs: [x], outputs: mul.outputs)
    }
    return nodes
  }

  /// Replaces Softplus(x) -> Tanh -> Mul(x, .), each read only by the
  /// next, the exported form of Mish, with one Mish node in the Mul's
  /// place; the others become nil.
  private static func recognizeMish(_ graph: Graph, consumers: [String: Int]) -> [Node?] {
    var nodes: [Node?] = graph.nodes
    let reader = lastReaders(of: graph.nodes)
    for (softplusIndex, softplus) in graph.nodes.enumerated() where softplus.opType == "Softplus" && softplus.inputs.count == 1 {
      let x = softplus.inputs[0]
      guard graph.initializers[x] == nil,
        let tanhIndex = soleReader(of: softplus.outputs[0], op: "Tanh", graph, consumers, reader),
        let mulIndex = soleReader(of: graph.nodes[tanhIndex].outputs[0], op: "Mul", graph, consumers, reader),
        Set(graph.nodes[mulIndex].inputs) == [x, graph.nodes[tanhIndex].outputs[0]]
      else { continue }
      nodes[softplusIndex] = nil
      nodes[tanhIndex] = nil
      let mul = graph.nodes[mulIndex]
      nodes[mulIndex] = Node(name: mul.name, opType: "Mish", inputs: [x], outputs: mul.outputs)
    }
    return nodes
  }

  /// Replaces the exported form of exact GELU, Div(x, sqrt 2) -> Erf ->
  /// Add(., 1) -> Mul(x, .) -> Mul(., 0.5), each read only by the next,
  /// with one Gelu node in the last one's place; the others become nil.
  private static func recognizeGELU(_ graph: Graph, consumers: [String: Int]) -> [Node?] {
    var nodes: [Node?] = graph.nodes
    let reader = lastReaders(of: graph.nodes)
    func only(_ name: String, _ op: String) -> Int? { soleReader(of: name, op: op, graph, consumers, reader) }
    func constant(_ node: Node, other name: String) -> Float? {
      guard node.inputs.count == 2, node.inputs.contains(name) else { return nil }
      return scalar(node.inputs[0] == name ? node.inputs[1] : node.inputs[0], graph)?.value
    }
    for (divIndex, div) in graph.nodes.enumerated() where div.opType == "Div" && div.inputs.count == 2 {
      let x = div.inputs[0]
      guard graph.initializers[x] == nil, let root = scalar(div.inputs[1], graph)?.value, Swift.abs(root - 1.41421356) < 1e-4,
        let erfIndex = only(div.outputs[0], "Erf"),
        let addIndex = only(graph.nodes[erfIndex].outputs[0], "Add"),
        constant(graph.nodes[addIndex], other: graph.nodes[erfIndex].outputs[0]) == 1,
        let mulIndex = only(graph.nodes[addIndex].outputs[0], "Mul"),
        Set(graph.nodes[mulIndex].inputs) == [x, graph.nodes[addIndex].outputs[0]],
        let halfIndex = only(graph.nodes[mulIndex].outputs[0], "Mul"),
        constant(graph.nodes[halfIndex], other: graph.nodes[mulIndex].outputs[0]) == 0.5
      else { continue }
      for index in [divIndex, erfIndex, addIndex, mulIndex] { nodes[index] = nil }
      let half = graph.nodes[halfIndex]
      nodes[halfIndex] = Node(name: half.name, opType: "Gelu", inputs: [x], outputs: half.outputs)
    }
    return nodes
  }

  /// Replaces Add(x, 3) -> Clip(0, 6) -> Mul(x, .) -> Div(., 6), each
  /// read only by the next, with one HardSwish node; the removed nodes
  /// become nil.
  private static func recognizeHardSwish(_ graph: Graph, consumers: [String: Int]) -> [Node?] {
    var nodes: [Node?] = graph.nodes
    let reader = lastReaders(of: graph.nodes)
    func only(_ name: String, _ op: String) -> Int? { soleReader(of: name, op: op, graph, consumers, reader) }
    for (addIndex, add) in graph.nodes.enumerated() where add.opType == "Add" && add.inputs.count == 2 {
      guard scalar(add.inputs[1], graph)?.value == 3, graph.initializers[add.inputs[0]] == nil else { continue }
      let x = add.inputs[0]
      guard let clipIndex = only(add.outputs[0], "Clip"),
        case let clip = graph.nodes[clipIndex],
        let (_, bounds, _) = pointwiseStep(clip, graph), bounds.a == 0, bounds.b == 6,
        let mulIndex = only(clip.outputs[0], "Mul"),
        Set(graph.nodes[mulIndex].inputs) == [x, clip.outputs[0]],
        let divIndex = only(graph.nodes[mulIndex].outputs[0], "Div"),
        case let div = graph.nodes[divIndex], div.inputs.count == 2, scalar(div.inputs[1], graph)?.value == 6
      else { continue }
      for index in [addIndex, clipIndex, mulIndex] { nodes[index] = nil }
      nodes[divIndex] = Node(name: div.name, opType: "HardSwish", inputs: [x], outputs: div.outputs)
    }
    return nodes
  }
}
