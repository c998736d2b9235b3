#!/usr/bin/env python3
"""Writes Tests/Fixtures/onnx-ops/known-failures.txt from a status file of
Scripts/onnx-node-status.py: every test that neither passes nor is an
expected refusal (unsupported element type, training mode), with why.

Usage: python3 Scripts/onnx-node-status.py --out status.tsv
       python3 Scripts/known-failures.py status.tsv
"""
import json
import os
import sys

folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "onnx-ops")
index = {t["name"]: t for t in json.load(open(os.path.join(folder, "index.json")))["tests"]}
rows = []
for line in open(sys.argv[1]):
    name, outcome, detail = (line.rstrip("\n").split("\t") + ["", ""])[:3]
    test = index[name]
    if outcome == "passed" or test["unsupported_types"] or "training" in name:
        continue
    rows.append(f"{name} {outcome}: {detail[:200]}")
with open(os.path.join(folder, "known-failures.txt"), "w") as f:
    f.write("# ONNX node tests that do not pass yet, with why (see ONNXOperatorTests).\n")
    f.write("\n".join(rows) + "\n")
print(len(rows), "known failures")
