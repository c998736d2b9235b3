import FoundationEssentials
import AtrousCore
import _CKernels

/// Spatial geometry of a convolution or pooling window along one axis.
struct WindowAxis {
  var input: Int
  var kernel: Int
  var stride: Int
  var dilation: Int
  var padBegin: Int
  var padEnd: Int
  var output: Int

  var extent: Int { Window.extent(taps: kernel, dilation: dilation) }

  /// The input indices that outputs `outputs` read, inside the input.
  func reads(_ outputs: Range<Int>) -> Range<Int> {
    let lo = max(0, outputs.lowerBound * stride - padBegin)
    return lo..<max(lo, min(input, (outputs.upperBound - 1) * stride - padBegin + extent))
  }

  /// The window of outputs `outputs` alone, over the input indices they
  /// read (`reads`): its padding is what of their windows lies outside
  /// the input, so it makes the same values.
  func piece(_ outputs: Range<Int>) -> WindowAxis {
    let read = reads(outputs)
    var axis = self
    (axis.input, axis.output) = (read.count, outputs.count)
    axis.padBegin = read.lowerBound - (outputs.lowerBound * stride - padBegin)
    axis.padEnd = max(0, (outputs.count - 1) * stride + extent - axis.padBegin - axis.input)
    return axis
  }
}

extension atr_conv_geometry {
  /// The (height, width) window in the form the C kernels take, over
  /// pixels `pixelStride` floats apart (the channels of channels-last data).
  init(_ axes: [WindowAxis], pixelStride: Int) {
    self.init(input_h: axes[0].input, input_w: axes[1].input, output_h: axes[0].output, output_w: axes[1].output,
              kernel_h: axes[0].kernel, kernel_w: axes[1].kernel, stride_h: axes[0].stride, stride_w: axes[1].stride,
              dilation_h: axes[0].dilation, dilation_w: axes[1].dilation, pad_top: axes[0].padBegin,
              pad_left: axes[1].padBegin, pixel_stride: pixelStride)
  }
}

/// Reads kernel_shape, strides, dilations, pads and auto_pad for 2-D windows.
func windowAxes(_ c: OpContext, height: Int, width: Int, kernel: [Int], ceilMode: Bool = false) throws -> [WindowAxis] {
  guard kernel.count == 2 else { throw c.unsupported("kernel_shape", kernel) }
  return try windowAxes(c, sizes: [height, width], kernel: kernel, ceilMode: ceilMode)
}

/// Reads kernel_shape, strides, dilations, pads and auto_pad for windows
/// over the spatial axes of sizes `sizes`.
func windowAxes(_ c: OpContext, sizes: [Int], kernel: [Int], ceilMode: Bool = false) throws -> [WindowAxis] {
  let rank = sizes.count
  guard kernel.count == rank, kernel.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else {
    throw c.invalid("kernel_shape", "\(kernel) for \(rank) spatial axes")
  }
  let strides = try c.ints("strides") ?? [Int](repeating: 1, count: rank)
  let dilations = try c.ints("dilations") ?? [Int](repeating: 1, count: rank)
  guard strides.count == rank, strides.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else {
    throw c.invalid("strides", "\(strides): each must be at least 1")
  }
  guard dilations.count == rank, dilations.allSatisfy({ $0 >= 1 && $0 <= 1 << 20 }) else {
    throw c.invalid("dilations", "\(dilations): each must be at least 1")
  }
  let autoPad = try c.string("auto_pad", default: "NOTSET")
  var pads = try c.ints("pads") ?? [Int](repeating: 0, count: 2 * rank)
  guard pads.count == 2 * rank, pads.allSatisfy({ $0 >= 0 && $0 <= 1 << 20 }) else {
    throw c.invalid("pads", "\(pads): expected \(2 * rank) non-negative values")
  }
  var axes: [WindowAxis] = []
  for d in 0..<rank {
    var axis = WindowAxis(input: sizes[d], kernel: kernel[d], stride: strides[d], dilation: dilations[d],
                          padBegin: pads[d], padEnd: pads[d + rank], output: 0)
    switch autoPad {
    case "NOTSET": break
    case "VALID":
      axis.padBegin = 0
      axis.padEnd = 0
    case "SAME_UPPER", "SAME_LOWER":
      (axis.padBegin, axis.padEnd) = Window.samePadding(count: axis.input, taps: axis.kernel, stride: axis.stride,
                                                        dilation: axis.dilation, lower: autoPad == "SAME_LOWER")
      pads[d] = axis.padBegin
    default: throw c.unsupported("auto_pad", autoPad)
    }
    guard let output = Window.outputCount(count: axis.input, taps: axis.kernel, stride: axis.stride, dilation: axis.dilation,
                                          padBegin: axis.padBegin, padEnd: axis.padEnd) else {
      throw c.mismatch("window of \(axis.extent) does not fit input \(axis.input) padded by \(axis.padBegin)+\(axis.padEnd)")
    }
    axis.output = output
    if ceilMode && (axis.input + axis.padBegin + axis.padEnd - axis.extent) % axis.stride != 0 {
      axis.output += 1
      // A last window that would start in the end padding is dropped (PyTorch and ONNX).
      if (axis.output - 1) * axis.stride >= axis.input + axis.padBegin { axis.output -= 1 }
    }
    axes.append(axis)
  }
  return axes
}

/// Conv and ConvTranspose on channels-last storage.
enum Convolution {
  static func register(_ table: inout OperatorTable) {
    table["Conv"] = { c in
      switch try c.input(0).rank {
      case 4: try conv(&c)
      case 3: try ConvolutionND.lifted(c) { try conv(&$0) }
      default: try ConvolutionND.conv(c)
      }
    }
    table["Col2Im"] = { c in [try ConvolutionND.col2im(c)] }
    table["ConvTranspose"] = { c in
      switch try c.input(0).rank {
      case 4: try convTranspose(c)
      case 3: try ConvolutionND.lifted(c) { try convTranspose($0) }
      default: try ConvolutionND.convTranspose(c)
      }
    }
    table.describe(["Conv", "ConvTranspose"], floatData: true, tracesShapes: true, spatiallyLocal: true)
    table.describe(["Conv"], field: ReceptiveField.windowRule, macs: { t in
      guard let w = t.map(1), let out = t.outputShapes.first else { return 0 }
      return out.reduce(1, *) * w[1] * w[2] * w[3]
    })
    table.describe(["ConvTranspose"], field: { base, t in
      var kernel = t.ints("kernel_shape") ?? []
      if kernel.isEmpty, let w = t.map(1) { kernel = [w[2], w[3]] }
      guard kernel.count == 2 else { return base }
      let stride = t.ints("strides") ?? [1, 1], dilation = t.ints("dilations") ?? [1, 1]
      let pads = t.ints("pads") ?? [0, 0, 0, 0]
      var out = base
      for d in 0..<2 {
        let extent = Double(dilation[d] * (kernel[d] - 1) + 1), s = Double(stride[d])
        out.size[d] += ((extent / s).rounded(.up) - 1) * base.jump[d]
        out.start[d] += (Double(pads[d]) - (extent - 1) / 2) / s * base.jump[d]
        out.jump[d] /= s
      }
      return out
    }, macs: { t in
      guard let x = t.inputShapes.first ?? nil, let w = t.map(1) else { return 0 }
      return x.reduce(1, *) * w[1] * w[2] * w[3]
    })
  }

  /// What a convolution node settles once for inputs of one shape and
  /// layout: the kernel (geometry, bias, fused steps, its weights as the
  /// strategy takes them), the strategy and the threads. Kept per node by
  /// the executor when the weights are constant, so a run only executes.
  struct Plan {
    var kernel: ConvKernel
    var strategy: Strategy
    var threads: Int
    /// The blocked (per group) or grouped kernel's weights; empty for the
    /// others, whose weights are in `kernel` (or `transformed`).
    var packed: [[Float]] = []
    /// Winograd's transformed, packed weights (`winogradWeights`).
    var transformed: AlignedStorage?
    /// The gemv strategy's weights, one stream (`Linear.prepare`).
    var stream: Linear.Weights?
    /// Winograd's output tile, m of F(mxm, 3x3) (3 for F(3x3, 4x4)).
    var winogradTile = 4
    /// The 4x4 convolution over the input's space-to-depth that Winograd
    /// runs in place of a 7x7 one at stride 2 (`spaceToDepthKernel`).
    var spaceToDepth: ConvKernel?
    var path: String

    /// Winograd on `x`, adding `residual` ((N, OH, OW, Cout)) where given:
    /// on its channels-last pixels, or on their space-to-depth.
    func winograd(_ x: NDArray, residual: Tensor? = nil) -> Tensor {
      if let spaceToDepth {
        return spaceToDepth.winograd(kernel.spaceToDepth(x), weights: transformed!, tile: winogradTile, residual: residual,
                                     threads: threads)
      }
      return kernel.winograd(x.toChannelsLast().storage!, weights: transformed!, tile: winogradTile, residual: residual,
                             threads: threads)
    }
  }

  static func conv(_ c: inout OpContext) throws -> [NDArray] {
    if let parts = ChainedConvolution.fused(c) {
      return try ChainedConvolution.run(&c, first: parts.first, second: parts.second)
    }
    var x = try c.input(0)
    // Gates of a Mul fused into the node (`ScaledConvolution`): the map is
    // the larger operand.
    var gates: NDArray? = nil
    if ScaledConvolution.gates(of: c.node) != nil {
      let other = try c.input(ScaledConvolution.input)
      (x, gates) = other.count > x.count ? (other, x) : (x, other)
    }
    guard x.rank == 4, x.isFloat else { throw c.unsupported("input rank", x.rank) }
    let pool = PooledConvolution.fused(c)?.pool, sum = try ResidualConvolution.fused(c)
    if c.shapesOnly {
      let kernel = try Self.kernel(c, x)
      let (oh, ow) = (kernel.axes[0].output, kernel.axes[1].output)
      let y = NDArray(channelsLast: Tensor.uninitialized(shape: [kernel.n, oh, ow, kernel.cout]))
      if let sum { return try ResidualConvolution.sum(sum.add, y, residual: c.input(ResidualConvolution.input), of: c) }
      guard let pool else { return [y] }
      return try Pooling.maxPool(c.nested(pool, inputs: [y]))
    }
    var plan = try planned(c, shape: x.shape, channelsLast: x.channelsLast)
    c.path = plan.path
    if let gates {
      if ScaledConvolution.scalesWeights(plan.kernel, strategy: plan.strategy, gates: gates) {
        plan.kernel.panels = [ScaledConvolution.scaled(plan.kernel.panels![0], gates: gates.floatValues())]
        plan.path = "scaled-weights," + plan.path
      } else {
        x = try ScaledConvolution.product(x, gates, of: c)
        plan = try planned(c, shape: x.shape, channelsLast: x.channelsLast)
        plan.path = "mul," + plan.path
      }
      c.path = plan.path
    }
    if let sum {
      // A residual Add fused into the node (`ResidualConvolution`): in
      // Winograd's output transform, or after each block of a 1x1
      // product while it is in cache, where those run and the operands'
      // shapes agree; else after.
      let residual = try c.input(ResidualConvolution.input)
      let steps = sum.steps
      var convolution = plan.kernel
      let sameShape = residual.isFloat
        && residual.shape == [convolution.n, convolution.cout, convolution.axes[0].output, convolution.axes[1].output]
      let winograd = plan.strategy == .winograd
      if sameShape, winograd || (plan.strategy == .im2col && convolution.addsResidualInPlace) {
        convolution.epilogue = steps
        c.path = plan.path + sum.inKernel
        let added = residual.toChannelsLast().storage!
        var fused = plan
        fused.kernel = convolution
        fused.spaceToDepth?.epilogue = steps
        let output = winograd
          ? fused.winograd(x, residual: added)
          : convolution.run(x.toChannelsLast().storage!, residual: added, threads: plan.threads)
        return [NDArray(channelsLast: output)]
      }
      c.path = plan.path + sum.after
      return try ResidualConvolution.sum(sum.add, run(plan, x, standardOutput: false)[0], residual: residual, of: c)
    }
    guard let pool else { return run(plan, x, standardOutput: c.standardOutput) }
    // A MaxPool fused into the node (`PooledConvolution`): in the blocked
    // kernel's passes where it runs, else after the whole output.
    var pooling = c.nested(pool, inputs: [nil])
    if plan.strategy == .blocked {
      let convolution = plan.kernel
      let window = try Pooling.window(pooling, height: convolution.axes[0].output, width: convolution.axes[1].output)
      c.path = plan.path + "+maxpool"
      return [NDArray(channelsLast: convolution.runBlockedPooled(x.storage!, channelsLastInput: x.channelsLast,
                                                                  packed: plan.packed, pool: window, threads: plan.threads))]
    }
    c.path = plan.path + ",maxpool"
    pooling.inputs = run(plan, x, standardOutput: false)
    return try Pooling.maxPool(pooling)
  }

