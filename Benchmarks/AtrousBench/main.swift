// Times Atrous operations in-process, for the scripts in Benchmarks/ that
// compare them with other tools on the same input in the same run.
//
//   atrous-bench decode FILE REPEAT                    decode FILE (PNG or JPEG) from memory
//   atrous-bench filter FILE.npy THREADS REPEAT SPEC...  run a filter chain on a float32 array
//   atrous-bench model FILE.onnx INPUT.npy THREADS REPEAT  run a model's forward pass

import AtrousCore
import AtrousFilters
import AtrousIO
import AtrousNN
import AtrousONNX

#if canImport(Glibc)
import Glibc
#endif

func milliseconds(_ duration: Duration) -> Double {
  Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) * 1e-15
}

/// Runs `body` once to warm up, then `repeats` times; prints the minimum
/// and median in milliseconds as `<label> min <ms> median <ms>`.
func measure(_ label: String, repeats: Int, _ body: () throws -> Void) rethrows {
  try body()
  var times: [Double] = []
  let clock = ContinuousClock()
  for _ in 0..<repeats {
    times.append(milliseconds(try clock.measure(body)))
  }
  times.sort()
  print("\(label) min \(times[0]) median \(times[times.count / 2])")
}

func usage() -> Never {
  print("usage: atrous-bench decode FILE REPEAT | filter FILE.npy THREADS REPEAT SPEC... | model FILE.onnx INPUT.npy THREADS REPEAT")
  exit(64)
}

let arguments = CommandLine.arguments
guard arguments.count >= 4 else { usage() }
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
    _ = try executor.run([executor.inputNames[0]: input])
  }
default:
  usage()
}
