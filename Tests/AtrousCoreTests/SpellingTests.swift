import AtrousCore
import Testing

/// "Did you mean": slips are found, other words are not matched.
@Suite struct SpellingTests {
  @Test func slipsFindTheirWord() {
    let models = ["default", "mnist", "ppocr"]
    #expect(Spelling.closest(to: "mnsit", among: models) == "mnist")  // two letters swapped
    #expect(Spelling.closest(to: "MNIST", among: models) == "mnist")
    #expect(Spelling.closest(to: "defualt", among: models) == "default")
    #expect(Spelling.closest(to: "resnet", among: models) == nil)
    #expect(Spelling.closest(to: "gausian", among: ["gaussian", "box"]) == "gaussian")
    #expect(Spelling.closest(to: "blur", among: ["gaussian", "box"]) == nil)
    #expect(Spelling.suggestion(for: "bx", among: ["box"]) == " (did you mean 'box'?)")
    #expect(Spelling.suggestion(for: "", among: ["box"]) == "")
  }
}
