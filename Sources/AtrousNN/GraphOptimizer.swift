/// Rewrites that leave a graph's results unchanged (within float rounding)
/// and make it cheaper to run.
enum GraphOptimizer {
  /// Conv followed by BatchNormalization becomes one Conv with
  /// W' = W * a and b' = b * a + (B - mean * a), a = scale / sqrt(var + eps),
  /// when the convolution's output feeds only the BatchNormalization, the
  /// values they use are constants, and the BatchNormalization's extra
  /// (training) outputs are unused.
  static func foldBatchNorm(_ graph: Graph) -> Graph {
    var consumers: [String: Int] = [:]
    for node in graph.nodes { for input in node.inputs where !input.isEmpty { consumers[input, default: 0] += 1 } }
    for output in graph.outputs { consumers[output, default: 0] += 1 }
    var producer: [String: Int] = [:]
    for (index, node) in graph.nodes.enumerated() { for output in node.outputs { producer[output] = index } }

    var nodes = graph.nodes
    var initializers = graph.initializers
    var removed = Set<Int>()
    for (index, bn) in graph.nodes.enumerated() where bn.opType == "BatchNormalization" {
      guard bn.inputs.count == 5, bn.outputs.dropFirst().allSatisfy({ $0.isEmpty }),
        let convIndex = producer[bn.inputs[0]], graph.nodes[convIndex].opType == "Conv",
        consumers[bn.inputs[0]] == 1, !removed.contains(convIndex)
      else { continue }
      let conv = nodes[convIndex]
      guard conv.inputs.count >= 2, let w = initializers[conv.inputs[1]], w.rank == 4,
        let scale = initializers[bn.inputs[1]], let shift = initializers[bn.inputs[2]],
        let mean = initializers[bn.inputs[3]], let variance = initializers[bn.inputs[4]]
      else { continue }
      let cout = w.shape[0]
      let (s, b, m, v) = (scale.floatValues(), shift.floatValues(), mean.floatValues(), variance.floatValues())
      guard [s, b, m, v].allSatisfy({ $0.count == cout }) else { continue }
      var epsilon: Float = 1e-5
      if case .float(let e)? = bn.attributes["epsilon"] { epsilon = e }
      let a = (0..<cout).map { s[$0] / (v[$0] + epsilon).squareRoot() }
      let oldBias = conv.inputs.count > 2 && !conv.inputs[2].isEmpty ? initializers[conv.inputs[2]]?.floatValues() : nil
      guard conv.inputs.count <= 2 || conv.inputs[2].isEmpty || oldBias != nil else { continue }
      var weights = w.floatValues()
      let perFilter = weights.count / cout
      for co in 0..<cout { for i in 0..<perFilter { weights[co * perFilter + i] *= a[co] } }
      let bias = (0..<cout).map { co -> Float in
        let previous: Float = oldBias?[co] ?? 0
        return previous * a[co] + (b[co] - m[co] * a[co])
      }
      let weightName = bn.name + ".folded.weight", biasName = bn.name + ".folded.bias"
      initializers[weightName] = NDArray(shape: w.shape, floats: weights)
      initializers[biasName] = NDArray(shape: [cout], floats: bias)
      var fused = conv
      fused.inputs = [conv.inputs[0], weightName, biasName]
      fused.outputs = [bn.outputs[0]]
      nodes[convIndex] = fused
      removed.insert(index)
    }
    guard !removed.isEmpty else { return graph }
    let kept = nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    return Graph(nodes: kept, initializers: initializers, inputs: graph.inputs, outputs: graph.outputs, opset: graph.opset)
  }
}
