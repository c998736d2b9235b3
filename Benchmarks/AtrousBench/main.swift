// Times Atrous operations in-process, for the scripts in Benchmarks/ that
// compare them with other tools on the same input in the same run.
//
//   atrous-bench decode FILE REPEAT   decode FILE (PNG or JPEG) from memory

import AtrousIO

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

let arguments = CommandLine.arguments
guard arguments.count == 4, arguments[1] == "decode", let repeats = Int(arguments[3]), repeats > 0 else {
  print("usage: atrous-bench decode FILE REPEAT")
  exit(64)
}
let bytes = try FileIO.readAll(arguments[2])
try measure("decode", repeats: repeats) {
  _ = try ImageFile.decode(bytes, path: arguments[2])
}
