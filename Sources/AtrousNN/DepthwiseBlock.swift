import AtrousCore
import _CKernels

/// The internal op `_DepthwiseBlock` (made by
/// `GraphOptimizer.fuseDepthwiseBlocks`, never found in a model file): a
/// depthwise convolution with the 1x1 convolution that widens its input
/// (an inverted-residual block's expansion), the 1x1 convolution that
/// reads its output (the block's projection), or both, each with its
/// fused steps, in one pass. Each thread expands the input rows its band
/// of output rows reads into a ring of a few rows, and projects each
/// depthwise output row while it is in cache, so neither the widened map
/// (up to six times the input's channels, at full resolution) nor the
/// depthwise output is written to memory and read back.
///
/// Inputs: x (N, Cin, H, W); the depthwise weights (C, 1, kH, kW) and bias
/// (C) or ""; the expansion's weights (C, Cin, 1, 1) and bias, or ""; the
/// projection's weights (Cout, C, 1, 1) and bias, or "". Attributes: the
/// depthwise Conv's (window, group, fused steps) and the steps of the
/// expansion and the projection.
enum DepthwiseBlock {
  static let opType = "_DepthwiseBlock"
  /// Attributes holding the expansion's and the projection's fused steps,
  /// encoded as a Conv's epilogue is.
  static let expandStepsAttribute = "_expand_epilogue"
  static let projectStepsAttribute = "_project_epilogue"
  /// Input positions of the depthwise, expansion and projection weights
  /// (each followed by its bias), and of the residual a sum after the
  /// projection adds (`ResidualConvolution`, with the Add's attributes).
  static let (depthwiseInput, expandInput, projectInput, residualInput) = (1, 3, 5, 7)

  static func register(_ table: inout OperatorTable) {
    table[opType] = { c in try run(&c) }
    table.describe([opType], floatData: true, tracesShapes: true, spatiallyLocal: true)
    // The 1x1 convolutions leave the field as it is: the depthwise window's.
    table.describe([opType], field: ReceptiveField.windowRule, macs: { t in
      guard let x = t.map(0), let w = t.map(depthwiseInput), let out = t.outputShapes.first else { return 0 }
      let (pixels, outPixels) = (x[0] * x[2] * x[3], out[0] * out[2] * out[3])
      let expand = t.map(expandInput).map { pixels * $0[0] * $0[1] } ?? 0
      let project = t.map(projectInput).map { outPixels * $0[0] * $0[1] } ?? 0
      return expand + outPixels * w[0] * w[2] * w[3] + project
    })
  }

  /// What the node settles once per input shape: its kernels with their
  /// weights as the chosen way takes them, and whether the rows go through
  /// the ring (`fused`) or the convolutions run one after the other.
  struct Plan {
    var expand: ConvKernel?
    var depthwise: ConvKernel
    var project: ConvKernel?
    var fused: Bool
    var threads: Int
    var path: String
  }

  /// Whether tests force the ring (true) or the convolutions one after the
  /// other (false) on every such node of a run (on the calling task).
  @TaskLocal static var forcedFusion: Bool? = nil

  static func run(_ c: inout OpContext) throws -> [NDArray] {
    let x = try c.input(0)
    guard x.rank == 4, x.isFloat else { throw c.unsupported("input rank", x.rank) }
    let sum = try ResidualConvolution.fused(c, at: residualInput)
    if c.shapesOnly {
      // The shape from the weights' shapes and the window, nothing packed.
      let channels = try c.input(depthwiseInput).shape.first ?? 0
      let depthwise = try Convolution.kernel(c, inputShape: [x.shape[0], channels, x.shape[2], x.shape[3]])
      let cout = c.optionalInput(projectInput)?.shape.first ?? channels
      let shape = [x.shape[0], depthwise.axes[0].output, depthwise.axes[1].output, cout]
      let y = NDArray(channelsLast: Tensor.uninitialized(shape: shape))
      guard let sum else { return [y] }
      return try ResidualConvolution.sum(sum.add, y, residual: c.input(residualInput), of: c)
    }
    var plan: Plan
    let weights = [depthwiseInput, expandInput, projectInput].filter { $0 < c.inputs.count && c.inputs[$0] != nil }
    if let cache = c.cache, weights.allSatisfy({ $0 < c.constant.count && c.constant[$0] }) {
      let facts = x.shape + [c.threads, forcedFusion.map { $0 ? 1 : 0 } ?? -1]
      if let found: Plan = cache.kept(c.index, facts: facts) {
        plan = found
      } else {
        plan = cache.keep(c.index, facts: facts, try Self.plan(c, x.shape, cache: cache))
      }
    } else {
      plan = try Self.plan(c, x.shape, cache: nil)
    }
    c.path = plan.path
    let value = x.toChannelsLast().storage!  // (N, H, W, Cin)
    // A residual sum fused into the node: the projection adds it to each
    // row it makes, then the sum's steps; where the shapes differ, the
    // Add runs after.
    var residual: Tensor? = nil
    if let sum {
      let r = try c.input(residualInput), steps = sum.steps
      let last = plan.project ?? plan.depthwise
      if var project = plan.project, r.isFloat, r.shape == [last.n, last.cout, last.axes[0].output, last.axes[1].output] {
        residual = r.toChannelsLast().storage!  // (N, OH, OW, Cout)
        project.epilogue = steps
        plan.project = project
        c.path = plan.path + sum.inKernel
      } else {
        c.path = plan.path + sum.after
        let y = plan.fused ? ring(plan, value, residual: nil) : sequence(plan, value, residual: nil)
        return try ResidualConvolution.sum(sum.add, NDArray(channelsLast: y), residual: r, of: c)
      }
    }
    if plan.fused { return [NDArray(channelsLast: ring(plan, value, residual: residual))] }
    return [NDArray(channelsLast: sequence(plan, value, residual: residual))]
  }

