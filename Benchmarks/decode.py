#!/usr/bin/env python3
"""Decode speed: Atrous against cv2.imdecode on the same files, in one run.

Makes a 4096x4096 RGB photo (a sample photo upscaled, with mild noise so it
compresses like a camera image), writes it as JPEG (quality 90) and PNG,
then alternates rounds of timing between OpenCV and Atrous and reports the
ratio of median times (Atrous / OpenCV; below 1 is faster).

    pip install numpy opencv-python-headless
    python3 Benchmarks/decode.py [--rounds 5] [--repeat 10]
"""
import os
import tempfile

import cv2
import numpy as np

from harness import ROOT, arguments, build_bench, compare, time_bench, time_python, machine


def make_inputs(folder):
    photo = cv2.imread(os.path.join(ROOT, "SampleImages", "astronaut.png"), cv2.IMREAD_COLOR)
    big = cv2.resize(photo, (4096, 4096), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(0).normal(0, 3, big.shape)
    big = np.clip(big.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    jpeg = os.path.join(folder, "photo4096.jpg")
    png = os.path.join(folder, "photo4096.png")
    cv2.imwrite(jpeg, big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(png, big)
    return {"JPEG q90": jpeg, "PNG": png}


def main():
    args = arguments(__doc__, repeat=10)
    binary = build_bench()
    print(machine(binary))
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as folder:
        inputs = make_inputs(folder)
        print(f"OpenCV {cv2.__version__}; median of {args.repeat} decodes per round, {args.rounds} rounds")
        for label, path in inputs.items():
            data = np.fromfile(path, dtype=np.uint8)
            a, o = compare(args.rounds, lambda: time_bench(binary, ["decode", path, args.repeat]),
                           lambda: time_python(lambda: cv2.imdecode(data, cv2.IMREAD_COLOR), args.repeat))
            print(f"{label:9s} {os.path.getsize(path) / 1e6:6.1f} MB  atrous {a:8.1f} ms  "
                  f"cv2.imdecode {o:8.1f} ms  ratio {a / o:.3f}")


if __name__ == "__main__":
    main()
