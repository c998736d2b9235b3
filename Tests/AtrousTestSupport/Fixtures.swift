import AtrousIO
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Locates the stored test fixtures (Tests/Fixtures) and scratch space.
public enum Fixtures {
  /// Absolute path of Tests/Fixtures in this checkout.
  public static let root: String = {
    var path = "\(#filePath)"
    for _ in 0..<2 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path + "/Fixtures"
  }()

  /// Absolute path of the repository's top folder.
  public static let repository: String = {
    var path = root
    for _ in 0..<2 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path
  }()

  public static func path(_ relative: String) -> String { root + "/" + relative }

  /// The bundled trained model `name` (mnist-8 or ppocrv4-det), which ships
  /// with the library rather than the tests.
  public static func model(_ name: String) -> String {
    repository + "/Sources/_CModels/Models/\(name)/model.onnx"
  }

  /// Names of the files in a fixture folder with the given extension, sorted.
  public static func files(in folder: String, withExtension ext: String) -> [String] {
    ((try? FileIO.listFolder(path(folder))) ?? []).filter { $0.hasSuffix("." + ext) }
  }

  public static func bytes(_ relative: String) throws -> [UInt8] {
    try FileIO.readAll(path(relative))
  }

  /// A fresh empty folder for one test, inside this test process's own
  /// scratch folder, which goes when the process exits (a crashed run
  /// leaves it behind).
  public static func scratchFolder() -> String {
    makeTemporaryFolder(scratchRoot + "/XXXXXX")
  }

  /// Made on first use; `atexit` cannot capture, so it reads this global.
  static let scratchRoot: String = {
    let made = makeTemporaryFolder("/tmp/atrous-test-XXXXXX")
    atexit { try? FileManager.default.removeItem(atPath: Fixtures.scratchRoot) }
    return made
  }()

  private static func makeTemporaryFolder(_ pattern: String) -> String {
    var template = Array(pattern.utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(made != nil, "cannot create a scratch folder from \(pattern)")
    return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// The rows under `key` of a fixture folder's index.json (written by the
  /// script that made the folder); empty when the index is missing.
  public static func indexRows(_ folder: String, key: String) -> [[String: Any]] {
    guard let data = FileManager.default.contents(atPath: folder + "/index.json"),
      let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return [] }
    return json[key] as? [[String: Any]] ?? []
  }

  /// Names in a folder (for checking that nothing stray was left behind);
  /// `recursive` gives paths under it, sorted, folders included.
  public static func listing(_ folder: String, recursive: Bool = false) -> [String] {
    guard recursive else { return (try? FileIO.listFolder(folder)) ?? [] }
    return ((try? FileManager.default.subpathsOfDirectory(atPath: folder)) ?? []).sorted()
  }

  /// Runs a command line with `/bin/sh -c`, its output discarded; its
  /// exit status, or -1 when it cannot start.
  public static func shell(_ command: String) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return -1 }
    process.waitUntilExit()
    return process.terminationStatus
  }
}
