import AtrousCore
import _CKernels

/// A MaxPool that reads a 2-D Conv's output and nothing else's, run as
/// part of that Conv (made by `GraphOptimizer.fuseMaxPool`): the Conv node
/// carries the pool's attributes under `attributePrefix` and the pool's
/// output. A network's first convolution writes its largest map (ResNet's
/// 64 x 112 x 112, 3.2 MB) only for the pool after it to read and shrink
/// by four. On the channel-blocked kernel each thread instead computes a
/// few rows of the convolution at a time into a buffer of its own, in
/// cache, and pools them at once; other strategies pool their whole output
/// after.
enum PooledConvolution {
  /// Prefix of the pool's attributes on the Conv node.
  static let attributePrefix = "_maxpool_"
  /// The pool's window on the Conv node (a MaxPool's required attribute).
  static let kernelAttribute = attributePrefix + "kernel_shape"

  /// The Conv node `conv` running `pool` after it: the pool's attributes
  /// under the prefix, the pool's output.
  static func fusing(_ pool: Node, into conv: Node) -> Node {
    var fused = conv
    fused.carry(pool.attributes, under: attributePrefix)
    fused.outputs = [pool.outputs[0]]
    return fused
  }

  /// The MaxPool fused into `node`, as a node of its own, or nil.
  static func pool(of node: Node) -> Node? {
    // Every Conv asks on every run: most have no pool, and a MaxPool
    // always has its window, so that one lookup settles it before the
    // attributes are gathered.
    guard node.attributes[kernelAttribute] != nil, let input = node.inputs.first else { return nil }
    return Node(name: node.name, opType: "MaxPool", inputs: [input], outputs: node.outputs,
                attributes: node.carried(under: attributePrefix))
  }

  /// The MaxPool fused into `c`'s node, once per executor
  /// (`OpContext.derived`), or nil.
  static func fused(_ c: OpContext) -> Fused? {
    c.derived { node in pool(of: node).map(Fused.init) }
  }

  /// A fused MaxPool's node, as `fused` keeps it (a class, as
  /// `ResidualConvolution.Fused` is).
  final class Fused {
    let pool: Node
    init(_ pool: Node) { self.pool = pool }
  }

  /// Bytes of convolution rows a thread holds at once: an eighth of the
  /// L2 cache (256 KiB of 2 MiB: nine of ResNet's 112-pixel rows of 64
  /// channels), so they are still in it when pooled; at least one pooled
  /// row's window.
  static var bufferBytes: Int { forcedBufferBytes ?? CPUCaches.l2 / 8 }

  /// A buffer size tests force (on the calling task), so that small maps
  /// take many chunks.
  @TaskLocal static var forcedBufferBytes: Int? = nil
}

extension ConvKernel {
  /// The convolution by `atr_conv_blocked` on (N, C, H, W) storage, or
  /// (N, H, W, C) when `channelsLastInput`, max-pooled over `pool` into
  /// (N, POH, POW, Cout). Pooled rows go to threads in bands; for each
  /// chunk of them a thread computes the convolution rows they read into
  /// its buffer, keeping the rows the chunk before computed that this one
  /// reads again, and pools them. Equal to the convolution and then the
  /// pool: the same kernel makes every value, and a maximum does not round.
  /// `packed` is `blockedWeights()`.
  func runBlockedPooled(_ input: Tensor, channelsLastInput: Bool, packed: [[Float]], pool: [WindowAxis],
                        threads: Int) -> Tensor {
    let (oh, ow) = (axes[0].output, axes[1].output)
    let (poh, pow) = (pool[0].output, pool[1].output)
    var output = Tensor.uninitialized(shape: [n, poh, pow, cout])  // (N, POH, POW, Cout)
    let rowFloats = ow * cout
    // Pooled rows per chunk, and the convolution rows a chunk reads at most.
    let fit = max(pool[0].extent, PooledConvolution.bufferBytes / (rowFloats * MemoryLayout<Float>.stride))
    let chunk = (fit - pool[0].extent) / pool[0].stride + 1
    let capacity = (chunk - 1) * pool[0].stride + pool[0].extent
    let pooledRows = n * poh
    let parts = max(1, min(threads, pooledRows))
    var geometry = self.geometry
    let bytes = atr_conv_blocked_scratch(&geometry, cin / group, min(capacity, oh), channelsLastInput ? 1 : 0)
    let scratch = Self.scratch(parts, bytes: bytes)
    let buffers = Self.scratch(parts, floats: capacity * rowFloats)  // (capacity, OW, Cout) each
    let window = atr_conv_geometry(pool, pixelStride: cout)
    // Per part: convolution rows [first, end) of image `image` are its
    // buffer's rows from 0. Kept across a part's calls: `bands` hands a
    // part its band a chunk per call, and each chunk reads rows the one
    // before made.
    let heldRows = UnsafeMutablePointer<(image: Int, first: Int, end: Int)>.allocate(capacity: parts)
    heldRows.initialize(repeating: (-1, 0, 0), count: parts)
    defer { heldRows.deallocate() }
    input.withUnsafeBufferPointer { src in
      output.withUnsafeMutableBufferPointer { dst in
        Parallel.bands(pooledRows, parts: parts, grain: chunk) { part, band in
          let buffer = buffers[part].pointer.assumingMemoryBound(to: Float.self)
          var poolGeometry = window
          var rows = [UnsafePointer<Float>?](repeating: nil, count: pool[0].kernel)
          var held = heldRows[part]
          defer { heldRows[part] = held }
          var row = band.lowerBound
          while row < band.upperBound {
            let b = row / poh, first = row % poh
            let last = min(poh, first + chunk, first + band.upperBound - row)
            let read = pool[0].reads(first..<last)
            let (lo, hi) = (read.lowerBound, read.upperBound)
            var start = lo
            if held.image == b && lo >= held.first && lo < held.end {
              // The rows the chunk before made that this one reads again.
              if lo > held.first {
                buffer.update(from: buffer + (lo - held.first) * rowFloats, count: (held.end - lo) * rowFloats)
              }
              start = min(held.end, hi)
            }
            if start < hi {
              computeBlockedRows(src.baseAddress!, channelsLastInput: channelsLastInput, image: b, packed: packed,
                                 start..<hi, into: buffer + (start - lo) * rowFloats, channelStride: 1, pixelStride: cout,
                                 scratch: scratch[part].pointer)
            }
            held = (b, lo, hi)
            for oy in first..<last {
              Pooling.poolRow(dst.baseAddress! + (b * poh + oy) * pow * cout, oy, axes: pool, channels: cout, mode: ATR_POOL_MAX,
                              geometry: &poolGeometry, rows: &rows) { UnsafePointer(buffer + ($0 - lo) * rowFloats) }
            }
            row += last - first
          }
        }
      }
    }
    return output
  }
}