  /// The node's attributes and shapes checked and turned into a kernel
  /// without weights.
  static func kernel(_ c: OpContext, _ x: NDArray) throws -> ConvKernel {
    try kernel(c, inputShape: x.shape)
  }

  /// The kernel for an input of shape (N, C, H, W) (in either layout),
  /// with the weights and bias at inputs 1 and 2 and the window and steps
  /// in the node's attributes.
  static func kernel(_ c: OpContext, inputShape shape: [Int]) throws -> ConvKernel {
    let w = try c.input(1)
    guard w.rank == 4 else { throw c.mismatch("weights of rank \(w.rank); expected (M, C/group, kH, kW)") }
    let group = try c.int("group", default: 1)
    let (n, cin, h, wd) = (shape[0], shape[1], shape[2], shape[3])
    let cout = w.shape[0], cinG = w.shape[1]
    guard group >= 1, cin % group == 0, cout % group == 0, cin / group == cinG else {
      throw c.mismatch("input channels \(cin), group \(group) and weights \(w.shape) do not agree")
    }
    let kernel = try c.ints("kernel_shape") ?? [w.shape[2], w.shape[3]]
    guard kernel == [w.shape[2], w.shape[3]] else { throw c.mismatch("kernel_shape \(kernel) but weights \(w.shape)") }
    let axes = try windowAxes(c, height: h, width: wd, kernel: kernel)
    let bias = c.optionalInput(2)?.floatValues()
    if let bias, bias.count != cout { throw c.mismatch("bias of \(bias.count) for \(cout) output channels") }
    return ConvKernel(n: n, cin: cin, cout: cout, group: group, axes: axes, weights: [], bias: bias,
                      epilogue: try Pointwise.epilogue(of: c))
  }

  /// The plan for an input of `shape` (N, C, H, W) in the given layout:
  /// kept per node by the executor when the weights are constant, made
  /// afresh otherwise.
  static func planned(_ c: OpContext, shape: [Int], channelsLast: Bool) throws -> Plan {
    guard let cache = c.cache, c.constant.count > 1, c.constant[1] else {
      return try plan(c, shape: shape, channelsLast: channelsLast, cache: nil)
    }
    // Everything the plan depends on besides the node: the input's shape
    // and layout, the output's layout, and a strategy tests force.
    let forced = forcedStrategy.map { Strategy.allCases.firstIndex(of: $0)! } ?? -1
    let facts = shape + [channelsLast ? 1 : 0, c.standardOutput ? 1 : 0, forced, WinogradTile.forced ?? 0, c.threads]
    if let found: Plan = cache.kept(c.index, facts: facts) { return found }
    return cache.keep(c.index, facts: facts, try plan(c, shape: shape, channelsLast: channelsLast, cache: cache))
  }

  /// The kernel, its strategy and threads, and its weights prepared for the
  /// strategy (packed once per executor through `cache` when given).
  static func plan(_ c: OpContext, shape: [Int], channelsLast: Bool, cache: PreparedWeights?) throws -> Plan {
    var convolution = try kernel(c, inputShape: shape)
    let strategy = Self.strategy(convolution, planesInput: !channelsLast)
    // A small convolution (a few microseconds of work) runs on one thread:
    // handing half of it to another costs more than it saves.
    let cost = convolution.macs * (convolution.isDepthwise ? Self.depthwiseCostPerMAC : 1)
    let threads = cost < Self.parallelMACs ? 1 : c.threads
    func prepared<Value>(_ label: String, _ make: (ConvKernel) -> Value) throws -> Value {
      try Self.prepared(convolution, weights: 1, of: c, label, cache: cache, make)
    }
    var plan = Plan(kernel: convolution, strategy: strategy, threads: threads,
                    path: strategy.rawValue + Pointwise.describe(convolution.epilogue))
    switch strategy {
    case .blocked: plan.packed = try prepared("conv-blocked") { $0.blockedWeights() }
    case .winograd where !convolution.winogradFits:
      // A 7x7 convolution at stride 2, over its input's space-to-depth.
      let inner = convolution.spaceToDepthKernel!, tile = inner.defaultWinogradTile
      plan.spaceToDepth = inner
      plan.winogradTile = tile
      plan.path = "space-to-depth,winograd:F\(tile)" + Pointwise.describe(convolution.epilogue)
      plan.transformed = try prepared("conv-winograd-s2d") { kernel in
        var weighted = inner
        weighted.weights = kernel.spaceToDepthWeights()
        return weighted.winogradWeights(tile: tile, threads: threads)
      }
    case .winograd:
      // A strategy forced onto a convolution the rule runs direct takes
      // its `defaultWinogradTile`.
      plan.winogradTile = convolution.winogradTile ?? convolution.defaultWinogradTile
      plan.path = "winograd:F\(plan.winogradTile)" + Pointwise.describe(convolution.epilogue)
      let tile = plan.winogradTile
      plan.transformed = try prepared("conv-winograd\(tile)") { $0.winogradWeights(tile: tile, threads: threads) }
    case .grouped: plan.packed = try prepared("conv-group8") { [$0.group8Weights()] }
    case .planar, .depthwisePlanes: convolution.weights = try prepared("conv-weights") { [$0.weightValues] }[0]
    case .gemv:
      // The weights, (Cout, Cin), are a product's B transposed; the stream
      // decides its threads from the work, as a product does.
      plan.stream = try prepared("conv-gemv") {
        let (cin, cout) = ($0.cin, $0.cout)
        return $0.withWeights { Linear.prepare($0, k: cin, n: cout, transposed: true, byRows: true, threads: c.threads) }
      }
      plan.threads = c.threads
    case .depthwise, .im2col:
      // Constant weights are packed once per executor, not every run.
      convolution.panels = try prepared("conv-panels") { $0.packedPanels(threads: threads) }
    }
    plan.kernel = convolution
    return plan
  }

  /// `make(kernel)`, given the kernel with the weights at input `input`
  /// of node `c`, kept under `label` for the node in `cache` (made every
  /// time without one). The weights are read only when the prepared form
  /// is not kept yet.
  static func prepared<Value>(_ kernel: ConvKernel, weights input: Int, of c: OpContext, _ label: String,
                              cache: PreparedWeights?, _ make: (ConvKernel) -> Value) throws -> Value {
    let weights = try c.input(input)
    func fresh() -> Value {
      var full = kernel
      let standard = weights.standard()
      if let storage = standard.storage { full.weightStorage = storage } else { full.weights = standard.floatValues() }
      return make(full)
    }
    guard let cache else { return fresh() }
    return cache.value(c.index, label, make: fresh)
  }

  /// Runs a plan on `x`; `standardOutput` asks for (N, C, H, W) planes
  /// where the strategy can write them directly.
  static func run(_ plan: Plan, _ x: NDArray, standardOutput: Bool) -> [NDArray] {
    let convolution = plan.kernel, threads = plan.threads
    let (n, cout, oh, ow) = (convolution.n, convolution.cout, convolution.axes[0].output, convolution.axes[1].output)
    func result(_ output: Tensor, planes: Bool) -> [NDArray] {
      [planes ? NDArray(shape: [n, cout, oh, ow], floats: output) : NDArray(channelsLast: output)]
    }
    switch plan.strategy {
    case .blocked:
      // Reads planes or channels-last pixels as it finds them, and writes
      // planes when the output leaves the graph in that layout.
      return result(convolution.runBlocked(x.storage!, channelsLastInput: x.channelsLast, packed: plan.packed,
                                           channelsLast: !standardOutput, threads: threads),
                    planes: standardOutput)
    case .planar:
      // The input is (N, C, H, W), as a graph input is: the product reads
      // its planes instead of a transposed copy, and writes planes too when
      // the output leaves the graph in that layout.
      return result(convolution.runPlanar(x.standard().storage!, channelsLast: !standardOutput, threads: threads),
                    planes: standardOutput)
    case .depthwisePlanes:
      // Depthwise on planes stays in planes: each channel is its own
      // problem, and a pointwise convolution after it reads planes directly.
      return result(convolution.depthwisePlanes(x.standard().storage!, threads: threads), planes: true)
    case .gemv:
      // Channels-last rows of Cin values, one per pixel (a 1x1 map is the
      // same in either layout).
      let values = Linear.product(x.toChannelsLast().storage!, m: convolution.pixels, k: convolution.cin, n: cout,
                                  plan.stream!, bias: convolution.bias,
                                  threads: threads, steps: convolution.epilogue, shape: [n, oh, ow, cout])
      return result(values, planes: false)
    case .winograd:
      return result(plan.winograd(x), planes: false)
    case .grouped:
      return result(convolution.grouped8(x.toChannelsLast().storage!, weights: plan.packed[0], threads: threads),
                    planes: false)
    case .depthwise, .im2col:
      // A graph output in the standard layout is written as planes, block by
      // block while in cache, instead of transposed afterwards.
      let planarOutput = standardOutput && !convolution.isDepthwise
      return result(convolution.run(x.toChannelsLast().storage!, planarOutput: planarOutput, threads: threads),
                    planes: planarOutput)
    }
  }

  /// Multiply-accumulates below which a convolution stays on one thread
  /// (256K, a few tens of microseconds). Not higher: on one thread it
  /// reads half of its input from the other core's cache where two
  /// threads wrote it; from 1M, 2 threads: PP-OCR's classifier 0.898 of
  /// the time, MobileNetV3-small 0.972 (128K: no further change).
  static let parallelMACs = 1 << 18
  /// A depthwise multiply-accumulate costs about four of a product's: one
  /// load of input for each, none shared between output channels.
  static let depthwiseCostPerMAC = 4

  /// The ways a 2-D convolution runs.
  enum Strategy: String, CaseIterable, Sendable {
    /// Channel-blocked direct convolution (`atr_conv_blocked`, AVX-512),
    /// from planes or channels-last pixels.
    case blocked
    /// The product on (N, C, H, W) planes read through row pointers.
    case planar
    /// Depthwise, one (N, C, H, W) plane per task.
    case depthwisePlanes = "depthwise-planes"
    /// Depthwise on channels-last pixels.
    case depthwise
    /// A 1x1 convolution of one group over a few pixels (a squeeze-
    /// excitation block's, on a pooled 1x1 map): a stream over the
    /// weights, as a classifier head's product (`Linear.product`).
    case gemv
    /// Winograd on channels-last pixels: F(mxm, 3x3) for 3x3, one group,
    /// stride 1 with any dilation or stride 2 without; F(3x3, 4x4) for
    /// 4x4 at stride 1, and for 7x7 at stride 2 over the input's
    /// space-to-depth.
    case winograd
    /// Groups of 8 output channels on channels-last pixels
    /// (`atr_conv_group8_row`), without im2col rows or packed products.
    case grouped
    /// Channels-last: im2col blocks, or the input itself for 1x1, times the
    /// packed weights (transposed for narrow output groups).
    case im2col
  }

  /// A strategy tests force on every convolution of a run (on the calling
  /// task); one a convolution cannot take is ignored.
  @TaskLocal static var forcedStrategy: Strategy? = nil

