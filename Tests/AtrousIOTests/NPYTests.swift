import AtrousCore
import AtrousIO
import AtrousTestSupport
import Testing

/// `.npy` files written by numpy.save hold arange(n) cast to their dtype
/// (bool: odd positions true), so the expected values are recomputed here.
@Suite struct NPYTests {
  static let numpyFiles: [(name: String, dtype: NPYDType, shape: [Int])] = [
    ("f4_2x3", .float32, [2, 3]), ("f2_4", .float16, [4]), ("f8_2x2x2", .float64, [2, 2, 2]),
    ("u1_3x4x3", .uint8, [3, 4, 3]), ("u2_5x1", .uint16, [5, 1]), ("i4_6", .int32, [6]),
    ("i8_2x3", .int64, [2, 3]), ("b1_7", .bool, [7]), ("f4_scalar", .float32, []),
    ("f4_empty", .float32, [0, 3]), ("f4_rank5", .float32, [1, 2, 1, 3, 2]), ("f4_wide", .float32, [1_234_567, 0]),
  ]

  @Test(arguments: numpyFiles.map(\.name))
  func readsWhatNumpyWrote(name: String) throws {
    let entry = try #require(Self.numpyFiles.first { $0.name == name })
    let array = try NPY.read(Fixtures.path("npy/\(name).npy"))
    #expect(array.dtype == entry.dtype)
    #expect(array.shape == entry.shape)
    let n = entry.shape.reduce(1, *)
    let expected = (0..<n).map { entry.dtype == .bool ? Double($0 % 2) : Double($0) }
    #expect(array.doubles == expected)
  }

  @Test(arguments: numpyFiles.map(\.name))
  func writesWhatNumpyWrites(name: String) throws {
    let file = try Fixtures.bytes("npy/\(name).npy")
    #expect(NPY.encode(try NPY.decode(file)) == file)
  }

  @Test func readsBigEndianAndVersion2() throws {
    for name in ["big_endian_f4_2x3", "v2_f4_2x3"] {
      let array = try NPY.read(Fixtures.path("npy/\(name).npy"))
      #expect(array.shape == [2, 3] && array.dtype == .float32)
      #expect(array.doubles == [0, 1, 2, 3, 4, 5], "\(name)")
    }
  }

  @Test func refusesFortranOrder() throws {
    #expect(throws: NPYError.fortranOrder) { try NPY.read(Fixtures.path("npy/fortran_f4_2x3.npy")) }
  }

  @Test func everyCutFileFailsCleanly() throws {
    let file = try Fixtures.bytes("npy/f8_2x2x2.npy")
    for length in 0..<file.count {
      #expect(throws: NPYError.self, "cut at \(length)") { try NPY.decode(Array(file[0..<length])) }
    }
  }

  @Test func malformedHeadersAreRejected() {
    func file(_ header: String, version: UInt8 = 1) -> [UInt8] {
      let text = Array(header.utf8)
      return NPY.magicBytes + [version, 0, UInt8(text.count & 0xFF), UInt8(text.count >> 8)] + text + [UInt8](repeating: 0, count: 64)
    }
    #expect(throws: NPYError.unsupportedDType(descr: "<c8")) {
      try NPY.decode(file("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n"))
    }
    #expect(throws: NPYError.self) { try NPY.decode(file("{'descr': '<f4', 'shape': (2,), }\n")) }
    #expect(throws: NPYError.self) { try NPY.decode(file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,-1), }\n")) }
    #expect(throws: NPYError.self) { try NPY.decode(file("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }\n")) }
    #expect(throws: NPYError.self) {
      try NPY.decode(file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }\n"))
    }
    #expect(throws: NPYError.self) {
      try NPY.decode(file("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }\n"))
    }
    #expect(throws: NPYError.unsupportedVersion(major: 9, minor: 0)) {
      try NPY.decode(file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", version: 9))
    }
    #expect(throws: NPYError.notNPY) { try NPY.decode(Array("not numpy at all".utf8)) }
  }

  @Test func headerIsPaddedToSixtyFourBytes() {
    for shape in [[], [0], [7], [512, 512, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]] {
      let header = NPY.header(dtype: .float32, shape: shape)
      #expect(header.count % 64 == 0)
      #expect(header.last == 0x0A)
    }
  }

  @Test func tensorRoundTripsThroughAFile() throws {
    let folder = Fixtures.scratchFolder()
    let tensor = Tensor(shape: [3, 5, 2], values: (0..<30).map { Float($0) * 0.25 - 3 })
    try NPY.write(tensor, to: folder + "/t.npy")
    #expect(try NPY.read(folder + "/t.npy").tensor() == tensor)
    try NPY.write(tensor, to: folder + "/h.npy", as: .float16)
    let halves = try NPY.read(folder + "/h.npy")
    #expect(halves.dtype == .float16)
    #expect(halves.tensor() == tensor)  // quarters are exact in float16
  }
}

