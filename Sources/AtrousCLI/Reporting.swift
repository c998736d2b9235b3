import ArgumentParser
import AtrousFeatures
import AtrousIO
import AtrousNN
import Foundation

/// How the command line tells the user what failed.
enum Reporting {
  /// Prints `error: <file>: <reason>` to standard error. A `FileError`
  /// names its own file (an output, say); other errors are about `file`.
  static func fail(_ error: Error, file: String) {
    let line: String
    if let fileError = error as? FileError {
      line = "error: \(fileError.path): \(fileError.reason)"
    } else if let fault = error as? ModelFault {
      line = "error: \(fault.model): \(fault.underlying)"
    } else {
      line = "error: \(file): \(error)"
    }
    printError(line)
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
    FileHandle.standardError.write(Data((newline ? line + "\n" : line).utf8))
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
