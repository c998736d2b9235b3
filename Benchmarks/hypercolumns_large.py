#!/usr/bin/env python3
"""A hypercolumn export too large for memory: peak resident memory, and
throughput against the machine's write bandwidth, in one run.

`atrous hypercolumns` on a SIZExSIZE photo (default 4096: the sample cat
resized, as PNG), VGG16 blocks 1-2 with random weights (the model of
`hypercolumns.py`), layers conv1_2 and conv2_2 after ReLU: 192 float32
channels per pixel, 12.9 GB of `.npy` at 4096. The command runs as a user
runs it, a fresh process with its default settings; its peak resident set
size is the kernel's (ru_maxrss).

The write bandwidth is Python writing the same number of bytes to a file in
the same folder, 16 MiB at a time from one buffer: what the page cache and
disk take when nothing else is computed, the better of two ways: the writes
left to the kernel, and each chunk sent to disk as it is written
(sync_file_range, waited for and dropped from the page cache 64 MiB later,
as the command writes a file this large). The command's throughput is its
output bytes over its wall time; the ratio says how close it comes.

With `--upsample bilinear,jbu,guided`, each method runs in turn in every
round, and its upsampling stage is reported per pixel and against
bilinear's: the cost of following the image's edges.

Needs twice the output's size free on the temporary folder's disk (the
output and the bandwidth file are deleted as soon as they are measured).

    pip install numpy onnx opencv-python-headless
    python3 Benchmarks/hypercolumns_large.py [--size 4096] [--rounds 2] [--upsample bilinear,jbu,guided]
"""
import argparse
import ctypes
import os
import subprocess
import tempfile
import time

import cv2
import numpy as np
import onnx

from harness import ROOT, machine, build_bench
from hypercolumns import LAYERS, vgg_blocks_1_2


def run_measured(command):
    """(wall seconds, peak RSS bytes, standard error) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    errors = child.stderr.read()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({child.returncode}): {errors}")
    return wall, usage.ru_maxrss * 1024, errors


def write_bandwidth(path, total, behind=False):
    """Bytes per second writing `total` bytes to `path`, 16 MiB at a time;
    `behind`: each chunk sent to disk at once, and waited for and dropped
    from the page cache once 64 MiB more are on their way."""
    chunk = np.random.default_rng(0).random(4 << 20, dtype=np.float32).tobytes()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    start_write, wait_write = 2, 1 | 2 | 4  # SYNC_FILE_RANGE_WRITE; WAIT_BEFORE | WRITE | WAIT_AFTER
    start = time.perf_counter()
    with open(path, "wb", buffering=0) as out:
        written, sent = 0, []
        while written < total:
            count = out.write(chunk[:min(len(chunk), total - written)])
            if behind:
                libc.sync_file_range(out.fileno(), written, count, start_write)
                sent.append((written, count))
                while sum(c for _, c in sent[1:]) >= 64 << 20:
                    offset, length = sent.pop(0)
                    libc.sync_file_range(out.fileno(), offset, length, wait_write)
                    os.posix_fadvise(out.fileno(), offset, length, os.POSIX_FADV_DONTNEED)
            written += count
    seconds = time.perf_counter() - start
    os.remove(path)
    return total / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="image side in pixels")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the command and the bandwidth")
    parser.add_argument("--upsample", default="bilinear", help="comma-separated methods, each run in every round")
    args = parser.parse_args()
    print(machine(build_bench()))
    subprocess.run(["swift", "build", "-c", "release", "--product", "atrous"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    folder = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    atrous = os.path.join(folder, "atrous")
    with tempfile.TemporaryDirectory() as work:
        model = os.path.join(work, "vgg.onnx")
        onnx.save(vgg_blocks_1_2(), model)
        image = os.path.join(work, "photo.png")
        photo = cv2.imread(os.path.join(ROOT, "SampleImages", "chelsea.png"))
        cv2.imwrite(image, cv2.resize(photo, (args.size, args.size), interpolation=cv2.INTER_CUBIC))
        out = os.path.join(work, "columns.npy")
        methods = args.upsample.split(",")
        walls, peaks, stages = {m: [] for m in methods}, {m: [] for m in methods}, {m: {} for m in methods}
        bandwidths, behind = [], []
        for _ in range(args.rounds):
            for method in methods:
                command = [atrous, "hypercolumns", image, "--model", model, "--layers", ",".join(LAYERS), "-o", out,
                           "--timings", "--upsample", method]
                wall, peak, errors = run_measured(command)
                size = os.path.getsize(out)
                os.remove(out)
                walls[method].append(wall)
                peaks[method].append(peak)
                for line in errors.splitlines():
                    if line.startswith("timing: "):
                        name, ms = line[len("timing: "):].rsplit(" ", 1)
                        stages[method].setdefault(name, []).append(float(ms))
            bandwidths.append(write_bandwidth(os.path.join(work, "bandwidth.bin"), size))
            behind.append(write_bandwidth(os.path.join(work, "bandwidth.bin"), size, behind=True))
        bandwidth = max(bandwidths + behind)
        pixels = args.size * args.size
        print(f"{args.size}x{args.size}, {len(LAYERS)} layers, {size / 1e9:.1f} GB of output; best of {args.rounds}")
        print(f"write bandwidth   {bandwidth / 1e9:8.2f} GB/s  (same bytes, 16 MiB writes: "
              f"{max(bandwidths) / 1e9:.2f} left to the kernel, {max(behind) / 1e9:.2f} sent to disk as written)")
        base = min(stages[methods[0]].get("upsample+concat", [float("nan")]))
        for method in methods:
            wall = min(walls[method])
            upsample = min(stages[method].get("upsample+concat", [float("nan")]))
            print(f"--upsample {method}")
            print(f"  peak RSS          {max(peaks[method]) / 2**20:8.0f} MiB")
            print(f"  wall time         {wall:8.2f} s   "
                  f"({', '.join(f'{k} {min(v) / 1e3:.2f} s' for k, v in stages[method].items())})")
            print(f"  throughput        {size / wall / 1e9:8.2f} GB/s, {size / wall / bandwidth:.2f} of the write bandwidth")
            print(f"  upsample+concat   {upsample * 1e6 / pixels:8.1f} ns per pixel, {upsample / base:.2f}x {methods[0]}'s")


if __name__ == "__main__":
    main()
