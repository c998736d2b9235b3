#!/usr/bin/env python3
"""CNN speed: Atrous against ONNX Runtime (graph optimizations on) on the
same ONNX models and inputs, in one run, with 1 and 2 threads.

Models (random weights, made here with the onnx package): a 3x3 conv 64->64
at 224x224; depthwise 3x3 + pointwise 1x1, 128 channels at 112x112; a
dilated (2) 3x3 conv 64->64 at 112x112; ConvTranspose 64->32, kernel 4,
stride 2, 56->112; the VGG16 conv trunk at 224x224; and the PP-OCRv4 text
detector (from the test fixtures) on a 736x736 input. Also reports the
GFLOP/s of the 3x3 conv (2 FLOPs per multiply-accumulate).

    pip install numpy onnx onnxruntime
    python3 Benchmarks/cnn.py [--rounds 3] [--repeat 5] [--only NAME]...
"""
import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from harness import ROOT, arguments, build_bench, compare, ort_session, time_bench, time_python, machine

RNG = np.random.default_rng(0)


def weight(name, shape):
    fan_in = int(np.prod(shape[1:]))
    return helper.make_tensor(name, TensorProto.FLOAT, shape, (RNG.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32).ravel())


def model(nodes, initializers, input_shape, output_name):
    graph = helper.make_graph(nodes, "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, None)], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def conv(name, x, cin, cout, k, stride=1, pad=0, dilation=1, group=1):
    inits = [weight(name + ".w", [cout, cin // group, k, k]), weight(name + ".b", [cout])]
    node = helper.make_node("Conv", [x, name + ".w", name + ".b"], [name], kernel_shape=[k, k], strides=[stride, stride],
                            pads=[pad] * 4, dilations=[dilation, dilation], group=group)
    return node, inits


def models():
    out = {}
    n, i = conv("y", "x", 64, 64, 3, pad=1)
    out["conv3x3 64->64 224"] = (model([n], i, [1, 64, 224, 224], "y"), [1, 64, 224, 224], 224 * 224 * 64 * 64 * 9)
    n1, i1 = conv("d", "x", 128, 128, 3, pad=1, group=128)
    n2, i2 = conv("y", "d", 128, 128, 1)
    out["dw3x3+pw1x1 128 112"] = (model([n1, n2], i1 + i2, [1, 128, 112, 112], "y"), [1, 128, 112, 112],
                                  112 * 112 * 128 * (9 + 128))
    n, i = conv("y", "x", 64, 64, 3, pad=2, dilation=2)
    out["dilated3x3 64->64 112"] = (model([n], i, [1, 64, 112, 112], "y"), [1, 64, 112, 112], 112 * 112 * 64 * 64 * 9)
    t = helper.make_node("ConvTranspose", ["x", "t.w", "t.b"], ["y"], kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])
    out["convT 64->32 k4s2 56"] = (model([t], [weight("t.w", [64, 32, 4, 4]), weight("t.b", [32])], [1, 64, 56, 56], "y"),
                                   [1, 64, 56, 56], 56 * 56 * 64 * 32 * 16)
    nodes, inits, x, cin, macs, size = [], [], "x", 3, 0, 224
    for block, (cout, count) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
        for layer in range(count):
            name = f"conv{block + 1}_{layer + 1}"
            c, w = conv(name, x, cin, cout, 3, pad=1)
            nodes += [c, helper.make_node("Relu", [name], [name + "_relu"])]
            inits += w
            macs += size * size * cin * cout * 9
            x, cin = name + "_relu", cout
        nodes.append(helper.make_node("MaxPool", [x], [f"pool{block + 1}"], kernel_shape=[2, 2], strides=[2, 2]))
        x, size = f"pool{block + 1}", size // 2
    out["vgg16 trunk 224"] = (model(nodes, inits, [1, 3, 224, 224], x), [1, 3, 224, 224], macs)
    ppocr = onnx.load(os.path.join(ROOT, "Sources", "_CModels", "Models", "ppocrv4-det", "model.onnx"))
    out["ppocrv4-det 736"] = (ppocr, [1, 3, 736, 736], None)
    return out


def main():
    args = arguments(__doc__, repeat=5)
    binary = build_bench()
    print(machine(binary))
    with tempfile.TemporaryDirectory() as folder:
        print(f"onnxruntime {ort.__version__} (ORT_ENABLE_ALL); median of {args.repeat} runs per round, {args.rounds} rounds")
        for label, (proto, shape, macs) in models().items():
            if args.only and not any(label.startswith(name) for name in args.only):
                continue
            path = os.path.join(folder, label.split()[0] + ".onnx")
            onnx.save(proto, path)
            x = RNG.standard_normal(shape).astype(np.float32)
            npy = os.path.join(folder, "x.npy")
            np.save(npy, x)
            for threads in (1, 2):
                session = ort_session(path, threads)
                name = session.get_inputs()[0].name
                a, o = compare(args.rounds, lambda: time_bench(binary, ["model", path, npy, threads, args.repeat]),
                               lambda: time_python(lambda: session.run(None, {name: x}), args.repeat))
                rate = f"  atrous {2 * macs / a / 1e6:6.1f} GFLOP/s, ort {2 * macs / o / 1e6:6.1f}" if macs else ""
                print(f"{label:24s} {threads}T  atrous {a:8.1f} ms  ort {o:8.1f} ms  ratio {a / o:.2f}{rate}")


if __name__ == "__main__":
    main()