  /// The strategy for `kernel` on input stored as planes or channels-last:
  /// depthwise stays depthwise in the input's layout (unless the map is
  /// narrow); Winograd where `winogradTile` picks a tile; the blocked kernel where
  /// `prefersBlocked`; the grouped kernel for groups of 8 output channels
  /// on channels-last input; else the product on planes or on pixels.
  static func strategy(_ kernel: ConvKernel, planesInput: Bool) -> Strategy {
    if let forced = forcedStrategy, feasible(forced, kernel) { return forced }
    // The planar kernel runs along output rows in vectors of 16: narrower
    // maps go channels-last, vectorized across channels instead.
    if kernel.isDepthwise { return planesInput && kernel.axes[1].output >= 16 ? .depthwisePlanes : .depthwise }
    if kernel.isPointwise && kernel.group == 1 && kernel.pixels <= Linear.fewRows { return .gemv }
    if kernel.winogradTile != nil || kernel.spaceToDepthKernel?.winogradTile != nil { return .winograd }
    if kernel.prefersBlocked { return .blocked }
    if !planesInput && kernel.hasGroupsOf8 { return .grouped }
    return planesInput ? .planar : .im2col
  }

  /// Whether `kernel` can run by `strategy` on this machine.
  static func feasible(_ strategy: Strategy, _ kernel: ConvKernel) -> Bool {
    switch strategy {
    case .blocked: !kernel.isDepthwise && kernel.axes[0].kernel <= 16 && atr_conv_blocked_preferred() != 0
    case .planar: !kernel.isDepthwise
    case .depthwisePlanes, .depthwise: kernel.isDepthwise
    case .grouped: kernel.hasGroupsOf8
    case .winograd: kernel.winogradFits || kernel.spaceToDepthKernel != nil
    case .gemv: kernel.isPointwise && kernel.group == 1
    case .im2col: true
    }
  }

  static func convTranspose(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0), w = try c.input(1).standard()
    guard x.rank == 4, w.rank == 4 else { throw c.unsupported("input rank", x.rank) }
    let group = try c.int("group", default: 1)
    let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    guard group >= 1, w.shape[0] == cin, cin % group == 0 else {
      throw c.mismatch("input channels \(cin), group \(group) and weights \(w.shape) do not agree")
    }
    let coutG = w.shape[1], cout = coutG * group
    let kernel = try c.ints("kernel_shape") ?? [w.shape[2], w.shape[3]]
    let strides = try c.ints("strides") ?? [1, 1], dilations = try c.ints("dilations") ?? [1, 1]
    guard strides.count == 2, strides.allSatisfy({ $0 >= 1 }) else { throw c.invalid("strides", "\(strides): each must be at least 1") }
    guard dilations.count == 2, dilations.allSatisfy({ $0 >= 1 }) else {
      throw c.invalid("dilations", "\(dilations): each must be at least 1")
    }
    let outputPadding = try c.ints("output_padding") ?? [0, 0]
    var pads = try c.ints("pads") ?? [0, 0, 0, 0]
    let autoPad = try c.string("auto_pad", default: "NOTSET")
    let inputs = [h, wd]
    var outSize = [0, 0]
    let requested = try c.ints("output_shape").map { $0.suffix(2).map { $0 } }
    guard kernel.count == 2, outputPadding.count == 2, pads.count == 4 else {
      throw c.invalid("kernel_shape", "window attributes do not fit 2 spatial axes")
    }
    try ConvolutionND.checkTransposed(c, kernel: kernel, strides: strides, dilations: dilations, pads: pads,
                                      outputPadding: outputPadding, outputShape: requested)
    for d in 0..<2 {
      (outSize[d], pads[d], pads[d + 2]) = ConvolutionND.transposedAxis(
        input: inputs[d], kernel: kernel[d], stride: strides[d], dilation: dilations[d], outputPadding: outputPadding[d],
        pads: (pads[d], pads[d + 2]), autoPad: autoPad, target: requested?[d])
      guard outSize[d] > 0 else { throw c.mismatch("output size \(outSize[d]) along axis \(d + 2)") }
    }
    try c.checkShape([n, cout] + outSize)
    if c.shapesOnly { return [NDArray(channelsLast: Tensor.uninitialized(shape: [n, outSize[0], outSize[1], cout]))] }
    let bias = c.optionalInput(2)?.floatValues()
    if let bias, bias.count != cout { throw c.mismatch("bias of \(bias.count) for \(cout) output channels") }
    let transposed = TransposedConvKernel(
      n: n, height: h, width: wd, cin: cin, cout: cout, group: group, kernel: kernel, strides: strides,
      dilations: dilations, padBegin: [pads[0], pads[1]], outputSize: outSize, bias: bias)
    let phased = transposed.phased
    func prepare(_ weights: [Float]) -> [[Float]] {
      phased ? transposed.phasePanels(weights) : transposed.packedPanels(weights)
    }
    let panels: [[Float]]
    if let cache = c.cache, c.constant.count > 1, c.constant[1] {
      panels = cache.value(c.index, phased ? "convT-phases" : "convT-panels") { prepare(w.floatValues()) }
    } else {
      panels = prepare(w.floatValues())
    }
    let input = x.toChannelsLast().storage!
    return [NDArray(channelsLast: phased ? transposed.runPhased(input, panels: panels, threads: c.threads)
                                         : transposed.run(input, panels: panels, threads: c.threads))]
  }
}

/// A transposed convolution on (N, H, W, C) storage in two threaded
/// passes: a matrix product gives every input pixel's contribution to each
/// tap, columns[p, tap, co] = sum_ci x[p, ci] w[ci, co, tap]; then each
/// output pixel gathers the contributions that land on it (a gather, not
/// a scatter, so threads own disjoint output rows).
struct TransposedConvKernel {
  let n: Int, height: Int, width: Int, cin: Int, cout: Int, group: Int
  let kernel: [Int], strides: [Int], dilations: [Int], padBegin: [Int], outputSize: [Int]
  let bias: [Float]?

  private var taps: Int { kernel[0] * kernel[1] }

  /// Per group, the weights (Cin, Cout/g, kH, kW) as a packed
  /// (Cin/g, taps * Cout/g) matrix, column index (tap, co).
  func packedPanels(_ weights: [Float]) -> [[Float]] {
    let cinG = cin / group, coutG = cout / group
    return (0..<group).map { g in
      var matrix = [Float](repeating: 0, count: cinG * taps * coutG)
      for ci in 0..<cinG {
        for co in 0..<coutG {
          for t in 0..<taps {
            matrix[ci * taps * coutG + t * coutG + co] = weights[((g * cinG + ci) * coutG + co) * taps + t]
          }
        }
      }
      var panels = [Float](repeating: 0, count: atr_packed_b_size(cinG, taps * coutG))
      panels.withUnsafeMutableBufferPointer { atr_pack_b($0.baseAddress!, matrix, cinG, taps * coutG, taps * coutG) }
      return panels
    }
  }

  func run(_ input: Tensor, panels: [[Float]], threads: Int) -> Tensor {
    let (oh, ow) = (outputSize[0], outputSize[1])
    let cinG = cin / group, coutG = cout / group
    let pixels = n * height * width, row = taps * coutG
    var output = Tensor.uninitialized(shape: [n, oh, ow, cout])  // (N, OH, OW, Cout)
    let scratch = AlignedStorage(byteCount: pixels * row * MemoryLayout<Float>.stride, zeroed: false)
    let columns = scratch.pointer.assumingMemoryBound(to: Float.self)  // (N*H*W, taps, Cout/g)
    let biasValues = bias ?? [Float](repeating: 0, count: cout)
    let pixelRanges = Parallel.ranges(pixels, parts: threads)
    let rowRanges = Parallel.ranges(n * oh, parts: threads)
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        biasValues.withUnsafeBufferPointer { biasPointer in
          let source = src.baseAddress!, target = dst.baseAddress!
          for g in 0..<group {
            panels[g].withUnsafeBufferPointer { packed in
              Parallel.run(pixelRanges.count) { part in
                let r = pixelRanges[part]
                atr_sgemm_packed(r.count, row, cinG, source + r.lowerBound * cin + g * cinG, cin, packed.baseAddress!,
                                 columns + r.lowerBound * row, row, ATR_START_ZERO, nil)
              }
            }
            var geometry = atr_conv_geometry(
              input_h: height, input_w: width, output_h: oh, output_w: ow, kernel_h: kernel[0], kernel_w: kernel[1],
              stride_h: strides[0], stride_w: strides[1], dilation_h: dilations[0], dilation_w: dilations[1],
              pad_top: padBegin[0], pad_left: padBegin[1], pixel_stride: cout)
            Parallel.run(rowRanges.count) { part in
              var rows = [UnsafePointer<Float>?](repeating: nil, count: kernel[0])
              var kys = [Int](repeating: 0, count: kernel[0])
              for outRow in rowRanges[part] {
                let b = outRow / oh, oy = outRow % oh
                var count = 0
                for ky in 0..<kernel[0] {
                  // oy = iy * stride - pad + ky * dilation, solved for iy.
                  let ty = oy + padBegin[0] - ky * dilations[0]
                  guard ty >= 0, ty % strides[0] == 0, ty / strides[0] < height else { continue }
                  rows[count] = UnsafePointer(columns + (b * height + ty / strides[0]) * width * row)
                  kys[count] = ky
                  count += 1
                }
                atr_transposed_gather_row(target + outRow * ow * cout + g * coutG, cout, biasPointer.baseAddress! + g * coutG,
                                          coutG, rows, kys, count, &geometry)
              }
            }
          }
        }
      }
    }
    return output
  }
}

/// A 2-D convolution on (N, H, W, C) storage: depthwise directly, 1x1 as a
/// matrix product of the input itself, the rest as blocks of im2col rows
/// times the packed weights, across threads.
struct ConvKernel {
  /// Rows of a 1x1 product between its epilogue passes: at most 128 pixels
  /// of output, still in L2 when the fused steps run over them; or, when
  /// the packed weights outgrow half of the L2 cache and would stream from
  /// further out once per pass, up to 512 (a 13x13 map in one pass).
  static func epilogueRows(k: Int, n: Int) -> Int {
    k * n * MemoryLayout<Float>.stride > CPUCaches.l2 / 2 ? 512 : 128
  }

  let n: Int, cin: Int, cout: Int, group: Int
  let axes: [WindowAxis]
  /// ONNX layout (Cout, Cin/group, kH, kW); empty when `panels` are given,
  /// or when `weightStorage` holds them.
  var weights: [Float]
  /// The weights in the ONNX layout, read in place where `weights` is
  /// empty: `Convolution.prepared` hands the packing functions the model's
  /// tensor itself (`withWeights`) instead of a copy of it, which a fresh
  /// process made of every weight, on one thread, before packing it.
  var weightStorage: Tensor? = nil
  let bias: [Float]?
  /// Element-wise steps applied to each block of output as it is made.
  var epilogue: [atr_pointwise_step] = []
  /// Per group, the weights as the product takes them (computed if nil):
  /// packed panels, or for the transposed product (Cout/g, K) rows; flat
  /// tensors, in pooled memory where large, which a fresh process's first
  /// run finds already faulted in (as Winograd's weights).
  var panels: [Tensor]? = nil

  /// Output pixels per im2col block.
  static let block = 64

  /// Output pixels per im2col block for a product with (k, n) weights:
  /// `block`, or 4x that when the packed weights outgrow the L2 cache and
  /// are streamed from further out once per block, but never so many that
  /// a thread is left without a block.
  static func blockRows(k: Int, n: Int, pixels: Int, threads: Int) -> Int {
    let weightBytes = k * n * MemoryLayout<Float>.stride
    return evenBlock(pixels: pixels, preferred: weightBytes > CPUCaches.l2 ? 4 * block : block, multiple: 8, threads: threads)
  }

  /// A block length near `preferred`, a multiple of `multiple`, that cuts
  /// `pixels` into a whole number of blocks per thread, so no thread is
  /// left with a last block while the others wait (784 pixels in blocks of
  /// 256 would give one thread 512 and the other 272).
  static func evenBlock(pixels: Int, preferred: Int, multiple: Int, threads: Int) -> Int {
    let threads = max(1, threads)
    var blocks = max(1, (pixels + preferred - 1) / preferred)
    blocks = (blocks + threads - 1) / threads * threads
    let length = (pixels + blocks - 1) / blocks
    return max(multiple, (length + multiple - 1) / multiple * multiple)
  }

