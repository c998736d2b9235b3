/// One line of a shard's manifest (`manifest-<I>-of-<N>.jsonl`): what
/// became of one input.
///
/// The form other tools read: `{"input", "output", "status", "error",
/// "bytes", "mtime", "fingerprint", "ms": {stage: milliseconds}}`, plus
/// `"end"`, when it ended (seconds since 1970), for throughput.
public struct ManifestRecord: Codable, Sendable, Equatable {
  public enum Status: String, Codable, Sendable {
    /// Written by this run.
    case done
    /// Not written: the output was complete already, or it failed before
    /// and `--no-retry-failed` leaves it (`error` says which).
    case skipped
    case failed
  }

  public var input: String
  public var output: String
  public var status: Status
  public var error: String?
  /// The input's size in bytes and modification time (seconds since 1970)
  /// when the shard started; nil when it could not be read.
  public var bytes: Int?
  public var mtime: Double?
  public var fingerprint: String
  /// Milliseconds per stage (decode, model, write...), empty when skipped.
  public var ms: [String: Double]
  /// Seconds since 1970 when the file ended.
  public var end: Double

  public init(input: String, output: String, status: Status, error: String? = nil, bytes: Int?, mtime: Double?,
              fingerprint: String, ms: [String: Double] = [:], end: Double) {
    self.input = input
    self.output = output
    self.status = status
    self.error = error
    self.bytes = bytes
    self.mtime = mtime
    self.fingerprint = fingerprint
    self.ms = ms
    self.end = end
  }

  /// Every key present (`"error": null` when there is none), so a reader
  /// need not tell a missing key from an empty one.
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(input, forKey: .input)
    try c.encode(output, forKey: .output)
    try c.encode(status, forKey: .status)
    try c.encode(error, forKey: .error)
    try c.encode(bytes, forKey: .bytes)
    try c.encode(mtime, forKey: .mtime)
    try c.encode(fingerprint, forKey: .fingerprint)
    try c.encode(ms, forKey: .ms)
    try c.encode(end, forKey: .end)
  }
}
