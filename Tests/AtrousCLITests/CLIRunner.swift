import AtrousIO
import AtrousTestSupport
import Foundation

/// Runs the built `atrous` binary, which SwiftPM places beside the test
/// executable, and captures what it prints and its exit status.
struct CLIRunner {
  struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  static let binary: String = {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
      ?? CommandLine.arguments[0]
    var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
    // On some platforms the tests run from inside a bundle.
    while !FileManager.default.isExecutableFile(atPath: folder.appendingPathComponent("atrous").path),
      folder.path != "/"
    {
      folder = folder.deletingLastPathComponent()
    }
    return folder.appendingPathComponent("atrous").path
  }()

  static func run(_ arguments: String...) throws -> Result {
    try run(arguments)
  }

  /// Runs `atrous arguments...` in `folder` (the repository by default),
  /// with `environment` added to this process's, through `wrapper` when
  /// given (`["/usr/bin/taskset", "-c", "0"]`), with `input` on standard
  /// input (none by default).
  static func run(_ arguments: [String], in folder: String = Fixtures.repository,
                  environment: [String: String] = [:], wrapper: [String] = [], input: Data? = nil) throws -> Result {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: wrapper.first ?? binary)
    process.arguments = (wrapper.isEmpty ? [] : wrapper.dropFirst() + [binary]) + arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.currentDirectoryURL = URL(fileURLWithPath: folder)
    // Files rather than pipes: nothing can block however much is printed.
    let folder = Fixtures.scratchFolder()
    for name in ["stdout", "stderr"] {
      guard FileManager.default.createFile(atPath: folder + "/" + name, contents: nil) else {
        throw CocoaError(.fileWriteUnknown)
      }
    }
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/stdout"))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/stderr"))
    process.standardOutput = out
    process.standardError = err
    if let input {
      // From a file, like the outputs: a pipe could fill before the child reads it.
      guard FileManager.default.createFile(atPath: folder + "/stdin", contents: input) else { throw CocoaError(.fileWriteUnknown) }
      process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: folder + "/stdin"))
    } else {
      process.standardInput = FileHandle.nullDevice
    }
    try process.run()
    process.waitUntilExit()
    try out.close()
    try err.close()
    let outData = try FileIO.readAll(folder + "/stdout")
    let errData = try FileIO.readAll(folder + "/stderr")
    try? FileManager.default.removeItem(atPath: folder)
    return Result(status: process.terminationStatus,
                  stdout: String(decoding: outData, as: UTF8.self),
                  stderr: String(decoding: errData, as: UTF8.self))
  }
}