  /// The convolution on (N, H, W, C) storage.
  /// - Parameter planarOutput: return (N, Cout, OH, OW) instead of (N, OH,
  ///   OW, Cout) (not depthwise).
  /// - Parameter residual: (N, OH, OW, Cout) to add to the output before
  ///   the fused steps (a 1x1 convolution with one group only: see
  ///   `addsResidualInPlace`).
  func run(_ input: Tensor, planarOutput: Bool = false, residual: Tensor? = nil, threads: Int) -> Tensor {
    let (oh, ow) = (axes[0].output, axes[1].output)
    var output = Tensor.uninitialized(shape: planarOutput ? [n, cout, oh, ow] : [n, oh, ow, cout])
    precondition(residual == nil || (addsResidualInPlace && !planarOutput && residual!.shape == output.shape))
    if isDepthwise {
      depthwise(input, &output, threads: threads)
    } else {
      residual.withUnsafePointer { general(input, &output, planarOutput: planarOutput, residual: $0, threads: threads) }
    }
    return output
  }

  /// Whether `run` adds a residual as each block of products is made: the
  /// 1x1 convolutions of one group, whose products write the output rows
  /// themselves.
  var addsResidualInPlace: Bool { isPointwise && group == 1 && !isDepthwise }

  private var taps: Int { axes[0].kernel * axes[1].kernel }
  var isDepthwise: Bool { group == cin && cout == cin }
  /// 1x1, stride 1, no padding: each output pixel is its input pixel's
  /// channels times the weights.
  var isPointwise: Bool { taps == 1 && axes.allSatisfy { $0.stride == 1 && $0.padBegin == 0 && $0.padEnd == 0 } }
  /// Output pixels over all images.
  var pixels: Int { n * axes[0].output * axes[1].output }
  /// Multiply-accumulates of a run.
  var macs: Int { pixels * cout * (cin / group) * taps }
  /// Weights of one group: Cout/g x (taps x Cin/g).
  var weightCount: Int { cout / group * taps * (cin / group) }