@Suite struct NPYStreamingTests {
  @Test(arguments: NPYTests.numpyFiles.map(\.name) + ["big_endian_f4_2x3", "v2_f4_2x3"])
  func readTensorEqualsWholeFileRead(name: String) throws {
    let path = Fixtures.path("npy/\(name).npy")
    #expect(try NPY.readTensor(path) == NPY.read(path).tensor())
  }

  @Test func readTensorRejectsBadFiles() throws {
    let folder = Fixtures.scratchFolder()
    let file = try Fixtures.bytes("npy/f8_2x2x2.npy")
    try AtomicFileWriter.write(Array(file.dropLast(3)), to: folder + "/cut.npy")
    #expect(throws: NPYError.truncated(expectedBytes: 64, actualBytes: 61)) { try NPY.readTensor(folder + "/cut.npy") }
    #expect(throws: NPYError.fortranOrder) { try NPY.readTensor(Fixtures.path("npy/fortran_f4_2x3.npy")) }
    #expect(throws: NPYError.notNPY) { try NPY.readTensor(Fixtures.repository + "/SampleImages/camera.png") }
  }

  /// A header that claims far more data than the file holds is refused
  /// before memory is set aside for it (this one would need 120 GB).
  @Test func streamedReadChecksTheDataBeforeAllocating() throws {
    var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 3), }".utf8)
    header += [UInt8](repeating: 0x20, count: 118 - header.count) + [0x0A]
    let bytes = NPY.magicBytes + [1, 0, UInt8(header.count), 0] + header + [UInt8](repeating: 0, count: 100)
    let path = Fixtures.scratchFolder() + "/claims.npy"
    try AtomicFileWriter.write(bytes, to: path)
    #expect(throws: NPYError.truncated(expectedBytes: 120_000_000_000, actualBytes: 100)) { _ = try NPY.readTensor(path) }
  }
}

/// The vectorized float16 conversion against the plain rule, on every
/// instruction set this machine has.
@Suite struct Float16ConversionTests {
  /// Values at every boundary of the rule (overflow, subnormals, ties),
  /// then random bit patterns over every exponent.
  static let values: [Float] = {
    var values: [Float] = [0, -0, 1, -1, 1.0 / 3, 65504, 65519.99, 65520, -65520, 65536, 1e9, .infinity, -.infinity,
                           .nan, -.nan, Float(bitPattern: 0x7FA0_0001), .leastNonzeroMagnitude,
                           0x1p-14, 0x1p-15, 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1.0000_02p-25, 0x1.8p-24, 0x1p-26,
                           0x1.002p0, 0x1.006p0, 0x1.0021p0, 0x1.ffep15, 0x1.ffdp15]
    var random = SeededRandom(seed: 7)
    for _ in 0..<200_000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: random.next()))) }
    return values
  }()

  @Test(arguments: InstructionSet.available)
  func kernelMatchesThePlainRule(isa: InstructionSet) {
    let values = Self.values
    var bytes = [UInt8](repeating: 0, count: values.count * 2)
    let overflows = InstructionSet.with(isa) {
      values.withUnsafeBufferPointer { v in bytes.withUnsafeMutableBytes { Float16Bits.convert(v, into: $0) } }
    }
    var mismatches: [String] = []
    for (i, value) in values.enumerated() {
      let got = UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8
      let want = Float16Bits.from(value)
      if got != want && mismatches.count < 5 { mismatches.append("\(value) (\(value.bitPattern)): \(got) != \(want)") }
    }
    #expect(mismatches.isEmpty, "\(mismatches)")
    #expect(overflows == values.filter(Float16Bits.overflows).count)
  }

  /// numpy's astype(float16) of a few values, bits as numpy prints them.
  @Test func plainRuleMatchesNumPy() {
    let numpy: [(Float, UInt16)] = [(1.0 / 3, 0x3555), (65519, 0x7BFF), (65520, 0x7C00), (0x1p-25, 0x0000),
                                    (0x1.8p-24, 0x0002), (-2.5, 0xC100), (1e-8, 0x0000), (6e-8, 0x0001)]
    for (value, bits) in numpy { #expect(Float16Bits.from(value) == bits, "\(value)") }
  }
}
