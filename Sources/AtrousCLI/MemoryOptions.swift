import ArgumentParser
import Atrous

/// `--max-memory`, for the commands that read images, arrays or models.
struct MemoryOptions: ParsableArguments {
  @Option(name: .customLong("max-memory"), help: ArgumentHelp(
    "The most memory one image, array or model value may take, e.g. 512M, 8G (default: 3/4 of the cgroup memory limit, else of physical memory).",
    valueName: "size"))
  var maxMemory: String?

  func validate() throws {
    if let maxMemory, MemoryBudget.parse(maxMemory) == nil {
      throw ValidationError("--max-memory must be a size such as 512M or 8G, not '\(maxMemory)'")
    }
  }

  /// Makes the budget the one every stage checks.
  func install() {
    guard let maxMemory, let bytes = MemoryBudget.parse(maxMemory) else { return }
    MemoryBudget.install(MemoryBudget(bytes: bytes, source: "--max-memory \(maxMemory)"))
  }
}

/// A command with `--max-memory`: the entry point installs its budget
/// before the command runs.
protocol MemoryBudgeted {
  var memoryBudget: MemoryOptions { get }
}
