#!/usr/bin/env python3
"""What a fresh process pays for a model before its first result: Atrous's
`atrous run MODEL --timings` (its read stage: the file to a graph with its
weights; and its first-run stage: the first forward pass, which prepares
the weights) against ONNX Runtime's session creation (graph optimizations
on) and its first run, in a Python process already started, on the
full-size corpus of Scripts/export-model-corpus.py, 2 threads each.
Prints the medians and the ratio of the sums (Atrous / ONNX Runtime), and
the whole `atrous run` process besides.

    pip install numpy onnx onnxruntime torch torchvision
    python3 Benchmarks/load.py [--models DIR] [--rounds 3] [--repeat 7] [--only NAME]...
"""
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort

from harness import ROOT, build_bench, corpus, machine


def main():
    args, models = corpus(__doc__, repeat=7)
    binary = build_bench()
    subprocess.run(["swift", "build", "-c", "release", "--product", "atrous"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    atrous = os.path.join(os.path.dirname(binary), "atrous")
    print(machine(binary))
    print(f"onnxruntime {ort.__version__}; 2 threads; median of {args.repeat} runs per round, "
          f"median of {args.rounds} alternating rounds")
    with tempfile.TemporaryDirectory() as out:
        for m in models:
            folder = os.path.join(args.models, m["name"])
            path, npy = os.path.join(folder, "model.onnx"), os.path.join(folder, "input.npy")
            name = onnx.load(path, load_external_data=False).graph.input[0].name
            x = np.load(npy)
            command = [atrous, "run", path, "--input", f"{name}={npy}", "-o", out, "--threads", "2", "--timings"]

            def ours():
                runs = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    result = subprocess.run(command, check=True, capture_output=True, text=True)
                    total = (time.perf_counter() - start) * 1e3
                    stages = {line.split()[1]: float(line.split()[2]) for line in result.stderr.splitlines()
                              if line.startswith("timing: ")}
                    runs.append((stages["read"], stages["first-run"], total))
                return tuple(statistics.median(r[i] for r in runs) for i in range(3))

            def theirs():
                runs = []
                for _ in range(args.repeat):
                    options = ort.SessionOptions()
                    options.intra_op_num_threads = 2
                    options.inter_op_num_threads = 1
                    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                    start = time.perf_counter()
                    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                    made = time.perf_counter()
                    session.run(None, {name: x})
                    runs.append(((made - start) * 1e3, (time.perf_counter() - made) * 1e3))
                    del session
                return tuple(statistics.median(r[i] for r in runs) for i in range(2))

            a, o = [], []
            for _ in range(args.rounds):
                o.append(theirs())
                time.sleep(0.5)
                a.append(ours())
                time.sleep(0.5)
            read, model, total = (statistics.median(r[i] for r in a) for i in range(3))
            session, first = (statistics.median(r[i] for r in o) for i in range(2))
            print(f"{m['name']:22s} atrous read {read:6.1f} + first run {model:6.1f} ms (process {total:6.1f})   "
                  f"onnxruntime session {session:6.1f} + first run {first:6.1f} ms   "
                  f"ratio {(read + model) / (session + first):5.2f}")


if __name__ == "__main__":
    main()
