import AtrousFeatures
import AtrousIO
import FoundationEssentials
import AtrousTestSupport
import Testing

/// The models compiled into the binary are the files in the repository,
/// byte for byte, and load as those files do.
@Suite struct BundledModelTests {
  @Test(arguments: [("mnist", "mnist-8"), ("ppocr", "ppocrv4-det")])
  func bundledBytesAreTheFiles(name: String, folder: String) throws {
    let embedded = try #require(ModelCatalog.bundledBytes(name))
    let file = try FileIO.readAll(Fixtures.model(folder))
    #expect(embedded.count == file.count)
    let same = Array(embedded) == file
    #expect(same)
    let loaded = try ModelCatalog.load(name)
    #expect(loaded.file == nil && loaded.preset == name)
    #expect(loaded.graph.nodes.count > 0)
  }

  @Test func otherNamesAreNotBundled() {
    #expect(ModelCatalog.bundledBytes("resnet") == nil)
    #expect(ModelCatalog.bundledBytes("") == nil)
  }
}
