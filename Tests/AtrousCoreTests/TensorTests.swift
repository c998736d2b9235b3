import AtrousCore
import Testing

@Suite struct TensorTests {
  @Test func layoutIsChannelsLast() {
    var t = Tensor(height: 2, width: 3, channels: 4)
    t[1, 2, 3] = 7
    #expect(t.scalars[(1 * 3 + 2) * 4 + 3] == 7)
    #expect(t.count == 24 && t.height == 2 && t.width == 3 && t.channels == 4)
  }

  @Test func copiesAreIndependent() {
    let a = Tensor(shape: [2, 2, 1], values: [1, 2, 3, 4])
    var b = a
    b[0, 0, 0] = 9
    #expect(a.scalars == [1, 2, 3, 4])
    #expect(b.scalars == [9, 2, 3, 4])
  }

  @Test func storageIsAligned() {
    for count in [1, 3, 17, 1000] {
      Tensor(shape: [count]).withUnsafeBufferPointer {
        #expect(Int(bitPattern: $0.baseAddress) % AlignedStorage.alignment == 0)
      }
    }
  }

  @Test func scalarsAndEmptyTensors() {
    #expect(Tensor(shape: []).count == 1)
    #expect(Tensor(shape: [0, 3]).count == 0)
    #expect(Tensor(shape: [2], repeating: 1.5).scalars == [1.5, 1.5])
  }

  @Test func reshapeKeepsElements() {
    let t = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
    #expect(t.reshaped([3, 2, 1]).scalars == t.scalars)
    #expect(t.reshaped([6]).shape == [6])
  }
}

@Suite struct AlignedStorageTests {
  @Test func largeBlocksAreReusedAndStillZeroedOnRequest() {
    // Tests run in parallel and share the pool: a request of half this size
    // or more from another test between the two allocations would take the
    // block, so the size is far above what any other test allocates (the
    // pages are only touched by the clearing).
    let size = 128 << 20
    var first: UnsafeMutableRawPointer?
    do {
      let storage = AlignedStorage(byteCount: size, zeroed: false)
      first = storage.pointer
      storage.pointer.storeBytes(of: 0xFF, toByteOffset: 1000, as: UInt8.self)
      #expect(Int(bitPattern: storage.pointer) % (2 << 20) == 0)
    }
    let again = AlignedStorage(byteCount: size, zeroed: true)
    #expect(again.pointer == first)
    #expect(again.pointer.load(fromByteOffset: 1000, as: UInt8.self) == 0)
  }

  @Test func largeTensorsBehaveLikeSmallOnes() {
    var t = Tensor(shape: [1024, 1024, 2], repeating: 0.5)
    t[1023, 1023, 1] = 2
    #expect(t.scalars.reduce(0, +) == Float(1024 * 1024 * 2 - 1) * 0.5 + 2)
  }
}
