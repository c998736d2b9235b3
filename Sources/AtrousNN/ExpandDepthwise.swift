import AtrousCore
import _CKernels

/// The internal op `_ExpandDepthwise` (made by
/// `GraphOptimizer.fuseExpandDepthwise`, never found in a model file): an
/// inverted-residual block's expansion, a 1x1 convolution that widens the
/// channels (with its fused steps), and the depthwise convolution that
/// reads it, in one pass. Each thread expands the input rows its band of
/// output rows reads into a ring of a few rows, so the widened map (up to
/// six times the input's channels, at the block's full resolution) is
/// never written to memory and read back.
///
/// Inputs: x (N, Cin, H, W), the depthwise weights (C, 1, kH, kW), its
/// bias (C) or nothing, the expansion's weights (C, Cin, 1, 1) and its
/// bias (C) or nothing. Attributes: the depthwise Conv's (window, group,
/// fused steps) and the expansion's steps (`expandStepsAttribute`).
enum ExpandDepthwise {
  static let opType = "_ExpandDepthwise"
  /// Attribute holding the expansion's fused steps, encoded as a Conv's
  /// epilogue is.
  static let expandStepsAttribute = "_expand_epilogue"

  static func register(_ table: inout OperatorTable) {
    table[opType] = { c in try run(&c) }
    table.describe([opType], floatData: true, tracesShapes: true, spatiallyLocal: true)
    // The 1x1 expansion leaves the field as it is: the depthwise window's.
    table.describe([opType], field: ReceptiveField.windowRule, macs: { t in
      guard let x = t.map(0), let w = t.map(1), let out = t.outputShapes.first else { return 0 }
      return x.reduce(1, *) * w[0] + out.reduce(1, *) * w[2] * w[3]
    })
  }

  /// What the node settles once per input shape: both kernels with their
  /// weights as the chosen way takes them, and whether the expanded rows
  /// go through the ring (`fused`) or the two convolutions run one after
  /// the other.
  struct Plan {
    var expand: ConvKernel
    var depthwise: ConvKernel
    var fused: Bool
    var threads: Int
    var path: String
  }

  /// Whether tests force the ring (true) or the two convolutions one after
  /// the other (false) on every such node of a run (on the calling task).
  @TaskLocal static var forcedFusion: Bool? = nil

  static func run(_ c: inout OpContext) throws -> [NDArray] {
    let x = try c.input(0)
    guard x.rank == 4, x.isFloat else { throw c.unsupported("input rank", x.rank) }
    let plan: Plan
    if let cache = c.cache, c.constant.count > 4, c.constant[1], c.constant[3] {
      let facts = x.shape + [c.threads, forcedFusion.map { $0 ? 1 : 0 } ?? -1]
      let context = c
      plan = try cache.plan(c.index, facts: facts) { try Self.plan(context, x.shape, cache: cache) }
    } else {
      plan = try Self.plan(c, x.shape, cache: nil)
    }
    c.path = plan.path
    let (d, oh, ow) = (plan.depthwise, plan.depthwise.axes[0].output, plan.depthwise.axes[1].output)
    if c.shapesOnly { return [NDArray(channelsLast: Tensor.uninitialized(shape: [d.n, oh, ow, d.cout]))] }
    let input = x.toChannelsLast().storage!  // (N, H, W, Cin)
    if !plan.fused {
      let expanded = plan.expand.run(input, threads: plan.threads)
      return [NDArray(channelsLast: d.run(expanded, threads: plan.threads))]
    }
    return [NDArray(channelsLast: ring(plan, input))]
  }

