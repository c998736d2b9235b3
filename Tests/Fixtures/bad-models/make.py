#!/usr/bin/env python3
"""Writes small ONNX models that break a rule, for the command-line tests:
each must be refused with `error: <file>: node '<name>' (<op>): <what>`.

  unsupported_op.onnx   an LSTM node (not supported)
  duplicate_node.onnx   two nodes named 'twin'
  duplicate_value.onnx  two nodes writing the value 'y'
  cycle.onnx            a node reading a value made after it
  int_output.onnx       (not bad) Cast to int32 and a comparison: outputs keep ONNX's types
  conv_channels.onnx    a Conv whose weights take 5 input channels, for images of 3
  huge_input.onnx       an input declared 1x1x100000x100000 (40 GB as float32)
  overflow_input.onnx   an input whose declared dims multiply past 2^63
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


def model(nodes, outputs, inputs=None, opset=17):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])]
    graph = helper.make_graph(nodes, "bad", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="atrous-tests")


def out(name, kind=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, kind, None)


def save(m, name):
    onnx.save(m, os.path.join(HERE, name))


save(model([helper.make_node("LSTM", ["x"], ["y"], name="recurrent")], [out("y")]), "unsupported_op.onnx")
save(model([helper.make_node("Relu", ["x"], ["a"], name="twin"), helper.make_node("Neg", ["a"], ["y"], name="twin")],
           [out("y")]), "duplicate_node.onnx")
save(model([helper.make_node("Relu", ["x"], ["y"], name="first"), helper.make_node("Neg", ["x"], ["y"], name="second")],
           [out("y")]), "duplicate_value.onnx")
save(model([helper.make_node("Add", ["x", "b"], ["a"], name="early"), helper.make_node("Neg", ["a"], ["b"], name="late")],
           [out("b")]), "cycle.onnx")
save(model([helper.make_node("Constant", [], ["zero"], name="zero", value_float=0.0),
            helper.make_node("Cast", ["x"], ["ints"], name="cast", to=TensorProto.INT32),
            helper.make_node("Greater", ["x", "zero"], ["positive"], name="compare")],
           [out("ints", TensorProto.INT32), out("positive", TensorProto.BOOL)]), "int_output.onnx")
conv = model([helper.make_node("Conv", ["x", "w"], ["y"], name="n3", pads=[1, 1, 1, 1])], [out("y")],
             inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])])
conv.graph.initializer.append(numpy_helper.from_array(np.zeros((4, 5, 3, 3), np.float32), "w"))
save(conv, "conv_channels.onnx")
for name, shape in [("huge_input.onnx", [1, 1, 100000, 100000]), ("overflow_input.onnx", [4294967296, 4294967296, 4])]:
    save(model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [out("y")],
               inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]), name)
