import AtrousCore
import AtrousFeatures
import AtrousFilters
import AtrousIO
import AtrousNN
import AtrousONNX
import FoundationEssentials

/// The inputs Atrous reads from outside, each as one entry point that takes
/// arbitrary bytes. The fuzzing harnesses (Fuzz/) call these, and a test
/// replays the committed corpora through them, so a crash found once stays
/// fixed.
///
/// Each entry point must return (errors are thrown and dropped) and never
/// trap, hang or allocate past the harness's limit. Sizes are capped below
/// the command-line defaults (`maxPixels`, `maxPaddedPixels`, `budget`), so
/// that a few header bytes cannot make a valid but huge image: refusing
/// those is the memory budget's job, and decoding them only slows the search.
public enum FuzzTarget: String, CaseIterable, Sendable {
  case png
  case jpeg
  case npy
  case onnx
  case filterSpec = "filter-spec"
  case pixelList = "pixel-list"

  /// Image pixels a harness decodes at most: 2^20, as libjpeg-turbo's own
  /// fuzzers allow (a mutated header's size is decoded from garbage, and
  /// larger ones only slow the search).
  public static let maxPixels = 1 << 20

  /// The memory budget of a harness process: 512 MiB, well inside the
  /// 2 GB a single allocation may take under the fuzzer, so sizes from the
  /// input meet the budget's checks rather than the fuzzer's limit.
  public static let budget = MemoryBudget(bytes: 1 << 29, source: "the fuzzing harness")

  /// What a harness calls per input: `run` under `budget`.
  public func fuzz(_ bytes: [UInt8]) {
    if MemoryBudget.current != Self.budget { MemoryBudget.install(Self.budget) }
    run(bytes)
  }

  /// Runs the entry point on `bytes`; thrown errors are the expected result
  /// of bad input and are dropped.
  public func run(_ bytes: [UInt8]) {
    switch self {
    case .png: _ = try? PNGCodec.decode(bytes, options: DecodeOptions(maxPixels: Self.maxPixels))
    case .jpeg: _ = try? JPEGCodec.decode(bytes, options: DecodeOptions(maxPixels: Self.maxPixels))
    case .npy: Self.arrays(bytes)
    case .onnx: Self.model(bytes)
    case .filterSpec: Self.filters(bytes)
    case .pixelList: _ = try? PixelList.parse(String(decoding: bytes, as: UTF8.self))
    }
  }

  /// `.npy` or `.npz` (by the first bytes, as the commands tell them), then
  /// the conversion to float32 that `filter` and `run` apply.
  static func arrays(_ bytes: [UInt8]) {
    let zip = bytes.starts(with: [0x50, 0x4b])
    guard let arrays = try? zip ? NPZ.decode(bytes) : ["": NPY.decode(bytes)] else { return }
    for array in arrays.values { _ = array.tensor() }
  }

  /// An ONNX model imported, planned (optimized, constants folded) and
  /// traced shape-only, as `inspect` does.
  static func model(_ bytes: [UInt8]) {
    guard let graph = try? ONNXModel.decode(Data(bytes)) else { return }
    _ = try? NetworkSummary(graph: graph, inputShapes: [:], maxInputElements: Self.maxInputElements)
  }

  /// Elements of a model's declared inputs in the harness: 2^18, so a
  /// trace runs in milliseconds (a 4-million-element int8 input took 11 s
  /// to make under the sanitizers).
  public static let maxInputElements = 1 << 18

  /// Padded pixels a filter stage may read in the harness: 2^16, so each
  /// input runs in milliseconds (the command's limit is 2^30).
  public static let maxPaddedPixels = 1 << 16

  /// Padded pixels times taps (rows plus columns) over a whole chain in
  /// the harness: 2^21. Four stages each under `maxPaddedPixels` with
  /// kernels of 48 to 96 taps took over 10 s under the sanitizers.
  public static let maxChainWork = 1 << 21

  /// Filter specs, one per line, parsed, chained and run on a 16x16 RGB
  /// image, as `filter` runs them.
  static func filters(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    var filters: [Filter] = []
    for line in text.split(whereSeparator: \.isNewline).prefix(4) {
      guard let filter = try? FilterSpec.parse(String(line), loadKernel: { _ in Kernel2D(rows: 1, columns: 1, values: [1]) })
      else { return }
      filters.append(filter)
    }
    // The work of each stage is proportional to its padded input and, on
    // the direct passes, to its taps.
    var (height, width) = (16, 16)
    var work = 0
    for filter in filters {
      guard let padded = try? filter.paddedSize(height: height, width: width), padded.height * padded.width <= Self.maxPaddedPixels,
        let output = try? filter.outputSize(height: height, width: width)
      else { return }
      work += padded.height * padded.width * (filter.kernelSize.rows + filter.kernelSize.columns)
      guard work <= Self.maxChainWork else { return }
      (height, width) = output
    }
    let image = Tensor(shape: [16, 16, 3], values: (0..<768).map { Float(($0 * 37) % 256) / 255 })
    _ = try? FilterChain(filters).apply(to: image, threads: 1)
  }
}
