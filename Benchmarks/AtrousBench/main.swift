// Times Atrous operations in-process, for the scripts in Benchmarks/ that
// compare them with other tools on the same input in the same run.
//
//   atrous-bench decode FILE REPEAT                    decode FILE (PNG or JPEG) from memory
//   atrous-bench filter FILE.npy THREADS REPEAT SPEC...  run a filter chain on a float32 array
//   atrous-bench model FILE.onnx INPUT.npy THREADS REPEAT  run a model's forward pass
//   atrous-bench profile FILE.onnx INPUT.npy THREADS REPEAT  milliseconds per node, slowest first
//   atrous-bench hypercolumns MODEL IMAGE LAYERS OUT.npy THREADS REPEAT  PNG in, hypercolumn .npy out
//   atrous-bench resize INPUT.npy HEIGHT WIDTH THREADS REPEAT  bilinear resize of an (H, W, C) float32 array
//   atrous-bench product M N K COUNT REPEAT [edge|stream]  COUNT packed products (M, K) x (K, N), one thread, as a
//                                                       1x1 convolution runs them row by row; prints GFLOP/s too;
//                                                       `edge` puts the packed weights at the end of a mapping
//                                                       whose next page is unmapped; `stream` gives each product
//                                                       a B of its own, as a Winograd layer's positions read
//                                                       theirs (from memory once COUNT of them outgrow L3)
//   atrous-bench onnx-tests ROOT NAME...                outcome of ONNX backend tests (ROOT/index.json tolerances)
//   atrous-bench machine                                the instruction set the kernels use, and the CPU's widest
//   atrous-bench upsample-quality [SIZE TRAIN TEST SAMPLES THREADS]  mean IoU and boundary F of a pixel classifier
//                                                       on synthetic scenes, per upsampling method (UpsampleQuality.swift);
//                                                       ATROUS_BENCH_PICTURES=DIR writes the first test scene's pictures;
//                                                       ATROUS_BENCH_UPSAMPLE="guided:4:0.01,jbu:0.5:0.05" adds settings
//
// ATROUS_BENCH_WINOGRAD_TILE=2|4|6 runs every convolution Winograd can
// take (model, profile) with that output tile instead of the cost rule's
// choice, to measure the rule.

