import ArgumentParser
import AtrousBatch
import AtrousFeatures
import AtrousIO
import AtrousNN
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How the command line tells the user what failed.
enum Reporting {
  /// Prints `error: <file>: <reason>` to standard error. A `FileError`
  /// names its own file (an output, say), a `ModelFault` the model; other
  /// errors are about `file`.
  static func fail(_ error: Error, file: String) {
    let (subject, reason) = describe(error, file: file)
    printError("error: \(subject): \(reason)")
  }

  /// The file an error is about (its own path, the model's, else `file`)
  /// and the reason.
  static func describe(_ error: Error, file: String) -> (subject: String, reason: String) {
    switch error {
    case let error as FileError: (error.path, error.reason)
    case let error as ModelFault: (error.model, "\(error.underlying)")
    case let error as ManifestError: (error.path, error.reason)
    case let error as InputError: (error.path, error.reason)
    default: (file, "\(error)")
    }
  }

  /// The reason for a manifest line about `file`: prefixed by the file it
  /// names when that is another (an output, the model).
  static func reason(for error: Error, file: String) -> String {
    let (subject, reason) = describe(error, file: file)
    return subject == file ? reason : "\(subject): \(reason)"
  }

  /// Runs `body`; when it throws, reports the error about `file` and
  /// ends the command with status 1.
  static func orExit<T>(file: String, _ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch {
      fail(error, file: file)
      throw ExitCode.fileFailed
    }
  }

  static func printError(_ line: String, newline: Bool = true) {
    // One write per line, so that lines from threads do not interleave.
    var text = newline ? line + "\n" : line
    text.withUTF8 { bytes in
      var done = 0
      while done < bytes.count {
        let n = write(2, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        done += n
      }
    }
  }
}

/// A fault of the model met while processing an image (a node that cannot
/// run, a layer that is no map), reported against the model's file, not
/// the image's.
struct ModelFault: Error {
  var model: String
  var underlying: Error

  /// `body`, with the errors that are the model's wrapped to name `model`;
  /// the image's own (unreadable, a size the model does not take) pass.
  static func attributing<T>(to model: String, _ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as NNError {
      if case .badGraphInput = error { throw error }
      throw ModelFault(model: model, underlying: error)
    } catch let error as HypercolumnError {
      throw ModelFault(model: model, underlying: error)
    }
  }
}

/// The exit status of a run in which some file failed.
extension ExitCode {
  static let fileFailed = ExitCode(1)
}

/// File formats the command line reads and writes, named by extension.
enum FileKind: String, CaseIterable {
  case png, jpeg, npy

  init?(path: String) {
    let name = path.split(separator: "/").last.map(String.init) ?? path
    guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
    let ext = name[name.index(after: dot)...].lowercased()
    if ext == "npy" {
      self = .npy
    } else if let format = ImageFormat(pathExtension: ext) {
      self = format == .png ? .png : .jpeg
    } else {
      return nil
    }
  }

  static let extensionsText = ".png, .jpg, .jpeg or .npy"

  /// The kinds a model's image input is read from.
  static let images: Set<FileKind> = [.png, .jpeg]
}

/// A whole number without its ".0"; any other as Swift prints it.
func fmt(_ v: Double) -> String {
  v == v.rounded() ? String(Int(v)) : String(v)
}
