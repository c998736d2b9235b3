/// Per-node data derived from constant weights, computed on first use and
/// kept for later runs of the same executor, keyed by node index and a
/// label of what it is; and per-node plans, keyed by node index and the
/// facts of the input they were made for.
final class PreparedWeights: Sendable {
  struct Key: Hashable {
    var node: Int
    var label: String
  }

  /// Arrays of floats, or `AlignedStorage` where the prepared form is
  /// large and written once (Winograd's transformed kernels: pooled
  /// memory, on huge pages from 4 MiB, where a fresh process's first run
  /// finds pages already faulted in; an array's pages are faulted one by
  /// one); a label always holds values of one type.
  private let store = MemoCache<Key, Any>()

  func value<Value>(_ node: Int, _ label: String, make: () -> Value) -> Value {
    store.value(Key(node: node, label: label), make: make) as! Value
  }

  /// What a node settles once for inputs of one shape and layout (its
  /// geometry, strategy, bias and fused steps), so later runs only execute.
  struct PlanKey: Hashable {
    var node: Int
    /// The input's shape, layout and whatever else the plan depends on.
    var facts: [Int]
    /// The plan's type, so that a box is only ever read as its own.
    var type: ObjectIdentifier
  }

  /// A plan in a class box: read back every run, a plan held as `Any`
  /// took a dynamic cast of the existential and its generic metadata each
  /// time (about a tenth of a small convolution node's overhead).
  private final class Box<P> {
    let plan: P
    init(_ plan: P) { self.plan = plan }
  }

  private let plans = MemoCache<PlanKey, AnyObject>()

  /// The plan kept for node `node` and `facts`, made by `make` the first
  /// time (a failure is thrown every time, nothing kept).
  func plan<P>(_ node: Int, facts: [Int], make: () throws -> P) rethrows -> P {
    let box = try plans.value(PlanKey(node: node, facts: facts, type: ObjectIdentifier(P.self))) { Box(try make()) }
    return unsafeDowncast(box, to: Box<P>.self).plan
  }
}

