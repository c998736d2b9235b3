import AtrousCore

/// Builds small networks in Swift, in the vocabulary of the seed notes:
/// `conv2D(filters:kernel:stride:padding:dilation:)`, depthwise and
/// transposed convolutions, batch norm, ReLU, pooling, residual `add` and
/// `concat`. Every method returns the name of the value it makes, so
/// branches are written by passing names; `input` is the image.
///
///     var net = NetworkBuilder(channels: 3)
///     let a = net.conv2D(net.input, filters: 16, kernel: 3, padding: .same, name: "conv1")
///     let b = net.relu(a)
///     let graph = net.graph(outputs: [b])
///
/// Weights come from `weights` when it has an entry named `<layer>.weight`
/// (`<layer>.bias`, `<layer>.scale`, `.mean`, `.var`) and otherwise from a
/// deterministic initializer (He-uniform from a seeded generator).
public struct NetworkBuilder {
  public enum Padding: Sendable {
    /// Output size ceil(n / stride), odd extra padding at the end.
    case same
    case valid
    case explicit(Int)
  }

  public let input = "input"
  public private(set) var nodes: [Node] = []
  public private(set) var initializers: [String: NDArray] = [:]
  /// Channels of every value made so far (the input's included).
  public private(set) var channels: [String: Int]
  private var weights: [String: NDArray]
  private var generator: SeededRandom
  private var counter = 0

  public init(channels: Int, weights: [String: NDArray] = [:], seed: UInt64 = 0) {
    self.channels = ["input": channels]
    self.weights = weights
    generator = SeededRandom(seed: seed)
  }

  /// The graph, with `outputs` as its outputs (batch 1, NCHW input "input").
  public func graph(outputs: [String], height: Int? = nil, width: Int? = nil) -> Graph {
    Graph(nodes: nodes, initializers: initializers,
          inputs: [Graph.Input(name: input, shape: [1, channels[input]!, height, width])], outputs: outputs, opset: 17)
  }

  @discardableResult
  public mutating func conv2D(_ x: String, filters: Int, kernel: Int, stride: Int = 1, padding: Padding = .valid,
                              dilation: Int = 1, groups: Int = 1, bias: Bool = true, name: String? = nil) -> String {
    let name = self.name(name, "conv")
    let cin = channels[x]!
    precondition(cin % groups == 0 && filters % groups == 0, "\(cin) channels and \(filters) filters in \(groups) groups")
    let w = parameter("\(name).weight", shape: [filters, cin / groups, kernel, kernel], fanIn: cin / groups * kernel * kernel)
    var inputs = [x, w]
    if bias { inputs.append(parameter("\(name).bias", shape: [filters], fanIn: 0)) }
    var attributes: [String: Attribute] = [
      "kernel_shape": .ints([kernel, kernel]), "strides": .ints([stride, stride]),
      "dilations": .ints([dilation, dilation]), "group": .int(groups),
    ]
    switch padding {
    case .same: attributes["auto_pad"] = .string("SAME_UPPER")
    case .valid: attributes["pads"] = .ints([0, 0, 0, 0])
    case .explicit(let p): attributes["pads"] = .ints([p, p, p, p])
    }
    return add(Node(name: name, opType: "Conv", inputs: inputs, outputs: [name], attributes: attributes), channels: filters)
  }

  /// One filter per input channel (times `multiplier`).
  @discardableResult
  public mutating func depthwiseConv2D(_ x: String, kernel: Int, stride: Int = 1, padding: Padding = .same,
                                       dilation: Int = 1, multiplier: Int = 1, bias: Bool = true, name: String? = nil) -> String {
    let cin = channels[x]!
    return conv2D(x, filters: cin * multiplier, kernel: kernel, stride: stride, padding: padding, dilation: dilation,
                  groups: cin, bias: bias, name: self.name(name, "depthwise"))
  }

  @discardableResult
  public mutating func conv2DTranspose(_ x: String, filters: Int, kernel: Int, stride: Int = 1, padding: Int = 0,
                                       outputPadding: Int = 0, name: String? = nil) -> String {
    let name = self.name(name, "deconv")
    let cin = channels[x]!
    let w = parameter("\(name).weight", shape: [cin, filters, kernel, kernel], fanIn: cin * kernel * kernel)
    let b = parameter("\(name).bias", shape: [filters], fanIn: 0)
    return add(Node(name: name, opType: "ConvTranspose", inputs: [x, w, b], outputs: [name], attributes: [
      "kernel_shape": .ints([kernel, kernel]), "strides": .ints([stride, stride]),
      "pads": .ints([padding, padding, padding, padding]), "output_padding": .ints([outputPadding, outputPadding]),
    ]), channels: filters)
  }

