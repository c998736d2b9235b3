// The umbrella module: `import Atrous` brings in every public stage.
@_exported import AtrousBatch
@_exported import AtrousCore
@_exported import AtrousFeatures
@_exported import AtrousFilters
@_exported import AtrousIO
@_exported import AtrousNN
@_exported import AtrousONNX
