import AtrousCore
import _CKernels

/// Ops that move elements without arithmetic, and the shape computations
/// exported graphs carry (Shape, Gather, Unsqueeze, Concat on int64 ...).
enum ShapeOps {
  /// Shape's output: the dims of `shape` from `start` to `end` (negative
  /// counting from the end, both clamped), as int64.
  static func shapeValue(_ shape: [Int], start: Int, end: Int) -> NDArray {
    let rank = shape.count
    let s = max(0, min(rank, start < 0 ? start + rank : start)), e = max(s, min(rank, end < 0 ? end + rank : end))
    let dims = shape[s..<e].map(Int64.init)
    return NDArray(shape: [dims.count], int64s: dims)
  }

  static func register(_ table: inout OperatorTable) {
    table["Reshape"] = { c in try reshape(c) }
    table["Flatten"] = { c in
      let x = try c.input(0)
      let axis = try c.int("axis", default: 1)
      let a = axis < 0 ? axis + x.rank : axis
      guard a >= 0 && a <= x.rank else { throw c.invalid("axis", "\(axis) is outside a rank-\(x.rank) tensor") }
      return [x.reshaped([x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)])]
    }
    table["Transpose"] = { c in
      let given = try c.input(0)
      let order = try c.ints("perm") ?? Array((0..<given.rank).reversed())
      guard order.sorted() == Array(0..<given.rank) else {
        throw c.invalid("perm", "\(order) is not a permutation of \(given.rank) axes")
      }
      if given.rank <= 1 { return [given] }  // nothing moves (and a scalar has no axis to walk)
      // Channels-last storage already is the (N, H, W, C) array, and an
      // (N, H, W, C) array is the channels-last storage of its NCHW
      // transpose: no element moves (ConvNeXt's Transpose-LayerNorm-Transpose).
      if given.isFloat, given.rank == 4, given.channelsLast, order == [0, 2, 3, 1], let storage = given.storage {
        return [NDArray(shape: storage.shape, floats: storage, dtype: given.dtype)]
      }
      if given.isFloat, given.rank == 4, !given.channelsLast, order == [0, 3, 1, 2], let storage = given.storage {
        return [NDArray(channelsLast: storage, dtype: given.dtype)]
      }
      return [permute(given.standard(), order)]
    }
    table["Concat"] = { c in try concat(c) }
    table.add("Shape", outputs: [.fixed(.int64)]) { c in
      let x = try c.input(0)
      return [shapeValue(x.shape, start: try c.int("start", default: 0), end: try c.int("end", default: x.rank))]
    }
    table.add("Size", outputs: [.fixed(.int64)]) { c in [NDArray(shape: [], int64s: [Int64(try c.input(0).count)])] }
    table["Gather"] = { c in try gather(c) }
    table["Unsqueeze"] = { c in
      let x = try c.input(0)
      let axes = try c.opset >= 13 ? c.input(1).intValues() : (c.ints("axes") ?? [])
      let rank = x.rank + axes.count
      let normalised = try axes.map { try c.axis($0, rank: rank, attribute: "axes") }.sorted()
      var shape = x.shape
      for a in normalised { shape.insert(1, at: a) }
      return [x.reshaped(shape)]
    }
    table["Squeeze"] = { c in
      let x = try c.input(0)
      let given = try c.opset >= 13 ? c.optionalInput(1)?.intValues() : c.ints("axes")
      let axes = try given.map { try $0.map { try c.axis($0, rank: x.rank, attribute: "axes") } }
        ?? x.shape.indices.filter { x.shape[$0] == 1 }
      for a in axes where x.shape[a] != 1 { throw c.mismatch("cannot squeeze axis \(a) of \(x.shape)") }
      return [x.reshaped(x.shape.indices.filter { !axes.contains($0) }.map { x.shape[$0] })]
    }
    table.add("Constant", outputs: [.kernel]) { c in
      switch c.node.attributes["value"] {
      case .tensor(let value)?: return [value]
      default: break
      }
      if case .float(let v)? = c.node.attributes["value_float"] { return [NDArray(shape: [], floats: [v])] }
      if case .floats(let v)? = c.node.attributes["value_floats"] { return [NDArray(shape: [v.count], floats: v)] }
      if case .int(let v)? = c.node.attributes["value_int"] { return [NDArray(shape: [], int64s: [Int64(v)])] }
      if case .ints(let v)? = c.node.attributes["value_ints"] { return [NDArray(shape: [v.count], int64s: v.map(Int64.init))] }
      throw c.invalid("value", "Constant without a value")
    }
    table.add("ConstantOfShape", outputs: [.kernel]) { c in
      let shape = try c.shapeInput(0)
      var fill = NDArray(shape: [1], floats: [0])
      if case .tensor(let value)? = c.node.attributes["value"] {
        guard value.count == 1 else { throw c.invalid("value", "\(value.count) elements, one expected") }
        fill = value.reshaped([1])
      }
      return [fill.broadcast(to: shape)]
    }
    table.add("Cast", outputs: [.kernel]) { c in
      let x = try c.input(0)
      let to = try c.int("to", default: 1)
      guard let type = DType(rawValue: to) else { throw c.unsupported("to", DType.name(to)) }
      return [x.cast(to: type)]
    }
    table.add("CastLike", outputs: [.input(1)]) { c in [try c.input(0).cast(to: c.input(1).dtype)] }
    table["Slice"] = { c in try slice(c) }
    table["Pad"] = { c in try pad(c) }
    table["DepthToSpace"] = { c in
      let x = try c.input(0).standard()
      let bs = try c.int("blocksize") ?? 0
      guard x.rank == 4, bs > 0, x.shape[1] % (bs * bs) == 0 else {
        throw c.invalid("blocksize", "\(bs) does not divide the channels of \(x.shape)")
      }
      let (n, ch, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
      let mode = try c.string("mode", default: "DCR")
      let split: NDArray, order: [Int]
      switch mode {
      case "DCR":
        split = x.reshaped([n, bs, bs, ch / (bs * bs), h, w])
        order = [0, 3, 4, 1, 5, 2]
      case "CRD":
        split = x.reshaped([n, ch / (bs * bs), bs, bs, h, w])
        order = [0, 1, 4, 2, 5, 3]
      default: throw c.unsupported("mode", mode)
      }
      return [permute(split, order).reshaped([n, ch / (bs * bs), h * bs, w * bs])]
    }

    table.describe(["Concat", "Constant", "Cast", "CastLike", "Pad"], spatiallyLocal: true)
    table.describe(["Concat", "Slice", "Transpose"], tracesShapes: true)
    table.describe(["Pad"], floatData: true, field: { base, t in
      // Spatial begin pads from the attribute (before opset 11) or the constant input.
      var pads = t.ints("pads") ?? []
      if pads.isEmpty, t.node.inputs.count > 1, let value = t.constants[t.node.inputs[1]] { pads = value.intValues() }
      guard pads.count == 8 else { return base }
      var out = base
      for d in 0..<2 { out.start[d] -= Double(pads[d + 2]) * base.jump[d] }
      return out
    })
    table.describe(["Flatten"], field: ReceptiveField.wholeMapRule)
  }