  @discardableResult
  public mutating func batchNorm(_ x: String, epsilon: Float = 1e-5, name: String? = nil) -> String {
    let name = self.name(name, "bn")
    let c = channels[x]!
    let inputs = [parameter("\(name).scale", shape: [c], fanIn: 0, fill: 1), parameter("\(name).bias", shape: [c], fanIn: 0),
                  parameter("\(name).mean", shape: [c], fanIn: 0), parameter("\(name).var", shape: [c], fanIn: 0, fill: 1)]
    return add(Node(name: name, opType: "BatchNormalization", inputs: [x] + inputs, outputs: [name],
                    attributes: ["epsilon": .float(epsilon)]), channels: c)
  }

  @discardableResult
  public mutating func relu(_ x: String, name: String? = nil) -> String {
    let name = self.name(name, "relu")
    return add(Node(name: name, opType: "Relu", inputs: [x], outputs: [name]), channels: channels[x]!)
  }

  @discardableResult
  public mutating func maxPool(_ x: String, size: Int, stride: Int? = nil, padding: Int = 0, name: String? = nil) -> String {
    pool("MaxPool", x, size: size, stride: stride ?? size, padding: padding, name: self.name(name, "maxpool"))
  }

  @discardableResult
  public mutating func averagePool(_ x: String, size: Int, stride: Int? = nil, padding: Int = 0, name: String? = nil) -> String {
    pool("AveragePool", x, size: size, stride: stride ?? size, padding: padding, name: self.name(name, "avgpool"))
  }

  /// Residual connection: the element-wise sum.
  @discardableResult
  public mutating func add(_ a: String, _ b: String, name: String? = nil) -> String {
    let name = self.name(name, "add")
    return add(Node(name: name, opType: "Add", inputs: [a, b], outputs: [name]), channels: channels[a]!)
  }

  /// Concatenation along channels.
  @discardableResult
  public mutating func concat(_ values: [String], name: String? = nil) -> String {
    let name = self.name(name, "concat")
    return add(Node(name: name, opType: "Concat", inputs: values, outputs: [name], attributes: ["axis": .int(1)]),
               channels: values.map { channels[$0]! }.reduce(0, +))
  }

  /// Bilinear (half-pixel) or nearest upsampling by an integer factor.
  @discardableResult
  public mutating func upsample(_ x: String, factor: Int, bilinear: Bool = true, name: String? = nil) -> String {
    let name = self.name(name, "upsample")
    let scales = "\(name).scales"
    initializers[scales] = NDArray(shape: [4], floats: [1, 1, Float(factor), Float(factor)])
    return add(Node(name: name, opType: "Resize", inputs: [x, "", scales], outputs: [name],
                    attributes: ["mode": .string(bilinear ? "linear" : "nearest")]), channels: channels[x]!)
  }

  private mutating func pool(_ op: String, _ x: String, size: Int, stride: Int, padding: Int, name: String) -> String {
    add(Node(name: name, opType: op, inputs: [x], outputs: [name], attributes: [
      "kernel_shape": .ints([size, size]), "strides": .ints([stride, stride]), "pads": .ints([padding, padding, padding, padding]),
    ]), channels: channels[x]!)
  }

  private mutating func add(_ node: Node, channels c: Int) -> String {
    nodes.append(node)
    channels[node.outputs[0]] = c
    return node.outputs[0]
  }

  private mutating func name(_ given: String?, _ stem: String) -> String {
    if let given { return given }
    counter += 1
    return "\(stem)\(counter)"
  }

  /// A named weight: given, or drawn He-uniform (fanIn > 0) or constant.
  private mutating func parameter(_ name: String, shape: [Int], fanIn: Int, fill: Float = 0) -> String {
    if let given = weights[name] {
      precondition(given.shape == shape, "weight \(name) has shape \(given.shape), expected \(shape)")
      initializers[name] = given
      return name
    }
    let count = shape.reduce(1, *)
    let values: [Float]
    if fanIn > 0 {
      let bound = Float((6.0 / Double(fanIn)).squareRoot())
      values = (0..<count).map { _ in Float.random(in: -bound...bound, using: &generator) }
    } else {
      values = [Float](repeating: fill, count: count)
    }
    initializers[name] = NDArray(shape: shape, floats: values)
    return name
  }
}