  /// The convolutions one after the other, the projection adding
  /// `residual` (N, OH, OW, Cout) where given.
  static func sequence(_ plan: Plan, _ input: Tensor, residual: Tensor?) -> Tensor {
    var value = input
    for kernel in [plan.expand, plan.depthwise].compactMap({ $0 }) { value = kernel.run(value, threads: plan.threads) }
    guard let project = plan.project else { return value }
    return project.run(value, residual: residual, threads: plan.threads)
  }

  /// The kernels for an input of `shape`, checked against each other.
  static func plan(_ c: OpContext, _ shape: [Int], cache: PreparedWeights?) throws -> Plan {
    let (n, h, w) = (shape[0], shape[2], shape[3])
    let channels = try c.input(depthwiseInput).shape.first ?? 0
    /// The 1x1 convolution whose weights are at input k, if any, over
    /// maps of `sizes`: cin -> cout.
    func pointwise(_ k: Int, _ name: String, cin: Int, sizes: [Int], steps: String) throws -> ConvKernel? {
      guard let weights = c.optionalInput(k) else { return nil }
      let cout = weights.shape.first ?? 0
      guard weights.shape == [cout, cin, 1, 1] else { throw c.mismatch("\(name) weights \(weights.shape) for \(cin) channels") }
      let bias = c.optionalInput(k + 1)?.floatValues()
      if let bias, bias.count != cout { throw c.mismatch("\(name) bias of \(bias.count) for \(cout) channels") }
      let flat = WindowAxis(input: 0, kernel: 1, stride: 1, dilation: 1, padBegin: 0, padEnd: 0, output: 0)
      return ConvKernel(n: n, cin: cin, cout: cout, group: 1, axes: sizes.map { size in
        var axis = flat
        (axis.input, axis.output) = (size, size)
        return axis
      }, weights: [], bias: bias, epilogue: try Pointwise.decode(c.floats(steps) ?? []))
    }
    var expand = try pointwise(expandInput, "expansion", cin: shape[1], sizes: [h, w], steps: expandStepsAttribute)
    if expand?.cout ?? shape[1] != channels {
      throw c.mismatch("\(expand?.cout ?? shape[1]) channels into a depthwise convolution of \(channels)")
    }
    var depthwise = try Convolution.kernel(c, inputShape: [n, channels, h, w])
    guard depthwise.isDepthwise else { throw c.mismatch("the block's convolution is not depthwise") }
    var project = try pointwise(projectInput, "projection", cin: channels, sizes: depthwise.axes.map(\.output),
                                steps: projectStepsAttribute)
    let macs = [expand, project].compactMap { $0?.macs }.reduce(0, +) + depthwise.macs * Convolution.depthwiseCostPerMAC
    let threads = macs < Convolution.parallelMACs ? 1 : c.threads
    let fused = forcedFusion ?? prefersRing(expand: expand, depthwise, project: project, threads: threads)
    // The ring runs the 1x1 products on its own rows; one convolution
    // after the other, they take the form their kernels choose.
    func prepare(_ kernel: inout ConvKernel?, _ label: String, input: Int) throws {
      guard let k = kernel else { return }
      kernel!.panels = try fused
        ? Convolution.prepared(k, weights: input, of: c, label + "-panels", cache: cache) { [$0.productPanels(group: 0, threads: threads)] }
        : Convolution.prepared(k, weights: input, of: c, label + "-kernel", cache: cache) { $0.packedPanels(threads: threads) }
    }
    try prepare(&expand, "expand", input: expandInput)
    try prepare(&project, "project", input: projectInput)
    depthwise.panels = try Convolution.prepared(depthwise, weights: depthwiseInput, of: c, "depthwise", cache: cache) {
      $0.packedPanels(threads: 1)
    }
    let parts = [expand.map { "expand" + Pointwise.describe($0.epilogue) }, "depthwise" + Pointwise.describe(depthwise.epilogue),
                 project.map { "project" + Pointwise.describe($0.epilogue) }]
    return Plan(expand: expand, depthwise: depthwise, project: project, fused: fused, threads: threads,
                path: (fused ? "ring:" : "") + parts.compactMap { $0 }.joined(separator: ","))
  }

