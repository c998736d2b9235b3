import AtrousCore

/// Per-node data derived from constant weights, computed on first use and
/// kept for later runs of the same executor, keyed by node index and a
/// label of what it is; and per-node plans, keyed by node index and the
/// facts of the input they were made for. Shared by the threads running
/// the executor: each store behind its own lock.
final class PreparedWeights: @unchecked Sendable {
  struct Key: Hashable {
    var node: Int
    var label: String
  }

  /// Tensors, arrays of floats, a product's `Linear.Weights` (its tensor
  /// with the layout it was made in), or `AlignedStorage` where the
  /// prepared form is large and written once (Winograd's transformed
  /// kernels: pooled memory, on huge pages from 4 MiB, where a fresh
  /// process's first run finds pages already faulted in; an array's pages
  /// are faulted one by one); a label always holds values of one type.
  private let store = MemoCache<Key, Any>()

  func value<Value>(_ node: Int, _ label: String, make: () -> Value) -> Value {
    store.value(Key(node: node, label: label), make: make) as! Value
  }

  /// What a node settles once for inputs of one shape and layout (its
  /// geometry, strategy, bias and fused steps), so later runs only
  /// execute: by node, the plan's type, so that a box is only ever read as
  /// its own, and the facts of the input (its shape, layout and whatever
  /// else the plan depends on).
  private struct Kept {
    var type: ObjectIdentifier
    var facts: [Int]
    var box: AnyObject
  }

  /// A plan in a class box: read back every run, a plan held as `Any`
  /// took a dynamic cast of the existential and its generic metadata each
  /// time (about a tenth of a small convolution node's overhead).
  private final class Box<P> {
    let plan: P
    init(_ plan: P) { self.plan = plan }
  }

  /// The plans kept, a list per node (`position`), searched in order: a
  /// node keeps one or a few (another input shape, a fused node's parts),
  /// where a table hashed the facts and the type on every lookup.
  private var kept: [[Kept]] = []  // guarded by keptLock
  private let keptLock = Lock()

  /// Where node `node`'s list is: node indexes, and the negative ones
  /// (`-1 - index`) fused nodes key their parts by.
  private static func position(_ node: Int) -> Int { node >= 0 ? 2 * node : 2 * (-1 - node) + 1 }

  /// The plan kept for node `node` and `facts`, made by `make` the first
  /// time (a failure is thrown every time, nothing kept).
  func plan<P>(_ node: Int, facts: [Int], make: () throws -> P) rethrows -> P {
    if let found: P = kept(node, facts: facts) { return found }
    return keep(node, facts: facts, try make())
  }

  /// The plan of type P kept for node `node` and `facts`, if any. Looked up
  /// on every run without a closure to call: one that captured the op's
  /// context copied it, a count taken on each of its references.
  func kept<P>(_ node: Int, facts: [Int]) -> P? {
    let at = Self.position(node)
    keptLock.lock()
    defer { keptLock.unlock() }
    guard at < kept.count, let box = Self.box(in: kept[at], P.self, facts: facts) else { return nil }
    return box.plan
  }

  /// Keeps `plan` for node `node` and `facts` and returns it, or the plan
  /// another thread kept first (threads making the same plan at once
  /// each make it; all then use one).
  func keep<P>(_ node: Int, facts: [Int], _ plan: P) -> P {
    let at = Self.position(node)
    keptLock.lock()
    defer { keptLock.unlock() }
    if at >= kept.count { kept += [[Kept]](repeating: [], count: at + 1 - kept.count) }
    if let box = Self.box(in: kept[at], P.self, facts: facts) { return box.plan }
    kept[at].append(Kept(type: ObjectIdentifier(P.self), facts: facts, box: Box(plan)))
    return plan
  }

  /// The box of type P kept in `list` for `facts`, if any; the caller
  /// holds `keptLock`.
  private static func box<P>(in list: [Kept], _: P.Type, facts: [Int]) -> Box<P>? {
    let type = ObjectIdentifier(P.self)
    for entry in list where entry.type == type && entry.facts == facts { return unsafeDowncast(entry.box, to: Box<P>.self) }
    return nil
  }
}
