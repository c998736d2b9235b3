import AtrousFuzzing

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  FuzzTarget.filterSpec.fuzz(Array(UnsafeBufferPointer(start: data, count: size)))
  return 0
}
