#!/usr/bin/env python3
"""Hypercolumn speed: Atrous against the Python pipeline it replaces, on the
same PNG in one run.

The pipeline: cv2.imread, BGR to RGB, scale to 0-1, ONNX Runtime (graph
optimizations on) returning the chosen layers, cv2.resize INTER_LINEAR of
each map to the input size, numpy.concatenate, numpy.save. The model is the
VGG16 conv trunk's blocks 1-2 (random weights), layers conv1_2 and conv2_2
after ReLU (192 channels), on a 224x224 photo. Both sides load the model
once and then time the whole job per image, PNG in, .npy out (warm); and
end to end as a user runs it, a fresh process each time: the pipeline as a
Python script (interpreter start, imports, session creation included)
against the `atrous hypercolumns` command; and that command's time against
the pipeline's per-image time with its session open.

Also a folder of 64 such images: `atrous hypercolumns DIR --out-dir
--overwrite --threads T` (T threads in all, as the Python side gets) as
one process against the pipeline's loop in Python with its session open.

Also: bilinear upsampling of one 56x56x128 float32 map to 224x224, Atrous
against cv2.resize on the same (H, W, C) array.

    pip install numpy onnx onnxruntime opencv-python-headless
    python3 Benchmarks/hypercolumns.py [--rounds 5] [--repeat 10]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from harness import ROOT, arguments, build_bench, compare, ort_session, time_bench, time_python, machine

LAYERS = ["conv1_2_relu", "conv2_2_relu"]
FOLDER_IMAGES = 64

SCRIPT = """
import sys
import cv2
import numpy as np
import onnxruntime as ort

