/// NonMaxSuppression: per image and class, boxes taken greedily by falling
/// score, each dropping the later ones it overlaps by more than the IoU
/// threshold (as ONNX Runtime selects them).
enum Detection {
  static func register(_ table: inout OperatorTable) {
    table.add("NonMaxSuppression", outputs: [.fixed(.int64)]) { c in [try nonMaxSuppression(c)] }
  }

  static func nonMaxSuppression(_ c: OpContext) throws -> NDArray {
    let boxes = try c.input(0).standard(), scores = try c.input(1).standard()
    guard boxes.rank == 3, boxes.shape[2] == 4, scores.rank == 3, scores.shape[0] == boxes.shape[0],
      scores.shape[2] == boxes.shape[1]
    else { throw c.mismatch("boxes \(boxes.shape) and scores \(scores.shape)") }
    let limit = c.optionalInput(2)?.intValues().first ?? 0
    let iouThreshold = c.optionalInput(3)?.floatValues().first ?? 0
    let scoreThreshold = c.optionalInput(4)?.floatValues().first
    let centered = try c.int("center_point_box", default: 0) == 1
    let (batches, classes, count) = (scores.shape[0], scores.shape[1], scores.shape[2])
    let b = boxes.floatValues(), s = scores.floatValues()
    // Corners (y1, x1, y2, x2) with y1 <= y2 and x1 <= x2.
    func corners(_ batch: Int, _ i: Int) -> (Float, Float, Float, Float) {
      let v = (0..<4).map { b[(batch * count + i) * 4 + $0] }
      if centered { return (v[1] - v[3] / 2, v[0] - v[2] / 2, v[1] + v[3] / 2, v[0] + v[2] / 2) }
      return (Swift.min(v[0], v[2]), Swift.min(v[1], v[3]), Swift.max(v[0], v[2]), Swift.max(v[1], v[3]))
    }
    func iou(_ p: (Float, Float, Float, Float), _ q: (Float, Float, Float, Float)) -> Float {
      let h = Swift.max(0, Swift.min(p.2, q.2) - Swift.max(p.0, q.0)), w = Swift.max(0, Swift.min(p.3, q.3) - Swift.max(p.1, q.1))
      let inter = h * w
      let union = (p.2 - p.0) * (p.3 - p.1) + (q.2 - q.0) * (q.3 - q.1) - inter
      return inter <= 0 || union <= 0 ? 0 : inter / union
    }
    var selected: [Int64] = []
    for batch in 0..<batches {
      for cls in 0..<classes where limit > 0 {
        let base = (batch * classes + cls) * count
        let candidates = (0..<count).filter { scoreThreshold == nil || s[base + $0] > scoreThreshold! }
          .sorted { s[base + $0] > s[base + $1] || (s[base + $0] == s[base + $1] && $0 < $1) }
        var kept: [Int] = []
        for i in candidates where kept.count < limit {
          let box = corners(batch, i)
          if kept.allSatisfy({ iou(corners(batch, $0), box) <= iouThreshold }) { kept.append(i) }
        }
        for i in kept { selected += [Int64(batch), Int64(cls), Int64(i)] }
      }
    }
    return NDArray(shape: [selected.count / 3, 3], int64s: selected)
  }
}
