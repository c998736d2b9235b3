#!/usr/bin/env python3
"""Single ONNX ops outside convolutions: Atrous against ONNX Runtime on
one-node models over a (1, 64, 128, 128) float input (4M elements, 16 MB),
the same files and inputs, in one run, with 1 and 2 threads. These are the
ops of the models users bring beyond the conv trunks: broadcasting
arithmetic, Expand, Tile, Where, Concat, the reductions, Softmax,
Transpose, Slice, Gather, Pad, Resize and element-wise curves. Prints each
op's time and ratio (Atrous / ONNX Runtime).

    pip install numpy onnx onnxruntime
    python3 Benchmarks/ops.py [--rounds 3] [--repeat 10] [--only NAME]...
"""
import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from harness import arguments, build_bench, compare, ort_session, time_bench, time_python, machine

RNG = np.random.default_rng(0)
SHAPE = [1, 64, 128, 128]


def ints(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def floats(name, values):
    return numpy_helper.from_array(np.array(values, np.float32), name)


def cases():
    """label -> (nodes, initializers); the input is "x", the output "y"."""
    node = helper.make_node
    return {
        "add per-channel": ([node("Add", ["x", "b"], ["y"])], [floats("b", RNG.standard_normal((1, 64, 1, 1)))]),
        "mul": ([node("Mul", ["x", "x"], ["y"])], []),
        "expand 4x": ([node("Expand", ["x", "s"], ["y"])], [ints("s", [4, 64, 128, 128])]),
        "tile 2x2": ([node("Tile", ["x", "r"], ["y"])], [ints("r", [1, 1, 2, 2])]),
        "where": ([node("Greater", ["x", "z"], ["m"]), node("Where", ["m", "x", "z"], ["y"])], [floats("z", 0)]),
        "concat channels": ([node("Concat", ["x", "x"], ["y"], axis=1)], []),
        "reducemax all": ([node("ReduceMax", ["x"], ["y"], keepdims=0)], []),
        "reducemax channels": ([node("ReduceMax", ["x"], ["y"], axes=[1])], []),
        "reducemean channels": ([node("ReduceMean", ["x"], ["y"], axes=[1])], []),
        "reducesum last": ([node("ReduceSum", ["x", "a"], ["y"])], [ints("a", [3])]),
        "softmax channels": ([node("Softmax", ["x"], ["y"], axis=1)], []),
        "softmax last": ([node("Softmax", ["x"], ["y"], axis=-1)], []),
        "transpose nhwc": ([node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])], []),
        "slice channels": ([node("Slice", ["x", "s", "e", "a"], ["y"])], [ints("s", [0]), ints("e", [32]), ints("a", [1])]),
        "gather channels": ([node("Gather", ["x", "i"], ["y"], axis=1)], [ints("i", list(range(0, 64, 2)))]),
        "pad 2": ([node("Pad", ["x", "p"], ["y"])], [ints("p", [0, 0, 2, 2, 0, 0, 2, 2])]),
        "resize linear 2x": ([node("Resize", ["x", "", "s"], ["y"], mode="linear")], [floats("s", [1, 1, 2, 2])]),
        "sigmoid": ([node("Sigmoid", ["x"], ["y"])], []),
        "tanh": ([node("Tanh", ["x"], ["y"])], []),
        "exp": ([node("Exp", ["x"], ["y"])], []),
        "cast float16 and back": ([node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16),
                                   node("Cast", ["h"], ["y"], to=TensorProto.FLOAT)], []),
        "argmax channels": ([node("ArgMax", ["x"], ["a"], axis=1), node("Cast", ["a"], ["y"], to=TensorProto.FLOAT)], []),
    }


def main():
    args = arguments(__doc__, repeat=10)
    binary = build_bench()
    print(machine(binary))
    print(f"onnxruntime {ort.__version__} (ORT_ENABLE_ALL); input {SHAPE}; "
          f"median of {args.repeat} runs per round, median of {args.rounds} alternating rounds")
    x = RNG.standard_normal(SHAPE).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        npy = os.path.join(folder, "x.npy")
        np.save(npy, x)
        for label, (nodes, initializers) in cases().items():
            if args.only and not any(label.startswith(name) for name in args.only):
                continue
            graph = helper.make_graph(nodes, "op", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
            path = os.path.join(folder, "op.onnx")
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
            row = f"{label:22s}"
            for threads in (1, 2):
                session = ort_session(path, threads)
                a, o = compare(args.rounds, lambda: time_bench(binary, ["model", path, npy, threads, args.repeat]),
                               lambda: time_python(lambda: session.run(None, {"x": x}), args.repeat))
                row += f"   {threads}T {a:8.3f} / {o:8.3f} ms = {a / o:5.2f}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