  /// Calls `body` with the weights, (Cout, Cin/group, kH, kW): from
  /// `weightStorage` where it is set, else `weights`.
  func withWeights<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
    if let weightStorage { return try weightStorage.withUnsafeBufferPointer(body) }
    return try weights.withUnsafeBufferPointer(body)
  }

  /// The weights as an array of their own (`weights`, or a copy of
  /// `weightStorage`), for kernels that keep them as they are.
  var weightValues: [Float] { weightStorage?.scalars ?? weights }
  /// Whether Winograd can run this convolution: 3x3 (or 4x4 at stride 1,
  /// undilated: F(3x3, 4x4)), one group, at least as many channels in and
  /// out as the transforms take at once (`atr_winograd_lanes`: 16 with
  /// AVX-512, else 8; YOLOX-S's 3x3 over the 12 channels of its
  /// space-to-depth stem at 320x320 took 0.59 of the channel-blocked
  /// kernel's time at F(4x4), AMD EPYC, AVX2), stride 1 or, undilated, 2. A
  /// dilated one runs as one ordinary convolution per phase of the
  /// dilation, its tiles' pixels that far apart; one at stride 2 as four at
  /// stride 1, one per phase of the input, with 2x2 parts of the kernel
  /// (`atr_winograd_depth`).
  var winogradFits: Bool {
    let lanes = Int(atr_winograd_lanes())
    guard group == 1, cin >= lanes, cout >= lanes else { return false }
    if axes.allSatisfy({ $0.kernel == 4 && $0.stride == 1 && $0.dilation == 1 }) { return true }
    guard axes.allSatisfy({ $0.kernel == 3 }) else { return false }
    return axes.allSatisfy { $0.stride == 1 } || axes.allSatisfy { $0.stride == 2 && $0.dilation == 1 }
  }

  /// A 7x7 convolution at stride 2 (a network's stem: ResNet's,
  /// GoogLeNet's, DenseNet's) as the 4x4 one at stride 1 over its input's
  /// space-to-depth (`spaceToDepth`), which Winograd F(3x3, 4x4) may run:
  /// that convolution, where it fits Winograd, else nil. Channel (a, b,
  /// c) of the space-to-depth, (2 a + b) Cin + c, at (Y, X) is input
  /// channel c at (2Y + a, 2X + b) of the padded input, and its kernel tap
  /// (u, v) is the 7x7 kernel's (2u + a, 2v + b), zero past its edge; the
  /// output is the same map, no padding left.
  var spaceToDepthKernel: ConvKernel? {
    guard group == 1, axes.allSatisfy({ $0.kernel == 7 && $0.stride == 2 && $0.dilation == 1 }) else { return nil }
    let inner = axes.map { WindowAxis(input: $0.output + 3, kernel: 4, stride: 1, dilation: 1, padBegin: 0, padEnd: 0,
                                      output: $0.output) }
    let kernel = ConvKernel(n: n, cin: 4 * cin, cout: cout, group: 1, axes: inner, weights: [], bias: bias,
                            epilogue: epilogue)
    return kernel.winogradFits ? kernel : nil
  }

  /// The weights of `spaceToDepthKernel`, (Cout, 4 Cin, 4, 4), from this
  /// 7x7 kernel's.
  func spaceToDepthWeights() -> [Float] {
    var result = [Float](repeating: 0, count: cout * 4 * cin * 16)
    withWeights { w in  // (Cout, Cin, 7, 7)
      for co in 0..<cout {
        for a in 0..<2 { for b in 0..<2 { for c in 0..<cin { for u in 0..<4 where 2 * u + a < 7 {
          for v in 0..<4 where 2 * v + b < 7 {
            result[((co * 4 + 2 * a + b) * cin + c) * 16 + u * 4 + v] = w[((co * cin + c) * 7 + 2 * u + a) * 7 + 2 * v + b]
          }
        } } } }
      }
    }
    return result
  }

  /// The input of `spaceToDepthKernel`: (N, OH + 3, OW + 3, 4 Cin) from
  /// `x` ((N, Cin, H, W) in either layout), zeros where the window reads
  /// the padding. Per input row and channel, the row's pixels in order
  /// (a plane's row from planar storage), each written to its phase's
  /// channel: ResNet-18's 224x224 input took 0.22 ms so, 0.41 pixel by
  /// pixel with each pixel's channels read a plane apart (AMD EPYC).
  func spaceToDepth(_ x: NDArray) -> Tensor {
    let (h, w, oh, ow) = (axes[0].input, axes[1].input, axes[0].output + 3, axes[1].output + 3)
    let (top, left) = (axes[0].padBegin, axes[1].padBegin)
    var result = Tensor(shape: [n, oh, ow, 4 * cin])  // zeros
    let source = x.storage!
    // Floats between neighbouring channels, pixels and rows of the input.
    let (channel, pixel) = x.channelsLast ? (1, cin) : (h * w, 1)
    // The output columns xo whose input column 2 xo + b - left lies inside the row.
    let columns = (0..<2).map { b in max(0, (left - b + 1) / 2)..<min(ow, (w - 1 + left - b) / 2 + 1) }
    source.withUnsafeBufferPointer { src in
      result.withUnsafeMutableBufferPointer { dst in
        for image in 0..<n {
          for iy in 0..<h {
            // Input row iy is phase a of output row y.
            let (y, a) = ((iy + top) / 2, (iy + top) % 2)
            guard y < oh else { continue }
            for c in 0..<cin {
              let row = src.baseAddress! + image * cin * h * w + c * channel + iy * w * pixel  // (W) at `pixel`
              let out = dst.baseAddress! + (image * oh + y) * ow * 4 * cin + 2 * a * cin + c  // (OW) at 4 Cin
              for b in 0..<2 {
                for xo in columns[b] { out[xo * 4 * cin + b * cin] = row[(2 * xo + b - left) * pixel] }
              }
            }
          }
        }
      }
    }
    return result
  }

  /// The stride Winograd runs at: 1, or 2 (`winogradFits`).
  var winogradStride: Int { axes[0].stride }

  /// The output tiles m Winograd has for this kernel: F(2x2), F(4x4) and
  /// F(6x6) for 3x3 at stride 1, F(4x4) at stride 2, F(3x3, 4x4) for 4x4.
  var winogradTiles: [Int] { axes[0].kernel == 4 ? [3] : winogradStride == 2 ? [4] : [2, 4, 6] }

  /// The tile a strategy forced onto this convolution takes where the rule
  /// runs it direct: F(4x4) where there is one.
  var defaultWinogradTile: Int { winogradTiles.contains(4) ? 4 : winogradTiles[0] }

  /// The output tile m of the Winograd F(mxm, 3x3) to run this
  /// convolution with, or nil to run it direct: nil when Winograd does not
  /// fit or `ATROUS_EXACT_CONV` is 1, else the cheapest by `winogradCost`
  /// of `winogradTiles` (F(6x6) where `f6Fits`) and direct convolution. A
  /// forced tile the kernel lacks gives its `defaultWinogradTile`.
  var winogradTile: Int? { winogradTile() }

  /// `winogradTile` on a machine with these caches (bytes of one core's L2
  /// and of the last-level cache).
  func winogradTile(l2: Int = CPUCaches.l2, l3: Int = CPUCaches.l3) -> Int? {
    guard winogradFits, !Self.exact else { return nil }
    let tiles = winogradTiles
    if let forced = WinogradTile.forced { return tiles.contains(forced) ? forced : defaultWinogradTile }
    let direct = winogradCost(tile: 0)
    let best = tiles.filter { $0 != 6 || Self.f6Fits(cin: cin, cout: cout, l2: l2, l3: l3) }
      .map { ($0, winogradCost(tile: $0, l2: l2, l3: l3)) }.min { $0.1 < $1.1 }!
    return best.1 < direct ? best.0 : nil
  }

  /// Columns of a tile position's transformed input: Cin, or at stride 2
  /// the four phases' (a position's product reads its depth's first ones).
  func winogradWidth(tile: Int) -> Int { cin * atr_winograd_depth(tile, winogradStride, 0) }

  /// Whether F(6x6) is a candidate for `cin` -> `cout` channels: where its
  /// transformed weights (64 positions) take at most half of what stays
  /// cached (`weightsCached`), so its blocks read them from cache. Measured per layer on VGG16's
  /// trunk, 1 thread: on the Intel Xeon F(6x6) tied F(4x4) at 224 and 112
  /// (at most 4 MiB of weights) and lost from 56 down (1.4 times as long
  /// with 256 channels); on the AMD EPYC it took 0.90 and 0.91 of F(4x4)'s
  /// time at 224 (64 channels, 1 MiB) and 112 (64 -> 128, 2 MiB), 0.98
  /// with 128 channels (4 MiB) and 1.11 for 128 -> 256 at 56 (8 MiB).
  /// ResNet-18's 64-channel layers at 56 take it too, by fewer weight
  /// reads (blocks of 8 tiles either way): 1.03 of F(4x4)'s time there, a
  /// tie within the machine's noise. `l2` and `l3` are one core's L2 and
  /// the last-level cache, in bytes.
  static func f6Fits(cin: Int, cout: Int, l2: Int = CPUCaches.l2, l3: Int = CPUCaches.l3) -> Bool {
    weightsCached(bytes: 2 * winogradPositions(6) * cin * cout * MemoryLayout<Float>.stride, l2: l2, l3: l3)
  }

  /// The rule `winogradTile` picks by, in multiply-adds per pair of input
  /// and output channels. Direct convolution (tile 0) does the kernel's
  /// taps (9 for 3x3) per output pixel, at `directCost` each. F(mxm) does
  /// t^2 (t = m + 2, m + 3 for a 4x4 kernel) per tile of
  /// m x m pixels, the edge tiles in full, with its transforms (about t
  /// operations per position per channel, in and out) on top, and F(6x6)'s
  /// at `f6Cost` each; at stride 2, F(4x4) does the depths of its 25
  /// positions, 81. Each reads its weights, its taps or as many as it does
  /// per tile, once per block of pixels or tiles, at `weightReadCost` each.
  ///
  /// Measured per layer, 1 thread, Intel Xeon (AVX-512): VGG16's 3x3
  /// layers at 224 to 14 run F(4x4) or, at 224 and 112 where `f6Fits`,
  /// F(6x6) (see `f6Fits`; direct takes 1.4 to 2.8 times as long down to
  /// 28, about as long at 14), 512 channels at 7x7 run F(2x2) (0.8 of
  /// direct's time, F(4x4) 1.0, F(6x6) 1.8).
  func winogradCost(tile m: Int, l2: Int = CPUCaches.l2, l3: Int = CPUCaches.l3) -> Double {
    if m == 0 { return Double(taps) * (Double(pixels) * Self.directCost + Self.weightReadCost) }
    var geometry = self.geometry
    let positions = Self.winogradPositions(m, stride: winogradStride), tiles = atr_winograd_tiles(&geometry, n, m)
    let depths = (0..<positions).reduce(0) { $0 + atr_winograd_depth(m, winogradStride, $1) }
    let block = Self.winogradBlock(cin: winogradWidth(tile: m), cout: cout, tiles: tiles, positions: positions, threads: 1,
                                   l2: l2, l3: l3)
    let blocks = Double((tiles + block - 1) / block)
    let side = Double(m + atr_winograd_taps(m, winogradStride) - 1)
    let transforms = 1 + side / Double(cin) + side / Double(cout)
    return Double(depths) * (Double(tiles) * transforms * (m == 6 ? Self.f6Cost : 1) + blocks * Self.weightReadCost)
  }

  /// A direct multiply-add's time in Winograd's: the channel-blocked
  /// kernel reaches about 70% of the products' rate.
  static let directCost = 1.4
  /// F(6x6)'s multiply-adds' time in F(4x4)'s, where `f6Fits`: its 8x8
  /// transforms spill the registers, and its products have 64 positions
  /// to F(4x4)'s 36 for each block of input read. 1.1 makes it the choice
  /// at 224 and 112 with 64 channels (it does 14% fewer multiply-adds
  /// there), where it ran 0.90 of F(4x4)'s time on the AMD EPYC and tied
  /// on the Intel Xeon; 1.4, the figure before, never chose it.
  static let f6Cost = 1.1
  /// Reading one weight of a block's products, in multiply-adds: the
  /// products stream the weights from L2 or L3 once per block of tiles.
  static let weightReadCost = 8.0

  /// `ATROUS_EXACT_CONV=1` keeps 3x3 convolutions direct (no Winograd),
  /// for results that do not depend on the transform's rounding.
  static let exact = ProcessInfo.processInfo.environment["ATROUS_EXACT_CONV"] == "1"

  /// Grouped, not depthwise, with 8 output channels per group (RegNet's
  /// group width): too narrow for the product's tiles.
  var hasGroupsOf8: Bool { !isDepthwise && group > 1 && cout == 8 * group }

  /// Whether the product runs transposed, output channels down the rows:
  /// its tiles are 8 output channels by 32 pixels instead of 8 pixels by
  /// 32 output channels, so a group of 8, 16 or 24 output channels fills
  /// whole tiles instead of wasting a quarter or more of every tile. The
  /// price is packing the input through 8x8 transposes and turning each
  /// block of output back, both in cache. A 1x1 convolution never pays it:
  /// its input rows are the product's rows as they are, and untransposed
  /// it took 0.6 to 1.0 of the transposed product's time for 8 to 48
  /// output channels (Intel Xeon, AVX-512 and AVX2).
  var transposedProduct: Bool {
    let coutG = cout / group
    let padded = (coutG + 31) / 32 * 32
    return !isDepthwise && !isPointwise && padded * 20 > coutG * 23 && taps * (cin / group) >= 64
  }

  /// Output pixels per block of the transposed product: the packed input
  /// columns (k floats each) fill about a quarter of the L2 cache.
  static func transposedBlock(k: Int, pixels: Int, threads: Int) -> Int {
    let fit = max(32, CPUCaches.l2 / 4 / (k * MemoryLayout<Float>.stride) / 32 * 32)
    return evenBlock(pixels: pixels, preferred: min(fit, 512), multiple: 32, threads: threads)
  }

  /// Weights for group g as (Cout/g, taps * Cin/g), column index (tap, ci):
  /// each filter's (Cin/g, taps) transposed.
  private func rows(group g: Int) -> Tensor {
    let cinG = cin / group, coutG = cout / group, k = taps * cinG
    var result = Tensor.uninitialized(shape: [coutG * k])  // (Cout/g, taps, Cin/g); every float is written
    result.withUnsafeMutableBufferPointer { target in
      withWeights { weights in
        let source = weights.baseAddress! + g * coutG * k  // (Cout/g, Cin/g, taps)
        for co in 0..<coutG { atr_transpose(target.baseAddress! + co * k, source + co * k, cinG, taps) }
      }
    }
    return result
  }

  /// Output pixels below which a product with threads to share splits
  /// its output channels among them (each thread all the pixels and
  /// whole 32-wide panels of the weights) instead of its pixels: with so
  /// few pixels each pixel block would read all the weights, and the
  /// depthwise convolution such a product feeds splits its channels too.
  static let splitColumnsBelow = 128

  private func general(_ input: Tensor, _ output: inout Tensor, planarOutput: Bool, residual: UnsafePointer<Float>? = nil,
                       threads: Int) {
    let (oh, ow) = (axes[0].output, axes[1].output)
    let cinG = cin / group, coutG = cout / group
    let k = taps * cinG
    let block = Self.blockRows(k: k, n: coutG, pixels: pixels, threads: threads)
    let blocks = (pixels + block - 1) / block
    let workers = max(1, min(threads, blocks))
    let allPanels = panels ?? packedPanels(threads: threads)
    let biasValues = bias ?? []
    if transposedProduct {
      transposed(input, &output, weights: allPanels, planarOutput: planarOutput, threads: threads)
      return
    }
    let shares = Self.channelShares(coutG, threads: threads)
    let splitColumns = pixels < Self.splitColumnsBelow && shares.count > 1 && !planarOutput
    let columns = splitColumns && !isPointwise ? AlignedStorage(byteCount: pixels * k * 4, zeroed: false) : nil
    for g in 0..<group {
      let packedWeights = allPanels[g]
      input.withUnsafeBufferPointer { src in
        output.withUnsafeMutableBufferPointer { dst in
          let source = src.baseAddress!, target = dst.baseAddress!
          packedWeights.withUnsafeBufferPointer { wp in biasValues.withUnsafeBufferPointer { bp in
            let weightBase = wp.baseAddress!
            let groupBias = bias == nil ? nil : bp.baseAddress! + g * coutG
            if splitColumns {
              // Few pixels, many output channels: each thread takes whole
              // 32-wide weight panels for every pixel, so the threads share
              // the weight reads (pixel blocks would each stream them all).
              var a = UnsafePointer(source + g * cinG), lda = cin
              if !isPointwise {
                let col = columns!.pointer.assumingMemoryBound(to: Float.self)  // (pixels, K)
                var geometry = self.geometry
                atr_im2col(col, source, &geometry, g * cinG, cinG, 0, pixels)
                (a, lda) = (UnsafePointer(col), k)
              }
              Parallel.run(shares.count) { part in
                let (first, width) = (shares[part].lowerBound, shares[part].count)
                let out = target + g * coutG + first
                productRows(pixels, width: width, k: k, a, lda: lda, panels: weightBase + first * k,
                            bias: groupBias.map { $0 + first }, into: out, ldc: cout,
                            residual: residual.map { $0 + g * coutG + first })
              }
              return
            }
            if isPointwise && !planarOutput {
              // The input rows are already the im2col rows. The epilogue
              // follows each block of rows while it is still in cache.
              let rows = Self.epilogueRows(k: cinG, n: coutG)
              Parallel.bands(pixels, parts: workers, grain: rows) { _, range in
                for first in stride(from: range.lowerBound, to: range.upperBound, by: rows) {
                  let count = min(rows, range.upperBound - first)
                  let out = target + first * cout + g * coutG
                  productRows(count, width: coutG, k: cinG, source + first * cin + g * cinG, lda: cin,
                              panels: weightBase, bias: groupBias, into: out, ldc: cout,
                              residual: residual.map { $0 + first * cout + g * coutG })
                }
              }
              return
            }
            var geometry = self.geometry
            // Pooled storage: the same few blocks serve every layer and run.
            let scratch = Self.scratch(workers, floats: isPointwise ? 0 : block * k)
            let products = Self.scratch(workers, floats: planarOutput ? block * coutG : 0)
            Parallel.dynamic(blocks, workers: workers) { worker, blockIndex in
              let first = blockIndex * block, count = min(block, pixels - first)
              var a = UnsafePointer(source + first * cin + g * cinG), lda = cin
              if !isPointwise {
                let col = scratch[worker].pointer.assumingMemoryBound(to: Float.self)  // (count, K)
                atr_im2col(col, source, &geometry, g * cinG, cinG, first, count)
                (a, lda) = (UnsafePointer(col), k)
              }
              // Planar output goes through scratch: (count, Cout/g), then into the planes.
              let (out, ldc) = planarOutput ? (products[worker].pointer.assumingMemoryBound(to: Float.self), coutG)
                : (target + first * cout + g * coutG, cout)
              productRows(count, width: coutG, k: k, a, lda: lda, panels: weightBase, bias: groupBias, into: out, ldc: ldc,
                          fresh: !planarOutput)
              if planarOutput {
                forEachImage(first: first, count: count, plane: oh * ow) { b, offset, start, length in
                  atr_transpose_strided(target + (b * cout + g * coutG) * oh * ow + offset, oh * ow, out + start * coutG,
                                        coutG, length, coutG)
                }
              }
            }
          } }
        }
      }
    }
  }

  /// `count` rows of a product: (count, k) rows at `a`, `lda` apart, times
  /// `width` columns of packed panels, starting from the bias (no separate
  /// pass adds it), plus the rows at `residual` (laid out as the output:
  /// `ldc` apart) where given, then the fused steps, into rows `ldc` apart
  /// at `out`, all by `atr_sgemm_packed_sum`: its register tiles add the
  /// residual as they store their sums, with no pass of its own. `fresh`
  /// says the rows at `out` are out of cache (an output tensor's, not a
  /// scratch row's), which the product then asks for as it starts each
  /// tile.
  func productRows(_ count: Int, width: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int, panels: UnsafePointer<Float>,
                   bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>, ldc: Int,
                   residual: UnsafePointer<Float>? = nil, fresh: Bool = true) {
    atr_sgemm_packed_sum(count, width, k, a, lda, panels, out, ldc, bias, residual, ldc, fresh ? 1 : 0)
    atr_pointwise(out, count, width, ldc, epilogue, epilogue.count)
  }

  /// One scratch buffer of `floats` floats per worker, made once per run
  /// (large ones come back from the pool).
  static func scratch(_ workers: Int, floats: Int) -> WorkerScratch {
    scratch(workers, bytes: floats * MemoryLayout<Float>.stride)
  }

  /// One scratch buffer of `bytes` bytes per worker, as a C kernel asks for.
  static func scratch(_ workers: Int, bytes: Int) -> WorkerScratch {
    WorkerScratch(workers: workers, bytes: bytes)
  }

  /// Splits the block of flat output pixels [first, first + count) at image
  /// boundaries: `body(image, offset in its plane, offset in the block, length)`.
  private func forEachImage(first: Int, count: Int, plane: Int, _ body: (Int, Int, Int, Int) -> Void) {
    var p = first
    while p < first + count {
      let length = min(first + count - p, plane - p % plane)
      body(p / plane, p % plane, p - first, length)
      p += length
    }
  }

  /// The product transposed (see `transposedProduct`): per block of output
  /// pixels and group, the (Cout/g, K) weight rows times the block's im2col
  /// columns packed through 8x8 transposes, the (Cout/g, block) result
  /// turned back into the block's output pixels.
  private func transposed(_ input: Tensor, _ output: inout Tensor, weights rowWeights: [Tensor], planarOutput: Bool,
                          threads: Int) {
    let (oh, ow) = (axes[0].output, axes[1].output)
    let cinG = cin / group, coutG = cout / group
    let k = taps * cinG
    let block = Self.transposedBlock(k: k, pixels: pixels, threads: threads)
    let blocks = (pixels + block - 1) / block
    let workers = max(1, min(threads, blocks))
    var geometry = self.geometry
    let biasValues = bias ?? []
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in biasValues.withUnsafeBufferPointer { bp in
        let source = src.baseAddress!, target = dst.baseAddress!
        let columnStorage = Self.scratch(workers, floats: atr_packed_b_size(k, block))
        let productStorage = Self.scratch(workers, floats: coutG * block)
        Parallel.dynamic(blocks, workers: workers) { worker, blockIndex in
          let columns = columnStorage[worker].pointer.assumingMemoryBound(to: Float.self)  // (K, block) in panels of 32
          let product = productStorage[worker].pointer.assumingMemoryBound(to: Float.self)  // (Cout/g, count)
          let first = blockIndex * block, count = min(block, pixels - first)
          for g in 0..<group {
            atr_im2col_panels(columns, source, &geometry, g * cinG, cinG, first, count)
            rowWeights[g].withUnsafeBufferPointer { wp in
              atr_sgemm_packed(coutG, count, k, wp.baseAddress!, k, columns, product, count,
                               bias == nil ? ATR_START_ZERO : ATR_START_ROW_BIAS,
                               bias == nil ? nil : bp.baseAddress! + g * coutG)
            }
            atr_pointwise(product, coutG, count, count, epilogue, epilogue.count)
            if planarOutput {
              // The product's rows are already the planes' runs.
              forEachImage(first: first, count: count, plane: oh * ow) { b, offset, start, length in
                for co in 0..<coutG {
                  (target + (b * cout + g * coutG + co) * oh * ow + offset).update(from: product + co * count + start,
                                                                                    count: length)
                }
              }
            } else {
              atr_transpose_strided(target + first * cout + g * coutG, cout, product, count, coutG, count)
            }
          }
        }
      } }
    }
  }

  /// Output rows (at least one) whose input rows, copied into a window of
  /// `rowFloats` floats per input row of each channel, fill about half the
  /// L2 cache, so each input row is copied into few windows.
  func rowsInWindow(rowFloats: Int) -> Int {
    let h = axes[0]
    let rowBytes = cin / group * rowFloats * MemoryLayout<Float>.stride
    let inputRows = max(h.extent, CPUCaches.l2 / 2 / max(1, rowBytes))
    return max(1, (inputRows - h.extent) / h.stride + 1)
  }

  /// Output pixels per block of the planar product: whole output rows
  /// whose window (`atr_conv_planes`) fills about half the L2 cache.
  func planarBlock(threads: Int) -> Int {
    let (h, w) = (axes[0], axes[1])
    let outputRows = rowsInWindow(rowFloats: w.input + w.padBegin + w.padEnd + 80)
    return Self.evenBlock(pixels: h.output * w.output, preferred: max(32, outputRows * w.output), multiple: 32,
                          threads: threads)
  }

  /// The convolution on (N, C, H, W) storage into (N, Cout, OH, OW), or
  /// (N, OH, OW, Cout) when `channelsLast`: per block of output pixels and
  /// group, the weights (Cout/g, K) as they are times the block's im2col
  /// columns (K, pixels), each output channel's row landing in its own
  /// plane, or in scratch and then turned into the block's pixels.
  /// `weights` must be set.
  func runPlanar(_ input: Tensor, channelsLast: Bool, threads: Int) -> Tensor {
    let (h, w) = (axes[0].input, axes[1].input)
    let (oh, ow) = (axes[0].output, axes[1].output)
    let cinG = cin / group, coutG = cout / group
    let k = taps * cinG
    let plane = oh * ow
    // (N, Cout, OH, OW) or (N, OH, OW, Cout)
    var output = Tensor.uninitialized(shape: channelsLast ? [n, oh, ow, cout] : [n, cout, oh, ow])
    let block = planarBlock(threads: threads)
    let blocksPerImage = (plane + block - 1) / block
    let blocks = n * blocksPerImage
    let workers = max(1, min(threads, blocks))
    var geometry = self.geometry
    if taps == 1 && axes.allSatisfy({ $0.stride == 1 && $0.padBegin == 0 && $0.padEnd == 0 }) {
      // A 1x1 convolution reads each plane as one long row: every panel of
      // 32 pixels lies inside it, even those that wrap an image row.
      (geometry.input_h, geometry.input_w, geometry.output_h, geometry.output_w) = (1, h * w, 1, plane)
    }
    let biasValues = bias ?? []
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        weights.withUnsafeBufferPointer { wp in biasValues.withUnsafeBufferPointer { bp in
          let source = src.baseAddress!, target = dst.baseAddress!
          let scratch = Self.scratch(workers, bytes: atr_conv_planes_scratch(&geometry, cinG, block))
          let products = Self.scratch(workers, floats: channelsLast ? coutG * block : 0)
          Parallel.dynamic(blocks, workers: workers) { worker, blockIndex in
            let product = products[worker].pointer.assumingMemoryBound(to: Float.self)  // (Cout/g, count)
            let b = blockIndex / blocksPerImage, first = blockIndex % blocksPerImage * block
            let count = min(block, plane - first)
            // The block this worker most likely takes next, prefetched during
            // the first group's product (none past the last block).
            let following = blockIndex + workers
            var next = atr_conv_planes_next()
            if following < blocks {
              let nextFirst = following % blocksPerImage * block
              next = atr_conv_planes_next(src: source + following / blocksPerImage * cin * h * w, channels: cin,
                                          first: nextFirst, count: min(block, plane - nextFirst))
            }
            withUnsafePointer(to: &next) { nextPointer in
              for g in 0..<group {
                let (out, ldc) = channelsLast ? (product, count) : (target + (b * cout + g * coutG) * plane + first, plane)
                atr_conv_planes(out, ldc, coutG, wp.baseAddress! + g * coutG * k,
                                bias == nil ? nil : bp.baseAddress! + g * coutG, source + (b * cin + g * cinG) * h * w,
                                &geometry, cinG, first, count, scratch[worker].pointer,
                                g == 0 ? nextPointer : nil)
                atr_pointwise(out, coutG, count, ldc, epilogue, epilogue.count)
                if channelsLast {
                  atr_transpose_strided(target + (b * plane + first) * cout + g * coutG, cout, product, count, coutG, count)
                }
              }
            }
          }
        } }
      }
    }
    return output
  }

  /// Whether `runBlocked` is the faster way: a kernel of more than one tap
  /// with at least 16 output channels per group, or one group of at least
  /// 8, on a CPU with the registers its tiles want. A last block of 8
  /// channels or fewer is computed as 8 (PP-OCR's first layer, 3 -> 8 at
  /// stride 2 over 48x192: 0.061 ms against 0.096 as the product on
  /// planes); fewer output channels would mostly multiply the zeros that
  /// round them up to 8. Groups of 8 (RegNet's) take the grouped kernel:
  /// by the blocked one, block by block, they took 1.3 to 1.5 times as
  /// long. A 1x1 convolution is a plain matrix product. With both many output channels (64 per
  /// group) and many products per output (`blockedMaxK`), the packed
  /// product over im2col rows is faster: strided 3x3 and 5x5 layers of
  /// 360 to 4608 products per output, from 7x7 to 80x80 outputs, took 0.42
  /// to 0.95 of the blocked kernel's time (ResNet-18's 256 -> 512 at 7x7:
  /// 0.42-0.57), while first layers of 3 channels, 16 -> 32, 32 -> 32 and
  /// 24 -> 48 at 5x5 took 1.1 to 1.55 times as long by the product, and
  /// 32 -> 64 at stride 2 (288 products) 0.94 to 1.17 (AMD EPYC, AVX2, 1
  /// and 2 threads).
  var prefersBlocked: Bool {
    taps > 1 && axes[0].kernel <= 16 && (cout / group >= 16 || group == 1 && cout >= 8) && atr_conv_blocked_preferred() != 0
      && (cout / group < 64 || taps * (cin / group) < Self.blockedMaxK)
  }

  /// Products per output value (taps x input channels per group) from
  /// which a convolution of 64 or more output channels per group runs as
  /// the packed product rather than the blocked kernel.
  static let blockedMaxK = 320

  /// Per group, the weights and bias as `atr_conv_blocked` takes them.
  /// `weights` must be set.
  func blockedWeights() -> [[Float]] {
    let cinG = cin / group, coutG = cout / group
    let size = atr_conv_blocked_packed_size(coutG, cinG, taps)
    return (0..<group).map { g in
      var packed = [Float](repeating: 0, count: size)
      withWeights { wp in
        let groupWeights = wp.baseAddress! + g * coutG * cinG * taps
        packed.withUnsafeMutableBufferPointer { out in
          if let bias {
            bias.withUnsafeBufferPointer { atr_conv_blocked_pack(out.baseAddress!, groupWeights, $0.baseAddress! + g * coutG,
                                                                 coutG, cinG, taps) }
          } else {
            atr_conv_blocked_pack(out.baseAddress!, groupWeights, nil, coutG, cinG, taps)
          }
        }
      }
      return packed
    }
  }

  /// Output rows per block of `runBlocked`: as many as keep the window of
  /// input rows they read near half the L2 cache, cut so every thread
  /// gets the same number of blocks.
  func blockedRows(threads: Int) -> Int {
    let (h, w) = (axes[0], axes[1])
    let outputRows = rowsInWindow(rowFloats: max((w.output - 1) * w.stride + w.extent, w.input + w.padBegin) + 16)
    return Self.evenBlock(pixels: h.output, preferred: outputRows, multiple: 1, threads: threads)
  }

  /// The convolution on (N, C, H, W) storage, or (N, H, W, C) when
  /// `channelsLastInput`, into (N, Cout, OH, OW), or (N, OH, OW, Cout) when
  /// `channelsLast`, by `atr_conv_blocked`: blocks of output rows across
  /// threads. `packed` is `blockedWeights()`.
  func runBlocked(_ input: Tensor, channelsLastInput: Bool, packed: [[Float]], channelsLast: Bool,
                  threads: Int) -> Tensor {
    let (oh, ow) = (axes[0].output, axes[1].output)
    let plane = oh * ow
    // (N, Cout, OH, OW) or (N, OH, OW, Cout)
    var output = Tensor.uninitialized(shape: channelsLast ? [n, oh, ow, cout] : [n, cout, oh, ow])
    let rows = blockedRows(threads: threads)
    let blocksPerImage = (oh + rows - 1) / rows
    let blocks = n * blocksPerImage
    let workers = max(1, min(threads, blocks))
    var geometry = self.geometry
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        let source = src.baseAddress!, target = dst.baseAddress!
        let bytes = atr_conv_blocked_scratch(&geometry, cin / group, rows, channelsLastInput ? 1 : 0)
        let scratch = Self.scratch(workers, bytes: bytes)
        Parallel.dynamic(blocks, workers: workers) { worker, blockIndex in
          let b = blockIndex / blocksPerImage, y0 = blockIndex % blocksPerImage * rows
          // Row y0 of the block.
          let (out, channelStride, pixelStride) = channelsLast
            ? (target + (b * plane + y0 * ow) * cout, 1, cout) : (target + b * cout * plane + y0 * ow, plane, 1)
          computeBlockedRows(source, channelsLastInput: channelsLastInput, image: b, packed: packed,
                             y0..<min(oh, y0 + rows), into: out, channelStride: channelStride, pixelStride: pixelStride,
                             scratch: scratch[worker].pointer)
        }
      }
    }
    return output
  }

  /// Output rows `rows` of image `b` by `atr_conv_blocked`, group by
  /// group, from `source` as `runBlocked` takes it: output channel co of
  /// pixel (y, x) at out[co * channelStride + ((y - rows.lowerBound) * OW +
  /// x) * pixelStride]. `scratch` holds `atr_conv_blocked_scratch` bytes
  /// for that many rows.
  func computeBlockedRows(_ source: UnsafePointer<Float>, channelsLastInput: Bool, image b: Int, packed: [[Float]],
                          _ rows: Range<Int>, into out: UnsafeMutablePointer<Float>, channelStride: Int, pixelStride: Int,
                          scratch: UnsafeMutableRawPointer) {
    let (h, w) = (axes[0].input, axes[1].input)
    var geometry = self.geometry
    let cinG = cin / group, coutG = cout / group
    for g in 0..<group {
      packed[g].withUnsafeBufferPointer { wp in
        let groupInput = channelsLastInput ? source + b * h * w * cin + g * cinG : source + (b * cin + g * cinG) * h * w
        atr_conv_blocked(out + g * coutG * channelStride, channelStride, pixelStride, coutG, wp.baseAddress!, groupInput,
                         channelsLastInput ? 1 : 0, &geometry, cinG, rows.lowerBound, rows.count, scratch, epilogue,
                         epilogue.count)
      }
    }
  }

  /// The window in the form the C kernels take.
  var geometry: atr_conv_geometry { atr_conv_geometry(axes, pixelStride: cin) }

  /// Every group's weights as the product takes them: column panels, or
  /// rows for the transposed product; for depthwise, one (taps, C) matrix.
  /// `threads` share the packing of large panels (`productPanels`).
  func packedPanels(threads: Int) -> [Tensor] {
    if isDepthwise {
      // (taps, C): each tap's weight for every channel.
      let c = cin
      var tapWeights = Tensor.uninitialized(shape: [taps * c])  // (taps, C), from (C, taps)
      tapWeights.withUnsafeMutableBufferPointer { target in
        withWeights { atr_transpose(target.baseAddress!, $0.baseAddress!, c, taps) }
      }
      return [tapWeights]
    }
    if transposedProduct { return (0..<group).map { rows(group: $0) } }
    return (0..<group).map { productPanels(group: $0, threads: threads) }
  }

  /// Columns of one panel of packed weights (`atr_pack_b`): a panel holds
  /// this many output channels for every row of k.
  static let panelColumns = atr_packed_b_size(1, 1)

  /// Group g's weights packed in column panels (`atr_pack_b`'s layout), as
  /// `atr_sgemm_packed` takes them for (pixels, K) rows: K = (tap, input
  /// channel), a panel's columns output channels, zeros past the last. In
  /// one pass from the ONNX layout (`atr_pack_b_rows`): through the
  /// (Cout/g, K) rows and their transpose, three zeroed copies of
  /// ResNet-18's 4.7 MB layer were half of its first run. `threads` share
  /// the panels where there are `parallelPackFloats` or more.
  func productPanels(group g: Int, threads: Int) -> Tensor {
    let cinG = cin / group, k = taps * cinG, coutG = cout / group
    let count = atr_packed_b_size(k, coutG)
    let shares = Parallel.ranges((coutG + Self.panelColumns - 1) / Self.panelColumns,
                                 parts: count < Self.parallelPackFloats ? 1 : threads)
    var panels = Tensor.uninitialized(shape: [count])  // (panels, K, 32); every float is written
    panels.withUnsafeMutableBufferPointer { target in
      withWeights { w in
        let source = w.baseAddress! + g * coutG * cinG * taps  // (Cout/g, Cin/g, taps)
        Parallel.run(shares.count) { part in
          atr_pack_b_rows(target.baseAddress!, source, k, coutG, k, taps, shares[part].lowerBound,
                          shares[part].upperBound)
        }
      }
    }
    return panels
  }

  /// Packed floats (256 KiB) from which `productPanels` and
  /// `Linear.prepare` share their work among threads; smaller weights
  /// pack in a few microseconds on the calling thread.
  static let parallelPackFloats = 1 << 16

  /// One filter per channel, vectorized across channels, rows of the
  /// output split across threads in bands (`Parallel.bands`); the bias is
  /// added in the same pass. Each thread keeps to its own contiguous band
  /// while the threads keep pace: the next layer's thread then finds its
  /// rows in its own core's cache (rows handed out a few at a time to
  /// whichever thread is free measured 5 to 15% slower on whole models at
  /// 2 threads).
  ///
  /// An input map of fewer than `Self.splitColumnsBelow` pixels splits
  /// its channels instead (`channelShares`), as the 1x1 product before it
  /// splits its output channels: a band of a few rows would read the
  /// kernel's extent of rows again for each (a 7x7 map with a 5x5 kernel
  /// at 2 threads took longer than at 1), and each thread reads the
  /// channels its own product wrote. A larger input (a stride of 2 down
  /// to such a map) keeps the bands: its product split its rows.
  ///
  /// Rows of fewer than 32 output pixels with padding left or right are
  /// copied into a `DepthwiseRing`, padded with zeros, first: their edge
  /// pixels, a large share of such a row, then go in blocks of pixels
  /// instead of one by one (a 7x7 map with a 5x5 kernel has no block of
  /// four pixels whose taps are all inside the row).
  private func depthwise(_ input: Tensor, _ output: inout Tensor, threads: Int) {
    let tapWeights = (panels ?? packedPanels(threads: 1))[0]  // (taps, C)
    let (w, ow) = (axes[1].input, axes[1].output)
    let padded = ow < 32 && axes[1].padBegin + axes[1].padEnd > 0
    let outputRows = n * axes[0].output
    let inputPixels = n * axes[0].input * w
    let shares = inputPixels < Self.splitColumnsBelow ? Self.channelShares(cin, threads: threads) : [0..<cin]
    let parts = shares.count > 1 ? shares.count : min(threads, outputRows)
    let rings = padded ? DepthwiseRing.rings(self, parts: parts) : []
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        let biasValues = bias ?? []
        tapWeights.withUnsafeBufferPointer { tw in biasValues.withUnsafeBufferPointer { bp in
          let biasPointer = bias == nil ? nil : bp.baseAddress
          /// Output rows `band` over channels `channels`.
          func filter(_ band: Range<Int>, _ channels: Range<Int>, part: Int) {
            var geometry = padded ? rings[part].geometry : self.geometry
            var rows = [UnsafePointer<Float>?](repeating: nil, count: axes[0].kernel)
            for row in band {
              if padded {
                rings[part].rows(for: row, channels: channels, into: &rows) { y, slot in
                  let from = src.baseAddress! + y * w * cin
                  guard channels.count < cin else { return slot.update(from: from, count: w * cin) }
                  for x in 0..<w {
                    (slot + x * cin + channels.lowerBound).update(from: from + x * cin + channels.lowerBound,
                                                                  count: channels.count)
                  }
                }
              } else {
                inputRows(row, of: src.baseAddress!, into: &rows)
              }
              depthwiseRow(rows, taps: tw.baseAddress!, bias: biasPointer, &geometry, channels: channels,
                           into: dst.baseAddress! + row * ow * cin)
            }
          }
          if shares.count > 1 {
            Parallel.run(shares.count) { part in filter(0..<outputRows, shares[part], part: part) }
          } else {
            Parallel.bands(outputRows, parts: parts, grain: Self.bandGrain(outputRows, parts: parts)) { part, band in
              filter(band, 0..<cin, part: part)
            }
          }
        } }
      }
    }
  }

  /// Channel ranges for `threads` threads: whole panels of 32 channels
  /// each (the packed weights' panels), at least two panels a thread, or
  /// one range of them all. A product over few pixels splits its output
  /// channels so, and the depthwise convolution it feeds its channels.
  static func channelShares(_ channels: Int, threads: Int) -> [Range<Int>] {
    let panels = (channels + 31) / 32
    guard threads > 1, panels >= 2 * threads else { return [0..<channels] }
    return Parallel.ranges(panels, parts: threads).map { $0.lowerBound * 32..<min(channels, $0.upperBound * 32) }
  }

  /// One output row of the depthwise convolution, its bias and fused steps
  /// with it, into (OW, C) at `out`, only `channels` (all by default) of
  /// each pixel; `rows` as `atr_depthwise_row` takes them, `taps` (taps, C).
  func depthwiseRow(_ rows: [UnsafePointer<Float>?], taps: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                    _ geometry: inout atr_conv_geometry, channels: Range<Int>? = nil,
                    into out: UnsafeMutablePointer<Float>) {
    let range = channels ?? 0..<cin
    atr_depthwise_row(out, rows, taps, bias, &geometry, cin, range.lowerBound, range.count, epilogue, epilogue.count)
  }

  /// The input row (flat over images: image * H + y) that kernel row `ky`
  /// reads for output row `row` (flat over images), or nil in the padding.
  func inputRow(_ row: Int, ky: Int) -> Int? {
    let (h, oh) = (axes[0].input, axes[0].output)
    let iy = row % oh * axes[0].stride - axes[0].padBegin + ky * axes[0].dilation
    return iy >= 0 && iy < h ? row / oh * h + iy : nil
  }

  /// Output rows per chunk of a thread's band (`Parallel.bands`): a
  /// quarter of the band, so a slow thread leaves at most that to wait for.
  static func bandGrain(_ rows: Int, parts: Int) -> Int {
    max(1, rows / max(1, parts) / 4)
  }

  /// Calls `body(rows, row)` for every output row (flat over images) of a
  /// kernel that reads channels-last pixels row by row: rows[ky] is the
  /// input row kernel row ky reads (pixel 0, channel 0), nil in the
  /// padding. The rows go to `threads` threads in bands (`Parallel.bands`).
  private func forEachOutputRow(of source: UnsafePointer<Float>, threads: Int,
                                _ body: ([UnsafePointer<Float>?], Int) -> Void) {
    let outputRows = n * axes[0].output
    Parallel.bands(outputRows, parts: threads, grain: Self.bandGrain(outputRows, parts: threads)) { _, band in
      var rows = [UnsafePointer<Float>?](repeating: nil, count: axes[0].kernel)
      for row in band {
        inputRows(row, of: source, into: &rows)
        body(rows, row)
      }
    }
  }

  /// Points `rows` at the rows of channels-last `source` that output row
  /// `row` (flat over images) reads, nil in the padding.
  func inputRows(_ row: Int, of source: UnsafePointer<Float>, into rows: inout [UnsafePointer<Float>?]) {
    let rowLength = axes[1].input * cin
    for ky in rows.indices { rows[ky] = inputRow(row, ky: ky).map { source + $0 * rowLength } }
  }

  /// The kernels transformed for Winograd F(tile x tile, 3x3) and packed
  /// for the products: for each of the (tile + 2)^2 tile positions, the
  /// (Cin, Cout) matrix as `atr_pack_b` packs it, one after another. The
  /// threads take the panels of output channels in shares (and the input
  /// channels, where there are fewer panels than threads): a fresh
  /// process prepares the weights on its first run, and most of their
  /// time is the first touch of their pages (85 MB for ResNet-18), hence
  /// pooled memory (see `PreparedWeights`): VGG16's blocks 1-2 on a fresh
  /// process's first run took about 1,300 page faults of 4 KiB in arrays.
  func winogradWeights(tile: Int, threads: Int) -> AlignedStorage {
    let stride = winogradStride
    let count = atr_winograd_weights_offset(tile, stride, Self.winogradPositions(tile, stride: stride), cin, cout)
    let panels = atr_packed_b_size(1, cout) / Self.panelColumns
    // (positions, depth x Cin, Cout) packed in panels; the kernel writes every float.
    let packed = AlignedStorage(byteCount: count * MemoryLayout<Float>.stride, zeroed: false)
    let target = packed.pointer.assumingMemoryBound(to: Float.self)
    // Panels to each thread, or where there are fewer panels than threads
    // (32 output channels, as each of DenseNet-121's 58 3x3 layers makes)
    // each panel's input channels in shares as well.
    let panelShares = Parallel.ranges(panels, parts: threads)
    let channelShares = Parallel.ranges(cin, parts: threads / panelShares.count)
    withWeights { weights in
      Parallel.run(panelShares.count * channelShares.count) { part in
        let (p, c) = (panelShares[part / channelShares.count], channelShares[part % channelShares.count])
        atr_winograd_weights(target, weights.baseAddress!, cout, cin, tile, stride, p.lowerBound, p.count, c.lowerBound,
                             c.count)
      }
    }
    return packed
  }

  /// Positions of an input tile of Winograd F(tile x tile, 3x3), one
  /// product each: (tile + 2)^2, or at stride 2 (tile + 1)^2.
  static func winogradPositions(_ tile: Int, stride: Int = 1) -> Int { atr_winograd_positions(tile, stride) }

  /// Tiles per Winograd block. Where the transformed weights (positions x
  /// Cin x Cout floats) stay in cache between blocks (`weightsCached`), a
  /// block's transformed input and products (positions x (Cin + Cout)
  /// floats per tile) fill half the L2 cache, and every block reads the
  /// weights from cache. Where they do not, every block would read them all
  /// from memory again (36 MiB for 512 -> 512 channels at F(4x4)), so a
  /// block takes as many tiles as `streamedBlockBytes` of transformed input
  /// and products hold, and each position's weights are read once for all
  /// of them. Measured on VGG16's trunk, 1 thread, Intel Xeon (2 MiB L2):
  /// the 56x56 layers (256 channels) took 16 to 23 ms instead of 50 to 60,
  /// the 28x28 ones (512) 21 to 28 instead of 60 to 64, the 14x14 ones 11 to
  /// 13 instead of 18 to 21; blocks of 4 MiB gave 31, 39 and 13. The
  /// 112x112 layers (128 channels, 2.3 MiB of weights) were slower with
  /// large blocks (1.2 to 1.3 times).
  ///
  /// `l2` and `l3` are one core's L2 and the last-level cache, in bytes.
  ///
  /// A block is a whole number of the product's register tiles
  /// (`atr_sgemm_tile_rows`: 8 tiles with AVX-512, 6 with AVX2): with AVX2
  /// blocks of 8 ran as two product tiles of 4 rows, and blocks of 12 (what
  /// 8 rounds up to) took VGG16's blocks 1-2 from 58 to 53-55 ms (AMD
  /// EPYC, 1 thread, before the transforms' rewrite).
  static func winogradBlock(cin: Int, cout: Int, tiles: Int, positions: Int, threads: Int, l2: Int = CPUCaches.l2,
                            l3: Int = CPUCaches.l3) -> Int {
    let perTile = positions * (cin + cout) * MemoryLayout<Float>.stride
    let rows = Int(atr_sgemm_tile_rows())
    if !weightsCached(bytes: positions * cin * cout * MemoryLayout<Float>.stride, l2: l2, l3: l3) {
      return evenBlock(pixels: tiles, preferred: max(8, streamedBlockBytes / perTile / 8 * 8), multiple: rows, threads: threads)
    }
    let fit = max(8, l2 / 2 / perTile / 8 * 8)
    return evenBlock(pixels: tiles, preferred: min(fit, 256), multiple: rows, threads: threads)
  }

  /// The transformed input and products of a Winograd block whose weights
  /// do not stay in cache, in bytes (per thread).
  static let streamedBlockBytes = 16 << 20

  /// Whether `bytes` of transformed weights stay in cache while every block
  /// of tiles reads them: within twice the L2 cache, or half the last-level
  /// cache up to 8 MiB. On an AMD EPYC (Zen, 512 KiB L2, 8 MiB L3), 128
  /// channels' 2.3 MiB read from L3 took 0.93 of the streamed blocks' time
  /// at 112x112 (and the streamed blocks' 33 MiB of scratch cost a fresh
  /// process page faults besides); 256 channels' 9.4 MiB took 1.4 times as
  /// long on both machines (Intel Xeon: 2 to 3 times, its 105 MiB L3
  /// shared with cores outside this machine).
  static func weightsCached(bytes: Int, l2: Int = CPUCaches.l2, l3: Int = CPUCaches.l3) -> Bool {
    bytes <= max(2 * l2, min(l3 / 2, 8 << 20))
  }

  /// Winograd F(tile x tile, 3x3) on (N, H, W, C) storage into (N, OH,
  /// OW, Cout): per block of output tiles, the input transform, one
  /// product per tile position with the packed transformed weights, and
  /// the output transform with the bias and fused steps; blocks split
  /// across threads, or, when there are fewer blocks than threads, each
  /// block's products by tile position.
  ///
  /// With `residual` ((N, OH, OW, Cout), the other operand of an Add the
  /// convolution's output alone feeds), each output pixel is the sum, and
  /// the fused steps follow the sum.
  func winograd(_ input: Tensor, weights packed: AlignedStorage, tile: Int, residual: Tensor? = nil,
                threads: Int) -> Tensor {
    var output = Tensor.uninitialized(shape: [n, axes[0].output, axes[1].output, cout])  // (N, OH, OW, Cout)
    withExtendedLifetime(packed) {
      input.withUnsafeBufferPointer { src in
        output.withUnsafeMutableBufferPointer { dst in
          residual.withUnsafePointer { rp in
            winograd(src.baseAddress!, into: dst.baseAddress!, weights: packed.pointer.assumingMemoryBound(to: Float.self),
                     tile: tile, residual: rp, threads: threads)
          }
        }
      }
    }
    return output
  }

  /// `winograd` from channels-last pixels at `source` ((N, H, W, Cin), as
  /// the axes say) into `target` ((N, OH, OW, Cout)), `residual` laid out
  /// as the output; `packed` is `winogradWeights(tile:)`.
  func winograd(_ source: UnsafePointer<Float>, into target: UnsafeMutablePointer<Float>, weights packed: UnsafePointer<Float>,
                tile: Int, residual: UnsafePointer<Float>?, threads: Int) {
    var geometry = self.geometry
    let stride = winogradStride, positions = Self.winogradPositions(tile, stride: stride)
    let tiles = atr_winograd_tiles(&geometry, n, tile)
    let width = winogradWidth(tile: tile)
    // A map of fewer blocks than twice the threads (16 tiles, 13x13 or
    // 14x14 at F(4x4), made blocks of 12 and 4) is cut into one block per
    // thread where the transformed weights are within twice the L2 cache
    // and each thread's share is at least a product's register tile of
    // rows; otherwise it is one block whose products the threads split by
    // tile position. Each block's products read all the weights: with a
    // block per thread both threads read all of them, for few rows each.
    // GoogLeNet's 14x14 layers (2.9 to 7.4 MiB of weights) took 0.96 to
    // 0.97 of the time at 2 threads split by position; 112 -> 112 at
    // 14x14 (1.8 MiB) 0.88; DenseNet's 128 -> 32 (0.6 MiB) was slower so
    // (1.03), SqueezeNet and ResNet-18 within 1% either way (AMD EPYC,
    // 512 KiB L2, 8 alternating rounds).
    var block = Self.winogradBlock(cin: width, cout: cout, tiles: tiles, positions: positions, threads: 1)
    let share = (tiles + threads - 1) / threads
    if threads > 1, (tiles + block - 1) / block < 2 * threads {
      let ownBlocks = positions * width * cout * MemoryLayout<Float>.stride <= 2 * CPUCaches.l2
        && share >= Int(atr_sgemm_tile_rows())
      block = ownBlocks ? share : tiles
    }
    let blocks = (tiles + block - 1) / block
    let workers = max(1, min(threads, blocks))
    // Each position's packed weights and depth.
    let offsets = (0..<positions).map { atr_winograd_weights_offset(tile, stride, $0, cin, cout) }
    let depths = (0..<positions).map { atr_winograd_depth(tile, stride, $0) * cin }
    // (positions, block, width) and (positions, block, Cout), positions a padded plane apart
    let transformed = Self.scratch(workers, floats: positions * atr_winograd_plane(block, width))
    let products = Self.scratch(workers, floats: positions * atr_winograd_plane(block, cout))
    let biasValues = bias ?? []
    biasValues.withUnsafeBufferPointer { bp in
      let biasPointer = bias == nil ? nil : bp.baseAddress
      // One block's products at one tile position: (count, depth) x (depth, Cout).
      func product(_ v: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, count: Int, at xi: Int) {
        atr_sgemm_packed(count, cout, depths[xi], v + xi * atr_winograd_plane(count, width), width, packed + offsets[xi],
                         m + xi * atr_winograd_plane(count, cout), cout, ATR_START_ZERO, nil)
      }
      if blocks >= threads {
        Parallel.dynamic(blocks, workers: workers) { worker, index in
          let first = index * block, count = min(block, tiles - first)
          let v = transformed[worker].pointer.assumingMemoryBound(to: Float.self)
          let m = products[worker].pointer.assumingMemoryBound(to: Float.self)
          atr_winograd_input(v, source, &geometry, cin, first, count, tile)
          for xi in 0..<positions { product(v, m, count: count, at: xi) }
          atr_winograd_output(target, m, biasPointer, residual, &geometry, cout, first, count, epilogue,
                              epilogue.count, tile)
        }
      } else {
        // Fewer blocks than threads (a small map with many channels:
        // 7x7 is one block): blocks in turn, each block's products
        // split across the threads by tile position, where the work
        // is; the transforms of so few tiles are small.
        let v = transformed[0].pointer.assumingMemoryBound(to: Float.self)
        let m = products[0].pointer.assumingMemoryBound(to: Float.self)
        for index in 0..<blocks {
          let first = index * block, count = min(block, tiles - first)
          atr_winograd_input(v, source, &geometry, cin, first, count, tile)
          let split = min(threads, positions)
          Parallel.run(split) { part in
            for xi in (part * positions / split)..<((part + 1) * positions / split) { product(v, m, count: count, at: xi) }
          }
          atr_winograd_output(target, m, biasPointer, residual, &geometry, cout, first, count, epilogue,
                              epilogue.count, tile)
        }
      }
    }
  }

  /// The weights as `atr_conv_group8_row` takes them: (groups, kH, kW,
  /// Cin/g, 8), the 8 output channels of a group side by side.
  func group8Weights() -> [Float] {
    let cinG = cin / group
    let count = cout * cinG * taps
    return [Float](unsafeUninitializedCapacity: count) { result, initialized in
      let target = result.baseAddress!  // (groups, taps, Cin/g, 8)
      withWeights { weights in
        let source = weights.baseAddress!  // (Cout, Cin/g, taps)
        for g in 0..<group {
          for co in 0..<8 {
            for ci in 0..<cinG {
              for t in 0..<taps { target[((g * taps + t) * cinG + ci) * 8 + co] = source[((g * 8 + co) * cinG + ci) * taps + t] }
            }
          }
        }
      }
      initialized = count
    }
  }

  /// A convolution with groups of 8 output channels on (N, H, W, C) storage
  /// into (N, OH, OW, Cout): rows of the output split across threads, the
  /// bias added in the same pass and the fused steps on each row.
  func grouped8(_ input: Tensor, weights packed: [Float], threads: Int) -> Tensor {
    let (oh, ow) = (axes[0].output, axes[1].output)
    var output = Tensor.uninitialized(shape: [n, oh, ow, cout])  // (N, OH, OW, Cout)
    var geometry = self.geometry
    let biasValues = bias ?? []
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        packed.withUnsafeBufferPointer { wp in biasValues.withUnsafeBufferPointer { bp in
          let target = dst.baseAddress!, weightBase = wp.baseAddress!
          let biasPointer = bias == nil ? nil : bp.baseAddress
          forEachOutputRow(of: src.baseAddress!, threads: threads) { rows, row in
            let out = target + row * ow * cout
            atr_conv_group8_row(out, rows, weightBase, biasPointer, &geometry, cin, group)
            atr_pointwise(out, 1, ow * cout, ow * cout, epilogue, epilogue.count)
          }
        } }
      }
    }
    return output
  }

  /// The depthwise convolution on (N, C, H, W) storage into (N, C, OH,
  /// OW): channel planes split across threads, each input row copied once
  /// into a zero-padded ring in cache. `weights` must be set.
  func depthwisePlanes(_ input: Tensor, threads: Int) -> Tensor {
    let (h, w) = (axes[0].input, axes[1].input)
    let plane = axes[0].output * axes[1].output
    // (N, C, OH, OW)
    var output = Tensor.uninitialized(shape: [n, cout, axes[0].output, axes[1].output])
    let planes = n * cout
    let workers = max(1, min(threads, planes))
    var geometry = self.geometry
    let scratch = Self.scratch(workers, bytes: atr_depthwise_plane_scratch(&geometry))
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        weights.withUnsafeBufferPointer { wp in
          let source = src.baseAddress!, target = dst.baseAddress!
          Parallel.dynamic(planes, workers: workers) { worker, index in
            let ch = index % cout
            let out = target + index * plane
            atr_depthwise_plane(out, source + index * h * w, wp.baseAddress! + ch * taps, bias?[ch] ?? 0, &geometry,
                                scratch[worker].pointer)
            atr_pointwise(out, 1, plane, plane, epilogue, epilogue.count)
          }
        }
      }
    }
    return output
  }

}

/// Winograd's output tile as tests and benchmarks force it.
public enum WinogradTile {
  /// An output tile (2, 4 or 6) that every convolution Winograd can run
  /// takes on the calling task, instead of the cost rule's choice
  /// (`ConvKernel.winogradTile`); `ATROUS_EXACT_CONV=1` still wins.
  @TaskLocal public static var forced: Int? = nil
}