image, model, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
cv2.setNumThreads(threads)
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
rgb = cv2.cvtColor(cv2.imread(image), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
h, w = rgb.shape[:2]
maps = session.run(["conv1_2_relu", "conv2_2_relu"], {"image": rgb.transpose(2, 0, 1)[None]})
columns = [cv2.resize(np.ascontiguousarray(m[0].transpose(1, 2, 0)), (w, h), interpolation=cv2.INTER_LINEAR) for m in maps]
np.save(out, np.concatenate(columns, axis=2))
"""


def time_process(command, repeat):
    """Median milliseconds of running `command` as a fresh process, after one warm-up."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[len(times) // 2]


def stages(command, repeat):
    """The median of each `--timings` stage over `repeat` fresh runs, and of
    the rest of the process's time (start-up and argument parsing before
    `load`, exit after the last stage; upsampling and writing overlap, so
    the rest is counted short by their overlap)."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        total = (time.perf_counter() - start) * 1e3
        timed = {line.split()[1]: float(line.split()[2]) for line in result.stderr.splitlines()
                 if line.startswith("timing: ")}
        timed["rest"] = total - sum(timed.values())
        runs.append(timed)
    return ", ".join(f"{stage} {sorted(run[stage] for run in runs)[repeat // 2]:.1f}" for stage in runs[0]) + " ms"


def vgg_blocks_1_2():
    rng = np.random.default_rng(0)
    nodes, inits, x, cin = [], [], "image", 3
    for block, (cout, count) in enumerate([(64, 2), (128, 2)]):
        for layer in range(count):
            name = f"conv{block + 1}_{layer + 1}"
            shape = [cout, cin, 3, 3]
            w = (rng.standard_normal(shape) * np.sqrt(2 / (cin * 9))).astype(np.float32)
            inits += [helper.make_tensor(name + ".w", TensorProto.FLOAT, shape, w.ravel()),
                      helper.make_tensor(name + ".b", TensorProto.FLOAT, [cout], np.zeros(cout, np.float32))]
            nodes += [helper.make_node("Conv", [x, name + ".w", name + ".b"], [name], kernel_shape=[3, 3], pads=[1] * 4),
                      helper.make_node("Relu", [name], [name + "_relu"])]
            x, cin = name + "_relu", cout
        if block == 0:
            nodes.append(helper.make_node("MaxPool", [x], ["pool1"], kernel_shape=[2, 2], strides=[2, 2]))
            x = "pool1"
    graph = helper.make_graph(nodes, "vgg16_blocks_1_2",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, None, None])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, None, None, None]) for n in LAYERS],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def main():
    args = arguments(__doc__, repeat=10)
    binary = build_bench()
    print(machine(binary))
    with tempfile.TemporaryDirectory() as folder:
        model = os.path.join(folder, "vgg.onnx")
        onnx.save(vgg_blocks_1_2(), model)
        image = os.path.join(folder, "photo.png")
        photo = cv2.imread(os.path.join(ROOT, "SampleImages", "chelsea.png"))
        cv2.imwrite(image, cv2.resize(photo, (224, 224), interpolation=cv2.INTER_AREA))
        theirs_out, ours_out = os.path.join(folder, "python.npy"), os.path.join(folder, "atrous.npy")
        print(f"onnxruntime {ort.__version__}, opencv {cv2.__version__}; median of {args.repeat} runs per round, "
              f"{args.rounds} rounds")
        in_process = {}  # the pipeline's per-image time with its session open, by threads
        for threads in (1, 2):
            session = ort_session(model, threads)
            cv2.setNumThreads(threads)

            def pipeline():
                rgb = cv2.cvtColor(cv2.imread(image), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
                h, w = rgb.shape[:2]
                maps = session.run(LAYERS, {"image": rgb.transpose(2, 0, 1)[None]})
                columns = [cv2.resize(np.ascontiguousarray(m[0].transpose(1, 2, 0)), (w, h),
                                      interpolation=cv2.INTER_LINEAR) for m in maps]
                np.save(theirs_out, np.concatenate(columns, axis=2))

            a, o = compare(args.rounds,
                           lambda: time_bench(binary, ["hypercolumns", model, image, ",".join(LAYERS), ours_out, threads,
                                                       args.repeat]),
                           lambda: time_python(pipeline, args.repeat))
            print(f"hypercolumns vgg 224 {threads}T  atrous {a:7.1f} ms  python {o:7.1f} ms  ratio {a / o:.2f}")
            in_process[threads] = o
        script = os.path.join(folder, "pipeline.py")
        with open(script, "w") as f:
            f.write(SCRIPT)
        subprocess.run(["swift", "build", "-c", "release", "--product", "atrous"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        atrous = os.path.join(os.path.dirname(binary), "atrous")
        for threads in (1, 2):
            a, o = compare(args.rounds,
                           lambda: time_process([atrous, "hypercolumns", image, "--model", model, "--layers", ",".join(LAYERS),
                                                 "-o", ours_out, "--threads", str(threads)], args.repeat),
                           lambda: time_process([sys.executable, script, image, model, theirs_out, str(threads)],
                                                args.repeat))
            print(f"end to end, fresh process {threads}T  atrous {a:7.1f} ms  python {o:7.1f} ms  ratio {a / o:.2f}")
            print(f"fresh process against the pipeline in-process {threads}T  atrous {a:7.1f} ms  "
                  f"python {in_process[threads]:7.1f} ms  ratio {a / in_process[threads]:.2f}")
            print(f"  where a fresh process's time goes {threads}T: "
                  + stages([atrous, "hypercolumns", image, "--model", model, "--layers", ",".join(LAYERS),
                            "-o", ours_out, "--threads", str(threads), "--timings"], args.repeat))
        difference = np.abs(np.load(ours_out) - np.load(theirs_out)).max()
        print(f"largest difference between the two outputs: {difference:.2e}")

        # A folder: the command once over FOLDER_IMAGES copies of the photo
        # (process start and model load included) against the pipeline's
        # loop with its session already open.
        photos, ours_dir, theirs_dir = (os.path.join(folder, name) for name in ("photos", "ours", "theirs"))
        for path in (photos, ours_dir, theirs_dir):
            os.makedirs(path)
        for i in range(FOLDER_IMAGES):
            shutil.copy(image, os.path.join(photos, f"photo{i:02d}.png"))
        names = sorted(os.listdir(photos))
        for threads in (1, 2):
            session = ort_session(model, threads)
            cv2.setNumThreads(threads)

            def loop():
                start = time.perf_counter()
                for name in names:
                    rgb = cv2.cvtColor(cv2.imread(os.path.join(photos, name)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
                    h, w = rgb.shape[:2]
                    maps = session.run(LAYERS, {"image": rgb.transpose(2, 0, 1)[None]})
                    columns = [cv2.resize(np.ascontiguousarray(m[0].transpose(1, 2, 0)), (w, h),
                                          interpolation=cv2.INTER_LINEAR) for m in maps]
                    np.save(os.path.join(theirs_dir, name[:-4] + ".npy"), np.concatenate(columns, axis=2))
                return (time.perf_counter() - start) * 1e3

            def command():
                start = time.perf_counter()
                subprocess.run([atrous, "hypercolumns", photos, "--model", model, "--layers", ",".join(LAYERS),
                                "--out-dir", ours_dir, "--overwrite", "--threads", str(threads), "--quiet"], check=True,
                               capture_output=True)
                return (time.perf_counter() - start) * 1e3

            a, o = compare(args.rounds, command, loop)
            print(f"folder of {FOLDER_IMAGES}, {threads}T  atrous {FOLDER_IMAGES / a * 1e3:6.1f} images/s  "
                  f"python {FOLDER_IMAGES / o * 1e3:6.1f} images/s  ratio of rates {o / a:.2f}")

        array = np.random.default_rng(1).standard_normal((56, 56, 128)).astype(np.float32)
        source = os.path.join(folder, "map.npy")
        np.save(source, array)
        for threads in (1, 2):
            cv2.setNumThreads(threads)
            a, o = compare(args.rounds, lambda: time_bench(binary, ["resize", source, 224, 224, threads, args.repeat * 10]),
                           lambda: time_python(lambda: cv2.resize(array, (224, 224), interpolation=cv2.INTER_LINEAR),
                                               args.repeat * 10))
            print(f"resize 56x56x128 to 224 {threads}T  atrous {a:7.3f} ms  cv2 {o:7.3f} ms  ratio {a / o:.2f}")


if __name__ == "__main__":
    main()
