import AtrousCore

/// Ops that select, repeat, scatter or order elements: each computes flat
/// offsets and lets `NDArray.gathered` move the elements, whatever their type.
enum IndexOps {
  static func register(_ table: inout OperatorTable) {
    table["Split"] = { c in try split(c) }
    table["Expand"] = { c in
      let x = try c.input(0)
      let requested = try c.shapeInput(1)
      let shape = try Elementwise.broadcastShape(x.shape, requested, c)
      try c.checkShape(shape)
      return [x.broadcast(to: shape)]
    }
    table["Tile"] = { c in
      let x = try c.input(0).standard()
      let repeats = try c.shapeInput(1)
      guard repeats.count == x.rank else { throw c.mismatch("\(repeats.count) repeats for a rank-\(x.rank) input") }
      let shape = zip(x.shape, repeats).map(*)
      try c.checkShape(shape)
      // Each axis as (repeats, length): the input broadcast over the
      // repeats, then read as the tiled shape.
      let interleaved = zip(repeats, x.shape).flatMap { [$0, $1] }
      return [x.reshaped(x.shape.flatMap { [1, $0] }).broadcast(to: interleaved).reshaped(shape)]
    }
    table["Compress"] = { c in
      var x = try c.input(0).standard()
      let condition = try c.input(1).int64Values()
      var axis = 0
      if let given = try c.int("axis") { axis = try c.axis(given, rank: x.rank) } else { x = x.reshaped([x.count]) }
      let length = x.shape[axis]
      guard condition.count <= length || condition[length...].allSatisfy({ $0 == 0 }) else {
        throw c.mismatch("condition of \(condition.count) entries for an axis of \(length)")
      }
      let chosen = condition.indices.filter { condition[$0] != 0 && $0 < length }
      return [take(x, axis: axis, chosen)]
    }
    table["GatherElements"] = { c in
      let x = try c.input(0).standard()
      let indices = try c.input(1).standard()
      let axis = try c.axis(c.int("axis", default: 0), rank: x.rank)
      guard indices.rank == x.rank else { throw c.mismatch("indices of rank \(indices.rank) for data of rank \(x.rank)") }
      let found = try elementOffsets(x, indices, axis: axis, c)
      return [x.gathered(found, shape: indices.shape)]
    }
    table["GatherND"] = { c in try gatherND(c) }
    table["ScatterElements"] = { c in try scatterElements(c) }
    table["ScatterND"] = { c in try scatterND(c) }
    table.add("Where", outputs: [.input(1)]) { c in
      let condition = try c.input(0), a = try c.input(1), b = try c.input(2)
      let shape = try Elementwise.broadcastShape(Elementwise.broadcastShape(condition.shape, a.shape, c), b.shape, c)
      if a.isFloat {
        // A run at a time, each operand read where it is.
        let runs = BroadcastRuns([condition.shape, a.shape, b.shape], to: shape)
        let (flags, x, y) = (condition.int64Values(), a.floatTensor(), b.cast(to: a.dtype).floatTensor())
        let (run, sc, sa, sb) = (runs.run, runs.runStrides[0], runs.runStrides[1], runs.runStrides[2])
        var out = Tensor.uninitialized(shape: shape)
        flags.withUnsafeBufferPointer { f in x.withUnsafeBufferPointer { px in y.withUnsafeBufferPointer { py in
          out.withUnsafeMutableBufferPointer { po in
            runs.forEachRun { o, offsets in
              let (pf, pa, pb) = (f.baseAddress! + offsets[0], px.baseAddress! + offsets[1], py.baseAddress! + offsets[2])
              // The choice as a bit mask: a branch on the condition's
              // pattern (random, as often as not) cost more than the copy.
              for i in 0..<run {
                let mask = UInt32(truncatingIfNeeded: 0 &- Int64(pf[i &* sc] != 0 ? 1 : 0))
                po[o + i] = Float(bitPattern: (pa[i &* sa].bitPattern & mask) | (pb[i &* sb].bitPattern & ~mask))
              }
            }
          }
        } } }
        return [NDArray(shape: shape, floats: out, dtype: a.dtype)]
      }
      let flags = condition.broadcast(to: shape).int64Values()
      let (x, y) = (a.broadcast(to: shape), b.cast(to: a.dtype).broadcast(to: shape))
      let both = NDArray.joined([x, y], shape: [2] + shape)
      return [both.gathered(flags.indices.map { flags[$0] != 0 ? $0 : $0 + flags.count }, shape: shape)]
    }
    table.add("NonZero", outputs: [.fixed(.int64)]) { c in
      let x = try c.input(0).standard()
      let values = x.isFloat ? x.floatValues().map { $0 != 0 } : x.int64Values().map { $0 != 0 }
      let hits = values.indices.filter { values[$0] }
      let strides = NDArray.strides(x.shape)
      var out = [Int64](repeating: 0, count: x.rank * hits.count)
      for (n, flat) in hits.enumerated() {
        for k in 0..<x.rank { out[k * hits.count + n] = Int64((flat / strides[k]) % x.shape[k]) }
      }
      return [NDArray(shape: [x.rank, hits.count], int64s: out)]
    }
    table.add("OneHot", outputs: [.input(2)]) { c in
      let indices = try c.input(0)
      guard let depth = try c.input(1).floatValues().first, depth >= 1, depth < Float(maximumElements) else {
        throw c.mismatch("depth must be a positive scalar")
      }
      let values = try c.input(2)
      guard values.count == 2 else { throw c.mismatch("values has \(values.count) elements, 2 expected") }
      let d = Int(depth)
      let axis = try c.axis(c.int("axis", default: -1), rank: indices.rank + 1)
      var shape = indices.shape
      shape.insert(d, at: axis)
      try c.checkShape(shape)
      let positions = indices.floatValues().map { Int($0 < 0 ? $0 + depth : $0) }
      let picks = offsets(shape) { index -> Int in
        var flat = 0
        for k in index.indices where k != axis { flat = flat * shape[k] + index[k] }
        return positions[flat] == index[axis] ? 1 : 0
      }
      return [values.reshaped([2]).gathered(picks, shape: shape)]
    }
    table.add("Range", outputs: [.input(0)]) { c in
      let start = try c.input(0), limit = try c.input(1), delta = try c.input(2)
      for (name, v) in [("start", start), ("limit", limit), ("delta", delta)] where v.count != 1 {
        throw c.mismatch("\(name) of shape \(v.shape), a scalar expected")
      }
      // The element count as a Double first: a far limit (1e24) or a tiny
      // delta counts past Int.max, which the conversion would trap on.
      func count(_ quotient: Double) throws -> Int {
        let n = quotient.rounded(.up)
        guard n < 0x1p62 else { throw c.mismatch("a range of \(n) elements") }
        return n > 0 ? Int(n) : 0
      }
      if start.isFloat {
        let (s, l, d) = (Double(start.floatValues()[0]), Double(limit.floatValues()[0]), Double(delta.floatValues()[0]))
        guard d != 0, d.isFinite, s.isFinite, l.isFinite else { throw c.mismatch("delta of 0 or a bound not finite") }
        let n = try count((l - s) / d)
        try c.checkShape([n])
        return [NDArray(shape: [n], floats: (0..<n).map { Float(s + Double($0) * d) })]
      }
      let (s, l, d) = (start.int64Values()[0], limit.int64Values()[0], delta.int64Values()[0])
      guard d != 0 else { throw c.mismatch("delta of 0") }
      let n = try count((Double(l) - Double(s)) / Double(d))
      try c.checkShape([n])
      return [NDArray(shape: [n], int64s: (0..<n).map { s &+ Int64($0) &* d })]
    }
    table.add("EyeLike", outputs: [.kernel]) { c in
      let x = try c.input(0)
      guard x.rank == 2 else { throw c.mismatch("input of rank \(x.rank), 2 expected") }
      let k = try c.int("k", default: 0)
      let type = try c.int("dtype").map { code -> DType in
        guard let type = DType(rawValue: code) else { throw c.unsupported("dtype", DType.name(code)) }
        return type
      } ?? x.dtype
      let (rows, columns) = (x.shape[0], x.shape[1])
      let ones = (0..<(rows * columns)).map { $0 % columns - $0 / columns == k ? Int64(1) : 0 }
      return [NDArray(shape: x.shape, int64s: ones).cast(to: type)]
    }
    table["Trilu"] = { c in
      let x = try c.input(0).standard()
      guard x.rank >= 2 else { throw c.mismatch("input of rank \(x.rank)") }
      let k = c.optionalInput(1)?.intValues().first ?? 0
      let upper = try c.int("upper", default: 1) == 1
      let (rows, columns) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
      let zero = NDArray(shape: [1], int64s: [0]).cast(to: x.dtype)
      let both = NDArray.joined([x, zero], shape: [x.count + 1])
      let picks = (0..<x.count).map { i -> Int in
        let (row, column) = ((i / columns) % Swift.max(rows, 1), i % columns)
        let keep = upper ? column - row >= k : column - row <= k
        return keep ? i : x.count
      }
      return [both.gathered(picks, shape: x.shape)]
    }
    table["CumSum"] = { c in
      let x = try c.input(0).standard()
      guard let given = try c.input(1).intValues().first else { throw c.mismatch("no axis") }
      let axis = try c.axis(given, rank: x.rank)
      let exclusive = try c.int("exclusive", default: 0) == 1, reverse = try c.int("reverse", default: 0) == 1
      let inner = x.shape[(axis + 1)...].reduce(1, *), length = x.shape[axis], outer = x.count / Swift.max(length * inner, 1)
      func scan<T>(_ values: [T], zero: T, _ add: (T, T) -> T) -> [T] {
        var out = values
        for o in 0..<outer {
          for i in 0..<inner {
            var total = zero
            for step in 0..<length {
              let k = reverse ? length - 1 - step : step
              let at = (o * length + k) * inner + i
              if exclusive { out[at] = total; total = add(total, values[at]) } else { total = add(total, values[at]); out[at] = total }
            }
          }
        }
        return out
      }
      if x.isFloat {
        return [NDArray(shape: x.shape, floats: scan(x.floatValues().map(Double.init), zero: 0, +).map { Float($0) })]
      }
      return [NDArray(shape: x.shape, int64s: scan(x.int64Values(), zero: 0, &+), dtype: x.dtype)]
    }
    table.add("TopK", outputs: [.input(0), .fixed(.int64)]) { c in try topK(c) }
    table["SpaceToDepth"] = { c in
      let x = try c.input(0).standard()
      let bs = try c.int("blocksize") ?? 0
      guard x.rank == 4, bs > 0, x.shape[2] % bs == 0, x.shape[3] % bs == 0 else {
        throw c.invalid("blocksize", "\(bs) does not divide the spatial size of \(x.shape)")
      }
      let (n, ch, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
      let split = x.reshaped([n, ch, h / bs, bs, w / bs, bs])
      let order: [Int]
      switch try c.string("mode", default: "DCR") {
      case "DCR": order = [0, 3, 5, 1, 2, 4]
      case "CRD": order = [0, 1, 3, 5, 2, 4]
      case let other: throw c.unsupported("mode", other)
      }
      return [ShapeOps.permute(split, order).reshaped([n, ch * bs * bs, h / bs, w / bs])]
    }
    table["CenterCropPad"] = { c in
      let x = try c.input(0).standard()
      let sizes = try c.shapeInput(1)
      let axes = try (c.ints("axes") ?? Array(0..<x.rank)).map { try c.axis($0, rank: x.rank, attribute: "axes") }
      guard sizes.count == axes.count else { throw c.mismatch("\(sizes.count) sizes for \(axes.count) axes") }
      var shape = x.shape
      var shift = [Int](repeating: 0, count: x.rank)  // output index minus input index, per axis
      for (a, size) in zip(axes, sizes) {
        shape[a] = size
        // Cropping takes the extra element from the start, padding puts it at the end.
        shift[a] = size <= x.shape[a] ? -((x.shape[a] - size) / 2) : (size - x.shape[a]) / 2
      }
      try c.checkShape(shape)
      let zero = NDArray(shape: [1], int64s: [0]).cast(to: x.dtype)
      let both = NDArray.joined([x, zero], shape: [x.count + 1])
      let strides = NDArray.strides(x.shape)
      return [both.gathered(offsets(shape) { index in
        var offset = 0
        for k in index.indices {
          let source = index[k] - shift[k]
          if source < 0 || source >= x.shape[k] { return x.count }
          offset += source * strides[k]
        }
        return offset
      }, shape: shape)]
    }
  }

  /// `offset(index)` for every multi-index of `shape`, in standard order.
  static func offsets(_ shape: [Int], _ offset: ([Int]) -> Int) -> [Int] {
    let total = shape.reduce(1, *)
    var out = [Int](repeating: 0, count: total)
    var index = [Int](repeating: 0, count: shape.count)
    for i in 0..<total {
      out[i] = offset(index)
      advance(&index, within: shape)
    }
    return out
  }

  /// For GatherElements and ScatterElements: the offset in `x` of each
  /// element of `indices`, which names a position along `axis` (negative
  /// from the end) and keeps its own position along the other axes.
  static func elementOffsets(_ x: NDArray, _ indices: NDArray, axis: Int, _ c: OpContext) throws -> [Int] {
    let strides = NDArray.strides(x.shape)
    let positions = indices.intValues()
    var i = 0, failure: String? = nil
    let found = offsets(indices.shape) { index -> Int in
      defer { i += 1 }
      var j = positions[i]
      if j < 0 { j += x.shape[axis] }
      guard j >= 0, j < x.shape[axis], zip(index, x.shape).allSatisfy({ $0.0 < $0.1 }) else {
        failure = "index \(positions[i]) is outside axis \(axis) of \(x.shape)"
        return 0
      }
      var offset = 0
      for k in index.indices { offset += (k == axis ? j : index[k]) * strides[k] }
      return offset
    }
    if let failure { throw c.mismatch(failure) }
    return found
  }

  /// The slices `chosen` of `axis`, in that order.
  static func take(_ x: NDArray, axis: Int, _ chosen: [Int]) -> NDArray {
    var shape = x.shape
    shape[axis] = chosen.count
    let inner = x.shape[(axis + 1)...].reduce(1, *), length = x.shape[axis]
    let outer = x.shape[..<axis].reduce(1, *)
    var picks: [Int] = []
    picks.reserveCapacity(outer * chosen.count * inner)
    for o in 0..<outer { for j in chosen { for i in 0..<inner { picks.append((o * length + j) * inner + i) } } }
    return x.gathered(picks, shape: shape)
  }

  static func split(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0)
    guard x.rank >= 1 else { throw c.mismatch("a scalar cannot be split") }
    let axis = try c.axis(c.int("axis", default: 0), rank: x.rank)
    let length = x.shape[axis], outputs = c.node.outputs.count
    var sizes: [Int]
    if let given = try c.opset >= 13 ? c.optionalInput(1)?.intValues() : c.ints("split") {
      sizes = given
    } else {
      let parts = try c.int("num_outputs") ?? outputs
      guard parts == outputs else { throw c.invalid("num_outputs", "\(parts) for \(outputs) outputs") }
      // Equal parts, the last one smaller when the axis does not divide.
      let size = (length + parts - 1) / parts
      sizes = (0..<parts).map { Swift.max(0, Swift.min(size, length - $0 * size)) }
    }
    guard sizes.count == outputs, sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == length else {
      throw c.mismatch("split \(sizes) does not cut axis \(axis) of \(x.shape) into \(outputs) parts")
    }
    var start = 0
    return sizes.map { size in
      defer { start += size }
      guard x.isFloat, let storage = x.storage else { return take(x.standard(), axis: axis, Array(start..<(start + size))) }
      // Floats are copied row by row in the layout they have.
      var ranges = x.shape.map { ShapeOps.Strided(start: 0, step: 1, count: $0) }
      ranges[axis] = ShapeOps.Strided(start: start, step: 1, count: size)
      if x.channelsLast {
        return NDArray(channelsLast: ShapeOps.copy(storage, [0, 2, 3, 1].map { ranges[$0] }), dtype: x.dtype)
      }
      return NDArray(shape: ranges.map(\.count), floats: ShapeOps.copy(storage.reshaped(x.shape), ranges), dtype: x.dtype)
    }
  }

