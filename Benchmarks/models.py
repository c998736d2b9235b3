#!/usr/bin/env python3
"""Whole models: Atrous against ONNX Runtime (graph optimizations on) on the
full-size corpus of Scripts/export-model-corpus.py (torchvision classifiers,
a U-Net, LR-ASPP, a YOLOX-style detector, PP-OCR's classifier and
recognizer), the same ONNX files and inputs, in one run, with 1 and 2
threads. Prints each model's forward time and ratio (Atrous / ONNX
Runtime), and the geometric mean of the ratios.

    pip install numpy onnx onnxruntime torch torchvision
    python3 Benchmarks/models.py [--models DIR] [--rounds 3] [--repeat 10] [--only NAME]...

The models are exported into DIR (default: a folder under the system's
temporary folder) the first time.
"""
import math
import os

import numpy as np
import onnxruntime as ort

from harness import build_bench, compare, corpus, ort_session, time_bench, time_python, machine


def main():
    args, models = corpus(__doc__, repeat=10)
    binary = build_bench()
    print(machine(binary))
    print(f"onnxruntime {ort.__version__} (ORT_ENABLE_ALL); "
          f"median of {args.repeat} runs per round, median of {args.rounds} alternating rounds")
    ratios = {1: [], 2: []}
    for m in models:
        folder = os.path.join(args.models, m["name"])
        path, npy = os.path.join(folder, "model.onnx"), os.path.join(folder, "input.npy")
        x = np.load(npy)
        row = f"{m['name']:22s} {'x'.join(map(str, m['input_shape'][2:])):>8s}"
        for threads in (1, 2):
            session = ort_session(path, threads)
            a, o = compare(args.rounds, lambda: time_bench(binary, ["model", path, npy, threads, args.repeat]),
                           lambda: time_python(lambda: session.run(None, {m["input"]: x}), args.repeat))
            ratios[threads].append(a / o)
            row += f"   {threads}T {a:8.2f} / {o:8.2f} ms = {a / o:5.2f}"
        print(row, flush=True)
    for threads in (1, 2):
        if ratios[threads]:
            mean = math.exp(sum(map(math.log, ratios[threads])) / len(ratios[threads]))
            print(f"geometric mean {threads}T: {mean:.2f}, worst {max(ratios[threads]):.2f}")


if __name__ == "__main__":
    main()
