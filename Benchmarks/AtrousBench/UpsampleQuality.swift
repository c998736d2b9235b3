import AtrousCore
import AtrousFeatures
import AtrousIO
import AtrousNN
import Foundation

/// How much each upsampling method helps a pixel classifier: a linear
/// classifier trained on sampled hypercolumns of one set of synthetic
/// scenes and tested on every pixel of another, scored by mean IoU and
/// boundary F-score (2-pixel tolerance).
///
/// Models: the built-in default (the filter bank, full resolution, gray)
/// and VGG16's blocks 1-3 with seeded random weights (conv1_2, conv2_2 and
/// conv3_3 after ReLU: strides 1, 2 and 4, 448 channels).
enum UpsampleQuality {
  struct Setting {
    var model: String
    var graph: Graph
    var layers: [String]
    var preprocessing: ImagePreprocessing
  }

  static func vgg16Blocks1To3() -> Graph {
    var net = NetworkBuilder(channels: 3, seed: 16)
    var x = net.input
    var outputs: [String] = []
    for (block, (width, convolutions)) in [(64, 2), (128, 2), (256, 3)].enumerated() {
      if block > 0 { x = net.maxPool(x, size: 2, name: "pool\(block)") }
      for i in 1...convolutions {
        x = net.conv2D(x, filters: width, kernel: 3, padding: .explicit(1), name: "conv\(block + 1)_\(i)")
        x = net.relu(x, name: "conv\(block + 1)_\(i)_relu")
      }
      outputs.append(x)
    }
    return net.graph(outputs: outputs)
  }

  static func settings() throws -> [Setting] {
    let builtIn = try ModelCatalog.load("default")
    let vgg = vgg16Blocks1To3()
    return [
      Setting(model: "default", graph: builtIn.graph, layers: builtIn.defaultLayers, preprocessing: builtIn.preprocessing),
      Setting(model: "VGG16 blocks 1-3", graph: vgg, layers: vgg.outputs, preprocessing: ImagePreprocessing()),
    ]
  }

  /// Every pixel's hypercolumn, (H W, C).
  static func columns(_ extractor: HypercolumnExtractor, _ input: NDArray, scratch: String) throws -> Tensor {
    let plan = try extractor.plan(height: input.shape[2], width: input.shape[3], channels: input.shape[1])
    try extractor.export(input, plan: plan, to: scratch)
    let array = try NPY.read(scratch).tensor()
    return array.reshaped([array.shape[0] * array.shape[1], array.shape[2]])
  }

  /// Labels as a picture: a gray level per class.
  static func labelPicture(_ labels: [Int], size: Int) -> Image {
    Image(width: size, height: size, format: .gray, samples: labels.map { UInt8(40 + 100 * $0) })
  }

  /// - Parameter pictures: a folder for the first test scene, its truth
  ///   and each method's prediction, as PNGs.
  /// The methods compared: each named one with its defaults, then those of
  /// `extra`, e.g. "guided:4:0.01,jbu:0.5:0.05" (method:first:second,
  /// jbu's spatial and range sigma, guided's radius and epsilon).
  static func methods(extra: String?) -> [(String, HypercolumnUpsampling)] {
    var list = HypercolumnUpsampling.names.map { ($0, HypercolumnUpsampling.named($0)!) }
    for spec in (extra ?? "").split(separator: ",") {
      let parts = spec.split(separator: ":").map(String.init)
      guard parts.count == 3, let a = Double(parts[1]), let b = Double(parts[2]) else { continue }
      let method = parts[0] == "jbu" ? HypercolumnUpsampling.named("jbu", spatialSigma: a, rangeSigma: b)
        : HypercolumnUpsampling.named(parts[0], radius: a, epsilon: b)
      if let method { list.append((String(spec), method)) }
    }
    return list
  }

  static func run(size: Int, trainImages: Int, testImages: Int, samplesPerImage: Int, threads: Int,
                  pictures: String? = nil, extraMethods: String? = nil) throws {
    let methods = Self.methods(extra: extraMethods)
    let train = (0..<trainImages).map { SyntheticScene(seed: UInt64(1000 + $0), size: size) }
    let test = (0..<testImages).map { SyntheticScene(seed: UInt64(2000 + $0), size: size) }
    let scratch = FileManager.default.temporaryDirectory.path + "/atrous-upsample-quality-\(getpid()).npy"
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    print("\(trainImages) training and \(testImages) test scenes of \(size)x\(size), \(samplesPerImage) training pixels each, "
            + "classes: \(SyntheticScene.classNames.joined(separator: ", "))")
    print("| model | upsampling | mean IoU | boundary F | boundary precision | boundary recall |")
    print("|---|---|---|---|---|---|")
    for setting in try settings() {
      for (method, upsampling) in methods {
        var options = HypercolumnOptions()
        options.upsampling = upsampling
        options.guideColours = setting.preprocessing.guideColours
        options.threads = threads
        let extractor = try HypercolumnExtractor(graph: setting.graph, layers: setting.layers, options: options)
        var random = SeededRandom(seed: 7)
        var samples: [Float] = [], labels: [Int] = []
        var channels = 0
        for scene in train {
          let all = try columns(extractor, setting.preprocessing.tensor(scene.image), scratch: scratch)
          channels = all.shape[1]
          let values = all.scalars
          for _ in 0..<samplesPerImage {
            let p = Int.random(in: 0..<(size * size), using: &random)
            samples += values[(p * channels)..<((p + 1) * channels)]
            labels.append(scene.labels[p])
          }
        }
        var training = PixelClassifier.Training()
        training.threads = threads
        let classifier = PixelClassifier(samples: Tensor(shape: [labels.count, channels], values: samples), labels: labels,
                                         classes: SyntheticScene.classes, training: training)
        var score = SegmentationScore(classes: SyntheticScene.classes)
        for (index, scene) in test.enumerated() {
          let all = try columns(extractor, setting.preprocessing.tensor(scene.image), scratch: scratch)
          let predicted = classifier.predict(all)
          score.add(predicted: predicted, truth: scene.labels, width: size, height: size)
          if let folder = pictures, index == 0 {
            let stem = folder + "/" + setting.model.split(separator: " ").first!.lowercased()
            try ImageFile.write(labelPicture(predicted, size: size), to: "\(stem)-\(method).png", format: .png)
            if method == "bilinear" {
              try ImageFile.write(scene.image, to: folder + "/scene.png", format: .png)
              try ImageFile.write(labelPicture(scene.labels, size: size), to: folder + "/truth.png", format: .png)
            }
          }
        }
        func f(_ v: Double) -> String { String(format: "%.3f", v) }
        print("| \(setting.model) | \(method) | \(f(score.meanIntersectionOverUnion)) | \(f(score.boundaryF)) "
                + "| \(f(score.boundaryPrecision)) | \(f(score.boundaryRecall)) |")
      }
    }
  }
}

/// The CPU's model name from /proc/cpuinfo ("unknown" elsewhere).
func cpuModel() -> String {
  guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
  for line in text.split(separator: "\n") where line.hasPrefix("model name") {
    return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
  }
  return "unknown"
}
