#!/usr/bin/env python3
"""The two models of the checkerboard demo (Odena et al. 2016, "Deconvolution
and Checkerboard Artifacts"), with seeded random weights, written to
Examples/checkerboard/:

  deconv.onnx   down: two 3x3 convolutions of stride 2; up: two 3x3
                transposed convolutions of stride 2. The kernel size is
                not a multiple of the stride, so taps overlap unevenly both
                ways: every other input pixel reaches twice as many units
                (the effective field is checkered) and every other output
                pixel receives twice as many taps (the maps are);
  resize.onnx   down: 3x3 convolutions each followed by a 2x2 average pool;
                up: nearest-neighbour 2x upsampling, each followed by a 3x3
                convolution (the resize-convolution the paper recommends).

Both take (1, 3, H, W) RGB from 0 to 1 with H and W multiples of 4; the
layers have the same names in both: enc1, enc2 (the down path, after
ReLU), up1 (after ReLU) and up2.

    pip install numpy onnx
    python3 Scripts/make-checkerboard-models.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Examples", "checkerboard")


def model(decoder):
    rng = np.random.default_rng(2016)
    nodes, inits = [], []

    def weight(name, shape, fan_in):
        bound = np.sqrt(6.0 / fan_in)
        inits.append(helper.make_tensor(name, TensorProto.FLOAT, shape,
                                        rng.uniform(-bound, bound, size=shape).astype(np.float32).ravel()))
        return name

    def relu(x, name):
        nodes.append(helper.make_node("Relu", [x], [name], name=name))
        return name

    def conv(x, name, cin, cout, stride=1):
        w = weight(name + ".weight", [cout, cin, 3, 3], cin * 9)
        nodes.append(helper.make_node("Conv", [x, w], [name], name=name, kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                      strides=[stride, stride]))
        return name

    x = "image"
    for i, (cin, cout) in enumerate([(3, 8), (8, 16)], start=1):
        name = f"enc{i}"
        if decoder == "deconv":
            x = relu(conv(x, name + "_conv", cin, cout, stride=2), name)
        else:
            x = relu(conv(x, name + "_conv", cin, cout), name + "_full")
            nodes.append(helper.make_node("AveragePool", [x], [name], name=name, kernel_shape=[2, 2], strides=[2, 2]))
            x = name
    for i, (cin, cout) in enumerate([(16, 8), (8, 3)], start=1):
        name = f"up{i}" if i == 2 else f"up{i}_linear"
        if decoder == "deconv":
            w = weight(name + ".weight", [cin, cout, 3, 3], cin * 9 // 4)
            nodes.append(helper.make_node("ConvTranspose", [x, w], [name], name=name, kernel_shape=[3, 3], strides=[2, 2],
                                          pads=[1, 1, 1, 1], output_padding=[1, 1]))
        else:
            scales = name + ".scales"
            inits.append(helper.make_tensor(scales, TensorProto.FLOAT, [4], [1, 1, 2, 2]))
            nodes.append(helper.make_node("Resize", [x, "", scales], [name + "_resized"], name=name + "_resize", mode="nearest",
                                          coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
            conv(name + "_resized", name, cin, cout)
        x = relu(name, f"up{i}") if i == 1 else name
    graph = helper.make_graph(nodes, decoder, [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, None, None])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 3, None, None])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make-checkerboard-models")
    onnx.checker.check_model(m)
    return m


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for decoder in ["deconv", "resize"]:
        onnx.save(model(decoder), os.path.join(OUT, decoder + ".onnx"))
        print(os.path.join(OUT, decoder + ".onnx"))