  static func gatherND(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0).standard(), indices = try c.input(1).standard()
    let batch = try c.int("batch_dims", default: 0)
    guard indices.rank >= 1, batch >= 0, batch < Swift.min(x.rank, indices.rank) else { throw c.invalid("batch_dims", "\(batch)") }
    let depth = indices.shape[indices.rank - 1]
    guard depth >= 1, batch + depth <= x.rank else { throw c.mismatch("index tuples of \(depth) for data \(x.shape)") }
    // The batch axes pair data and indices one to one.
    guard Array(indices.shape[..<batch]) == Array(x.shape[..<batch]) else {
      throw c.mismatch("indices \(indices.shape) and data \(x.shape) differ in their first \(batch) (batch) axes")
    }
    let inner = x.shape[(batch + depth)...].reduce(1, *)
    let shape = Array(indices.shape.dropLast()) + Array(x.shape[(batch + depth)...])
    let tuples = indices.count / depth
    let perBatch = tuples / Swift.max(indices.shape[..<batch].reduce(1, *), 1)
    let batchSize = x.shape[batch...].reduce(1, *)
    let strides = NDArray.strides(x.shape)
    let positions = indices.intValues()
    var picks: [Int] = []
    picks.reserveCapacity(tuples * inner)
    for t in 0..<tuples {
      var offset = (t / Swift.max(perBatch, 1)) * batchSize
      for k in 0..<depth {
        let axis = batch + k
        var j = positions[t * depth + k]
        if j < 0 { j += x.shape[axis] }
        guard j >= 0 && j < x.shape[axis] else { throw c.mismatch("index \(positions[t * depth + k]) is outside axis \(axis)") }
        offset += j * strides[axis]
      }
      for i in 0..<inner { picks.append(offset + i) }
    }
    return [x.gathered(picks, shape: shape)]
  }

  /// How a scatter combines an update with the value already there.
  static func combine(_ c: OpContext) throws -> (Double, Double) -> Double {
    switch try c.string("reduction", default: "none") {
    case "none": return { _, u in u }
    case "add": return { $0 + $1 }
    case "mul": return { $0 * $1 }
    case "max": return { Swift.max($0, $1) }
    case "min": return { Swift.min($0, $1) }
    case let other: throw c.unsupported("reduction", other)
    }
  }

  /// Writes `updates` into a copy of `x` at `targets` (flat offsets).
  static func scatter(_ x: NDArray, _ updates: NDArray, targets: [Int], _ combine: (Double, Double) -> Double) -> NDArray {
    if x.isFloat {
      var out = x.floatValues().map(Double.init)
      for (u, t) in zip(updates.floatValues(), targets) { out[t] = combine(out[t], Double(u)) }
      return NDArray(shape: x.shape, floats: out.map { Float($0) })
    }
    var out = x.int64Values()
    for (u, t) in zip(updates.int64Values(), targets) { out[t] = DType.int64.integer(Float(combine(Double(out[t]), Double(u)))) }
    return NDArray(shape: x.shape, int64s: out, dtype: x.dtype)
  }

  static func scatterElements(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0).standard(), indices = try c.input(1).standard(), updates = try c.input(2).standard()
    let axis = try c.axis(c.int("axis", default: 0), rank: x.rank)
    guard indices.shape == updates.shape, indices.rank == x.rank else {
      throw c.mismatch("indices \(indices.shape) and updates \(updates.shape) for data \(x.shape)")
    }
    let targets = try elementOffsets(x, indices, axis: axis, c)
    return [scatter(x, updates, targets: targets, try combine(c))]
  }

  static func scatterND(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0).standard(), indices = try c.input(1).standard(), updates = try c.input(2).standard()
    guard indices.rank >= 1 else { throw c.mismatch("indices of rank 0") }
    let depth = indices.shape[indices.rank - 1]
    guard depth >= 1, depth <= x.rank else { throw c.mismatch("index tuples of \(depth) for data \(x.shape)") }
    let inner = x.shape[depth...].reduce(1, *)
    let tuples = indices.count / depth
    guard updates.count == tuples * inner else { throw c.mismatch("updates \(updates.shape) for \(tuples) tuples") }
    let strides = NDArray.strides(x.shape)
    let positions = indices.intValues()
    var targets: [Int] = []
    targets.reserveCapacity(tuples * inner)
    for t in 0..<tuples {
      var offset = 0
      for k in 0..<depth {
        var j = positions[t * depth + k]
        if j < 0 { j += x.shape[k] }
        guard j >= 0 && j < x.shape[k] else { throw c.mismatch("index \(positions[t * depth + k]) is outside axis \(k)") }
        offset += j * strides[k]
      }
      for i in 0..<inner { targets.append(offset + i) }
    }
    return [scatter(x, updates, targets: targets, try combine(c))]
  }

  /// TopK: the k largest (or smallest) along an axis, with their indices;
  /// ties keep the lower index first.
  static func topK(_ c: OpContext) throws -> [NDArray] {
    let x = try c.input(0).standard()
    guard let k = try c.opset >= 10 ? c.input(1).intValues().first : c.int("k") else { throw c.mismatch("no k") }
    let axis = try c.axis(c.int("axis", default: -1), rank: x.rank)
    let largest = try c.int("largest", default: 1) == 1
    let length = x.shape[axis]
    guard k >= 0 && k <= length else { throw c.mismatch("k = \(k) for an axis of \(length)") }
    let inner = x.shape[(axis + 1)...].reduce(1, *), outer = x.count / Swift.max(length * inner, 1)
    let values: [Double] = x.isFloat ? x.floatValues().map(Double.init) : x.int64Values().map(Double.init)
    var shape = x.shape
    shape[axis] = k
    var picks: [Int] = [], positions: [Int64] = []
    picks.reserveCapacity(outer * k * inner)
    var order = [Int](repeating: 0, count: outer * k * inner)
    for o in 0..<outer {
      for i in 0..<inner {
        let base = o * length * inner + i
        let sorted = (0..<length).sorted { a, b in
          let (u, v) = (values[base + a * inner], values[base + b * inner])
          if u == v || (u.isNaN && v.isNaN) { return a < b }
          if u.isNaN { return largest }
          if v.isNaN { return !largest }
          return largest ? u > v : u < v
        }
        for j in 0..<k { order[(o * k + j) * inner + i] = sorted[j] }
      }
    }
    for (n, j) in order.enumerated() {
      let (o, i) = (n / (k * inner), n % inner)
      picks.append((o * length + j) * inner + i)
      positions.append(Int64(j))
    }
    return [x.gathered(picks, shape: shape), NDArray(shape: shape, int64s: positions)]
  }
}
