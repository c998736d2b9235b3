/// Why a batch's manifest could not be read, written or continued.
public enum ManifestError: Error, Equatable, CustomStringConvertible {
  case cannotWrite(path: String, reason: String)
  case cannotRead(path: String, reason: String)
  /// The folder holds results made with other settings or another model.
  case otherSettings(folder: String, found: String, now: String, manifest: String)
  /// Not a folder a batch wrote into: no manifest in it.
  case noManifest(folder: String)

  public var path: String {
    switch self {
    case .cannotWrite(let path, _), .cannotRead(let path, _): path
    case .otherSettings(let folder, _, _, _), .noManifest(let folder): folder
    }
  }

  public var reason: String {
    switch self {
    case .cannotWrite(_, let reason): "cannot write: \(reason)"
    case .cannotRead(_, let reason): "cannot read: \(reason)"
    case .otherSettings(_, let found, let now, let manifest):
      "holds results of another model or other settings (fingerprint \(found) in \(manifest), now \(now)); "
        + "--overwrite replaces them, or use another folder"
    case .noManifest: "no manifest-<I>-of-<N>.jsonl in the folder"
    }
  }

  public var description: String { "\(path): \(reason)" }
}
