#!/usr/bin/env bash
# Regenerates Sources/AtrousONNX/Generated/onnx.pb.swift from
# Sources/AtrousONNX/Proto/onnx.proto (ONNX 1.23.2, Apache-2.0).
#
# Needs protoc (Debian: apt-get install protobuf-compiler) and the
# protoc-gen-swift plugin of the same swift-protobuf version the package
# depends on:
#   git clone https://github.com/apple/swift-protobuf && cd swift-protobuf
#   git checkout 1.39.0 && swift build -c release --product protoc-gen-swift
# then pass its path as the first argument.
set -euo pipefail
plugin=${1:?usage: Scripts/generate-onnx-swift.sh PATH/TO/protoc-gen-swift}
cd "$(dirname "$0")/.."
protoc --plugin=protoc-gen-swift="$plugin" \
  --proto_path=Sources/AtrousONNX/Proto \
  --swift_opt=Visibility=Internal \
  --swift_out=Sources/AtrousONNX/Generated \
  onnx.proto
echo "wrote Sources/AtrousONNX/Generated/onnx.pb.swift"
