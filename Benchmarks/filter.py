#!/usr/bin/env python3
"""Filter speed: Atrous against OpenCV on the same 4096x4096 float32 image,
in one run, with 1 and 2 threads.

Cases: Sobel dx + dy + magnitude (cv2.Sobel twice and cv2.magnitude against
`sobel:mag`), and Gaussian sigma=2 (cv2.GaussianBlur against
`gaussian:sigma=2`). Rounds alternate between the two tools; the ratio is
Atrous's median time over OpenCV's (below 1 is faster). Atrous is timed
in-process (atrous-bench), so neither side pays for file I/O.

    pip install numpy opencv-python-headless
    python3 Benchmarks/filter.py [--rounds 5] [--repeat 5]
"""
import os
import tempfile

import cv2
import numpy as np

from harness import ROOT, arguments, build_bench, compare, time_bench, time_python, machine

CASES = {
    "sobel dx+dy+magnitude": (["sobel:mag"],
                              lambda i: cv2.magnitude(cv2.Sobel(i, cv2.CV_32F, 1, 0), cv2.Sobel(i, cv2.CV_32F, 0, 1))),
    "gaussian sigma=2": (["gaussian:sigma=2"], lambda i: cv2.GaussianBlur(i, (0, 0), 2)),
}


def make_input(folder):
    photo = cv2.imread(os.path.join(ROOT, "SampleImages", "camera.png"), cv2.IMREAD_GRAYSCALE)
    big = cv2.resize(photo, (4096, 4096), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    big += np.random.default_rng(0).normal(0, 3, big.shape).astype(np.float32)
    path = os.path.join(folder, "gray4096.npy")
    np.save(path, big)
    return big, path


def main():
    args = arguments(__doc__, repeat=5)
    binary = build_bench()
    print(machine(binary))
    with tempfile.TemporaryDirectory() as folder:
        image, path = make_input(folder)
        print(f"OpenCV {cv2.__version__}; 4096x4096 float32, 1 channel; median of {args.repeat} runs per round, "
              f"{args.rounds} rounds")
        for label, (specs, fn) in CASES.items():
            for threads in (1, 2):
                cv2.setNumThreads(threads)
                a, o = compare(args.rounds, lambda: time_bench(binary, ["filter", path, threads, args.repeat] + specs),
                               lambda: time_python(lambda: fn(image), args.repeat))
                print(f"{label:24s} {threads} thread{'s' if threads > 1 else ' '}  atrous {a:7.1f} ms  "
                      f"opencv {o:7.1f} ms  ratio {a / o:.3f}")


if __name__ == "__main__":
    main()
