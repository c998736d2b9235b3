#!/usr/bin/env python3
"""Writes ONNX's own node tests for the operators Atrous supports into
Tests/Fixtures/onnx-ops/, as the installed onnx package generates them
(onnx.backend.test.case.node.collect_testcases()).

Each test becomes a folder <test_name>/ with model.onnx, input_K.pb and
output_K.pb (serialized TensorProto, every ONNX element type), and one row
in index.json: its name, the op under test, the ops of its graph and its
tolerance (ONNX's own, never tighter than rtol 1e-3, atol 1e-5).

A test is taken when every op of its graph is in OPERATORS and none of its
values is a string, a sequence or an optional.

Usage: pip install onnx==<version>; python3 Scripts/generate-onnx-node-tests.py
"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

OPERATORS = set("""
Abs Acos Acosh Add AffineGrid And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast CastLike
Ceil Celu CenterCropPad Clip Col2Im Compress Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum
DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalMaxPool Greater GreaterOrEqual GridSample
GroupNormalization HardSigmoid HardSwish Hardmax Identity InstanceNormalization IsInf IsNaN LRN LayerNormalization
LeakyRelu Less LessOrEqual Log LogSoftmax LpNormalization LpPool MatMul Max MaxPool MaxUnpool Mean
MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or PRelu Pad Pow
QuantizeLinear RMSNormalization Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize RoiAlign Round ScatterElements
ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt
Squeeze Sub Sum Swish Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())


def tensor_values(model):
    graph = model.graph
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        yield info.type


def plain_tensors(model):
    """True when every graph input and output is a non-string tensor."""
    for t in tensor_values(model):
        if t.WhichOneof("value") != "tensor_type":
            return False
        if t.tensor_type.elem_type == onnx.TensorProto.STRING:
            return False
    return True


# Element types Atrous holds (TensorProto numbers); tests with any other
# (bfloat16, float8, 4- and 2-bit types) must be refused cleanly.
SUPPORTED_TYPES = {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13}


def element_types(model):
    """Every element type the model's values, initializers, constants and casts name."""
    types = set()
    graph = model.graph
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        types.add(info.type.tensor_type.elem_type)
    types.update(t.data_type for t in graph.initializer)
    for node in graph.node:
        for a in node.attribute:
            if a.name in ("to", "dtype", "output_dtype") and a.type == onnx.AttributeProto.INT:
                types.add(a.i)
            if a.type == onnx.AttributeProto.TENSOR:
                types.add(a.t.data_type)
    return types


def op_under_test(case):
    return case.model.graph.node[0].op_type if len(case.model.graph.node) == 1 else \
        next((n.op_type for n in case.model.graph.node if n.op_type != "Constant"), "Constant")


def as_tensor(value, info):
    if isinstance(value, onnx.TensorProto):
        return value
    array = np.asarray(value)
    if array.dtype.kind in "OUS":
        return None
    elem = info.type.tensor_type.elem_type
    return numpy_helper.from_array(array) if elem == 0 else make_typed(array, elem)


def make_typed(array, elem):
    # numpy cannot hold bfloat16, float8 or 4-bit types: let onnx convert.
    try:
        return numpy_helper.from_array(array.astype(onnx.helper.tensor_dtype_to_np_dtype(elem)))
    except Exception:
        return numpy_helper.from_array(array)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "onnx-ops")
    root = os.path.normpath(root)
    if os.path.isdir(root):
        for name in os.listdir(root):
            path = os.path.join(root, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
    os.makedirs(root, exist_ok=True)
    warnings.simplefilter("ignore")
    rows = []
    for case in sorted(collect_testcases(), key=lambda c: c.name):
        if case.kind != "node":
            continue
        ops = [n.op_type for n in case.model.graph.node]
        if not ops or any(op not in OPERATORS for op in ops) or not plain_tensors(case.model):
            continue
        if len(case.data_sets) != 1:
            continue
        inputs, outputs = case.data_sets[0]
        graph = case.model.graph
        fed = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
        tensors_in = [as_tensor(v, info) for v, info in zip(inputs, fed)]
        tensors_out = [as_tensor(v, info) for v, info in zip(outputs, graph.output)]
        if any(t is None for t in tensors_in + tensors_out):
            continue
        folder = os.path.join(root, case.name)
        os.makedirs(folder)
        onnx.save(case.model, os.path.join(folder, "model.onnx"))
        for k, t in enumerate(tensors_in):
            with open(os.path.join(folder, f"input_{k}.pb"), "wb") as f:
                f.write(t.SerializeToString())
        for k, t in enumerate(tensors_out):
            with open(os.path.join(folder, f"output_{k}.pb"), "wb") as f:
                f.write(t.SerializeToString())
        rows.append({
            "name": case.name,
            "op": op_under_test(case),
            "ops": sorted(set(ops)),
            "rtol": max(float(case.rtol), 1e-3),
            "atol": max(float(case.atol), 1e-5),
            "unsupported_types": sorted(onnx.TensorProto.DataType.Name(t)
                                        for t in element_types(case.model) - SUPPORTED_TYPES),
        })
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump({"onnx": onnx.__version__, "tests": rows}, f, indent=1)
        f.write("\n")
    print(f"{len(rows)} tests from onnx {onnx.__version__} in {root}")


if __name__ == "__main__":
    sys.exit(main())
