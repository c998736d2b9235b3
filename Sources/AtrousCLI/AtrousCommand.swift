import ArgumentParser
import AtrousCore
import AtrousIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

@main
struct AtrousCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "atrous",
    abstract: "Decode, convert and filter images; run and inspect small CNNs; export feature maps and hypercolumns.",
    discussion: """
      Exit status: 0 on success, 1 when a file failed, 64 on a usage error.
      Errors are printed to standard error as 'error: <file>: <reason>'.
      """,
    version: "0.1.0",
    subcommands: [
      InfoCommand.self, ConvertCommand.self, FilterCommand.self, RunCommand.self, InspectCommand.self, ModelsCommand.self,
      FeaturesCommand.self, HypercolumnsCommand.self, ManifestCommand.self, ErfCommand.self, ReportCommand.self,
    ]
  )

  /// Parses and runs the subcommand, reporting usage errors in the same
  /// `error: <what>: <why>` style as file errors (status 64), and help and
  /// the version on standard output (status 0).
  static func main() {
    // Before any thread starts, so that every thread leaves the signals
    // to the one that cleans up.
    TemporaryFiles.removeOnSignals()
    let arguments = Array(CommandLine.arguments.dropFirst())
    if let name = arguments.first, subcommand(named: name) is RunsModels.Type { LargeBlockPool.faultAhead() }
    do {
      if let problem = InstructionSet.environmentProblem {
        try checkNames(arguments)
        throw ValidationError(problem)
      }
      var command: ParsableCommand
      do {
        command = try parseAsRoot(arguments)
      } catch {
        // Only a command line that does not parse can hold a wrong name;
        // the check renders the subcommand's help, which would otherwise
        // cost every start a third of its time.
        try checkNames(arguments)
        throw error
      }
      (command as? MemoryBudgeted)?.memoryBudget.install()
      LargeBlockPool.capFaultAhead()
      try command.run()
    } catch {
      let code = exitCode(for: error)
      if code == .success {
        let text = fullMessage(for: error)
        if !text.isEmpty { print(text) }
      } else if code == .validationFailure {
        let subcommand = arguments.first.flatMap { name in subcommandNames.contains(name) ? name : nil }
        Reporting.printError("error: \(message(for: error))")
        Reporting.printError("See 'atrous\(subcommand.map { " " + $0 } ?? "") --help' for the options.")
      } else {
        let text = message(for: error)
        if !text.isEmpty { Reporting.printError(text.hasPrefix("error: ") ? text : "error: " + text) }
      }
      Glibc.exit(code.rawValue)
    }
  }

  static var subcommandNames: [String] { configuration.subcommands.map { $0.configuration.commandName ?? "" } }

  static func subcommand(named name: String) -> ParsableCommand.Type? {
    configuration.subcommands.first { $0.configuration.commandName == name }
  }

  /// A mistyped subcommand, or a long option the subcommand does not have,
  /// is a usage error that names it and the nearest right name. (An
  /// unknown option is otherwise reported only when the rest of the
  /// command line makes sense.)
  static func checkNames(_ arguments: [String]) throws {
    guard let first = arguments.first, !first.hasPrefix("-"), first != "help" else { return }
    guard let command = subcommand(named: first) else {
      let names = subcommandNames
      throw ValidationError("unknown command '\(first)'\(Spelling.suggestion(for: first, among: names)); "
                              + "the commands are \(names.joined(separator: ", "))")
    }
    let help = command.helpMessage(columns: 10_000)
    let known = Set(help.matches(of: /--[a-z0-9][a-z0-9-]*/).map { String($0.output) })
    for argument in arguments.dropFirst() {
      if argument == "--" { break }
      guard argument.hasPrefix("--") else { continue }
      let name = String(argument.split(separator: "=", maxSplits: 1)[0])
      if !known.contains(name) {
        throw ValidationError("unknown option '\(name)'\(Spelling.suggestion(for: name, among: known.sorted())) for atrous \(first)")
      }
    }
  }
}
