/// A broadcast shape walked a run at a time: the output of `shape` in
/// standard order and, per operand, the element strides it is read with
/// (0 along an axis it is repeated over). Neighbouring axes that every
/// operand steps through alike are merged first, so the innermost run is
/// as long as it can be: a per-channel vector added to an NCHW map is 64
/// runs of 16384 (one value, repeated), not 1M single elements, and a
/// tiled map is whole rows copied. The ops that move or combine elements
/// under NumPy's broadcasting (Expand, Tile, Where, binary arithmetic)
/// copy or compute each run with one vector loop or `memcpy`, instead of
/// an offset per element.
struct BroadcastRuns {
  /// The merged axes, innermost last; at least one (1 for a scalar).
  let shape: [Int]
  /// Per operand, its stride along each merged axis (elements).
  let strides: [[Int]]

  /// `strides[j]` holds operand j's stride along each axis of `shape`.
  init(shape: [Int], strides: [[Int]]) {
    var merged: [Int] = [], steps: [[Int]] = strides.map { _ in [] }
    for k in shape.indices where shape[k] != 1 {
      // Axis k joins the axis before it when every operand moves along
      // the earlier one by a whole pass of axis k.
      if let last = merged.last, strides.indices.allSatisfy({ steps[$0].last! == strides[$0][k] * shape[k] }) {
        merged[merged.count - 1] = last * shape[k]
        for j in strides.indices { steps[j][steps[j].count - 1] = strides[j][k] }
      } else {
        merged.append(shape[k])
        for j in strides.indices { steps[j].append(strides[j][k]) }
      }
    }
    if merged.isEmpty { (merged, steps) = ([1], strides.map { _ in [0] }) }
    self.shape = merged
    self.strides = steps
  }

  /// The runs of operands of `shapes` broadcast to `target` (NumPy rules,
  /// already checked), each operand read in standard order.
  init(_ shapes: [[Int]], to target: [Int]) {
    self.init(shape: target, strides: shapes.map { Elementwise.strides($0, to: target) })
  }

  /// Elements per run: the innermost merged axis.
  var run: Int { shape[shape.count - 1] }

  /// Each operand's stride within a run.
  var runStrides: [Int] { strides.map { $0[$0.count - 1] } }

  /// Calls `body(output, offsets)` for every run in standard order: the
  /// run's first output element and each operand's first element.
  func forEachRun(_ body: (_ output: Int, _ offsets: [Int]) -> Void) {
    let total = shape.reduce(1, *)
    guard total > 0 else { return }
    let outer = shape.count - 1
    var index = [Int](repeating: 0, count: outer)
    var offsets = [Int](repeating: 0, count: strides.count)
    var output = 0
    while output < total {
      body(output, offsets)
      output += run
      // The next outer index, and each operand's offset with it.
      var k = outer - 1
      while k >= 0 {
        index[k] += 1
        for j in strides.indices { offsets[j] += strides[j][k] }
        if index[k] < shape[k] { break }
        for j in strides.indices { offsets[j] -= strides[j][k] * shape[k] }
        index[k] = 0
        k -= 1
      }
    }
  }

  /// Copies the one operand's elements at `source`, read as these runs
  /// describe, into `target` in standard order: whole runs with one copy,
  /// repeated elements with one fill.
  func copy<Element>(_ source: UnsafePointer<Element>, into target: UnsafeMutablePointer<Element>) {
    let (run, step) = (self.run, runStrides[0])
    forEachRun { output, offsets in
      let from = source + offsets[0], to = target + output
      switch step {
      case 1: to.update(from: from, count: run)
      case 0: to.update(repeating: from.pointee, count: run)
      default: for i in 0..<run { to[i] = from[i * step] }
      }
    }
  }
}
