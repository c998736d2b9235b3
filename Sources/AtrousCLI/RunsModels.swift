/// A command that runs a model. The entry point starts faulting in the
/// memory of its first run (`LargeBlockPool.faultAhead`, see
/// `FaultedReserve`) before it parses the command line: parsing, loading
/// the model and reading the input take one core for several
/// milliseconds, and the others are idle.
protocol RunsModels {}