import AtrousCore
import AtrousFeatures
import AtrousFilters
import AtrousIO
import AtrousNN
import AtrousONNX
import Foundation
import _CKernels

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` once to warm up, then `repeats` times; prints the minimum
/// and median in milliseconds as `<label> min <ms> median <ms>` and
/// returns the minimum.
@discardableResult
func measure(_ label: String, repeats: Int, _ body: () throws -> Void) rethrows -> Double {
  try body()
  var times: [Double] = []
  let clock = ContinuousClock()
  for _ in 0..<repeats {
    times.append(try clock.measure(body).milliseconds)
  }
  times.sort()
  print("\(label) min \(times[0]) median \(times[times.count / 2])")
  return times[0]
}

func usage() -> Never {
  print("usage: atrous-bench decode FILE REPEAT | filter FILE.npy THREADS REPEAT SPEC... | model FILE.onnx INPUT.npy THREADS REPEAT"
          + " | profile FILE.onnx INPUT.npy THREADS REPEAT"
          + " | hypercolumns MODEL IMAGE LAYERS OUT.npy THREADS REPEAT | resize INPUT.npy HEIGHT WIDTH THREADS REPEAT"
          + " | product M N K COUNT REPEAT [edge|stream]")
  exit(64)
}

let arguments = CommandLine.arguments
if arguments.count == 2 && arguments[1] == "machine" {
  print("kernels \(InstructionSet.process) cpu-widest \(InstructionSet.supported)")
  exit(0)
}
if arguments.count >= 2 && arguments[1] == "upsample-quality" {
  let numbers = arguments.dropFirst(2).compactMap { Int($0) }
  guard numbers.count == arguments.count - 2, numbers.count <= 5 else { usage() }
  let given = numbers + [160, 16, 8, 1500, Parallel.coreCount].dropFirst(numbers.count)
  print("CPU: \(cpuModel()), kernels \(InstructionSet.process)")
  try UpsampleQuality.run(size: given[0], trainImages: given[1], testImages: given[2], samplesPerImage: given[3],
                          threads: given[4], pictures: ProcessInfo.processInfo.environment["ATROUS_BENCH_PICTURES"],
                          extraMethods: ProcessInfo.processInfo.environment["ATROUS_BENCH_UPSAMPLE"])
  exit(0)
}
guard arguments.count >= 4 else { usage() }
let forcedTile = ProcessInfo.processInfo.environment["ATROUS_BENCH_WINOGRAD_TILE"].flatMap(Int.init)
switch arguments[1] {
case "decode":
  guard let repeats = Int(arguments[3]), repeats > 0 else { usage() }
  let bytes = try FileIO.readAll(arguments[2])
  try measure("decode", repeats: repeats) {
    _ = try ImageFile.decode(bytes, path: arguments[2])
  }
case "filter":
  guard arguments.count >= 6, let threads = Int(arguments[3]), let repeats = Int(arguments[4]) else { usage() }
  var input = try NPY.read(arguments[2]).tensor()
  if input.rank == 2 { input = input.reshaped(input.shape + [1]) }
  let chain = FilterChain(try arguments[5...].map { try FilterSpec.parse($0) })
  try measure("filter", repeats: repeats) {
    _ = try chain.apply(to: input, threads: threads)
  }
case "model":
  guard arguments.count == 6, let threads = Int(arguments[4]), let repeats = Int(arguments[5]) else { usage() }
  let graph = try ONNXModel.load(arguments[2])
  let executor = try Executor(graph: graph, threads: threads)
  let array = try NPY.read(arguments[3])
  let input = NDArray(shape: array.shape, floats: array.tensor())
  try measure("model", repeats: repeats) {
    _ = try WinogradTile.$forced.withValue(forcedTile) { try executor.run([executor.inputNames[0]: input]) }
  }
case "profile":
  // Milliseconds per node, the median of `repeats` runs after a warm-up;
  // REPEAT 0 profiles the first run alone (memory first touched, weights
  // prepared), as a fresh process runs it.
  guard arguments.count == 6, let threads = Int(arguments[4]), let repeats = Int(arguments[5]), repeats >= 0 else {
    usage()
  }
  let executor = try Executor(graph: try ONNXModel.load(arguments[2]), threads: threads)
  let array = try NPY.read(arguments[3])
  let input = [executor.inputNames[0]: NDArray(shape: array.shape, floats: array.tensor())]
  let runs = try WinogradTile.$forced.withValue(forcedTile) {
    if repeats == 0 { return [try executor.profiledRun(input).nodes] }
    _ = try executor.run(input)
    return try (0..<repeats).map { _ in try executor.profiledRun(input).nodes }
  }
  var rows: [(String, String, Double)] = []
  for (index, first) in runs[0].enumerated() {
    let times = runs.map { $0[index].milliseconds }.sorted()
    rows.append((first.name + " " + first.path, first.op, times[times.count / 2]))
  }
  func format(_ ms: Double) -> String {
    let text = String(Double(Int(ms * 1000)) / 1000)
    return String(repeating: " ", count: max(0, 9 - text.count)) + text + " ms"
  }
  for (name, op, ms) in rows.sorted(by: { $0.2 > $1.2 }) {
    print("\(format(ms))  \(op.padding(toLength: 16, withPad: " ", startingAt: 0)) \(name)")
  }
  print("\(format(rows.reduce(0) { $0 + $1.2 }))  total")
case "hypercolumns":
  // The whole job as the command does it, model loaded once: decode,
  // preprocess, plan, run, resize, concatenate, write.
  guard arguments.count == 8, let threads = Int(arguments[6]), let repeats = Int(arguments[7]) else { usage() }
  let model = try ModelCatalog.load(arguments[2])
  var options = HypercolumnOptions()
  options.threads = threads
  let extractor = try HypercolumnExtractor(graph: model.graph, layers: arguments[4].split(separator: ",").map(String.init),
                                           options: options)
  try measure("hypercolumns", repeats: repeats) {
    let input = try model.preprocessing.tensor(ImageFile.read(arguments[3]))
    let plan = try extractor.plan(height: input.shape[2], width: input.shape[3], channels: input.shape[1])
    try extractor.export(input, plan: plan, to: arguments[5])
  }
case "resize":
  guard arguments.count == 7, let height = Int(arguments[3]), let width = Int(arguments[4]), let threads = Int(arguments[5]),
    let repeats = Int(arguments[6]) else { usage() }
  let input = try NPY.readTensor(arguments[2])
  measure("resize", repeats: repeats) {
    _ = BilinearResize.resize(input, height: height, width: width, threads: threads)
  }
case "product":
  // COUNT products of distinct (M, K) rows of A with one packed B (or,
  // with `stream`, one each), each into its own (M, N) rows of C, as the
  // ring of a depthwise block runs its 1x1 convolutions on (W, C) rows.
  let mode = arguments.count == 8 ? arguments[7] : ""
  guard arguments.count == 7 || (arguments.count == 8 && ["edge", "stream"].contains(mode)), let m = Int(arguments[2]),
    let n = Int(arguments[3]), let k = Int(arguments[4]), let count = Int(arguments[5]), let repeats = Int(arguments[6]),
    m > 0, n > 0, k > 0, count > 0, repeats > 0 else {
    usage()
  }
  let a = (0..<(count * m * k)).map { Float($0 % 7) * 0.1 }  // (COUNT, M, K)
  let b = (0..<(k * n)).map { Float($0 % 5) * 0.1 }  // (K, N)
  // Panels of 32 columns (a multiple of 128 bytes), in a mapping of their
  // own, a page longer than they need: without `edge` they start it, the
  // memory after them mapped (pages of it never touched); with `edge` it
  // ends where they do, that last page unmapped, as weights may lie once
  // the mapping after theirs is released.
  let size = atr_packed_b_size(k, n), copies = mode == "stream" ? count : 1  // floats of one packed B
  let bytes = copies * size * MemoryLayout<Float>.stride
  let page = Int(sysconf(Int32(_SC_PAGESIZE)))
  let mapped = (bytes + page - 1) / page * page + page
  guard let region = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
    region != MAP_FAILED else { fatalError("cannot map \(mapped) bytes") }
  if mode == "edge" { munmap(region + mapped - page, page) }
  let packed = (region + (mode == "edge" ? mapped - page - bytes : 0)).assumingMemoryBound(to: Float.self)  // (copies, size)
  for copy in 0..<copies { atr_pack_b(packed + copy * size, b, k, n, n) }
  var c = [Float](repeating: 0, count: count * m * n)  // (COUNT, M, N)
  let fastest = measure("product", repeats: repeats) {
    a.withUnsafeBufferPointer { ap in c.withUnsafeMutableBufferPointer { cp in
      for i in 0..<count {
        atr_sgemm_packed(m, n, k, ap.baseAddress! + i * m * k, k, packed + (i % copies) * size, cp.baseAddress! + i * m * n,
                         n, ATR_START_COLUMN_BIAS, b)
      }
    } }
  }
  print("GFLOP/s at the minimum \(2.0 * Double(count * m * n * k) / fastest / 1e6)")
case "onnx-tests":
  // One line per test, flushed, so a driver sees how far a crash got.
  let root = arguments[2]
  var tolerances: [String: (Float, Float)] = [:]
  if let data = FileManager.default.contents(atPath: root + "/index.json"),
    let json = try JSONSerialization.jsonObject(with: data) as? [String: Any], let tests = json["tests"] as? [[String: Any]]
  {
    for test in tests {
      if let name = test["name"] as? String, let rtol = test["rtol"] as? Double, let atol = test["atol"] as? Double {
        tolerances[name] = (Float(rtol), Float(atol))
      }
    }
  }
  for name in arguments[3...] {
    print("start \(name)")
    fflush(nil)
    let (rtol, atol) = tolerances[name] ?? (1e-3, 1e-5)
    switch ONNXBackendTest(folder: root + "/" + name).run(rtol: rtol, atol: atol) {
    case .passed: print("passed \(name)")
    case .failed(let why): print("failed \(name): \(why)")
    case .refused(let why): print("refused \(name): \(why)")
    }
    fflush(nil)
  }
default:
  usage()
}
