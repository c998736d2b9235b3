#!/usr/bin/env python3
"""The README's pictures of `atrous report` and of the checkerboard demo,
rendered by headless Chromium (Debian's chromium-headless-shell) from the
reports themselves:

  docs/report.png        `atrous report default SampleImages/chelsea.png`,
                         the top of the page;
  docs/checkerboard.png  the reports of Examples/checkerboard's two models
                         on the same photo, side by side: strided and
                         transposed convolutions on the left,
                         pooling and resize-convolution on the right.

    apt-get install chromium-headless-shell; pip install numpy opencv-python-headless
    python3 Scripts/make-readme-pictures.py
"""
import os
import shutil
import subprocess
import tempfile

import cv2
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def screenshot(page, out, width, height):
    browser = shutil.which("chromium-headless-shell") or shutil.which("chromium")
    subprocess.run([browser, "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={out}",
                    f"--window-size={width},{height}", "file://" + page], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cv2.imread(out)


def main():
    subprocess.run(["swift", "build", "-c", "release", "--product", "atrous"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    folder = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    atrous = os.path.join(folder, "atrous")
    photo = os.path.join(ROOT, "SampleImages", "chelsea.png")
    with tempfile.TemporaryDirectory() as work:
        page = os.path.join(work, "default.html")
        subprocess.run([atrous, "report", "default", photo, "--layers", "sigma1.0,sigma5.0", "--channels", "12", "-o", page],
                       check=True)
        cv2.imwrite(os.path.join(ROOT, "docs", "report.png"), screenshot(page, os.path.join(work, "a.png"), 1400, 1100))
        shots = []
        for model in ["deconv", "resize"]:
            page = os.path.join(work, model + ".html")
            subprocess.run([atrous, "report", os.path.join(ROOT, "Examples", "checkerboard", model + ".onnx"), photo,
                            "--uniform-weights", "--layers", "enc1,up2", "--channels", "8", "-o", page], check=True)
            shots.append(screenshot(page, os.path.join(work, model + ".png"), 1300, 1250))
        gap = np.full((shots[0].shape[0], 24, 3), 255, np.uint8)
        both = np.hstack([shots[0], gap, shots[1]])
        cv2.imwrite(os.path.join(ROOT, "docs", "checkerboard.png"), cv2.resize(both, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA))


if __name__ == "__main__":
    main()