  static func permute(_ x: NDArray, _ order: [Int]) -> NDArray {
    let shape = order.map { x.shape[$0] }
    switch x.elements {
    case .float(let tensor): return NDArray(shape: shape, floats: Permute.apply(tensor.reshaped(x.shape), order: order))
    case .int64(let values):
      let permuted = Permute.apply(Tensor(shape: x.shape, values: values.map { Float($0) }), order: order)
      return NDArray(shape: shape, int64s: permuted.scalars.map { Int64($0) })
    }
  }

  static func reshape(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0)
    let requested = try c.opset >= 5 ? c.shapeInput(1, allowSpecial: true) : (c.ints("shape") ?? [])
    try c.checkShape(requested.filter { $0 > 0 }, what: "requested")
    let allowZero = try c.int("allowzero", default: 0) == 1
    var shape = requested.enumerated().map { i, d in d == 0 && !allowZero && i < x.rank ? x.shape[i] : d }
    if let unknown = shape.firstIndex(of: -1) {
      let known = shape.enumerated().filter { $0.offset != unknown }.map(\.element).reduce(1, *)
      guard known > 0, x.count % known == 0 else { throw c.mismatch("cannot reshape \(x.shape) to \(requested)") }
      shape[unknown] = x.count / known
    }
    guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == x.count else {
      throw c.mismatch("cannot reshape \(x.shape) (\(x.count) elements) to \(requested)")
    }
    return [x.reshaped(shape)]
  }

  /// Inputs `index...` of a node that reads them as one concatenation
  /// along the channels without making it (`ConcatBatchNorm`,
  /// `ConcatConvolution`): at least one, each (N, C_i, H, W), agreeing in
  /// all but C_i.
  static func channelParts(_ c: OpContext, from index: Int) throws -> [NDArray] {
    let parts = try (index..<c.inputs.count).map { try c.input($0) }
    guard let first = parts.first else { throw c.mismatch("no parts to concatenate") }
    for part in parts {
      guard part.rank == 4, part.shape[0] == first.shape[0], part.shape[2...] == first.shape[2...] else {
        throw c.mismatch("cannot concatenate \(part.shape) with \(first.shape) along the channels")
      }
    }
    return parts
  }

  /// `parts` as float32 channels-last storage, (N, H, W, C_i) each.
  static func channelsLastStores(_ parts: [NDArray]) -> [Tensor] {
    parts.map { ($0.isFloat ? $0 : $0.cast(to: .float32)).toChannelsLast().storage! }
  }

  static func concat(_ c: OpContext) throws -> [NDArray] {
    let parts = c.inputs.compactMap { $0 }
    guard let first = parts.first else { throw NNError.missingInput(node: c.node.name, op: c.op, input: "#0") }
    let axis = try c.axis(c.int("axis") ?? 0, rank: first.rank)
    for part in parts where part.rank != first.rank || part.shape.indices.contains(where: { $0 != axis && part.shape[$0] != first.shape[$0] }) {
      throw c.mismatch("cannot concatenate \(part.shape) with \(first.shape) along axis \(axis)")
    }
    var shape = first.shape
    shape[axis] = parts.map { $0.shape[axis] }.reduce(0, +)
    if parts.allSatisfy({ !$0.isFloat }) {
      let values = concatenate(parts.map { $0.intValues().map(Int64.init) }, shapes: parts.map(\.shape), axis: axis)
      return [NDArray(shape: shape, int64s: values)]
    }
    if c.shapesOnly { return [NDArray(shape: shape, floats: Tensor.uninitialized(shape: shape), dtype: first.dtype)] }
    if first.rank == 4 && parts.contains(where: \.channelsLast) {
      // Concatenate the channels-last storage along the matching physical axis.
      let physicalAxis = [0, 3, 1, 2][axis]
      let stores = parts.map { $0.toChannelsLast().storage! }
      var physical = stores[0].shape
      physical[physicalAxis] = stores.map { $0.shape[physicalAxis] }.reduce(0, +)
      return [NDArray(channelsLast: concatenate(stores, into: physical, axis: physicalAxis, threads: c.threads))]
    }
    // In standard order: per index of the axes before `axis`, each part's block.
    return [NDArray(shape: shape, floats: concatenate(parts.map { $0.floatTensor() }, into: shape, axis: axis, threads: c.threads))]
  }

  /// Row-major concatenation of tensors along `axis` into one new tensor
  /// of `shape`: per index of the axes before it, each part's block in
  /// turn (`atr_concat_rows`), ranges of those indices across `threads`
  /// when there is enough to copy; with fewer such indices than threads
  /// (the channels of one image), the blocks in pieces of `copyPiece`
  /// floats across them.
  static func concatenate(_ parts: [Tensor], into shape: [Int], axis: Int, threads: Int = 1) -> Tensor {
    var output = Tensor.uninitialized(shape: shape)
    let outer = shape[..<axis].reduce(1, *)
    let blocks = parts.map { $0.shape[axis...].reduce(1, *) }
    let total = blocks.reduce(0, +)
    let threads = outer * total >= Elementwise.parallelCopyThreshold ? threads : 1
    let ranges = Parallel.ranges(outer, parts: threads)
    withPointers(parts[...], []) { sources in
      output.withUnsafeMutableBufferPointer { out in
        if outer < threads {
          // (output offset, part, offset in the part, floats) per piece.
          var pieces: [(Int, Int, Int, Int)] = []
          for o in 0..<outer {
            var at = o * total
            for (p, block) in blocks.enumerated() {
              for start in stride(from: 0, to: block, by: copyPiece) {
                pieces.append((at + start, p, o * block + start, min(copyPiece, block - start)))
              }
              at += block
            }
          }
          Parallel.dynamic(pieces.count, workers: threads) { _, index in
            let (to, p, from, count) = pieces[index]
            (out.baseAddress! + to).update(from: sources[p]! + from, count: count)
          }
          return
        }
        Parallel.run(ranges.count) { part in
          let first = ranges[part].lowerBound
          let starts = zip(sources, blocks).map { source, block in source.map { $0 + first * block } }
          atr_concat_rows(out.baseAddress! + first * total, ranges[part].count, starts, blocks, blocks.count, nil, nil)
        }
      }
    }
    return output
  }

  /// Floats per piece of a concatenation's copy split across threads.
  static let copyPiece = 1 << 16

  /// `body` with the first element's address of each tensor (nil for an
  /// empty one).
  static func withPointers<R>(_ tensors: ArraySlice<Tensor>, _ held: [UnsafePointer<Float>?],
                                      _ body: ([UnsafePointer<Float>?]) -> R) -> R {
    guard let first = tensors.first else { return body(held) }
    return first.withUnsafeBufferPointer { withPointers(tensors.dropFirst(), held + [$0.baseAddress], body) }
  }

  /// Row-major concatenation of arrays along `axis`.
  static func concatenate<T>(_ arrays: [[T]], shapes: [[Int]], axis: Int) -> [T] {
    let outer = shapes[0][..<axis].reduce(1, *)
    let blocks = shapes.map { $0[axis...].reduce(1, *) }
    var result: [T] = []
    result.reserveCapacity(arrays.map(\.count).reduce(0, +))
    for o in 0..<outer {
      for (array, block) in zip(arrays, blocks) { result.append(contentsOf: array[(o * block)..<((o + 1) * block)]) }
    }
    return result
  }

  static func gather(_ c: OpContext) throws -> [NDArray] {
    let data = try c.input(0).standard()
    let indices = try c.input(1)
    let axis = try c.axis(c.int("axis", default: 0), rank: data.rank)
    let n = data.shape[axis]
    let index = try indices.intValues().map { i -> Int in
      let j = i < 0 ? i + n : i
      guard j >= 0 && j < n else { throw c.mismatch("index \(i) is outside axis \(axis) of length \(n)") }
      return j
    }
    let outer = data.shape[..<axis].reduce(1, *), inner = data.shape[(axis + 1)...].reduce(1, *)
    let shape = Array(data.shape[..<axis]) + indices.shape + Array(data.shape[(axis + 1)...])
    func pick<T>(_ values: [T]) -> [T] {
      var out: [T] = []
      out.reserveCapacity(outer * index.count * inner)
      for o in 0..<outer {
        for j in index { out.append(contentsOf: values[((o * n + j) * inner)..<((o * n + j + 1) * inner)]) }
      }
      return out
    }
    switch data.elements {
    case .float(let tensor):
      // Each picked block copied once, from the input's storage into the output's.
      var out = Tensor.uninitialized(shape: shape)
      tensor.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
          guard let source = src.baseAddress, let target = dst.baseAddress else { return }
          var at = 0
          for o in 0..<outer {
            for j in index {
              (target + at).update(from: source + (o * n + j) * inner, count: inner)
              at += inner
            }
          }
        }
      }
      return [NDArray(shape: shape, floats: out)]
    case .int64(let values): return [NDArray(shape: shape, int64s: pick(values))]
    }
  }

  static func slice(_ c: OpContext) throws -> [NDArray] {
    let given = try c.input(0)
    let starts: [Int], ends: [Int], axes: [Int], steps: [Int]
    if c.opset >= 10 {
      starts = try c.input(1).intValues()
      ends = try c.input(2).intValues()
      axes = c.optionalInput(3)?.intValues() ?? Array(0..<starts.count)
      steps = c.optionalInput(4)?.intValues() ?? [Int](repeating: 1, count: starts.count)
    } else {
      starts = try c.ints("starts") ?? []
      ends = try c.ints("ends") ?? []
      axes = try c.ints("axes") ?? Array(0..<starts.count)
      steps = [Int](repeating: 1, count: starts.count)
    }
    guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
      throw c.mismatch("\(starts.count) starts, \(ends.count) ends, \(axes.count) axes and \(steps.count) steps")
    }
    var ranges = given.shape.map { Strided(start: 0, step: 1, count: $0) }
    for k in axes.indices {
      let a = try c.axis(axes[k], rank: given.rank, attribute: "axes"), n = given.shape[a], step = steps[k]
      guard step != 0 else { throw c.invalid("steps", "a step of 0") }
      var s = starts[k] < 0 ? starts[k] + n : starts[k], e = ends[k] < 0 ? ends[k] + n : ends[k]
      if step > 0 {
        s = max(0, min(n, s)); e = max(0, min(n, e))
        ranges[a] = Strided(start: s, step: step, count: e > s ? (e - s - 1) / step + 1 : 0)
      } else {
        s = max(-1, min(n - 1, s)); e = max(-1, min(n - 1, e))
        ranges[a] = Strided(start: s, step: step, count: s > e ? (s - e - 1) / -step + 1 : 0)
      }
    }
    let shape = ranges.map(\.count)
    if c.shapesOnly && given.isFloat { return [NDArray(shape: shape, floats: Tensor.uninitialized(shape: shape), dtype: given.dtype)] }
    if given.isFloat, let storage = given.storage {
      // In the layout the data has: a channels-last array stays so.
      if given.channelsLast {
        let physical = [0, 2, 3, 1].map { ranges[$0] }
        return [NDArray(channelsLast: copy(storage, physical), dtype: given.dtype)]
      }
      return [NDArray(shape: shape, floats: copy(storage.reshaped(given.shape), ranges), dtype: given.dtype)]
    }
    let strides = NDArray.strides(given.shape)
    let offsets = IndexOps.offsets(shape) { index in
      var offset = 0
      for k in index.indices { offset += (ranges[k].start + index[k] * ranges[k].step) * strides[k] }
      return offset
    }
    return [given.gathered(offsets, shape: shape)]
  }

  /// Every `step`-th index from `start`, `count` of them.
  struct Strided {
    var start: Int, step: Int, count: Int
  }

  /// The elements of `input` (row-major, its own shape) at `ranges`, one
  /// per axis: rows along the last axis copied whole where its step is 1.
  static func copy(_ input: Tensor, _ ranges: [Strided]) -> Tensor {
    let shape = ranges.map(\.count)
    var output = Tensor.uninitialized(shape: shape)
    let total = shape.reduce(1, *)
    guard total > 0 else { return output }
    let rank = shape.count
    guard rank > 0 else {
      output.withUnsafeMutableBufferPointer { dst in input.withUnsafeBufferPointer { dst[0] = $0[0] } }
      return output
    }
    let strides = NDArray.strides(input.shape)
    let inner = ranges[rank - 1], innerStride = strides[rank - 1] * inner.step
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        var index = [Int](repeating: 0, count: rank)
        var o = 0
        while o < total {
          var offset = inner.start * strides[rank - 1]
          for k in 0..<(rank - 1) { offset += (ranges[k].start + index[k] * ranges[k].step) * strides[k] }
          if innerStride == 1 {
            (dst.baseAddress! + o).update(from: src.baseAddress! + offset, count: inner.count)
          } else {
            for i in 0..<inner.count { dst[o + i] = src[offset + i * innerStride] }
          }
          o += inner.count
          advance(&index, within: shape, axes: rank - 1)
        }
      }
    }
    return output
  }

  /// Pad: pads (begin for every axis, then end for every axis), modes
  /// constant, reflect, edge and wrap; negative pads crop.
  static func pad(_ c: OpContext) throws -> [NDArray] {
    let original = try c.input(0)
    let x = original.isFloat && original.rank == 4 ? original : original.standard()
    let mode = try c.string("mode", default: "constant")
    var pads: [Int], value: Float
    if c.opset >= 11 {
      pads = try c.input(1).intValues()
      value = c.optionalInput(2)?.floatValues().first ?? 0
      if let axesInput = c.optionalInput(3) {
        let axes = try axesInput.intValues().map { try c.axis($0, rank: x.rank, attribute: "axes") }
        guard pads.count == 2 * axes.count else { throw c.invalid("pads", "\(pads.count) values for \(axes.count) axes") }
        var full = [Int](repeating: 0, count: 2 * x.rank)
        for (k, a) in axes.enumerated() {
          full[a] = pads[k]
          full[a + x.rank] = pads[k + axes.count]
        }
        pads = full
      }
    } else {
      pads = try c.ints("pads") ?? c.ints("paddings") ?? []
      value = try c.float("value", default: 0)
    }
    guard pads.count == 2 * x.rank else { throw c.invalid("pads", "\(pads.count) values for a rank-\(x.rank) tensor") }
    let shape = (0..<x.rank).map { x.shape[$0] + pads[$0] + pads[$0 + x.rank] }
    guard shape.allSatisfy({ $0 >= 0 }) else { throw c.mismatch("pads \(pads) crop \(x.shape) below zero") }
    try c.checkShape(shape)
    guard ["constant", "edge", "reflect", "wrap"].contains(mode) else { throw c.unsupported("mode", mode) }
    if mode != "constant", let empty = x.shape.indices.first(where: { x.shape[$0] == 0 && shape[$0] > 0 }) {
      throw c.mismatch("\(mode) padding of the empty axis \(empty) of \(x.shape)")
    }
    if mode == "constant", pads.allSatisfy({ $0 >= 0 }), !x.channelsLast, case .float(let tensor) = x.elements, !c.shapesOnly {
      // In the layout it comes in: the value everywhere, then the input's
      // runs copied into the middle (`BroadcastRuns` over its shape, each
      // run's place in the output by the output's strides).
      let strides = NDArray.strides(shape)
      let origin = (0..<x.rank).reduce(0) { $0 + pads[$1] * strides[$1] }
      let runs = BroadcastRuns(shape: x.shape, strides: [strides])
      var out = Tensor.uninitialized(shape: shape)
      tensor.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
          guard let target = dst.baseAddress else { return }
          target.update(repeating: value, count: dst.count)
          guard let source = src.baseAddress else { return }
          let (run, step) = (runs.run, runs.runStrides[0])
          runs.forEachRun { input, offsets in
            let to = target + origin + offsets[0]
            if step == 1 { to.update(from: source + input, count: run) } else { for i in 0..<run { to[i * step] = source[input + i] } }
          }
        }
      }
      return [NDArray(shape: shape, floats: out, dtype: x.dtype)]
    }
    if x.isFloat, x.rank == 4, pads.allSatisfy({ $0 >= 0 }), [0, 1, 4, 5].allSatisfy({ pads[$0] == 0 }),
      ["constant", "edge", "reflect"].contains(mode)
    {
      if c.shapesOnly { return [NDArray(channelsLast: Tensor.uninitialized(shape: [shape[0], shape[2], shape[3], shape[1]]))] }
      return [padSpatial(x.toChannelsLast().storage!, top: pads[2], left: pads[3], bottom: pads[6], right: pads[7],
                         mode: mode, value: value, threads: c.threads)]
    }
    let values = x.standard().floatValues()
    var strides = [Int](repeating: 1, count: x.rank)
    for k in stride(from: x.rank - 2, through: 0, by: -1) { strides[k] = strides[k + 1] * x.shape[k + 1] }
    var out = [Float]()
    out.reserveCapacity(shape.reduce(1, *))
    var index = [Int](repeating: 0, count: x.rank)
    for _ in 0..<shape.reduce(1, *) {
      var offset = 0, inside = true
      for k in 0..<x.rank {
        var p = index[k] - pads[k]
        let n = x.shape[k]
        if p < 0 || p >= n {
          switch mode {
          case "constant": inside = false
          case "edge": p = min(max(p, 0), n - 1)
          case "wrap": p = ((p % n) + n) % n
          case "reflect":
            if n == 1 { p = 0 } else {
              let period = 2 * n - 2
              var m = p % period
              if m < 0 { m += period }
              p = m < n ? m : period - m
            }
          default: throw c.unsupported("mode", mode)
          }
        }
        offset += p * strides[k]
      }
      out.append(inside ? values[offset] : value)
      advance(&index, within: shape)
    }
    return [NDArray(shape: shape, floats: out)]
  }
}

