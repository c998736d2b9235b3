#!/usr/bin/env python3
"""The two small ONNX files the README's examples name, for the test that
runs every README and --help example (Tests/AtrousCLITests/ExampleTests.swift):

- vgg.onnx: a VGG-style trunk at a few channels whose layers carry VGG's
  names (conv1_1 ... conv2_2), any input size;
- model.onnx: a 224x224 classifier-style net with input `x` and a layer
  `conv5`, as `run`, `inspect --input-size` and `inspect --at` use it.

Weights are seeded random numbers: the examples check that commands run,
not what a trained net says.

    pip install onnx numpy
    python3 Scripts/make-readme-models.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "readme")
rng = np.random.default_rng(7)


def conv(nodes, inits, x, name, cin, cout, stride=1):
    w = (rng.standard_normal((cout, cin, 3, 3)) * 0.2).astype(np.float32)
    b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
    inits += [numpy_helper.from_array(w, name + ".w"), numpy_helper.from_array(b, name + ".b")]
    nodes.append(helper.make_node("Conv", [x, name + ".w", name + ".b"], [name + ".pre"], name=name + ".conv",
                                  kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[stride, stride]))
    nodes.append(helper.make_node("Relu", [name + ".pre"], [name], name=name + ".relu"))
    return name


def save(nodes, inits, input_shape, output, output_shape, name):
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, output_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make-readme-models")
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(OUT, name + ".onnx"))


def main():
    os.makedirs(OUT, exist_ok=True)
    nodes, inits = [], []
    x = conv(nodes, inits, "x", "conv1_1", 3, 4)
    x = conv(nodes, inits, x, "conv1_2", 4, 4)
    nodes.append(helper.make_node("MaxPool", [x], ["pool1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]))
    x = conv(nodes, inits, "pool1", "conv2_1", 4, 8)
    x = conv(nodes, inits, x, "conv2_2", 8, 8)
    save(nodes, inits, [1, 3, "height", "width"], x, [1, 8, "h", "w"], "vgg")

    nodes, inits = [], []
    x = "x"
    for i, (cin, cout) in enumerate([(3, 4), (4, 8), (8, 8), (8, 16), (16, 16)]):
        x = conv(nodes, inits, x, f"conv{i + 1}", cin, cout, stride=2)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["logits"], name="flatten"))
    save(nodes, inits, [1, 3, 224, 224], "logits", [1, 16], "model")


if __name__ == "__main__":
    main()