  /// Bytes of 1x1 weights, the expansion's and the projection's together,
  /// above which products per row would read them from further out than
  /// the L2 cache, once per row instead of once per block of 128 pixels:
  /// half of it. Both sets are read for every row, so each alone within
  /// the bound is not enough: MnasNet's 7x7 blocks (two sets of 0.84 MiB,
  /// 2 MiB L2) ran 3% faster as three convolutions.
  static let rowProductWeightBytes = CPUCaches.l2 / 2

  /// Whether the ring is the faster way: the 1x1 weights are small enough
  /// to be read once per row, and, with an expansion on more than one
  /// thread, each thread's band is at least four times as tall as the rows
  /// above it that its first window reaches, which the band above expands
  /// as well.
  static func prefersRing(expand: ConvKernel?, _ depthwise: ConvKernel, project: ConvKernel?, threads: Int) -> Bool {
    let weightBytes = [expand, project].map { ($0?.weightCount ?? 0) * MemoryLayout<Float>.stride }.reduce(0, +)
    guard weightBytes <= rowProductWeightBytes else { return false }
    guard expand != nil, threads > 1 else { return true }
    let axis = depthwise.axes[0]
    let bandRows = depthwise.n * axis.output / max(1, threads) * axis.stride
    return bandRows >= 4 * max(0, axis.extent - axis.stride)
  }

  /// The ring: per band of output rows, each input row the band's windows
  /// read is expanded once into a `DepthwiseRing` (or, with no expansion,
  /// read where it is), the depthwise row reads its rows from there, and
  /// its output row is projected at once.
  static func ring(_ plan: Plan, _ input: Tensor, residual: Tensor?) -> Tensor {
    let (expand, depthwise, project) = (plan.expand, plan.depthwise, plan.project)
    let (w, ow, channels) = (depthwise.axes[1].input, depthwise.axes[1].output, depthwise.cin)
    let last = project ?? depthwise
    var output = Tensor.uninitialized(shape: [last.n, last.axes[0].output, ow, last.cout])  // (N, OH, OW, Cout)
    let outputRows = depthwise.n * depthwise.axes[0].output
    let parts = min(plan.threads, outputRows)
    // Per part: a ring of expanded rows, kept from chunk to chunk (a chunk
    // taken from the back of another part's band finds none of its rows
    // held and fills them), and one (OW, C) depthwise output row.
    let rings = expand == nil ? [] : DepthwiseRing.rings(depthwise, parts: parts)
    let filtered = ConvKernel.scratch(project == nil ? 0 : parts, floats: ow * channels)
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in residual.withUnsafePointer { residualRows in  // (N, OH, OW, Cout)
        depthwise.withWeights { taps, depthwiseBias in expand.withWeights { expandPanels, expandBias in
          project.withWeights { projectPanels, projectBias in
            Parallel.bands(outputRows, parts: parts, grain: ConvKernel.bandGrain(outputRows, parts: parts)) { part, band in
              var geometry = expand == nil ? depthwise.geometry : rings[part].geometry
              var rows = [UnsafePointer<Float>?](repeating: nil, count: depthwise.axes[0].kernel)
              for row in band {
                if let expand {
                  rings[part].rows(for: row, into: &rows) { y, slot in
                    expand.productRows(w, width: channels, k: expand.cin, src.baseAddress! + y * w * expand.cin,
                                       lda: expand.cin, panels: expandPanels!, bias: expandBias, into: slot, ldc: channels,
                                       fresh: false)
                  }
                } else {
                  depthwise.inputRows(row, of: src.baseAddress!, into: &rows)
                }
                guard let project else {
                  depthwise.depthwiseRow(rows, taps: taps!, bias: depthwiseBias, &geometry, into: dst.baseAddress! + row * ow * channels)
                  continue
                }
                let depthwiseOut = filtered[part].pointer.assumingMemoryBound(to: Float.self)  // (OW, C)
                depthwise.depthwiseRow(rows, taps: taps!, bias: depthwiseBias, &geometry, into: depthwiseOut)
                project.productRows(ow, width: project.cout, k: channels, depthwiseOut, lda: channels, panels: projectPanels!,
                                    bias: projectBias, into: dst.baseAddress! + row * ow * project.cout, ldc: project.cout,
                                    residual: residualRows.map { $0 + row * ow * project.cout })
              }
            }
          }
        } }
      } }
    }
    return output
  }
}

extension Optional where Wrapped == ConvKernel {
  /// `body(weights, bias)` with the kernel's prepared weights and its bias,
  /// nil for what it lacks (both when there is no kernel).
  func withWeights<R>(_ body: (UnsafePointer<Float>?, UnsafePointer<Float>?) -> R) -> R {
    guard let kernel = self else { return body(nil, nil) }
    return kernel.withWeights(body)
  }
}

extension ConvKernel {
  /// `body(weights, bias)` with the first group's prepared weights
  /// (`panels`) and the bias, nil when there is none.
  func withWeights<R>(_ body: (UnsafePointer<Float>?, UnsafePointer<Float>?) -> R) -> R {
    panels![0].withUnsafeBufferPointer { p in
      guard let bias else { return body(p.baseAddress, nil) }
      return bias.withUnsafeBufferPointer { body(p.baseAddress, $0.baseAddress) }
    }
  }
}
