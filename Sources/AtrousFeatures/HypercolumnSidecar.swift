import AtrousNN
import FoundationEssentials

/// The JSON file written beside a hypercolumn export: what each channel
/// range holds and where its features come from.
public struct HypercolumnSidecar: Codable, Sendable {
  public struct Field: Codable, Sendable {
    /// Input pixels one feature sees, (height, width).
    public var size: [Double]
    /// Input pixels between neighbouring features.
    public var jump: [Double]
    /// Input coordinate of the first feature's centre (pixel centres at 0.5).
    public var start: [Double]

    public init(_ field: ReceptiveField) {
      size = field.size
      jump = field.jump
      start = field.start
    }
  }

  public struct Layer: Codable, Sendable {
    public var name: String
    /// First and one-past-last channel in each hypercolumn: a Python
    /// slice, `hc[..., start:stop]`.
    public var channels: [Int]
    /// Channels the layer fills (`stop - start`), which makes the end's
    /// meaning plain to a reader of the JSON.
    public var channelCount: Int
    /// The layer's map for the whole image: (height, width, channels).
    public var shape: [Int]
    public var receptiveField: Field

    enum CodingKeys: String, CodingKey {
      case name, channels, shape
      case channelCount = "channel_count"
      case receptiveField = "receptive_field"
    }
  }

  public var image: String
  public var model: String
  /// Shape of the array in the .npy file.
  public var shape: [Int]
  /// "hwc", "chw", or "nc" for sampled pixels.
  public var layout: String
  public var dtype: String
  /// "bilinear half_pixel" or "bilinear align_corners": the grid the
  /// maps are placed on.
  public var resize: String
  /// The upsampling method and its settings ("bilinear", "jbu
  /// spatial_sigma 1.0 range_sigma 0.1", "guided radius 8.0 epsilon 0.001").
  public var upsample: String
  /// Height and width the model saw.
  public var inputSize: [Int]
  public var tiles: Int
  public var layers: [Layer]
  /// For sampled pixels: the .npy with their (x, y), one row each.
  public var pixels: String?

  enum CodingKeys: String, CodingKey {
    case image, model, shape, layout, dtype, resize, upsample, tiles, layers, pixels
    case inputSize = "input_size"
  }

  public init(image: String, model: String, plan: HypercolumnPlan, options: HypercolumnOptions, shape: [Int],
              layout: String, pixels: String? = nil) {
    self.image = image
    self.model = model
    self.shape = shape
    self.layout = layout
    dtype = options.dtype == .f16 ? "float16" : "float32"
    resize = options.alignment == .alignCorners ? "bilinear align_corners" : "bilinear half_pixel"
    upsample = "\(options.upsampling)"
    inputSize = [plan.height, plan.width]
    tiles = plan.tiles.count
    layers = plan.layers.map { layer in
      return Layer(name: layer.name, channels: [layer.channelRange.lowerBound, layer.channelRange.upperBound],
                   channelCount: layer.channelRange.count,
                   shape: [layer.mapHeight, layer.mapWidth, layer.channels],
                   receptiveField: Field(layer.receptiveField))
    }
    self.pixels = pixels
  }

  /// Pretty-printed JSON with a final newline.
  public func encoded() throws -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return Array(try encoder.encode(self)) + [0x0A]
  }
}