  /// Both kernels for an input of `shape`, checked against each other.
  static func plan(_ c: OpContext, _ shape: [Int], cache: PreparedWeights?) throws -> Plan {
    let wExpand = try c.input(3)
    let channels = wExpand.shape.first ?? 0
    guard wExpand.shape == [channels, shape[1], 1, 1] else {
      throw c.mismatch("expansion weights \(wExpand.shape) for \(shape[1]) input channels")
    }
    var depthwise = try Convolution.kernel(c, inputShape: [shape[0], channels, shape[2], shape[3]])
    guard depthwise.isDepthwise else { throw c.mismatch("the convolution after the expansion is not depthwise") }
    let expandBias = c.optionalInput(4)?.floatValues()
    if let expandBias, expandBias.count != channels {
      throw c.mismatch("expansion bias of \(expandBias.count) for \(channels) channels")
    }
    let flat = WindowAxis(input: 0, kernel: 1, stride: 1, dilation: 1, padBegin: 0, padEnd: 0, output: 0)
    let axes = [shape[2], shape[3]].map { size in
      var axis = flat
      (axis.input, axis.output) = (size, size)
      return axis
    }
    var expand = ConvKernel(n: shape[0], cin: shape[1], cout: channels, group: 1, axes: axes, weights: [],
                            bias: expandBias, epilogue: try Pointwise.decode(c.floats(expandStepsAttribute) ?? []))
    let threads = expand.macs + depthwise.macs * Convolution.depthwiseCostPerMAC < Convolution.parallelMACs ? 1 : c.threads
    let fused = forcedFusion ?? prefersRing(depthwise, threads: threads)
    func prepared(_ label: String, input: Int, into kernel: ConvKernel, _ make: @escaping (ConvKernel) -> [[Float]])
      throws -> [[Float]]
    {
      let weights = try c.input(input)
      let fresh = {
        var full = kernel
        full.weights = weights.standard().floatValues()
        return make(full)
      }
      guard let cache else { return fresh() }
      return cache.value(c.index, label, make: fresh)
    }
    // The ring runs the expansion's product on its own rows; the two
    // convolutions one after the other take the form their kernels choose.
    expand.panels = try fused
      ? prepared("expand-panels", input: 3, into: expand) { [$0.productPanels(group: 0)] }
      : prepared("expand-kernel", input: 3, into: expand) { $0.packedPanels() }
    depthwise.panels = try prepared("conv-panels", input: 1, into: depthwise) { $0.packedPanels() }
    let path = (fused ? "ring:" : "") + "expand" + Pointwise.describe(expand.epilogue) + ",depthwise"
      + Pointwise.describe(depthwise.epilogue)
    return Plan(expand: expand, depthwise: depthwise, fused: fused, threads: threads, path: path)
  }

  /// Whether the ring is the faster way: each thread's band expands the
  /// rows its first window reaches above the band again, so the ring wants
  /// bands at least four times as tall as that overlap.
  static func prefersRing(_ depthwise: ConvKernel, threads: Int) -> Bool {
    let axis = depthwise.axes[0]
    let bandRows = depthwise.n * axis.output / max(1, threads) * axis.stride
    return bandRows >= 4 * max(0, axis.extent - axis.stride)
  }

  /// The ring: per band of output rows, each input row the band's windows
  /// read is expanded once into one of `extent` slots (row y in slot
  /// y % extent, so the rows of one window never share a slot), and the
  /// depthwise row reads its rows from the slots.
  static func ring(_ plan: Plan, _ input: Tensor) -> Tensor {
    let (expand, depthwise) = (plan.expand, plan.depthwise)
    let (w, cin, channels) = (depthwise.axes[1].input, expand.cin, expand.cout)
    let rowFloats = w * channels
    let slots = depthwise.axes[0].extent
    var output = Tensor.uninitialized(shape: [depthwise.n, depthwise.axes[0].output, depthwise.axes[1].output,
                                              channels])  // (N, OH, OW, C)
    let bands = Parallel.ranges(depthwise.n * depthwise.axes[0].output, parts: plan.threads)
    let rings = ConvKernel.scratch(bands.count, floats: slots * rowFloats)  // per band (extent, W, C)
    let expandPanels = expand.panels![0], taps = depthwise.panels![0]
    let expandBias = expand.bias ?? [], depthwiseBias = depthwise.bias ?? []
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        expandPanels.withUnsafeBufferPointer { ep in taps.withUnsafeBufferPointer { tp in
          expandBias.withUnsafeBufferPointer { eb in depthwiseBias.withUnsafeBufferPointer { db in
            let eBias = expand.bias == nil ? nil : eb.baseAddress, dBias = depthwise.bias == nil ? nil : db.baseAddress
            Parallel.run(bands.count) { band in
              let ring = rings[band].pointer.assumingMemoryBound(to: Float.self)
              var held = [Int](repeating: -1, count: slots)  // the input row (flat over images) in each slot
              var rows = [UnsafePointer<Float>?](repeating: nil, count: depthwise.axes[0].kernel)
              var geometry = depthwise.geometry
              for row in bands[band] {
                for ky in rows.indices {
                  guard let y = depthwise.inputRow(row, ky: ky) else { rows[ky] = nil; continue }
                  let slot = ring + y % slots * rowFloats
                  if held[y % slots] != y {
                    expand.productRows(w, width: channels, k: cin, src.baseAddress! + y * w * cin, lda: cin,
                                       panels: ep.baseAddress!, bias: eBias, into: slot, ldc: channels)
                    held[y % slots] = y
                  }
                  rows[ky] = UnsafePointer(slot)
                }
                depthwise.depthwiseRow(row, of: dst.baseAddress!, rows, taps: tp.baseAddress!, bias: dBias, &geometry)
              }
            }
          } }
        } }
      }
    }
    return output
  }
}
