import AtrousCore
import AtrousIO
import AtrousNN

/// How an image becomes a network input: optional resize (bilinear,
/// half-pixel, as cv2.resize), values * `scale`, then (v - mean) / std per
/// channel, as (1, C, H, W) stored channels-last.
public struct ImagePreprocessing: Sendable {
  /// Output size (height, width); nil keeps the image's (or the preset's).
  public var size: (height: Int, width: Int)?
  /// Multiplies 0-255 pixel values (1/255 gives 0-1).
  public var scale: Float = 1 / 255
  /// Per-channel (or one shared) mean subtracted after scaling.
  public var mean: [Float]?
  /// Per-channel (or one shared) divisor applied after the mean.
  public var std: [Float]?
  /// Channels in BGR order (OpenCV's).
  public var bgr = false
  /// One gray channel (BT.601 luma, as cv2.cvtColor).
  public var gray = false
  /// Round each side to the nearest multiple of this (at least one
  /// multiple) when `size` is nil; 1 keeps the image's size.
  public var sideMultiple = 1

  public init() {}

  /// Known models' preprocessing: `default` (the filter bank: gray, 0-1),
  /// `mnist` (gray 28x28, raw 0-255) and `ppocr` (BGR, sides rounded to
  /// multiples of 32, (v/255 - 0.5) / 0.5).
  public static func preset(_ name: String) -> ImagePreprocessing? {
    var p = ImagePreprocessing()
    switch name {
    case "default":
      p.gray = true
    case "mnist":
      p.gray = true
      p.scale = 1
      p.size = (28, 28)
    case "ppocr":
      p.bgr = true
      p.mean = [0.5, 0.5, 0.5]
      p.std = [0.5, 0.5, 0.5]
      p.sideMultiple = 32
    default: return nil
    }
    return p
  }

  public static let presetNames = ["default", "mnist", "ppocr"]

  /// The size the image is brought to.
  public func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
    if let size { return size }
    guard sideMultiple > 1 else { return (height, width) }
    func round(_ n: Int) -> Int { max(sideMultiple, Int((Double(n) / Double(sideMultiple)).rounded()) * sideMultiple) }
    return (round(height), round(width))
  }

  /// How the network input's values go back to colours from 0 to 1, for
  /// the guided upsamplings: `v / 255 = (x * std + mean) / (scale * 255)`.
  public var guideColours: GuideColours {
    let count = max(mean?.count ?? 1, std?.count ?? 1)
    func entry(_ values: [Float]?, _ c: Int, _ fallback: Float) -> Float {
      guard let values else { return fallback }
      return values.count == 1 ? values[0] : values[c]
    }
    let unit = scale * 255
    return GuideColours(scale: (0..<count).map { entry(std, $0, 1) / unit }, offset: (0..<count).map { entry(mean, $0, 0) / unit })
  }

  /// The image as a (1, C, H, W) network input, stored channels-last.
  /// - Throws: `ImageConversionError` when mean or std do not match the channels.
  public func tensor(_ image: Image) throws -> NDArray {
    // The size may come from an option (--size): checked before the
    // conversion and the resize allocate it. At most 2^30 pixels each way.
    let target = outputSize(height: image.height, width: image.width)
    let channels = gray ? 1 : image.format.hasAlpha ? image.channels - 1 : image.channels
    for (height, width) in [(image.height, image.width), target] {
      try MemoryBudget.check(height * width * channels, of: 4) {
        ImageConversionError.exceedsMemoryBudget(height: height, width: width, channels: channels, bytes: $0, budget: $1)
      }
    }
    var hwc = Tensor(image.format.hasAlpha ? image.droppingAlpha() : image, scale: .byte, order: bgr ? .bgr : .rgb, gray: gray)
    if target != (hwc.height, hwc.width) { hwc = BilinearResize.resize(hwc, height: target.height, width: target.width) }
    for (name, values) in [("mean", mean), ("std", std)] {
      if let values, values.count != channels && values.count != 1 {
        throw ImageConversionError.channelMismatch(what: name, given: values.count, channels: channels)
      }
    }
    // Per channel, a missing mean as 0 and std as 1: subtracting 0 and
    // dividing by 1 are exact, so every value is (x * scale - mean) / std
    // as given, in one pass without a remainder or an optional per value
    // (0.8 ms of a fresh process for a 224x224 photo before, 0.15 now).
    let scale = self.scale
    let offsets = (0..<channels).map { c in mean.map { $0.count == 1 ? $0[0] : $0[c] } ?? 0 }
    let divisors = (0..<channels).map { c in std.map { $0.count == 1 ? $0[0] : $0[c] } ?? 1 }
    hwc.withUnsafeMutableBufferPointer { v in
      offsets.withUnsafeBufferPointer { m in
        divisors.withUnsafeBufferPointer { d in
          var i = 0
          while i < v.count {  // (H, W, C)
            for c in 0..<channels { v[i + c] = (v[i + c] * scale - m[c]) / d[c] }
            i += channels
          }
        }
      }
    }
    return NDArray(channelsLast: hwc.reshaped([1] + hwc.shape))
  }
}
