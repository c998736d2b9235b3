#!/usr/bin/env python3
"""Peak memory of `atrous filter` and `atrous convert` on a huge gray PNG,
against OpenCV doing the same in the same run.

Writes a SIZExSIZE 8-bit gray PNG (default 30000x30000: the camera photo
tiled, with noise, so it compresses as a photo would; written a row at a
time), then runs each command as its own process and reads its peak
resident set size from the kernel (ru_maxrss):

- `atrous filter big.png -o edges.png sobel:mag` against cv2.imread,
  cv2.Sobel dx and dy in float32, cv2.magnitude, cv2.convertScaleAbs,
  cv2.imwrite;
- `atrous convert big.png big.jpg` against cv2.imread, cv2.imwrite.

Atrous streams both: its peak depends on the width, not the height.

    pip install numpy opencv-python-headless
    python3 Benchmarks/peak_rss.py [--size 30000] [--no-opencv]
"""
import argparse
import os
import platform
import resource
import struct
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

OPENCV_FILTER = """
import sys, cv2
image = cv2.imread(sys.argv[1], cv2.IMREAD_UNCHANGED)
magnitude = cv2.magnitude(cv2.Sobel(image, cv2.CV_32F, 1, 0), cv2.Sobel(image, cv2.CV_32F, 0, 1))
cv2.imwrite(sys.argv[2], cv2.convertScaleAbs(magnitude), [cv2.IMWRITE_PNG_COMPRESSION, 1])
"""

OPENCV_CONVERT = """
import sys, cv2
cv2.imwrite(sys.argv[2], cv2.imread(sys.argv[1], cv2.IMREAD_UNCHANGED), [cv2.IMWRITE_JPEG_QUALITY, 95])
"""


def cpu_model():
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def write_png(path, size):
    """A size x size gray PNG written a row at a time (no image in memory)."""
    import numpy as np
    photo_path = os.path.join(ROOT, "SampleImages", "camera.png")
    import cv2
    photo = cv2.imread(photo_path, cv2.IMREAD_GRAYSCALE)
    tiles = -(-size // photo.shape[1])
    noise = np.random.default_rng(0)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)))
        compressor = zlib.compressobj(1)
        pending = b""
        for y in range(size):
            row = np.tile(photo[y % photo.shape[0]], tiles)[:size]
            row = (row.astype(np.int16) + noise.integers(0, 4, size)).clip(0, 255).astype(np.uint8)
            pending += compressor.compress(b"\x00" + row.tobytes())
            if len(pending) >= 1 << 20:
                out.write(chunk(b"IDAT", pending))
                pending = b""
        out.write(chunk(b"IDAT", pending + compressor.flush()) + chunk(b"IEND", b""))


def measure(command):
    """(seconds, peak RSS in MiB, exit status) of a command run as a child."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    error = child.stderr.read().decode().strip()
    if status != 0:
        print(f"  {' '.join(command[:3])}... failed: {error}", file=sys.stderr)
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=30000, help="width and height of the test image")
    parser.add_argument("--no-opencv", action="store_true", help="measure Atrous alone")
    args = parser.parse_args()

    subprocess.run(["swift", "build", "-c", "release", "--product", "atrous"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    folder = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    atrous = os.path.join(folder, "atrous")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as scratch:
        big = os.path.join(scratch, "big.png")
        write_png(big, args.size)
        print(f"input: {args.size}x{args.size} gray PNG, {os.path.getsize(big) / 2**20:.0f} MiB "
              f"({args.size * args.size / 2**20:.0f} MiB of pixels)")
        cases = [
            ("filter sobel:mag -> PNG", [atrous, "filter", big, "-o", os.path.join(scratch, "a.png"), "sobel:mag"],
             OPENCV_FILTER, os.path.join(scratch, "o.png")),
            ("convert -> JPEG", [atrous, "convert", big, os.path.join(scratch, "a.jpg")],
             OPENCV_CONVERT, os.path.join(scratch, "o.jpg")),
        ]
        print(f"{'case':26} {'tool':8} {'seconds':>8} {'peak RSS MiB':>13}")
        for name, ours, theirs, target in cases:
            seconds, peak, _ = measure(ours)
            print(f"{name:26} {'atrous':8} {seconds:8.1f} {peak:13.0f}")
            if not args.no_opencv:
                their_seconds, their_peak, status = measure([sys.executable, "-c", theirs, big, target])
                if status == 0:
                    print(f"{name:26} {'opencv':8} {their_seconds:8.1f} {their_peak:13.0f}"
                          f"   atrous/opencv: time {seconds / their_seconds:.2f}, peak {peak / their_peak:.3f}")


if __name__ == "__main__":
    main()