/// Index of padded coordinate `p` (may be outside 0..<n) in the source.
@inline(__always)
private func sourceIndex(_ p: Int, _ n: Int, reflect: Bool) -> Int {
  if p >= 0 && p < n { return p }
  if !reflect || n == 1 { return min(max(p, 0), n - 1) }
  let period = 2 * n - 2
  var m = p % period
  if m < 0 { m += period }
  return m < n ? m : period - m
}

/// Pad on the spatial axes of (N, H, W, C) storage, rows across threads.
private func padSpatial(_ input: Tensor, top: Int, left: Int, bottom: Int, right: Int, mode: String, value: Float,
                        threads: Int) -> NDArray {
  let (n, h, w, ch) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
  let (oh, ow) = (h + top + bottom, w + left + right)
  var output = Tensor.uninitialized(shape: [n, oh, ow, ch])  // (N, OH, OW, C)
  let constant = mode == "constant", reflect = mode == "reflect"
  let borders = [0..<left, (left + w)..<ow]  // padded columns left and right of the copied row
  let bands = Parallel.ranges(n * oh, parts: threads)
  input.withUnsafeBufferPointer { src in
    output.withUnsafeMutableBufferPointer { dst in
      let source = src.baseAddress!, target = dst.baseAddress!
      Parallel.run(bands.count) { band in
        for row in bands[band] {
          let b = row / oh, y = row % oh - top
          let out = target + row * ow * ch
          if constant && (y < 0 || y >= h || h == 0 || w == 0) {
            out.update(repeating: value, count: ow * ch)
            continue
          }
          if h == 0 || w == 0 { continue }
          let line = source + (b * h + sourceIndex(y, h, reflect: reflect)) * w * ch
          (out + left * ch).update(from: line, count: w * ch)
          for border in borders {
            for x in border {
              if constant {
                (out + x * ch).update(repeating: value, count: ch)
              } else {
                (out + x * ch).update(from: line + sourceIndex(x - left, w, reflect: reflect) * ch, count: ch)
              }
            }
          }
        }
      }
    }
  }
  return NDArray(channelsLast: output)
}
